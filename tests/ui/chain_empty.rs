use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y = chain!();
    x * y
}

fn main() {
    let _ = f_grad(1.0);
}
