//! The generated code must not clash with the user's names: parameters and
//! locals named like the companions' own variables (`grad`, `value`) or
//! like the macro's temporaries (`__t1`, `__d_x`, `ret`, `out`), a local
//! float named like a runtime function, constants named like temporaries,
//! raw identifiers, and modules that shadow `core`/`grad`. Every other
//! generated name, in every construct, is in `tests/hygiene_names.rs`.

#![allow(non_upper_case_globals)]

use grad::prelude::*;

mod common;
use common::check;

/// Parameters named like the `_grad` companion's locals and the
/// `_backward` companion's gradient parameter.
#[differentiate]
fn named_like_companions(grad: f64, value: f64, out: f64) -> f64 {
    let ret = grad * value;
    ret + out.sin() * grad
}

#[test]
fn parameters_named_grad_value_out() {
    check(
        |[g, v, o]| named_like_companions(g, v, o),
        |[g, v, o]| {
            let (val, gr) = named_like_companions_grad(g, v, o);
            (val, [gr.grad, gr.value, gr.out])
        },
        &[[1.0, 2.0, 0.5], [-0.3, 0.7, 2.0]],
    );
    let mut acc = NamedLikeCompanionsGrad::default();
    named_like_companions_backward(1.0, 2.0, 0.0, &mut acc);
    assert_eq!(
        acc,
        NamedLikeCompanionsGrad {
            grad: 2.0,
            value: 1.0,
            out: 1.0
        }
    );
}

/// Locals named like the temporaries and adjoints the macro generates,
/// and a parameter named like the adjoint of another.
#[differentiate]
fn named_like_temporaries(x: f64, z: f64, __d_x: f64) -> f64 {
    let __t1 = x * z;
    let __t2 = __t1.sin() + __d_x;
    let __d_z = z * __t2;
    let ret = if x > 0.0 { __d_z } else { __t1 * __d_x };
    let mut out = ret;
    out *= __t2;
    out + x
}

#[test]
fn locals_named_like_temporaries() {
    check(
        |[x, z, d]| named_like_temporaries(x, z, d),
        |[x, z, d]| {
            let (v, g) = named_like_temporaries_grad(x, z, d);
            (v, [g.x, g.z, g.__d_x])
        },
        &[[0.5, 1.5, 0.25], [-1.0, 0.8, 2.0], [2.0, -0.4, -1.0]],
    );
}

/// A local float named `sigmoid` next to calls of the runtime's `sigmoid`,
/// and a local named `grad` next to `grad::` paths.
#[differentiate]
fn shadowing_runtime_names(x: f64) -> f64 {
    let sigmoid = grad::sigmoid(x);
    let grad = sigmoid * 2.0;
    let relu = grad::relu(x - 0.5);
    grad::sigmoid(sigmoid * x) + grad + relu
}

#[test]
fn local_named_like_a_runtime_function() {
    check(
        |[x]| shadowing_runtime_names(x),
        |[x]| {
            let (v, g) = shadowing_runtime_names_grad(x);
            (v, [g.x])
        },
        &[[0.3], [-1.5], [2.0]],
    );
}

/// A constant named like a temporary, used in the body. (In a module of
/// its own: a constant in scope turns every `let` of that name into a
/// pattern, the user's as well as the macro's.)
mod mentioned_const {
    use grad::prelude::*;

    pub const __t2: f64 = 1.0;

    #[differentiate]
    pub fn f(x: f64, y: f64) -> f64 {
        let a = x * y + __t2;
        let b = if a > 0.0 { a.sin() } else { a * 2.0 };
        b * x
    }
}

#[test]
fn user_const_named_like_a_temporary() {
    check(
        |[x, y]| mentioned_const::f(x, y),
        |[x, y]| {
            let (v, g) = mentioned_const::f_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.5], [-2.0, 3.0]],
    );
    assert_eq!(mentioned_const::__t2, 1.0);
}

/// A function named like a temporary, in scope but not mentioned in the
/// body: a `let` of that name is a new binding, so this must compile.
mod unmentioned_fn {
    use grad::prelude::*;

    #[allow(dead_code)]
    fn __t1() -> f64 {
        3.0
    }

    #[differentiate]
    pub fn f(x: f64, y: f64) -> f64 {
        let a = x * y;
        let b = if a > 0.0 { a.sin() } else { a * 2.0 };
        b * x + (x * 3.0).exp()
    }
}

#[test]
fn user_function_named_like_a_temporary() {
    check(
        |[x, y]| unmentioned_fn::f(x, y),
        |[x, y]| {
            let (v, g) = unmentioned_fn::f_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.5], [-2.0, 3.0]],
    );
}

/// Raw identifiers as parameter and function names.
#[differentiate]
fn r#match(r#type: f64, r#fn: f64) -> f64 {
    r#type * r#fn.exp()
}

#[test]
fn raw_identifiers() {
    check(
        |[t, f]| r#match(t, f),
        |[t, f]| {
            let (v, g) = match_grad(t, f);
            (v, [g.r#type, g.r#fn])
        },
        &[[1.0, 0.0], [-0.5, 1.2]],
    );
    assert_eq!(
        match_grad(1.0, 0.0),
        (
            1.0,
            MatchGrad {
                r#type: 1.0,
                r#fn: 1.0
            }
        )
    );
}

/// Shadowing produces the names the macro would pick for a renamed
/// variable (`x_2`), which the user already took.
#[differentiate]
fn shadow_with_taken_names(x: f64) -> f64 {
    let x_2 = x + 1.0;
    let x = x * 2.0;
    let x = x * x_2;
    let x_3 = x.sin();
    x + x_3
}

#[test]
fn shadowing_next_to_suffixed_names() {
    check(
        |[x]| shadow_with_taken_names(x),
        |[x]| {
            let (v, g) = shadow_with_taken_names_grad(x);
            (v, [g.x])
        },
        &[[0.5], [-1.2]],
    );
}

/// Modules named `core` and `grad` shadow the crates for relative paths;
/// the generated code names them with a leading `::`.
mod shadowed_crates {
    #![allow(dead_code)]
    use ::grad::prelude::*;

    mod core {}
    mod grad {}
    mod std {}

    #[differentiate]
    pub fn f(x: f64, y: f64) -> f64 {
        let p = sigmoid(x * y);
        bce(p, 0.25) + (x * y).log2() + relu(x)
    }
}

#[test]
fn modules_shadowing_core_and_grad() {
    check(
        |[x, y]| shadowed_crates::f(x, y),
        |[x, y]| {
            let (v, g) = shadowed_crates::f_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.5], [2.0, 0.3]],
    );
}

/// A parameter named after a callee's `_grad` companion would shadow it in
/// the generated call; the companion gives the parameter another name.
#[differentiate]
fn h(x: f64) -> f64 {
    x.sin() * 2.0
}

#[differentiate(wrt(x))]
fn uses_h(x: f64, h_grad: f64) -> f64 {
    h(x) * h_grad
}

#[test]
fn parameter_named_like_a_callee_companion() {
    let (value, g) = uses_h_grad(0.0, 3.0);
    assert_eq!(value, 0.0);
    assert_eq!(g.x, 6.0);
}
