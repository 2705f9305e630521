//! Gradient checking against central finite differences.
//!
//! Use these to test a gradient, whether produced by `#[differentiate]` or
//! written by hand, against a numerical estimate:
//!
//! ```
//! use grad_core::check::{assert_gradient, check_gradient, Tolerance};
//!
//! // f(x, y) = x² y, ∇f = (2xy, x²)
//! let f = |v: &[f64]| v[0] * v[0] * v[1];
//! let (x, y) = (1.5, -2.0);
//! assert_gradient(f, &[x, y], &[2.0 * x * y, x * x]);
//!
//! // A wrong gradient is reported with the offending component.
//! let err = check_gradient(f, &[x, y], &[2.0 * x * y, 2.0 * x], Tolerance::default())
//!     .unwrap_err();
//! assert_eq!(err.index, 1);
//! ```
//!
//! # Accuracy and limits
//!
//! The central difference has truncation error `O(h² f‴)` and rounding error
//! `O(ε |f| / h)`, with `ε` the machine epsilon of the type; the step used
//! here balances the two, leaving roughly `ε^(2/3)` relative error
//! (about `4e-11` for `f64`, `2e-5` for `f32`) for well-scaled functions.
//! The default [`Tolerance`] of each type leaves a wide margin above that.
//!
//! Do not check at a kink (`relu` at `0`, a tie in `max`, the end of a
//! `clamp` interval): the central difference there is the average of the two
//! one-sided slopes, while grad follows PyTorch's conventions. Likewise keep
//! the step `h` (about `5e-3 · max(1, |x|)` for `f32`, `6e-6 · max(1, |x|)`
//! for `f64`) inside the function's domain and away from singularities.

use core::fmt;

use crate::float::sealed::Sealed;
use crate::Float;

/// Relative and absolute tolerance of a gradient check.
///
/// An analytic component `a` matches its numerical estimate `n` when they
/// are equal (this covers equal infinities) or when
/// `|a − n| ≤ absolute + relative · max(|a|, |n|)`. NaN never matches.
///
/// [`Tolerance::default`] is the tolerance for `f64`; use
/// [`Tolerance::for_type`] when checking `f32` code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Allowed error relative to the larger magnitude of the two values.
    pub relative: f64,
    /// Allowed absolute error; matters for components near zero.
    pub absolute: f64,
}

impl Tolerance {
    /// The default tolerance for checking functions of type `T`:
    /// `relative: 1e-6, absolute: 1e-8` for `f64` and
    /// `relative: 1e-3, absolute: 1e-4` for `f32`.
    ///
    /// ```
    /// use grad_core::check::Tolerance;
    ///
    /// assert_eq!(Tolerance::for_type::<f64>(), Tolerance::default());
    /// assert!(Tolerance::for_type::<f32>().relative > Tolerance::default().relative);
    /// ```
    #[inline]
    #[must_use]
    pub const fn for_type<T: Float>() -> Self {
        <T as Sealed>::TOLERANCE
    }

    /// The largest error allowed between `a` and `b`.
    #[inline]
    fn allowed(self, a: f64, b: f64) -> f64 {
        self.absolute + self.relative * a.abs().max(b.abs())
    }
}

impl Default for Tolerance {
    /// The tolerance for `f64`, `Tolerance::for_type::<f64>()`.
    #[inline]
    fn default() -> Self {
        Self::for_type::<f64>()
    }
}

/// An analytic gradient that disagrees with its finite-difference estimate.
///
/// Describes the lowest-index component that failed; [`mismatches`] counts
/// all of them. The values are converted to `f64` (exactly) whatever type
/// was checked.
///
/// [`mismatches`]: GradientMismatch::mismatches
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GradientMismatch {
    /// Index of the first component that failed.
    pub index: usize,
    /// The analytic (tested) value of that component.
    pub analytic: f64,
    /// The central-difference estimate of that component.
    pub numeric: f64,
    /// `|analytic − numeric|` (NaN if either is NaN).
    pub error: f64,
    /// The largest error the tolerance allowed for that component.
    pub allowed: f64,
    /// How many components failed in total.
    pub mismatches: usize,
    /// Number of components checked.
    pub len: usize,
}

