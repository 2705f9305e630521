//! W4, a multi-layer perceptron 8-16-1: `tanh` hidden layer, sigmoid output,
//! the mean ε-clamped binary cross-entropy over a batch; the gradient in
//! every weight and bias (fixed-size arrays).
//!
//! The hidden layer calls the runtime's `tanh` (`grad::tanh`, from the
//! prelude), in the primal, in grad's gradient and in the hand-written
//! gradient alike: it is branch-free arithmetic, so the loop over the 16
//! units vectorises, where `f64::tanh` is one libm call per unit.

use super::{hand_bce_dz, hand_sigmoid, Answer, Rng};
use grad::prelude::*;

/// Batch size.
pub const BATCH: usize = 256;
/// Inputs.
pub const IN: usize = 8;
/// Hidden units.
pub const HIDDEN: usize = 16;

/// The network's parameters.
#[derive(Clone, Copy)]
pub struct Params {
    pub w1: [[f64; IN]; HIDDEN],
    pub b1: [f64; HIDDEN],
    pub w2: [f64; HIDDEN],
    pub b2: f64,
}

/// A batch and the point the gradient is taken at.
pub struct Data {
    /// `BATCH × IN`, row-major.
    pub x: Vec<f64>,
    /// Labels, 0 or 1.
    pub y: Vec<f64>,
    pub params: Params,
}

/// Inputs uniform in `[−1, 1)`, labels from a fixed nonlinear rule, weights
/// Glorot-uniform, biases small.
pub fn data(n: usize) -> Data {
    let mut rng = Rng::new(0x5EED_0004);
    let mut x = Vec::with_capacity(n * IN);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: [f64; IN] = std::array::from_fn(|_| rng.uniform(-1.0, 1.0));
        y.push(
            if row[0] * row[1] + 0.5 * row[2] - row[3] * row[3] + 0.2 > 0.0 {
                1.0
            } else {
                0.0
            },
        );
        x.extend_from_slice(&row);
    }
    let a1 = (6.0 / (IN + HIDDEN) as f64).sqrt();
    let a2 = (6.0 / (HIDDEN + 1) as f64).sqrt();
    let w1 = std::array::from_fn(|_| std::array::from_fn(|_| rng.uniform(-a1, a1)));
    let b1 = std::array::from_fn(|_| rng.uniform(-0.1, 0.1));
    let w2 = std::array::from_fn(|_| rng.uniform(-a2, a2));
    let b2 = rng.uniform(-0.1, 0.1);
    Data {
        x,
        y,
        params: Params { w1, b1, w2, b2 },
    }
}

/// The primal, and through `#[differentiate]` grad's `mlp_backward`.
#[differentiate(wrt(w1, b1, w2, b2))]
pub fn mlp(
    w1: [[f64; IN]; HIDDEN],
    b1: [f64; HIDDEN],
    w2: [f64; HIDDEN],
    b2: f64,
    x: &[f64],
    y: &[f64],
) -> f64 {
    let n = y.len();
    let mut total = 0.0;
    for i in 0..n {
        let mut h = [0.0; HIDDEN];
        for j in 0..HIDDEN {
            let mut a = b1[j];
            for k in 0..IN {
                a += w1[j][k] * x[i * IN + k];
            }
            h[j] = tanh(a);
        }
        let mut z = b2;
        for j in 0..HIDDEN {
            z += w2[j] * h[j];
        }
        total += bce(sigmoid(z), y[i]);
    }
    total / n as f64
}

/// The gradient by hand (backpropagation written out): per sample the
/// forward pass, `∂L/∂z = p − y`, then `∂L/∂a_j = ∂L/∂z · w2_j · (1 − h_j²)`;
/// everything accumulated over the batch and scaled by `1/N` at the end.
///
/// Written with index loops over the layers' fixed-size arrays, as
/// backpropagation is usually written; the bounds are constants.
#[inline]
#[allow(clippy::needless_range_loop)]
pub fn mlp_hand(p: &Params, x: &[f64], y: &[f64], g: &mut MlpGrad) -> f64 {
    let n = y.len();
    assert_eq!(x.len(), n * IN, "x is not BATCH × IN");
    *g = MlpGrad::default();
    let mut total = 0.0;
    for (row, &yi) in x.chunks_exact(IN).zip(y) {
        let row: &[f64; IN] = row.try_into().expect("rows of IN features");
        let mut h = [0.0; HIDDEN];
        for j in 0..HIDDEN {
            let mut a = p.b1[j];
            for k in 0..IN {
                a += p.w1[j][k] * row[k];
            }
            h[j] = tanh(a);
        }
        let mut z = p.b2;
        for j in 0..HIDDEN {
            z += p.w2[j] * h[j];
        }
        let (loss, dz) = hand_bce_dz(hand_sigmoid(z), yi);
        total += loss;
        g.b2 += dz;
        for j in 0..HIDDEN {
            g.w2[j] += dz * h[j];
            let da = dz * p.w2[j] * (1.0 - h[j] * h[j]);
            g.b1[j] += da;
            for k in 0..IN {
                g.w1[j][k] += da * row[k];
            }
        }
    }
    let scale = 1.0 / n as f64;
    for j in 0..HIDDEN {
        for k in 0..IN {
            g.w1[j][k] *= scale;
        }
        g.b1[j] *= scale;
        g.w2[j] *= scale;
    }
    g.b2 *= scale;
    total / n as f64
}

/// The gradient flattened as `w1` row by row, `b1`, `w2`, `b2`.
pub fn flatten(w1: &[[f64; IN]; HIDDEN], b1: &[f64], w2: &[f64], b2: f64) -> Vec<f64> {
    let mut v: Vec<f64> = w1.iter().flatten().copied().collect();
    v.extend_from_slice(b1);
    v.extend_from_slice(w2);
    v.push(b2);
    v
}

pub fn answer(name: &'static str, value: f64, g: &MlpGrad) -> Answer {
    Answer::new(name, value, flatten(&g.w1, &g.b1, &g.w2, g.b2))
}
