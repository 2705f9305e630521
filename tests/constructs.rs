//! The language constructs a `#[differentiate]` body may use, each checked
//! through the generated `_grad` companion against central finite
//! differences of the untouched primal, at several points, plus exact
//! values where the derivative is known in closed form.
//!
//! Every primitive and runtime function is in `tests/primitives.rs`; kinks
//! and untaken branches are in `tests/kinks.rs`.

// The bodies below are deliberately written the way users sometimes do
// (`return` at the end, `b = b * a`, `!(y < 2.0)`, a same-type cast), to
// show the macro accepts them; clippy's style lints on them are expected.
// `tests/lint_clean.rs` checks that the *generated* code is lint-free.
#![allow(
    clippy::assign_op_pattern,
    clippy::let_and_return,
    clippy::needless_return,
    clippy::neg_cmp_op_on_partial_ord,
    clippy::unnecessary_cast
)]

use approx::assert_relative_eq;
use grad::check::assert_gradient;
use grad::prelude::*;

mod common;
use common::check;

// ------------------------------------------------------------- parameters

/// `mut` parameters reassigned, also from their own old value.
#[differentiate]
fn mut_params(mut x: f64, mut y: f64) -> f64 {
    x = x * y + 1.0;
    y = y.sin();
    x = x * x;
    x * y
}

#[test]
fn mut_parameters_reassigned() {
    check(
        |[x, y]| mut_params(x, y),
        |[x, y]| {
            let (v, g) = mut_params_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 1.5], [-1.0, 0.3], [2.0, -2.0]],
    );
    // f = (xy + 1)² sin y: ∂f/∂x = 2(xy + 1) y sin y.
    let (x, y) = (0.5_f64, 1.5_f64);
    let (_, g) = mut_params_grad(x, y);
    assert_relative_eq!(g.x, 2.0 * (x * y + 1.0) * y * y.sin(), max_relative = 1e-14);
}

// ------------------------------------------------------------------- lets

/// `let` with and without a type annotation.
#[differentiate]
fn lets(x: f64, y: f64) -> f64 {
    let a: f64 = x * 2.0;
    let b = a + y;
    let c: f64 = b * b;
    let d = c - a;
    d / y
}

#[test]
fn let_with_and_without_type() {
    check(
        |[x, y]| lets(x, y),
        |[x, y]| {
            let (v, g) = lets_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[1.0, 2.0], [-0.7, 0.4], [3.0, -1.5]],
    );
    // f = ((2x + y)² − 2x) / y at (1, 2): ∂f/∂x = (4(2x + y) − 2)/y = 7,
    // ∂f/∂y = 2(2x + y)/y − ((2x + y)² − 2x)/y² = 4 − 3.5 = 0.5.
    let (v, g) = lets_grad(1.0, 2.0);
    assert_eq!(v, 7.0);
    assert_relative_eq!(g.x, 7.0, max_relative = 1e-15);
    assert_relative_eq!(g.y, 0.5, max_relative = 1e-15);
}

/// Shadowing: each `let x` is a new variable that reads the previous one.
#[differentiate]
fn shadowing(x: f64, y: f64) -> f64 {
    let x = x * 2.0;
    let x = x.sin() + x;
    let y = y * x;
    let x = x * y;
    x + y
}

#[test]
fn shadowing_lets() {
    check(
        |[x, y]| shadowing(x, y),
        |[x, y]| {
            let (v, g) = shadowing_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.3, 1.2], [-1.1, 0.5], [2.5, -0.8]],
    );
    // Shadowing inside an inner block does not leak out of it.
    check(
        |[x]| shadow_in_block(x),
        |[x]| {
            let (v, g) = shadow_in_block_grad(x);
            (v, [g.x])
        },
        &[[0.5], [-2.0]],
    );
    // f = x(3x) + x = 3x² + x: f'(x) = 6x + 1 exactly.
    assert_eq!(shadow_in_block_grad(0.5).1.x, 4.0);
}

#[differentiate]
fn shadow_in_block(x: f64) -> f64 {
    let y = {
        let x = x * 3.0;
        x
    };
    x * y + x
}

/// `let mut` updated with `=`, `+=`, `-=`, `*=`, `/=`.
#[differentiate]
fn compound(x: f64, y: f64) -> f64 {
    let mut acc = x;
    acc += y;
    acc -= 0.5 * x;
    acc *= y;
    acc /= x * x + 1.0;
    acc = acc * acc + x;
    let mut other: f64 = 1.0;
    other *= acc;
    other += 2.0;
    other
}

