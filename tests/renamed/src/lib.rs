//! `grad` renamed to `gradient` in `Cargo.toml`: `#[differentiate]` takes
//! `crate = gradient` (a path) or `crate = "gradient"` (a string, as in
//! serde) and names every runtime item through it.

use gradient::prelude::*;

/// The seed notebook's neuron, `crate` given as a path.
#[gradient::differentiate(crate = gradient, wrt(w, b))]
pub fn loss(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let z = w * x + b;
    let p = sigmoid(z);
    bce(p, y)
}

/// The same with `crate` as a string, the options in the other order, and
/// the runtime named through the renamed path.
#[differentiate(wrt(w, b), crate = "gradient")]
pub fn loss_string(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let p = gradient::sigmoid(w * x + b);
    gradient::bce(p, y)
}

/// A `chain!` pipeline, kinks (relu, clamp, max) and an early return, so
/// that the derivative helpers are named through the renamed path too.
#[differentiate(crate = ::gradient)]
pub fn helpers(x: f64, y: f64) -> f64 {
    if x < -10.0 {
        return 0.0;
    }
    let a = relu(x) + gradient::clamp(y, -1.0, 1.0) + x.max(y) + softplus(x * y);
    a + gradient::chain!(x * y -> sigmoid -> mse(0.5)) + x.log2()
}

/// Calls through another function (the positional-gradient trait lives in
/// the runtime too), from a submodule.
pub mod nested {
    use gradient::prelude::*;

    #[differentiate(crate = gradient)]
    pub fn inner(a: f64, b: f64) -> f64 {
        a * b.exp()
    }

    #[differentiate(crate = gradient)]
    pub fn outer(x: f64) -> f64 {
        inner(x, x * 2.0) + super::loss(x, 0.5, 2.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradient::check::assert_gradient;

    #[test]
    fn path_form_gives_the_notebook_numbers() {
        let (value, g) = loss_grad(1.0, 0.0, 6.0, 0.0);
        assert_eq!(
            format!("{value:.4} {:.4} {:.4}", g.w, g.b),
            "6.0025 5.9852 0.9975"
        );
        assert_gradient(|v: &[f64]| loss(v[0], v[1], -2.0, 1.0), &[0.3, 0.1], &{
            let g = loss_grad(0.3, 0.1, -2.0, 1.0).1;
            [g.w, g.b]
        });
    }

    #[test]
    fn string_form_matches_the_path_form() {
        let (value, g) = loss_string_grad(1.0, 0.0, 6.0, 0.0);
        assert_eq!(
            format!("{value:.4} {:.4} {:.4}", g.w, g.b),
            "6.0025 5.9852 0.9975"
        );
        let (v2, g2) = loss_grad(1.0, 0.0, 6.0, 0.0);
        assert_eq!((value, g.w, g.b), (v2, g2.w, g2.b));
    }

    #[test]
    fn derivative_helpers_through_the_renamed_path() {
        for (x, y) in [(0.5, 0.3), (0.7, 2.0), (2.0, -3.0)] {
            let (value, g) = helpers_grad(x, y);
            assert_eq!(value, helpers(x, y));
            assert_gradient(|v: &[f64]| helpers(v[0], v[1]), &[x, y], &[g.x, g.y]);
        }
        // At (0.5, 1): y sits on clamp's upper end (passes 1) and wins the
        // max (1); softplus(xy) and mse(sigmoid(xy), 0.5) add the rest.
        let (x, y) = (0.5_f64, 1.0_f64);
        let s = sigmoid(x * y);
        let d_mse = 2.0 * (s - 0.5) * s * (1.0 - s);
        let (_, g) = helpers_grad(x, y);
        let expected_x = 1.0 + y * s + d_mse * y + 1.0 / (x * std::f64::consts::LN_2);
        let expected_y = 1.0 + 1.0 + x * s + d_mse * x;
        assert!((g.x - expected_x).abs() < 1e-12, "{} vs {expected_x}", g.x);
        assert!((g.y - expected_y).abs() < 1e-12, "{} vs {expected_y}", g.y);
    }

    #[test]
    fn calls_from_a_submodule() {
        for x in [0.3, -0.5, 1.2] {
            let (value, g) = nested::outer_grad(x);
            assert_eq!(value, nested::outer(x));
            assert_gradient(|v: &[f64]| nested::outer(v[0]), &[x], &[g.x]);
        }
    }
}