impl fmt::Display for GradientMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradient mismatch at index {}: analytic {:e}, numeric {:e}, error {:e} > allowed {:e}",
            self.index, self.analytic, self.numeric, self.error, self.allowed
        )?;
        if self.mismatches > 1 {
            write!(
                f,
                " ({} of {} components mismatch)",
                self.mismatches, self.len
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for GradientMismatch {}

/// Numerical gradient of `f` at `x` by central differences.
///
/// Component `i` is `(f(x + h eᵢ) − f(x − h eᵢ)) / (2h)` with the step
/// `h = ∛ε · max(1, |xᵢ|)`, `ε` the machine epsilon of `T` — the step that
/// balances truncation and rounding error, scaled so it stays meaningful
/// for large coordinates. The divisor is the *representable* step
/// `(xᵢ + h) − (xᵢ − h)`, not `2h`, and the quotient is formed in `f64`
/// (exact subtraction of two `f32` values), which removes the conversion
/// error of the step and, for `f32`, the rounding of the difference.
///
/// `f` is evaluated `2 · x.len()` times, on a copy of `x` with one
/// coordinate perturbed. Non-finite coordinates give NaN components.
///
/// ```
/// use grad_core::check::central_difference;
///
/// let g = central_difference(|v: &[f64]| v[0].sin() * v[1], &[0.5, 2.0]);
/// assert!((g[0] - 2.0 * 0.5_f64.cos()).abs() < 1e-9);
/// assert!((g[1] - 0.5_f64.sin()).abs() < 1e-9);
/// ```
#[must_use]
pub fn central_difference<T: Float>(f: impl Fn(&[T]) -> T, x: &[T]) -> Vec<T> {
    let scale = T::MACHINE_EPSILON.cbrt();
    let mut probe = x.to_vec();
    let mut gradient = Vec::with_capacity(x.len());
    for (i, &xi) in x.iter().enumerate() {
        let h = scale * T::ONE.max(xi.abs());
        let (up, down) = (xi + h, xi - h);
        probe[i] = up;
        let f_up = f(&probe);
        probe[i] = down;
        let f_down = f(&probe);
        probe[i] = xi;
        let slope = (f_up.to_f64() - f_down.to_f64()) / (up.to_f64() - down.to_f64());
        gradient.push(T::from_f64(slope));
    }
    gradient
}

/// Compares an analytic gradient of `f` at `x` with [`central_difference`].
///
/// Returns `Ok(())` if every component matches within `tolerance` (see
/// [`Tolerance`] for the criterion), otherwise the first mismatching
/// component.
///
/// # Errors
///
/// A [`GradientMismatch`] describing the first component outside the
/// tolerance, if any.
///
/// # Panics
///
/// If `analytic.len() != x.len()`: that is a bug in the calling code, not a
/// wrong gradient.
///
/// ```
/// use grad_core::check::{check_gradient, Tolerance};
/// use grad_core::sigmoid;
///
/// let f = |v: &[f32]| sigmoid(v[0]);
/// let s = sigmoid(0.3_f32);
/// assert!(check_gradient(f, &[0.3], &[s * (1.0 - s)], Tolerance::for_type::<f32>()).is_ok());
/// assert!(check_gradient(f, &[0.3], &[s], Tolerance::for_type::<f32>()).is_err());
/// ```
pub fn check_gradient<T: Float>(
    f: impl Fn(&[T]) -> T,
    x: &[T],
    analytic: &[T],
    tolerance: Tolerance,
) -> Result<(), GradientMismatch> {
    assert_eq!(
        analytic.len(),
        x.len(),
        "check_gradient: the analytic gradient has {} components but x has {}",
        analytic.len(),
        x.len()
    );
    let numeric = central_difference(f, x);
    let mut first: Option<GradientMismatch> = None;
    let mut mismatches = 0;
    for (index, (&a, &n)) in analytic.iter().zip(&numeric).enumerate() {
        let (a, n) = (a.to_f64(), n.to_f64());
        let error = (a - n).abs();
        let allowed = tolerance.allowed(a, n);
        // `error <= allowed` is false for NaN; an infinite error against an
        // infinite allowance (one side infinite) must still fail.
        let ok = a == n || (error <= allowed && error.is_finite());
        if !ok {
            mismatches += 1;
            first.get_or_insert(GradientMismatch {
                index,
                analytic: a,
                numeric: n,
                error,
                allowed,
                mismatches: 0,
                len: x.len(),
            });
        }
    }
    match first {
        None => Ok(()),
        Some(mismatch) => Err(GradientMismatch {
            mismatches,
            ..mismatch
        }),
    }
}

/// Asserts that `analytic` is the gradient of `f` at `x`, using
/// [`Tolerance::for_type::<T>()`](Tolerance::for_type).
///
/// For another tolerance, use [`check_gradient`] and unwrap its result.
///
/// # Panics
///
/// With the [`GradientMismatch`] message if a component does not match, and
/// if `analytic.len() != x.len()`.
///
/// ```
/// use grad_core::check::assert_gradient;
///
/// assert_gradient(|v: &[f64]| v[0].exp(), &[1.0], &[1.0_f64.exp()]);
/// ```
///
/// ```should_panic
/// use grad_core::check::assert_gradient;
///
/// assert_gradient(|v: &[f64]| v[0].exp(), &[1.0], &[1.0]); // wrong
/// ```
#[track_caller]
pub fn assert_gradient<T: Float>(f: impl Fn(&[T]) -> T, x: &[T], analytic: &[T]) {
    if let Err(mismatch) = check_gradient(f, x, analytic, Tolerance::for_type::<T>()) {
        panic!("{mismatch} (x = {x:?})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    /// f(x, y, z) = x² y + sin z + e^(xz).
    fn f<T: Float>(v: &[T]) -> T {
        v[0] * v[0] * v[1] + v[2].sin() + (v[0] * v[2]).exp()
    }

    fn grad_f<T: Float>(v: &[T]) -> Vec<T> {
        let (x, y, z) = (v[0], v[1], v[2]);
        let e = (x * z).exp();
        vec![T::TWO * x * y + z * e, x * x, z.cos() + x * e]
    }

    #[test]
    fn central_difference_is_accurate_f64() {
        for x in [[0.5, -1.0, 0.3], [2.0, 3.0, -0.7], [10.0, 1e-3, 0.05]] {
            let numeric = central_difference(f::<f64>, &x);
            for (n, a) in numeric.iter().zip(grad_f(&x)) {
                assert_relative_eq!(*n, a, max_relative = 1e-8, epsilon = 1e-9);
            }
        }
    }

    #[test]
    fn central_difference_is_accurate_f32() {
        for x in [[0.5_f32, -1.0, 0.3], [2.0, 3.0, -0.7]] {
            let numeric = central_difference(f::<f32>, &x);
            for (n, a) in numeric.iter().zip(grad_f(&x)) {
                assert_relative_eq!(*n, a, max_relative = 1e-3, epsilon = 1e-4);
            }
        }
    }

    #[test]
    fn central_difference_scales_the_step() {
        // A relative step keeps large coordinates accurate: at x = 1e6 a
        // fixed step of ∛ε would be lost below the spacing of floats.
        let g = central_difference(|v: &[f64]| v[0] * v[0], &[1e6]);
        assert_relative_eq!(g[0], 2e6, max_relative = 1e-9);
        let g = central_difference(|v: &[f32]| v[0] * v[0], &[1e4]);
        assert_relative_eq!(g[0], 2e4, max_relative = 1e-5);
        // The input is not modified and empty input is fine.
        assert!(central_difference(|_: &[f64]| 1.0, &[]).is_empty());
        assert!(central_difference(|v: &[f64]| v[0], &[f64::NAN])[0].is_nan());
    }

    #[test]
    fn passes_a_correct_gradient() {
        for x in [[0.5, -1.0, 0.3], [2.0, 3.0, -0.7]] {
            assert_eq!(
                check_gradient(f::<f64>, &x, &grad_f(&x), Tolerance::default()),
                Ok(())
            );
            assert_gradient(f::<f64>, &x, &grad_f(&x));
            let x32 = x.map(|v| v as f32);
            assert_gradient(f::<f32>, &x32, &grad_f(&x32));
        }
    }

    #[test]
    fn catches_a_wrong_gradient() {
        let x = [0.5, -1.0, 0.3];
        let mut wrong = grad_f(&x);
        wrong[1] *= 1.01;
        wrong[2] = -wrong[2];
        let err = check_gradient(f::<f64>, &x, &wrong, Tolerance::default()).unwrap_err();
        assert_eq!(err.index, 1);
        assert_eq!(err.analytic, wrong[1]);
        assert_relative_eq!(err.numeric, grad_f(&x)[1], max_relative = 1e-8);
        assert!(err.error > err.allowed);
        assert_eq!(err.mismatches, 2);
        let message = err.to_string();
        assert!(message.starts_with("gradient mismatch at index 1: analytic"));
        assert!(
            message.ends_with("(2 of 3 components mismatch)"),
            "{message}"
        );

        // f32: a small but real error is still caught.
        let x32 = x.map(|v| v as f32);
        let mut wrong32 = grad_f(&x32);
        wrong32[0] += 0.01;
        let err = check_gradient(f::<f32>, &x32, &wrong32, Tolerance::for_type::<f32>());
        assert_eq!(err.map_err(|e| (e.index, e.mismatches)), Err((0, 1)));
    }

    #[test]
    fn non_finite_values() {
        let tol = Tolerance::default();
        // NaN never matches, not even NaN.
        let nan = |_: &[f64]| f64::NAN;
        assert!(check_gradient(nan, &[1.0], &[f64::NAN], tol).is_err());
        assert!(check_gradient(|v: &[f64]| v[0], &[1.0], &[f64::NAN], tol).is_err());
        // An infinite analytic value against a finite estimate fails.
        assert!(check_gradient(|v: &[f64]| v[0], &[1.0], &[f64::INFINITY], tol).is_err());
    }

    #[test]
    fn tolerance_criterion() {
        let tol = Tolerance {
            relative: 1e-2,
            absolute: 1e-3,
        };
        // f(x) = 3x, exact numeric gradient 3: allowed error 1e-3 + 3e-2.
        let lin = |v: &[f64]| 3.0 * v[0];
        assert!(check_gradient(lin, &[0.2], &[3.03], tol).is_ok());
        assert!(check_gradient(lin, &[0.2], &[3.04], tol).is_err());
        // Near zero the absolute part dominates.
        let flat = |_: &[f64]| 1.0;
        assert!(check_gradient(flat, &[0.2], &[9e-4], tol).is_ok());
        assert!(check_gradient(flat, &[0.2], &[2e-3], tol).is_err());
        assert_eq!(Tolerance::default(), Tolerance::for_type::<f64>());
    }

    #[test]
    #[should_panic(expected = "gradient mismatch at index 0")]
    fn assert_gradient_panics_on_mismatch() {
        assert_gradient(|v: &[f32]| v[0] * v[0], &[3.0], &[5.0]);
    }

    #[test]
    #[should_panic(expected = "the analytic gradient has 1 components but x has 2")]
    fn length_mismatch_panics() {
        let _ = check_gradient(|v: &[f64]| v[0], &[1.0, 2.0], &[1.0], Tolerance::default());
    }
}
