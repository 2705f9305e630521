// Regression: the gradient of a product of two sums from one loop was wrong
// (no error, wrong numbers). The adjoint of each sum is the other sum's
// final value; fusing the reverse loop into the forward loop read that
// value while the loop was still adding to it, i.e. a partial sum.
use grad::prelude::*;

#[differentiate(wrt(x, c))]
fn two_sums(x: &[f64], c: f64) -> f64 {
    let mut s = 0.0;
    let mut t = 0.0;
    for i in 2..x.len() {
        let p = sigmoid(x[i] * c);
        s += p * x[i - 1];
        t += tanh(p - x[i - 2]);
    }
    s * t
}

fn main() {
    let x = [0.3, -0.2, 0.5, 0.9, -1.1, 0.4];
    let c = 1.3;
    let (value, grad) = two_sums_grad(&x, c);
    assert_eq!(value, two_sums(&x, c));
    let h = 1e-6;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-7 * (1.0 + b.abs());
    let dc = (two_sums(&x, c + h) - two_sums(&x, c - h)) / (2.0 * h);
    assert!(close(grad.c, dc), "d/dc: {} vs {dc}", grad.c);
    for k in 0..x.len() {
        let (mut up, mut down) = (x, x);
        up[k] += h;
        down[k] -= h;
        let dk = (two_sums(&up, c) - two_sums(&down, c)) / (2.0 * h);
        assert!(close(grad.x[k], dk), "d/dx[{k}]: {} vs {dk}", grad.x[k]);
    }
}
