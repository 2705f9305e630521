use grad::prelude::*;

// Second derivatives go through a call only if the callee has `hvp` (or
// `hessian`), which gives it the hidden companion the caller needs.
#[differentiate]
fn inner(a: f64) -> f64 {
    a.exp() * a
}

#[differentiate(hessian)]
fn outer(x: f64) -> f64 {
    inner(x * 2.0) + x
}

fn main() {}
