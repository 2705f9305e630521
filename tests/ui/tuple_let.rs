use grad::prelude::*;

#[differentiate]
fn f(x: f64, y: f64) -> f64 {
    let (a, b) = (x, y);
    a * b
}

fn main() {
    let _ = f_grad(1.0, 2.0);
}
