use grad::prelude::*;

#[differentiate(wrt(a))]
fn g(a: f64, b: f64) -> f64 {
    a * b
}

#[differentiate]
fn f(x: f64) -> f64 {
    g(2.0, x)
}

fn main() {
    let _ = f_grad(1.0);
}
