use grad::prelude::*;

#[differentiate]
fn f<T: Float>(x: T) -> T {
    x * x
}

fn main() {
    let _ = f_grad(1.0);
}
