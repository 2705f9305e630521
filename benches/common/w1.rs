//! W1, the seed notebook's neuron: `z = w·x + b`, `p = sigmoid(z)`, the
//! ε-clamped binary cross-entropy; the gradient in `(w, b)`.

use super::{hand_bce_dz, hand_sigmoid, Answer};
use grad::prelude::*;

/// The notebook's point: cgpa 6, target 0, `w = 1`, `b = 0`.
pub const POINT: (f64, f64, f64, f64) = (1.0, 0.0, 6.0, 0.0);

/// The primal, and through `#[differentiate]` grad's `neuron_backward`.
#[differentiate(wrt(w, b))]
pub fn neuron(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let z = w * x + b;
    let p = sigmoid(z);
    bce(p, y)
}

/// The gradient by hand: `∂L/∂z = p − y` inside the clamp.
#[inline]
pub fn neuron_hand(w: f64, b: f64, x: f64, y: f64) -> (f64, NeuronGrad) {
    let z = w * x + b;
    let p = hand_sigmoid(z);
    let (loss, dz) = hand_bce_dz(p, y);
    (loss, NeuronGrad { w: dz * x, b: dz })
}

pub fn answer(name: &'static str, value: f64, grad: &NeuronGrad) -> Answer {
    Answer::new(name, value, vec![grad.w, grad.b])
}
