//! `use` items inside a differentiated body: runtime functions imported
//! under another name (`use grad::prelude::sigmoid as s;`) are recognised,
//! and every import is in scope in the companions too. (A `use` at module
//! level is invisible to an attribute macro: see README, "Limitations".)

#![deny(warnings)]

use grad::prelude::*;

mod common;
use common::check;

#[differentiate]
fn renamed_sigmoid(x: f64, y: f64) -> f64 {
    use grad::prelude::sigmoid as s;
    s(x * y) + s(y)
}

#[test]
fn a_runtime_function_renamed_in_the_body() {
    check(
        |[x, y]| renamed_sigmoid(x, y),
        |[x, y]| {
            let (v, g) = renamed_sigmoid_grad(x, y);
            (v, [g.x, g.y])
        },
        &[[0.5, 2.0], [-1.0, 0.3], [3.0, -2.0]],
    );
    // By hand: s'(u) = s(u)(1 - s(u)).
    let (x, y) = (0.5, 2.0);
    let ds = |u: f64| grad::sigmoid(u) * (1.0 - grad::sigmoid(u));
    let (_, g) = renamed_sigmoid_grad(x, y);
    assert_eq!(g.x, ds(x * y) * y);
    assert!((g.y - (ds(x * y) * x + ds(y))).abs() < 1e-15);
}

#[differentiate]
fn grouped_and_renamed(x: f64) -> f64 {
    use grad::{relu as r, softplus};
    use std::f64::consts::PI;
    r(x) * PI + softplus(x)
}

#[test]
fn grouped_imports_and_constants() {
    check(
        |[x]| grouped_and_renamed(x),
        |[x]| {
            let (v, g) = grouped_and_renamed_grad(x);
            (v, [g.x])
        },
        &[[0.7], [-1.3], [2.5]],
    );
    assert_eq!(
        grouped_and_renamed_grad(-1.0).1.x,
        grad::sigmoid(-1.0),
        "relu'(x < 0) = 0, softplus' = sigmoid"
    );
}

#[differentiate]
fn renamed_in_f32(x: f32) -> f32 {
    use grad::leaky_relu as lrelu;
    lrelu(x, 0.1) * x
}

#[test]
fn a_renamed_function_in_f32() {
    let (v, g) = renamed_in_f32_grad(-2.0);
    assert_eq!(v, 0.4);
    // d/dx (0.1 x · x) = 0.2 x
    assert_eq!(g.x, -0.4);
    let (v, g) = renamed_in_f32_grad(3.0);
    assert_eq!((v, g.x), (9.0, 6.0));
}
