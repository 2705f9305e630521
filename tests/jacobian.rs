//! Jacobians: a `#[differentiate]` function that returns several values
//! (`-> [f64; M]`, `-> (f64, f64)`) gets `f_jacobian(params…) -> (outputs,
//! [FGrad; M])` in place of `f_grad`, with `J[i]` the gradient of output `i`.
//!
//! Each row is checked against central differences of its output, and
//! against closed forms where there is one.

// Index loops are the construct under test.
#![allow(clippy::needless_range_loop)]

use grad::check::assert_gradient;
use grad::prelude::*;

/// Polar to Cartesian coordinates: J = [[cos θ, −r sin θ], [sin θ, r cos θ]].
#[differentiate]
fn polar(r: f64, theta: f64) -> [f64; 2] {
    [r * theta.cos(), r * theta.sin()]
}

#[test]
fn polar_jacobian_is_the_closed_form() {
    let (r, t) = (2.0, 0.7);
    let (out, j) = polar_jacobian(r, t);
    assert_eq!(out, polar(r, t));
    approx::assert_relative_eq!(j[0].r, t.cos(), max_relative = 1e-15);
    approx::assert_relative_eq!(j[0].theta, -r * t.sin(), max_relative = 1e-15);
    approx::assert_relative_eq!(j[1].r, t.sin(), max_relative = 1e-15);
    approx::assert_relative_eq!(j[1].theta, r * t.cos(), max_relative = 1e-15);
    // The determinant of the polar map is r.
    approx::assert_relative_eq!(
        j[0].r * j[1].theta - j[0].theta * j[1].r,
        r,
        max_relative = 1e-15
    );
}

/// A numerically stable softmax over an array, with loops and a `max`:
/// J = diag(s) − s sᵀ.
#[differentiate]
fn softmax3(z: [f64; 3]) -> [f64; 3] {
    let m = z[0].max(z[1]).max(z[2]);
    let mut e = [0.0; 3];
    let mut total = 0.0;
    for k in 0..3 {
        e[k] = (z[k] - m).exp();
        total += e[k];
    }
    for k in 0..3 {
        e[k] /= total;
    }
    e
}

#[test]
fn softmax_jacobian_is_diag_minus_outer() {
    let z = [0.5, -1.0, 2.0];
    let (s, j) = softmax3_jacobian(z);
    assert_eq!(s, softmax3(z));
    for i in 0..3 {
        for k in 0..3 {
            let expected = if i == k { s[i] } else { 0.0 } - s[i] * s[k];
            approx::assert_relative_eq!(j[i].z[k], expected, max_relative = 1e-13, epsilon = 1e-16);
        }
    }
}

/// A tuple of outputs over a slice, with an early return and a parameter
/// left out of `wrt`.
#[differentiate(wrt(x))]
fn stats(x: &[f64], scale: f64) -> (f64, f64) {
    let n = x.len() as f64;
    let mut s = 0.0;
    let mut q = 0.0;
    for &v in x {
        s += v;
        q += v * v;
    }
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let mean = s / n;
    (mean * scale, (q / n - mean * mean).sqrt())
}

#[test]
fn tuple_outputs_over_a_slice() {
    let x = [1.0, 2.5, -0.5, 4.0];
    let (out, j) = stats_jacobian(&x, 3.0);
    assert_eq!(out, stats(&x, 3.0));
    // ∂(scale · mean)/∂x_k = scale / n.
    for g in &j[0].x {
        approx::assert_relative_eq!(*g, 3.0 / 4.0, max_relative = 1e-15);
    }
    assert_gradient(|p| stats(p, 3.0).1, &x, &j[1].x);
    // The early return: every output constant, the rows zero.
    let (out, j) = stats_jacobian(&[], 3.0);
    assert_eq!(out, (0.0, 0.0));
    assert!(j[0].x.is_empty() && j[1].x.is_empty());
}

/// Outputs chosen by a branch, as arrays in each arm.
#[differentiate]
fn piecewise(x: f64, y: f64) -> [f64; 3] {
    if x > y {
        [x * y, x.exp(), y]
    } else {
        let d = y - x;
        [d * d, x, (x * y).sin()]
    }
}

#[test]
fn branching_outputs() {
    for (x, y) in [(1.5, 0.5), (-0.5, 1.0)] {
        let (out, j) = piecewise_jacobian(x, y);
        assert_eq!(out, piecewise(x, y));
        for i in 0..3 {
            assert_gradient(|p| piecewise(p[0], p[1])[i], &[x, y], &[j[i].x, j[i].y]);
        }
    }
}

#[differentiate]
fn single(x: f32) -> [f32; 2] {
    [x * x, x.sin()]
}

#[test]
fn f32_outputs() {
    let (out, j) = single_jacobian(0.5);
    assert_eq!(out, single(0.5));
    assert_eq!(j[0].x, 1.0);
    approx::assert_relative_eq!(j[1].x, 0.5_f32.cos(), max_relative = 1e-6);
}
