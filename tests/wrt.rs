//! Which parameters are differentiated: `wrt(...)` picks a subset (the
//! struct has exactly those fields, in any order given), and without it
//! every `f64`/`f32` parameter is, while integers, `bool` and `&str` are
//! allowed and never differentiated.

use grad::check::assert_gradient;
use grad::prelude::*;

/// Only `w`: `b` and `x` are constants for the gradient.
#[differentiate(wrt(w))]
fn only_w(w: f64, b: f64, x: f64) -> f64 {
    (w * x + b).tanh()
}

#[test]
fn wrt_subset_has_only_those_fields() {
    let (w, b, x) = (0.7, -0.2, 1.5);
    let (value, g) = only_w_grad(w, b, x);
    // The struct literal compiles only if `w` is the one field.
    let expected = OnlyWGrad {
        w: x * (1.0 - value * value),
    };
    assert_eq!(value, only_w(w, b, x));
    approx::assert_relative_eq!(g.w, expected.w, max_relative = 1e-15);
    for (w, b, x) in [(0.7, -0.2, 1.5), (-1.0, 0.5, 0.3)] {
        assert_gradient(
            |v: &[f64]| only_w(v[0], b, x),
            &[w],
            &[only_w_grad(w, b, x).1.w],
        );
    }
}

/// `wrt` in another order than the parameters, leaving one float out.
#[differentiate(wrt(z, x))]
fn reordered(x: f64, y: f64, z: f64) -> f64 {
    x * y.exp() + z * z * y
}

#[test]
fn wrt_order_does_not_matter() {
    let (x, y, z) = (0.5, 0.25, -2.0);
    let (_, g) = reordered_grad(x, y, z);
    assert_eq!(
        g,
        ReorderedGrad {
            x: y.exp(),
            z: 2.0 * z * y
        }
    );
    assert_gradient(|v: &[f64]| reordered(v[0], y, v[1]), &[x, z], &[g.x, g.z]);
}

/// No `wrt`: every float parameter, none of the others.
#[differentiate]
fn mixed_types(x: f64, n: i32, flag: bool, name: &str, y: f64, k: usize) -> f64 {
    let len = name.len() as f64;
    let base = if flag { x * y } else { x + y };
    base * len + f64::from(n) * x + (k as f64) * y
}

#[test]
fn default_is_every_float_parameter() {
    for (flag, name, n, k) in [(true, "abc", 2, 1), (false, "", -1, 4)] {
        for (x, y) in [(1.0, 2.0), (-0.5, 0.3)] {
            let (value, g) = mixed_types_grad(x, n, flag, name, y, k);
            assert_eq!(value, mixed_types(x, n, flag, name, y, k));
            // Exactly two fields, both f64.
            let MixedTypesGrad { x: gx, y: gy } = g;
            let (gx, gy): (f64, f64) = (gx, gy);
            assert_gradient(
                |v: &[f64]| mixed_types(v[0], n, flag, name, v[1], k),
                &[x, y],
                &[gx, gy],
            );
        }
    }
    // flag, "abc", n = 2, k = 1 at (1, 2): f = 3xy + 2x + y.
    assert_eq!(
        mixed_types_grad(1.0, 2, true, "abc", 2.0, 1).1,
        MixedTypesGrad { x: 8.0, y: 4.0 }
    );
}

/// A float parameter that the body does not use (so named `_unused`) still
/// gets a field, which stays zero.
#[differentiate]
fn unused_param(x: f64, _unused: f64) -> f64 {
    x * 3.0
}

#[test]
fn unused_float_parameter_has_zero_gradient() {
    assert_eq!(
        unused_param_grad(2.0, 5.0),
        (
            6.0,
            UnusedParamGrad {
                x: 3.0,
                _unused: 0.0
            }
        )
    );
}

/// A callee that differentiates only its first parameter, called with a
/// constant second argument.
#[differentiate(wrt(a))]
fn only_first(a: f64, b: f64) -> f64 {
    a.sin() * b
}

#[differentiate]
fn calls_only_first(x: f64) -> f64 {
    only_first(x * 2.0, 3.0) + only_first(x, 0.5)
}

#[test]
fn calling_a_function_with_a_wrt_subset() {
    for x in [0.3, -1.2, 2.0] {
        let (value, g) = calls_only_first_grad(x);
        assert_eq!(value, calls_only_first(x));
        assert_gradient(|v: &[f64]| calls_only_first(v[0]), &[x], &[g.x]);
    }
    assert_eq!(calls_only_first_grad(0.0).1.x, 6.5);
}
