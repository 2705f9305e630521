use grad::prelude::*;

// Two values where the signature says three: rustc's own type error on the
// function, and no second error from the macro.
#[differentiate(forward)]
fn spread(x: f64) -> [f64; 3] {
    if x > 0.0 {
        return [x, 2.0 * x];
    }
    [x, x, x]
}

fn main() {}
