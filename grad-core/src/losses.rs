//! Loss functions.

use crate::activations::relu;
use crate::derivatives::bce_clamp;
use crate::Float;

/// Binary cross-entropy of a predicted probability `p` against a `target`
/// (normally `0` or `1`, but any value is accepted):
/// `−(t · ln(p̂) + (1 − t) · ln(1 − p̂))` with `p̂ = clamp(p, ε, 1 − ε)`,
/// `ε =` [`EPSILON`](crate::EPSILON) (1e-7).
///
/// This is exactly the seed notebook's `bce_loss`
/// (`torch.clamp(y_pred, eps, 1 - eps)` then the formula above), so the
/// loss is finite for every `p` in `[0, 1]`: at most `−ln(ε) ≈ 16.118` per
/// sample for a hard target. The price of the clamp is that the loss is flat
/// outside `[ε, 1 − ε]`. NaN propagates.
///
/// When `p` comes from [`sigmoid`](crate::sigmoid), prefer
/// [`bce_with_logits`](crate::bce_with_logits), which needs no clamp and
/// keeps a useful gradient for confident wrong predictions.
///
/// Derivatives: with `p̂` as above,
/// `∂/∂p = clamp'(p) · (p̂ − t) / (p̂ (1 − p̂))`, where `clamp'(p)` is
/// [`derivatives::bce_clamp_grad`](crate::derivatives::bce_clamp_grad)
/// (`1` on the closed interval `[ε, 1 − ε]`, `0` outside, as PyTorch's
/// `clamp`); `∂/∂t = ln(1 − p̂) − ln(p̂)`.
///
/// For `f64` on targets with FMA the two logarithms are grad's own
/// table-driven kernel, as in [`sigmoid`](crate::sigmoid)'s `exp`.
///
/// # Example
///
/// The seed notebook's neuron: `w = 1, b = 0, x = 6`, target `0`.
///
/// ```
/// use grad_core::{bce, sigmoid};
///
/// let loss = bce(sigmoid(1.0_f64 * 6.0 + 0.0), 0.0);
/// assert!((loss - 6.0025).abs() < 5e-5);
/// assert!(bce(0.0_f32, 1.0).is_finite());
/// ```
#[inline(always)]
pub fn bce<T: Float>(p: T, target: T) -> T {
    let p = bce_clamp(p);
    -(target * p.runtime_ln() + (T::ONE - target) * (T::ONE - p).runtime_ln())
}

/// Binary cross-entropy taken from a logit `z`, i.e. the loss of
/// `p = σ(z)` against `target`, without forming `p`:
/// `max(z, 0) − z · t + ln(1 + e^−|z|)`.
///
/// Equal to `−(t · ln σ(z) + (1 − t) · ln(1 − σ(z)))` (no clamp: this is
/// PyTorch's `binary_cross_entropy_with_logits`, not [`bce`]`(σ(z), t)`,
/// which saturates near `−ln(ε)` for large `|z|`). Finite for every finite
/// `z` (for `|z| = 1e4` it is about `1e4`, never `∞` or NaN); NaN
/// propagates.
///
/// Derivatives: `∂/∂z = σ(z) − t`, `∂/∂t = −z`.
///
/// # Example
///
/// ```
/// use grad_core::{bce_with_logits, sigmoid};
///
/// let z = 0.8_f64;
/// let direct = -(sigmoid(z).ln());
/// assert!((bce_with_logits(z, 1.0) - direct).abs() < 1e-15);
/// assert_eq!(bce_with_logits(-1e4_f32, 1.0), 1e4);
/// ```
#[inline]
pub fn bce_with_logits<T: Float>(z: T, target: T) -> T {
    // ln(1 + e^z) - z t, with softplus written in its stable form.
    relu(z) - z * target + (-z.abs()).exp().ln_1p()
}

