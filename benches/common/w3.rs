//! W3, logistic regression: the mean ε-clamped binary cross-entropy of
//! `sigmoid(w·x_i + b)` over `N` samples of `D` features; the gradient in
//! `w` and `b`.

use super::{hand_bce_dz, hand_sigmoid, Answer, Rng};
use grad::prelude::*;

/// Samples.
pub const N: usize = 100_000;
/// Features.
pub const D: usize = 8;

/// The data set and the point the gradient is taken at.
pub struct Data {
    /// `N × D`, row-major.
    pub x: Vec<f64>,
    /// Labels, 0 or 1.
    pub y: Vec<f64>,
    pub w: [f64; D],
    pub b: f64,
}

/// Features uniform in `[−1, 1)`, labels drawn from a logistic model with
/// fixed random weights, and a point away from the optimum.
pub fn data(n: usize) -> Data {
    let mut rng = Rng::new(0x5EED_0003);
    let truth: [f64; D] = std::array::from_fn(|_| rng.uniform(-2.0, 2.0));
    let mut x = Vec::with_capacity(n * D);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: [f64; D] = std::array::from_fn(|_| rng.uniform(-1.0, 1.0));
        let z = 0.3 + row.iter().zip(&truth).map(|(a, t)| a * t).sum::<f64>();
        y.push(if rng.unit() < hand_sigmoid(z) {
            1.0
        } else {
            0.0
        });
        x.extend_from_slice(&row);
    }
    let w = std::array::from_fn(|_| rng.uniform(-0.5, 0.5));
    Data { x, y, w, b: 0.1 }
}

/// The primal, and through `#[differentiate]` grad's `logistic_backward`.
#[differentiate(wrt(w, b))]
pub fn logistic(w: [f64; D], b: f64, x: &[f64], y: &[f64]) -> f64 {
    let n = y.len();
    let mut total = 0.0;
    for i in 0..n {
        let mut z = b;
        for j in 0..D {
            z += w[j] * x[i * D + j];
        }
        total += bce(sigmoid(z), y[i]);
    }
    total / n as f64
}

/// The gradient by hand: one pass accumulating `Σ (p_i − y_i) x_i`, scaled by
/// `1/N` at the end.
#[inline]
pub fn logistic_hand(w: &[f64; D], b: f64, x: &[f64], y: &[f64]) -> (f64, LogisticGrad) {
    let n = y.len();
    assert_eq!(x.len(), n * D, "x is not N × D");
    let mut total = 0.0;
    let mut gw = [0.0; D];
    let mut gb = 0.0;
    for (row, &yi) in x.chunks_exact(D).zip(y) {
        let z = w.iter().zip(row).fold(b, |z, (wj, xj)| z + wj * xj);
        let (loss, dz) = hand_bce_dz(hand_sigmoid(z), yi);
        total += loss;
        for (g, xj) in gw.iter_mut().zip(row) {
            *g += dz * xj;
        }
        gb += dz;
    }
    let scale = 1.0 / n as f64;
    (
        total / n as f64,
        LogisticGrad {
            w: gw.map(|g| g * scale),
            b: gb * scale,
        },
    )
}

pub fn answer(name: &'static str, value: f64, grad: &LogisticGrad) -> Answer {
    let mut gradient = grad.w.to_vec();
    gradient.push(grad.b);
    Answer::new(name, value, gradient)
}
