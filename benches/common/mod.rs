//! What the four benchmarks (issue 5) share: the deterministic data, each
//! workload written once as an ordinary `#[differentiate]` function (its
//! primal and grad's generated gradient), the hand-written analytic
//! gradients, and the agreement check every benchmark runs before it times
//! anything.
//!
//! Each workload has its own module; `peers` holds the sigmoid and the
//! cross-entropy for the peers' number types, and the peers' versions of the
//! workloads (num-dual, echidna, symdiff) live in the benchmark files, next
//! to the comment that says how each crate was used. A bench binary uses
//! only its own workload, hence the `dead_code` allowance: the other modules
//! are compiled into every binary.
#![allow(dead_code)]

pub mod peers;
pub mod w1;
pub mod w2;
pub mod w3;
pub mod w4;

/// Relative tolerance every implementation must meet against the
/// hand-written gradient before anything is timed.
pub const TOLERANCE: f64 = 1e-9;

/// The seed notebook's clamp, `grad::EPSILON`.
pub const EPS: f64 = 1e-7;

/// SplitMix64 (Steele, Lea, Flood 2014): a small, fixed, dependency-free
/// generator, so every implementation and every run sees the same data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// The logistic function written out by hand: the same overflow-free formula
/// as `grad::sigmoid`, so that `hand` computes exactly what `grad` does.
#[inline]
pub fn hand_sigmoid(z: f64) -> f64 {
    let e = (-z.abs()).exp();
    let numerator = if z >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

/// The notebook's ε-clamped binary cross-entropy of a probability, and its
/// derivative with respect to the *logit* `z` where `p = sigmoid(z)`:
/// `p − y` where the clamp passes the gradient (closed interval, PyTorch's
/// convention), 0 where it is active. This is what a person writes for a
/// sigmoid followed by a cross-entropy, instead of chaining the two.
#[inline]
pub fn hand_bce_dz(p: f64, y: f64) -> (f64, f64) {
    let pc = p.clamp(EPS, 1.0 - EPS);
    let loss = -(y * pc.ln() + (1.0 - y) * (1.0 - pc).ln());
    let dz = if pc == p { p - y } else { 0.0 };
    (loss, dz)
}

/// One implementation's answer: its value and its gradient, flattened in
/// the order of the `#[differentiate]` function's gradient struct.
pub struct Answer {
    pub name: &'static str,
    pub value: f64,
    /// `None` for the primal, which has no gradient.
    pub gradient: Option<Vec<f64>>,
}

impl Answer {
    pub fn new(name: &'static str, value: f64, gradient: Vec<f64>) -> Self {
        Answer {
            name,
            value,
            gradient: Some(gradient),
        }
    }

    pub fn value_only(name: &'static str, value: f64) -> Self {
        Answer {
            name,
            value,
            gradient: None,
        }
    }
}

/// `|a − b| / max(|a|, |b|)`, 0 when both are 0.
pub fn relative_error(a: f64, b: f64) -> f64 {
    let scale = a.abs().max(b.abs());
    if a == b {
        0.0
    } else if scale == 0.0 || !scale.is_finite() {
        f64::INFINITY
    } else {
        (a - b).abs() / scale
    }
}

/// Panics unless every answer agrees with `reference` (the hand-written
/// gradient) on the value and on every gradient component to
/// [`TOLERANCE`], relative; prints one line per answer otherwise. Called at
/// the start of every benchmark binary, so `cargo bench --bench … -- --test`
/// is the quick correctness check.
pub fn assert_agree(workload: &str, reference: &Answer, answers: &[Answer]) {
    let reference_gradient = reference
        .gradient
        .as_ref()
        .expect("the reference answer has a gradient");
    assert!(
        reference.value.is_finite() && reference_gradient.iter().all(|g| g.is_finite()),
        "{workload}: the reference ({}) is not finite",
        reference.name
    );
    for answer in answers {
        let mut worst = relative_error(answer.value, reference.value);
        let mut at = String::from("value");
        if let Some(gradient) = &answer.gradient {
            assert_eq!(
                gradient.len(),
                reference_gradient.len(),
                "{workload}: {} has {} gradient components, {} has {}",
                answer.name,
                gradient.len(),
                reference.name,
                reference_gradient.len()
            );
            for (i, (&g, &r)) in gradient.iter().zip(reference_gradient).enumerate() {
                let e = relative_error(g, r);
                if e > worst || e.is_nan() {
                    worst = e;
                    at = format!("gradient[{i}] ({g} vs {r})");
                }
            }
        }
        assert!(
            worst <= TOLERANCE,
            "{workload}: {} disagrees with {}: relative error {worst:e} at {at}",
            answer.name,
            reference.name
        );
        let what = if answer.gradient.is_some() {
            "value and gradient"
        } else {
            "value"
        };
        println!(
            "{workload}: {:>8} agrees with {} on the {what}: max relative error {worst:.1e}",
            answer.name, reference.name
        );
    }
}
