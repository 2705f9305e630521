use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let square = |v: f64| v * v;
    square(x)
}

fn main() {
    let _ = f_grad(1.0);
}
