use grad::prelude::*;

#[differentiate(wrt(x))]
fn f(x: f64, k: Option<i32>) -> f64 {
    match k {
        Some(n) => x * n as f64,
        None => x,
    }
}

fn main() {
    let _ = f_grad(1.0, Some(2));
}
