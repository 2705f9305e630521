//! Slice and array parameters and local arrays: `&[f64]`, `&[f32]`,
//! `[f64; N]`, `&[f64; N]`, `[[f64; N]; M]`, `&[[f64; N]; M]`; indexing
//! (`x[i]`, `x[i * d + j]`, `w[j][k]`, indices read from an integer slice),
//! `.len()`; local arrays (`[0.0; n]`, `[[0.0; n]; m]`, `[a, b, c]`) with
//! element assignment and `+=`, `-=`, `*=`, `/=`; `wrt` subsets that leave
//! data slices undifferentiated; and the types of the gradient fields
//! (`Vec<f64>` for a slice, the parameter's own array type for an array).
//!
//! Every gradient is compared with central finite differences of the
//! primal, at several points, and with exact values where they are known.

use grad::check::assert_gradient;
use grad::prelude::*;

/// Element-wise equality up to rounding.
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

/// `M × N` matrix from a flat row-major slice.
fn matrix<const N: usize, const M: usize>(flat: &[f64]) -> [[f64; N]; M] {
    let mut m = [[0.0; N]; M];
    for (j, row) in m.iter_mut().enumerate() {
        row.copy_from_slice(&flat[j * N..(j + 1) * N]);
    }
    m
}

// ------------------------------------------------------------ parameters

/// `&[f64]` indexed with a computed index `x[i * d + j]`, `.len()` of a
/// slice used as a bound and as a float: a row-major matrix-vector product
/// followed by a mean of squares.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn flat_matvec(a: &[f64], v: &[f64]) -> f64 {
    let d = v.len();
    let rows = a.len() / d;
    let mut s = 0.0;
    for i in 0..rows {
        let mut r = 0.0;
        for j in 0..d {
            r += a[i * d + j] * v[j];
        }
        s += r * r;
    }
    s / rows as f64
}

#[test]
fn slice_with_computed_indices() {
    let a = [0.5, -1.0, 2.0, 0.25, 1.5, -0.3];
    for v in [[1.0, 2.0], [-0.5, 0.3]] {
        let (value, g) = flat_matvec_grad(&a, &v);
        assert_eq!(value, flat_matvec(&a, &v));
        // The field types: one `Vec<f64>` per slice, of the slice's length.
        let (ga, gv): (Vec<f64>, Vec<f64>) = (g.a.clone(), g.v.clone());
        assert_eq!((ga.len(), gv.len()), (6, 2));
        // ∂/∂a[i d + j] = 2 rᵢ vⱼ / rows.
        let r: Vec<f64> = (0..3)
            .map(|i| a[2 * i] * v[0] + a[2 * i + 1] * v[1])
            .collect();
        let exact: Vec<f64> = (0..6).map(|k| 2.0 * r[k / 2] * v[k % 2] / 3.0).collect();
        assert_close(&ga, &exact);
        let mut p = a.to_vec();
        p.extend(v);
        assert_gradient(|p| flat_matvec(&p[..6], &p[6..]), &p, &[ga, gv].concat());
    }
}

/// `[f64; N]` by value, `&[f64; N]`, `[[f64; N]; M]` by value and
/// `&[[f64; N]; M]`; `.len()` of each (the outer length for 2-D arrays).
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn array_params(x: [f64; 3], y: &[f64; 3], m: [[f64; 3]; 2], n: &[[f64; 2]; 3]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * y[i];
    }
    for r in 0..m.len() {
        for c in 0..3 {
            s += m[r][c] * x[c] + n[c][r] * y[c];
        }
    }
    s * (n.len() as f64) + (m[1][2] * n[2][1]).sin()
}

