//! Forward mode: `#[differentiate(forward)]` emits `f_jvp(params…,
//! d<param>…) -> (value, directional derivative)`.
//!
//! Every construct class the gradient handles is checked here in forward
//! mode: the value is the function's, bit for bit; the directional
//! derivative equals the gradient dotted with the direction, and central
//! finite differences of the value along the direction (`t ↦ f(x + t·v)`).

// Index loops are the construct under test.
#![allow(clippy::needless_range_loop)]

use grad::check::assert_gradient;
use grad::prelude::*;

/// `jvp` against `grad · v` (up to rounding) and finite differences of
/// `along(t) = f(x + t v)` at `t = 0`.
#[track_caller]
fn check_direction(jvp: f64, gradient: &[f64], v: &[f64], along: impl Fn(f64) -> f64) {
    let dot: f64 = gradient.iter().zip(v).map(|(g, v)| g * v).sum();
    let scale: f64 = gradient.iter().zip(v).map(|(g, v)| (g * v).abs()).sum();
    assert!(
        (jvp - dot).abs() <= 1e-12 * scale.max(1.0),
        "jvp {jvp:e}, grad · v {dot:e}"
    );
    assert_gradient(|t: &[f64]| along(t[0]), &[0.0], &[jvp]);
}

// --------------------------------------------------------- straight line

/// The seed notebook's neuron.
#[differentiate(wrt(w, b), forward)]
fn loss(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let z = w * x + b;
    let p = sigmoid(z);
    bce(p, y)
}

#[test]
fn the_notebook_neuron_in_forward_mode() {
    // Unit directions give the gradient's components: 5.9852 and 0.9975.
    let (value, dw) = loss_jvp(1.0, 0.0, 6.0, 0.0, 1.0, 0.0);
    let (_, db) = loss_jvp(1.0, 0.0, 6.0, 0.0, 0.0, 1.0);
    assert_eq!(
        format!("{value:.4} {dw:.4} {db:.4}"),
        "6.0025 5.9852 0.9975"
    );
    assert_eq!(value, loss(1.0, 0.0, 6.0, 0.0));
    let (_, g) = loss_grad(1.0, 0.0, 6.0, 0.0);
    for (w, b, v) in [(0.3, -0.2, [0.7, -1.1]), (-2.0, 1.5, [1.0, 1.0])] {
        let (value, jvp) = loss_jvp(w, b, 1.5, 1.0, v[0], v[1]);
        assert_eq!(value, loss(w, b, 1.5, 1.0));
        let (_, g) = loss_grad(w, b, 1.5, 1.0);
        check_direction(jvp, &[g.w, g.b], &v, |t| {
            loss(w + t * v[0], b + t * v[1], 1.5, 1.0)
        });
    }
    // The reverse pass differentiates `bce(sigmoid(z), y)` as one step
    // (`p − y`), forward mode by the chain rule: equal up to rounding.
    approx::assert_relative_eq!(dw, g.w, max_relative = 1e-15);
    approx::assert_relative_eq!(db, g.b, max_relative = 1e-15);
}

/// d sin(x²)/dx at 3 is the notebook's −5.4668.
#[differentiate(forward)]
fn sin_square(x: f64) -> f64 {
    (x * x).sin()
}

#[test]
fn the_notebook_chain() {
    let (value, dot) = sin_square_jvp(3.0, 1.0);
    assert_eq!(value, 9.0_f64.sin());
    assert_eq!(format!("{dot:.4}"), "-5.4668");
    assert_eq!(sin_square_jvp(3.0, 2.0).1, 2.0 * dot);
}

// ------------------------------------------------------------- branches

/// Branches with values, an early return and a kink.
#[differentiate(forward)]
fn branches(x: f64, y: f64) -> f64 {
    if x > 2.0 {
        return x.ln() * y;
    }
    let m = if x > y { x * x } else { y.exp() };
    relu(m - 1.0) + x.max(y).sqrt()
}

#[test]
fn branches_in_forward_mode() {
    for [x, y] in [[3.0, 0.5], [1.5, 0.2], [0.5, 1.3], [-1.0, 0.7]] {
        let v = [0.6, -0.9];
        let (value, jvp) = branches_jvp(x, y, v[0], v[1]);
        assert_eq!(value, branches(x, y));
        let (_, g) = branches_grad(x, y);
        check_direction(jvp, &[g.x, g.y], &v, |t| {
            branches(x + t * v[0], y + t * v[1])
        });
    }
}

// ---------------------------------------------------------------- loops

/// Loop-carried state, `while` with `break`, and a local array.
#[differentiate(forward)]
fn loops(x: f64, n: usize) -> f64 {
    let mut h = [0.0; 4];
    let mut s = x;
    for k in 0..4 {
        h[k] = (s * 0.5).tanh();
        s = s * 0.9 + h[k];
    }
    let mut i = 0;
    let mut acc = 0.0;
    while i < n {
        acc += h[i % 4] * s;
        if acc > 10.0 {
            break;
        }
        i += 1;
    }
    acc + s
}

