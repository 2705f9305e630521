//! Loops in a `#[differentiate]` body: `for` over ranges (`0..n`, `a..=b`,
//! `.rev()`, `.step_by(k)`, `.step_by(k).rev()`) and over slices and arrays
//! (`x.iter()`, `&x`, `x`, `&xi` patterns, `.zip`, `.enumerate`, `.rev`),
//! `while`, `loop`, `break`/`continue` (also inside `if`), nested loops,
//! loop-carried state of every shape, `match` and `matches!`, and trip
//! counts of 0, 1 and 10 000.
//!
//! Every gradient is compared with central finite differences of the primal
//! (which `#[differentiate]` emits unchanged) at several points, and with
//! exact values where a closed form is at hand. Gradients of slice
//! parameters are `Vec<f64>`, so the checks flatten every differentiated
//! parameter into one vector `p` and split it again inside the closure.

use grad::check::assert_gradient;
use grad::prelude::*;

/// Concatenates the parts of a flattened parameter vector.
fn cat(parts: &[&[f64]]) -> Vec<f64> {
    parts.concat()
}

/// Element-wise equality up to rounding, for exact gradients whose
/// generated formula may round differently from the closed form.
#[track_caller]
fn assert_close(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            approx::relative_eq!(*a, *e, max_relative = 1e-12, epsilon = 1e-14),
            "{actual:?} vs {expected:?}"
        );
    }
}

// ------------------------------------------------------------------ ranges

/// `for i in 0..n` with the bound from an integer parameter: Σ xⁱ.
#[differentiate]
fn power_sum(x: f64, n: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        s += x.powi(i as i32);
    }
    s
}

#[test]
fn range_with_a_parameter_bound() {
    for n in [0, 1, 2, 7] {
        for x in [0.5, -1.3, 2.0] {
            let (value, g) = power_sum_grad(x, n);
            assert_eq!(value, power_sum(x, n));
            // d/dx Σ_{i<n} xⁱ = Σ_{0<i<n} i xⁱ⁻¹.
            let exact: f64 = (1..n).map(|i| i as f64 * x.powi(i as i32 - 1)).sum();
            approx::assert_relative_eq!(g.x, exact, max_relative = 1e-12);
            assert_gradient(|p| power_sum(p[0], n), &[x], &[g.x]);
        }
    }
    // n = 0: the loop never runs, the sum is the constant 0.
    assert_eq!(power_sum_grad(3.0, 0), (0.0, PowerSumGrad { x: 0.0 }));
}

/// `a..=b` with both ends from parameters, also empty (`a > b`), and
/// negative `i32` bounds.
#[differentiate(wrt(x))]
fn inclusive_range(x: f64, a: usize, b: usize) -> f64 {
    let mut s = x;
    for k in a..=b {
        s += (k as f64 * x).sin();
    }
    let mut t = 0.0;
    for e in -2..=2 {
        t += x.powi(e);
    }
    s * t
}

#[test]
fn inclusive_ranges() {
    for (a, b) in [(0, 0), (1, 4), (3, 2), (5, 5)] {
        for x in [0.4, 1.7, -0.9] {
            let (value, g) = inclusive_range_grad(x, a, b);
            assert_eq!(value, inclusive_range(x, a, b));
            assert_gradient(|p| inclusive_range(p[0], a, b), &[x], &[g.x]);
        }
    }
    // Empty first range: s = x, t = x⁻² + x⁻¹ + 1 + x + x², d(s t)/dx known.
    let x: f64 = 1.5;
    let t = x.powi(-2) + x.recip() + 1.0 + x + x * x;
    let dt = -2.0 * x.powi(-3) - x.powi(-2) + 1.0 + 2.0 * x;
    let (_, g) = inclusive_range_grad(x, 3, 2);
    approx::assert_relative_eq!(g.x, t + x * dt, max_relative = 1e-12);
}

/// Horner's rule over `(0..c.len()).rev()`: p(x) = Σ cᵢ xⁱ, differentiated
/// with respect to the point and every coefficient.
#[differentiate]
fn horner(x: f64, c: &[f64]) -> f64 {
    let mut acc = 0.0;
    for i in (0..c.len()).rev() {
        acc = acc * x + c[i];
    }
    acc
}

#[test]
fn reversed_range_horner() {
    let c = [1.0, -2.0, 0.5, 3.0];
    for x in [0.0, 0.7, -1.2, 2.5] {
        let (value, g) = horner_grad(x, &c);
        let p = |x: f64| {
            c.iter()
                .enumerate()
                .map(|(i, ci)| ci * x.powi(i as i32))
                .sum::<f64>()
        };
        approx::assert_relative_eq!(value, p(x), max_relative = 1e-12);
        // ∂p/∂x = Σ i cᵢ xⁱ⁻¹, ∂p/∂cᵢ = xⁱ exactly.
        let dx: f64 = (1..4).map(|i| i as f64 * c[i] * x.powi(i as i32 - 1)).sum();
        approx::assert_relative_eq!(g.x, dx, max_relative = 1e-12, epsilon = 1e-12);
        let powers: Vec<f64> = (0..4).map(|i| x.powi(i)).collect();
        assert_close(&g.c, &powers);
        assert_gradient(
            |p| horner(p[0], &p[1..]),
            &cat(&[&[x], &c]),
            &cat(&[&[g.x], &g.c]),
        );
    }
    // No coefficients: the polynomial is 0 and the gradient an empty Vec.
    let (value, g) = horner_grad(1.5, &[]);
    assert_eq!((value, g.x, g.c.len()), (0.0, 0.0, 0));
}

/// `(0..n).step_by(k)` with the bound from `x.len()` and the step from a
/// parameter: Σ over every k-th element of xᵢ².
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn strided_squares(x: &[f64], k: usize) -> f64 {
    let mut s = 0.0;
    for i in (0..x.len()).step_by(k) {
        s += x[i] * x[i];
    }
    s
}

#[test]
fn step_by() {
    let x = [0.5, -1.0, 2.0, 0.25, 3.0, -0.75, 1.5];
    for k in [1, 2, 3, 10] {
        let (value, g) = strided_squares_grad(&x, k);
        assert_eq!(value, strided_squares(&x, k));
        let exact: Vec<f64> = (0..x.len())
            .map(|i| if i % k == 0 { 2.0 * x[i] } else { 0.0 })
            .collect();
        assert_eq!(g.x, exact);
        assert_gradient(|p| strided_squares(p, k), &x, &g.x);
    }
}

