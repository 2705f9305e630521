use grad::prelude::*;

#[differentiate]
fn scaled(x: f64, name: impl AsRef<str>) -> f64 {
    x * name.as_ref().len() as f64
}

fn main() {}
