use grad::prelude::*;

fn main() {
    let x = 1.0_f64;
    let _ = chain!(x -> 2.0 * x);
}
