use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y = if x > 0.0 { return 1.0 } else { 2.0 };
    x * y
}

fn main() {
    let _ = f_grad(1.0);
}
