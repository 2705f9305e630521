// Regression: a loop that overwrites a local array and reads it inside an
// `if` records the read (it is passed out of the `if` and taped), so the
// gradient is right rather than a compile error.
use grad::check::assert_gradient;
use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut h = [0.0; 2];
    h[0] = x;
    h[1] = x;
    let mut s = 0.0;
    for t in 0..3 {
        if t > 0 {
            s += h[0] * h[1];
        }
        h[0] = (h[1] * x).tanh();
        h[1] = h[0] + x;
    }
    s
}

fn main() {
    for x in [0.3, -0.8, 1.7] {
        let (value, g) = f_grad(x);
        assert_eq!(value, f(x));
        assert_gradient(|p| f(p[0]), &[x], &[g.x]);
    }
}
