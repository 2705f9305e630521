//! Hygiene of the forward-mode, second-order and Jacobian companions: user
//! parameters and locals named like the names those companions generate
//! (`dw` beside `w`, `vw`, `grad`, `hv`, `value`, `h_w`, `at_x`, `n`, `k`,
//! `row`, `hessian`, `outputs`, `jacobian`, `seed`, `i`, `cotangent`,
//! `__x_dot`) keep their meaning, and every companion still computes the
//! right numbers.

// The functions under test take many parameters and index loops on purpose.
#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use grad::check::assert_gradient;
use grad::prelude::*;

/// A parameter `dw` beside `w`: `f_jvp`'s tangent of `w` must not be `dw`.
#[differentiate(wrt(w), forward, hessian)]
fn named_like_tangents(w: f64, dw: f64, vw: f64, grad: f64, hv: f64, value: f64) -> f64 {
    let h_w = w * dw + vw;
    let __w_dot = h_w * grad;
    (__w_dot + hv * w * w).sin() + value
}

#[test]
fn tangent_and_hvp_names_do_not_capture() {
    let args = (0.7, 1.5, -0.3, 2.0, 0.25, 4.0);
    let f = |w: f64| named_like_tangents(w, args.1, args.2, args.3, args.4, args.5);
    let (value, g) = named_like_tangents_grad(args.0, args.1, args.2, args.3, args.4, args.5);
    assert_gradient(|p| f(p[0]), &[args.0], &[g.w]);
    let (v, jvp) = named_like_tangents_jvp(args.0, args.1, args.2, args.3, args.4, args.5, 2.0);
    assert_eq!(v, value);
    approx::assert_relative_eq!(jvp, 2.0 * g.w, max_relative = 1e-14);
    let (v, g2, h) = named_like_tangents_hessian(args.0, args.1, args.2, args.3, args.4, args.5);
    assert_eq!((v, g2), (value, g));
    assert_gradient(
        |p| {
            named_like_tangents_grad(p[0], args.1, args.2, args.3, args.4, args.5)
                .1
                .w
        },
        &[args.0],
        &[h[0][0]],
    );
}

/// Names `f_hessian`'s dense layout uses.
#[differentiate(wrt(x, k), hessian)]
fn named_like_hessian_locals(x: &[f64], k: f64, n: usize, row: f64, at_x: f64) -> f64 {
    let mut hessian = 0.0;
    for i in 0..n.min(x.len()) {
        hessian += (x[i] * k).powi(2) * row + at_x;
    }
    hessian
}

#[test]
fn hessian_names_do_not_capture() {
    let x = [0.5, -1.0, 2.0];
    let (value, g, h) = named_like_hessian_locals_hessian(&x, 1.5, 3, 0.5, 0.1);
    assert_eq!(value, named_like_hessian_locals(&x, 1.5, 3, 0.5, 0.1));
    assert_eq!(h.len(), 4);
    // ∂²/∂x_i² = 2 k² row.
    for i in 0..3 {
        approx::assert_relative_eq!(h[i][i], 2.0 * 1.5 * 1.5 * 0.5, max_relative = 1e-14);
    }
    let grad_of = |p: &[f64]| {
        let (_, g) = named_like_hessian_locals_grad(&p[..3], p[3], 3, 0.5, 0.1);
        let mut flat = g.x.clone();
        flat.push(g.k);
        flat
    };
    let p = [0.5, -1.0, 2.0, 1.5];
    assert_eq!(grad_of(&p)[..3], g.x[..]);
    // Row i of the Hessian is the gradient of gradient component i.
    for i in 0..4 {
        assert_gradient(|q| grad_of(q)[i], &p, &h[i]);
    }
}

/// Names `f_jacobian` and `f_jvp` use (the marker of the outputs is
/// `outputs`, the Jacobian's forward sweeps name `k`, `inputs`, `column`,
/// `d`, `at_x`, the JVP's tuple `output_0`, `tangent_1`, …). One input and
/// two outputs: the Jacobian takes a forward sweep.
#[differentiate(wrt(x), forward)]
#[allow(clippy::too_many_arguments)]
fn named_like_jacobian_locals(
    x: f64,
    outputs: f64,
    jacobian: f64,
    seed: f64,
    i: f64,
    cotangent: f64,
    k: f64,
    inputs: f64,
    column: f64,
    d: f64,
    at_x: f64,
    output_0: f64,
    tangent_1: f64,
) -> [f64; 2] {
    let row = x * outputs + jacobian + k * inputs * column;
    [
        row * seed + d * at_x,
        (x * i).sin() + cotangent + output_0 * tangent_1,
    ]
}

#[test]
fn jacobian_names_do_not_capture() {
    let args = (0.4, 2.0, 1.0, 3.0, 0.5, 0.25);
    let (out, j) = named_like_jacobian_locals_jacobian(
        args.0, args.1, args.2, args.3, args.4, args.5, 0.0, 1.0, 2.0, 0.0, 1.0, 0.0, 1.0,
    );
    assert_eq!(
        out,
        named_like_jacobian_locals(
            args.0, args.1, args.2, args.3, args.4, args.5, 0.0, 1.0, 2.0, 0.0, 1.0, 0.0, 1.0
        )
    );
    approx::assert_relative_eq!(j[0].x, 2.0 * 3.0, max_relative = 1e-15);
    approx::assert_relative_eq!(j[1].x, 0.5 * (0.4_f64 * 0.5).cos(), max_relative = 1e-15);
    let (_, dots) = named_like_jacobian_locals_jvp(
        args.0, args.1, args.2, args.3, args.4, args.5, 0.0, 1.0, 2.0, 0.0, 1.0, 0.0, 1.0, 1.0,
    );
    assert_eq!(dots, [j[0].x, j[1].x]);
}

/// A function named like a companion's nested function.
#[differentiate]
fn polar_weighted(r: f64) -> f64 {
    r * 2.0
}

/// And like the forward sweeps' nested function.
#[differentiate]
fn polar_tangent(r: f64) -> f64 {
    r * 3.0
}

#[differentiate(forward, wrt(r))]
fn polar(r: f64, theta: f64) -> [f64; 2] {
    [
        polar_weighted(r) * theta.cos(),
        polar_tangent(r) * theta.sin(),
    ]
}

#[test]
fn nested_companion_names_do_not_capture() {
    let (out, j) = polar_jacobian(2.0, 0.7);
    assert_eq!(out, polar(2.0, 0.7));
    approx::assert_relative_eq!(j[0].r, 2.0 * 0.7_f64.cos(), max_relative = 1e-15);
    approx::assert_relative_eq!(j[1].r, 3.0 * 0.7_f64.sin(), max_relative = 1e-15);
    assert_eq!(polar_jvp(2.0, 0.7, 1.0).1, [j[0].r, j[1].r]);
    assert_eq!(polar_weighted_grad(1.0).1.r, 2.0);
}
