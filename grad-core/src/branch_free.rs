//! Branch-free `exp` and `tanh` for `f64`, the kernels behind the runtime's
//! [`tanh`](crate::tanh).
//!
//! The standard library's `tanh` is a call into the platform's libm, which
//! LLVM cannot inline, so a loop applying it to every unit of a layer runs
//! one call per element. These kernels are plain arithmetic, integer bit
//! operations and selects between values already computed: inlined into
//! such a loop, LLVM's vectoriser processes two (SSE2) or four (AVX2)
//! elements per instruction. Every operation is a separate IEEE-754 `+`,
//! `*` or `/` (Rust never fuses them), so the result is the same bit for bit
//! on every target and in every lane, vectorised or not.
//!
//! The algorithms are the classic ones, with their published constants:
//! `exp` is fdlibm's (`e_exp.c`: reduction by `ln 2` split in two parts and
//! a degree-5 Remez polynomial in a rational form, < 1 ulp), `tanh` is
//! Cephes' (`tanh.c`: a rational minimax approximation on `|x| < 0.625`,
//! `1 − 2 / (e^{2|x|} + 1)` above). The tests in this module bound the error
//! against the standard library's functions.

// The constants are written with the digits fdlibm and Cephes publish, so
// they can be checked against the sources; they round to the same `f64`.
#![allow(clippy::excessive_precision)]

/// `e^x` for every `f64`, without branches: overflow gives `+∞`, underflow
/// gradual then `0`, NaN propagates.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    const P1: f64 = 1.666_666_666_666_660_190_37e-1;
    const P2: f64 = -2.777_777_777_701_559_338_42e-3;
    const P3: f64 = 6.613_756_321_437_934_361_17e-5;
    const P4: f64 = -1.653_390_220_546_525_153_90e-6;
    const P5: f64 = 4.138_136_797_057_238_460_39e-8;
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    // Past these the result is ∞ or 0 anyway; clamping keeps `k` in range
    // for the two-step scaling below.
    let clamped = x.clamp(-746.0, 709.9);
    // x = k·ln 2 + r with |r| ≤ ln 2 / 2; `k·LN2_HI` is exact for |k| < 2¹¹.
    let shifted = clamped * core::f64::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let hi = clamped - k * LN2_HI;
    let lo = k * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    let er = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // Scale by 2^k in two factors, each a normal number, so that results in
    // the subnormal range are rounded once. `shifted` holds k in its low
    // mantissa bits (it is 1.5·2⁵² + k exactly), which gives the integer
    // without a float-to-integer conversion: x86 has none for packed f64
    // before AVX-512, so one would be done lane by lane. `k + 2048` is
    // positive (k ≥ -1077), so halving it is a logical shift, which AVX2
    // has for 64-bit lanes (an arithmetic one it has not).
    #[allow(clippy::cast_possible_wrap)]
    let k = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i64;
    #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
    let half = (((k + 2048) as u64) >> 1) as i64 - 1024;
    let out = er * pow2(half) * pow2(k - half);
    // A NaN input reaches `out` as NaN already (through `er`); returning
    // the input keeps it unchanged.
    if x.is_nan() {
        x
    } else {
        out
    }
}

/// `1.5 · 2^52`: adding and subtracting it rounds a float of magnitude below
/// `2^51` to the nearest integer without a call to `round` (which baseline
/// x86-64 has no instruction for), and leaves that integer in the low bits
/// of the sum, so no float-to-integer conversion is needed (x86 has none for
/// packed `f64` before AVX-512). Also used by `crate::kernels`.
pub(crate) const ROUND: f64 = 6_755_399_441_055_744.0;

/// `2^k` for `k` in `[-1022, 1023]`, built from its bits. Wrapping: callers
/// may pass anything for a NaN input, whose result they replace.
#[inline(always)]
pub(crate) fn pow2(k: i64) -> f64 {
    #[allow(clippy::cast_sign_loss)]
    f64::from_bits((k.wrapping_add(1023) as u64) << 52)
}

