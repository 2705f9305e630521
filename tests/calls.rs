//! Calls between `#[differentiate]` functions are differentiated through
//! (the chain rule across functions), whatever the callee's parameter names,
//! where it lives, and which of its arguments depend on the differentiated
//! parameters; calls whose arguments are all constant stay plain calls.

use approx::assert_relative_eq;
use grad::check::assert_gradient;
use grad::prelude::*;

mod common;
use common::check;

// ------------------------------------------------------- the seed notebook

/// The seed notebook's loss helper, with its clamp written by hand.
#[differentiate]
fn bce_loss(y_pred: f64, target: f64) -> f64 {
    let eps = 1e-7;
    let p = grad::clamp(y_pred, eps, 1.0 - eps);
    -(target * p.ln() + (1.0 - target) * (1.0 - p).ln())
}

/// The seed notebook's neuron, calling the helper.
#[differentiate(wrt(w, b))]
fn loss(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let z = w * x + b;
    let p = sigmoid(z);
    bce_loss(p, y)
}

#[test]
fn seed_notebook_numbers_through_a_helper() {
    let (value, g) = loss_grad(1.0, 0.0, 6.0, 0.0);
    assert_eq!(
        format!("{value:.4} {:.4} {:.4}", g.w, g.b),
        "6.0025 5.9852 0.9975"
    );
    // dL/dz = p − y for the sigmoid + BCE pair, dL/dw = (p − y) x.
    let p = sigmoid(6.0_f64);
    assert_relative_eq!(g.b, p, max_relative = 1e-12);
    assert_relative_eq!(g.w, 6.0 * p, max_relative = 1e-12);
    for (x, y) in [(6.0, 0.0), (-2.0, 1.0), (0.5, 1.0)] {
        check(
            |[w, b]| loss(w, b, x, y),
            |[w, b]| {
                let (v, g) = loss_grad(w, b, x, y);
                (v, [g.w, g.b])
            },
            &[[1.0, 0.0], [-0.3, 0.8], [0.7, -1.2]],
        );
    }
}

#[test]
fn helper_alone() {
    check(
        |[p, t]| bce_loss(p, t),
        |[p, t]| {
            let (v, g) = bce_loss_grad(p, t);
            (v, [g.y_pred, g.target])
        },
        &[[0.3, 0.0], [0.9, 1.0], [0.6, 0.25]],
    );
}

// -------------------------------------------------- a callee in a module

mod losses {
    use grad::prelude::*;

    /// The helper again, public in a module.
    #[differentiate]
    pub fn bce_loss(y_pred: f64, target: f64) -> f64 {
        let eps = 1e-7;
        let p = grad::clamp(y_pred, eps, 1.0 - eps);
        -(target * p.ln() + (1.0 - target) * (1.0 - p).ln())
    }
}

#[differentiate(wrt(w, b))]
fn loss_via_module(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let p = sigmoid(w * x + b);
    losses::bce_loss(p, y)
}

/// The same with a `crate::` path.
#[differentiate(wrt(w, b))]
fn loss_via_crate_path(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let p = sigmoid(w * x + b);
    crate::losses::bce_loss(p, y)
}

#[test]
fn callee_in_a_module() {
    let (value, g) = loss_via_module_grad(1.0, 0.0, 6.0, 0.0);
    assert_eq!(
        format!("{value:.4} {:.4} {:.4}", g.w, g.b),
        "6.0025 5.9852 0.9975"
    );
    assert_eq!(
        loss_via_crate_path_grad(1.0, 0.0, 6.0, 0.0).1,
        LossViaCratePathGrad { w: g.w, b: g.b }
    );
    check(
        |[w, b]| loss_via_module(w, b, -2.0, 1.0),
        |[w, b]| {
            let (v, g) = loss_via_module_grad(w, b, -2.0, 1.0);
            (v, [g.w, g.b])
        },
        &[[1.0, 0.0], [0.4, -0.6]],
    );
}

// ------------------------------------ callee names, arguments, nesting

