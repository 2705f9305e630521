use grad::prelude::*;

const N: usize = 3;

// Forward mode yields each output, so it needs their number as written.
#[differentiate(forward)]
fn spread(x: f64) -> [f64; N] {
    [x, 2.0 * x, 3.0 * x]
}

fn main() {}
