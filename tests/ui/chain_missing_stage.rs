use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    chain!(x -> sigmoid ->)
}

fn main() {
    let _ = f_grad(1.0);
}