/// A callee whose parameter names differ from the caller's arguments.
#[differentiate]
fn scaled_square(a: f64, k: f64) -> f64 {
    a * a * k
}

/// Arguments that are expressions, swapped names, and the caller's own
/// `a`/`k` meaning something else than the callee's.
#[differentiate]
fn renamed_args(k: f64, a: f64) -> f64 {
    let u = k * a;
    scaled_square(u, a) + scaled_square(a + 1.0, k.sin()) + scaled_square(k, a)
}

#[test]
fn callee_with_other_parameter_names() {
    check(
        |[k, a]| renamed_args(k, a),
        |[k, a]| {
            let (v, g) = renamed_args_grad(k, a);
            (v, [g.k, g.a])
        },
        &[[1.0, 2.0], [-0.5, 0.3], [2.0, -1.5]],
    );
    // At (k, a) = (0, 2) only the middle call contributes: (a+1)² sin k
    // has ∂/∂k = (a+1)² cos k = 9 and ∂/∂a = 2(a+1) sin k = 0.
    let (_, g) = renamed_args_grad(0.0, 2.0);
    assert_eq!((g.k, g.a), (9.0, 0.0));
}

#[differentiate]
fn h(x: f64) -> f64 {
    x.sin() * x
}
#[differentiate]
fn g(x: f64, y: f64) -> f64 {
    h(x * y) + y.exp()
}
#[differentiate]
fn f(x: f64, y: f64) -> f64 {
    g(x, y) * g(y, x) + h(y)
}

#[test]
fn nested_calls() {
    check(
        |[x, y]| f(x, y),
        |[x, y]| {
            let (v, g) = f_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.0], [-1.0, 0.3], [1.5, -0.7]],
    );
    check(
        |[x, y]| g(x, y),
        |[x, y]| {
            let (v, gr) = g_grad(x, y);
            (v, [gr.x, gr.y])
        },
        &[[0.5, 1.0], [-1.0, 0.3]],
    );
}

/// Recursion through the function's own companion.
#[differentiate]
fn pow_rec(x: f64, n: u32) -> f64 {
    if n == 0 {
        1.0
    } else {
        x * pow_rec(x, n - 1)
    }
}

#[test]
fn recursive_function() {
    for n in [0, 1, 2, 5] {
        check(
            |[x]| pow_rec(x, n),
            |[x]| {
                let (v, g) = pow_rec_grad(x, n);
                (v, [g.x])
            },
            &[[1.5], [-0.8], [2.0]],
        );
    }
    // d/dx x⁵ at 2 = 5 · 16.
    assert_eq!(pow_rec_grad(2.0, 5), (32.0, PowRecGrad { x: 80.0 }));
    assert_eq!(pow_rec_grad(2.0, 0), (1.0, PowRecGrad { x: 0.0 }));
}

/// A callee that differentiates both parameters, called with only one
/// argument depending on the caller's parameter (the other is a literal,
/// a non-differentiated parameter, or an integer-derived value).
#[differentiate]
fn two(a: f64, b: f64) -> f64 {
    a * b.exp()
}

#[differentiate(wrt(x))]
fn some_args_active(x: f64, c: f64, n: i32) -> f64 {
    two(x, 3.0) + two(2.0, x) + two(c, x * x) + two(x, c) + two(n as f64, x)
}

#[test]
fn call_with_only_some_arguments_differentiated() {
    for (c, n) in [(0.5, 2), (-1.0, -3)] {
        check(
            |[x]| some_args_active(x, c, n),
            |[x]| {
                let (v, g) = some_args_active_grad(x, c, n);
                (v, [g.x])
            },
            &[[0.3], [-1.0], [1.2]],
        );
    }
    // At x = 0, c = 1, n = 2: d/dx = e³ + 2 + c·2x·e^(x²) + e^c + n e^x.
    let (_, g) = some_args_active_grad(0.0, 1.0, 2);
    assert_relative_eq!(
        g.x,
        3.0_f64.exp() + 2.0 + 0.0 + 1.0_f64.exp() + 2.0,
        max_relative = 1e-15
    );
}

