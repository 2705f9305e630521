// Regression: a `while`/`loop` whose effects the result does not depend on (here
// an integer-only loop) loses its condition to dead-code elimination but
// keeps the loop: "cannot find value `keep`" / "cannot find value `__t1`".
use grad::prelude::*;

#[differentiate]
fn dead_while(x: f64, n: usize) -> f64 {
    let mut k = 0;
    while k < n {
        k += 1;
    }
    x * x
}

#[differentiate]
fn dead_loop(x: f64, n: usize) -> f64 {
    let mut k = 0;
    loop {
        if k >= n {
            break;
        }
        k += 1;
    }
    x * x
}

#[differentiate]
fn nested_dead_loop(x: &[f64], n: usize) -> f64 {
    let mut a = 0.0;
    for xi in x.iter() {
        a += xi * xi;
        let mut k = 0;
        while k < n {
            k += 1;
        }
    }
    a
}

fn main() {
    assert_eq!(dead_while_grad(3.0, 2), (9.0, DeadWhileGrad { x: 6.0 }));
    assert_eq!(dead_loop_grad(3.0, 2), (9.0, DeadLoopGrad { x: 6.0 }));
    assert_eq!(nested_dead_loop_grad(&[1.0, 2.0], 2).1.x, vec![2.0, 4.0]);
}
