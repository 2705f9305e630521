// Regression: an element of a local array read at the top level of a loop body, as
// the error message itself advises, is still rejected ("the read is nested
// inside an `if` or an inner loop") when the loop is a `while` (its body is
// lowered inside the condition's `if`) or when the read follows a
// `continue`/`break` guard (the rest of the body is lowered into the guard's
// `else`).
use grad::check::assert_gradient;
use grad::prelude::*;

#[differentiate]
fn after_continue(x: &[f64]) -> f64 {
    let mut h = [1.0; 1];
    for t in 0..x.len() {
        if x[t] < 0.0 {
            continue;
        }
        let a = h[0];
        h[0] = a * x[t];
    }
    h[0]
}

#[differentiate]
fn in_while(x: &[f64]) -> f64 {
    let mut h = [1.0; 1];
    let mut t = 0;
    while t < x.len() {
        let a = h[0];
        h[0] = a * x[t];
        t += 1;
    }
    h[0]
}

fn main() {
    let x = [2.0, -1.0, 3.0];
    let (value, g) = after_continue_grad(&x);
    assert_eq!((value, g.x), (6.0, vec![3.0, 0.0, 2.0]));
    assert_gradient(after_continue, &x, &after_continue_grad(&x).1.x);
    let (value, g) = in_while_grad(&x);
    assert_eq!((value, g.x), (-6.0, vec![-3.0, 6.0, -2.0]));
}
