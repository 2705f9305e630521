//! The [`Float`] trait: the scalar types the runtime is generic over.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::check::Tolerance;

/// Private supertrait that keeps [`Float`] closed to `f32` and `f64`.
///
/// It also carries per-type data the crate needs internally but does not
/// want to promise publicly.
pub(crate) mod sealed {
    use crate::check::Tolerance;

    pub trait Sealed {
        /// Default tolerance of a finite-difference gradient check in this
        /// type (see [`Tolerance::for_type`]).
        const TOLERANCE: Tolerance;

        /// The runtime's [`tanh`](crate::tanh) in this type: the
        /// branch-free kernel of `crate::branch_free`.
        fn tanh_branch_free(self) -> Self;

        /// `e^self` as the runtime's [`sigmoid`](crate::sigmoid) computes
        /// it: `crate::kernels::runtime_exp` for `f64`, `exp` for `f32`.
        fn runtime_exp(self) -> Self;

        /// `ln(self)` as the runtime's [`bce`](crate::bce) computes it:
        /// `crate::kernels::runtime_ln` for `f64`, `ln` for `f32`.
        fn runtime_ln(self) -> Self;
    }
}

/// A floating-point scalar that grad differentiates: `f32` or `f64`.
///
/// Every runtime function ([`sigmoid`](crate::sigmoid),
/// [`bce`](crate::bce), the helpers in [`derivatives`](crate::derivatives), …)
/// is generic over `T: Float`, so the code the `#[differentiate]` macro emits
/// works unchanged for both precisions. The methods mirror the inherent
/// methods of the standard float types one to one (same names, same
/// semantics, including NaN and infinity behaviour), so a body written for
/// `f64` also compiles for a generic `T: Float`.
///
/// The trait is *sealed*: it is implemented for `f32` and `f64` only and
/// cannot be implemented outside this crate. That lets new methods be added
/// without a breaking change, and lets the runtime rely on IEEE-754
/// semantics.
///
/// # `EPSILON` is not machine epsilon
///
/// [`Float::EPSILON`] is the runtime's probability clamp (1e-7, see
/// [`crate::EPSILON`]), **not** the spacing of floats near 1. The latter is
/// [`Float::MACHINE_EPSILON`]. Beware that for a concrete type the inherent
/// constant wins: `f64::EPSILON` is the machine epsilon, while
/// `<f64 as Float>::EPSILON` and `T::EPSILON` (for generic `T: Float`) are
/// the 1e-7 clamp.
///
/// # Example
///
/// ```
/// use grad_core::Float;
///
/// fn logistic<T: Float>(x: T) -> T {
///     T::ONE / (T::ONE + (-x).exp())
/// }
///
/// assert_eq!(logistic(0.0_f32), 0.5);
/// assert_eq!(logistic(0.0_f64), 0.5);
/// assert_eq!(<f64 as Float>::EPSILON, 1e-7);
/// ```
pub trait Float:
    sealed::Sealed
    + Copy
    + PartialOrd
    + PartialEq
    + Debug
    + Display
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Send
    + Sync
    + 'static
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `0.5`.
    const HALF: Self;
    /// `2`.
    const TWO: Self;
    /// The probability clamp [`crate::EPSILON`] (1e-7) converted to this
    /// type (rounded to nearest for `f32`). Not the machine epsilon; see
    /// [`Float::MACHINE_EPSILON`].
    const EPSILON: Self;
    /// The difference between 1 and the next representable value
    /// (`f32::EPSILON` / `f64::EPSILON`).
    const MACHINE_EPSILON: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// Not a number.
    const NAN: Self;

    /// Converts from `f64`, rounding to nearest (exact for `f64`).
    #[must_use]
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64`; always exact.
    #[must_use]
    fn to_f64(self) -> f64;

    /// Whether `self` is NaN.
    #[must_use]
    fn is_nan(self) -> bool;
    /// Whether `self` is neither infinite nor NaN.
    #[must_use]
    fn is_finite(self) -> bool;
    /// Whether `self` is positive or negative infinity.
    #[must_use]
    fn is_infinite(self) -> bool;

    /// Absolute value.
    #[must_use]
    fn abs(self) -> Self;
    /// `1` if the sign bit is clear, `-1` if it is set (so `signum(±0) = ±1`),
    /// NaN for NaN.
    #[must_use]
    fn signum(self) -> Self;
    /// `1 / self`.
    #[must_use]
    fn recip(self) -> Self;
    /// Square root; NaN for negative input (except `-0`).
    #[must_use]
    fn sqrt(self) -> Self;
    /// Cube root.
    #[must_use]
    fn cbrt(self) -> Self;
    /// `e^self`.
    #[must_use]
    fn exp(self) -> Self;
    /// `2^self`.
    #[must_use]
    fn exp2(self) -> Self;
    /// `e^self - 1`, accurate near zero.
    #[must_use]
    fn exp_m1(self) -> Self;
    /// Natural logarithm.
    #[must_use]
    fn ln(self) -> Self;
    /// `ln(1 + self)`, accurate near zero.
    #[must_use]
    fn ln_1p(self) -> Self;
    /// Base-2 logarithm.
    #[must_use]
    fn log2(self) -> Self;
    /// Base-10 logarithm.
    #[must_use]
    fn log10(self) -> Self;
    /// Logarithm of `self` in base `base`.
    #[must_use]
    fn log(self, base: Self) -> Self;
    /// Sine (radians).
    #[must_use]
    fn sin(self) -> Self;
    /// Cosine (radians).
    #[must_use]
    fn cos(self) -> Self;
    /// Tangent (radians).
    #[must_use]
    fn tan(self) -> Self;
    /// Arcsine, in `[-π/2, π/2]`.
    #[must_use]
    fn asin(self) -> Self;
    /// Arccosine, in `[0, π]`.
    #[must_use]
    fn acos(self) -> Self;
    /// Arctangent, in `[-π/2, π/2]`.
    #[must_use]
    fn atan(self) -> Self;
    /// Four-quadrant arctangent of `self / other`, in `[-π, π]`.
    #[must_use]
    fn atan2(self, other: Self) -> Self;
    /// Hyperbolic sine.
    #[must_use]
    fn sinh(self) -> Self;
    /// Hyperbolic cosine.
    #[must_use]
    fn cosh(self) -> Self;
    /// Hyperbolic tangent.
    #[must_use]
    fn tanh(self) -> Self;
    /// Inverse hyperbolic sine.
    #[must_use]
    fn asinh(self) -> Self;
    /// Inverse hyperbolic cosine.
    #[must_use]
    fn acosh(self) -> Self;
    /// Inverse hyperbolic tangent.
    #[must_use]
    fn atanh(self) -> Self;
    /// The larger of `self` and `other`; if one is NaN, the other is returned.
    #[must_use]
    fn max(self, other: Self) -> Self;
    /// The smaller of `self` and `other`; if one is NaN, the other is returned.
    #[must_use]
    fn min(self, other: Self) -> Self;
    /// `self` raised to an integer power.
    #[must_use]
    fn powi(self, n: i32) -> Self;
    /// `self` raised to a floating-point power.
    #[must_use]
    fn powf(self, n: Self) -> Self;
    /// `sqrt(self² + other²)` without intermediate overflow or underflow.
    #[must_use]
    fn hypot(self, other: Self) -> Self;
    /// `self * a + b` (fused when the target supports it).
    #[must_use]
    fn mul_add(self, a: Self, b: Self) -> Self;
}

/// Implements [`Float`] for a primitive float type by forwarding to its
/// inherent methods. `<$t>::name` resolves to the inherent method (inherent
/// items take precedence over trait items), so this never recurses.
macro_rules! impl_float {
    ($t:ident, tolerance: $tol:expr, exp: $exp:path, ln: $ln:path) => {
        impl sealed::Sealed for $t {
            const TOLERANCE: Tolerance = $tol;

            // f32 is computed in f64 and rounded once: within an ulp of f32
            // (the f64 kernel's 2 ulp are about 2⁻²⁸ of one), and still
            // vectorisable (the conversions are single instructions).
            #[inline(always)]
            #[allow(clippy::cast_possible_truncation, clippy::unnecessary_cast)]
            fn tanh_branch_free(self) -> Self {
                crate::branch_free::tanh(self as f64) as $t
            }

            #[inline(always)]
            fn runtime_exp(self) -> Self {
                $exp(self)
            }

            #[inline(always)]
            fn runtime_ln(self) -> Self {
                $ln(self)
            }
        }

        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const HALF: Self = 0.5;
            const TWO: Self = 2.0;
            // Written as a literal rather than `crate::EPSILON as $t` so the
            // f64 case is not a no-op cast; `1e-7` rounds to nearest in f32.
            const EPSILON: Self = 1e-7;
            const MACHINE_EPSILON: Self = $t::EPSILON;
            const INFINITY: Self = $t::INFINITY;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            const NAN: Self = $t::NAN;

            #[inline]
            #[allow(clippy::cast_possible_truncation, clippy::unnecessary_cast)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            #[allow(clippy::unnecessary_cast)]
            fn to_f64(self) -> f64 {
                self as f64
            }

            impl_float!(@unary $t -> bool: is_nan, is_finite, is_infinite);
            impl_float!(@unary $t -> Self:
                abs, signum, recip, sqrt, cbrt, exp, exp2, exp_m1, ln, ln_1p, log2, log10,
                sin, cos, tan, asin, acos, atan, sinh, cosh, tanh, asinh, acosh, atanh);
            impl_float!(@binary $t: log, atan2, max, min, powf, hypot);

            #[inline]
            fn powi(self, n: i32) -> Self {
                <$t>::powi(self, n)
            }
            #[inline]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
        }
    };
    (@unary $t:ident -> $ret:ty: $($name:ident),+) => {
        $(
            #[inline]
            fn $name(self) -> $ret {
                <$t>::$name(self)
            }
        )+
    };
    (@binary $t:ident: $($name:ident),+) => {
        $(
            #[inline]
            fn $name(self, other: Self) -> Self {
                <$t>::$name(self, other)
            }
        )+
    };
}

// f32 keeps libm's functions: the kernels are f64 only, and computing f32
// through them would change f32's bits for no measured gain.
impl_float!(
    f32,
    tolerance: Tolerance { relative: 1e-3, absolute: 1e-4 },
    exp: f32::exp,
    ln: f32::ln
);
impl_float!(
    f64,
    tolerance: Tolerance { relative: 1e-6, absolute: 1e-8 },
    exp: crate::kernels::runtime_exp,
    ln: crate::kernels::runtime_ln
);

#[cfg(test)]
mod tests {
    use super::Float;

    fn roundtrip<T: Float>() {
        assert_eq!(T::ZERO.to_f64(), 0.0);
        assert_eq!(T::ONE.to_f64(), 1.0);
        assert_eq!(T::HALF.to_f64(), 0.5);
        assert_eq!(T::TWO.to_f64(), 2.0);
        assert_eq!(T::from_f64(1.5).to_f64(), 1.5);
        assert!(T::NAN.is_nan());
        assert!(T::INFINITY.is_infinite() && T::INFINITY > T::ZERO);
        assert!(T::NEG_INFINITY.is_infinite() && T::NEG_INFINITY < T::ZERO);
        assert!(!T::ONE.is_infinite() && T::ONE.is_finite());
        // The clamp constant and the machine epsilon are different things
        // (for f32 the clamp is even the smaller of the two).
        assert!(T::EPSILON != T::MACHINE_EPSILON);
        assert!((T::EPSILON.to_f64() - crate::EPSILON).abs() < 1e-14);
    }

    #[test]
    fn constants_f32() {
        roundtrip::<f32>();
        assert_eq!(<f32 as Float>::EPSILON, 1e-7_f32);
        assert_eq!(<f32 as Float>::MACHINE_EPSILON, f32::EPSILON);
    }

    #[test]
    fn constants_f64() {
        roundtrip::<f64>();
        assert_eq!(<f64 as Float>::EPSILON, crate::EPSILON);
        assert_eq!(<f64 as Float>::MACHINE_EPSILON, f64::EPSILON);
    }

    /// The trait methods forward to the inherent ones (and do not recurse).
    #[test]
    fn methods_forward_to_std() {
        let x = 0.3_f64;
        assert_eq!(Float::exp(x), x.exp());
        assert_eq!(Float::ln_1p(x), x.ln_1p());
        assert_eq!(Float::powi(x, 3), x.powi(3));
        assert_eq!(Float::powf(x, 2.5), x.powf(2.5));
        assert_eq!(Float::mul_add(x, 2.0, 1.0), x.mul_add(2.0, 1.0));
        assert_eq!(Float::hypot(x, 0.4), x.hypot(0.4));
        assert_eq!(Float::log(x, 3.0), x.log(3.0));
        assert_eq!(Float::max(f64::NAN, x), x);
        assert_eq!(Float::min(x, f64::NAN), x);
        let y = 0.3_f32;
        assert_eq!(Float::tanh(y), y.tanh());
        assert_eq!(Float::atan2(y, -1.0), y.atan2(-1.0));
        assert_eq!(Float::signum(-0.0_f32), -1.0);
    }
}