/// `(0..n).step_by(k).rev()`: an order-dependent recurrence, so running
/// the steps in the wrong order would give another value and gradient.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn strided_backwards(x: &[f64], k: usize) -> f64 {
    let mut acc = 0.3;
    for i in (0..x.len()).step_by(k).rev() {
        acc = (acc * 1.5 + x[i]).sin();
    }
    acc
}

/// The same recurrence written by hand with explicit indices.
fn strided_backwards_by_hand(x: &[f64], k: usize) -> f64 {
    let mut idx: Vec<usize> = (0..x.len()).filter(|i| i % k == 0).collect();
    idx.reverse();
    idx.iter().fold(0.3, |acc, &i| (acc * 1.5 + x[i]).sin())
}

#[test]
fn step_by_rev() {
    let x = [0.5, -1.0, 2.0, 0.25, 3.0, -0.75, 1.5, 0.1];
    for k in [1, 2, 3, 5] {
        let (value, g) = strided_backwards_grad(&x, k);
        assert_eq!(value, strided_backwards_by_hand(&x, k));
        assert_gradient(|p| strided_backwards(p, k), &x, &g.x);
        // Elements the stride skips get exactly zero.
        for (i, gi) in g.x.iter().enumerate() {
            if i % k != 0 {
                assert_eq!(*gi, 0.0, "k = {k}, i = {i}");
            }
        }
    }
}

/// Loop bound from `x.len()` and a range starting above zero.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn differences(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 1..x.len() {
        let d = x[i] - x[i - 1];
        s += d * d;
    }
    s
}

#[test]
fn range_from_one_to_len() {
    let x = [0.5, -1.0, 2.0, 0.25];
    let (value, g) = differences_grad(&x);
    assert_eq!(value, differences(&x));
    // ∂/∂xᵢ = 2(xᵢ − xᵢ₋₁) − 2(xᵢ₊₁ − xᵢ).
    assert_eq!(g.x, vec![3.0, -9.0, 9.5, -3.5]);
    assert_gradient(differences, &x, &g.x);
    // One element: 1..1 is empty.
    assert_eq!(differences_grad(&[2.0]).1.x, vec![0.0]);
}

// ---------------------------------------------------- slices and arrays

/// `x.iter()` (the element is a `&f64`), with the method and operator forms.
#[differentiate]
fn iter_sum(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for xi in x.iter() {
        s += xi * xi + xi.sin();
    }
    s
}

/// `&x` over a slice, and `*xi` dereferenced.
#[differentiate]
fn ref_loop(x: &[f64], w: f64) -> f64 {
    let mut s = 0.0;
    for xi in x {
        s += (*xi * w).tanh();
    }
    s
}

/// `for &xi in x.iter()`: the element bound by value.
#[differentiate]
fn by_value_pattern(x: &[f64]) -> f64 {
    let mut s = 1.0;
    for &xi in x.iter() {
        s *= xi.exp() + 1.0;
    }
    s.ln()
}

/// An array parameter iterated by value (`for xi in x`) and by reference.
#[differentiate]
fn array_by_value(x: [f64; 4], w: &[f64; 4]) -> f64 {
    let mut s = 0.0;
    for xi in x {
        s += xi.powi(3);
    }
    for wi in w {
        s += wi * s;
    }
    let mut t = 0.0;
    for wi in &x {
        t += wi.cos();
    }
    s + t
}

#[test]
fn iterating_slices_and_arrays() {
    for x in [[0.5, -1.0, 2.0, 0.25], [1.5, 0.3, -0.7, 2.2]] {
        let (value, g) = iter_sum_grad(&x);
        assert_eq!(value, iter_sum(&x));
        let exact: Vec<f64> = x.iter().map(|v| 2.0 * v + v.cos()).collect();
        assert_close(&g.x, &exact);
        assert_gradient(iter_sum, &x, &g.x);

        let (value, g) = ref_loop_grad(&x, 0.8);
        assert_eq!(value, ref_loop(&x, 0.8));
        assert_gradient(
            |p| ref_loop(&p[..4], p[4]),
            &cat(&[&x, &[0.8]]),
            &cat(&[&g.x, &[g.w]]),
        );

        let (value, g) = by_value_pattern_grad(&x);
        assert_eq!(value, by_value_pattern(&x));
        // d/dxᵢ Σ ln(e^xᵢ + 1) = sigmoid(xᵢ).
        for (gi, xi) in g.x.iter().zip(&x) {
            approx::assert_relative_eq!(*gi, sigmoid(*xi), max_relative = 1e-12);
        }
        assert_gradient(by_value_pattern, &x, &g.x);

        let w = [0.1, -0.2, 0.3, 0.05];
        let (value, g) = array_by_value_grad(x, &w);
        assert_eq!(value, array_by_value(x, &w));
        let gx: [f64; 4] = g.x;
        let gw: [f64; 4] = g.w;
        assert_gradient(
            |p| array_by_value(p[..4].try_into().unwrap(), p[4..].try_into().unwrap()),
            &cat(&[&x, &w]),
            &cat(&[&gx, &gw]),
        );
    }
}

/// `x.iter().zip(y.iter())` and `x.iter().zip(y)`, slices of different
/// lengths (zip stops at the shorter).
#[differentiate]
fn zipped(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (a, b) in x.iter().zip(y.iter()) {
        s += a * b;
    }
    let mut t = 0.0;
    for (a, &b) in x.iter().zip(y) {
        t += (a - b).powi(2);
    }
    s * t
}

