use grad::prelude::*;

struct Model {
    w: f64,
}

impl Model {
    #[differentiate]
    fn f(&self, x: f64) -> f64 {
        self.w * x
    }
}

fn main() {
    let m = Model { w: 2.0 };
    let _ = m.f(1.0);
}
