use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut s = 0.0;
    'outer: for i in 0..3 {
        for j in 0..3 {
            if i + j > 3 {
                break 'outer;
            }
            s += x;
        }
    }
    s
}

fn main() {
    let _ = f_grad(1.0);
}
