use grad::prelude::*;

#[differentiate(hvp, forward, hvp)]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
