//! Helpers shared by the integration tests.

use grad::check::assert_gradient;

/// Checks a generated gradient at every point: the companion's value is the
/// function's, and its gradient matches central finite differences.
#[track_caller]
pub fn check<const N: usize>(
    primal: impl Fn([f64; N]) -> f64,
    generated: impl Fn([f64; N]) -> (f64, [f64; N]),
    points: &[[f64; N]],
) {
    for &p in points {
        let (value, grad) = generated(p);
        assert_eq!(value, primal(p), "value at {p:?}");
        assert_gradient(|v: &[f64]| primal(v.try_into().unwrap()), &p, &grad);
    }
}
