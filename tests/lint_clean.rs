//! The generated code is warning-free and clippy-clean: this file denies
//! every rustc warning and every default clippy lint, and hosts one
//! `#[differentiate]` function per class of construct (with `forward` and
//! `hessian`, so that `f_jvp`, `f_hvp` and `f_hessian` are linted too). CI runs
//! `cargo clippy --workspace --all-targets -- -D warnings`, which lints this
//! file with its expansions. Each function has a test that runs its
//! numbers, so nothing is dead code.

#![deny(warnings)]
#![deny(clippy::all)]

use grad::check::assert_gradient;
use grad::prelude::*;

mod common;
use common::check;

const SCALE: f64 = 0.5;

/// Arithmetic: every operator, literals, constants, casts, shadowing,
/// `let mut` with compound assignment, blocks.
#[differentiate(wrt(x, y), forward, hessian)]
fn arithmetic(x: f64, y: f64, n: i32) -> f64 {
    let a = x * y + x / (y * y + 1.0) - -x;
    let a = a * SCALE + std::f64::consts::PI;
    let mut acc: f64 = a;
    acc += x;
    acc -= y * 2.0;
    acc *= f64::from(n);
    acc /= 3.0;
    let b = {
        let t = acc * x;
        t + 1.0
    };
    b + (n as f64) * y
}

#[test]
fn arithmetic_numbers() {
    check(
        |[x, y]| arithmetic(x, y, 3),
        |[x, y]| {
            let (v, g) = arithmetic_grad(x, y, 3);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.5], [-1.0, 0.2]],
    );
}

/// Branches: `if` as a value, `else if`, a statement `if` assigning some
/// variables, conditions with `&&`, `||`, `!`, `==`.
#[differentiate(wrt(x, y), forward, hessian)]
fn branches(x: f64, y: f64, flip: bool) -> f64 {
    let mut a = x;
    let mut b = y;
    if x > 0.0 && y > 0.0 {
        a *= y;
    } else if x < -1.0 || !flip || (flip == (y >= 2.0)) {
        b = x * y;
    }
    let c = if a > b {
        a - b
    } else if a < b {
        (b - a) * 2.0
    } else {
        0.0
    };
    c * a + b
}

#[test]
fn branches_numbers() {
    check(
        |[x, y]| branches(x, y, true),
        |[x, y]| {
            let (v, g) = branches_grad(x, y, true);
            (v, [g.x, g.y])
        },
        &[[0.5, 3.0], [-2.0, 0.5], [-0.5, 0.5], [2.0, 0.25]],
    );
    check(
        |[x, y]| branches(x, y, false),
        |[x, y]| {
            let (v, g) = branches_grad(x, y, false);
            (v, [g.x, g.y])
        },
        &[[-0.5, 0.5], [-0.5, 3.0]],
    );
}

/// Early returns: a guard, a return in a nested `if`, a constant return.
#[differentiate(forward, hessian)]
fn early_return(x: f64, y: f64) -> f64 {
    if x < -5.0 {
        return 0.0;
    }
    if y > 0.0 {
        if x > 1.0 {
            return x.ln() * y;
        }
        return x * y;
    }
    x + y
}

#[test]
fn early_return_numbers() {
    check(
        |[x, y]| early_return(x, y),
        |[x, y]| {
            let (v, g) = early_return_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[-6.0, 1.0], [2.0, 1.0], [0.5, 1.0], [0.5, -1.0]],
    );
}

/// A callee with two differentiated parameters.
#[differentiate(forward, hessian)]
fn callee(a: f64, b: f64) -> f64 {
    a * b.exp()
}

/// Calls: both arguments active, one active, none active, nested.
#[differentiate(wrt(x), forward, hessian)]
fn calls(x: f64, c: f64) -> f64 {
    // `0.5 * x`: an argument whose text starts with `0.` (clippy once read
    // the argument index spanned on it as a zero-prefixed literal).
    callee(x, 0.5 * x) + callee(c, x) + callee(1.0, c) + callee(callee(x, 0.5), c)
}

#[test]
fn calls_numbers() {
    check(
        |[x]| calls(x, 0.3),
        |[x]| {
            let (v, g) = calls_grad(x, 0.3);
            (v, [g.x])
        },
        &[[0.5], [-1.0]],
    );
}

/// Every runtime function, through the prelude and through `grad::`.
#[differentiate(forward, hessian)]
fn runtime(x: f64, y: f64) -> f64 {
    let p = sigmoid(x);
    let a = relu(x) + grad::leaky_relu(y, 0.1) + softplus(y) + clamp(x, -1.0, 1.0);
    a + bce(p, 0.3) + grad::bce_with_logits(y, 0.6) + mse(x, y)
}

