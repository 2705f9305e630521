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

fn main() {}