#[test]
fn let_mut_and_compound_assignment() {
    check(
        |[x, y]| compound(x, y),
        |[x, y]| {
            let (v, g) = compound_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[1.0, 2.0], [-0.5, 0.7], [2.0, -3.0], [0.0, 0.0]],
    );
}

// ------------------------------------------------------ parens and blocks

/// Parentheses and blocks used as values, nested.
#[differentiate]
fn blocks(x: f64, y: f64) -> f64 {
    let u = {
        let t = x * y;
        t * 2.0
    };
    let w = {
        let s = x.exp();
        {
            let r = (s + 1.0) * (y - (x - 1.0));
            r / 2.0
        }
    };
    (u + (x - y)) * (w)
}

#[test]
fn parentheses_and_nested_blocks() {
    check(
        |[x, y]| blocks(x, y),
        |[x, y]| {
            let (v, g) = blocks_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.2, 0.9], [-1.0, 2.0], [1.5, -0.5]],
    );
}

// -------------------------------------------------------------- constants

const SCALE: f64 = 2.5;

/// Literals (also with a suffix, and in exponent form), a user const and
/// the std constants.
#[differentiate]
fn constants(x: f64, y: f64) -> f64 {
    SCALE * x
        + std::f64::consts::PI * y
        + core::f64::consts::LN_2 * x * y
        + 3.0
        + 1e-1_f64 * x
        + 2.0e0 * y
}

#[test]
fn literals_and_constants() {
    check(
        |[x, y]| constants(x, y),
        |[x, y]| {
            let (v, g) = constants_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[1.0, 2.0], [-3.0, 0.5]],
    );
    use std::f64::consts::{LN_2, PI};
    let (_, g) = constants_grad(1.0, 2.0);
    assert_relative_eq!(g.x, SCALE + LN_2 * 2.0 + 0.1, max_relative = 1e-14);
    assert_relative_eq!(g.y, PI + LN_2 + 2.0, max_relative = 1e-14);
}

/// `f64::consts::E` needs the `std::f64` module in scope; the free form of
/// the methods (`f64::exp`) still names the primitive type.
mod module_constant {
    use grad::prelude::*;
    use std::f64;

    #[differentiate]
    pub fn with_e(x: f64) -> f64 {
        f64::consts::E * x * x + f64::exp(x)
    }
}

#[test]
fn f64_consts_through_the_module_path() {
    use module_constant::{with_e, with_e_grad};
    check(
        |[x]| with_e(x),
        |[x]| {
            let (v, g) = with_e_grad(x);
            (v, [g.x])
        },
        &[[0.5], [-1.0], [2.0]],
    );
    // f'(0) = 2e·0 + e⁰ = 1.
    assert_eq!(with_e_grad(0.0).1.x, 1.0);
}

// ------------------------------------------------------------------ casts

/// Integer parameters cast to `f64`: used, never differentiated.
#[differentiate]
fn casts(x: f64, n: i32, m: usize) -> f64 {
    let k = n as f64;
    x * k + (m as f64) * x.powi(n) + (x as f64) * (n as f64 + m as f64)
}

#[test]
fn casts_from_integer_parameters() {
    for (n, m) in [(2, 3), (3, 0), (-1, 5)] {
        check(
            |[x]| casts(x, n, m),
            |[x]| {
                let (v, g) = casts_grad(x, n, m);
                (v, [g.x])
            },
            &[[0.7], [1.5], [-2.0]],
        );
    }
    // n = 2, m = 3 at x = 1: f = 2x + 3x² + 5x, f' = 2 + 6 + 5 = 13.
    assert_eq!(casts_grad(1.0, 2, 3).1.x, 13.0);
}

// --------------------------------------------------------------- branches

/// `if` / `else if` / `else` as an expression.
#[differentiate]
fn if_expr(x: f64, y: f64) -> f64 {
    let r = if x < 0.0 {
        -x * y
    } else if x < 1.0 {
        x * x + y
    } else {
        x.ln() * y + 1.0
    };
    r * 2.0
}