#[test]
fn runtime_numbers() {
    check(
        |[x, y]| runtime(x, y),
        |[x, y]| {
            let (v, g) = runtime_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.25], [-0.4, -2.0]],
    );
}

/// The `chain!` pipeline.
#[differentiate(wrt(w, b), forward, hessian)]
fn chained(w: f64, b: f64, x: f64, y: f64) -> f64 {
    chain!(w * x + b -> sigmoid -> bce(y))
}

#[test]
fn chain_numbers() {
    let (value, g) = chained_grad(1.0, 0.0, 6.0, 0.0);
    assert_eq!(
        format!("{value:.4} {:.4} {:.4}", g.w, g.b),
        "6.0025 5.9852 0.9975"
    );
}

/// Every method, method and free form.
#[differentiate(forward, hessian)]
fn methods(x: f64, y: f64) -> f64 {
    let a = x.sin() + f64::cos(y) + x.tan() * 0.1 + (x * 0.3).asin() + (y * 0.3).acos() + x.atan();
    let b =
        x.sinh() + f64::cosh(y) + x.tanh() + y.asinh() + (y * y + 1.5).acosh() + (x * 0.4).atanh();
    let c = y.exp() + x.exp2() + y.exp_m1() + (y * y + 0.5).ln() + (x * x).ln_1p();
    let d = (y * y + 1.0).log2() + f64::log10(x * x + 2.0) + (x * x + 2.0).log(3.0);
    let e =
        (y * y + 1.0).sqrt() + x.cbrt() + x.powi(3) + (y * y + 1.0).powf(x) + (x * x + 1.0).recip();
    let f = x.abs() + y.signum() + x.min(y) + f64::max(x, y) + x.clamp(-0.9, 0.9);
    let g = x.hypot(y) + y.atan2(x) + x.mul_add(y, 2.0) + 2.0_f64.powf(x);
    a + b + c + d + e + f + g
}

#[test]
fn methods_numbers() {
    check(
        |[x, y]| methods(x, y),
        |[x, y]| {
            let (v, g) = methods_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.25], [0.8, -0.7]],
    );
}

/// `f32` arithmetic and methods, for the literal suffixes and constants.
#[differentiate(forward, hessian)]
fn single(x: f32, y: f32) -> f32 {
    let a = x.exp2() + y.log10() + x.powi(2) * 0.5;
    a * sigmoid(x * y) + std::f32::consts::E
}

#[test]
fn single_numbers() {
    for (x, y) in [(0.5_f32, 1.5_f32), (-1.0, 0.25)] {
        let (value, g) = single_grad(x, y);
        assert_eq!(value, single(x, y));
        assert_gradient(|v: &[f32]| single(v[0], v[1]), &[x, y], &[g.x, g.y]);
    }
}

/// Loops: a reduction over a slice, a recurrence, a product with `while`,
/// `break`/`continue`, `match`, local arrays and a 2-D array parameter.
#[derive(Clone, Copy)]
enum Activation {
    Tanh,
    Identity,
}

// The index loop over `k` is how a 2-D weight is read in a #[differentiate]
// body (rows cannot be iterated yet); the allow is for this, the user's own
// function, and does not reach the generated companions, which are separate
// items that clippy checks in full.
#[allow(clippy::needless_range_loop)]
#[differentiate(wrt(w, b), forward, hessian)]
fn loops(w: [[f64; 2]; 3], b: f64, x: &[f64], act: Activation) -> f64 {
    let mut total = 0.0;
    for (s, xs) in x.iter().enumerate() {
        let mut h = [0.0; 3];
        for j in 0..3 {
            for k in 0..2 {
                h[j] += w[j][k] * xs * (k + 1) as f64;
            }
        }
        for hj in h.iter() {
            let a = match act {
                Activation::Tanh => (hj + b).tanh(),
                Activation::Identity => hj + b,
            };
            if s % 2 == 1 {
                continue;
            }
            total += a * a;
        }
    }
    let mut state = b;
    let mut steps = 0;
    while steps < 4 {
        state = (state * w[0][0] + 0.5).tanh();
        steps += 1;
        if state > 10.0 {
            break;
        }
    }
    total + state
}

#[test]
fn loops_numbers() {
    let x = [0.5, -1.0, 2.0];
    for act in [Activation::Tanh, Activation::Identity] {
        let w = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]];
        let (value, g) = loops_grad(w, 0.2, &x, act);
        assert_eq!(value, loops(w, 0.2, &x, act));
        let flat: Vec<f64> = w.iter().flatten().copied().chain([0.2]).collect();
        let mut analytic: Vec<f64> = g.w.iter().flatten().copied().collect();
        analytic.push(g.b);
        let unflat = |p: &[f64]| [[p[0], p[1]], [p[2], p[3]], [p[4], p[5]]];
        assert_gradient(
            |p: &[f64]| loops(unflat(p), p[6], &x, act),
            &flat,
            &analytic,
        );
    }
}

