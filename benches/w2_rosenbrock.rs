//! W2, Rosenbrock (issue 5): value and gradient of
//! `Σ_{i<n−1} 100 (x_{i+1} − x_i²)² + (1 − x_i)²` in every `x_i`, for
//! n = 2, 100 and 10 000, one group per size (`W2/n=…`).
//!
//! * `primal`: the function alone.
//! * `hand`: the analytic gradient written by hand (`benches/common/w2.rs`).
//! * `hand (adding)`: the same, but adding into a zeroed gradient as
//!   `f_backward` must (DESIGN.md): what the contract costs, apart from the
//!   transform. The target stays `hand`.
//! * `grad`: `rosenbrock_backward` into a reused `RosenbrockGrad` (its `Vec`
//!   keeps its length), zeroed each time.
//! * `grad (array)`, n = 2 and 100: the same function over `[f64; n]`, the
//!   dimension fixed at compile time as symdiff needs it, through `f_grad`,
//!   which returns a fresh gradient by value as symdiff returns its array.
//! * `num-dual`: as its documentation recommends for a vector of variables,
//!   a function generic over `D: DualNum` and the dimension, called through
//!   the `Gradients` trait: for n = 2 and 100 (`SVector`) that is one pass
//!   with `DualSVec<f64, n>` numbers carrying all n derivatives; for
//!   n = 10 000 (`DVector`) it is n passes with `Dual64`, one per input, so
//!   O(n²): measured with 10 samples.
//! * `echidna` (0.15): the tape-based reverse-mode peer, through its closure
//!   API `echidna::grad`; why this crate is said in `w1_neuron.rs`.
//! * `symdiff` (2.1): it has no loops, so the sum must be written out term by
//!   term with literal indices: at n = 2 that is the natural formula, at
//!   n = 100 the 99 terms are in `benches/w2/symdiff_n100.rs`. n = 10 000 is
//!   out of its reach: written out at n = 1 000, `cargo check` had not
//!   finished expanding it after eight minutes (n = 100 takes seconds). It
//!   emits the gradient only, so an iteration calls the function and its
//!   `_gradient`.
//!
//! Every implementation is checked against `hand` (value and gradient, 1e-9
//! relative) before anything is timed; `cargo bench --bench w2_rosenbrock --
//! --test` runs that check and each benchmark once.

mod common;

use common::w2::{
    answer, point, rosenbrock, rosenbrock_100_grad, rosenbrock_2_grad, rosenbrock_backward,
    rosenbrock_hand, rosenbrock_hand_adding, RosenbrockGrad,
};
use common::{assert_agree, Answer};
use criterion::{Criterion, SamplingMode};
use echidna::{Reverse, Scalar};
use nalgebra::allocator::Allocator;
use nalgebra::{DVector, DefaultAllocator, Dim, OVector, SVector};
use num_dual::{DualNum, Gradients};
use num_traits::Float as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "w2/symdiff_n100.rs"]
mod symdiff_n100;

/// Rosenbrock for num-dual, generic over the dual number and the dimension.
fn rosenbrock_dual<D: DualNum<Primitive = f64> + Copy, N: Dim>(x: OVector<D, N>, _: &()) -> D
where
    DefaultAllocator: Allocator<N>,
{
    let n = x.len();
    let mut total = D::from(0.0);
    for i in 0..n - 1 {
        total += (x[i + 1] - x[i].powi(2)).powi(2) * 100.0 + (-x[i] + 1.0).powi(2);
    }
    total
}

/// `num_dual`'s answer for a statically sized point (one vector pass).
fn num_dual_static<const N: usize>(x: &SVector<f64, N>) -> (f64, SVector<f64, N>) {
    Gradients::gradient(rosenbrock_dual, x, &())
}

/// `num_dual`'s answer for a dynamically sized point (one pass per input).
fn num_dual_dynamic(x: &DVector<f64>) -> (f64, DVector<f64>) {
    Gradients::gradient(rosenbrock_dual, x, &())
}

/// Rosenbrock on echidna's tape.
fn rosenbrock_echidna(x: &[f64]) -> (f64, Vec<f64>) {
    let mut value = 0.0;
    let gradient = echidna::grad(
        |x: &[Reverse<f64>]| {
            let n = x.len();
            let mut total = Reverse::constant(0.0);
            for i in 0..n - 1 {
                total += 100.0 * (x[i + 1] - x[i].powi(2)).powi(2) + (1.0 - x[i]).powi(2);
            }
            value = total.value();
            total
        },
        x,
    );
    (value, gradient)
}

mod with_symdiff {
    // symdiff's output, not ours to lint: it wraps every gradient in
    // `unsafe {}` and writes `-2f64 * …`-style products.
    #![allow(unused_unsafe, clippy::all)]
    #[symdiff::gradient(var = x, dim = 2)]
    pub fn rosenbrock_2(x: &[f64]) -> f64 {
        100.0 * (x[1] - x[0].powi(2)).powi(2) + (1.0 - x[0]).powi(2)
    }
}

fn symdiff_2(x: &[f64]) -> (f64, [f64; 2]) {
    (
        with_symdiff::rosenbrock_2(x),
        with_symdiff::rosenbrock_2_gradient(x),
    )
}

fn symdiff_100(x: &[f64]) -> (f64, [f64; 100]) {
    (
        symdiff_n100::rosenbrock_100(x),
        symdiff_n100::rosenbrock_100_gradient(x),
    )
}

