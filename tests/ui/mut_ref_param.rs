use grad::prelude::*;

#[differentiate]
fn f(x: &mut [f64]) -> f64 {
    x[0] * 2.0
}

fn main() {}
