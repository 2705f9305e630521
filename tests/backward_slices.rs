//! The gradient struct of a function with slice and array parameters and
//! its accumulating `f_backward`: `Vec` fields start empty from `Default`
//! and are sized on first use, repeated calls add up, `zero()` keeps the
//! lengths, gradients add with `+` and `+=`, and a gradient of the wrong
//! non-zero length is a panic naming the field and both lengths.

use grad::check::assert_gradient;
use grad::prelude::*;

/// Each element of `x` and `y` gets exactly one contribution, so repeated
/// calls add up bit for bit.
#[differentiate]
fn weighted_dot(x: &[f64], y: &[f64], c: f64) -> f64 {
    let mut s = 0.0;
    for (a, b) in x.iter().zip(y.iter()) {
        s += a * b;
    }
    s * c
}

/// An array parameter beside a slice.
#[differentiate]
fn with_array(v: [f64; 2], x: &[f64]) -> f64 {
    let mut s = 0.0;
    for xi in x.iter() {
        s += xi * v[0];
    }
    s + v[1]
}

const X: [f64; 3] = [0.5, -1.0, 2.0];
const Y: [f64; 3] = [1.5, 0.25, -0.75];

#[test]
fn default_gives_empty_vecs_that_backward_sizes() {
    let mut g = WeightedDotGrad::default();
    assert!(g.x.is_empty() && g.y.is_empty());
    assert_eq!(g.c, 0.0);
    let value = weighted_dot_backward(&X, &Y, 2.0, &mut g);
    assert_eq!(value, weighted_dot(&X, &Y, 2.0));
    assert_eq!(g.x, vec![3.0, 0.5, -1.5]);
    assert_eq!(g.y, vec![1.0, -2.0, 4.0]);
    assert_eq!(g.c, 0.75 - 0.25 - 1.5);
    // `f_grad` is a fresh `f_backward`.
    assert_eq!(weighted_dot_grad(&X, &Y, 2.0), (value, g.clone()));
    assert_gradient(
        |p| weighted_dot(&p[..3], &p[3..6], p[6]),
        &[X.as_slice(), &Y, &[2.0]].concat(),
        &[g.x.as_slice(), &g.y, &[g.c]].concat(),
    );
    // An array field is all zeros from `Default`, there is nothing to size.
    assert_eq!(WithArrayGrad::default().v, [0.0, 0.0]);
}

