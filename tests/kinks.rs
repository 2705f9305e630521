//! Points where a naive gradient goes wrong: branches that are not taken
//! must contribute nothing (no `0 · inf = NaN` from a derivative evaluated
//! outside its domain), and kinks follow PyTorch's subgradient conventions
//! (relu'(0) = 0, abs'(0) = 0, ties in max/min split evenly, clamp passes
//! the gradient on the closed interval, sqrt'(0) = inf).
//!
//! The finite-difference check is used only where the function is smooth
//! around the point; at the kink the expected value is exact.

use grad::check::assert_gradient;
use grad::prelude::*;

/// Checks a one-parameter function at points where it is smooth.
#[track_caller]
fn smooth(primal: fn(f64) -> f64, derivative: impl Fn(f64) -> f64, points: &[f64]) {
    for &x in points {
        assert_gradient(|v: &[f64]| primal(v[0]), &[x], &[derivative(x)]);
    }
}

// ------------------------------------------------------- untaken branches

/// At x = 0 the `else` branch would give sqrt'(0) = inf; it is not taken.
#[differentiate]
fn sqrt_in_else(x: f64) -> f64 {
    if x < 1.0 {
        x
    } else {
        x.sqrt()
    }
}

/// At x = −1 the `then` branch would give ln(−1) = NaN; it is not taken.
#[differentiate]
fn ln_in_then(x: f64) -> f64 {
    if x > 0.0 {
        x.ln()
    } else {
        x * 2.0
    }
}

/// The same guard as an early return.
#[differentiate]
fn ln_after_guard(x: f64) -> f64 {
    if x <= 0.0 {
        return x * 2.0;
    }
    x.ln()
}

/// The same as a statement `if` assigning a `let mut`.
#[differentiate]
fn ln_in_statement_if(x: f64) -> f64 {
    let mut y = x * 2.0;
    if x > 0.0 {
        y = x.ln();
    }
    y
}

#[test]
fn untaken_else_branch_contributes_nothing() {
    let (value, g) = sqrt_in_else_grad(0.0);
    assert_eq!(value, 0.0);
    assert_eq!(g.x, 1.0, "the untaken sqrt branch leaked into the gradient");
    smooth(
        sqrt_in_else,
        |x| sqrt_in_else_grad(x).1.x,
        &[-2.0, 0.0, 0.5, 4.0],
    );
    assert_eq!(sqrt_in_else_grad(4.0).1.x, 0.25);
}

#[test]
fn untaken_then_branch_contributes_nothing() {
    let (value, g) = ln_in_then_grad(-1.0);
    assert_eq!(value, -2.0);
    assert_eq!(g.x, 2.0, "the untaken ln branch leaked into the gradient");
    smooth(
        ln_in_then,
        |x| ln_in_then_grad(x).1.x,
        &[-1.0, -0.1, 0.5, 3.0],
    );
    assert_eq!(ln_in_then_grad(2.0).1.x, 0.5);
}

#[test]
fn untaken_branch_after_early_return_and_in_statement_if() {
    assert_eq!(
        ln_after_guard_grad(-1.0),
        (-2.0, LnAfterGuardGrad { x: 2.0 })
    );
    assert_eq!(ln_after_guard_grad(0.0), (0.0, LnAfterGuardGrad { x: 2.0 }));
    assert_eq!(ln_after_guard_grad(4.0).1.x, 0.25);
    smooth(
        ln_after_guard,
        |x| ln_after_guard_grad(x).1.x,
        &[-1.0, 0.5, 3.0],
    );

    assert_eq!(
        ln_in_statement_if_grad(-1.0),
        (-2.0, LnInStatementIfGrad { x: 2.0 })
    );
    assert_eq!(
        ln_in_statement_if_grad(0.0),
        (0.0, LnInStatementIfGrad { x: 2.0 })
    );
    assert_eq!(ln_in_statement_if_grad(4.0).1.x, 0.25);
    smooth(
        ln_in_statement_if,
        |x| ln_in_statement_if_grad(x).1.x,
        &[-1.0, 0.5, 3.0],
    );
}

/// A value computed before the branch and used only in the untaken one:
/// on this path nothing depends on it, so its infinite (x = 0) or NaN
/// (x < 0) derivative must not reach the gradient, as in PyTorch, where it
/// would not be part of the graph.
#[differentiate]
fn dead_on_this_path(x: f64) -> f64 {
    let s = x.sqrt();
    if x > 0.0 {
        s
    } else {
        x * 2.0
    }
}

