//! The companions have the function's visibility: a `pub` function in a
//! module gives `pub` companions usable from outside it; a private or
//! `pub(crate)` / `pub(super)` one gives companions usable where the
//! function is.

use grad::check::assert_gradient;

mod model {
    use grad::prelude::*;

    /// Public: its struct and companions are reachable as `model::…`.
    #[differentiate(wrt(w))]
    pub fn public_loss(w: f64, x: f64) -> f64 {
        (w * x).tanh()
    }

    /// Private: usable inside this module only.
    #[differentiate]
    fn private_loss(w: f64) -> f64 {
        w * w * w
    }

    /// Uses the private function's companions from its own module.
    pub fn private_gradient(w: f64) -> (f64, f64) {
        let (value, g): (f64, PrivateLossGrad) = private_loss_grad(w);
        let mut again = PrivateLossGrad::default();
        private_loss_backward(w, &mut again);
        assert_eq!(again, g);
        (value, g.w)
    }

    /// `pub(crate)`: reachable from the rest of the test crate.
    #[differentiate]
    pub(crate) fn crate_loss(w: f64) -> f64 {
        w.exp()
    }

    pub mod inner {
        use grad::prelude::*;

        /// `pub(super)`: reachable from `model`, which re-exports a wrapper.
        #[differentiate]
        pub(super) fn parent_only(w: f64) -> f64 {
            w.sin()
        }
    }

    /// Uses `pub(super)` companions from the parent module.
    pub fn parent_gradient(w: f64) -> f64 {
        let g: inner::ParentOnlyGrad = inner::parent_only_grad(w).1;
        g.w
    }
}

#[test]
fn pub_companions_usable_outside_the_module() {
    let (w, x) = (0.4, 1.5);
    let (value, g): (f64, model::PublicLossGrad) = model::public_loss_grad(w, x);
    assert_eq!(value, model::public_loss(w, x));
    let mut acc = model::PublicLossGrad::default();
    assert_eq!(model::public_loss_backward(w, x, &mut acc), value);
    assert_eq!(acc, g);
    // The field is public too.
    let model::PublicLossGrad { w: gw } = g;
    assert_gradient(|v: &[f64]| model::public_loss(v[0], x), &[w], &[gw]);
}

#[test]
fn private_function_usable_in_its_module() {
    let (value, gw) = model::private_gradient(2.0);
    assert_eq!((value, gw), (8.0, 12.0));
}

#[test]
fn restricted_visibilities() {
    let (value, g) = model::crate_loss_grad(0.0);
    assert_eq!((value, g.w), (1.0, 1.0));
    let _: model::CrateLossGrad = g;
    assert_eq!(model::parent_gradient(0.0), 1.0);
}
