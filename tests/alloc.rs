//! Allocation behaviour of the generated code, measured with a counting
//! global allocator.
//!
//! The reverse sweep of a loop recomputes each iteration from a checkpoint
//! kept on a tape (a `Vec`), and the simplifier drops every tape field no
//! derivative reads. So the per-sample reductions of machine learning
//! (`for i in 0..n { loss += per_sample(…) }`) must keep no tape at all:
//! once the gradient's `Vec` fields are sized, `f_backward` allocates
//! nothing. A true recurrence (an RNN) must keep its hidden state per step,
//! which costs O(log trip count) allocations as the tape doubles.
//!
//! The allocator counts per thread, and only on a thread that switched
//! counting on, so the test harness and tests running in parallel on other
//! threads do not disturb the numbers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use grad::check::assert_gradient;
use grad::prelude::*;

/// `System`, counting every `alloc`, `alloc_zeroed` and `realloc` made on a
/// thread whose `COUNTING` flag is set.
struct CountingAllocator;

thread_local! {
    // `const` and `Drop`-free: using them never allocates, so the allocator
    // may. Per thread, so that tests measuring in parallel do not see each
    // other's allocations.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result with the number of allocations it made
/// on this thread.
fn allocations_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (result, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn the_counter_counts() {
    let (v, n) = allocations_of(|| black_box(vec![1.0_f64; 3]));
    assert_eq!((v.len(), n), (3, 1));
    let (_, n) = allocations_of(|| black_box(1.0_f64).sin());
    assert_eq!(n, 0);
}

// ---------------------------------------------------- logistic regression

/// Mean binary cross-entropy of a linear model over `y.len()` samples of
/// `d = w.len()` features, stored row by row in `x`.
#[differentiate(wrt(w, b))]
fn logistic_loss(w: &[f64], b: f64, x: &[f64], y: &[f64]) -> f64 {
    let d = w.len();
    let mut s = 0.0;
    for i in 0..y.len() {
        let mut z = b;
        for j in 0..d {
            z += w[j] * x[i * d + j];
        }
        s += bce_with_logits(z, y[i]);
    }
    s / y.len() as f64
}

/// A data set of `n` samples of `d` features, deterministic.
fn data(n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let x = (0..n * d)
        .map(|k| ((k * 7 % 13) as f64 - 6.0) / 4.0)
        .collect();
    let y = (0..n).map(|i| (i % 2) as f64).collect();
    (x, y)
}

#[test]
fn logistic_regression_backward_allocates_nothing() {
    let (x, y) = data(200, 5);
    let w = [0.3, -0.2, 0.5, 0.1, -0.4];
    let b = 0.05;

    // The first call sizes the `Vec` field (one allocation) ...
    let mut grad = LogisticLossGrad::default();
    let (_, first) = allocations_of(|| logistic_loss_backward(&w, b, &x, &y, &mut grad));
    assert_eq!(first, 1, "sizing grad.w");
    // ... every later call allocates nothing.
    let (value, n) = allocations_of(|| {
        logistic_loss_backward(black_box(&w), black_box(b), &x, &y, black_box(&mut grad))
    });
    println!("logistic regression, 200 samples × 5 features: {n} allocations in f_backward");
    assert_eq!(n, 0);
    assert_eq!(value, logistic_loss(&w, b, &x, &y));
    // `f_grad` allocates exactly the gradient's `Vec`.
    let ((_, fresh), n) = allocations_of(|| logistic_loss_grad(&w, b, &x, &y));
    assert_eq!(n, 1);

    // The numbers are right, too (two calls accumulated: twice the gradient,
    // up to rounding: see `backward_slices.rs` on why not exactly).
    for (twice, once) in grad.w.iter().zip(&fresh.w) {
        approx::assert_relative_eq!(*twice, 2.0 * once, max_relative = 1e-14);
    }
    let mut p = w.to_vec();
    p.push(b);
    let mut analytic = fresh.w.clone();
    analytic.push(fresh.b);
    assert_gradient(|p| logistic_loss(&p[..5], p[5], &x, &y), &p, &analytic);
}

// ------------------------------------------------------------------- MLP

/// A 4-8-1 perceptron with fixed-size weights: tanh hidden layer, sigmoid
/// output, binary cross-entropy, averaged over the samples (rows of `x`).
#[allow(clippy::needless_range_loop)]
#[differentiate(wrt(w1, b1, w2, b2))]
fn mlp_loss(
    w1: &[[f64; 4]; 8],
    b1: &[f64; 8],
    w2: &[f64; 8],
    b2: f64,
    x: &[f64],
    y: &[f64],
) -> f64 {
    let mut total = 0.0;
    for i in 0..y.len() {
        let mut h = [0.0; 8];
        for j in 0..8 {
            let mut z = b1[j];
            for k in 0..4 {
                z += w1[j][k] * x[i * 4 + k];
            }
            h[j] = z.tanh();
        }
        let mut o = b2;
        for j in 0..8 {
            o += w2[j] * h[j];
        }
        total += bce(sigmoid(o), y[i]);
    }
    total / y.len() as f64
}

fn mlp_weights() -> ([[f64; 4]; 8], [f64; 8], [f64; 8], f64) {
    let mut w1 = [[0.0; 4]; 8];
    for (j, row) in w1.iter_mut().enumerate() {
        for (k, v) in row.iter_mut().enumerate() {
            *v = (((j * 4 + k) * 5 % 11) as f64 - 5.0) / 10.0;
        }
    }
    let b1 = [0.1, -0.1, 0.2, 0.0, -0.3, 0.05, 0.15, -0.2];
    let w2 = [0.4, -0.6, 0.3, 0.2, -0.1, 0.5, -0.4, 0.25];
    (w1, b1, w2, 0.1)
}

#[test]
fn mlp_backward_allocates_nothing() {
    let (x, y) = data(100, 4);
    let (w1, b1, w2, b2) = mlp_weights();
    let mut grad = MlpLossGrad::default();
    // Every field is an array: nothing to size, not even on the first call,
    // and `f_grad` allocates nothing either.
    let (_, first) = allocations_of(|| mlp_loss_backward(&w1, &b1, &w2, b2, &x, &y, &mut grad));
    let (value, n) = allocations_of(|| {
        mlp_loss_backward(
            black_box(&w1),
            black_box(&b1),
            black_box(&w2),
            black_box(b2),
            &x,
            &y,
            black_box(&mut grad),
        )
    });
    println!(
        "MLP 4-8-1, 100 samples: {first} allocations in the first f_backward, {n} in the second"
    );
    assert_eq!((first, n), (0, 0));
    assert_eq!(value, mlp_loss(&w1, &b1, &w2, b2, &x, &y));
    let ((_, fresh), n) = allocations_of(|| mlp_loss_grad(&w1, &b1, &w2, b2, &x, &y));
    assert_eq!(n, 0);

    // Check the gradient itself on a few samples.
    let (x, y) = (&x[..12], &y[..3]);
    let (_, g) = mlp_loss_grad(&w1, &b1, &w2, b2, x, y);
    let mut p: Vec<f64> = w1.iter().flatten().copied().collect();
    p.extend(b1);
    p.extend(w2);
    p.push(b2);
    let mut analytic: Vec<f64> = g.w1.iter().flatten().copied().collect();
    analytic.extend(g.b1);
    analytic.extend(g.w2);
    analytic.push(g.b2);
    assert_gradient(
        |p| {
            let mut w1 = [[0.0; 4]; 8];
            for (j, row) in w1.iter_mut().enumerate() {
                row.copy_from_slice(&p[j * 4..j * 4 + 4]);
            }
            let b1 = p[32..40].try_into().unwrap();
            let w2 = p[40..48].try_into().unwrap();
            mlp_loss(&w1, &b1, &w2, p[48], x, y)
        },
        &p,
        &analytic,
    );
    // Two accumulated calls over the full data: twice one fresh gradient.
    assert_eq!(grad.b2, 2.0 * fresh.b2);
}

// ------------------------------------------------------------------- RNN

/// A scalar recurrence: each step's derivative needs the previous hidden
/// state, which the forward loop keeps on the tape.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn rnn(w: f64, x: &[f64]) -> f64 {
    let mut h = 0.0;
    for i in 0..x.len() {
        h = (h * w + x[i]).tanh();
    }
    h
}

#[test]
fn recurrence_allocates_o_of_log_trip_count() {
    let x: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin()).collect();
    let mut grad = RnnGrad::default();
    rnn_backward(0.5, &x, &mut grad);
    let (value, n) = allocations_of(|| rnn_backward(black_box(0.5), &x, black_box(&mut grad)));
    println!("RNN, 1000 steps: {n} allocations in f_backward (gradient already sized)");
    assert_eq!(value, rnn(0.5, &x));
    // A doubling tape: about log2(1000) + 1 allocations, far below one per step.
    assert!((1..=64).contains(&n), "{n} allocations for 1000 steps");
}

