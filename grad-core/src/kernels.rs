//! grad's own `exp` and `ln` for `f64`: table-driven, branch-free kernels
//! built on fused multiply-add, behind the runtime's [`sigmoid`] and
//! [`bce`] on targets that have FMA.
//!
//! `f64::exp` and `f64::ln` are calls into the platform's libm. LLVM cannot
//! inline them, so a loop that applies `sigmoid` to every sample runs one
//! call per element and never vectorises. These kernels are arithmetic,
//! integer bit operations, selects and loads from a small table: inlined,
//! they run as fast as glibc's calls one at a time (which use the same kind
//! of algorithm) and a loop over them vectorises, four lanes per AVX2
//! instruction (LLVM reads the table lane by lane).
//!
//! They are exact to within an ulp of `f64::exp` and `f64::ln` (the tests
//! below sample millions of points), give the same bits on every target
//! with FMA, in every lane, vectorised or not, and treat infinities, zeros,
//! subnormals and NaN as the standard functions do.
//!
//! Without hardware FMA, `f64::mul_add` is a libm call and these kernels
//! would be slow, so the runtime uses them only where the compilation
//! target has it (`cfg(target_feature = "fma")`, e.g. with
//! `-C target-cpu=native` on any x86-64 from 2013 on); elsewhere `sigmoid`
//! and `bce` call `f64::exp`/`f64::ln`. Either way a function and its
//! companions are compiled for the same target, so the companions' value
//! stays the function's bit for bit.
//!
//! The algorithms are the classic table-driven ones (Tang's `exp`; `ln`
//! reduced to `ln(c) + ln(1 + r)` around a table of centres `c`), with
//! tables computed to 60 digits by `tools/kernel-tables/generate.py`.
//!
//! [`sigmoid`]: crate::sigmoid
//! [`bce`]: crate::bce

mod tables;

use crate::branch_free::{pow2, ROUND};
use tables::{
    EXP2_FRAC, LN2_BY_N_HI, LN2_BY_N_LO, LN2_HI, LN2_LO, LN_CENTRES, LN_OFFSET, N_BY_LN2,
};

/// `e^x` as the runtime computes it for `f64`: the kernel where the target
/// has FMA, `f64::exp` elsewhere.
#[inline(always)]
pub(crate) fn runtime_exp(x: f64) -> f64 {
    if cfg!(target_feature = "fma") {
        exp(x)
    } else {
        x.exp()
    }
}

/// `ln(x)` as the runtime computes it for `f64`: the kernel where the
/// target has FMA, `f64::ln` elsewhere.
#[inline(always)]
pub(crate) fn runtime_ln(x: f64) -> f64 {
    if cfg!(target_feature = "fma") {
        ln(x)
    } else {
        x.ln()
    }
}

/// `e^x` for every `f64`, without branches: `+∞` past `709.78…`, gradual
/// underflow then `0` below `−708.4…`, NaN returned unchanged.
///
/// `x = (128 k + j) · ln 2 / 128 + r` with `|r| ≤ ln 2 / 256`; then
/// `e^x = 2^k · 2^(j/128) · e^r`, the middle factor from a table and `e^r`
/// from its Taylor polynomial to degree 5 (the next term is below
/// `2^-60` relative).
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    // Outside [−746, 709.9] the result is 0 or ∞, selected at the end; the
    // arithmetic below may produce anything there, but never panics.
    let shifted = x.mul_add(N_BY_LN2, ROUND);
    let kd = shifted - ROUND;
    // `kd · LN2_BY_N_HI` is exact and close to `x`, so the first step is
    // exact; the second adds the rest of `ln 2 / 128`.
    let r = kd.mul_add(-LN2_BY_N_HI, x);
    let r = kd.mul_add(-LN2_BY_N_LO, r);
    #[allow(clippy::cast_possible_wrap)]
    let ki = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i64;
    // Masking keeps the index in the table for every input, so the load
    // needs no bounds check.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    let (two_j, tail) = EXP2_FRAC[(ki & 127) as usize];
    // ⌊ki / 128⌋ with a logical shift of a biased value: AVX2 has logical
    // shifts of 64-bit lanes but no arithmetic one.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_wrap)]
    let k = ((ki.wrapping_add(1 << 20) as u64) >> 7) as i64 - (1 << 13);
    // tail + e^r − 1, the polynomial in Estrin's form (a short chain of
    // dependent operations: this is on every caller's critical path).
    let r2 = r * r;
    let low = r.mul_add(1.0 / 6.0, 0.5);
    let high = r.mul_add(1.0 / 120.0, 1.0 / 24.0);
    let small = r2.mul_add(high, low).mul_add(r2, tail + r);
    // Where 2^k · 2^(j/128) is a normal number (nearly always), it is built
    // by adding k to the table entry's exponent, which is off the critical
    // path; the result is one rounding of scale · (1 + small).
    #[allow(clippy::cast_sign_loss)]
    let scale = f64::from_bits(two_j.to_bits().wrapping_add((k as u64) << 52));
    let normal = scale.mul_add(small, scale);
    // Near the ends of the range, 2^k in two factors, each a normal power
    // of two, so that a subnormal result is rounded once: the first times
    // the table entry is exact and, like `scale`, off the critical path.
    // `k + 2048` is positive, so halving it is a logical shift.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_wrap)]
    let half = ((k.wrapping_add(2048) as u64) >> 1) as i64 - 1024;
    let first = two_j * pow2(half);
    let edge = first.mul_add(small, first) * pow2(k.wrapping_sub(half));
    if x.is_nan() {
        x
    } else if x > 709.9 {
        f64::INFINITY
    } else if x < -746.0 {
        0.0
    } else if x.abs() < 708.0 {
        normal
    } else {
        edge
    }
}

