//! Runs the numbers of every expansion snapshot in `tests/expand/` (the
//! unit test `expansion_snapshots` in grad-macro pins their text): each
//! generated gradient equals central finite differences of the function.

use grad::check::assert_gradient;

mod neuron {
    use grad::prelude::*;
    include!("expand/neuron.rs");
}

mod branches {
    use grad::prelude::*;
    include!("expand/branches.rs");
}

mod call {
    use grad::prelude::*;
    include!("expand/call.rs");
}

mod single {
    use grad::prelude::*;
    include!("expand/f32.rs");
}

mod reduction {
    use grad::prelude::*;
    include!("expand/reduction.rs");
}

mod jacobian {
    use grad::prelude::*;
    include!("expand/jacobian.rs");
}

/// The helix: its Jacobian (two inputs, three outputs: forward sweeps) is
/// the closed form, and the JVP is the Jacobian times the tangents.
#[test]
fn the_helix_jacobian_is_the_closed_form() {
    let (t, pitch) = (0.8, 1.5);
    let (out, j) = jacobian::helix_jacobian(t, pitch);
    assert_eq!(out, jacobian::helix(t, pitch));
    let expected = [[-t.sin(), 0.0], [t.cos(), 0.0], [pitch, t]];
    for (row, want) in j.iter().zip(expected) {
        assert_eq!([row.t, row.pitch], want);
    }
    let (_, dots) = jacobian::helix_jvp(t, pitch, 2.0, -1.0);
    for (row, dot) in j.iter().zip(dots) {
        approx::assert_relative_eq!(dot, row.t * 2.0 - row.pitch, max_relative = 1e-15);
    }
}

/// The fused one-pass reduction: value exactly the function's, gradient by
/// finite differences in every weight and the bias, and `_backward` adds.
#[test]
fn the_fused_reduction_matches_finite_differences() {
    let x: Vec<f64> = (0..40)
        .map(|i| ((i * 37 % 11) as f64 - 5.0) / 4.0)
        .collect();
    let y: Vec<f64> = (0..10).map(|i| f64::from(i % 3 == 0)).collect();
    let w = [0.3, -0.2, 0.5, 0.1];
    let b = -0.1;
    let (value, g) = reduction::logistic_grad(w, b, &x, &y);
    assert_eq!(value, reduction::logistic(w, b, &x, &y));
    let at = [w[0], w[1], w[2], w[3], b];
    let analytic = [g.w[0], g.w[1], g.w[2], g.w[3], g.b];
    assert_gradient(
        |p| reduction::logistic([p[0], p[1], p[2], p[3]], p[4], &x, &y),
        &at,
        &analytic,
    );
    let mut twice = reduction::LogisticGrad::default();
    reduction::logistic_backward(w, b, &x, &y, &mut twice);
    reduction::logistic_backward(w, b, &x, &y, &mut twice);
    // Element by element into the caller's gradient: equal up to rounding.
    let sum = g + g;
    for (a, e) in twice
        .w
        .iter()
        .chain([&twice.b])
        .zip(sum.w.iter().chain([&sum.b]))
    {
        assert!((a - e).abs() <= 1e-15 * e.abs(), "{a} vs {e}");
    }
}

#[test]
fn neuron_reproduces_the_notebook() {
    let (loss, g) = neuron::loss_grad(1.0, 0.0, 6.0, 0.0);
    assert_eq!(
        format!("{loss:.4} {:.4} {:.4}", g.w, g.b),
        "6.0025 5.9852 0.9975"
    );
    for (w, b, x, y) in [
        (1.0, 0.0, 6.0, 0.0),
        (-0.3, 0.2, 1.5, 1.0),
        (0.7, -1.0, -2.0, 0.3),
    ] {
        let (_, g) = neuron::loss_grad(w, b, x, y);
        assert_gradient(|p| neuron::loss(p[0], p[1], x, y), &[w, b], &[g.w, g.b]);
    }
}

#[test]
fn branches_match_finite_differences_on_every_path() {
    // x < 0 returns early; 0 <= x < 1 and x >= 1 take the two sides of the
    // value `if`; y > 2 takes the assignment.
    for (x, y) in [(-1.5, 0.7), (0.5, 1.0), (0.5, 3.0), (2.0, 1.0), (4.0, 5.0)] {
        let (value, g) = branches::piecewise_grad(x, y);
        assert_eq!(value, branches::piecewise(x, y));
        assert_gradient(|p| branches::piecewise(p[0], p[1]), &[x, y], &[g.x, g.y]);
    }
}

#[test]
fn calls_are_differentiated_through() {
    let (loss, g) = call::neuron_grad(1.0, 0.0, 6.0, 0.0);
    assert_eq!(
        format!("{loss:.4} {:.4} {:.4}", g.w, g.b),
        "6.0025 5.9852 0.9975"
    );
    for (w, b, x, t) in [(0.4, -0.1, 2.0, 1.0), (-1.0, 0.5, 0.3, 0.0)] {
        let (_, g) = call::neuron_grad(w, b, x, t);
        assert_gradient(|p| call::neuron(p[0], p[1], x, t), &[w, b], &[g.w, g.b]);
    }
}

#[test]
fn f32_gradients_have_f32_fields() {
    for (a, b) in [(0.5_f32, -1.5_f32), (2.0, 0.25)] {
        let (value, g) = single::softplus_norm_grad(a, b);
        let (ga, gb): (f32, f32) = (g.a, g.b);
        assert_eq!(value, single::softplus_norm(a, b));
        assert_gradient(|p| single::softplus_norm(p[0], p[1]), &[a, b], &[ga, gb]);
    }
}
