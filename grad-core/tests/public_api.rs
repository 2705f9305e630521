//! The public contract of `grad_core` as seen from outside the crate: the
//! names the `#[differentiate]` macro emits and DESIGN.md promises.

use approx::assert_abs_diff_eq;
use grad_core::check::{assert_gradient, central_difference, check_gradient, Tolerance};
use grad_core::derivatives::{
    abs_grad, bce_clamp, bce_clamp_grad, clamp_grad, clamp_grad_hi, clamp_grad_lo, mask_zero,
    max_grad, min_grad, powf_exp_mask, relu_grad,
};
use grad_core::{
    bce, bce_with_logits, clamp, leaky_relu, mse, relu, sigmoid, softplus, Float, EPSILON,
};

/// The seed notebook, forward and backward, for one precision.
fn notebook<T: Float>() -> (f64, f64, f64) {
    let (w, b, x, y) = (T::ONE, T::ZERO, T::from_f64(6.0), T::ZERO);
    let z = w * x + b;
    let p = sigmoid(z);
    let loss = bce(p, y);
    let pc = bce_clamp(p);
    let dloss_dz = bce_clamp_grad(p) * (pc - y) / (pc * (T::ONE - pc)) * p * (T::ONE - p);
    (loss.to_f64(), (dloss_dz * x).to_f64(), dloss_dz.to_f64())
}

#[test]
fn seed_notebook_in_both_precisions() {
    for (loss, dw, db) in [notebook::<f32>(), notebook::<f64>()] {
        assert_abs_diff_eq!(loss, 6.0025, epsilon = 5e-5);
        assert_abs_diff_eq!(dw, 5.9852, epsilon = 5e-5);
        assert_abs_diff_eq!(db, 0.9975, epsilon = 5e-5);
    }
}

#[test]
fn seed_notebook_gradient_checks() {
    let loss = |v: &[f64]| bce(sigmoid(v[0] * 6.0 + v[1]), 0.0);
    let (_, dw, db) = notebook::<f64>();
    assert_gradient(loss, &[1.0, 0.0], &[dw, db]);
    let numeric = central_difference(loss, &[1.0, 0.0]);
    assert_abs_diff_eq!(numeric[0], dw, epsilon = 1e-8);
}

#[test]
fn epsilon_is_the_notebook_clamp() {
    assert_eq!(EPSILON, 1e-7);
    assert_eq!(<f64 as Float>::EPSILON, EPSILON);
    assert_eq!(<f32 as Float>::EPSILON, 1e-7_f32);
}

/// Every runtime function and helper is callable on `f32` and `f64` with
/// the documented arity (a compile-time check of the names).
#[test]
fn every_name_exists_for_both_precisions() {
    fn all<T: Float>(x: T) -> T {
        let h = T::HALF;
        sigmoid(x)
            + relu(x)
            + leaky_relu(x, h)
            + softplus(x)
            + clamp(x, -h, h)
            + bce(h, h)
            + bce_with_logits(x, h)
            + mse(x, h)
            + relu_grad(x)
            + abs_grad(x)
            + max_grad(x, h)
            + min_grad(x, h)
            + clamp_grad(x, -h, h)
            + clamp_grad_lo(x, -h, h)
            + clamp_grad_hi(x, -h, h)
            + bce_clamp(x)
            + bce_clamp_grad(x)
            + mask_zero(x, h)
            + powf_exp_mask(x, h, h)
    }
    assert!(all(0.3_f32).is_finite());
    assert!(all(0.3_f64).is_finite());
    assert!(check_gradient(
        |v: &[f32]| all(v[0]),
        &[0.3],
        &[0.0],
        Tolerance::for_type::<f32>()
    )
    .is_err());
}