/// `ln(x)` for every `f64`, without branches: `ln(0) = −∞`, `ln(+∞) = +∞`,
/// NaN for negative inputs, NaN returned unchanged.
///
/// `x = 2^k · z` with `z` in `[0.684, 1.371)` (so inputs just below and just
/// above 1 share `k = 0` and nothing cancels); the top bits of `z` pick one
/// of 128 subintervals, and the table gives `inv`, close to the reciprocal
/// of its middle (exactly 1 around 1); then `z · inv = 1 + r`, `|r| < 1/255`,
/// and `ln(x) = k ln 2 − ln(inv) + ln(1 + r)`, `ln(inv)` from the table and
/// `ln(1 + r)` from its Taylor polynomial to degree 7. `r` is exact, carried
/// in two parts.
#[inline(always)]
pub(crate) fn ln(x: f64) -> f64 {
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    // Subnormals are scaled into the normal range first.
    let subnormal = x < f64::MIN_POSITIVE;
    let scaled = if subnormal { x * TWO_POW_52 } else { x };
    let bias: u64 = if subnormal { 52 } else { 0 };
    // Wrapping: for negative inputs (replaced by NaN below) the arithmetic
    // overflows.
    let from_offset = scaled.to_bits().wrapping_sub(LN_OFFSET);
    // The subinterval, from the bits below the exponent field's lowest.
    let index = (from_offset >> 45) & 127;
    #[allow(clippy::cast_possible_truncation)]
    let (inv, ln_inv_hi, ln_inv_lo) = LN_CENTRES[index as usize];
    // k + 2048 from the exponent field, with a bias that keeps the shift a
    // logical one (AVX2 has no arithmetic shift of 64-bit lanes).
    let biased_k = from_offset.wrapping_add(1 << 63) >> 52;
    let z = f64::from_bits(
        scaled
            .to_bits()
            .wrapping_sub(biased_k.wrapping_sub(2048) << 52),
    );
    // k as a float without an integer conversion (see `ROUND`).
    let kd = f64::from_bits(ROUND.to_bits().wrapping_add(biased_k.wrapping_sub(bias)))
        - (ROUND + 2048.0);
    // r = z · inv − 1 exactly, in two parts: the product rounded, minus 1
    // (exact by Sterbenz's lemma, the product being within 1/255 of 1), and
    // the product's rounding error (exact by FMA).
    let product = z * inv;
    let r = product - 1.0;
    let r_lo = z.mul_add(inv, -product);
    // (ln(1 + r) − r) / r², to degree 5 (so ln(1 + r) to degree 7: the
    // next term is below 2^-59 of r), in Estrin's form.
    let r2 = r * r;
    let low = r.mul_add(1.0 / 3.0, -0.5);
    let middle = r.mul_add(1.0 / 5.0, -0.25);
    let high = r.mul_add(1.0 / 7.0, -1.0 / 6.0);
    let poly = (r2 * r2).mul_add(high, r2.mul_add(middle, low));
    // k ln 2 − ln(inv): exact, both terms being multiples of 2^-42 below
    // 2^10.
    let w = kd.mul_add(LN2_HI, ln_inv_hi);
    // Fast two-sum: |w| ≥ |r| whenever w ≠ 0 (next to the subinterval
    // around 1, |ln inv| ≥ 1/257 on either side, twice the |r| there).
    let hi = w + r;
    let lo = (w - hi) + r;
    let out = hi + poly.mul_add(r2, lo + r_lo + kd.mul_add(LN2_LO, ln_inv_lo));
    if x > 0.0 && x < f64::INFINITY {
        out
    } else if x == 0.0 {
        f64::NEG_INFINITY
    } else if x < 0.0 {
        f64::NAN
    } else {
        // +∞ and NaN are their own logarithms.
        x
    }
}