#[test]
fn zip() {
    let x = [0.5, -1.0, 2.0, 0.25];
    let y = [1.5, 0.3, -0.7, 2.2];
    let (value, g) = zipped_grad(&x, &y);
    assert_eq!(value, zipped(&x, &y));
    assert_gradient(
        |p| zipped(&p[..4], &p[4..]),
        &cat(&[&x, &y]),
        &cat(&[&g.x, &g.y]),
    );
    // y shorter: x[3] takes no part, its gradient is exactly 0.
    let (value, g) = zipped_grad(&x, &y[..3]);
    assert_eq!(value, zipped(&x, &y[..3]));
    assert_eq!((g.x.len(), g.y.len(), g.x[3]), (4, 3, 0.0));
    assert_gradient(
        |p| zipped(&p[..4], &p[4..]),
        &cat(&[&x, &y[..3]]),
        &cat(&[&g.x, &g.y]),
    );
}

/// `.enumerate()`: the index weights each element.
#[differentiate]
fn enumerated(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, xi) in x.iter().enumerate() {
        s += (i as f64 + 1.0) * xi.sin();
    }
    s
}

/// `for (i, (a, b)) in x.iter().zip(y.iter()).enumerate()`.
#[differentiate(wrt(x))]
fn enumerated_zip(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, (a, b)) in x.iter().zip(y.iter()).enumerate() {
        s += (i as f64) * a * b + a.exp();
    }
    s
}

#[test]
fn enumerate() {
    let x = [0.5, -1.0, 2.0, 0.25];
    let y = [1.5, 0.3, -0.7, 2.2];
    let (value, g) = enumerated_grad(&x);
    assert_eq!(value, enumerated(&x));
    let exact: Vec<f64> = (0..4).map(|i| (i as f64 + 1.0) * x[i].cos()).collect();
    assert_close(&g.x, &exact);
    assert_gradient(enumerated, &x, &g.x);

    let (value, g) = enumerated_zip_grad(&x, &y);
    assert_eq!(value, enumerated_zip(&x, &y));
    let exact: Vec<f64> = (0..4).map(|i| i as f64 * y[i] + x[i].exp()).collect();
    assert_close(&g.x, &exact);
    assert_gradient(|p| enumerated_zip(p, &y), &x, &g.x);
}

/// `.rev()` on `x.iter()`, on `.enumerate()` and on a zip: each drives an
/// order-dependent recurrence.
#[differentiate]
fn reversed_iters(x: &[f64], y: &[f64]) -> f64 {
    let mut a = 0.1;
    for xi in x.iter().rev() {
        a = (a * 0.9 + xi).tanh();
    }
    let mut b = 0.2;
    for (i, xi) in x.iter().enumerate().rev() {
        b = (b + (i as f64) * xi).sin();
    }
    let mut c = 0.3;
    for (p, q) in x.iter().zip(y.iter()).rev() {
        c = (c * p + q).cos();
    }
    let mut d = 0.4;
    for (i, (p, q)) in x.iter().zip(y).enumerate().rev() {
        d = (d - p * q + i as f64).atan();
    }
    a + 2.0 * b + 3.0 * c + 4.0 * d
}

/// The same, by hand, with explicit reversed indices.
fn reversed_iters_by_hand(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let mut a = 0.1;
    let mut b = 0.2;
    for i in (0..x.len()).rev() {
        a = (a * 0.9 + x[i]).tanh();
        b = (b + (i as f64) * x[i]).sin();
    }
    let mut c = 0.3;
    let mut d = 0.4;
    for i in (0..n).rev() {
        c = (c * x[i] + y[i]).cos();
        d = (d - x[i] * y[i] + i as f64).atan();
    }
    a + 2.0 * b + 3.0 * c + 4.0 * d
}

#[test]
fn rev_on_iterators() {
    let x = [0.5, -1.0, 2.0, 0.25, 0.6];
    for y in [&[1.5, 0.3, -0.7, 2.2, -0.4][..], &[1.5, 0.3, -0.7][..]] {
        let (value, g) = reversed_iters_grad(&x, y);
        assert_eq!(value, reversed_iters(&x, y));
        approx::assert_relative_eq!(value, reversed_iters_by_hand(&x, y), max_relative = 1e-14);
        assert_gradient(
            |p| reversed_iters(&p[..5], &p[5..]),
            &cat(&[&x, y]),
            &cat(&[&g.x, &g.y]),
        );
    }
}

// ------------------------------------------------------ while and loop

/// `while` with an integer counter.
#[differentiate(wrt(x))]
fn while_counter(x: f64, n: u32) -> f64 {
    let mut i = 0;
    let mut s = 1.0;
    while i < n {
        s = s * x + 1.0;
        i += 1;
    }
    s
}

/// `while` whose condition reads the differentiated state: doubles `x`
/// until it exceeds `limit` (the trip count depends on `x`, the gradient
/// is piecewise 2ᵏ).
#[differentiate(wrt(x))]
fn while_on_state(x: f64, limit: f64) -> f64 {
    let mut v = x;
    let mut steps = 0.0;
    while v < limit {
        v *= 2.0;
        steps += 1.0;
    }
    v + steps
}

/// `loop` with a `break` inside an `if`, carrying two variables.
#[differentiate]
fn loop_break(x: f64) -> f64 {
    let mut a = x;
    let mut k = 0;
    loop {
        if k >= 5 {
            break;
        }
        a = a.sin() + x;
        k += 1;
    }
    a
}

#[test]
fn while_and_loop() {
    for n in [0, 1, 5] {
        for x in [0.5, -1.3] {
            let (value, g) = while_counter_grad(x, n);
            assert_eq!(value, while_counter(x, n));
            // s = Σ_{i≤n} xⁱ.
            let exact: f64 = (1..=n).map(|i| i as f64 * x.powi(i as i32 - 1)).sum();
            approx::assert_relative_eq!(g.x, exact, max_relative = 1e-12, epsilon = 1e-15);
            assert_gradient(|p| while_counter(p[0], n), &[x], &[g.x]);
        }
    }
    // 0.3 → 0.6 → 1.2 → 2.4 (3 doublings): d/dx = 8; 5.0 is never doubled.
    assert_eq!(
        while_on_state_grad(0.3, 2.0),
        (2.4 + 3.0, WhileOnStateGrad { x: 8.0 })
    );
    assert_eq!(
        while_on_state_grad(5.0, 2.0),
        (5.0, WhileOnStateGrad { x: 1.0 })
    );
    for x in [0.3, 0.7, 1.1] {
        let (_, g) = while_on_state_grad(x, 2.0);
        assert_gradient(|p| while_on_state(p[0], 2.0), &[x], &[g.x]);
    }
    for x in [0.5, -1.3, 2.0] {
        let (value, g) = loop_break_grad(x);
        assert_eq!(value, loop_break(x));
        assert_gradient(|p| loop_break(p[0]), &[x], &[g.x]);
    }
}

