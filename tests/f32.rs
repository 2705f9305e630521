//! `f32` functions: the gradient fields have the parameter's type, the
//! generated literals and constants are `f32`, and the gradient matches
//! central differences within the `f32` tolerance. Mixed `f32`/`f64`
//! parameters keep each field's own type.

use approx::assert_relative_eq;
use grad::check::assert_gradient;
use grad::prelude::*;

/// Checks an all-`f32` function given as closures over arrays, with the
/// `f32` tolerance that `assert_gradient::<f32>` picks.
#[track_caller]
fn check<const N: usize>(
    primal: impl Fn([f32; N]) -> f32,
    generated: impl Fn([f32; N]) -> (f32, [f32; N]),
    points: &[[f32; N]],
) {
    for &p in points {
        let (value, grad) = generated(p);
        assert_eq!(value, primal(p), "value at {p:?}");
        assert_gradient(|v: &[f32]| primal(v.try_into().unwrap()), &p, &grad);
    }
}

/// The seed notebook's neuron in `f32`.
#[differentiate(wrt(w, b))]
fn neuron(w: f32, b: f32, x: f32, y: f32) -> f32 {
    let z = w * x + b;
    let p = sigmoid(z);
    bce(p, y)
}

#[test]
fn neuron_in_f32() {
    let (value, g) = neuron_grad(1.0, 0.0, 6.0, 0.0);
    // The field types are the parameter's.
    let (gw, gb): (f32, f32) = (g.w, g.b);
    let v: f32 = value;
    assert_eq!(format!("{v:.4} {gw:.4} {gb:.4}"), "6.0025 5.9852 0.9975");
    // Away from the saturated sigmoid: at z = 6, 1 − p keeps only about
    // four significant digits in f32, too few for a finite difference.
    for (x, y) in [(1.5, 0.0), (-0.5, 1.0)] {
        check(
            |[w, b]| neuron(w, b, x, y),
            |[w, b]| {
                let (v, g) = neuron_grad(w, b, x, y);
                (v, [g.w, g.b])
            },
            &[[1.0, 0.0], [-0.3, 0.5]],
        );
    }
}

/// Arithmetic, literals, an `f32` constant, branches and a cast.
#[differentiate]
fn arithmetic(x: f32, y: f32, n: i32) -> f32 {
    let mut acc = x * 2.0 + std::f32::consts::PI * y;
    acc *= y - 0.5;
    acc /= 1.5;
    let t = if x > y { x - y } else { (y - x) * 3.0 };
    if acc < -100.0 {
        return 0.0;
    }
    acc + t * n as f32 - 1e-3 * x
}

#[test]
fn arithmetic_and_branches_in_f32() {
    for n in [1, 3] {
        check(
            |[x, y]| arithmetic(x, y, n),
            |[x, y]| {
                let (v, g) = arithmetic_grad(x, y, n);
                (v, [g.x, g.y])
            },
            &[[1.0, 0.25], [-0.5, 1.5], [2.0, -1.0]],
        );
    }
}

/// Every method in `f32`, method and free form mixed; the generated
/// derivatives use `f32` constants (`LN_2`, `LN_10`) and literals.
#[differentiate]
fn methods(x: f32, y: f32) -> f32 {
    let a = x.sin() + f32::cos(y) + x.tan() * 0.1 + (x * 0.3).asin() + (y * 0.3).acos() + x.atan();
    let b =
        x.sinh() + f32::cosh(y) + x.tanh() + y.asinh() + (y * y + 1.5).acosh() + (x * 0.4).atanh();
    let c = y.exp() + x.exp2() + y.exp_m1() + (y * y + 0.5).ln() + (x * x).ln_1p();
    let d = (y * y + 1.0).log2() + f32::log10(x * x + 2.0) + (x * x + 2.0).log(3.0);
    let e =
        (y * y + 1.0).sqrt() + x.cbrt() + x.powi(3) + (y * y + 1.0).powf(x) + (x * x + 1.0).recip();
    let f = x.abs() + y.signum() + x.min(y) + f32::max(x, y) + x.clamp(-0.9, 0.9);
    let g = x.hypot(y) + y.atan2(x) + x.mul_add(y, 2.0) + 2.0_f32.powf(x);
    a + b + c + d + e + f + g
}

