//! The gradient of a loss over 1 000 000 samples, on every core with rayon.
//!
//! `f_backward` *adds* its gradient into the `FGrad` it is given, and `FGrad`
//! implements `+`: so a data-parallel gradient is a `fold` in which every
//! worker accumulates the chunks it takes into its own `FGrad`, and a
//! `reduce` that adds the workers' gradients. No locks, no shared tape, and
//! no allocation inside the gradient.
//!
//! The model is logistic regression with 8 features: the loss of one chunk
//! is its share of the mean binary cross-entropy, so the chunks' losses and
//! gradients add up to the full batch's. The example computes the gradient
//! on one thread and with rayon, checks that they agree, and prints the
//! time of each (the best of [`RUNS`] runs) and the speedup.
//!
//! Run it with `cargo run --release --example parallel` (a debug build works
//! too, just slower).

use std::time::{Duration, Instant};

use grad::prelude::*;
use rayon::prelude::*;

/// Features per sample.
const D: usize = 8;
/// Samples.
const N: usize = 1_000_000;
/// Samples per task handed to rayon.
const CHUNK: usize = 8_192;
/// Timed runs of each version; the best is reported.
const RUNS: usize = 5;

/// This chunk's share of the mean binary cross-entropy of a logistic
/// regression over `total` samples: `x` holds the chunk's samples row by
/// row, `y` their labels.
#[differentiate(wrt(w, b))]
fn chunk_loss(w: [f64; D], b: f64, x: &[f64], y: &[f64], total: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..y.len() {
        let mut z = b;
        for k in 0..D {
            z += w[k] * x[i * D + k];
        }
        s += bce(sigmoid(z), y[i]);
    }
    s / total
}

/// Deterministic data: features uniform in [-1, 1) from a 64-bit LCG, and
/// labels from a fixed linear rule with some noise.
fn data() -> (Vec<f64>, Vec<f64>) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let truth = [0.8, -1.2, 0.5, 0.0, 2.0, -0.3, 1.1, -0.7];
    let mut x = Vec::with_capacity(N * D);
    let mut y = Vec::with_capacity(N);
    for _ in 0..N {
        let row: Vec<f64> = (0..D).map(|_| uniform()).collect();
        let z: f64 = row.iter().zip(&truth).map(|(a, t)| a * t).sum::<f64>() + 0.3;
        y.push(if z + 0.5 * uniform() > 0.0 { 1.0 } else { 0.0 });
        x.extend(row);
    }
    (x, y)
}

/// The gradient on the calling thread: one `chunk_loss_backward` per chunk
/// into a single `ChunkLossGrad`.
fn sequential(w: [f64; D], b: f64, x: &[f64], y: &[f64]) -> (f64, ChunkLossGrad) {
    let mut grad = ChunkLossGrad::default();
    let mut loss = 0.0;
    for (xc, yc) in x.chunks(CHUNK * D).zip(y.chunks(CHUNK)) {
        loss += chunk_loss_backward(w, b, xc, yc, N as f64, &mut grad);
    }
    (loss, grad)
}

/// The same with rayon: each worker folds its chunks into its own gradient,
/// and the workers' gradients are added.
fn parallel(w: [f64; D], b: f64, x: &[f64], y: &[f64]) -> (f64, ChunkLossGrad) {
    x.par_chunks(CHUNK * D)
        .zip(y.par_chunks(CHUNK))
        .fold(
            || (0.0, ChunkLossGrad::default()),
            |(loss, mut grad), (xc, yc)| {
                let l = chunk_loss_backward(w, b, xc, yc, N as f64, &mut grad);
                (loss + l, grad)
            },
        )
        .reduce(
            || (0.0, ChunkLossGrad::default()),
            |(la, ga), (lb, gb)| (la + lb, ga + gb),
        )
}

/// The best time of [`RUNS`] calls of `f`, and its last result.
fn best_of<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.expect("RUNS > 0"))
}

fn main() {
    let (x, y) = data();
    let w = [0.1, -0.2, 0.05, 0.3, -0.1, 0.2, 0.0, 0.15];
    let b = -0.05;

    let (t1, (loss1, g1)) = best_of(|| sequential(w, b, &x, &y));
    let (tp, (lossp, gp)) = best_of(|| parallel(w, b, &x, &y));

    // The sums are added in another order: equal up to rounding.
    let close = |a: f64, c: f64| (a - c).abs() <= 1e-12 * a.abs().max(c.abs()).max(1e-300);
    assert!(close(loss1, lossp), "loss {loss1} vs {lossp}");
    assert!(close(g1.b, gp.b), "∂b {} vs {}", g1.b, gp.b);
    for k in 0..D {
        assert!(
            close(g1.w[k], gp.w[k]),
            "∂w[{k}] {} vs {}",
            g1.w[k],
            gp.w[k]
        );
    }

    let threads = rayon::current_num_threads();
    println!("logistic regression, {N} samples × {D} features, chunks of {CHUNK}");
    println!("loss            {loss1:.6}");
    println!("∂loss/∂b        {:.6}", g1.b);
    println!("∂loss/∂w        {:.6?}", g1.w);
    println!("one thread      {:>8.2} ms", t1.as_secs_f64() * 1e3);
    println!(
        "rayon ({threads} threads) {:>8.2} ms   speedup {:.2}×",
        tp.as_secs_f64() * 1e3,
        t1.as_secs_f64() / tp.as_secs_f64()
    );
}