/// `break` and `continue` inside `if` in a `for`: skip negative elements,
/// stop at the first element above 10.
#[differentiate]
fn break_continue(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for xi in x.iter() {
        if *xi > 10.0 {
            break;
        }
        if *xi < 0.0 {
            continue;
        }
        s += xi.sqrt() * xi;
    }
    s
}

/// `continue` in a `while` (the counter advances before it) and `break` in
/// the `else` of an `if`/`else`.
#[differentiate(wrt(x))]
fn while_continue(x: &[f64], stop: f64) -> f64 {
    let mut i = 0;
    let mut s = 0.0;
    while i < x.len() {
        let v = x[i];
        i += 1;
        if v < 0.0 {
            continue;
        }
        if v < stop {
            s += v * v;
        } else {
            s += v;
            break;
        }
    }
    s
}

#[test]
fn break_and_continue() {
    let x = [0.5, -1.0, 2.0, 0.25, 11.0, 3.0];
    let (value, g) = break_continue_grad(&x);
    assert_eq!(value, break_continue(&x));
    // d/dv v^1.5 = 1.5 √v for the elements before the break that are ≥ 0.
    let exact = [
        1.5 * 0.5_f64.sqrt(),
        0.0,
        1.5 * 2.0_f64.sqrt(),
        0.75,
        0.0,
        0.0,
    ];
    assert_close(&g.x, &exact);
    assert_gradient(break_continue, &x, &g.x);

    let x = [0.5, -1.0, 2.0, 4.0, 3.0];
    let (value, g) = while_continue_grad(&x, 3.5);
    assert_eq!(value, while_continue(&x, 3.5));
    assert_eq!(g.x, vec![1.0, 0.0, 4.0, 1.0, 0.0]);
    assert_gradient(|p| while_continue(p, 3.5), &x, &g.x);
    let (_, g) = while_continue_grad(&x, 10.0);
    assert_eq!(g.x, vec![1.0, 0.0, 4.0, 8.0, 6.0]);
}

/// Nested loops, the inner bound from the outer index (a triangle), with
/// an `if`/`else` in the inner body and a `break` leaving the inner loop
/// only.
#[differentiate]
fn nested(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in 0..i {
            if j == 3 {
                break;
            }
            let p = x[i] * x[j];
            if p > 0.0 {
                s += p.sqrt();
            } else {
                s -= p;
            }
        }
    }
    s
}

#[test]
fn nested_loops() {
    for x in [
        [0.5, -1.0, 2.0, 0.25, 1.5, -0.3],
        [1.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    ] {
        let (value, g) = nested_grad(&x);
        assert_eq!(value, nested(&x));
        assert_gradient(nested, &x, &g.x);
    }
}

// ---------------------------------------------------- loop-carried state

/// Horner with a constant: acc = acc·x + 1 (the same as Σ_{i≤n} xⁱ).
#[differentiate(wrt(x))]
fn horner_ones(x: f64, n: usize) -> f64 {
    let mut acc = 0.0;
    for _ in 0..n {
        acc = acc * x + 1.0;
    }
    acc
}

/// The recurrence of an RNN: h = tanh(h·w + xᵢ).
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn rnn(w: f64, x: &[f64]) -> f64 {
    let mut h = 0.0;
    for i in 0..x.len() {
        h = (h * w + x[i]).tanh();
    }
    h
}

/// Running maxima from `NEG_INFINITY` and from `x[0]`.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn running_max(x: &[f64]) -> f64 {
    let mut m = f64::NEG_INFINITY;
    for i in 0..x.len() {
        m = m.max(x[i]);
    }
    let mut m2 = x[0];
    for i in 1..x.len() {
        m2 = m2.max(x[i] * 0.5);
    }
    m + 10.0 * m2
}

/// A product `p *= xᵢ`: the gradient is the product of the others, also
/// when an element is zero.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn product(x: &[f64]) -> f64 {
    let mut p = 1.0;
    for i in 0..x.len() {
        p *= x[i];
    }
    p
}

/// Several carried variables at once: Welford's running mean and variance,
/// and a Fibonacci-style pair swapped through a temporary.
#[differentiate]
fn several_carried(x: &[f64], r: f64) -> f64 {
    let mut mean = 0.0;
    let mut m2 = 0.0;
    let mut count = 0.0;
    for xi in x.iter() {
        count += 1.0;
        let delta = xi - mean;
        mean += delta / count;
        m2 += delta * (xi - mean);
    }
    let mut a = 1.0;
    let mut b = r;
    for _ in 0..6 {
        let t = a;
        a = b;
        b = t + b * r;
    }
    m2 / count + mean * b
}

#[test]
fn carried_state() {
    for n in [0, 1, 4] {
        let x = 0.8;
        let (_, g) = horner_ones_grad(x, n);
        let exact: f64 = (1..n).map(|i| i as f64 * x.powi(i as i32 - 1)).sum();
        approx::assert_relative_eq!(g.x, exact, max_relative = 1e-12);
        assert_gradient(|p| horner_ones(p[0], n), &[x], &[g.x]);
    }

    let x = [0.5, -1.0, 2.0, 0.25, 1.5];
    for w in [0.0, 0.7, -1.3] {
        let (value, g) = rnn_grad(w, &x);
        assert_eq!(value, rnn(w, &x));
        assert_gradient(
            |p| rnn(p[0], &p[1..]),
            &cat(&[&[w], &x]),
            &cat(&[&[g.w], &g.x]),
        );
    }
    // w = 0: only the last input matters, with tanh' at x[4].
    let (_, g) = rnn_grad(0.0, &x);
    let t = 1.5_f64.tanh();
    assert_eq!(&g.x[..4], &[0.0; 4]);
    approx::assert_relative_eq!(g.x[4], 1.0 - t * t, max_relative = 1e-15);

    // The maximum's gradient goes to the argmax only.
    let (value, g) = running_max_grad(&x);
    assert_eq!(value, 2.0 + 10.0 * 1.0);
    assert_eq!(g.x, vec![0.0, 0.0, 1.0 + 10.0 * 0.5, 0.0, 0.0]);
    assert_gradient(running_max, &x, &g.x);
    let y = [3.0, -1.0, 2.0, 0.25, 1.5];
    let (_, g) = running_max_grad(&y);
    assert_eq!(g.x, vec![11.0, 0.0, 0.0, 0.0, 0.0]);
    assert_gradient(running_max, &y, &g.x);

    let (value, g) = product_grad(&x);
    assert_eq!(value, -0.5 * 2.0 * 0.25 * 1.5);
    assert_gradient(product, &x, &g.x);
    let z = [2.0, 0.0, 3.0, -1.5];
    let (value, g) = product_grad(&z);
    assert_eq!(value, 0.0);
    assert_eq!(g.x, vec![0.0, -9.0, 0.0, 0.0]);

    for r in [0.3, -0.8] {
        let (value, g) = several_carried_grad(&x, r);
        assert_eq!(value, several_carried(&x, r));
        assert_gradient(
            |p| several_carried(&p[..5], p[5]),
            &cat(&[&x, &[r]]),
            &cat(&[&g.x, &[g.r]]),
        );
    }
}

