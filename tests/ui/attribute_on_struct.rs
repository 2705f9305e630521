use grad::prelude::*;

#[differentiate]
struct S;

fn main() {
    let _ = S;
}