/// `tanh(x)` for every `f64`, without branches: `±0` and NaN are returned
/// unchanged, `±∞` gives `±1`.
#[inline(always)]
pub(crate) fn tanh(x: f64) -> f64 {
    const P0: f64 = -9.643_991_794_250_522_386_28e-1;
    const P1: f64 = -9.928_772_310_019_185_865_64e1;
    const P2: f64 = -1.614_687_684_417_084_479_52e3;
    const Q0: f64 = 1.128_116_784_916_329_314_02e2;
    const Q1: f64 = 2.235_488_390_601_004_485_83e3;
    const Q2: f64 = 4.844_063_053_251_254_860_48e3;
    let magnitude = x.abs();
    // Near zero: x + x³·P(x²)/Q(x²).
    let s = x * x;
    let near_zero = x + x * s * ((P0 * s + P1) * s + P2) / (((s + Q0) * s + Q1) * s + Q2);
    // Away from zero: 1 − 2/(e^{2|x|} + 1), which is 1 in f64 from |x| ≈ 19;
    // clamping at 40 keeps ∞ out of the division.
    let e = exp(2.0 * if magnitude > 40.0 { 40.0 } else { magnitude });
    let away = 1.0 - 2.0 / (e + 1.0);
    let away = if x < 0.0 { -away } else { away };
    if x == 0.0 || x.is_nan() {
        // ±0 keeps its sign (the rational form would give +0 for -0).
        x
    } else if magnitude < 0.625 {
        near_zero
    } else {
        away
    }
}

#[cfg(test)]
mod tests {
    use super::{exp, tanh};
    use crate::test_support::{ulps, Rng};

    #[test]
    fn exp_is_within_one_ulp_of_std() {
        let mut rng = Rng(1);
        for _ in 0..400_000 {
            let x = rng.uniform(-745.0, 709.7);
            assert!(ulps(exp(x), x.exp()) <= 1, "exp({x:e})");
        }
        for x in [-1e-300, 0.0, 1e-300, 0.5, -0.5, 1.0, 709.78, -708.4, -744.0] {
            assert!(ulps(exp(x), x.exp()) <= 1, "exp({x:e})");
        }
    }

    #[test]
    fn exp_special_values() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(709.8), f64::INFINITY);
        assert_eq!(exp(-746.0), 0.0);
        // The smallest subnormal, as std gives it.
        assert_eq!(exp(-745.1), (-745.1_f64).exp());
        assert!(exp(f64::NAN).is_nan());
    }

    #[test]
    fn tanh_is_within_two_ulp_of_std() {
        let mut rng = Rng(2);
        for i in 0..400_000 {
            // Half the samples near the switch at 0.625 and below, half
            // spread over the whole range where tanh is not yet ±1.
            let x = if i % 2 == 0 {
                rng.uniform(-1.0, 1.0)
            } else {
                rng.uniform(-20.0, 20.0)
            };
            assert!(ulps(tanh(x), x.tanh()) <= 2, "tanh({x:e})");
        }
        for x in [
            1e-300,
            -1e-300,
            5e-324,
            1e-8,
            0.624_999_999,
            0.625,
            -0.625,
            19.1,
            40.0,
            1e6,
        ] {
            assert!(ulps(tanh(x), x.tanh()) <= 2, "tanh({x:e})");
        }
    }

    /// Against `f64::tanh` rounded to f32, not `f32::tanh`: glibc's `tanhf`
    /// is itself 2 ulp off at some points (0.46072972 is one).
    #[test]
    fn f32_tanh_is_within_one_ulp_of_f64_rounded() {
        let mut rng = Rng(4);
        for _ in 0..200_000 {
            #[allow(clippy::cast_possible_truncation)]
            let x = rng.uniform(-12.0, 12.0) as f32;
            #[allow(clippy::cast_possible_truncation)]
            let reference = f64::from(x).tanh() as f32;
            let ours = crate::tanh(x);
            assert!(
                ours.to_bits().abs_diff(reference.to_bits()) <= 1,
                "tanh({x:e}_f32)"
            );
        }
    }

    #[test]
    fn tanh_special_values() {
        assert_eq!(tanh(0.0).to_bits(), 0.0_f64.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0_f64).to_bits());
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert_eq!(tanh(f64::MAX), 1.0);
        assert!(tanh(f64::NAN).is_nan());
    }

    #[test]
    fn tanh_is_odd() {
        let mut rng = Rng(3);
        for _ in 0..10_000 {
            let x = rng.uniform(-25.0, 25.0);
            assert_eq!(tanh(-x).to_bits(), (-tanh(x)).to_bits(), "tanh({x:e})");
        }
    }
}