#[test]
fn loops_in_forward_mode() {
    for x in [0.3, -1.2, 2.5] {
        for n in [0, 3, 50] {
            let (value, jvp) = loops_jvp(x, n, 1.0);
            assert_eq!(value, loops(x, n));
            let (_, g) = loops_grad(x, n);
            check_direction(jvp, &[g.x], &[1.0], |t| loops(x + t, n));
        }
    }
}

/// A slice parameter's tangent is a slice of the same length.
#[differentiate(forward)]
fn rosenbrock(x: &[f64]) -> f64 {
    let mut total = 0.0;
    for i in 0..x.len() - 1 {
        total += 100.0 * (x[i + 1] - x[i].powi(2)).powi(2) + (1.0 - x[i]).powi(2);
    }
    total
}

#[test]
fn slices_in_forward_mode() {
    let x = [0.5, -1.2, 0.8, 1.1, 0.0];
    let v = [1.0, 0.5, -0.25, 2.0, -1.0];
    let (value, jvp) = rosenbrock_jvp(&x, &v);
    assert_eq!(value, rosenbrock(&x));
    let (_, g) = rosenbrock_grad(&x);
    check_direction(jvp, &g.x, &v, |t| {
        let moved: Vec<f64> = x.iter().zip(&v).map(|(x, v)| x + t * v).collect();
        rosenbrock(&moved)
    });
}

/// Fixed-size arrays: an MLP layer over a 2-D weight array.
#[differentiate(wrt(w, b), forward)]
fn layer(w: [[f64; 3]; 2], b: [f64; 2], x: [f64; 3]) -> f64 {
    let mut out = 0.0;
    for j in 0..2 {
        let mut a = b[j];
        for k in 0..3 {
            a += w[j][k] * x[k];
        }
        out += a.tanh();
    }
    out
}

#[test]
fn arrays_in_forward_mode() {
    let w = [[0.1, -0.4, 0.7], [0.3, 0.2, -0.5]];
    let b = [0.05, -0.1];
    let x = [1.0, -2.0, 0.5];
    let vw = [[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]];
    let vb = [2.0, -1.0];
    let (value, jvp) = layer_jvp(w, b, x, vw, vb);
    assert_eq!(value, layer(w, b, x));
    let (_, g) = layer_grad(w, b, x);
    let flat_g: Vec<f64> = g.w.iter().flatten().chain(&g.b).copied().collect();
    let flat_v: Vec<f64> = vw.iter().flatten().chain(&vb).copied().collect();
    check_direction(jvp, &flat_g, &flat_v, |t| {
        let w = [0, 1].map(|j| [0, 1, 2].map(|k| w[j][k] + t * vw[j][k]));
        let b = [0, 1].map(|j| b[j] + t * vb[j]);
        layer(w, b, x)
    });
}

// ------------------------------------------------------ calls and f32

/// A call of another `#[differentiate]` function: its gradient times the
/// arguments' tangents.
#[differentiate]
fn softplus_sq(z: f64) -> f64 {
    softplus(z) * softplus(z)
}

#[differentiate(forward)]
fn calls(a: f64, b: f64) -> f64 {
    softplus_sq(a * b) + softplus_sq(a - b).sqrt()
}

#[test]
fn calls_in_forward_mode() {
    let v = [0.4, -1.3];
    for [a, b] in [[0.5, 1.5], [-1.0, 0.3]] {
        let (value, jvp) = calls_jvp(a, b, v[0], v[1]);
        assert_eq!(value, calls(a, b));
        let (_, g) = calls_grad(a, b);
        check_direction(jvp, &[g.a, g.b], &v, |t| calls(a + t * v[0], b + t * v[1]));
    }
}

#[differentiate(forward)]
fn single(x: f32, y: f32) -> f32 {
    (x * y).sin() + y.powi(3)
}

#[test]
fn f32_in_forward_mode() {
    let (value, jvp) = single_jvp(0.5, 2.0, 1.0, 0.0);
    assert_eq!(value, single(0.5, 2.0));
    let (_, g) = single_grad(0.5, 2.0);
    assert_eq!(jvp, g.x);
}

/// Differentiated parameters the body never reads: their tangents (and
/// `f_hvp`'s directions) are still parameters, each with its own name.
#[differentiate(forward, hvp)]
fn reads_one(a: f64, _b: f64, _c: f64) -> f64 {
    a.sin()
}

#[test]
fn unread_parameters_keep_their_tangents() {
    let (value, dot) = reads_one_jvp(0.5, 1.0, 2.0, 2.0, 3.0, 4.0);
    assert_eq!(value, 0.5_f64.sin());
    assert_eq!(dot, 2.0 * 0.5_f64.cos());
    let (_, g, hv) = reads_one_hvp(0.5, 1.0, 2.0, 1.0, 3.0, 4.0);
    assert_eq!((g._b, g._c), (0.0, 0.0));
    assert_eq!((hv.a, hv._b, hv._c), (-(0.5_f64.sin()), 0.0, 0.0));
}
