use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y: f64;
    y = x * 2.0;
    y
}

fn main() {
    let _ = f_grad(1.0);
}