#[test]
fn recurrence_tape_grows_logarithmically() {
    let mut counts = vec![];
    for steps in [1, 10, 100, 10_000] {
        let x: Vec<f64> = (0..steps).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut grad = RnnGrad::default();
        rnn_backward(0.5, &x, &mut grad);
        let (_, n) = allocations_of(|| rnn_backward(black_box(0.5), &x, black_box(&mut grad)));
        counts.push((steps, n));
        // One allocation, then a reallocation each time the tape doubles.
        let bound = 2 + (steps as f64).log2().ceil() as usize;
        assert!(n <= bound, "{n} allocations for {steps} steps");
    }
    println!("RNN allocations per f_backward (steps, allocations): {counts:?}");
}

// ------------------------------------------- more per-sample reductions

/// A linear SVM's hinge loss: an `if` on the margin inside the sample loop.
#[differentiate(wrt(w, b))]
fn hinge_loss(w: &[f64], b: f64, x: &[f64], y: &[f64]) -> f64 {
    let d = w.len();
    let mut s = 0.0;
    for (i, yi) in y.iter().enumerate() {
        let mut z = b;
        for (j, wj) in w.iter().enumerate() {
            z += wj * x[i * d + j];
        }
        let margin = yi * z;
        if margin < 1.0 {
            s += 1.0 - margin;
        }
    }
    let mut r = 0.0;
    for wj in w.iter() {
        r += wj * wj;
    }
    s / y.len() as f64 + 0.01 * r
}

