// A function of the user's named like a runtime function (here `softplus`,
// which would shadow the prelude's glob import): the derivative rule is
// grad's, so rather than differentiate the wrong function the expansion
// names the float type, which only grad's generic function accepts.
use grad::prelude::*;

fn softplus(x: f64) -> f64 {
    x * 3.0
}

#[differentiate]
fn f(x: f64) -> f64 {
    softplus(x)
}

fn main() {
    let _ = f_grad(1.0);
}