#[test]
fn if_else_if_else_as_expression() {
    check(
        |[x, y]| if_expr(x, y),
        |[x, y]| {
            let (v, g) = if_expr_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[-2.0, 1.5], [0.5, 1.5], [3.0, 1.5], [3.0, -0.5]],
    );
    // Each region's derivative exactly.
    let (_, g) = if_expr_grad(-2.0, 1.5);
    assert_eq!((g.x, g.y), (-3.0, 4.0));
    let (_, g) = if_expr_grad(0.5, 1.5);
    assert_eq!((g.x, g.y), (2.0, 2.0));
    let (_, g) = if_expr_grad(2.0, 3.0);
    assert_eq!((g.x, g.y), (3.0, 2.0 * 2.0_f64.ln()));
}

/// `if` as a statement, assigning outer `let mut` variables in some
/// branches only, with `&&`, `||`, `!` and comparisons in the conditions.
#[differentiate]
fn if_stmt(x: f64, y: f64) -> f64 {
    let mut a = x;
    let mut b = y;
    if x > 0.0 && y > 0.0 {
        a *= y;
    } else if x < -1.0 || !(y < 2.0) {
        b = x * y;
        a = b + 1.0;
    } else {
        b += 1.0;
    }
    if a >= b && !(x == y) {
        b = b * a;
    }
    if y > -0.5 {
    } else {
        a = a.exp();
    }
    a * b
}

#[test]
fn if_as_statement_assigning_some_variables() {
    check(
        |[x, y]| if_stmt(x, y),
        |[x, y]| {
            let (v, g) = if_stmt_grad(x, y);
            (v, [g.x, g.y])
        },
        &[
            [0.5, 2.0],  // first branch, a < b
            [2.0, 0.3],  // first branch, a >= b
            [-2.0, 1.0], // `x < -1.0`
            [-0.5, 3.0], // `!(y < 2.0)`
            [-0.5, 1.0], // else
            [0.5, -1.0], // else, then the empty-then `if`
        ],
    );
    // Else branch at (-0.5, 1): a = x, b = y + 1, f = x (y + 1).
    let (_, g) = if_stmt_grad(-0.5, 1.0);
    assert_eq!((g.x, g.y), (2.0, -0.5));
}

// ---------------------------------------------------------- early returns

/// Guard clauses, a return inside a nested `if`, and fall-through.
#[differentiate]
fn guards(x: f64, y: f64) -> f64 {
    if x < -2.0 {
        return x * y;
    }
    if y < -5.0 {
        return 0.0;
    }
    let t = x * y;
    if y > 0.0 {
        if x > 1.0 {
            return x.ln() * y;
        }
        if t > 0.5 {
            return t.sqrt();
        }
    }
    t + x + y
}

#[test]
fn early_return_guards_and_nested() {
    check(
        |[x, y]| guards(x, y),
        |[x, y]| {
            let (v, g) = guards_grad(x, y);
            (v, [g.x, g.y])
        },
        &[
            [-3.0, 2.0],  // first guard
            [0.5, -6.0],  // constant guard
            [2.0, 1.5],   // nested return
            [0.8, 1.0],   // second nested return
            [0.2, 1.0],   // fall-through with y > 0
            [-1.0, -1.0], // fall-through with y <= 0
        ],
    );
    // The constant guard has a zero gradient; the first one is (y, x).
    assert_eq!(guards_grad(0.5, -6.0), (0.0, GuardsGrad { x: 0.0, y: 0.0 }));
    assert_eq!(guards_grad(-3.0, 2.0).1, GuardsGrad { x: 2.0, y: -3.0 });
}

/// `return` in both branches of the last `if`.
#[differentiate]
fn both_return(x: f64) -> f64 {
    let s = x * x;
    if x > 0.0 {
        return s.sqrt() * 3.0;
    } else {
        return -s;
    }
}

/// `return` as the last statement, and in an `else if` chain.
#[differentiate]
fn chain_return(x: f64) -> f64 {
    if x > 2.0 {
        return x.powi(3);
    } else if x > 0.0 {
        return x.exp();
    }
    return x * 4.0;
}

#[test]
fn early_return_in_both_branches() {
    check(
        |[x]| both_return(x),
        |[x]| {
            let (v, g) = both_return_grad(x);
            (v, [g.x])
        },
        &[[1.5], [-1.5]],
    );
    assert_eq!(both_return_grad(1.5).1.x, 3.0);
    assert_eq!(both_return_grad(-1.5).1.x, 3.0);
    check(
        |[x]| chain_return(x),
        |[x]| {
            let (v, g) = chain_return_grad(x);
            (v, [g.x])
        },
        &[[3.0], [1.0], [-1.0]],
    );
    assert_eq!(chain_return_grad(3.0).1.x, 27.0);
    assert_eq!(chain_return_grad(-1.0).1.x, 4.0);
}

