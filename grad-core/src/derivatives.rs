//! Helpers called by the derivative rules that `#[differentiate]` emits.
//!
//! Most primitives differentiate into ordinary arithmetic, but at a kink
//! (`relu` at 0, a tie in `max`, the ends of a `clamp` interval, …) the
//! derivative is a *convention*, and a few smooth formulas produce `0/0` or
//! `0·∞` at isolated points where the true derivative is well defined. The
//! functions here encode those conventions in one place. They follow
//! PyTorch's autograd throughout, so gradients computed by grad agree with
//! the ones a PyTorch user would get.
//!
//! # Derivatives of the helpers themselves
//!
//! Higher-order modes (Hessians, Hessian-vector products) differentiate
//! these helpers again:
//!
//! * the step/mask functions [`relu_grad`], [`abs_grad`], [`max_grad`],
//!   [`min_grad`], [`clamp_grad`], [`clamp_grad_lo`], [`clamp_grad_hi`] and
//!   [`bce_clamp_grad`] are piecewise constant: their derivative is `0` with
//!   respect to every argument;
//! * [`bce_clamp`] is a clamp: its derivative is [`bce_clamp_grad`];
//! * [`mask_zero`]`(c, v)`, [`gate`]`(s, v)` and [`powf_exp_mask`]`(x, y, v)`
//!   are linear in `v` and piecewise constant in the other arguments: their
//!   derivative is the same mask applied to the derivative of `v`, i.e.
//!   `d mask_zero(c, v) = mask_zero(c, dv)`.
//!
//! All functions are branch-free selects in practice, allocate nothing, and
//! are `#[inline]`.

use crate::activations::clamp;
use crate::Float;

/// Derivative of [`relu`](crate::relu): `1` for `x > 0`, `0` otherwise.
///
/// PyTorch's convention `relu'(0) = 0`. NaN gives `0`.
///
/// ```
/// use grad_core::derivatives::relu_grad;
///
/// assert_eq!(relu_grad(0.7_f64), 1.0);
/// assert_eq!(relu_grad(0.0_f64), 0.0);
/// assert_eq!(relu_grad(-0.7_f32), 0.0);
/// ```
#[inline]
pub fn relu_grad<T: Float>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else {
        T::ZERO
    }
}

/// Derivative of `abs`: the sign of `x`, `-1`, `0` or `1`.
///
/// PyTorch's convention `abs'(0) = 0` (for both `+0` and `-0`; unlike
/// [`f64::signum`], which gives `±1` there). NaN gives NaN.
///
/// ```
/// use grad_core::derivatives::abs_grad;
///
/// assert_eq!(abs_grad(-2.0_f64), -1.0);
/// assert_eq!(abs_grad(0.0_f64), 0.0);
/// assert_eq!(abs_grad(-0.0_f32), 0.0);
/// assert!(abs_grad(f64::NAN).is_nan());
/// ```
#[inline]
pub fn abs_grad<T: Float>(x: T) -> T {
    // Written as selects on comparisons rather than via `signum`, whose NaN
    // check LLVM lowers to a branch. NaN fails both comparisons.
    let positive = if x > T::ZERO { T::ONE } else { T::ZERO };
    let negative = if x < T::ZERO { T::ONE } else { T::ZERO };
    if x.is_nan() {
        x
    } else {
        positive - negative
    }
}

/// Derivative of `a.max(b)` with respect to `a`: `1` if `a > b`, `0.5` if
/// `a == b`, `0` if `a < b`. The derivative with respect to `b` is
/// `max_grad(b, a)`.
///
/// PyTorch's convention: a tie splits the gradient evenly, so the two
/// partial derivatives always sum to `1`.
///
/// NaN follows the standard `max`, which returns the other operand when one
/// is NaN: the gradient goes to the operand that was returned, so
/// `max_grad(NaN, b) = 0` and `max_grad(a, NaN) = 1` (and `0` when both are
/// NaN).
///
/// ```
/// use grad_core::derivatives::max_grad;
///
/// assert_eq!(max_grad(2.0_f64, 1.0), 1.0);
/// assert_eq!(max_grad(1.0_f64, 1.0), 0.5);
/// assert_eq!(max_grad(1.0_f32, 2.0), 0.0);
/// ```
#[inline]
pub fn max_grad<T: Float>(a: T, b: T) -> T {
    // Whether `a.max(b)` returned `a` (and not because of a tie). The
    // non-short-circuit `&`/`|` keep this a pair of selects, not branches.
    let returned_a = (a > b) | (b.is_nan() & !a.is_nan());
    let grad = if returned_a { T::ONE } else { T::ZERO };
    if a == b {
        T::HALF
    } else {
        grad
    }
}

