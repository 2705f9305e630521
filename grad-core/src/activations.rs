//! Activation functions and `clamp`.
//!
//! Each function is a few instructions with no allocation; the branches are
//! simple selects between already-computed values, which LLVM lowers to
//! branch-free code.

use crate::Float;

/// The logistic sigmoid, `σ(x) = 1 / (1 + e^-x)`.
///
/// Evaluated in the two-branch form that never overflows: with
/// `e = e^-|x|` (always in `(0, 1]`), `σ(x) = 1 / (1 + e)` for `x ≥ 0` and
/// `e / (1 + e)` for `x < 0`. The result is in `[0, 1]` for every input,
/// exactly `0` or `1` once `|x|` is large enough (`σ(±1e4)` is `1` / `0`,
/// never NaN); `σ(±∞) = 1 / 0`, and NaN propagates.
///
/// Derivative: `σ'(x) = σ(x) (1 − σ(x))`.
///
/// For `f64` on targets with FMA (e.g. built with `-C target-cpu=native`),
/// `e^-|x|` is grad's own table-driven kernel rather than libm's `exp`:
/// within an ulp of it, as fast one call at a time, and inlinable, so a loop
/// over samples vectorises. Elsewhere, and for `f32`, it is `exp`.
///
/// # Example
///
/// ```
/// use grad_core::sigmoid;
///
/// assert_eq!(sigmoid(0.0_f64), 0.5);
/// assert!((sigmoid(6.0_f64) - 0.997_527_376).abs() < 1e-9);
/// assert_eq!(sigmoid(-1e4_f32), 0.0);
/// ```
#[inline(always)]
pub fn sigmoid<T: Float>(x: T) -> T {
    // One `exp` of a non-positive argument serves both branches; only the
    // numerator differs, so the branch is a select.
    let e = crate::float::sealed::Sealed::runtime_exp(-x.abs());
    let numerator = if x >= T::ZERO { T::ONE } else { e };
    numerator / (T::ONE + e)
}

/// The hyperbolic tangent, `tanh(x) = (e^x − e^-x) / (e^x + e^-x)`, written
/// so that loops over it vectorise.
///
/// `x.tanh()` calls the platform's libm, one call per element; this
/// function is plain arithmetic and selects (Cephes' rational approximation
/// below `|x| = 0.625`, `1 − 2 / (e^{2|x|} + 1)` above, with an inlined
/// `exp`), so in a loop over the units of a layer LLVM computes two
/// (SSE2) or four (AVX2) at once. It is within 2 ulp of `f64::tanh` (the
/// tests sample 400 000 points), odd (`tanh(-x) = -tanh(x)` bit for bit) and
/// gives the same bits on every target, vectorised or not; `f32` is computed
/// in `f64` and rounded once. `tanh(±0) = ±0`, `tanh(±∞) = ±1`, NaN
/// propagates.
///
/// Use `x.tanh()` where the standard library's exact bits matter; the macro
/// differentiates both, and they have the same derivative,
/// `tanh'(x) = 1 − tanh(x)²`.
///
/// # Example
///
/// ```
/// use grad_core::tanh;
///
/// assert_eq!(tanh(0.0_f64), 0.0);
/// assert!((tanh(0.5_f64) - 0.5_f64.tanh()).abs() <= 2.0 * f64::EPSILON);
/// assert_eq!(tanh(-1e4_f32), -1.0);
/// ```
#[inline]
pub fn tanh<T: Float>(x: T) -> T {
    crate::float::sealed::Sealed::tanh_branch_free(x)
}

