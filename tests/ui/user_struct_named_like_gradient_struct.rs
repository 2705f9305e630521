// The gradient struct of `fn f` is `FGrad` by contract (DESIGN.md), so a
// type of the user's named `FGrad` in the same module collides with it.
// rustc reports the duplicate name at the generated struct (spanned at the
// function's name) and at the user's struct. To keep a type of that name,
// define it in another module and import it under another name.
use grad::prelude::*;

pub struct FGrad {
    pub learning_rate: f64,
}

#[differentiate]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {
    let _ = f_grad(1.0);
    let _ = FGrad { learning_rate: 0.1 };
}
