//! Second derivatives: `#[differentiate(hvp)]` emits `f_hvp(params…,
//! v<param>…) -> (value, FGrad, Hv)` and `#[differentiate(hessian)]` emits
//! `f_hessian(params…) -> (value, FGrad, H)` (and the `f_hvp` it calls),
//! both forward mode over the reverse-mode gradient.
//!
//! For every construct class: the value and the gradient equal `f_grad`'s;
//! the Hessian matches central differences of the gradient and is
//! symmetric; `Hv` equals the Hessian times `v`; the Hessian's row `i` is the
//! `f_jvp` of the gradient component `i`… by way of differences.

// Index loops are the construct under test.
#![allow(clippy::needless_range_loop)]

use grad::prelude::*;

/// Central differences of a gradient function `g` at `x`: row `j` is
/// `(g(x + h e_j) − g(x − h e_j)) / 2h`.
fn gradient_differences(g: impl Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<Vec<f64>> {
    (0..x.len())
        .map(|j| {
            let h = 1e-5 * x[j].abs().max(1.0);
            let mut plus = x.to_vec();
            plus[j] += h;
            let mut minus = x.to_vec();
            minus[j] -= h;
            let (gp, gm) = (g(&plus), g(&minus));
            gp.iter()
                .zip(&gm)
                .map(|(p, m)| (p - m) / (2.0 * h))
                .collect()
        })
        .collect()
}

/// `h` is symmetric up to rounding and matches the differences of `g`.
#[track_caller]
fn check_hessian(h: &[Vec<f64>], g: impl Fn(&[f64]) -> Vec<f64>, x: &[f64]) {
    let n = x.len();
    assert_eq!(h.len(), n);
    let fd = gradient_differences(g, x);
    let scale = h.iter().flatten().fold(1.0_f64, |m, v| m.max(v.abs()));
    for i in 0..n {
        assert_eq!(h[i].len(), n);
        for j in 0..n {
            assert!(
                (h[i][j] - h[j][i]).abs() <= 1e-12 * scale,
                "not symmetric at ({i}, {j}): {} vs {}",
                h[i][j],
                h[j][i]
            );
            assert!(
                (h[i][j] - fd[i][j]).abs() <= 1e-6 * scale,
                "H[{i}][{j}] = {}, differences of the gradient {}",
                h[i][j],
                fd[i][j]
            );
        }
    }
}

/// `hv` equals `h · v` up to rounding.
#[track_caller]
fn check_product(h: &[Vec<f64>], v: &[f64], hv: &[f64]) {
    for (i, row) in h.iter().enumerate() {
        let expected: f64 = row.iter().zip(v).map(|(a, b)| a * b).sum();
        let scale: f64 = row.iter().zip(v).map(|(a, b)| (a * b).abs()).sum();
        assert!(
            (hv[i] - expected).abs() <= 1e-12 * scale.max(1.0),
            "(Hv)[{i}] = {}, H·v = {expected}",
            hv[i]
        );
    }
}

fn rows<const K: usize>(h: [[f64; K]; K]) -> Vec<Vec<f64>> {
    h.iter().map(|r| r.to_vec()).collect()
}

// --------------------------------------------------------- straight line

/// The seed notebook's neuron.
#[differentiate(wrt(w, b), hessian)]
fn loss(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let z = w * x + b;
    let p = sigmoid(z);
    bce(p, y)
}

#[test]
fn the_notebook_neuron_hessian() {
    let (w, b, x, y) = (1.0, 0.0, 6.0, 0.0);
    let (value, g, h) = loss_hessian(w, b, x, y);
    assert_eq!((value, g), loss_grad(w, b, x, y));
    // ∂²L/∂z² = p (1 − p) for bce ∘ sigmoid inside the clamp.
    let p = sigmoid(6.0);
    let d2 = p * (1.0 - p);
    approx::assert_relative_eq!(h[0][0], d2 * x * x, max_relative = 1e-12);
    approx::assert_relative_eq!(h[0][1], d2 * x, max_relative = 1e-12);
    approx::assert_relative_eq!(h[1][1], d2, max_relative = 1e-12);
    check_hessian(
        &rows(h),
        |p| {
            let g = loss_grad(p[0], p[1], x, y).1;
            vec![g.w, g.b]
        },
        &[w, b],
    );
    let (value, g2, hv) = loss_hvp(w, b, x, y, 0.5, -2.0);
    assert_eq!((value, g2), (loss(w, b, x, y), g));
    check_product(&rows(h), &[0.5, -2.0], &[hv.w, hv.b]);
}

/// Every kind of primitive in one function.
#[differentiate(hessian)]
fn primitives(x: f64, y: f64) -> f64 {
    let a = x.sin() * y.exp() + (x * y).tanh() / (1.0 + y * y);
    let b = x.hypot(y).ln() + x.atan2(y) + softplus(x - y);
    a * b + x.powi(3) * y.powf(1.5) + (x * x + 1.0).sqrt().recip()
}

#[test]
fn hessian_of_primitives() {
    for p in [[0.7, 1.3], [-1.2, 0.4], [2.0, 2.5]] {
        let (value, g, h) = primitives_hessian(p[0], p[1]);
        assert_eq!((value, g), primitives_grad(p[0], p[1]));
        check_hessian(
            &rows(h),
            |q| {
                let g = primitives_grad(q[0], q[1]).1;
                vec![g.x, g.y]
            },
            &p,
        );
        let v = [1.5, -0.3];
        let (_, _, hv) = primitives_hvp(p[0], p[1], v[0], v[1]);
        check_product(&rows(h), &v, &[hv.x, hv.y]);
    }
}

// ------------------------------------------------------------- branches

/// Branches with values, an early return, kinks and a clamp.
#[differentiate(hessian)]
fn branches(x: f64, y: f64) -> f64 {
    if x > 2.0 {
        return x.ln() * y * y;
    }
    let m = if x > y { x * x * y } else { y.exp() * x };
    relu(m - 1.0) * m + clamp(x * y, -1.0, 1.0).powi(2) + x.max(y).sqrt()
}

#[test]
fn hessian_of_branches() {
    for p in [[3.0, 0.5], [1.5, 0.2], [0.5, 1.3], [-1.0, 0.7]] {
        let (value, g, h) = branches_hessian(p[0], p[1]);
        assert_eq!((value, g), branches_grad(p[0], p[1]));
        check_hessian(
            &rows(h),
            |q| {
                let g = branches_grad(q[0], q[1]).1;
                vec![g.x, g.y]
            },
            &p,
        );
    }
}

// ---------------------------------------------------------------- loops

/// Loop-carried state, a `while` with `break`, and a local array.
#[differentiate(wrt(x, c), hessian)]
fn loops(x: f64, c: f64, n: usize) -> f64 {
    let mut h = [0.0; 4];
    let mut s = x;
    for k in 0..4 {
        h[k] = (s * c).tanh();
        s = s * 0.9 + h[k] * c;
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
    acc + s * s
}

#[test]
fn hessian_of_loops() {
    for p in [[0.3, 0.8], [-1.2, 1.1], [2.5, 0.4]] {
        for n in [0, 3, 50] {
            let (value, g, h) = loops_hessian(p[0], p[1], n);
            assert_eq!((value, g), loops_grad(p[0], p[1], n));
            check_hessian(
                &rows(h),
                |q| {
                    let g = loops_grad(q[0], q[1], n).1;
                    vec![g.x, g.c]
                },
                &p,
            );
        }
    }
}

/// Slices: the Hessian is dense over the elements.
#[differentiate(hessian)]
fn rosenbrock(x: &[f64]) -> f64 {
    let mut total = 0.0;
    for i in 0..x.len() - 1 {
        total += 100.0 * (x[i + 1] - x[i].powi(2)).powi(2) + (1.0 - x[i]).powi(2);
    }
    total
}

#[test]
fn hessian_of_slices() {
    let x = [0.5, -1.2, 0.8, 1.1, 0.0];
    let (value, g, h) = rosenbrock_hessian(&x);
    let (value2, g2) = rosenbrock_grad(&x);
    assert_eq!((value, &g.x), (value2, &g2.x));
    check_hessian(&h, |q| rosenbrock_grad(q).1.x, &x);
    // Rosenbrock's Hessian is tridiagonal: ∂²/∂x_i² = 1200 x_i² − 400 x_{i+1} + 2 (+ 200).
    assert_eq!(h[0][2], 0.0);
    approx::assert_relative_eq!(
        h[0][0],
        1200.0 * 0.25 - 400.0 * -1.2 + 2.0,
        max_relative = 1e-12
    );
    approx::assert_relative_eq!(h[0][1], -400.0 * 0.5, max_relative = 1e-12);
    let v = [1.0, 0.5, -0.25, 2.0, -1.0];
    let (_, _, hv) = rosenbrock_hvp(&x, &v);
    check_product(&h, &v, &hv.x);
}

/// Arrays, one of them two-dimensional, beside a scalar: the Hessian is
/// dense over `w` row by row, then `b`, then `s`.
#[differentiate(wrt(w, b, s), hessian)]
fn layer(w: [[f64; 3]; 2], b: [f64; 2], s: f64, x: [f64; 3]) -> f64 {
    let mut out = 0.0;
    for j in 0..2 {
        let mut a = b[j];
        for k in 0..3 {
            a += w[j][k] * x[k];
        }
        out += (s * a).tanh() * a;
    }
    out
}

fn layer_args(p: &[f64]) -> ([[f64; 3]; 2], [f64; 2], f64) {
    ([[p[0], p[1], p[2]], [p[3], p[4], p[5]]], [p[6], p[7]], p[8])
}

fn layer_flat(g: &LayerGrad) -> Vec<f64> {
    g.w.iter()
        .flatten()
        .chain(&g.b)
        .chain([&g.s])
        .copied()
        .collect()
}

#[test]
fn hessian_of_arrays() {
    let x = [1.0, -2.0, 0.5];
    let p = [0.1, -0.4, 0.7, 0.3, 0.2, -0.5, 0.05, -0.1, 0.9];
    let (w, b, s) = layer_args(&p);
    let (value, g, h) = layer_hessian(w, b, s, x);
    assert_eq!((value, g), layer_grad(w, b, s, x));
    assert_eq!(h.len(), 9);
    check_hessian(
        &h,
        |q| {
            let (w, b, s) = layer_args(q);
            layer_flat(&layer_grad(w, b, s, x).1)
        },
        &p,
    );
    let v = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5, 2.0, -1.0, 0.25];
    let (vw, vb, vs) = layer_args(&v);
    let (_, _, hv) = layer_hvp(w, b, s, x, vw, vb, vs);
    check_product(&h, &v, &layer_flat(&hv));
}

// ----------------------------------------------------------------- f32

#[differentiate(hvp)]
fn single(x: f32, y: f32) -> f32 {
    (x * y).sin() + y.powi(3)
}

#[test]
fn f32_hvp() {
    let (x, y) = (0.5_f32, 2.0_f32);
    let (value, g, hv) = single_hvp(x, y, 1.0, 0.0);
    assert_eq!((value, g), single_grad(x, y));
    // ∂²/∂x² = −y² sin(xy), ∂²/∂y∂x = cos(xy) − xy sin(xy).
    approx::assert_relative_eq!(hv.x, -(y * y) * (x * y).sin(), max_relative = 1e-5);
    approx::assert_relative_eq!(
        hv.y,
        (x * y).cos() - x * y * (x * y).sin(),
        max_relative = 1e-5
    );
}

// ---------------------------------------------------------------- calls

/// A callee with `hvp`: second derivatives go through calls of it.
#[differentiate(hvp)]
fn inner(a: f64, n: usize, b: f64) -> f64 {
    a.exp() * b.sin() * n as f64
}

#[differentiate(hessian)]
fn outer(x: f64, y: f64) -> f64 {
    inner(x * y, 3, y) + x * inner(y, 1, 1.5) + inner(2.0, 2, x)
}

#[test]
fn hessian_through_calls() {
    for p in [[0.3, 0.8], [-0.7, 1.4]] {
        let (value, g, h) = outer_hessian(p[0], p[1]);
        assert_eq!((value, g), outer_grad(p[0], p[1]));
        check_hessian(
            &rows(h),
            |q| {
                let g = outer_grad(q[0], q[1]).1;
                vec![g.x, g.y]
            },
            &p,
        );
        let v = [0.5, -2.0];
        let (_, _, hv) = outer_hvp(p[0], p[1], v[0], v[1]);
        check_product(&rows(h), &v, &[hv.x, hv.y]);
    }
}

/// `hypot`'s gradient is 0 at `(0, 0)` (a mask). At `p0 = 0` it is 0 for
/// every `p1`, so its derivative along `p1` is 0, where forward mode
/// multiplied the mask's step by a NaN tangent (`0 · NaN`). Found by the
/// random programs at 40 000 cases.
#[differentiate(wrt(p1), hvp)]
fn hypot_at_its_kink(p0: f64, p1: f64) -> f64 {
    (p0 * p1).hypot(p0)
}

#[test]
fn a_masked_gradient_has_a_zero_hessian_vector_product() {
    let (value, g, hv) = hypot_at_its_kink_hvp(0.0, -1.6648709052439996, 1.0);
    assert_eq!(value, 0.0);
    assert_eq!(g.p1, 0.0);
    assert_eq!(hv.p1, 0.0);
    // Away from the kink, the usual second derivative (0 along `p1`: the
    // function is |p0| · sqrt(p1² + 1), whose second derivative in p1 is
    // |p0| / (p1² + 1)^{3/2}).
    let (_, _, hv) = hypot_at_its_kink_hvp(0.5, -1.5, 1.0);
    let expected = 0.5 / (1.5_f64 * 1.5 + 1.0).powf(1.5);
    assert!((hv.p1 - expected).abs() < 1e-12, "{} vs {expected}", hv.p1);
}