// --------------------------------------------------------------- unary ops

/// Unary minus on values, literals and expressions.
#[differentiate]
fn negation(x: f64, y: f64) -> f64 {
    let a = -x;
    let b = -(a * y) + -2.0;
    -b * -y
}

#[test]
fn unary_minus() {
    check(
        |[x, y]| negation(x, y),
        |[x, y]| {
            let (v, g) = negation_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[1.0, 2.0], [-0.5, 0.25]],
    );
    // b = xy − 2 and f = b·y = xy² − 2y.
    let (v, g) = negation_grad(1.0, 2.0);
    assert_eq!(v, 0.0);
    assert_eq!((g.x, g.y), (4.0, 2.0));
}

// ------------------------------------------------------------ edge cases

/// A `mut` parameter reassigned in one branch only.
#[differentiate]
fn mut_param_in_branch(mut x: f64) -> f64 {
    if x > 1.0 {
        x = x.ln();
    }
    x * 2.0
}

/// Compound assignment on `mut` parameters.
#[differentiate]
fn mut_param_compound(mut x: f64, mut y: f64) -> f64 {
    x += y;
    x *= x;
    x -= y;
    y /= 2.0;
    x + y
}

/// A parameter shadowed by a constant: the gradient only flows through
/// the uses before the shadowing.
#[differentiate]
fn shadowed_by_constant(x: f64) -> f64 {
    let y = x * 2.0;
    let x: f64 = 3.0;
    x * y
}

/// A variable reassigned to a constant after being read.
#[differentiate]
fn reassigned_to_constant(x: f64) -> f64 {
    let mut y = x;
    let first = y * 3.0;
    y = 2.0;
    y * x + first
}

/// An integer parameter shadowed by its float value.
#[differentiate]
fn int_shadowed_as_float(x: f64, n: i32) -> f64 {
    let n = n as f64;
    x * n
}

/// Identity, constant, and aliasing through several `let`s.
#[differentiate]
fn identity(x: f64) -> f64 {
    x
}
#[differentiate]
fn constant(_x: f64) -> f64 {
    2.0
}
#[differentiate]
fn aliases(x: f64) -> f64 {
    let a = x;
    let b = a;
    let c = b;
    c * a
}

#[test]
fn reassignment_shadowing_and_trivial_bodies() {
    for x in [2.0, 0.5] {
        let (value, g) = mut_param_in_branch_grad(x);
        assert_eq!(value, mut_param_in_branch(x));
        assert_gradient(|v: &[f64]| mut_param_in_branch(v[0]), &[x], &[g.x]);
    }
    assert_eq!(mut_param_in_branch_grad(2.0).1.x, 1.0);
    // (x + y)² − y + y/2 at (1, 2): ∂x = 2(x + y) = 6, ∂y = 6 − 1/2.
    assert_eq!(
        mut_param_compound_grad(1.0, 2.0),
        (8.0, MutParamCompoundGrad { x: 6.0, y: 5.5 })
    );
    assert_gradient(|v: &[f64]| mut_param_compound(v[0], v[1]), &[-0.3, 1.7], &{
        let g = mut_param_compound_grad(-0.3, 1.7).1;
        [g.x, g.y]
    });
    assert_eq!(
        shadowed_by_constant_grad(2.0),
        (12.0, ShadowedByConstantGrad { x: 6.0 })
    );
    assert_eq!(
        reassigned_to_constant_grad(5.0),
        (25.0, ReassignedToConstantGrad { x: 5.0 })
    );
    assert_eq!(
        int_shadowed_as_float_grad(2.0, 3),
        (6.0, IntShadowedAsFloatGrad { x: 3.0 })
    );
    assert_eq!(identity_grad(5.0), (5.0, IdentityGrad { x: 1.0 }));
    assert_eq!(constant_grad(5.0), (2.0, ConstantGrad { _x: 0.0 }));
    assert_eq!(aliases_grad(3.0), (9.0, AliasesGrad { x: 6.0 }));
}