// ---------------------------------------------------------------- match

/// A user enum matched by variant.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Linear,
    Square,
    Sine,
}

/// `match` on an integer: literals, `1 | 2`, a range, a guard, `_`; each
/// arm a differentiated value.
#[differentiate(wrt(x))]
fn match_int(x: f64, k: i32, flag: bool) -> f64 {
    match k {
        0 => x,
        1 | 2 => x * x,
        3..=5 => x.sin() * k as f64,
        6 if flag => x.exp(),
        _ => -x,
    }
}

/// `match` on a `bool` and on a user enum, as values and as statements.
#[differentiate(wrt(x))]
fn match_bool_enum(x: f64, b: bool, mode: Mode) -> f64 {
    let y = match b {
        true => x * 3.0,
        false => x.cos(),
    };
    let mut z = y;
    match mode {
        Mode::Linear => z += x,
        Mode::Square => z *= x,
        Mode::Sine => {
            z = z.sin();
        }
    }
    z
}

/// `match` on the loop index inside a loop, and `matches!` in a condition.
#[differentiate(wrt(x))]
fn match_in_loop(x: &[f64], k: u8) -> f64 {
    let mut s = 0.0;
    for (i, xi) in x.iter().enumerate() {
        s += match i % 3 {
            0 => xi * 2.0,
            1 => xi * xi,
            _ => xi.sin(),
        };
        if matches!(k, 1 | 2) {
            s += xi.powi(3);
        }
    }
    s
}

#[test]
fn match_arms() {
    let x: f64 = 0.7;
    let expected = [
        (0, 1.0),
        (1, 2.0 * x),
        (2, 2.0 * x),
        (3, 3.0 * x.cos()),
        (5, 5.0 * x.cos()),
        (6, x.exp()),
        (7, -1.0),
        (-1, -1.0),
    ];
    for (k, d) in expected {
        let (value, g) = match_int_grad(x, k, true);
        assert_eq!(value, match_int(x, k, true));
        approx::assert_relative_eq!(g.x, d, max_relative = 1e-15);
        assert_gradient(|p| match_int(p[0], k, true), &[x], &[g.x]);
    }
    // The guard fails: the `_` arm.
    assert_eq!(match_int_grad(x, 6, false).1.x, -1.0);

    for b in [true, false] {
        for mode in [Mode::Linear, Mode::Square, Mode::Sine] {
            for x in [0.4, -1.2] {
                let (value, g) = match_bool_enum_grad(x, b, mode);
                assert_eq!(value, match_bool_enum(x, b, mode));
                assert_gradient(|p| match_bool_enum(p[0], b, mode), &[x], &[g.x]);
            }
        }
    }
    let (_, g) = match_bool_enum_grad(0.4, true, Mode::Square);
    approx::assert_relative_eq!(g.x, 6.0 * 0.4, max_relative = 1e-15);

    let x = [0.5, -1.0, 2.0, 0.25, 1.5];
    for k in [0, 1, 2, 3] {
        let (value, g) = match_in_loop_grad(&x, k);
        assert_eq!(value, match_in_loop(&x, k));
        assert_gradient(|p| match_in_loop(p, k), &x, &g.x);
    }
    let (_, g) = match_in_loop_grad(&x, 0);
    assert_close(&g.x, &[2.0, -2.0, 2.0_f64.cos(), 2.0, 3.0]);
}

// ------------------------------------------------------------ trip counts

/// A 0-iteration loop leaves the gradient of the code around it.
#[differentiate]
fn around_an_empty_loop(x: f64, v: &[f64]) -> f64 {
    let mut s = x * x;
    for vi in v.iter() {
        s *= vi + x;
    }
    let mut k = 0;
    while k < v.len() {
        s += x;
        k += 1;
    }
    s.sin()
}

#[test]
fn zero_and_one_iterations() {
    for x in [0.3, -1.1] {
        let (value, g) = around_an_empty_loop_grad(x, &[]);
        assert_eq!(value, (x * x).sin());
        approx::assert_relative_eq!(g.x, 2.0 * x * (x * x).cos(), max_relative = 1e-15);
        assert!(g.v.is_empty());

        let (value, g) = around_an_empty_loop_grad(x, &[0.7]);
        assert_eq!(value, around_an_empty_loop(x, &[0.7]));
        assert_gradient(
            |p| around_an_empty_loop(p[0], &p[1..]),
            &[x, 0.7],
            &[g.x, g.v[0]],
        );
    }
}