/// Derivative of `a.min(b)` with respect to `a`: `1` if `a < b`, `0.5` if
/// `a == b`, `0` if `a > b`. The derivative with respect to `b` is
/// `min_grad(b, a)`.
///
/// PyTorch's convention: a tie splits the gradient evenly. NaN is handled as
/// in [`max_grad`]: the gradient goes to the operand the standard `min`
/// returned, so `min_grad(NaN, b) = 0` and `min_grad(a, NaN) = 1`.
///
/// ```
/// use grad_core::derivatives::min_grad;
///
/// assert_eq!(min_grad(1.0_f64, 2.0), 1.0);
/// assert_eq!(min_grad(1.0_f64, 1.0), 0.5);
/// assert_eq!(min_grad(2.0_f32, 1.0), 0.0);
/// ```
#[inline]
pub fn min_grad<T: Float>(a: T, b: T) -> T {
    // As in `max_grad`, with the comparison reversed.
    let returned_a = (a < b) | (b.is_nan() & !a.is_nan());
    let grad = if returned_a { T::ONE } else { T::ZERO };
    if a == b {
        T::HALF
    } else {
        grad
    }
}

/// Derivative of [`clamp`]`(x, lo, hi)` with respect to `x`:
/// `1` for `lo ≤ x ≤ hi`, `0` otherwise.
///
/// PyTorch's convention: the gradient passes on the **closed** interval,
/// including both end points. NaN in `x` gives `0`; if `lo > hi` the result
/// is always `0` (the clamp then never returns `x`).
///
/// ```
/// use grad_core::derivatives::clamp_grad;
///
/// assert_eq!(clamp_grad(0.5_f64, 0.0, 1.0), 1.0);
/// assert_eq!(clamp_grad(1.0_f64, 0.0, 1.0), 1.0);
/// assert_eq!(clamp_grad(1.5_f32, 0.0, 1.0), 0.0);
/// ```
#[inline]
pub fn clamp_grad<T: Float>(x: T, lo: T, hi: T) -> T {
    if lo <= x && x <= hi {
        T::ONE
    } else {
        T::ZERO
    }
}

/// Derivative of [`clamp`]`(x, lo, hi)` with respect to `lo`:
/// `1` for `x < lo` (the clamp returned `lo`), `0` otherwise.
///
/// At `x == lo` the gradient goes to `x` ([`clamp_grad`]), not to `lo`, so
/// the three partial derivatives of a clamp are never `1` at the same time.
///
/// ```
/// use grad_core::derivatives::clamp_grad_lo;
///
/// assert_eq!(clamp_grad_lo(-1.0_f64, 0.0, 1.0), 1.0);
/// assert_eq!(clamp_grad_lo(0.0_f64, 0.0, 1.0), 0.0);
/// ```
#[inline]
pub fn clamp_grad_lo<T: Float>(x: T, lo: T, hi: T) -> T {
    // `hi` does not matter, it is taken for symmetry with the other
    // clamp helpers so the rule table can pass the same arguments.
    let _ = hi;
    if x < lo {
        T::ONE
    } else {
        T::ZERO
    }
}

/// Derivative of [`clamp`]`(x, lo, hi)` with respect to `hi`:
/// `1` for `x > hi` (the clamp returned `hi`), `0` otherwise.
///
/// At `x == hi` the gradient goes to `x` ([`clamp_grad`]). If `lo > hi` and
/// `x < lo`, the clamp returned `lo`, so this is `0` even if `x > hi`.
///
/// ```
/// use grad_core::derivatives::clamp_grad_hi;
///
/// assert_eq!(clamp_grad_hi(2.0_f64, 0.0, 1.0), 1.0);
/// assert_eq!(clamp_grad_hi(1.0_f64, 0.0, 1.0), 0.0);
/// ```
#[inline]
pub fn clamp_grad_hi<T: Float>(x: T, lo: T, hi: T) -> T {
    // Mirrors the order of the comparisons in `clamp`.
    if x < lo {
        T::ZERO
    } else if x > hi {
        T::ONE
    } else {
        T::ZERO
    }
}