#[test]
fn every_method_in_f32() {
    check(
        |[x, y]| methods(x, y),
        |[x, y]| {
            let (v, g) = methods_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.25], [1.2, -0.7], [0.8, 2.0]],
    );
}

/// Every runtime function in `f32`.
#[differentiate]
fn runtime(x: f32, y: f32) -> f32 {
    let p = sigmoid(x);
    let a = relu(x) + leaky_relu(y, 0.1) + softplus(y) + clamp(x, -1.0, 1.0);
    let b = bce(p, 0.3) + bce_with_logits(y, 0.6) + mse(x, y);
    a + b + grad::chain!(x * y -> sigmoid -> mse(0.5))
}

#[test]
fn runtime_functions_in_f32() {
    check(
        |[x, y]| runtime(x, y),
        |[x, y]| {
            let (v, g) = runtime_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.25], [-0.4, -2.0], [2.0, 0.3]],
    );
    // At (0, 1), kinks follow the f64 conventions: relu'(0) = 0; clamp
    // passes 1; bce(sigmoid(x), 0.3) gives (p − t) = 0.2; mse gives
    // 2(x − y) = −2; the chain term 2(sigmoid(xy) − 0.5)·… is 0.
    let (_, g) = runtime_grad(0.0, 1.0);
    assert_relative_eq!(g.x, 0.0 + 1.0 + 0.2 - 2.0, max_relative = 1e-6);
}

/// A call between `f32` functions.
#[differentiate]
fn inner(a: f32) -> f32 {
    a * a.exp()
}

#[differentiate]
fn outer(x: f32, y: f32) -> f32 {
    inner(x * y) + inner(y)
}

#[test]
fn calls_in_f32() {
    check(
        |[x, y]| outer(x, y),
        |[x, y]| {
            let (v, g) = outer_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.0], [-1.0, 0.3]],
    );
    // inner'(0) = 1: at (x, 0), d/dx = y · inner'(0) = 0, d/dy = x + 1.
    let (_, g) = outer_grad(2.0, 0.0);
    let (gx, gy): (f32, f32) = (g.x, g.y);
    assert_eq!((gx, gy), (0.0, 3.0));
}

/// `f32` and `f64` parameters together, returning `f64`.
#[differentiate]
fn mixed(a: f32, b: f64) -> f64 {
    let wide = a as f64;
    wide * b + b.sin() + (a as f64).exp()
}

/// The same returning `f32`.
#[differentiate]
fn mixed_narrow(a: f32, b: f64) -> f32 {
    a * (b as f32) + (b * b) as f32
}

#[test]
fn mixed_f32_and_f64_parameters() {
    for (a, b) in [(0.5_f32, 1.5_f64), (-1.25, 0.3)] {
        let (value, g) = mixed_grad(a, b);
        // Each field has its parameter's type.
        let ga: f32 = g.a;
        let gb: f64 = g.b;
        assert_eq!(value, mixed(a, b));
        assert_gradient(|v: &[f32]| mixed(v[0], b) as f32, &[a], &[ga]);
        assert_gradient(|v: &[f64]| mixed(a, v[0]), &[b], &[gb]);
        assert_relative_eq!(ga, (b + f64::from(a).exp()) as f32, max_relative = 1e-6);
        assert_relative_eq!(gb, f64::from(a) + b.cos(), max_relative = 1e-15);

        let (value, g) = mixed_narrow_grad(a, b);
        let ga: f32 = g.a;
        let gb: f64 = g.b;
        assert_eq!(value, mixed_narrow(a, b));
        assert_gradient(|v: &[f32]| mixed_narrow(v[0], b), &[a], &[ga]);
        assert_relative_eq!(ga, b as f32, max_relative = 1e-6);
        assert_relative_eq!(gb, f64::from(a) + 2.0 * b, max_relative = 1e-6);
    }
}
