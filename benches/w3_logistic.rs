//! W3, logistic regression (issue 5): value and gradient of the mean
//! ε-clamped cross-entropy of `sigmoid(w·x_i + b)` over N = 100 000 samples
//! of d = 8 features, in `w: [f64; 8]` and `b`.
//!
//! * `primal`: the function alone.
//! * `hand`: the analytic gradient written by hand (`benches/common/w3.rs`).
//! * `grad`: `logistic_backward` into a reused `LogisticGrad`, zeroed each
//!   time.
//! * `num-dual`: as its documentation recommends, a function generic over
//!   `D: DualNum` of an `SVector` of the 9 parameters, called through
//!   `num_dual::gradient`: one pass whose numbers carry all 9 derivatives.
//! * `echidna` (0.15): the tape-based reverse-mode peer, through its closure
//!   API `echidna::grad` over the 9 parameters; it records every operation of
//!   the 100 000 samples (why this crate: see `w1_neuron.rs`).
//! * symdiff cannot express this workload: it has no loops (the sum over
//!   100 000 samples would have to be written out), no `clamp`/`if`, and the
//!   data would have to be indexed with literals; not benchmarked.
//!
//! Every implementation is checked against `hand` (value and gradient, 1e-9
//! relative) before anything is timed; `cargo bench --bench w3_logistic --
//! --test` runs that check and each benchmark once.

mod common;

use common::peers::{dual_bce, dual_sigmoid, tape_bce, tape_sigmoid};
use common::w3::{answer, data, logistic, logistic_backward, logistic_hand, LogisticGrad, D, N};
use common::{assert_agree, Answer};
use criterion::{Criterion, SamplingMode};
use echidna::{Reverse, Scalar};
use nalgebra::SVector;
use num_dual::DualNum;
use std::hint::black_box;

/// Number of parameters: `w` then `b`.
const P: usize = D + 1;

/// The loss for num-dual, generic over the dual number; `p = [w…, b]`.
fn logistic_dual<T: DualNum<Primitive = f64> + Copy>(p: SVector<T, P>, x: &[f64], y: &[f64]) -> T {
    let n = y.len();
    let mut total = T::from(0.0);
    for i in 0..n {
        let mut z = p[D];
        for j in 0..D {
            z += p[j] * x[i * D + j];
        }
        total += dual_bce(dual_sigmoid(z), y[i]);
    }
    total / n as f64
}

fn params(w: &[f64; D], b: f64) -> [f64; P] {
    let mut p = [b; P];
    p[..D].copy_from_slice(w);
    p
}

fn logistic_num_dual(w: &[f64; D], b: f64, x: &[f64], y: &[f64]) -> (f64, SVector<f64, P>) {
    num_dual::gradient(|p| logistic_dual(p, x, y), &SVector::from(params(w, b)))
}

/// The loss on echidna's tape.
fn logistic_echidna(w: &[f64; D], b: f64, x: &[f64], y: &[f64]) -> (f64, Vec<f64>) {
    let mut value = 0.0;
    let gradient = echidna::grad(
        |p: &[Reverse<f64>]| {
            let n = y.len();
            let mut total = Reverse::constant(0.0);
            for i in 0..n {
                let mut z = p[D];
                for j in 0..D {
                    z += p[j] * x[i * D + j];
                }
                total += tape_bce(tape_sigmoid(z), y[i]);
            }
            let mean = total / n as f64;
            value = mean.value();
            mean
        },
        &params(w, b),
    );
    (value, gradient)
}

/// Every implementation against `hand`, before anything is timed.
fn check() {
    let data = data(N);
    let (x, y, w, b) = (&data.x, &data.y, &data.w, data.b);
    let (value, hand) = logistic_hand(w, b, x, y);
    let reference = answer("hand", value, &hand);

    let mut grad = LogisticGrad::default();
    let grad_value = logistic_backward(*w, b, x, y, &mut grad);
    let (dual_value, dual) = logistic_num_dual(w, b, x, y);
    let (tape_value, tape) = logistic_echidna(w, b, x, y);
    assert_agree(
        "W3",
        &reference,
        &[
            Answer::value_only("primal", logistic(*w, b, x, y)),
            answer("grad", grad_value, &grad),
            Answer::new("num-dual", dual_value, dual.as_slice().to_vec()),
            Answer::new("echidna", tape_value, tape),
        ],
    );
}

fn bench(c: &mut Criterion) {
    let data = data(N);
    let (x, y, w, b) = (&data.x, &data.y, &data.w, data.b);
    let mut group = c.benchmark_group("W3");
    // Milliseconds per iteration: every sample the same number of
    // iterations, rather than criterion's 1, 2, …, 100 ramp.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("primal", |bench| {
        bench.iter(|| logistic(black_box(*w), black_box(b), black_box(x), black_box(y)))
    });
    group.bench_function("hand", |bench| {
        bench.iter(|| logistic_hand(black_box(w), black_box(b), black_box(x), black_box(y)))
    });
    let mut grad = LogisticGrad::default();
    group.bench_function("grad", |bench| {
        bench.iter(|| {
            grad.zero();
            let value = logistic_backward(
                black_box(*w),
                black_box(b),
                black_box(x),
                black_box(y),
                &mut grad,
            );
            black_box(&grad);
            value
        })
    });
    group.bench_function("num-dual", |bench| {
        bench.iter(|| logistic_num_dual(black_box(w), black_box(b), black_box(x), black_box(y)))
    });
    group.bench_function("echidna", |bench| {
        bench.iter(|| logistic_echidna(black_box(w), black_box(b), black_box(x), black_box(y)))
    });
    group.finish();
}

fn main() {
    check();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
