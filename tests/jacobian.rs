//! Jacobians: a `#[differentiate]` function that returns several values
//! (`-> [f64; M]`, `-> (f64, f64)`) gets `f_jacobian(params…) -> (outputs,
//! [FGrad; M])` in place of `f_grad`, with `J[i]` the gradient of output `i`.
//!
//! With `forward`, `f_jvp(params…, d<param>…) -> (outputs, tangents)`
//! gives the Jacobian times the tangents in one forward pass.
//!
//! `f_jacobian` takes one forward sweep per input when there are fewer
//! inputs than outputs, else one reverse sweep per output; functions here
//! fall on both sides (and a slice on either, by its length). Each row is
//! checked against central differences of its output and closed forms where
//! there is one, each JVP against the Jacobian times the direction.

// Index loops are the construct under test.
#![allow(clippy::needless_range_loop)]

use grad::check::assert_gradient;
use grad::prelude::*;

/// Polar to Cartesian coordinates: J = [[cos θ, −r sin θ], [sin θ, r cos θ]].
#[differentiate(forward)]
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
#[differentiate(forward)]
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
#[differentiate(wrt(x), forward)]
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

/// Outputs chosen by a branch, as arrays in each arm: two inputs, three
/// outputs, so the Jacobian takes forward sweeps.
#[differentiate(forward)]
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

/// `J·v` from the Jacobian's rows, for a Jacobian of scalar-parameter
/// gradients given as rows of partials.
fn times(rows: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    rows.iter()
        .map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        approx::assert_relative_eq!(*x, *y, max_relative = 1e-12, epsilon = 1e-14);
    }
}

#[test]
fn jvp_is_the_jacobian_times_the_tangents() {
    let (r, t) = (2.0, 0.7);
    let (out, dots) = polar_jvp(r, t, 0.3, -1.5);
    let (out_j, j) = polar_jacobian(r, t);
    assert_eq!(out, out_j);
    let rows: Vec<Vec<f64>> = j.iter().map(|g| vec![g.r, g.theta]).collect();
    assert_close(&dots, &times(&rows, &[0.3, -1.5]));

    let z = [0.5, -1.0, 2.0];
    let v = [1.0, 0.25, -2.0];
    let (s, dots) = softmax3_jvp(z, v);
    let (_, j) = softmax3_jacobian(z);
    assert_eq!(s, softmax3(z));
    let rows: Vec<Vec<f64>> = j.iter().map(|g| g.z.to_vec()).collect();
    assert_close(&dots, &times(&rows, &v));

    let x = [1.0, 2.5, -0.5, 4.0];
    let dx = [0.1, -0.2, 0.3, 0.4];
    let (out, (d0, d1)) = stats_jvp(&x, 3.0, &dx);
    let (_, j) = stats_jacobian(&x, 3.0);
    assert_eq!(out, stats(&x, 3.0));
    let rows = vec![j[0].x.clone(), j[1].x.clone()];
    assert_close(&[d0, d1], &times(&rows, &dx));
    // The early return: constant outputs, zero tangents.
    assert_eq!(stats_jvp(&[], 3.0, &[]), ((0.0, 0.0), (0.0, 0.0)));

    for (x, y) in [(1.5, 0.5), (-0.5, 1.0)] {
        let (out, dots) = piecewise_jvp(x, y, -0.7, 0.2);
        let (_, j) = piecewise_jacobian(x, y);
        assert_eq!(out, piecewise(x, y));
        let rows: Vec<Vec<f64>> = j.iter().map(|g| vec![g.x, g.y]).collect();
        assert_close(&dots, &times(&rows, &[-0.7, 0.2]));
    }
}

/// Central differences of every output of `f` along `v` at `x`.
fn directional_differences<const M: usize>(
    f: impl Fn(&[f64]) -> [f64; M],
    x: &[f64],
    v: &[f64],
) -> [f64; M] {
    let h = 1e-6;
    let at = |s: f64| -> Vec<f64> { x.iter().zip(v).map(|(x, v)| x + s * v).collect() };
    let (plus, minus) = (f(&at(h)), f(&at(-h)));
    std::array::from_fn(|i| (plus[i] - minus[i]) / (2.0 * h))
}