/// Branches nested in branches, assigning different variables.
#[differentiate]
fn nested_branches(x: f64, y: f64) -> f64 {
    let mut a = x;
    let mut b = y;
    if x > 0.0 {
        if y > 0.0 {
            a = a * y;
        } else {
            b = b * x;
        }
    }
    a + b
}

/// A `bool` local used in conditions.
#[differentiate]
fn bool_local(x: f64) -> f64 {
    let big = x > 1.0;
    if !big {
        x
    } else {
        x * x
    }
}

#[test]
fn nested_branches_and_bool_locals() {
    check(
        |[x, y]| nested_branches(x, y),
        |[x, y]| {
            let (v, g) = nested_branches_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[1.0, 2.0], [1.0, -2.0], [-1.0, 2.0]],
    );
    assert_eq!(
        nested_branches_grad(1.0, 2.0).1,
        NestedBranchesGrad { x: 2.0, y: 2.0 }
    );
    assert_eq!(
        nested_branches_grad(1.0, -2.0).1,
        NestedBranchesGrad { x: -1.0, y: 1.0 }
    );
    assert_eq!(bool_local_grad(0.5).1.x, 1.0);
    assert_eq!(bool_local_grad(2.0).1.x, 4.0);
}

/// `return` inside a nested block, in the `else` branch only, and after a
/// shadowing that the code after the `if` sees.
#[differentiate]
fn return_in_block(x: f64) -> f64 {
    let y = x * 2.0;
    {
        if x > 0.0 {
            return y.sqrt();
        }
    }
    y * y
}

#[differentiate]
fn return_in_else_only(x: f64) -> f64 {
    let mut y = x;
    if x > 0.0 {
        y *= 3.0;
    } else {
        return x * 5.0;
    }
    y + 1.0
}

#[differentiate]
fn return_then_shadow(x: f64, y: f64) -> f64 {
    let z = x * y;
    if z > 1.0 {
        return z;
    }
    let z = z + x;
    if z > 0.5 {
        return z * 2.0;
    }
    z * 3.0
}

#[test]
fn early_return_in_blocks_and_else() {
    assert_eq!(
        return_in_block_grad(2.0),
        (2.0, ReturnInBlockGrad { x: 0.5 })
    );
    assert_eq!(
        return_in_block_grad(-1.0),
        (4.0, ReturnInBlockGrad { x: -8.0 })
    );
    assert_eq!(
        return_in_else_only_grad(2.0),
        (7.0, ReturnInElseOnlyGrad { x: 3.0 })
    );
    assert_eq!(
        return_in_else_only_grad(-1.0),
        (-5.0, ReturnInElseOnlyGrad { x: 5.0 })
    );
    check(
        |[x, y]| return_then_shadow(x, y),
        |[x, y]| {
            let (v, g) = return_then_shadow_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[2.0, 1.0], [0.5, 0.5], [0.1, 0.1]],
    );
}

/// Attributes on the function are kept on it; a `&f64` parameter is read
/// through `*` and not differentiated; integer arithmetic feeds `powi`;
/// unary minus on receivers.
#[differentiate]
#[inline]
#[must_use]
fn misc(x: f64, r: &f64, k: i32) -> f64 {
    let m = k * 2 - 1;
    x * *r + x.powi(m + 1) + (-x).exp() + (-(x * 2.0)).sin()
}

#[test]
fn attributes_references_integer_arithmetic() {
    let r = 4.0;
    for x in [0.0, 0.7, -1.3] {
        let (value, g) = misc_grad(x, &r, 2);
        assert_eq!(value, misc(x, &r, 2));
        assert_gradient(|v: &[f64]| misc(v[0], &r, 2), &[x], &[g.x]);
    }
    // At 0: r + 0 − e⁰ − 2 cos 0.
    assert_eq!(misc_grad(0.0, &r, 2).1.x, 4.0 - 1.0 - 2.0);
}

// ------------------------------------------------------------ signatures

/// An explicit lifetime parameter is declared on the companions too.
#[allow(clippy::needless_lifetimes)] // the lifetime is what this tests
#[differentiate]
fn scaled<'a>(x: f64, name: &'a str) -> f64 {
    x * name.len() as f64
}

#[test]
fn named_lifetime_parameter() {
    assert_eq!(scaled(2.0, "abc"), 6.0);
    assert_eq!(scaled_grad(2.0, "abc"), (6.0, ScaledGrad { x: 3.0 }));
}
