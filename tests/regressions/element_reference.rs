// Regression: in `for yi in y.iter()` the element is a `&f64` in the user's
// function but a `f64` in the generated companion (`let yi = y[i];`), so
// passing it to an ordinary function taking `&f64` fails to compile in the
// companion (E0308 "expected `&f64`, found `f64`", with rustc suggesting
// `for &yi`, which would break the user's own function).
use grad::prelude::*;

fn is_positive(v: &f64) -> bool {
    *v > 0.0
}

#[differentiate(wrt(w))]
fn f(w: f64, y: &[f64]) -> f64 {
    let mut s = 0.0;
    for yi in y.iter() {
        if is_positive(yi) {
            s += w * yi;
        }
    }
    s
}

fn main() {
    assert_eq!(f_grad(2.0, &[1.0, -1.0, 3.0]), (8.0, FGrad { w: 4.0 }));
}
