use grad::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for xi in x.iter() {
        if *xi < 0.0 {
            return s;
        }
        s += xi;
    }
    s
}

fn main() {
    let _ = f_grad(&[1.0]);
}
