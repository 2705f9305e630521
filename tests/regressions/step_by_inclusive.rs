// Regression: `for i in (0..=n).step_by(k)` compiles in plain Rust, but the reverse
// sweep replays it as `(0..=n).step_by(k).rev()`, which needs
// `ExactSizeIterator` (not implemented for `RangeInclusive<usize>`, nor for
// `Range<u64>`/`Range<i64>`): E0277 pointing at `#[differentiate]`.
use grad::check::assert_gradient;
use grad::prelude::*;

#[differentiate(wrt(x))]
fn inclusive(x: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for i in (0..=n).step_by(2) {
        s = s * 0.5 + x[i] * x[i];
    }
    s
}

#[differentiate(wrt(x))]
fn wide(x: &[f64], n: u64) -> f64 {
    let mut s = 0.0;
    for i in (0..n).step_by(2) {
        s = s * 0.5 + x[i as usize] * x[i as usize];
    }
    s
}

fn main() {
    let x = [0.5, -1.0, 2.0, 0.25, 3.0];
    let (_, g) = inclusive_grad(&x, 4);
    assert_gradient(|p| inclusive(p, 4), &x, &g.x);
    let (_, g) = wide_grad(&x, 5);
    assert_gradient(|p| wide(p, 5), &x, &g.x);
}