#[cfg(test)]
mod tests {
    use super::{exp, ln};
    use crate::test_support::{ulps, Rng};

    /// Largest ulp distance from the standard function over `inputs`.
    fn worst(
        kernel: fn(f64) -> f64,
        std: fn(f64) -> f64,
        inputs: impl Iterator<Item = f64>,
    ) -> (u64, f64) {
        inputs
            .map(|x| (ulps(kernel(x), std(x)), x))
            .fold(
                (0, 0.0),
                |best, next| if next.0 > best.0 { next } else { best },
            )
    }

    #[test]
    fn exp_is_within_an_ulp_of_std_over_its_whole_range() {
        let mut inputs = Rng(1);
        let (ulp, at) = worst(
            exp,
            f64::exp,
            (0..400_000).map(|_| inputs.uniform(-745.0, 709.7)),
        );
        assert!(ulp <= 1, "{ulp} ulp at {at:e}");
        let mut inputs = Rng(2);
        let (ulp, at) = worst(
            exp,
            f64::exp,
            (0..400_000).map(|_| inputs.uniform(-1.0, 1.0)),
        );
        assert!(ulp <= 1, "{ulp} ulp at {at:e}");
    }

    #[test]
    fn exp_at_the_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(1e-300), 1.0);
        assert_eq!(exp(709.8), f64::INFINITY);
        assert_eq!(exp(f64::MAX), f64::INFINITY);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(-746.0), 0.0);
        assert_eq!(exp(f64::MIN), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert!(exp(f64::NAN).is_nan());
        // The largest finite result and gradual underflow.
        assert!(ulps(exp(709.78), 709.78_f64.exp()) <= 1);
        for x in [-708.0, -708.5, -720.0, -740.0, -745.0] {
            assert!(ulps(exp(x), x.exp()) <= 1, "{x}");
        }
        // Every input that reduces to the same table entry: integers times
        // ln 2 / 128 give exact powers of 2^(1/128).
        for j in 0..128 {
            let x = f64::from(j) * core::f64::consts::LN_2 / 128.0;
            assert!(ulps(exp(x), x.exp()) <= 1, "{x}");
        }
    }

    #[test]
    fn ln_is_within_an_ulp_of_std_over_every_exponent() {
        // Random bit patterns of positive finite floats: every exponent,
        // subnormals included.
        let mut inputs = Rng(3);
        let (ulp, at) = worst(
            ln,
            f64::ln,
            (0..400_000)
                .map(|_| f64::from_bits(inputs.next_u64() >> 1))
                .filter(|x| x.is_finite() && *x > 0.0),
        );
        assert!(ulp <= 1, "{ulp} ulp at {at:e}");
    }

    #[test]
    fn ln_is_within_an_ulp_of_std_near_one_and_on_probabilities() {
        // Near 1 the result is small and cancellation is the danger; bce
        // takes logarithms of probabilities in [1e-7, 1 − 1e-7].
        let mut inputs = Rng(4);
        let (ulp, at) = worst(ln, f64::ln, (0..400_000).map(|_| inputs.uniform(0.9, 1.1)));
        assert!(ulp <= 1, "{ulp} ulp at {at:e}");
        let (ulp, at) = worst(ln, f64::ln, (0..400_000).map(|_| inputs.uniform(1e-7, 1.0)));
        assert!(ulp <= 1, "{ulp} ulp at {at:e}");
        let (ulp, at) = worst(
            ln,
            f64::ln,
            (1..200_000).map(|i| 1.0 + f64::from(i) * f64::EPSILON),
        );
        assert!(ulp <= 1, "{ulp} ulp at {at:e}");
        let (ulp, at) = worst(
            ln,
            f64::ln,
            (1..200_000).map(|i| 1.0 - f64::from(i) * f64::EPSILON / 2.0),
        );
        assert!(ulp <= 1, "{ulp} ulp at {at:e}");
    }

    #[test]
    fn ln_at_the_edges() {
        assert_eq!(ln(1.0).to_bits(), 0.0_f64.to_bits());
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(-0.0), f64::NEG_INFINITY);
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert!(ln(-1.0).is_nan());
        assert!(ln(f64::NEG_INFINITY).is_nan());
        assert!(ln(f64::NAN).is_nan());
        assert!(ulps(ln(f64::MIN_POSITIVE), f64::MIN_POSITIVE.ln()) <= 1);
        assert!(ulps(ln(5e-324), 5e-324_f64.ln()) <= 1);
        assert!(ulps(ln(f64::MAX), f64::MAX.ln()) <= 1);
        for k in -1074..1024 {
            let x = 2.0_f64.powi(k);
            assert!(ulps(ln(x), x.ln()) <= 1, "2^{k}");
        }
    }
}
