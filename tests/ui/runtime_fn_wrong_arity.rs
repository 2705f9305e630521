use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    sigmoid(x, 1.0)
}

fn main() {
    let _ = f_grad(1.0);
}
