// Regression: a loop-carried variable of a type the macro does not know (here a
// user enum) is treated as differentiated, so matching on it after the loop
// is rejected ("`matches!` on a differentiated value is not supported") and
// calling its methods is too ("no derivative rule for the method").
use grad::check::assert_gradient;
use grad::prelude::*;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    A,
    B,
}

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut mode = Mode::A;
    let mut s = 0.0;
    for xi in x.iter() {
        if *xi < 0.0 {
            mode = Mode::B;
        }
        s += xi;
    }
    match mode {
        Mode::A => s,
        Mode::B => s * s,
    }
}

fn main() {
    for x in [[1.0, 2.0], [1.0, -2.5]] {
        let (value, g) = f_grad(&x);
        assert_eq!(value, f(&x));
        assert_gradient(f, &x, &g.x);
    }
}
