//! W2, Rosenbrock: `Σ_{i<n−1} 100 (x_{i+1} − x_i²)² + (1 − x_i)²` over a
//! slice; the gradient in every `x_i`.

use super::{Answer, Rng};
use grad::prelude::*;

/// The sizes benchmarked.
pub const SIZES: [usize; 3] = [2, 100, 10_000];

/// A fixed point in `[−2, 2)ⁿ`, the same for every implementation.
pub fn point(n: usize) -> Vec<f64> {
    let mut rng = Rng::new(0x5EED_0002 ^ n as u64);
    (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect()
}

/// The primal, and through `#[differentiate]` grad's `rosenbrock_backward`.
#[differentiate]
pub fn rosenbrock(x: &[f64]) -> f64 {
    let n = x.len();
    let mut total = 0.0;
    for i in 0..n - 1 {
        total += 100.0 * (x[i + 1] - x[i].powi(2)).powi(2) + (1.0 - x[i]).powi(2);
    }
    total
}

/// The same function over a fixed-size array, for the sizes where symdiff
/// (which needs the dimension at compile time) competes: grad given the
/// same information. The gradient is an array, summed in registers.
#[differentiate]
pub fn rosenbrock_2(x: [f64; 2]) -> f64 {
    let mut total = 0.0;
    for i in 0..1 {
        total += 100.0 * (x[i + 1] - x[i].powi(2)).powi(2) + (1.0 - x[i]).powi(2);
    }
    total
}

/// [`rosenbrock_2`] at n = 100.
#[differentiate]
pub fn rosenbrock_100(x: [f64; 100]) -> f64 {
    let mut total = 0.0;
    for i in 0..99 {
        total += 100.0 * (x[i + 1] - x[i].powi(2)).powi(2) + (1.0 - x[i]).powi(2);
    }
    total
}

/// The gradient by hand, in one pass that writes each `g[i]` once: the
/// term `i` contributes to `g[i]` and `g[i + 1]`, the second part is carried
/// to the next iteration.
#[inline]
pub fn rosenbrock_hand(x: &[f64], g: &mut [f64]) -> f64 {
    assert_eq!(x.len(), g.len(), "x and its gradient differ in length");
    let mut total = 0.0;
    let mut carry = 0.0;
    for (pair, gi) in x.windows(2).zip(g.iter_mut()) {
        let (xi, next) = (pair[0], pair[1]);
        let t = next - xi * xi;
        let c = 1.0 - xi;
        total += 100.0 * t * t + c * c;
        *gi = carry - 400.0 * xi * t - 2.0 * c;
        carry = 200.0 * t;
    }
    if let Some(last) = g.last_mut() {
        *last = carry;
    }
    total
}

/// [`rosenbrock_hand`] under `f_backward`'s contract: it *adds* into `g`
/// (which the caller zeroes) instead of assigning. Not the target, which is
/// [`rosenbrock_hand`]; shown beside it to separate what the contract costs
/// from what the transform costs.
#[inline]
pub fn rosenbrock_hand_adding(x: &[f64], g: &mut [f64]) -> f64 {
    assert_eq!(x.len(), g.len(), "x and its gradient differ in length");
    let mut total = 0.0;
    let mut carry = 0.0;
    for (pair, gi) in x.windows(2).zip(g.iter_mut()) {
        let (xi, next) = (pair[0], pair[1]);
        let t = next - xi * xi;
        let c = 1.0 - xi;
        total += 100.0 * t * t + c * c;
        *gi += carry - 400.0 * xi * t - 2.0 * c;
        carry = 200.0 * t;
    }
    if let Some(last) = g.last_mut() {
        *last += carry;
    }
    total
}

pub fn answer(name: &'static str, value: f64, gradient: &[f64]) -> Answer {
    Answer::new(name, value, gradient.to_vec())
}