/// Softmax regression over 3 classes with fixed-size weights, a local
/// array of logits per sample and a stable log-sum-exp whose maximum is
/// written out (no loop-carried maximum).
#[allow(clippy::needless_range_loop)]
#[differentiate(wrt(w, b))]
fn softmax_loss(w: &[[f64; 4]; 3], b: &[f64; 3], x: &[f64], labels: &[usize]) -> f64 {
    let mut total = 0.0;
    for i in 0..labels.len() {
        let mut z = [0.0; 3];
        for c in 0..3 {
            z[c] = b[c];
            for k in 0..4 {
                z[c] += w[c][k] * x[i * 4 + k];
            }
        }
        let m = z[0].max(z[1]).max(z[2]);
        let mut sum = 0.0;
        for c in 0..3 {
            sum += (z[c] - m).exp();
        }
        total += m + sum.ln() - z[labels[i]];
    }
    total / labels.len() as f64
}

#[test]
fn hinge_and_softmax_backward_allocate_nothing() {
    let (x, y) = data(120, 4);
    let y: Vec<f64> = y.iter().map(|v| 2.0 * v - 1.0).collect();
    let w = [0.3, -0.2, 0.5, 0.1];
    let mut grad = HingeLossGrad::default();
    hinge_loss_backward(&w, 0.1, &x, &y, &mut grad);
    let (_, n) = allocations_of(|| hinge_loss_backward(black_box(&w), 0.1, &x, &y, &mut grad));
    println!("hinge loss, 120 samples: {n} allocations in f_backward");
    assert_eq!(n, 0);
    let (_, g) = hinge_loss_grad(&w, 0.1, &x[..20], &y[..5]);
    let mut analytic = g.w.clone();
    analytic.push(g.b);
    assert_gradient(
        |p| hinge_loss(&p[..4], p[4], &x[..20], &y[..5]),
        &[0.3, -0.2, 0.5, 0.1, 0.1],
        &analytic,
    );

    let labels: Vec<usize> = (0..120).map(|i| i % 3).collect();
    let (w1, _, _, _) = mlp_weights();
    let w = [w1[0], w1[1], w1[2]];
    let b = [0.1, -0.2, 0.05];
    let mut grad = SoftmaxLossGrad::default();
    let (_, first) = allocations_of(|| softmax_loss_backward(&w, &b, &x, &labels, &mut grad));
    println!("softmax regression, 120 samples: {first} allocations in f_backward");
    assert_eq!(first, 0);
    let (_, g) = softmax_loss_grad(&w, &b, &x[..20], &labels[..5]);
    let mut p: Vec<f64> = w.iter().flatten().copied().collect();
    p.extend(b);
    let mut analytic: Vec<f64> = g.w.iter().flatten().copied().collect();
    analytic.extend(g.b);
    assert_gradient(
        |p| {
            let w = [
                p[0..4].try_into().unwrap(),
                p[4..8].try_into().unwrap(),
                p[8..12].try_into().unwrap(),
            ];
            softmax_loss(&w, p[12..].try_into().unwrap(), &x[..20], &labels[..5])
        },
        &p,
        &analytic,
    );
}

