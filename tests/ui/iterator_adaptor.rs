use grad::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for xi in x.iter().map(|v| v * 2.0) {
        s += xi;
    }
    s
}

fn main() {}
