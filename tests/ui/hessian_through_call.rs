use grad::prelude::*;

#[differentiate(hvp)]
fn inner(a: f64) -> f64 {
    a.exp() * a
}

// Second derivatives do not go through calls of other `#[differentiate]`
// functions yet; forward mode and the gradient do.
#[differentiate(hessian)]
fn outer(x: f64) -> f64 {
    inner(x * 2.0) + x
}

fn main() {}