// ------------------------------------------- loops that cannot be replayed

/// The same sum of squares as a replayable `for`, as a `for` with a
/// `break`, and as a `while`: the last two cannot be replayed by running
/// their range backwards, so they keep the index of every iteration on a
/// tape.
#[differentiate]
fn squares_for(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for xi in x.iter() {
        s += xi * xi;
    }
    s
}

#[differentiate]
fn squares_break(x: &[f64], limit: f64) -> f64 {
    let mut s = 0.0;
    for xi in x.iter() {
        if s > limit {
            break;
        }
        s += xi * xi;
    }
    s
}

#[differentiate]
fn squares_while(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut i = 0;
    while i < x.len() {
        s += x[i] * x[i];
        i += 1;
    }
    s
}

#[test]
fn loops_that_cannot_be_replayed_keep_their_index() {
    let x: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin()).collect();
    let mut g1 = SquaresForGrad::default();
    let mut g2 = SquaresBreakGrad::default();
    let mut g3 = SquaresWhileGrad::default();
    squares_for_backward(&x, &mut g1);
    squares_break_backward(&x, 1e9, &mut g2);
    squares_while_backward(&x, &mut g3);
    let (_, n_for) = allocations_of(|| squares_for_backward(black_box(&x), &mut g1));
    let (_, n_break) = allocations_of(|| squares_break_backward(black_box(&x), 1e9, &mut g2));
    let (_, n_while) = allocations_of(|| squares_while_backward(black_box(&x), &mut g3));
    println!(
        "sum of squares over 1000 elements: for {n_for}, for with break {n_break}, while {n_while} allocations"
    );
    assert_eq!(n_for, 0);
    assert!(n_break <= 64 && n_while <= 64, "{n_break} {n_while}");
    // The same gradient all three ways (twice 2x, after two calls).
    assert_eq!(g1.x, g2.x);
    assert_eq!(g1.x, g3.x);
}

// ------------------------------------------- the benchmarks' workloads W1–W4

/// The four workloads of `benches/` (issue 5), the very functions the
/// benchmarks time, compiled into this test.
#[path = "../benches/common/mod.rs"]
mod workloads;

#[test]
fn benchmark_workloads_backward_allocate_nothing() {
    use workloads::{w1, w2, w3, w4};

    let (w, b, x, y) = w1::POINT;
    let mut g = w1::NeuronGrad::default();
    let (_, n) = allocations_of(|| black_box(w1::neuron_backward(w, b, x, y, &mut g)));
    assert_eq!(n, 0, "W1");

    for size in w2::SIZES {
        let x = w2::point(size);
        let mut g = w2::RosenbrockGrad::default();
        // The first call sizes the empty gradient `Vec`; the benchmark, like
        // any training loop, reuses it (zeroed) afterwards.
        w2::rosenbrock_backward(&x, &mut g);
        g.zero();
        let (_, n) = allocations_of(|| black_box(w2::rosenbrock_backward(&x, &mut g)));
        assert_eq!(n, 0, "W2, n = {size}");
    }

    let d = w3::data(1_000);
    let mut g = w3::LogisticGrad::default();
    let (_, n) = allocations_of(|| black_box(w3::logistic_backward(d.w, d.b, &d.x, &d.y, &mut g)));
    assert_eq!(n, 0, "W3");

    let d = w4::data(w4::BATCH);
    let p = &d.params;
    let mut g = w4::MlpGrad::default();
    let (_, n) =
        allocations_of(|| black_box(w4::mlp_backward(p.w1, p.b1, p.w2, p.b2, &d.x, &d.y, &mut g)));
    assert_eq!(n, 0, "W4");
}
