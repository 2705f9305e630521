use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut y = x;
    loop {
        if y > 10.0 {
            break;
        }
        y = y * 2.0;
    }
    y
}

fn main() {
    let _ = f_grad(1.0);
}