#[test]
fn ten_thousand_iterations() {
    // Σ x over 10 000 steps through a `while` counter: d/dx of x·(1 + … ) .
    let (value, g) = while_counter_grad(1.0, 10_000);
    assert_eq!(value, 10_001.0);
    // d/dx Σ_{i≤n} xⁱ at x = 1 is n(n+1)/2.
    assert_eq!(g.x, 10_000.0 * 10_001.0 / 2.0);

    // An RNN over 10 000 inputs: only the last few inputs matter (|w| < 1).
    let x: Vec<f64> = (0..10_000).map(|i| (i as f64 * 0.37).sin()).collect();
    let (value, g) = rnn_grad(0.5, &x);
    assert_eq!(value, rnn(0.5, &x));
    assert_eq!(g.x.len(), 10_000);
    let tail = x.len() - 8;
    assert_gradient(
        |p| {
            let mut full = x.clone();
            full[tail..].copy_from_slice(&p[1..]);
            rnn(p[0], &full)
        },
        &cat(&[&[0.5], &x[tail..]]),
        &cat(&[&[g.w], &g.x[tail..]]),
    );
    assert!(g.x[0].abs() < 1e-300);

    // A reduction over 10 000 elements: the exact gradient 2xᵢ.
    let (_, g) = iter_sum_grad(&x);
    let exact: Vec<f64> = x.iter().map(|v| 2.0 * v + v.cos()).collect();
    assert_close(&g.x, &exact);
}

// ------------------------------------------------- scoping and structure

/// A body that declares its own `s` (shadowing the carried one) and a
/// carried variable assigned in one branch only.
#[differentiate]
fn shadowing_in_body(x: f64) -> f64 {
    let s = x;
    let mut t = 0.0;
    let mut best = 0.0;
    for k in 0..4 {
        let mut s = x * 2.0 + k as f64;
        s += 1.0;
        t += s;
        if k % 2 == 1 {
            best = s * x;
        }
    }
    s * t + best
}

/// An inner `while` whose trip count is the outer index, nested in a `for`.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn inner_while(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let mut v = x[i];
        let mut k = 0;
        while k < i {
            v = v.sin() * x[k];
            k += 1;
        }
        s += v;
    }
    s
}

/// Loops inside an `if` used as a value and inside a block expression.
#[differentiate(wrt(x))]
fn loops_in_expressions(x: f64, n: usize, c: bool) -> f64 {
    let y = if c {
        let mut s = 0.0;
        for i in 0..n {
            s += x.powi(i as i32 + 1);
        }
        s
    } else {
        x
    };
    let z = {
        let mut p = 1.0;
        let mut k = 0;
        while k < n {
            p *= x;
            k += 1;
        }
        p
    };
    y * z
}

/// A guard clause before the loops and an early `return` between them.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn returns_around_loops(x: &[f64], w: f64) -> f64 {
    if w < -5.0 {
        return w;
    }
    let mut h = [0.0; 2];
    let mut s = 0.0;
    for i in 0..x.len() {
        let a = h[0];
        let b = h[1];
        h[0] = (a * w + x[i]).tanh();
        h[1] = b + a;
        s += x[i] * w;
    }
    if s > 100.0 {
        return s.sqrt();
    }
    let mut k = 0;
    while k < 3 {
        if s > 1.0 {
            s = s.sqrt();
        }
        k += 1;
    }
    s + h[0] * h[1]
}

#[test]
fn scoping_and_structure() {
    for x in [0.7, -1.2] {
        let (value, g) = shadowing_in_body_grad(x);
        assert_eq!(value, shadowing_in_body(x));
        assert_gradient(|p| shadowing_in_body(p[0]), &[x], &[g.x]);
    }
    // s stays x: d/dx [x · Σ_k (2x + k + 1) + (2x + 4) x] = 20x + 14.
    approx::assert_relative_eq!(shadowing_in_body_grad(0.7).1.x, 20.0 * 0.7 + 14.0);

    let x = [0.5, -1.0, 2.0, 0.25, 6.0];
    let (value, g) = inner_while_grad(&x);
    assert_eq!(value, inner_while(&x));
    assert_gradient(inner_while, &x, &g.x);

    for c in [true, false] {
        for n in [0, 3] {
            let (value, g) = loops_in_expressions_grad(0.8, n, c);
            assert_eq!(value, loops_in_expressions(0.8, n, c));
            assert_gradient(|p| loops_in_expressions(p[0], n, c), &[0.8], &[g.x]);
        }
    }

    for (x, w) in [
        ([0.5, 1.0, -0.3], 0.7),
        ([50.0, 60.0, 10.0], 1.0),
        ([0.5, 1.0, -0.3], -6.0),
        ([2.0, 3.0, 1.0], 0.9),
    ] {
        let (value, g) = returns_around_loops_grad(&x, w);
        assert_eq!(value, returns_around_loops(&x, w));
        assert_gradient(
            |p| returns_around_loops(&p[..3], p[3]),
            &cat(&[&x, &[w]]),
            &cat(&[&g.x, &[g.w]]),
        );
    }
}

/// A `#[differentiate]` callee, called from a replayed `for` and from a
/// `while` (whose iterations are counted and replayed from the tape).
#[differentiate]
fn callee(a: f64, b: f64) -> f64 {
    (a * b).sin() + a
}

#[differentiate]
fn calls_in_loops(x: &[f64], w: f64) -> f64 {
    let mut s = 0.0;
    for xi in x.iter() {
        s += callee(*xi, w);
    }
    let mut k = 0;
    let mut h = w;
    while k < x.len() {
        h = callee(h, x[k]);
        k += 1;
    }
    s + h
}

#[test]
fn calls_inside_loops() {
    for w in [0.3, -0.9] {
        let x = [0.5, -1.0, 2.0, 0.25];
        let (value, g) = calls_in_loops_grad(&x, w);
        assert_eq!(value, calls_in_loops(&x, w));
        assert_gradient(
            |p| calls_in_loops(&p[..4], p[4]),
            &cat(&[&x, &[w]]),
            &cat(&[&g.x, &[g.w]]),
        );
    }
}

/// An integer carried next to a float (argmax) and used as an index after
/// the loop; a loop variable rebound with `mut`; a bound that the body
/// changes (the range was fixed when the loop started).
#[allow(clippy::needless_range_loop)]
#[differentiate(wrt(x))]
fn integer_state(x: &[f64], mut n: usize) -> f64 {
    let mut best = x[0];
    let mut at = 0;
    for i in 1..x.len() {
        if x[i] > best {
            best = x[i];
            at = i;
        }
    }
    let mut pairs = 0.0;
    for mut i in 0..x.len() / 2 {
        i *= 2;
        pairs += x[i] * x[i + 1];
    }
    let mut s = 0.0;
    // Deliberate: the range is fixed when the loop starts.
    #[allow(clippy::mut_range_bound)]
    for i in 0..n {
        s += x[i] * x[i];
        n -= 1;
    }
    x[at] * 2.0 + best + pairs + s + n as f64
}

