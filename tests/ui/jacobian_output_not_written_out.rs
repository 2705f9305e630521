use grad::prelude::*;

fn make(x: f64) -> [f64; 2] {
    [x, 2.0 * x]
}

// The outputs must be written as an array (or tuple) where they are
// returned, so that each can be weighted.
#[differentiate]
fn outputs(x: f64) -> [f64; 2] {
    if x > 0.0 {
        return make(x);
    }
    [x, x * x]
}

fn main() {}
