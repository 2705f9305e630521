use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> i32 {
    x as i32
}

fn main() {
    let _ = f_grad(1.0);
}
