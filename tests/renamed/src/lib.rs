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

/// Loops through the renamed path: a recurrence over a slice (its tape is
/// a `Vec`), a reduction over a range, a `while` with `break`, `chain!` and
/// runtime functions inside loop bodies, a local array, an array parameter
/// and a slice parameter (sized by the runtime's `prepare_grad`), and calls
/// of other functions from inside loops.
pub mod loops {
    use gradient::prelude::*;

    #[differentiate(crate = gradient)]
    pub fn cell(h: f64, w: f64) -> f64 {
        (h * w).tanh()
    }

    #[allow(clippy::needless_range_loop)]
    #[differentiate(crate = gradient, wrt(w, v, b))]
    pub fn model(w: &[f64], v: [[f64; 2]; 2], b: f64, x: &[f64], y: f64) -> f64 {
        let mut h = b;
        for (wi, xi) in w.iter().zip(x.iter()) {
            h = cell(h + xi, *wi) + relu(h);
        }
        let mut z = [0.0; 2];
        for j in 0..2 {
            for k in 0..2 {
                z[j] += v[j][k] * h.powi(k as i32 + 1);
            }
        }
        let mut total = 0.0;
        for j in 0..2 {
            total += chain!(z[j] + b -> sigmoid -> bce(y));
        }
        let mut n = 0;
        let mut s = h;
        while n < 10 {
            s = softplus(s) * 0.5 + gradient::clamp(b, -1.0, 1.0);
            n += 1;
            if s > 5.0 {
                break;
            }
        }
        total + s + mse(w[0], y)
    }
}

/// Without `use gradient::prelude::*`: the attribute, the runtime and
/// `chain!` named only through the renamed crate.
pub mod no_prelude {
    #[gradient::differentiate(crate = gradient)]
    pub fn f(x: f64, y: f32) -> f64 {
        let mut acc = 0.0;
        for k in 1..4 {
            acc += gradient::sigmoid(x * k as f64) * y as f64;
        }
        acc + gradient::chain!(x -> gradient::softplus -> gradient::leaky_relu(0.1))
    }
}

/// A parameter named like the crate path and a local named `grad`: paths
/// resolve in the type namespace, so neither hides `gradient::…`.
#[differentiate(crate = gradient)]
pub fn named_like_the_crate(gradient: f64, x: f64) -> f64 {
    let grad = gradient::sigmoid(gradient * x);
    grad * gradient::relu(x) + gradient
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

    #[test]
    fn loops_arrays_and_calls_through_the_renamed_path() {
        let x = [0.5, -1.0, 2.0];
        for (w, v, b, y) in [
            ([0.3, -0.2, 0.8], [[0.5, -0.4], [0.2, 0.9]], 0.1, 0.3),
            ([-0.7, 0.6, 0.1], [[-0.3, 0.7], [1.1, -0.2]], -0.45, 0.8),
        ] {
            let (value, g) = loops::model_grad(&w, v, b, &x, y);
            assert_eq!(value, loops::model(&w, v, b, &x, y));
            let params: Vec<f64> = w
                .iter()
                .copied()
                .chain(v.iter().flatten().copied())
                .chain([b])
                .collect();
            let analytic: Vec<f64> =
                g.w.iter()
                    .copied()
                    .chain(g.v.iter().flatten().copied())
                    .chain([g.b])
                    .collect();
            assert_gradient(
                |p: &[f64]| loops::model(&p[..3], [[p[3], p[4]], [p[5], p[6]]], p[7], &x, y),
                &params,
                &analytic,
            );
            // `_backward` adds into an existing gradient (the slice field is
            // sized on first use).
            let mut acc = loops::ModelGrad::default();
            loops::model_backward(&w, v, b, &x, y, &mut acc);
            loops::model_backward(&w, v, b, &x, y, &mut acc);
            for (a, g) in acc.w.iter().zip(&g.w) {
                assert!((a - 2.0 * g).abs() < 1e-12, "{a} vs 2 × {g}");
            }
            assert!((acc.b - 2.0 * g.b).abs() < 1e-12);
        }
        // By hand, the gradient of `v`: with w = [0] and x = [0], h =
        // cell(b, 0) + relu(b) = b for b > 0, so z_j = v_j0 b + v_j1 b², and
        // only bce(sigmoid(z_j + b), y) depends on v_jk, with derivative
        // (sigmoid(z_j + b) - y)·b^(k + 1).
        let (v, b, y) = ([[0.5, -0.4], [0.2, 0.9]], 0.1_f64, 0.3);
        let (value, g) = loops::model_grad(&[0.0], v, b, &[0.0], y);
        assert_eq!(value, loops::model(&[0.0], v, b, &[0.0], y));
        let z = [v[0][0] * b + v[0][1] * b * b, v[1][0] * b + v[1][1] * b * b];
        let p = [sigmoid(z[0] + b), sigmoid(z[1] + b)];
        // d bce(sigmoid(u), y)/du = sigmoid(u) - y.
        let expected_v = [
            [(p[0] - y) * b, (p[0] - y) * b * b],
            [(p[1] - y) * b, (p[1] - y) * b * b],
        ];
        for (row, expected_row) in g.v.iter().zip(&expected_v) {
            for (a, e) in row.iter().zip(expected_row) {
                assert!((a - e).abs() < 1e-12, "{:?} vs {expected_v:?}", g.v);
            }
        }
    }

    #[test]
    fn no_prelude_in_scope() {
        for (x, y) in [(0.4, 1.5_f32), (-1.2, -0.5)] {
            let (value, g) = no_prelude::f_grad(x, y);
            assert_eq!(value, no_prelude::f(x, y));
            let dx = (1..4)
                .map(|k| {
                    let s = sigmoid(x * k as f64);
                    s * (1.0 - s) * k as f64 * y as f64
                })
                .sum::<f64>();
            // leaky_relu(softplus(x), 0.1)' = sigmoid(x): softplus > 0.
            let expected = dx + sigmoid(x);
            assert!((g.x - expected).abs() < 1e-12, "{} vs {expected}", g.x);
            let dy: f64 = (1..4).map(|k| sigmoid(x * k as f64)).sum();
            assert!((g.y as f64 - dy).abs() < 1e-5, "{} vs {dy}", g.y);
        }
    }

    #[test]
    fn parameter_named_like_the_crate() {
        for (c, x) in [(0.5, 1.5), (-1.2, 0.7)] {
            let (value, g) = named_like_the_crate_grad(c, x);
            assert_eq!(value, named_like_the_crate(c, x));
            // f = sigmoid(c x)·x + c for x > 0.
            let s = sigmoid(c * x);
            let expected = [s * (1.0 - s) * x * x + 1.0, s * (1.0 - s) * c * x + s];
            assert!((g.gradient - expected[0]).abs() < 1e-12);
            assert!((g.x - expected[1]).abs() < 1e-12);
            assert_gradient(
                |p: &[f64]| named_like_the_crate(p[0], p[1]),
                &[c, x],
                &[g.gradient, g.x],
            );
        }
    }
}
