use grad::prelude::*;

#[differentiate]
fn f(x: f64, y: f64) -> f64 {
    let a = unsafe { x.max(y) };
    let double = |v: f64| 2.0 * v;
    let b = double(x);
    let c = x.to_degrees();
    let d = y % 3.0;
    a + b + c + d
}

fn main() {
    let _ = f_grad(1.0, 2.0);
}