/// The clamp applied by [`bce`](crate::bce): `p` limited to
/// `[ε, 1 − ε]` with `ε =` [`Float::EPSILON`] (1e-7).
///
/// Its derivative is [`bce_clamp_grad`]. NaN passes through.
///
/// ```
/// use grad_core::derivatives::bce_clamp;
///
/// assert_eq!(bce_clamp(0.0_f64), 1e-7);
/// assert_eq!(bce_clamp(0.25_f64), 0.25);
/// assert_eq!(bce_clamp(1.0_f64), 1.0 - 1e-7);
/// ```
#[inline]
pub fn bce_clamp<T: Float>(p: T) -> T {
    clamp(p, T::EPSILON, T::ONE - T::EPSILON)
}

/// Derivative of [`bce_clamp`]: `1` for `ε ≤ p ≤ 1 − ε`, `0` otherwise.
///
/// PyTorch's convention for `clamp` (closed interval). So the derivative of
/// [`bce`](crate::bce) with respect to `p` is
/// `bce_clamp_grad(p) * (pc - t) / (pc * (1 - pc))` with `pc = bce_clamp(p)`:
/// zero where the clamp is active, and never `0/0` since `pc` is in
/// `[ε, 1 − ε]`.
///
/// ```
/// use grad_core::derivatives::bce_clamp_grad;
///
/// assert_eq!(bce_clamp_grad(0.5_f64), 1.0);
/// assert_eq!(bce_clamp_grad(1e-7_f64), 1.0);
/// assert_eq!(bce_clamp_grad(0.0_f32), 0.0);
/// assert_eq!(bce_clamp_grad(1.0_f32), 0.0);
/// ```
#[inline]
pub fn bce_clamp_grad<T: Float>(p: T) -> T {
    clamp_grad(p, T::EPSILON, T::ONE - T::EPSILON)
}

/// `0` if `c == 0`, otherwise `v`.
///
/// Used where a derivative formula is `0/0` or `0·∞` at an isolated point
/// but the derivative (or PyTorch's convention) there is `0`: e.g.
/// `∂ hypot(x, y)/∂x = x / hypot(x, y)` at the origin, or
/// `∂ x^y/∂x = y · x^(y−1)` with `y = 0` at `x = 0`. The result is exactly
/// `+0` whenever `c == 0` (including `c = -0`), even if `v` is NaN or
/// infinite; otherwise `v` is returned unchanged. A NaN `c` returns `v`.
///
/// Linear in `v`: `d mask_zero(c, v) = mask_zero(c, dv)`.
///
/// ```
/// use grad_core::derivatives::mask_zero;
///
/// assert_eq!(mask_zero(0.0_f64, f64::NAN), 0.0);
/// assert_eq!(mask_zero(0.0_f64, f64::INFINITY), 0.0);
/// assert_eq!(mask_zero(2.0_f32, 3.0), 3.0);
/// ```
#[inline]
pub fn mask_zero<T: Float>(c: T, v: T) -> T {
    if c == T::ZERO {
        T::ZERO
    } else {
        v
    }
}

/// The adjoint `d` passed through a gate `s` (a step helper's value:
/// `0`, `½` or `1`): `s · d`, but exactly `0` where `s` is `0`, even if `d`
/// is infinite or NaN.
///
/// How [`relu`](crate::relu), [`clamp`], `max` and `min` pass their gradient
/// on: PyTorch selects rather than multiplies there (`threshold_backward`,
/// `where`), so `relu(x).sqrt()` at `x < 0`, where `sqrt`'s adjoint is
/// `∞`, has gradient `0`, not `0 · ∞ = NaN`.
///
/// Linear in `d`: `d gate(s, d) = gate(s, dd)`; piecewise constant in `s`.
///
/// ```
/// use grad_core::derivatives::gate;
///
/// assert_eq!(gate(0.0_f64, f64::INFINITY), 0.0);
/// assert_eq!(gate(1.0_f64, 2.5), 2.5);
/// assert_eq!(gate(0.5_f32, 3.0), 1.5);
/// ```
#[inline]
pub fn gate<T: Float>(s: T, d: T) -> T {
    if s == T::ZERO {
        T::ZERO
    } else {
        s * d
    }
}