#[test]
fn array_parameters() {
    let x = [0.5, -1.0, 2.0];
    let y = [1.5, 0.3, -0.7];
    let m = [[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]];
    let n = [[0.7, -0.8], [0.9, 1.0], [-1.1, 1.2]];
    let (value, g) = array_params_grad(x, &y, m, &n);
    assert_eq!(value, array_params(x, &y, m, &n));
    // The fields have the parameter's array type (the reference removed).
    let gx: [f64; 3] = g.x;
    let gy: [f64; 3] = g.y;
    let gm: [[f64; 3]; 2] = g.m;
    let gn: [[f64; 2]; 3] = g.n;
    // ∂/∂x = 3 (y + Σ_r m[r]).
    let exact: Vec<f64> = (0..3).map(|i| 3.0 * (y[i] + m[0][i] + m[1][i])).collect();
    assert_close(&gx, &exact);
    let mut p: Vec<f64> = [x, y].concat();
    p.extend(m.iter().flatten());
    p.extend(n.iter().flatten());
    let mut analytic: Vec<f64> = [gx, gy].concat();
    analytic.extend(gm.iter().flatten());
    analytic.extend(gn.iter().flatten());
    assert_gradient(
        |p| {
            array_params(
                p[0..3].try_into().unwrap(),
                p[3..6].try_into().unwrap(),
                matrix(&p[6..12]),
                &matrix(&p[12..18]),
            )
        },
        &p,
        &analytic,
    );
    // With no `Vec` field the gradient struct is `Copy`.
    let copy = g;
    assert_eq!(copy, g);
}

/// Indices read from an integer slice: a gather that reads some elements
/// several times (their contributions add up) and others never.
#[differentiate(wrt(x))]
fn gather(x: &[f64], idx: &[usize]) -> f64 {
    let mut s = 0.0;
    for i in 0..idx.len() {
        s += x[idx[i]] * x[idx[i]];
    }
    s
}

#[test]
fn gather_with_repeated_indices() {
    let x = [0.5, -1.0, 2.0, 0.25];
    let idx = [0, 2, 2, 1, 2];
    let (value, g) = gather_grad(&x, &idx);
    assert_eq!(value, 0.25 + 3.0 * 4.0 + 1.0);
    assert_eq!(g.x, vec![1.0, -2.0, 12.0, 0.0]);
    assert_gradient(|p| gather(p, &idx), &x, &g.x);
}

/// Parameters of other element types (`&[i32]`, `&[bool]`, `&[usize]`)
/// are indexed but never differentiated.
#[differentiate]
fn integer_slices(w: &[f64], scale: &[i32], mask: &[bool]) -> f64 {
    let mut s = 0.0;
    for i in 0..w.len() {
        if mask[i] {
            s += w[i] * scale[i] as f64;
        }
    }
    s
}

#[test]
fn non_float_slices_are_not_differentiated() {
    let (value, g) = integer_slices_grad(&[1.0, 2.0, 3.0], &[1, 2, 3], &[true, false, true]);
    assert_eq!(value, 10.0);
    // The struct literal names every field: `w` is the only one.
    assert_eq!(
        g,
        IntegerSlicesGrad {
            w: vec![1.0, 0.0, 3.0]
        }
    );
}

// ---------------------------------------------------------- local arrays

/// A dense layer into a local array, `h[j] += w[j][k] * x[k]` in place,
/// then an activation written back into the same array, a second layer
/// reading it, and an element overwritten after the loops.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn layer(x: &[f64; 3], w: &[[f64; 3]; 4], v: &[f64; 4]) -> f64 {
    let mut h = [0.0; 4];
    for j in 0..4 {
        for k in 0..3 {
            h[j] += w[j][k] * x[k];
        }
        h[j] = h[j].tanh();
    }
    let mut s = 0.0;
    for j in 0..4 {
        s += h[j] * v[j];
    }
    h[0] = s;
    h[0] * h[1]
}

#[test]
fn dense_layer_in_a_local_array() {
    let x = [0.3, -0.2, 0.5];
    let w = [
        [0.1, 0.2, 0.3],
        [-0.1, 0.4, 0.2],
        [0.5, -0.5, 0.1],
        [0.3, 0.3, -0.3],
    ];
    for v in [[1.0, -1.0, 0.5, 2.0], [0.2, 0.4, -0.6, 0.8]] {
        let (value, g) = layer_grad(&x, &w, &v);
        assert_eq!(value, layer(&x, &w, &v));
        let mut p = x.to_vec();
        p.extend(w.iter().flatten());
        p.extend(v);
        let mut analytic = g.x.to_vec();
        analytic.extend(g.w.iter().flatten());
        analytic.extend(g.v);
        assert_gradient(
            |p| {
                layer(
                    p[..3].try_into().unwrap(),
                    &matrix(&p[3..15]),
                    p[15..].try_into().unwrap(),
                )
            },
            &p,
            &analytic,
        );
    }
}