/// A plain function (not `#[differentiate]`) of integers.
fn offset(n: i32) -> f64 {
    f64::from(n) * 0.5
}

/// Calls whose arguments are all constants: a plain function, a
/// `#[differentiate]` one, and one of a non-differentiated float parameter.
#[differentiate(wrt(x))]
fn plain_calls(x: f64, c: f64, n: i32) -> f64 {
    let k = offset(n) + two(1.0, 0.5) + bce_loss(0.25, c) + offset(n + 1);
    x * k + two(c, c)
}

#[test]
fn call_with_only_constant_arguments() {
    let (c, n) = (0.7, 3);
    let k = offset(n) + two(1.0, 0.5) + bce_loss(0.25, c) + offset(n + 1);
    check(
        |[x]| plain_calls(x, c, n),
        |[x]| {
            let (v, g) = plain_calls_grad(x, c, n);
            (v, [g.x])
        },
        &[[0.3], [-2.0]],
    );
    assert_eq!(plain_calls_grad(2.0, c, n).1.x, k);
}

/// The same callee in both branches of an `if`, and twice in one expression.
#[differentiate]
fn calls_in_branches(x: f64, y: f64) -> f64 {
    let s = if x > y { h(x) + h(x) } else { h(y) * 2.0 };
    let mut t = s;
    if s > 0.0 {
        t += two(x, y);
    }
    t
}

#[test]
fn calls_in_branches_and_repeated() {
    check(
        |[x, y]| calls_in_branches(x, y),
        |[x, y]| {
            let (v, g) = calls_in_branches_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[1.0, 0.5], [0.5, 1.0], [-2.0, -3.0], [2.5, 0.1]],
    );
}

/// A callee with an integer parameter between its float ones: the
/// gradient components are matched by parameter position.
#[differentiate]
fn int_in_between(a: f64, n: i32, b: f64) -> f64 {
    a * b * f64::from(n) + b.sin()
}

#[differentiate]
fn calls_int_in_between(x: f64) -> f64 {
    int_in_between(x, 3, x * x) + int_in_between(2.0, 1, x)
}

#[test]
fn callee_with_an_integer_parameter_in_between() {
    for x in [2.0, -0.5, 0.8] {
        let (value, g) = calls_int_in_between_grad(x);
        assert_eq!(value, calls_int_in_between(x));
        assert_gradient(|v: &[f64]| calls_int_in_between(v[0]), &[x], &[g.x]);
    }
    // 3x³ + sin(x²) + 2x + sin x at 0: only 2 + cos 0.
    assert_eq!(calls_int_in_between_grad(0.0).1.x, 3.0);
}

/// A user `#[differentiate]` function as a `chain!` stage.
#[differentiate]
fn chain_through_user_fn(x: f64) -> f64 {
    chain!(x -> h -> sigmoid -> two(0.5))
}

/// Recursion with an early return and the recursive result used after it.
#[differentiate]
fn rec_early(x: f64, n: u32) -> f64 {
    if n == 0 {
        return x;
    }
    let y = rec_early(x, n - 1);
    y.sin()
}

#[test]
fn chain_stage_and_recursion_with_early_return() {
    for x in [0.3, -1.0, 2.0] {
        let (value, g) = chain_through_user_fn_grad(x);
        assert_eq!(value, chain_through_user_fn(x));
        assert_gradient(|v: &[f64]| chain_through_user_fn(v[0]), &[x], &[g.x]);
        for n in [0, 1, 3] {
            let (value, g) = rec_early_grad(x, n);
            assert_eq!(value, rec_early(x, n));
            assert_gradient(|v: &[f64]| rec_early(v[0], n), &[x], &[g.x]);
        }
    }
    // sin(sin(x)) at 0 has derivative 1.
    assert_eq!(rec_early_grad(0.0, 2).1.x, 1.0);
}