#[test]
fn integer_state_next_to_float_state() {
    let x = [0.5, -1.0, 2.0, 0.25, 1.5];
    let (value, g) = integer_state_grad(&x, 3);
    assert_eq!(value, integer_state(&x, 3));
    // argmax 2.0 (×3), pairs x0 x1 + x2 x3, squares of x0..x2.
    assert_eq!(g.x, vec![-1.0 + 1.0, 0.5 - 2.0, 3.0 + 0.25 + 4.0, 2.0, 0.0]);
    assert_gradient(|p| integer_state(p, 3), &x, &g.x);
}

/// `mut` scalar parameters carried through a `while`, and a variable read
/// before a loop that overwrites it (the read must see the old value).
#[differentiate(wrt(x))]
fn reassigned_parameters(mut x: f64, mut n: usize) -> f64 {
    let y = x;
    let before = x * x;
    while n > 0 {
        x = x.sin() * y;
        n -= 1;
    }
    let mut a = y * 2.0;
    let mut s = 0.0;
    for k in 0..3 {
        s += (a * k as f64).sin();
    }
    for _ in 0..3 {
        a = a * a * 0.5;
    }
    x + before + s + a
}

#[test]
fn values_read_before_a_loop_overwrites_them() {
    for n in [0, 1, 4] {
        for x in [0.9, -0.4] {
            let (value, g) = reassigned_parameters_grad(x, n);
            assert_eq!(value, reassigned_parameters(x, n));
            assert_gradient(|p| reassigned_parameters(p[0], n), &[x], &[g.x]);
        }
    }
}

/// `loop` with `continue`, a `break` in an `else if`, and state updated on
/// the other paths; a `loop` leaving through two different `break`s.
#[differentiate]
fn loop_paths(x: &[f64]) -> f64 {
    let mut i = 0;
    let mut s = 0.0;
    loop {
        if i >= x.len() {
            break;
        }
        let v = x[i];
        i += 1;
        if v < 0.0 {
            continue;
        } else if v > 5.0 {
            s += v;
            break;
        } else {
            s = s * v + v.exp();
        }
    }
    let mut p = 1.0;
    let mut j = 0;
    loop {
        if j == x.len() {
            break;
        }
        if p > 10.0 {
            p = p.sqrt();
            break;
        }
        p *= 1.0 + x[j].abs();
        j += 1;
    }
    s + p
}

/// Three levels: `while` › `loop` › `for` with a `break` in the innermost.
#[differentiate]
fn three_levels(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut i = 0;
    while i < x.len() {
        let mut j = 0;
        loop {
            if j > i {
                break;
            }
            for k in 0..3 {
                if k == 2 && x[j] < 0.0 {
                    break;
                }
                s += (x[i] * x[j] + k as f64).sin();
            }
            j += 1;
        }
        i += 1;
    }
    s
}

#[test]
fn loop_exits() {
    for x in [
        [0.5, -1.0, 2.0, 0.25, 6.0, 1.0],
        [2.5, 1.5, 3.0, 4.0, 2.0, -0.5],
        [0.1, 0.2, -0.3, 0.4, 0.5, 0.6],
    ] {
        let (value, g) = loop_paths_grad(&x);
        assert_eq!(value, loop_paths(&x));
        assert_gradient(loop_paths, &x, &g.x);
        let (value, g) = three_levels_grad(&x[..4]);
        assert_eq!(value, three_levels(&x[..4]));
        assert_gradient(three_levels, &x[..4], &g.x);
    }
}

/// `match` with a loop in an arm, and a `loop` with `break` in another.
#[differentiate(wrt(x))]
fn loops_in_match_arms(x: f64, k: usize) -> f64 {
    match k {
        0 => x,
        1..=3 => {
            let mut s = 0.0;
            for i in 0..k {
                s += x.powi(i as i32 + 2);
            }
            s
        }
        _ => {
            let mut p = x;
            loop {
                p *= 0.5;
                if p < 0.1 {
                    break;
                }
            }
            p
        }
    }
}

/// A non-`Copy` enum with a payload pattern, `&str` patterns, guards on a
/// `bool`, and `match` arms that assign to carried state.
#[derive(Debug)]
enum Kind {
    Linear,
    Cubed(u8),
    Squared,
}

#[differentiate(wrt(x))]
fn match_patterns(x: &[f64], kind: Kind, flag: bool, name: &str) -> f64 {
    let mut s = 0.0;
    for (i, xi) in x.iter().enumerate() {
        match i % 2 {
            0 if flag => s += xi * 2.0,
            1 => {
                let t = xi * xi;
                s += t;
            }
            _ => s -= xi,
        }
        s += match kind {
            Kind::Linear => *xi,
            Kind::Cubed(3) => xi * xi * xi,
            Kind::Cubed(_) | Kind::Squared => xi * xi,
        };
        s *= match name {
            "half" => 0.5,
            _ => 1.0,
        };
    }
    s
}

#[test]
fn match_in_and_around_loops() {
    for k in 0..6 {
        let (value, g) = loops_in_match_arms_grad(0.9, k);
        assert_eq!(value, loops_in_match_arms(0.9, k));
        assert_gradient(|p| loops_in_match_arms(p[0], k), &[0.9], &[g.x]);
    }
    // k = 4: 0.9 → 0.45 → … → 0.05625 (4 halvings), d/dx = 1/16.
    assert_eq!(loops_in_match_arms_grad(0.9, 4).1.x, 0.0625);

    let x = [0.5, 1.0, -0.3];
    let kinds = || [Kind::Linear, Kind::Cubed(3), Kind::Cubed(1), Kind::Squared];
    for (j, kind) in kinds().into_iter().enumerate() {
        let flag = j % 2 == 0;
        let name = if j > 1 { "half" } else { "whole" };
        let (value, g) = match_patterns_grad(&x, kind, flag, name);
        let kind = || kinds().into_iter().nth(j).unwrap();
        assert_eq!(value, match_patterns(&x, kind(), flag, name));
        assert_gradient(|p| match_patterns(p, kind(), flag, name), &x, &g.x);
    }
}