/// `[a, b, c]` of differentiated values, `[[0.5; 3]; 2]`, a larger
/// `[1.0; 16]` used in part, and every compound assignment on elements.
#[differentiate]
fn local_arrays(x: &[f64], a: f64) -> f64 {
    let mut h = [1.0; 3];
    let mut m = [[0.5; 3]; 2];
    let mut big = [1.0; 16];
    for i in 0..x.len() {
        let j = i % 3;
        h[j] *= x[i] + a;
        h[(j + 1) % 3] -= x[i] * a;
        h[(j + 2) % 3] /= 1.0 + x[i] * x[i];
        m[i % 2][j] += h[j] * x[i];
        big[i] = x[i] * big[i] + a;
    }
    let list = [h[0], a * 2.0, m[1][2]];
    let mut s = 0.0;
    for (i, v) in list.iter().enumerate() {
        s += v * (i as f64 + 1.0) + m[0][i];
    }
    for b in big.iter() {
        s += b.sin();
    }
    s + h.len() as f64 + m.len() as f64
}

#[test]
fn local_arrays_and_compound_assignment() {
    for (x, a) in [
        ([0.5, -1.0, 2.0, 0.25, 6.0], 0.3),
        ([1.5, 0.3, -0.7, 2.2, 0.1], -0.8),
    ] {
        let (value, g) = local_arrays_grad(&x, a);
        assert_eq!(value, local_arrays(&x, a));
        let mut p = x.to_vec();
        p.push(a);
        let mut analytic = g.x.clone();
        analytic.push(g.a);
        assert_gradient(|p| local_arrays(&p[..5], p[5]), &p, &analytic);
    }
}

/// A cumulative sum into a local array (each element read back in the next
/// iteration) with the same element written twice per iteration, then
/// iterated with `for ci in c.iter()`.
#[differentiate]
fn cumulative(x: &[f64; 5]) -> f64 {
    let mut c = [0.0; 5];
    c[0] = x[0];
    for i in 1..5 {
        c[i] = c[i - 1] + x[i];
        c[i] = c[i] * c[i];
    }
    let mut s = 0.0;
    for ci in c.iter() {
        s += ci.sin();
    }
    s
}

/// A sorting network on a local copy (compare-exchange with `min`/`max`):
/// Σ (j + 1) · sorted[j]; the gradient sends each weight to the element
/// that landed in that position.
#[allow(clippy::needless_range_loop, clippy::manual_memcpy)]
#[differentiate]
fn sorted_weighted(x: &[f64; 4]) -> f64 {
    let mut h = [0.0; 4];
    for i in 0..4 {
        h[i] = x[i];
    }
    for _ in 0..4 {
        for j in 0..3 {
            let a = h[j];
            let b = h[j + 1];
            h[j] = a.min(b);
            h[j + 1] = a.max(b);
        }
    }
    let mut s = 0.0;
    for j in 0..4 {
        s += h[j] * (j as f64 + 1.0);
    }
    s
}

/// A scatter-add into a local array with repeated indices.
#[differentiate(wrt(x))]
fn scatter(x: &[f64], idx: &[usize]) -> f64 {
    let mut h = [0.0; 4];
    for i in 0..idx.len() {
        h[idx[i]] += x[i];
    }
    let mut s = 0.0;
    for (j, hj) in h.iter().enumerate() {
        s += hj * hj * (j as f64 + 1.0);
    }
    s
}

