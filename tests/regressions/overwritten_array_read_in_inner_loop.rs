// Regression: an inner loop reading a local array that the outer loop
// overwrites afterwards records its own reads (the array is overwritten
// after it), so the outer loop's recomputation never needs them.
use grad::check::assert_gradient;
use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut h = [0.0; 2];
    h[0] = x;
    h[1] = x;
    let mut s = 0.0;
    for _ in 0..3 {
        for k in 0..2 {
            s += h[k] * h[k];
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
