// if/else as a value, an assignment in one branch, and an early return: only
// the taken branch's adjoint code runs.
#[differentiate]
pub fn piecewise(x: f64, mut y: f64) -> f64 {
    if x < 0.0 {
        return -x * y;
    }
    let s = if x < 1.0 { x * x } else { x.sqrt() };
    if y > 2.0 {
        y = y.ln();
    }
    s * y
}