#[test]
fn arrays_rewritten_in_loops() {
    for x in [[0.3, -0.5, 0.2, 0.1, 0.4], [0.1, 0.2, -0.3, 0.4, -0.5]] {
        let (value, g) = cumulative_grad(&x);
        assert_eq!(value, cumulative(&x));
        assert_gradient(|p| cumulative(p.try_into().unwrap()), &x, &g.x);
    }

    let x = [0.3, -1.0, 2.0, 0.7];
    let (value, g) = sorted_weighted_grad(&x);
    assert_eq!(value, -1.0 + 2.0 * 0.3 + 3.0 * 0.7 + 4.0 * 2.0);
    assert_eq!(g.x, [2.0, 1.0, 4.0, 3.0]);
    assert_gradient(|p| sorted_weighted(p.try_into().unwrap()), &x, &g.x);

    let x = [0.5, -1.0, 2.0, 0.25, 3.0];
    let idx = [0, 3, 3, 1, 0];
    let (value, g) = scatter_grad(&x, &idx);
    assert_eq!(value, scatter(&x, &idx));
    // h = [3.5, 0.25, 0, 1]: ∂/∂xᵢ = 2 (idx + 1) h[idx].
    assert_eq!(g.x, vec![7.0, 8.0, 8.0, 1.0, 7.0]);
    assert_gradient(|p| scatter(p, &idx), &x, &g.x);
}

/// A two-unit RNN whose state lives in a local array, read at the top of
/// each step and overwritten at its end.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn vector_rnn(w: &[[f64; 2]; 2], x: &[f64]) -> f64 {
    let mut h = [0.0; 2];
    for t in 0..x.len() {
        let h0 = h[0];
        let h1 = h[1];
        h[0] = (w[0][0] * h0 + w[0][1] * h1 + x[t]).tanh();
        h[1] = (w[1][0] * h0 + w[1][1] * h1 - x[t]).tanh();
    }
    h[0] + 2.0 * h[1]
}

/// An array stored in a loop whose elements are read in a branch, plus one
/// stored in an inner loop and read at the top of the outer one.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn stores_in_branches(x: &[f64]) -> f64 {
    let mut h = [0.0; 2];
    let mut g = [1.0; 2];
    let mut s = 0.0;
    for i in 0..x.len() {
        let a = h[0];
        let b = h[1];
        let c = g[0];
        s += a * b + a + c * g[1];
        if x[i] > 0.0 {
            h[0] = x[i] * s;
        } else {
            h[1] = x[i] + a;
        }
        for j in 0..2 {
            g[j] = (c * x[i] + j as f64 * b).sin();
        }
    }
    s + h[0] + h[1]
}

#[test]
fn state_in_local_arrays() {
    let w = [[0.5, -0.3], [0.2, 0.8]];
    let x = [0.5, -1.0, 2.0, 0.25, 1.5];
    let (value, g) = vector_rnn_grad(&w, &x);
    assert_eq!(value, vector_rnn(&w, &x));
    let mut p: Vec<f64> = w.iter().flatten().copied().collect();
    p.extend(x);
    let mut analytic: Vec<f64> = g.w.iter().flatten().copied().collect();
    analytic.extend(&g.x);
    assert_gradient(|p| vector_rnn(&matrix(&p[..4]), &p[4..]), &p, &analytic);

    for x in [[0.5, -1.0, 2.0, 0.25], [-0.5, 1.0, -2.0, 0.75]] {
        let (value, g) = stores_in_branches_grad(&x);
        assert_eq!(value, stores_in_branches(&x));
        assert_gradient(stores_in_branches, &x, &g.x);
    }
}

// -------------------------------------------------------- wrt and types

/// `wrt(w, b)`: the data slices `x`, `y` are not differentiated and have
/// no field.
#[differentiate(wrt(w, b))]
fn linear_mse(w: &[f64], b: f64, x: &[f64], y: &[f64]) -> f64 {
    let d = w.len();
    let mut s = 0.0;
    for (i, yi) in y.iter().enumerate() {
        let mut p = b;
        for (j, wj) in w.iter().enumerate() {
            p += wj * x[i * d + j];
        }
        s += mse(p, *yi);
    }
    s / y.len() as f64
}

/// The default `wrt`: every float parameter, slices and arrays included,
/// but not the integer one.
#[differentiate]
fn default_wrt(w: &[f64], v: [f64; 2], c: f64, k: usize) -> f64 {
    (w[k] * v[0] + v[1]) * c
}

