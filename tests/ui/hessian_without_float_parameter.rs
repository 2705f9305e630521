use grad::prelude::*;

#[differentiate(hessian)]
fn count(n: usize) -> f64 {
    n as f64 * 2.0
}

fn main() {}