#[test]
fn repeated_calls_accumulate_exactly() {
    let (_, once) = weighted_dot_grad(&X, &Y, 2.0);
    let mut g = WeightedDotGrad::default();
    weighted_dot_backward(&X, &Y, 2.0, &mut g);
    weighted_dot_backward(&X, &Y, 2.0, &mut g);
    let twice = WeightedDotGrad {
        x: once.x.iter().map(|v| 2.0 * v).collect(),
        y: once.y.iter().map(|v| 2.0 * v).collect(),
        c: 2.0 * once.c,
    };
    assert_eq!(g, twice);
    assert_eq!(g, once.clone() + once.clone());

    // Another point: the sum of both gradients.
    let (_, other) = weighted_dot_grad(&Y, &X, -1.0);
    weighted_dot_backward(&Y, &X, -1.0, &mut g);
    assert_eq!(g, once.clone() + once.clone() + other);

    // Arrays too.
    let mut g = WithArrayGrad::default();
    let (_, once) = with_array_grad([0.5, 3.0], &X);
    with_array_backward([0.5, 3.0], &X, &mut g);
    with_array_backward([0.5, 3.0], &X, &mut g);
    assert_eq!(g.v, [2.0 * once.v[0], 2.0 * once.v[1]]);
    assert_eq!(g.x, once.x.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
}

#[test]
fn zero_keeps_the_lengths() {
    let (_, mut g) = weighted_dot_grad(&X, &Y, 2.0);
    g.zero();
    assert_eq!(g.x, vec![0.0; 3]);
    assert_eq!(g.y, vec![0.0; 3]);
    assert_eq!(g.c, 0.0);
    // After a reset it accumulates from zero: a fresh gradient again.
    weighted_dot_backward(&X, &Y, 2.0, &mut g);
    assert_eq!(g, weighted_dot_grad(&X, &Y, 2.0).1);

    let (_, mut g) = with_array_grad([0.5, 3.0], &X);
    g.zero();
    assert_eq!((g.v, g.x), ([0.0; 2], vec![0.0; 3]));
}

#[test]
fn gradients_add() {
    let (_, a) = weighted_dot_grad(&X, &Y, 2.0);
    let (_, b) = weighted_dot_grad(&Y, &X, 0.5);
    let sum = a.clone() + b.clone();
    let expected: Vec<f64> = a.x.iter().zip(&b.x).map(|(p, q)| p + q).collect();
    assert_eq!(sum.x, expected);
    assert_eq!(sum.c, a.c + b.c);
    let mut acc = a.clone();
    acc += b.clone();
    assert_eq!(acc, sum);
    // An empty gradient from `Default` on the left takes the other's lengths.
    let mut total = WeightedDotGrad::default();
    total += a.clone();
    assert_eq!(total, a);
    assert_eq!(WeightedDotGrad::default() + b.clone(), b);
    // Array fields add element by element.
    let (_, p) = with_array_grad([0.5, 3.0], &X);
    let (_, q) = with_array_grad([1.0, 1.0], &Y);
    assert_eq!(
        (p.clone() + q.clone()).v,
        [p.v[0] + q.v[0], p.v[1] + q.v[1]]
    );
}

#[test]
fn empty_slices() {
    // A zero-length slice has a zero-length gradient, which is its size.
    let (value, g) = weighted_dot_grad(&[], &[], 2.0);
    assert_eq!((value, g.x.len(), g.y.len(), g.c), (0.0, 0, 0, 0.0));
    let mut g = WeightedDotGrad::default();
    weighted_dot_backward(&[], &[], 1.0, &mut g);
    weighted_dot_backward(&[], &[], 1.0, &mut g);
    assert_eq!(g, WeightedDotGrad::default());
}

#[test]
#[should_panic(expected = "the gradient field `x` has length 2 but the parameter `x` has length 3")]
fn wrong_length_panics_naming_the_field() {
    let mut g = WeightedDotGrad {
        x: vec![0.0; 2],
        y: vec![],
        c: 0.0,
    };
    weighted_dot_backward(&X, &Y, 1.0, &mut g);
}

#[test]
#[should_panic(expected = "the gradient field `y` has length 4 but the parameter `y` has length 3")]
fn wrong_length_of_the_second_slice_panics() {
    let mut g = WeightedDotGrad {
        x: vec![0.0; 3],
        y: vec![0.0; 4],
        c: 0.0,
    };
    weighted_dot_backward(&X, &Y, 1.0, &mut g);
}

#[test]
#[should_panic(expected = "the gradient field `x` has length 3 but the parameter `x` has length 2")]
fn reusing_a_gradient_for_a_shorter_slice_panics() {
    let mut g = WithArrayGrad::default();
    with_array_backward([1.0, 1.0], &X, &mut g);
    with_array_backward([1.0, 1.0], &X[..2], &mut g);
}

#[test]
#[should_panic(expected = "cannot add gradients of slices of different lengths (3 and 2)")]
fn adding_gradients_of_different_lengths_panics() {
    let (_, a) = weighted_dot_grad(&X, &Y, 1.0);
    let (_, b) = weighted_dot_grad(&X[..2], &Y[..2], 1.0);
    let _ = a + b;
}

// ------------------------------------------------------------------ bugs

#[test]
fn default_is_an_identity_on_the_right_too() {
    let (_, a) = weighted_dot_grad(&X, &Y, 1.0);
    let mut b = a.clone();
    b += WeightedDotGrad::default();
    assert_eq!(b, a);
    assert_eq!(a.clone() + WeightedDotGrad::default(), a);
}
