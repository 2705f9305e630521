use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    f64::to_degrees(x)
}

fn main() {
    let _ = f_grad(1.0);
}
