use grad::prelude::*;

#[differentiate]
fn f(x: f64, mut n: Option<u32>) -> f64 {
    let mut s = x;
    while let Some(k) = n {
        s *= x;
        n = if k > 0 { Some(k - 1) } else { None };
    }
    s
}

fn main() {}