/// Squared error of a prediction against a target, `(p − t)²`.
///
/// Overflows to `∞` only when the difference exceeds the square root of the
/// type's largest value; NaN propagates.
///
/// Derivatives: `∂/∂p = 2 (p − t)`, `∂/∂t = −2 (p − t)`.
///
/// # Example
///
/// ```
/// use grad_core::mse;
///
/// assert_eq!(mse(3.0_f64, 1.0), 4.0);
/// assert_eq!(mse(-0.5_f32, 0.5), 1.0);
/// ```
#[inline]
pub fn mse<T: Float>(p: T, target: T) -> T {
    let d = p - target;
    d * d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::assert_gradient;
    use crate::derivatives::bce_clamp_grad;
    use crate::sigmoid;

    macro_rules! tests_for {
        ($module:ident, $t:ident, $tol:expr) => {
            mod $module {
                use super::*;
                use approx::{assert_abs_diff_eq, assert_relative_eq};

                type F = $t;
                const TOL: F = $tol;

                /// The seed notebook: w = 1, b = 0, x = 6, target = 0 gives
                /// loss 6.0025, dL/dw = 5.9852, dL/db = 0.9975.
                #[test]
                fn notebook_neuron() {
                    let (w, b, x, t): (F, F, F, F) = (1.0, 0.0, 6.0, 0.0);
                    let p = sigmoid(w * x + b);
                    let loss = bce(p, t);
                    assert_abs_diff_eq!(loss, 6.0025, epsilon = 5e-5);
                    assert_eq!(format!("{loss:.4}"), "6.0025");
                    // Chain rule through the documented derivatives.
                    let pc = bce_clamp(p);
                    let dl_dp = bce_clamp_grad(p) * (pc - t) / (pc * (1.0 - pc));
                    let dl_dz = dl_dp * p * (1.0 - p);
                    assert_eq!(format!("{:.4}", dl_dz * x), "5.9852");
                    assert_eq!(format!("{:.4}", dl_dz), "0.9975");
                }

                #[test]
                fn bce_values() {
                    // Plain formula in the interior.
                    for (p, t) in [(0.3, 1.0), (0.3, 0.0), (0.9, 1.0), (0.5, 0.25)] {
                        let (p, t): (F, F) = (p, t);
                        let direct = -(t * p.ln() + (1.0 - t) * (1.0 - p).ln());
                        assert_relative_eq!(bce(p, t), direct, max_relative = TOL);
                    }
                    assert_relative_eq!(
                        bce::<F>(0.5, 1.0),
                        core::f64::consts::LN_2 as F,
                        max_relative = TOL
                    );
                }

                #[test]
                fn bce_is_finite_at_the_ends() {
                    let eps = <F as Float>::EPSILON;
                    let worst = -eps.ln();
                    for (p, t) in [
                        (0.0, 0.0),
                        (0.0, 1.0),
                        (1.0, 0.0),
                        (1.0, 1.0),
                        (-3.0, 1.0),
                        (7.0, 0.0),
                    ] {
                        let loss = bce::<F>(p, t);
                        assert!(loss.is_finite() && loss >= 0.0, "bce({p}, {t}) = {loss}");
                    }
                    // Confident and wrong: the clamp caps the loss at -ln(ε).
                    assert_relative_eq!(bce::<F>(0.0, 1.0), worst, max_relative = TOL);
                    assert_relative_eq!(
                        bce::<F>(1.0, 0.0),
                        -(1.0 - (1.0 - eps)).ln(),
                        max_relative = TOL
                    );
                    // Confident and right: close to zero.
                    assert!(bce::<F>(1.0, 1.0) < 1e-6);
                    assert!(bce::<F>(0.0, 0.0) < 1e-6);
                    assert!(bce(F::NAN, 1.0).is_nan());
                }

                #[test]
                fn bce_with_logits_values() {
                    for z in [-4.0, -0.5, 0.0, 0.5, 4.0] {
                        let z: F = z;
                        for t in [0.0, 1.0, 0.3] {
                            let s = sigmoid(z);
                            let direct = -(t * s.ln() + (1.0 - t) * (1.0 - s).ln());
                            assert_relative_eq!(
                                bce_with_logits(z, t),
                                direct,
                                max_relative = 1e3 * TOL
                            );
                        }
                    }
                }

                #[test]
                fn bce_with_logits_is_stable() {
                    assert_eq!(bce_with_logits::<F>(1e4, 0.0), 1e4);
                    assert_eq!(bce_with_logits::<F>(-1e4, 1.0), 1e4);
                    assert_eq!(bce_with_logits::<F>(1e4, 1.0), 0.0);
                    assert_eq!(bce_with_logits::<F>(-1e4, 0.0), 0.0);
                    for z in [F::MAX, F::MIN, 1e30, -1e30] {
                        for t in [0.0, 1.0] {
                            assert!(!bce_with_logits::<F>(z, t).is_nan(), "z = {z}, t = {t}");
                        }
                    }
                    assert!(bce_with_logits(F::NAN, 1.0).is_nan());
                }

                #[test]
                fn mse_values() {
                    assert_eq!(mse::<F>(3.0, 1.0), 4.0);
                    assert_eq!(mse::<F>(1.0, 3.0), 4.0);
                    assert_eq!(mse::<F>(2.0, 2.0), 0.0);
                    assert!(mse(F::NAN, 0.0).is_nan());
                }

                /// The documented derivative formulas agree with central
                /// differences (away from the clamp's kinks).
                #[test]
                fn derivatives_match_finite_differences() {
                    // Not too close to 0 or 1: the f32 step is about 5e-3 and the
                    // truncation error grows like 1 / p³.
                    for p in [0.15, 0.3, 0.5, 0.7, 0.85] {
                        for t in [0.0, 1.0, 0.4] {
                            let (p, t): (F, F) = (p, t);
                            let pc = bce_clamp(p);
                            let dp = bce_clamp_grad(p) * (pc - t) / (pc * (1.0 - pc));
                            let dt = (1.0 - pc).ln() - pc.ln();
                            assert_gradient(|v| bce(v[0], v[1]), &[p, t], &[dp, dt]);
                            assert_gradient(
                                |v| mse(v[0], v[1]),
                                &[p, t],
                                &[2.0 * (p - t), -2.0 * (p - t)],
                            );
                        }
                    }
                    for z in [-3.0, -0.4, 0.4, 3.0] {
                        for t in [0.0, 1.0, 0.4] {
                            let (z, t): (F, F) = (z, t);
                            assert_gradient(
                                |v| bce_with_logits(v[0], v[1]),
                                &[z, t],
                                &[sigmoid(z) - t, -z],
                            );
                        }
                    }
                    // Outside the clamp the loss is flat in p.
                    for p in [-0.5, 1.5] {
                        let p: F = p;
                        let pc = bce_clamp(p);
                        let dp = bce_clamp_grad(p) * (pc - 1.0) / (pc * (1.0 - pc));
                        assert_eq!(dp, 0.0);
                        assert_gradient(|v| bce(v[0], 1.0), &[p], &[dp]);
                    }
                }
            }
        };
    }

    tests_for!(for_f32, f32, 1e-6);
    tests_for!(for_f64, f64, 1e-14);
}