/// One input, many outputs (a point on a helix and its speed), written with
/// a `match` on a non-differentiated mode and a call to another
/// `#[differentiate]` function: the Jacobian is one forward sweep.
#[differentiate]
fn speed(a: f64, b: f64) -> f64 {
    (a * a + b * b).sqrt()
}

#[differentiate(forward, wrt(t))]
fn helix(t: f64, mode: u8) -> [f64; 5] {
    let c = t.cos();
    let s = t.sin();
    match mode {
        0 => [c, s, t, speed(c, s), t * t],
        _ => [s, c, -t, speed(s, 0.5 * t), t.exp()],
    }
}

#[test]
fn one_input_many_outputs() {
    for mode in [0, 1] {
        for t in [0.3, -1.2, 2.0] {
            let (out, j) = helix_jacobian(t, mode);
            assert_eq!(out, helix(t, mode));
            let (out_jvp, dots) = helix_jvp(t, mode, 1.0);
            assert_eq!(out, out_jvp);
            let column: Vec<f64> = j.iter().map(|g| g.t).collect();
            // One forward sweep with tangent 1 is the whole column.
            assert_eq!(column, dots.to_vec());
            let fd = directional_differences(|p| helix(p[0], mode), &[t], &[1.0]);
            for i in 0..5 {
                approx::assert_relative_eq!(dots[i], fd[i], max_relative = 1e-7, epsilon = 1e-9);
            }
        }
    }
}

/// Moments of a slice: four outputs, so a slice shorter than four takes
/// forward sweeps and a longer one reverse sweeps; both agree with
/// differences.
#[differentiate(forward)]
fn moments(x: &[f64]) -> [f64; 4] {
    let mut m = [0.0; 4];
    for &v in x {
        m[0] += v;
        m[1] += v * v;
        m[2] += v * v * v;
        m[3] += v.abs().sqrt();
    }
    m
}

#[test]
fn slices_on_both_sides_of_the_threshold() {
    for x in [
        vec![0.7],
        vec![0.5, -1.5, 2.0],
        vec![0.3, 1.1, -0.4, 2.2, -3.0, 0.9],
    ] {
        let (out, j) = moments_jacobian(&x);
        assert_eq!(out, moments(&x));
        for i in 0..4 {
            assert_gradient(|p| moments(p)[i], &x, &j[i].x);
        }
        let v: Vec<f64> = (0..x.len()).map(|k| 1.0 - 0.3 * k as f64).collect();
        let (_, dots) = moments_jvp(&x, &v);
        let rows: Vec<Vec<f64>> = j.iter().map(|g| g.x.clone()).collect();
        assert_close(&dots, &times(&rows, &v));
        let fd = directional_differences(moments, &x, &v);
        for i in 0..4 {
            approx::assert_relative_eq!(dots[i], fd[i], max_relative = 1e-6);
        }
    }
}

/// An array parameter and a scalar, fewer floats (3) than outputs (4):
/// forward sweeps fill array fields element by element.
#[differentiate(forward)]
fn affine(w: [f64; 2], b: f64) -> (f64, f64, f64, f64) {
    let u = w[0] * 2.0 + w[1] - b;
    (u, w[0] * b, (w[1] * b).tanh(), u * u)
}

#[test]
fn arrays_and_scalars_by_forward_sweeps() {
    let (w, b) = ([0.4, -0.9], 1.3);
    let (out, j) = affine_jacobian(w, b);
    assert_eq!(out, affine(w, b));
    let outputs = |p: &[f64]| {
        let o = affine([p[0], p[1]], p[2]);
        [o.0, o.1, o.2, o.3]
    };
    for (i, row) in j.iter().enumerate() {
        assert_gradient(
            |p| outputs(p)[i],
            &[w[0], w[1], b],
            &[row.w[0], row.w[1], row.b],
        );
    }
    let (_, dots) = affine_jvp(w, b, [1.0, 0.5], -2.0);
    let fd = directional_differences(outputs, &[w[0], w[1], b], &[1.0, 0.5, -2.0]);
    let dots = [dots.0, dots.1, dots.2, dots.3];
    for i in 0..4 {
        approx::assert_relative_eq!(dots[i], fd[i], max_relative = 1e-7);
    }
}
