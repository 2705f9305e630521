use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    fn square(v: f64) -> f64 {
        v * v
    }
    x * 2.0
}

fn main() {
    let _ = f_grad(1.0);
}
