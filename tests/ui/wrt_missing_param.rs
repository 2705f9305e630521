use grad::prelude::*;

#[differentiate(wrt(w, z))]
fn f(w: f64, x: f64) -> f64 {
    w * x
}

fn main() {
    let _ = f_grad(1.0, 2.0);
}
