use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    println!("x = {x}");
    x * x
}

fn main() {
    let _ = f_grad(1.0);
}
