//! Stencil loops over slices, whose `f_backward` reads the slice through one
//! bounds-checked window taken before the loop (`grad-macro/src/window.rs`):
//! the gradient is right, and the companion panics on exactly the inputs
//! where the function does, and on no other, including where the read that
//! would fail sits behind an `if`, a `continue` or a `break`.

use grad::check::assert_gradient;
use grad::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Reads `x[i]`, `x[i + 1]` and `x[i + 2]`: a window reaching 2 past the end
/// of the range.
#[differentiate]
fn second_difference(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n - 2 {
        let d = x[i] - 2.0 * x[i + 1] + x[i + 2];
        s += d * d;
    }
    s
}

/// The range's end is the caller's: the loop reads past `x` when
/// `m + 1 > x.len()`.
#[differentiate(wrt(x))]
fn shifted(x: &[f64], m: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..m {
        s += x[i] * x[i + 1];
    }
    s
}

/// The read of `x[i + 1]` is conditional: it must not be checked up front.
#[differentiate(wrt(x))]
fn guarded(x: &[f64], m: usize) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..m {
        if i + 1 < n {
            s += x[i + 1].sin();
        }
    }
    s
}

/// The loop stops before it would read past the end.
#[differentiate(wrt(x))]
fn stops_early(x: &[f64], m: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..m {
        if x[i] > 5.0 {
            break;
        }
        s += x[i] * x[i + 1];
    }
    s
}

/// The read that would fail comes after a `continue` that skips it.
#[differentiate(wrt(x))]
fn skips(x: &[f64], m: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..m {
        if i + 1 >= x.len() {
            continue;
        }
        s += x[i] * x[i + 1];
    }
    s
}

/// A stencil in a stencil: both loops read through windows of their own.
#[differentiate]
fn nested(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n - 1 {
        let a = x[i + 1];
        for j in 0..i {
            s += a * x[j] * x[j + 1];
        }
    }
    s
}

/// Rows of 3: `x[i * 3 + j]` in a loop over `j` reads through a window of
/// the row, one bounds check per row.
#[differentiate(wrt(w))]
fn rows(w: [f64; 3], x: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        let mut z = 0.0;
        for j in 0..3 {
            z += w[j] * x[i * 3 + j];
        }
        s += z.tanh();
    }
    s
}

const X: [f64; 6] = [0.5, -1.25, 2.0, 0.75, -0.5, 1.5];

/// Whether `f` panics (the message is not part of the contract).
fn panics<R>(f: impl FnOnce() -> R) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

#[test]
fn stencil_gradient_matches_differences() {
    let (value, g) = second_difference_grad(&X);
    assert_eq!(value.to_bits(), second_difference(&X).to_bits());
    assert_gradient(second_difference, &X, &g.x);
    let (value, g) = nested_grad(&X);
    assert_eq!(value.to_bits(), nested(&X).to_bits());
    assert_gradient(nested, &X, &g.x);
    let w = [0.5, -1.0, 0.25];
    let (value, g) = rows_grad(w, &X, 2);
    assert_eq!(value.to_bits(), rows(w, &X, 2).to_bits());
    assert_gradient(|w| rows([w[0], w[1], w[2]], &X, 2), &w, &g.w);
    let (value, g) = shifted_grad(&X, 5);
    assert_eq!(value.to_bits(), shifted(&X, 5).to_bits());
    assert_gradient(|x| shifted(x, 5), &X, &g.x);
}

#[test]
fn panics_where_the_function_does() {
    for m in 0..=8 {
        let primal = panics(|| shifted(&X, m));
        let companion = panics(|| shifted_grad(&X, m));
        assert_eq!(primal, m + 1 > X.len(), "m = {m}");
        assert_eq!(companion, primal, "m = {m}");
    }
    // An empty range reads nothing, whatever the slice.
    assert_eq!(shifted_grad(&[], 0).0, 0.0);
    // Rows: the last row must be whole.
    let w = [0.5, -1.0, 0.25];
    for (len, n) in [(6, 2), (6, 3), (5, 2), (3, 1), (0, 0), (0, 1)] {
        let x = &X[..len];
        let primal = panics(|| rows(w, x, n));
        assert_eq!(primal, n * 3 > len, "len = {len}, n = {n}");
        assert_eq!(
            panics(|| rows_grad(w, x, n)),
            primal,
            "len = {len}, n = {n}"
        );
    }
}

#[test]
fn conditional_reads_are_not_checked_up_front() {
    let m = X.len() + 3;
    let (value, g) = guarded_grad(&X, m);
    assert_eq!(value.to_bits(), guarded(&X, m).to_bits());
    assert_gradient(|x| guarded(x, m), &X, &g.x);
}

#[test]
fn reads_after_a_continue_are_not_checked_up_front() {
    let m = X.len() + 3;
    let (value, g) = skips_grad(&X, m);
    assert_eq!(value.to_bits(), skips(&X, m).to_bits());
    assert_gradient(|x| skips(x, m), &X, &g.x);
}

#[test]
fn a_loop_that_breaks_is_not_checked_up_front() {
    let mut x = X;
    x[3] = 9.0;
    let m = 100;
    let (value, g) = stops_early_grad(&x, m);
    assert_eq!(value.to_bits(), stops_early(&x, m).to_bits());
    assert_gradient(|x| stops_early(x, m), &x, &g.x);
    assert!(panics(|| stops_early_grad(&X, m)));
}
