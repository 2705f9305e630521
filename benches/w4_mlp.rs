//! W4, an MLP 8-16-1 (issue 5): value and gradient of the mean ε-clamped
//! cross-entropy of `sigmoid(w2·tanh(w1 x + b1) + b2)` over a batch of 256,
//! in every weight and bias (161 parameters, fixed-size arrays).
//!
//! * `primal`: the function alone.
//! * `hand`: backpropagation written by hand (`benches/common/w4.rs`).
//! * `grad`: `mlp_backward` into a reused `MlpGrad`, zeroed each time.
//! * `num-dual`: as its documentation recommends, a function generic over
//!   `D: DualNum` of an `SVector` of the 161 parameters, called through
//!   `num_dual::gradient`: one pass whose numbers carry all 161 derivatives.
//! * `echidna` (0.15): the tape-based reverse-mode peer, through its closure
//!   API `echidna::grad` over the 161 parameters (why this crate: see
//!   `w1_neuron.rs`).
//! * symdiff cannot express this workload: no loops, no `tanh`, no
//!   `clamp`/`if`; not benchmarked.
//!
//! Every implementation is checked against `hand` (value and gradient, 1e-9
//! relative) before anything is timed; `cargo bench --bench w4_mlp -- --test`
//! runs that check and each benchmark once.

mod common;

use common::peers::{dual_bce, dual_sigmoid, tape_bce, tape_sigmoid};
use common::w4::{answer, data, flatten, mlp, mlp_backward, mlp_hand, MlpGrad, Params};
use common::w4::{BATCH, HIDDEN, IN};
use common::{assert_agree, Answer};
use criterion::{Criterion, SamplingMode};
use echidna::{Reverse, Scalar};
use nalgebra::SVector;
use num_dual::DualNum;
use num_traits::Float as _;
use std::hint::black_box;

/// Number of parameters, flattened as `w1` row by row, `b1`, `w2`, `b2`.
const P: usize = HIDDEN * IN + 2 * HIDDEN + 1;
/// Where `b1`, `w2` and `b2` start in the flattened parameters.
const B1: usize = HIDDEN * IN;
const W2: usize = B1 + HIDDEN;
const B2: usize = W2 + HIDDEN;

fn flat_params(p: &Params) -> Vec<f64> {
    flatten(&p.w1, &p.b1, &p.w2, p.b2)
}

/// The loss for num-dual, generic over the dual number.
fn mlp_dual<T: DualNum<Primitive = f64> + Copy>(p: SVector<T, P>, x: &[f64], y: &[f64]) -> T {
    let n = y.len();
    let mut total = T::from(0.0);
    for i in 0..n {
        let mut z = p[B2];
        for j in 0..HIDDEN {
            let mut a = p[B1 + j];
            for k in 0..IN {
                a += p[j * IN + k] * x[i * IN + k];
            }
            z += p[W2 + j] * a.tanh();
        }
        total += dual_bce(dual_sigmoid(z), y[i]);
    }
    total / n as f64
}

fn mlp_num_dual(p: &SVector<f64, P>, x: &[f64], y: &[f64]) -> (f64, SVector<f64, P>) {
    num_dual::gradient(|p| mlp_dual(p, x, y), p)
}

/// The loss on echidna's tape.
fn mlp_echidna(p: &[f64], x: &[f64], y: &[f64]) -> (f64, Vec<f64>) {
    let mut value = 0.0;
    let gradient = echidna::grad(
        |p: &[Reverse<f64>]| {
            let n = y.len();
            let mut total = Reverse::constant(0.0);
            for i in 0..n {
                let mut z = p[B2];
                for j in 0..HIDDEN {
                    let mut a = p[B1 + j];
                    for k in 0..IN {
                        a += p[j * IN + k] * x[i * IN + k];
                    }
                    z += p[W2 + j] * a.tanh();
                }
                total += tape_bce(tape_sigmoid(z), y[i]);
            }
            let mean = total / n as f64;
            value = mean.value();
            mean
        },
        p,
    );
    (value, gradient)
}

/// Every implementation against `hand`, before anything is timed.
fn check() {
    let data = data(BATCH);
    let (x, y, p) = (&data.x, &data.y, &data.params);
    let mut hand = MlpGrad::default();
    let value = mlp_hand(p, x, y, &mut hand);
    let reference = answer("hand", value, &hand);

    let mut grad = MlpGrad::default();
    let grad_value = mlp_backward(p.w1, p.b1, p.w2, p.b2, x, y, &mut grad);
    let flat = flat_params(p);
    let (dual_value, dual) = mlp_num_dual(&SVector::from_column_slice(&flat), x, y);
    let (tape_value, tape) = mlp_echidna(&flat, x, y);
    assert_agree(
        "W4",
        &reference,
        &[
            Answer::value_only("primal", mlp(p.w1, p.b1, p.w2, p.b2, x, y)),
            answer("grad", grad_value, &grad),
            Answer::new("num-dual", dual_value, dual.as_slice().to_vec()),
            Answer::new("echidna", tape_value, tape),
        ],
    );
}

fn bench(c: &mut Criterion) {
    let data = data(BATCH);
    let (x, y, p) = (&data.x, &data.y, &data.params);
    let mut group = c.benchmark_group("W4");
    // Up to milliseconds per iteration (the peers): every sample the same
    // number of iterations, rather than criterion's 1, 2, …, 100 ramp.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("primal", |bench| {
        bench.iter(|| {
            let p = black_box(p);
            mlp(p.w1, p.b1, p.w2, p.b2, black_box(x), black_box(y))
        })
    });
    let mut hand = MlpGrad::default();
    group.bench_function("hand", |bench| {
        bench.iter(|| {
            let value = mlp_hand(black_box(p), black_box(x), black_box(y), &mut hand);
            black_box(&hand);
            value
        })
    });
    let mut grad = MlpGrad::default();
    group.bench_function("grad", |bench| {
        bench.iter(|| {
            grad.zero();
            let p = black_box(p);
            let value = mlp_backward(
                p.w1,
                p.b1,
                p.w2,
                p.b2,
                black_box(x),
                black_box(y),
                &mut grad,
            );
            black_box(&grad);
            value
        })
    });
    let flat = flat_params(p);
    let params = SVector::from_column_slice(&flat);
    group.bench_function("num-dual", |bench| {
        bench.iter(|| mlp_num_dual(black_box(&params), black_box(x), black_box(y)))
    });
    group.bench_function("echidna", |bench| {
        bench.iter(|| mlp_echidna(black_box(&flat), black_box(x), black_box(y)))
    });
    group.finish();
}

fn main() {
    check();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
