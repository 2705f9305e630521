//! W1, the seed neuron (issue 5): value and gradient of
//! `bce(sigmoid(w·x + b), y)` in `(w, b)`, six ways.
//!
//! * `primal`: the function alone.
//! * `hand`: the analytic gradient written by hand (`benches/common/w1.rs`).
//! * `grad`: `neuron_backward` into a reused `NeuronGrad`, zeroed each time.
//! * `num-dual`: forward mode as its documentation recommends, a function
//!   generic over `D: DualNum` called through `num_dual::gradient` with an
//!   `SVector` of the two parameters (one pass carrying both derivatives).
//! * `echidna`: the tape-based reverse-mode peer. Among the crates a user
//!   finds for reverse mode on scalar code, echidna (0.15) is the one that is
//!   actively developed (its latest release needs Rust 1.93), works on
//!   stable Rust, and is built for speed: an Adept-style two-stack tape
//!   storing precomputed partials, `Copy` 12-byte variables, a thread-local
//!   tape pooled between calls. With `default-features = false` it depends
//!   on `num-traits` only. The others: `reverse` 0.2.2 is a small `RefCell`
//!   tape last released in 2021; `ad_trait` 0.3 builds a global graph behind
//!   a function-engine API and pulls bevy_reflect, nalgebra, rand and serde
//!   by default; `easy-ml` is a whole ML library whose `Record` type is one
//!   part; `autodiff` is forward mode; `rust-ad` is an unfinished macro
//!   without loops or branches. It is used through its documented closure
//!   API, `echidna::grad`; the value is read from the output variable.
//! * `symdiff` (2.1): `#[gradient(var = p, dim = 2)]`. Its syntax has no
//!   `clamp`, `min`/`max`, `if` or calls, so the ε-clamp cannot be written:
//!   the function it differentiates is the *unclamped* cross-entropy with the
//!   sigmoid spelled out, which equals the workload wherever
//!   `ε ≤ p ≤ 1 − ε`, as at the notebook's point (`p = 0.9975`). Its
//!   differentiated parameter and the data must be slices indexed with
//!   literals (`p[0]`, `d[1]`). It emits the gradient only, so an iteration
//!   calls the function and its `_gradient` for the value and the gradient
//!   every other implementation returns.
//!
//! Every implementation is checked against `hand` (value and gradient, 1e-9
//! relative) before anything is timed; `cargo bench --bench w1_neuron --
//! --test` runs that check and each benchmark once.

mod common;

use common::peers::{dual_bce, dual_sigmoid, tape_bce, tape_sigmoid};
use common::w1::{answer, neuron, neuron_backward, neuron_hand, NeuronGrad, POINT};
use common::{assert_agree, Answer};
use criterion::Criterion;
use echidna::{Reverse, Scalar};
use nalgebra::SVector;
use num_dual::DualNum;
use std::hint::black_box;

/// The neuron for num-dual, generic over the dual number.
fn neuron_dual<D: DualNum<Primitive = f64> + Copy>(p: SVector<D, 2>, x: f64, y: f64) -> D {
    dual_bce(dual_sigmoid(p[0] * x + p[1]), y)
}

fn neuron_num_dual(w: f64, b: f64, x: f64, y: f64) -> (f64, SVector<f64, 2>) {
    num_dual::gradient(|p| neuron_dual(p, x, y), &SVector::from([w, b]))
}

/// The neuron on echidna's tape.
fn neuron_echidna(w: f64, b: f64, x: f64, y: f64) -> (f64, Vec<f64>) {
    let mut value = 0.0;
    let gradient = echidna::grad(
        |p: &[Reverse<f64>]| {
            let loss = tape_bce(tape_sigmoid(p[0] * x + p[1]), y);
            value = loss.value();
            loss
        },
        &[w, b],
    );
    (value, gradient)
}

/// symdiff's expression of the neuron: the parameters `p = [w, b]`, the data
/// `d = [x, y]`; no clamp (see the top of the file).
mod with_symdiff {
    // symdiff's output, not ours to lint: it wraps every gradient in
    // `unsafe {}` and writes `-2f64 * …`-style products.
    #![allow(unused_unsafe, clippy::all)]
    #[symdiff::gradient(var = p, dim = 2)]
    pub fn neuron(p: &[f64], d: &[f64]) -> f64 {
        let z = p[0] * d[0] + p[1];
        let s = 1.0 / (1.0 + (-z).exp());
        -(d[1] * s.ln() + (1.0 - d[1]) * (1.0 - s).ln())
    }
}

fn neuron_symdiff(p: &[f64; 2], d: &[f64; 2]) -> (f64, [f64; 2]) {
    (
        with_symdiff::neuron(p, d),
        with_symdiff::neuron_gradient(p, d),
    )
}

/// Every implementation against `hand`, before anything is timed.
fn check() {
    let (w, b, x, y) = POINT;
    let (value, hand) = neuron_hand(w, b, x, y);
    let reference = answer("hand", value, &hand);

    let mut grad = NeuronGrad::default();
    let grad_value = neuron_backward(w, b, x, y, &mut grad);
    let (dual_value, dual) = neuron_num_dual(w, b, x, y);
    let (tape_value, tape) = neuron_echidna(w, b, x, y);
    let (sym_value, sym) = neuron_symdiff(&[w, b], &[x, y]);
    assert_agree(
        "W1",
        &reference,
        &[
            Answer::value_only("primal", neuron(w, b, x, y)),
            answer("grad", grad_value, &grad),
            Answer::new("num-dual", dual_value, dual.as_slice().to_vec()),
            Answer::new("echidna", tape_value, tape),
            Answer::new("symdiff", sym_value, sym.to_vec()),
        ],
    );
}

fn bench(c: &mut Criterion) {
    let (w, b, x, y) = POINT;
    let mut group = c.benchmark_group("W1");
    group.bench_function("primal", |bench| {
        bench.iter(|| neuron(black_box(w), black_box(b), black_box(x), black_box(y)))
    });
    group.bench_function("hand", |bench| {
        bench.iter(|| neuron_hand(black_box(w), black_box(b), black_box(x), black_box(y)))
    });
    let mut grad = NeuronGrad::default();
    group.bench_function("grad", |bench| {
        bench.iter(|| {
            grad.zero();
            let value = neuron_backward(
                black_box(w),
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
        bench.iter(|| neuron_num_dual(black_box(w), black_box(b), black_box(x), black_box(y)))
    });
    group.bench_function("echidna", |bench| {
        bench.iter(|| neuron_echidna(black_box(w), black_box(b), black_box(x), black_box(y)))
    });
    group.bench_function("symdiff", |bench| {
        bench.iter(|| neuron_symdiff(black_box(&[w, b]), black_box(&[x, y])))
    });
    group.finish();
}

fn main() {
    check();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
