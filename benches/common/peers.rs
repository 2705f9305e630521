//! The sigmoid and the ε-clamped cross-entropy for the peers' number types,
//! written as their users would: `1 / (1 + e^−z)`, and a clamp that tests the
//! primal value (so the gradient passes on the closed interval `[ε, 1 − ε]`
//! and is zero outside, as in grad and PyTorch).

use super::EPS;
use echidna::{Reverse, Scalar};
use num_dual::DualNum;
use num_traits::Float as _;

/// `sigmoid` for num-dual's numbers.
#[inline]
pub fn dual_sigmoid<D: DualNum<Primitive = f64> + Copy>(z: D) -> D {
    (D::from(1.0) + (-z).exp()).recip()
}

/// The notebook's `bce` for num-dual's numbers.
#[inline]
pub fn dual_bce<D: DualNum<Primitive = f64> + Copy>(p: D, y: f64) -> D {
    let p = if p < EPS {
        D::from(EPS)
    } else if p > 1.0 - EPS {
        D::from(1.0 - EPS)
    } else {
        p
    };
    -(p.ln() * y + (-p + 1.0).ln() * (1.0 - y))
}

/// `sigmoid` on echidna's tape.
#[inline]
pub fn tape_sigmoid(z: Reverse<f64>) -> Reverse<f64> {
    1.0 / (1.0 + (-z).exp())
}

/// The notebook's `bce` on echidna's tape.
#[inline]
pub fn tape_bce(p: Reverse<f64>, y: f64) -> Reverse<f64> {
    let p = if p.value() < EPS {
        Reverse::constant(EPS)
    } else if p.value() > 1.0 - EPS {
        Reverse::constant(1.0 - EPS)
    } else {
        p
    };
    -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
}