/// `0` if `x == 0` and `y ≥ 0`, otherwise `v`.
///
/// PyTorch's rule for the derivative of `x^y` with respect to the exponent
/// `y`, `x^y · ln x`, at `x = 0`: the formula is `0 · (−∞)` (or `∞ · −∞`),
/// and PyTorch defines it as `0` when `y ≥ 0`. The macro passes the formula's
/// value as `v`; it is returned unchanged everywhere else (so for `x = 0`,
/// `y < 0` it stays `-∞`/NaN, as in PyTorch).
///
/// Linear in `v`: `d powf_exp_mask(x, y, v) = powf_exp_mask(x, y, dv)`.
///
/// ```
/// use grad_core::derivatives::powf_exp_mask;
///
/// let (x, y) = (0.0_f64, 2.0_f64);
/// let naive = x.powf(y) * x.ln(); // 0 · −∞ = NaN
/// assert!(naive.is_nan());
/// assert_eq!(powf_exp_mask(x, y, naive), 0.0);
/// assert_eq!(powf_exp_mask(2.0_f64, 3.0, 5.5), 5.5);
/// ```
#[inline]
pub fn powf_exp_mask<T: Float>(x: T, y: T, v: T) -> T {
    if x == T::ZERO && y >= T::ZERO {
        T::ZERO
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{assert_gradient, central_difference};
    use crate::{bce, relu};

    macro_rules! tests_for {
        ($module:ident, $t:ident) => {
            mod $module {
                use super::*;

                type F = $t;
                const NAN: F = F::NAN;
                const INF: F = F::INFINITY;

                #[test]
                fn relu_grad_convention() {
                    assert_eq!(relu_grad::<F>(0.0), 0.0);
                    assert_eq!(relu_grad::<F>(-0.0), 0.0);
                    assert_eq!(relu_grad::<F>(F::MIN_POSITIVE), 1.0);
                    assert_eq!(relu_grad::<F>(0.7), 1.0);
                    assert_eq!(relu_grad::<F>(-0.7), 0.0);
                    assert_eq!(relu_grad(INF), 1.0);
                    assert_eq!(relu_grad(NAN), 0.0);
                }

                #[test]
                fn abs_grad_convention() {
                    assert_eq!(abs_grad::<F>(0.0), 0.0);
                    assert_eq!(abs_grad::<F>(-0.0), 0.0);
                    assert_eq!(abs_grad::<F>(3.0), 1.0);
                    assert_eq!(abs_grad::<F>(-3.0), -1.0);
                    assert_eq!(abs_grad::<F>(-F::MIN_POSITIVE), -1.0);
                    assert_eq!(abs_grad(-INF), -1.0);
                    assert!(abs_grad(NAN).is_nan());
                }

                #[test]
                fn max_min_grad_convention() {
                    assert_eq!(max_grad::<F>(2.0, 1.0), 1.0);
                    assert_eq!(max_grad::<F>(1.0, 2.0), 0.0);
                    assert_eq!(max_grad::<F>(1.5, 1.5), 0.5);
                    assert_eq!(max_grad::<F>(0.0, -0.0), 0.5);
                    assert_eq!(min_grad::<F>(1.0, 2.0), 1.0);
                    assert_eq!(min_grad::<F>(2.0, 1.0), 0.0);
                    assert_eq!(min_grad::<F>(1.5, 1.5), 0.5);
                    // The two partials always sum to one.
                    for (a, b) in [(1.0, 2.0), (2.0, 1.0), (1.0, 1.0), (NAN, 1.0), (1.0, NAN)] {
                        let (a, b): (F, F) = (a, b);
                        assert_eq!(max_grad(a, b) + max_grad(b, a), 1.0);
                        assert_eq!(min_grad(a, b) + min_grad(b, a), 1.0);
                    }
                    // NaN: the gradient follows the operand std returns.
                    assert_eq!(1.0_f64.max(f64::NAN), 1.0);
                    assert_eq!(max_grad::<F>(NAN, 1.0), 0.0);
                    assert_eq!(max_grad::<F>(1.0, NAN), 1.0);
                    assert_eq!(min_grad::<F>(NAN, 1.0), 0.0);
                    assert_eq!(min_grad::<F>(1.0, NAN), 1.0);
                }

                #[test]
                fn clamp_grad_convention() {
                    let (lo, hi): (F, F) = (-1.0, 2.0);
                    // (x, ∂/∂x, ∂/∂lo, ∂/∂hi); the ends of the closed
                    // interval pass the gradient to x.
                    let cases: [(F, F, F, F); 6] = [
                        (-3.0, 0.0, 1.0, 0.0),
                        (-1.0, 1.0, 0.0, 0.0),
                        (0.5, 1.0, 0.0, 0.0),
                        (2.0, 1.0, 0.0, 0.0),
                        (3.0, 0.0, 0.0, 1.0),
                        (NAN, 0.0, 0.0, 0.0),
                    ];
                    for (x, dx, dlo, dhi) in cases {
                        assert_eq!(clamp_grad(x, lo, hi), dx, "x = {x}");
                        assert_eq!(clamp_grad_lo(x, lo, hi), dlo, "x = {x}");
                        assert_eq!(clamp_grad_hi(x, lo, hi), dhi, "x = {x}");
                    }
                    // Degenerate interval lo == hi: the gradient goes to x.
                    assert_eq!(clamp_grad::<F>(1.0, 1.0, 1.0), 1.0);
                    // Inverted interval lo > hi: exactly one partial is 1,
                    // the one of the value `clamp` returned.
                    for x in [0.0, 1.5, 3.0] {
                        let x: F = x;
                        let (lo, hi): (F, F) = (2.0, 1.0);
                        let sum = clamp_grad(x, lo, hi)
                            + clamp_grad_lo(x, lo, hi)
                            + clamp_grad_hi(x, lo, hi);
                        assert_eq!(sum, 1.0, "x = {x}");
                        let returned_lo = crate::clamp(x, lo, hi) == lo;
                        assert_eq!(clamp_grad_lo(x, lo, hi) == 1.0, returned_lo);
                    }
                }

                #[test]
                fn bce_clamp_convention() {
                    let eps = <F as Float>::EPSILON;
                    let top = 1.0 - eps;
                    assert_eq!(bce_clamp::<F>(0.0), eps);
                    assert_eq!(bce_clamp::<F>(-1.0), eps);
                    assert_eq!(bce_clamp::<F>(1.0), top);
                    assert_eq!(bce_clamp::<F>(0.5), 0.5);
                    assert!(bce_clamp(NAN).is_nan());
                    // Closed interval: both ends pass the gradient.
                    assert_eq!(bce_clamp_grad(eps), 1.0);
                    assert_eq!(bce_clamp_grad(top), 1.0);
                    assert_eq!(bce_clamp_grad::<F>(0.5), 1.0);
                    assert_eq!(bce_clamp_grad::<F>(0.0), 0.0);
                    assert_eq!(bce_clamp_grad::<F>(1.0), 0.0);
                    assert_eq!(bce_clamp_grad(eps / 2.0), 0.0);
                    assert_eq!(bce_clamp_grad(NAN), 0.0);
                    // The loss gradient at the clamp's ends is finite.
                    for p in [0.0, eps, 0.5, top, 1.0] {
                        let pc = bce_clamp::<F>(p);
                        let g = bce_clamp_grad(p) * (pc - 1.0) / (pc * (1.0 - pc));
                        assert!(g.is_finite(), "p = {p}");
                    }
                }

                #[test]
                fn mask_zero_convention() {
                    for v in [NAN, INF, -INF, 3.0] {
                        let m = mask_zero::<F>(0.0, v);
                        assert_eq!(m, 0.0);
                        assert!(m.is_sign_positive());
                        assert_eq!(mask_zero::<F>(-0.0, v), 0.0);
                    }
                    assert_eq!(mask_zero::<F>(1e-30, 3.0), 3.0);
                    assert_eq!(mask_zero::<F>(NAN, 3.0), 3.0);
                    assert!(mask_zero::<F>(1.0, NAN).is_nan());
                    // hypot at the origin: x / hypot(x, y) is 0/0.
                    let (x, y): (F, F) = (0.0, 0.0);
                    let h = x.hypot(y);
                    assert_eq!(mask_zero(h, x / h), 0.0);
                }

                #[test]
                fn gate_selects() {
                    for d in [NAN, INF, -INF, 3.0] {
                        let g = gate::<F>(0.0, d);
                        assert_eq!(g, 0.0);
                        assert!(g.is_sign_positive());
                    }
                    assert_eq!(gate::<F>(1.0, -2.0), -2.0);
                    assert_eq!(gate::<F>(0.5, 3.0), 1.5);
                    assert_eq!(gate::<F>(1.0, INF), INF);
                    // relu(x).sqrt() at x < 0: the adjoint of sqrt(0) is ∞.
                    let x: F = -1.0;
                    let sqrt_adjoint = 0.5 / crate::relu(x).sqrt();
                    assert_eq!(gate(relu_grad(x), sqrt_adjoint), 0.0);
                }

                #[test]
                fn powf_exp_mask_convention() {
                    let zero: F = 0.0;
                    // x = 0, y ≥ 0: 0 regardless of v.
                    for y in [0.0, 0.5, 2.0] {
                        let y: F = y;
                        let naive = zero.powf(y) * zero.ln();
                        assert!(!naive.is_finite());
                        assert_eq!(powf_exp_mask(zero, y, naive), 0.0);
                        assert_eq!(powf_exp_mask(-0.0, y, naive), 0.0);
                    }
                    // x = 0, y < 0: the formula's value is kept.
                    assert_eq!(powf_exp_mask::<F>(0.0, -1.0, -INF), -INF);
                    // Elsewhere v passes unchanged.
                    assert_eq!(powf_exp_mask::<F>(2.0, -1.0, 1.5), 1.5);
                    assert_eq!(powf_exp_mask::<F>(2.0, 0.0, 1.5), 1.5);
                    assert!(powf_exp_mask::<F>(NAN, 1.0, NAN).is_nan());
                }

                /// Each helper agrees with a central difference of the
                /// function it differentiates, where that is differentiable.
                #[test]
                fn helpers_match_finite_differences() {
                    for x in [-2.0, -0.7, 0.7, 2.0] {
                        let x: F = x;
                        assert_gradient(|v| relu(v[0]), &[x], &[relu_grad(x)]);
                        assert_gradient(|v| v[0].abs(), &[x], &[abs_grad(x)]);
                    }
                    for (a, b) in [(0.3, 1.2), (1.2, 0.3), (-2.0, -0.5)] {
                        let (a, b): (F, F) = (a, b);
                        assert_gradient(
                            |v| v[0].max(v[1]),
                            &[a, b],
                            &[max_grad(a, b), max_grad(b, a)],
                        );
                        assert_gradient(
                            |v| v[0].min(v[1]),
                            &[a, b],
                            &[min_grad(a, b), min_grad(b, a)],
                        );
                    }
                    let (lo, hi): (F, F) = (-1.0, 2.0);
                    for x in [-3.0, -0.5, 1.3, 4.0] {
                        let x: F = x;
                        assert_gradient(
                            |v| crate::clamp(v[0], v[1], v[2]),
                            &[x, lo, hi],
                            &[
                                clamp_grad(x, lo, hi),
                                clamp_grad_lo(x, lo, hi),
                                clamp_grad_hi(x, lo, hi),
                            ],
                        );
                    }
                    for p in [-0.5, 0.2, 0.5, 0.8, 1.5] {
                        let p: F = p;
                        assert_gradient(|v| bce_clamp(v[0]), &[p], &[bce_clamp_grad(p)]);
                        for t in [0.0, 1.0] {
                            let pc = bce_clamp(p);
                            let dp = bce_clamp_grad(p) * (pc - t) / (pc * (1.0 - pc));
                            assert_gradient(|v| bce(v[0], t), &[p], &[dp]);
                        }
                    }
                    // At a kink the central difference averages the two
                    // one-sided slopes; the conventions are not that
                    // average (except the max/min tie), which is why they
                    // are pinned explicitly above.
                    let zero: F = 0.0;
                    assert_eq!(central_difference(|v| relu(v[0]), &[zero])[0], 0.5);
                    let tie = central_difference(|v: &[F]| v[0].max(v[1]), &[1.0, 1.0]);
                    for d in tie {
                        approx::assert_abs_diff_eq!(d, max_grad(1.0, 1.0), epsilon = 1e-3);
                    }
                }
            }
        };
    }

    tests_for!(for_f32, f32);
    tests_for!(for_f64, f64);
}
