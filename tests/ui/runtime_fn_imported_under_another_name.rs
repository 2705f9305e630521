// A runtime function imported under another name at module level: an
// attribute macro sees only the function, not the module's `use` items, so
// `s(z)` is not known to be `sigmoid` and is taken for a call of a
// `#[differentiate]` function `s`, whose companion `s_grad` rustc does not
// find. Not supported for now: write `sigmoid(z)` (or `grad::sigmoid(z)`).
// This case shows the current error so that an improvement is visible.
use grad::prelude::sigmoid as s;
use grad::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    s(x * 2.0)
}

fn main() {
    let _ = f_grad(1.0);
}