#[test]

fn value_used_only_in_untaken_branch_contributes_nothing() {
    for x in [0.0, -1.0] {
        let (value, g) = dead_on_this_path_grad(x);
        assert_eq!(value, x * 2.0);
        assert_eq!(g.x, 2.0, "at x = {x}");
    }
    smooth(
        dead_on_this_path,
        |x| dead_on_this_path_grad(x).1.x,
        &[-1.0, 0.5, 2.0],
    );
}

/// The same through a variable whose first value is overwritten before
/// anything reads it.
#[differentiate]
fn overwritten(x: f64) -> f64 {
    let mut y = x.sqrt();
    if x <= 0.0 {
        y = x * 2.0;
    }
    y
}

#[test]

fn overwritten_value_contributes_nothing() {
    for x in [0.0, -1.0] {
        let (value, g) = overwritten_grad(x);
        assert_eq!(value, x * 2.0);
        assert_eq!(g.x, 2.0, "at x = {x}");
    }
    smooth(overwritten, |x| overwritten_grad(x).1.x, &[-1.0, 0.5, 2.0]);
}

/// Values computed and never used: their derivatives (infinite at 0, NaN
/// below) must not reach the gradient.
#[differentiate]
fn dead_values(x: f64) -> f64 {
    let _unused_sqrt = x.sqrt();
    let _unused_ln = x.ln();
    x * 2.0
}

#[test]
fn unused_values_contribute_nothing() {
    assert_eq!(dead_values_grad(0.0), (0.0, DeadValuesGrad { x: 2.0 }));
    assert_eq!(dead_values_grad(-1.0), (-2.0, DeadValuesGrad { x: 2.0 }));
}

// ------------------------------------------------------------------ kinks

#[differentiate]
fn relu_prelude(x: f64) -> f64 {
    relu(x)
}
#[differentiate]
fn relu_path(x: f64) -> f64 {
    grad::relu(x)
}
#[differentiate]
fn leaky(x: f64, slope: f64) -> f64 {
    leaky_relu(x, slope)
}

#[test]
fn relu_at_zero_has_zero_gradient() {
    assert_eq!(relu_prelude_grad(0.0), (0.0, ReluPreludeGrad { x: 0.0 }));
    assert_eq!(relu_path_grad(0.0), (0.0, ReluPathGrad { x: 0.0 }));
    assert_eq!(relu_prelude_grad(1e-300).1.x, 1.0);
    assert_eq!(relu_prelude_grad(-1e-300).1.x, 0.0);
    // leaky_relu at 0 takes the negative side's slope, as PyTorch does.
    assert_eq!(leaky_grad(0.0, 0.1).1, LeakyGrad { x: 0.1, slope: 0.0 });
}

#[differentiate]
fn abs_method(x: f64) -> f64 {
    x.abs()
}
#[differentiate]
fn abs_free(x: f64) -> f64 {
    f64::abs(x)
}
#[differentiate]
fn signum_method(x: f64) -> f64 {
    x.signum()
}

#[test]
fn abs_at_zero_has_zero_gradient() {
    assert_eq!(abs_method_grad(0.0), (0.0, AbsMethodGrad { x: 0.0 }));
    assert_eq!(abs_free_grad(0.0), (0.0, AbsFreeGrad { x: 0.0 }));
    // −0.0 is also the kink.
    assert_eq!(abs_method_grad(-0.0).1.x, 0.0);
    assert_eq!(abs_method_grad(-1e-300).1.x, -1.0);
    assert_eq!(signum_method_grad(0.0).1.x, 0.0);
}

#[differentiate]
fn max_method(x: f64, y: f64) -> f64 {
    x.max(y)
}
#[differentiate]
fn min_method(x: f64, y: f64) -> f64 {
    x.min(y)
}
#[differentiate]
fn max_free(x: f64, y: f64) -> f64 {
    f64::max(x, y)
}
#[differentiate]
fn min_free(x: f64, y: f64) -> f64 {
    f64::min(x, y)
}
/// `x.max(0.0)` is relu written as a max: the tie at 0 still splits.
#[differentiate]
fn max_with_literal(x: f64) -> f64 {
    x.max(0.0)
}

