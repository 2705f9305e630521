use grad::prelude::*;

// A function returning several values gets `_jacobian` in place of `_grad`
// and `_backward` (DESIGN.md).
#[differentiate]
fn polar(r: f64, theta: f64) -> [f64; 2] {
    [r * theta.cos(), r * theta.sin()]
}

fn main() {
    let _ = polar_jacobian(1.0, 0.5);
    let _ = polar_grad(1.0, 0.5);
}
