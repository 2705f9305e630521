use grad::prelude::*;

// Second derivatives of several outputs are not a matrix: `hessian` and
// `hvp` need a function with one output.
#[differentiate(hessian)]
fn polar(r: f64, theta: f64) -> [f64; 2] {
    [r * theta.cos(), r * theta.sin()]
}

fn main() {}
