//! Loops over samples whose `f_backward` runs four samples at a time
//! (`grad-macro/src/lanes.rs`; `tests/expand/reduction.expanded.rs` shows
//! the code): the value is the function's bit for bit and the gradient is
//! right for every number of samples (whole groups of four, a remainder,
//! none), and the companions panic where the function panics.

use grad::check::assert_gradient;
use grad::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

const D: usize = 3;

/// Logistic regression: a dot product (an inner loop), two kernels, two
/// sums per sample.
#[differentiate(wrt(w, b))]
fn logistic(w: [f64; D], b: f64, x: &[f64], y: &[f64]) -> f64 {
    let n = y.len();
    let mut total = 0.0;
    for i in 0..n {
        let mut z = b;
        for j in 0..D {
            z += w[j] * x[i * D + j];
        }
        total += bce(sigmoid(z), y[i]);
    }
    total / n as f64
}

/// A range starting at 1, two carried sums, a gradient element per sample.
#[differentiate(wrt(x, c))]
fn smooth(x: &[f64], c: f64) -> f64 {
    let mut s = 0.0;
    let mut t = 0.0;
    for i in 1..x.len() {
        let p = sigmoid(c * x[i]);
        s += p * x[i - 1];
        t += tanh(p);
    }
    s + 0.5 * t
}

/// Deterministic values in [-1, 1].
fn wobble(n: usize, seed: f64) -> Vec<f64> {
    (0..n).map(|k| ((k as f64 + 1.0) * seed).sin()).collect()
}

#[test]
fn a_per_sample_loss_in_lanes_has_the_functions_value_and_gradient() {
    let w = [0.4, -0.9, 1.3];
    for n in 1..=13 {
        let x = wobble(n * D, 0.7);
        let y: Vec<f64> = wobble(n, 1.9).iter().map(|v| f64::from(*v > 0.0)).collect();
        let (value, g) = logistic_grad(w, 0.1, &x, &y);
        assert_eq!(
            value.to_bits(),
            logistic(w, 0.1, &x, &y).to_bits(),
            "n = {n}"
        );
        let params = [w[0], w[1], w[2], 0.1];
        assert_gradient(
            |p: &[f64]| logistic([p[0], p[1], p[2]], p[3], &x, &y),
            &params,
            &[g.w[0], g.w[1], g.w[2], g.b],
        );
    }
}

#[test]
fn sums_from_any_start_and_slice_gradients_in_lanes_are_right() {
    for n in 0..=11 {
        let x = wobble(n, 1.1);
        let (value, g) = smooth_grad(&x, 0.8);
        assert_eq!(value.to_bits(), smooth(&x, 0.8).to_bits(), "n = {n}");
        if n == 0 {
            continue;
        }
        let mut params = x.clone();
        params.push(0.8);
        let mut analytic = g.x.clone();
        analytic.push(g.c);
        assert_gradient(|p: &[f64]| smooth(&p[..n], p[n]), &params, &analytic);
    }
}

#[test]
fn the_companions_panic_where_the_function_panics() {
    let w = [0.4, -0.9, 1.3];
    for n in 1..=9 {
        let y = vec![1.0; n];
        for len in [n * D - 1, n * D - D, n * D] {
            let x = wobble(len, 0.3);
            let function = catch_unwind(|| logistic(w, 0.1, &x, &y)).is_err();
            let grad = catch_unwind(|| logistic_grad(w, 0.1, &x, &y)).is_err();
            let mut into = LogisticGrad::default();
            let backward = catch_unwind(AssertUnwindSafe(|| {
                logistic_backward(w, 0.1, &x, &y, &mut into)
            }))
            .is_err();
            assert_eq!(function, len < n * D, "n = {n}, len = {len}");
            assert_eq!(
                (grad, backward),
                (function, function),
                "n = {n}, len = {len}"
            );
        }
    }
}

/// The user's names are the lanes' own names: the generated ones step aside.
#[differentiate(wrt(w))]
fn named_like_the_lanes(w: f64, covered: &[f64], groups: usize) -> f64 {
    let mut lane = 0.0;
    for i_chunk in 0..covered.len() {
        let lanes_end = sigmoid(w * covered[i_chunk] - covered[covered.len() - 1 - i_chunk]);
        lane += lanes_end * groups as f64;
    }
    lane
}

#[test]
fn the_lanes_names_do_not_capture_the_users() {
    for n in [3, 8, 9] {
        let x = wobble(n, 0.9);
        let (value, g) = named_like_the_lanes_grad(0.7, &x, 2);
        assert_eq!(value.to_bits(), named_like_the_lanes(0.7, &x, 2).to_bits());
        assert_gradient(
            |p: &[f64]| named_like_the_lanes(p[0], &x, 2),
            &[0.7],
            &[g.w],
        );
    }
}
