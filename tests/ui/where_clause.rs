use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64
where
    f64: Copy,
{
    x * x
}

fn main() {
    let _ = f_grad(1.0);
}