#[test]
fn wrt_subsets() {
    let w = [0.5, -0.25];
    let x = [1.0, 2.0, -1.0, 0.5, 0.0, 3.0];
    let y = [1.0, 0.0, 2.0];
    let (value, g) = linear_mse_grad(&w, 0.1, &x, &y);
    assert_eq!(value, linear_mse(&w, 0.1, &x, &y));
    // Exactly the fields `w` and `b`.
    let LinearMseGrad { w: gw, b: gb } = g;
    let mut analytic = gw.clone();
    analytic.push(gb);
    assert_gradient(
        |p| linear_mse(&p[..2], p[2], &x, &y),
        &[0.5, -0.25, 0.1],
        &analytic,
    );

    let (value, g) = default_wrt_grad(&[1.0, 2.0, 3.0], [0.5, 0.25], 2.0, 1);
    assert_eq!(value, 2.5);
    assert_eq!(
        g,
        DefaultWrtGrad {
            w: vec![0.0, 1.0, 0.0],
            v: [4.0, 2.0],
            c: 1.25
        }
    );
}

/// A differentiated slice that only the length is read from still gets a
/// gradient of its length (zeros).
#[differentiate]
fn only_len(x: &[f64], y: f64) -> f64 {
    y * x.len() as f64
}

#[test]
fn unread_slice_gets_a_zero_gradient_of_its_length() {
    let (value, g) = only_len_grad(&[1.0, 2.0], 3.0);
    assert_eq!((value, g.x, g.y), (6.0, vec![0.0, 0.0], 2.0));
}

// ------------------------------------------------------------------ f32

/// `&[f32]` with an `f32` scalar, a local array of `f32` (typed by its
/// elements), `sigmoid` and `.enumerate()`.
#[differentiate]
fn f32_slices(x: &[f32], w: f32) -> f32 {
    let mut h = [0.0; 2];
    let mut s = 0.0;
    for (i, xi) in x.iter().enumerate() {
        h[i % 2] += xi * w;
        s += sigmoid(*xi * w) + h[0] * h[1];
    }
    s
}

/// `[f32; N]` and a typed local `[0.0_f32; N]`.
#[allow(clippy::needless_range_loop)]
#[differentiate]
fn f32_arrays(a: [f32; 3], b: &[[f32; 3]; 2]) -> f32 {
    let mut t = [0.0_f32; 2];
    for r in 0..2 {
        for c in 0..3 {
            t[r] += a[c] * b[r][c];
        }
    }
    (t[0] * t[1]).tanh()
}

#[test]
fn f32_slices_and_arrays() {
    for (x, w) in [
        ([0.5_f32, -1.0, 2.0, 0.25], 0.7_f32),
        ([1.5, 0.3, -0.7, 0.2], -0.4),
    ] {
        let (value, g) = f32_slices_grad(&x, w);
        assert_eq!(value, f32_slices(&x, w));
        let (gx, gw): (Vec<f32>, f32) = (g.x, g.w);
        let mut p = x.to_vec();
        p.push(w);
        let mut analytic = gx;
        analytic.push(gw);
        assert_gradient(|p: &[f32]| f32_slices(&p[..4], p[4]), &p, &analytic);
    }

    let a = [0.5_f32, -1.0, 0.25];
    let b = [[0.3_f32, 0.2, -0.1], [0.4, -0.6, 0.5]];
    let (value, g) = f32_arrays_grad(a, &b);
    assert_eq!(value, f32_arrays(a, &b));
    let (ga, gb): ([f32; 3], [[f32; 3]; 2]) = (g.a, g.b);
    let mut p = a.to_vec();
    p.extend(b.iter().flatten());
    let mut analytic = ga.to_vec();
    analytic.extend(gb.iter().flatten());
    assert_gradient(
        |p: &[f32]| {
            let b = [p[3..6].try_into().unwrap(), p[6..9].try_into().unwrap()];
            f32_arrays(p[..3].try_into().unwrap(), &b)
        },
        &p,
        &analytic,
    );
}