// ------------------------------------------------------ kinks in loops

/// A value computed before an `if` in the loop body and used in one branch
/// only: at xᵢ = 0 the untaken `sqrt` branch must not turn 0 · ∞ into NaN.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn guarded_sqrt(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let r = x[i].sqrt();
        if x[i] > 0.0 {
            s += r;
        } else {
            s += x[i];
        }
    }
    s
}

/// Running maximum with ties.
#[differentiate]
fn running_max_ties(x: &[f64]) -> f64 {
    let mut m = f64::NEG_INFINITY;
    for xi in x.iter() {
        m = m.max(*xi);
    }
    m
}

#[test]
fn kinks_inside_loops() {
    assert_eq!(
        guarded_sqrt_grad(&[0.0, 4.0, -1.0]).1.x,
        vec![1.0, 0.25, 1.0]
    );
    // Ties split the gradient between the two arguments of each `max`, as
    // PyTorch's `maximum` does: [1, 1] gives ½ each; with three equal values
    // the last gets ½ and the earlier two ¼.
    assert_eq!(running_max_ties_grad(&[1.0, 1.0]).1.x, vec![0.5, 0.5]);
    assert_eq!(
        running_max_ties_grad(&[1.0, 1.0, 1.0]).1.x,
        vec![0.25, 0.25, 0.5]
    );
    assert_eq!(
        running_max_ties_grad(&[1.0, 3.0, 2.0]).1.x,
        vec![0.0, 1.0, 0.0]
    );
}

// ------------------------------------------------------- names and casts

/// User names that the generated loops also use (`i` for the index of
/// `for xi in x.iter()`, `keep`, `tape`) and a parameter named `i`.
#[differentiate]
fn generated_names(x: &[f64], i: f64) -> f64 {
    let keep = 2.0 * i;
    let tape = i * i;
    let mut s = 0.0;
    let mut k = 0;
    while k < x.len() {
        s = s * keep + x[k] * i + tape;
        k += 1;
    }
    for xi in x.iter().rev() {
        s = (s * 0.1).sin() * i + xi;
    }
    s
}

/// `&[f32]` data in an `f64` function and `f64` data in an `f32` one,
/// through `as` casts.
#[differentiate]
fn mixed_widths(x: &[f32], w: f64) -> f64 {
    let mut s = 0.0;
    for xi in x.iter() {
        s += (*xi as f64) * w + (xi * xi) as f64;
    }
    s
}

#[test]
fn names_and_casts() {
    let x = [0.5, 1.0, -0.3];
    let (value, g) = generated_names_grad(&x, 0.7);
    assert_eq!(value, generated_names(&x, 0.7));
    assert_gradient(
        |p| generated_names(&p[..3], p[3]),
        &cat(&[&x, &[0.7]]),
        &cat(&[&g.x, &[g.i]]),
    );

    let (value, g) = mixed_widths_grad(&[1.0, 2.0], 0.5);
    assert_eq!(value, 6.5);
    let gx: Vec<f32> = g.x;
    assert_eq!((gx, g.w), (vec![2.5, 4.5], 3.0));
}

// ------------------------------------------- stencils (`x[i]` and `x[i + 1]`)

/// A first-difference penalty from `a` on: iteration `i` contributes to the
/// gradient of `x[i]` and `x[i + 1]`, which the generated loop hands to the
/// next iteration in a variable (`carry.rs`) instead of through memory.
#[differentiate]
fn roughness(x: &[f64], a: usize, scale: f64) -> f64 {
    let mut s = 0.0;
    for i in a..x.len() - 1 {
        let d = x[i + 1] - x[i];
        s += scale * d * d + x[i].sin();
    }
    s
}

/// The same stencil over a fixed-size array: the gradient is summed in a
/// local array and added to the caller's once.
#[differentiate]
fn roughness_array(x: [f64; 5]) -> f64 {
    let mut s = 0.0;
    for i in 0..4 {
        let d = x[i + 1] - x[i];
        s += d * d * x[i];
    }
    s
}

#[test]
fn stencil_gradients_match_finite_differences() {
    for n in [1, 2, 3, 10] {
        for a in [0, 1, 5] {
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).cos()).collect();
            let (value, g) = roughness_grad(&x, a, 2.5);
            assert_eq!(value, roughness(&x, a, 2.5));
            assert_eq!(g.x.len(), n);
            assert_gradient(
                |p| roughness(&p[..n], a, p[n]),
                &cat(&[&x, &[2.5]]),
                &cat(&[&g.x, &[g.scale]]),
            );
            // Elements the loop does not reach have no gradient.
            for (k, gk) in g.x.iter().enumerate() {
                if k < a || n < 2 || a >= n - 1 {
                    assert_eq!(*gk, 0.0, "n = {n}, a = {a}, k = {k}");
                }
            }
        }
    }
    let x = [0.3, -1.2, 0.8, 2.0, -0.4];
    let (value, g) = roughness_array_grad(x);
    assert_eq!(value, roughness_array(x));
    assert_gradient(
        |p| roughness_array([p[0], p[1], p[2], p[3], p[4]]),
        &x,
        &g.x,
    );
}

/// `f_backward` adds into the caller's gradient: a second call doubles it,
/// for the carried slice elements and the locally summed array alike.
#[test]
fn stencil_gradients_accumulate() {
    let x = [0.5, 1.5, -0.25, 0.75];
    let mut g = RoughnessGrad::default();
    roughness_backward(&x, 0, 1.0, &mut g);
    let once = g.clone();
    roughness_backward(&x, 0, 1.0, &mut g);
    for (twice, once) in g.x.iter().zip(&once.x) {
        assert_eq!(*twice, 2.0 * once);
    }
    let xa = [0.3, -1.2, 0.8, 2.0, -0.4];
    let mut ga = RoughnessArrayGrad::default();
    roughness_array_backward(xa, &mut ga);
    let once = ga;
    roughness_array_backward(xa, &mut ga);
    assert_eq!(ga.x, once.x.map(|v| 2.0 * v));
}
