use grad::prelude::*;

#[differentiate(wrt(w, b))]
fn loss(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let z = w * x + b;
    let p = sigmoid(z);
    bce(p, y)
}

#[differentiate]
fn sq(x: f64) -> f64 {
    x.powi(2)
}

#[differentiate]
fn nested(x: f64) -> f64 {
    (x * x).sin()
}

fn main() {
    let (v, g) = loss_grad(1.0, 0.0, 6.0, 0.0);
    println!("{v:.4} {:.4} {:.4}", g.w, g.b);
    println!("{:?}", sq_grad(3.0));
    println!("{:?}", nested_grad(3.0));
}