#[test]
fn max_and_min_ties_split_evenly() {
    assert_eq!(
        max_method_grad(1.5, 1.5),
        (1.5, MaxMethodGrad { x: 0.5, y: 0.5 })
    );
    assert_eq!(
        min_method_grad(1.5, 1.5),
        (1.5, MinMethodGrad { x: 0.5, y: 0.5 })
    );
    assert_eq!(
        max_free_grad(-2.0, -2.0),
        (-2.0, MaxFreeGrad { x: 0.5, y: 0.5 })
    );
    assert_eq!(
        min_free_grad(-2.0, -2.0),
        (-2.0, MinFreeGrad { x: 0.5, y: 0.5 })
    );
    assert_eq!(max_with_literal_grad(0.0).1.x, 0.5);
    // Off the tie, all of it goes to the winner.
    assert_eq!(
        max_method_grad(1.5, 1.0).1,
        MaxMethodGrad { x: 1.0, y: 0.0 }
    );
    assert_eq!(
        min_method_grad(1.5, 1.0).1,
        MinMethodGrad { x: 0.0, y: 1.0 }
    );
}

#[differentiate]
fn clamp_method(x: f64, lo: f64, hi: f64) -> f64 {
    x.clamp(lo, hi)
}
#[differentiate]
fn clamp_runtime(x: f64, lo: f64, hi: f64) -> f64 {
    clamp(x, lo, hi)
}
/// Only `x` differentiated, the bounds as literals.
#[differentiate]
fn clamp_unit(x: f64) -> f64 {
    grad::clamp(x, 0.0, 1.0)
}

#[test]
fn clamp_passes_gradient_on_the_closed_interval() {
    for generated in [clamp_method_grad, |x, lo, hi| {
        let (v, g) = clamp_runtime_grad(x, lo, hi);
        (
            v,
            ClampMethodGrad {
                x: g.x,
                lo: g.lo,
                hi: g.hi,
            },
        )
    }] {
        let (lo, hi) = (-1.0, 2.0);
        // At both ends the gradient goes to x, none to the bound.
        assert_eq!(
            generated(lo, lo, hi),
            (
                lo,
                ClampMethodGrad {
                    x: 1.0,
                    lo: 0.0,
                    hi: 0.0
                }
            )
        );
        assert_eq!(
            generated(hi, lo, hi),
            (
                hi,
                ClampMethodGrad {
                    x: 1.0,
                    lo: 0.0,
                    hi: 0.0
                }
            )
        );
        // Outside, none to x and all to the active bound.
        assert_eq!(
            generated(-3.0, lo, hi),
            (
                lo,
                ClampMethodGrad {
                    x: 0.0,
                    lo: 1.0,
                    hi: 0.0
                }
            )
        );
        assert_eq!(
            generated(5.0, lo, hi),
            (
                hi,
                ClampMethodGrad {
                    x: 0.0,
                    lo: 0.0,
                    hi: 1.0
                }
            )
        );
        assert_eq!(
            generated(0.5, lo, hi).1,
            ClampMethodGrad {
                x: 1.0,
                lo: 0.0,
                hi: 0.0
            }
        );
    }
    assert_eq!(clamp_unit_grad(0.0).1.x, 1.0);
    assert_eq!(clamp_unit_grad(1.0).1.x, 1.0);
    assert_eq!(clamp_unit_grad(-1e-12).1.x, 0.0);
    assert_eq!(clamp_unit_grad(1.0 + 1e-12).1.x, 0.0);
}

#[differentiate]
fn sqrt_method(x: f64) -> f64 {
    x.sqrt()
}
#[differentiate]
fn sqrt_free(x: f64) -> f64 {
    f64::sqrt(x)
}

#[test]
fn sqrt_at_zero_is_infinite() {
    assert_eq!(
        sqrt_method_grad(0.0),
        (0.0, SqrtMethodGrad { x: f64::INFINITY })
    );
    assert_eq!(
        sqrt_free_grad(0.0),
        (0.0, SqrtFreeGrad { x: f64::INFINITY })
    );
}

#[differentiate]
fn powf_free(x: f64, y: f64) -> f64 {
    x.powf(y)
}

#[test]
fn powf_at_zero_base_is_finite() {
    // d/dx x² at 0 is 0, and d/dy 0^y (y > 0) is 0: no `0 · ln 0 = NaN`.
    assert_eq!(
        powf_free_grad(0.0, 2.0),
        (0.0, PowfFreeGrad { x: 0.0, y: 0.0 })
    );
}