/// The num-dual and symdiff answers at `x` (whichever exist for its size).
fn peer_answers(x: &[f64]) -> Vec<Answer> {
    let mut answers = Vec::new();
    match x.len() {
        2 => {
            let (v, g) = num_dual_static(&SVector::<f64, 2>::from_column_slice(x));
            answers.push(Answer::new("num-dual", v, g.as_slice().to_vec()));
            let (v, g) = symdiff_2(x);
            answers.push(Answer::new("symdiff", v, g.to_vec()));
            let (v, g) = rosenbrock_2_grad(x.try_into().expect("n = 2"));
            answers.push(Answer::new("grad (array)", v, g.x.to_vec()));
        }
        100 => {
            let (v, g) = num_dual_static(&SVector::<f64, 100>::from_column_slice(x));
            answers.push(Answer::new("num-dual", v, g.as_slice().to_vec()));
            let (v, g) = symdiff_100(x);
            answers.push(Answer::new("symdiff", v, g.to_vec()));
            let (v, g) = rosenbrock_100_grad(x.try_into().expect("n = 100"));
            answers.push(Answer::new("grad (array)", v, g.x.to_vec()));
        }
        _ => {
            let start = Instant::now();
            let (v, g) = num_dual_dynamic(&DVector::from_column_slice(x));
            println!(
                "W2/n={}: one num-dual gradient ({} forward passes) took {:.2?}",
                x.len(),
                x.len(),
                start.elapsed()
            );
            answers.push(Answer::new("num-dual", v, g.as_slice().to_vec()));
        }
    }
    answers
}

/// Every implementation against `hand`, before anything is timed.
fn check(n: usize) {
    let x = point(n);
    let mut hand = vec![0.0; n];
    let value = rosenbrock_hand(&x, &mut hand);
    let reference = answer("hand", value, &hand);

    let mut grad = RosenbrockGrad::default();
    let grad_value = rosenbrock_backward(&x, &mut grad);
    let (tape_value, tape) = rosenbrock_echidna(&x);
    let mut adding = vec![0.0; n];
    let adding_value = rosenbrock_hand_adding(&x, &mut adding);
    let mut answers = vec![
        Answer::value_only("primal", rosenbrock(&x)),
        answer("hand (adding)", adding_value, &adding),
        answer("grad", grad_value, &grad.x),
        Answer::new("echidna", tape_value, tape),
    ];
    answers.extend(peer_answers(&x));
    assert_agree(&format!("W2/n={n}"), &reference, &answers);
}

fn bench(c: &mut Criterion, n: usize) {
    let x = point(n);
    let mut group = c.benchmark_group(format!("W2/n={n}"));
    group.bench_function("primal", |bench| bench.iter(|| rosenbrock(black_box(&x))));
    let mut hand = vec![0.0; n];
    group.bench_function("hand", |bench| {
        bench.iter(|| {
            let value = rosenbrock_hand(black_box(&x), &mut hand);
            black_box(&hand);
            value
        })
    });
    group.bench_function("hand (adding)", |bench| {
        bench.iter(|| {
            hand.fill(0.0);
            let value = rosenbrock_hand_adding(black_box(&x), &mut hand);
            black_box(&hand);
            value
        })
    });
    let mut grad = RosenbrockGrad::default();
    group.bench_function("grad", |bench| {
        bench.iter(|| {
            grad.zero();
            let value = rosenbrock_backward(black_box(&x), &mut grad);
            black_box(&grad);
            value
        })
    });
    group.bench_function("echidna", |bench| {
        bench.iter(|| rosenbrock_echidna(black_box(&x)))
    });
    // num-dual last: at n = 10 000 it changes the group's settings.
    match n {
        2 => {
            let xa: [f64; 2] = x.as_slice().try_into().expect("n = 2");
            // `f_grad`: a fresh gradient returned by value, as symdiff
            // returns its array (no allocation for arrays).
            group.bench_function("grad (array)", |bench| {
                bench.iter(|| rosenbrock_2_grad(black_box(xa)))
            });
            group.bench_function("symdiff", |bench| bench.iter(|| symdiff_2(black_box(&x))));
            let xs = SVector::<f64, 2>::from_column_slice(&x);
            group.bench_function("num-dual", |bench| {
                bench.iter(|| num_dual_static(black_box(&xs)))
            });
        }
        100 => {
            let xa: [f64; 100] = x.as_slice().try_into().expect("n = 100");
            // `f_grad`: a fresh gradient returned by value, as symdiff
            // returns its array (no allocation for arrays).
            group.bench_function("grad (array)", |bench| {
                bench.iter(|| rosenbrock_100_grad(black_box(xa)))
            });
            group.bench_function("symdiff", |bench| bench.iter(|| symdiff_100(black_box(&x))));
            let xs = SVector::<f64, 100>::from_column_slice(&x);
            group.bench_function("num-dual", |bench| {
                bench.iter(|| num_dual_static(black_box(&xs)))
            });
        }
        _ => {
            // n passes over n terms, a few tenths of a second: 10 samples of
            // one iteration each.
            let xs = DVector::from_column_slice(&x);
            group.sampling_mode(SamplingMode::Flat);
            group.sample_size(10);
            group.warm_up_time(Duration::from_millis(1));
            group.measurement_time(Duration::from_secs(1));
            group.bench_function("num-dual", |bench| {
                bench.iter(|| num_dual_dynamic(black_box(&xs)))
            });
        }
    }
    group.finish();
}

fn main() {
    for n in common::w2::SIZES {
        check(n);
    }
    let mut criterion = Criterion::default().configure_from_args();
    for n in common::w2::SIZES {
        bench(&mut criterion, n);
    }
    criterion.final_summary();
}
