use grad::prelude::*;

fn helper(v: f64) -> f64 {
    v * v
}

#[differentiate]
fn f(x: f64) -> f64 {
    helper(x)
}

fn main() {
    let _ = f_grad(1.0);
}
