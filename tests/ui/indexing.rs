use grad::prelude::*;

#[differentiate]
fn f(x: f64, ys: [f64; 2]) -> f64 {
    x * ys[0]
}

fn main() {
    let _ = f_grad(1.0, [2.0, 3.0]);
}