/// The rectified linear unit, `relu(x) = max(x, 0)`.
///
/// NaN propagates (`relu(NaN)` is NaN) and `relu(-0.0)` is `+0.0`.
///
/// Derivative (PyTorch's convention): `1` for `x > 0`, `0` for `x ≤ 0`, so
/// `relu'(0) = 0`; see [`derivatives::relu_grad`](crate::derivatives::relu_grad).
///
/// # Example
///
/// ```
/// use grad_core::relu;
///
/// assert_eq!(relu(2.5_f64), 2.5);
/// assert_eq!(relu(-2.5_f32), 0.0);
/// ```
#[inline]
pub fn relu<T: Float>(x: T) -> T {
    // `x <= 0` is false for NaN, so NaN is passed through unchanged.
    if x <= T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// The leaky rectified linear unit: `x` for `x > 0`, `slope · x` otherwise.
///
/// NaN propagates.
///
/// Derivative (PyTorch's convention): with respect to `x`, `1` for `x > 0`
/// and `slope` for `x ≤ 0` (so the derivative at `0` is `slope`); with
/// respect to `slope`, `0` for `x > 0` and `x` otherwise. In terms of
/// [`derivatives::relu_grad`](crate::derivatives::relu_grad) `r`:
/// `∂/∂x = r + slope · (1 − r)` and `∂/∂slope = x · (1 − r)`.
///
/// # Example
///
/// ```
/// use grad_core::leaky_relu;
///
/// assert_eq!(leaky_relu(3.0_f64, 0.01), 3.0);
/// assert_eq!(leaky_relu(-3.0_f64, 0.5), -1.5);
/// ```
#[inline]
pub fn leaky_relu<T: Float>(x: T, slope: T) -> T {
    if x > T::ZERO {
        x
    } else {
        slope * x
    }
}

/// The softplus function, `ln(1 + e^x)`, a smooth approximation of
/// [`relu`].
///
/// Evaluated as `max(x, 0) + ln_1p(e^-|x|)`, which never overflows: the
/// exponential's argument is non-positive. For large `x` the result is `x`
/// (`softplus(1e4) = 1e4`), for very negative `x` it underflows gracefully
/// to `0`, `softplus(∞) = ∞`, `softplus(-∞) = 0`, and NaN propagates.
///
/// Derivative: `softplus'(x) = σ(x)` ([`sigmoid`](crate::sigmoid)).
///
/// # Example
///
/// ```
/// use grad_core::softplus;
///
/// assert!((softplus(0.0_f64) - 2.0_f64.ln()).abs() < 1e-15);
/// assert_eq!(softplus(1e4_f32), 1e4);
/// ```
#[inline]
pub fn softplus<T: Float>(x: T) -> T {
    relu(x) + (-x.abs()).exp().ln_1p()
}

/// `x` limited to the interval `[lo, hi]`:
/// `if x < lo { lo } else if x > hi { hi } else { x }`.
///
/// Unlike [`f64::clamp`] this never panics: NaN in `x` passes through
/// unchanged, and if `lo > hi` the result is `lo` for `x < lo` and `hi`
/// otherwise (the comparisons are evaluated in the order written). A NaN
/// bound is ignored.
///
/// Derivatives (PyTorch's convention, the gradient passes on the **closed**
/// interval): `∂/∂x = 1` for `lo ≤ x ≤ hi` and `0` otherwise;
/// `∂/∂lo = 1` where the result is `lo` because `x < lo`, `∂/∂hi = 1` where
/// the result is `hi` because `x > hi`. See
/// [`derivatives::clamp_grad`](crate::derivatives::clamp_grad),
/// [`clamp_grad_lo`](crate::derivatives::clamp_grad_lo) and
/// [`clamp_grad_hi`](crate::derivatives::clamp_grad_hi).
///
/// # Example
///
/// ```
/// use grad_core::clamp;
///
/// assert_eq!(clamp(5.0_f64, 0.0, 1.0), 1.0);
/// assert_eq!(clamp(-5.0_f32, 0.0, 1.0), 0.0);
/// assert_eq!(clamp(0.25_f64, 0.0, 1.0), 0.25);
/// assert!(clamp(f64::NAN, 0.0, 1.0).is_nan());
/// ```
#[inline]
pub fn clamp<T: Float>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::assert_gradient;
    use crate::Float;

    macro_rules! tests_for {
        ($module:ident, $t:ty, $tol:expr) => {
            mod $module {
                use super::*;
                use approx::assert_relative_eq;

                type F = $t;
                const TOL: F = $tol;

                #[test]
                fn sigmoid_values() {
                    assert_eq!(sigmoid::<F>(0.0), 0.5);
                    assert_relative_eq!(
                        sigmoid::<F>(1.0),
                        F::from_f64(0.731_058_578_630_004_9),
                        max_relative = TOL
                    );
                    assert_relative_eq!(
                        sigmoid::<F>(-1.0),
                        F::from_f64(0.268_941_421_369_995_1),
                        max_relative = TOL
                    );
                    assert_relative_eq!(
                        sigmoid::<F>(6.0),
                        F::from_f64(0.997_527_376_843_365_2),
                        max_relative = TOL
                    );
                    // Symmetry σ(-x) = 1 - σ(x).
                    for x in [0.1, 0.7, 3.0, 10.0] {
                        assert_relative_eq!(
                            sigmoid::<F>(-x) + sigmoid::<F>(x),
                            1.0,
                            max_relative = TOL
                        );
                    }
                    // Far tail on the negative side keeps relative accuracy.
                    assert_relative_eq!(
                        sigmoid::<F>(-30.0),
                        (-30.0 as F).exp() / (1.0 + (-30.0 as F).exp()),
                        max_relative = TOL
                    );
                }

                #[test]
                fn sigmoid_is_stable() {
                    for x in [1e4, -1e4, F::MAX, F::MIN, F::INFINITY, F::NEG_INFINITY] {
                        let s = sigmoid::<F>(x);
                        assert!(
                            s.is_finite() && (0.0..=1.0).contains(&s),
                            "sigmoid({x}) = {s}"
                        );
                    }
                    assert_eq!(sigmoid::<F>(1e4), 1.0);
                    assert_eq!(sigmoid::<F>(-1e4), 0.0);
                    assert!(sigmoid(F::NAN).is_nan());
                }

                #[test]
                fn relu_values() {
                    assert_eq!(relu::<F>(0.7), 0.7);
                    assert_eq!(relu::<F>(-0.7), 0.0);
                    assert_eq!(relu::<F>(0.0), 0.0);
                    assert!(relu::<F>(-0.0).is_sign_positive());
                    assert!(relu(F::NAN).is_nan());
                    assert_eq!(relu(F::INFINITY), F::INFINITY);
                    assert_eq!(relu(F::NEG_INFINITY), 0.0);
                }

                #[test]
                fn leaky_relu_values() {
                    assert_eq!(leaky_relu::<F>(2.0, 0.1), 2.0);
                    assert_relative_eq!(leaky_relu::<F>(-2.0, 0.1), -0.2, max_relative = TOL);
                    assert_eq!(leaky_relu::<F>(0.0, 0.1), 0.0);
                    assert!(leaky_relu(F::NAN, 0.1).is_nan());
                    // slope = 0 is relu, slope = 1 is the identity.
                    assert_eq!(leaky_relu::<F>(-2.0, 0.0), 0.0);
                    assert_eq!(leaky_relu::<F>(-2.0, 1.0), -2.0);
                }

                #[test]
                fn softplus_values() {
                    assert_relative_eq!(
                        softplus::<F>(0.0),
                        core::f64::consts::LN_2 as F,
                        max_relative = TOL
                    );
                    for x in [-5.0, -0.5, 0.3, 2.0, 8.0] {
                        let direct = (1.0 as F + (x as F).exp()).ln();
                        assert_relative_eq!(softplus::<F>(x), direct, max_relative = TOL);
                    }
                }

                #[test]
                fn softplus_is_stable() {
                    assert_eq!(softplus::<F>(1e4), 1e4);
                    assert_eq!(softplus::<F>(-1e4), 0.0);
                    assert_eq!(softplus(F::INFINITY), F::INFINITY);
                    assert_eq!(softplus(F::NEG_INFINITY), 0.0);
                    assert!(softplus::<F>(F::MAX).is_finite());
                    assert!(softplus(F::NAN).is_nan());
                    // Accurate in the negative tail, where ln(1 + e^x) ≈ e^x.
                    assert_relative_eq!(
                        softplus::<F>(-40.0),
                        (-40.0 as F).exp(),
                        max_relative = TOL
                    );
                }

                #[test]
                fn clamp_values() {
                    assert_eq!(clamp::<F>(0.5, 0.0, 1.0), 0.5);
                    assert_eq!(clamp::<F>(-0.5, 0.0, 1.0), 0.0);
                    assert_eq!(clamp::<F>(1.5, 0.0, 1.0), 1.0);
                    assert_eq!(clamp::<F>(0.0, 0.0, 1.0), 0.0);
                    assert_eq!(clamp::<F>(1.0, 0.0, 1.0), 1.0);
                    assert!(clamp::<F>(F::NAN, 0.0, 1.0).is_nan());
                    // Never panics, unlike `F::clamp`.
                    assert_eq!(clamp::<F>(0.0, 2.0, 1.0), 2.0);
                    assert_eq!(clamp::<F>(1.5, 2.0, 1.0), 2.0);
                    assert_eq!(clamp::<F>(3.0, 2.0, 1.0), 1.0);
                    assert_eq!(clamp::<F>(0.5, F::NAN, 1.0), 0.5);
                    assert_eq!(clamp::<F>(1.5, F::NAN, 1.0), 1.0);
                }

                /// Finite-difference checks of the documented derivatives away
                /// from kinks.
                #[test]
                fn derivatives_match_finite_differences() {
                    for x in [-3.0, -0.7, 0.2, 0.7, 4.0] {
                        let x: F = x;
                        let s = sigmoid(x);
                        assert_gradient(|v| sigmoid(v[0]), &[x], &[s * (1.0 - s)]);
                        assert_gradient(|v| softplus(v[0]), &[x], &[s]);
                        let r: F = if x > 0.0 { 1.0 } else { 0.0 };
                        assert_gradient(|v| relu(v[0]), &[x], &[r]);
                        let slope: F = 0.1;
                        assert_gradient(
                            |v| leaky_relu(v[0], v[1]),
                            &[x, slope],
                            &[r + slope * (1.0 - r), x * (1.0 - r)],
                        );
                    }
                }
            }
        };
    }

    tests_for!(for_f32, f32, 1e-6);
    tests_for!(for_f64, f64, 1e-14);
}