/// Compound assignment to local array elements in loops is emitted as
/// compound assignment too (`h[0] += x`, not `h[0] = h[0] + x`, which
/// `clippy::assign_op_pattern` reports).
#[differentiate(forward, hessian)]
fn constant_index(x: f64) -> f64 {
    let mut h = [0.0; 1];
    for _ in 0..2 {
        h[0] += x;
    }
    h[0]
}

#[differentiate(forward, hessian)]
fn two_dimensional(x: &[f64]) -> f64 {
    let mut m = [[0.0; 2]; 2];
    for i in 0..2 {
        m[i][0] += x[i];
        m[1][i] -= x[i];
    }
    m[0][0] * m[1][1]
}

#[test]
fn compound_array_updates_numbers() {
    let (value, g) = constant_index_grad(1.5);
    assert_eq!((value, g.x), (3.0, 2.0));
    let x = [0.5, -1.5];
    let (value, g) = two_dimensional_grad(&x);
    assert_eq!(value, two_dimensional(&x));
    assert_gradient(|p: &[f64]| two_dimensional(p), &x, &g.x);
}

/// Early exits in `if`s whose branches both go on (lowered as a region with
/// a flag), in the function and in a loop body; `use` items in the body;
/// gated kinks (`relu`, `max`, `clamp`).
#[differentiate(forward, hessian)]
fn regions_and_imports(x: f64, y: f64) -> f64 {
    use grad::prelude::relu as r;
    let mut z = x;
    if z > 0.5 {
        if y > 1.0 {
            return z * y;
        }
        z += y.sin();
    } else {
        z *= 2.0;
    }
    let mut s = 0.0;
    for i in 0..4 {
        let t = f64::from(i) * 0.5;
        if t > z {
            if s > 3.0 {
                break;
            }
            s += t * y;
        } else {
            s *= 0.5;
        }
    }
    r(z).sqrt() + s + z.max(y) + clamp(y, 0.0, 1.0)
}

#[test]
fn regions_and_imports_numbers() {
    check(
        |[x, y]| regions_and_imports(x, y),
        |[x, y]| {
            let (v, g) = regions_and_imports_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.3, 0.7], [0.8, 1.5], [0.9, 0.4], [-0.6, 0.3]],
    );
}

/// Several outputs: `f_jacobian` and `f_jvp` (an array variable, a tuple
/// with an early return and a branch; reverse sweeps for the first, forward
/// sweeps for the second).
#[differentiate(forward)]
fn outputs_array(x: f64, w: [f64; 3]) -> [f64; 3] {
    let mut out = [0.0; 3];
    for k in 0..3 {
        out[k] = (w[k] * x).tanh();
    }
    out
}

#[differentiate(wrt(x), forward)]
fn outputs_tuple(x: f64, y: f64) -> (f64, f64) {
    if x < -10.0 {
        return (0.0, x);
    }
    if x > y {
        (x * y, x.exp())
    } else {
        (y, x.sin())
    }
}

#[test]
fn outputs_numbers() {
    let w = [0.5, -1.0, 2.0];
    let (out, j) = outputs_array_jacobian(0.3, w);
    assert_eq!(out, outputs_array(0.3, w));
    for (k, row) in j.iter().enumerate() {
        let flat: Vec<f64> = std::iter::once(row.x).chain(row.w).collect();
        assert_gradient(
            |p| outputs_array(p[0], [p[1], p[2], p[3]])[k],
            &[0.3, w[0], w[1], w[2]],
            &flat,
        );
    }
    for (x, y) in [(1.5, 0.5), (0.2, 0.9), (-11.0, 0.0)] {
        let (out, j) = outputs_tuple_jacobian(x, y);
        assert_eq!(out, outputs_tuple(x, y));
        assert_gradient(|p| outputs_tuple(p[0], y).0, &[x], &[j[0].x]);
        assert_gradient(|p| outputs_tuple(p[0], y).1, &[x], &[j[1].x]);
        assert_eq!(outputs_tuple_jvp(x, y, 1.0), (out, (j[0].x, j[1].x)));
    }
    let (_, dots) = outputs_array_jvp(0.3, w, 1.0, [0.0; 3]);
    for k in 0..3 {
        approx::assert_relative_eq!(dots[k], j[k].x, max_relative = 1e-15);
    }
}
