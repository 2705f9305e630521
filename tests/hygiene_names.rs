//! Hygiene of every name the macro generates (issue 4, item 5).
//!
//! The expansion of `#[differentiate] fn f` introduces these names:
//!
//! * items: `f_grad`, `f_backward`, the struct `FGrad` (DESIGN.md);
//! * in `f_grad`: the locals `grad` and `value` (renamed away from the
//!   parameters), and `let _ = f;`;
//! * in `f_backward`: the `&mut FGrad` parameter `grad` (renamed away from
//!   every identifier of the function), temporaries `__t1`, `__t2`, … (also
//!   the loop tapes and iteration counters), adjoints `__d_<name>` (`__d_x`,
//!   `__d_t1` for `__t1`), gradients of callees `__<name>_grad`
//!   (`__t_grad`), renamed shadowed variables `<name>_2`, the index `i` of a
//!   loop over a slice or of `for _ in`, `keep` (whether a `while` body goes
//!   on), `ret` (the value of an `if` that returns early), the callee
//!   companions `g_grad` (and, for recursion, `f_grad`);
//! * paths: `::core::…`, `::std::vec::Vec`, `::grad::__private::{ArgGrad,
//!   derivatives::*, prepare_grad, GradField}`, runtime calls as written
//!   (`sigmoid::<f64>(…)`).
//!
//! Each group below names parameters and locals after them, in straight-line
//! code, branches, loops over ranges and slices, `while`, arrays, and calls,
//! and checks value and gradient against central differences and, where the
//! derivative is short, against the derivative worked out by hand. The last
//! group holds the cases the first version of this suite found broken.

#![deny(warnings)]
#![allow(non_snake_case)]

mod common;
use common::check;

/// `|a - b| <= 1e-12 · max(1, |b|)`.
#[track_caller]
fn close(a: f64, b: f64) {
    assert!(
        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        "{a} vs {b} (difference {})",
        a - b
    );
}

// ------------------------------------------------------------ straight line

/// Parameters named like `f_backward`'s gradient parameter (`grad`),
/// `f_grad`'s result (`value`), a temporary (`__t1`), an adjoint (`__d_x`)
/// and the companion itself (`f_grad`); locals named like more temporaries,
/// the adjoint of a temporary (`__d_t1`), of a parameter (`__d_grad`), a
/// callee's gradient (`__t_grad`), the other companion (`f_backward`) and the
/// gradient struct (`FGrad`).
mod straight {
    use grad::prelude::*;

    #[differentiate]
    pub fn f(grad: f64, value: f64, __t1: f64, __d_x: f64, f_grad: f64) -> f64 {
        let __t2 = grad * value;
        let __d_t1 = __t1.sin() * __d_x;
        let __d_grad = __t2 + __d_t1 * f_grad;
        let __t_grad = __d_grad * __d_grad;
        let f_backward = __t_grad + grad;
        let FGrad = f_backward * 0.5;
        FGrad + __d_x.exp()
    }
}

#[test]
fn straight_line_names() {
    use straight::*;
    check(
        |[g, v, t, d, c]| f(g, v, t, d, c),
        |[g, v, t, d, c]| {
            let (value, gr) = f_grad(g, v, t, d, c);
            (value, [gr.grad, gr.value, gr.__t1, gr.__d_x, gr.f_grad])
        },
        &[
            [1.0, 2.0, 0.5, 0.25, 3.0],
            [-0.7, 0.3, 2.0, -1.0, 0.5],
            [0.1, -1.5, -0.4, 0.8, -2.0],
        ],
    );
    // By hand: with D = g·v + sin(t)·d·c, f = (D² + g)/2 + e^d.
    for [g, v, t, d, c] in [[1.0_f64, 2.0, 0.5, 0.25, 3.0], [-0.7, 0.3, 2.0, -1.0, 0.5]] {
        let dd = g * v + t.sin() * d * c;
        let (value, gr) = f_grad(g, v, t, d, c);
        close(value, (dd * dd + g) * 0.5 + d.exp());
        close(gr.grad, dd * v + 0.5);
        close(gr.value, dd * g);
        close(gr.__t1, dd * t.cos() * d * c);
        close(gr.__d_x, dd * t.sin() * c + d.exp());
        close(gr.f_grad, dd * t.sin() * d);
    }
    // `f_backward` adds into the gradient it is given.
    let mut acc = FGrad::default();
    let v1 = f_backward(1.0, 2.0, 0.0, 0.0, 3.0, &mut acc);
    let v2 = f_backward(1.0, 2.0, 0.0, 0.0, 3.0, &mut acc);
    assert_eq!((v1, v2), (3.5, 3.5));
    assert_eq!(
        acc,
        FGrad {
            grad: 9.0,
            value: 4.0,
            __t1: 0.0,
            __d_x: 2.0,
            f_grad: 0.0
        }
    );
}

// ----------------------------------------------------------------- branches

/// The same names as values of `if`/`else if`/`else`, as locals inside the
/// branches and as variables reassigned in a statement `if` (which the
/// expansion passes out of the branch under their own name).
mod branches {
    use grad::prelude::*;

    #[differentiate]
    pub fn f(x: f64, grad: f64, __t1: f64) -> f64 {
        let mut __d_x = x * grad;
        let __t2 = if __d_x > 0.0 {
            let __t3 = __d_x.sqrt();
            __t3 * __t1
        } else if __t1 > 1.0 {
            let __d_t2 = __t1.ln();
            __d_t2 * x
        } else {
            x - grad
        };
        if __t2 < 0.5 {
            __d_x *= 2.0;
        } else {
            let value = __t2 * __t2;
            __d_x += value;
        }
        let x_2 = __d_x + __t2;
        x_2 * x
    }
}

/// An early return (the expansion binds the function's value to `ret`) and a
/// `while` with `break` (its body's exit flag is `keep`), with a parameter
/// named `ret` and locals named `keep` and `left`.
mod early_exits {
    use grad::prelude::*;

    #[differentiate]
    pub fn f(x: f64, ret: f64) -> f64 {
        if x < -1.0 {
            return ret * x;
        }
        let mut keep = x;
        let mut left = 0;
        while left < 3 {
            keep = (keep * ret).sin() + x;
            left += 1;
            if keep > 1.2 {
                break;
            }
        }
        keep * ret
    }
}

#[test]
fn early_exit_names() {
    use early_exits::*;
    check(
        |[x, r]| f(x, r),
        |[x, r]| {
            let (value, g) = f_grad(x, r);
            (value, [g.x, g.ret])
        },
        &[[-2.0, 0.5], [0.3, 0.8], [0.9, 1.5], [0.5, -0.7]],
    );
    // By hand: the early return, f = ret·x.
    assert_eq!(f_grad(-2.0, 0.5), (-1.0, FGrad { x: 0.5, ret: -2.0 }));
    // By hand: one round, then `break` (sin(0.9·1.5) + 0.9 > 1.2):
    // k = sin(x r) + x, f = k r.
    let (x, r) = (0.9_f64, 1.5_f64);
    let k = (x * r).sin() + x;
    assert!(k > 1.2);
    let (value, g) = f_grad(x, r);
    close(value, k * r);
    close(g.x, ((x * r).cos() * r + 1.0) * r);
    close(g.ret, (x * r).cos() * x * r + k);
}

#[test]
fn branch_names() {
    use branches::*;
    // Every path: x·grad > 0 (t2 < 0.5 and not), t1 > 1, neither.
    check(
        |[x, g, t]| f(x, g, t),
        |[x, g, t]| {
            let (value, gr) = f_grad(x, g, t);
            (value, [gr.x, gr.grad, gr.__t1])
        },
        &[
            [1.0, 2.0, 0.25],
            [1.0, 2.0, 1.5],
            [-1.0, 2.0, 3.0],
            [-1.0, 2.0, 0.5],
            [0.5, -3.0, -0.5],
        ],
    );
    // By hand on the first path: x·g > 0, t2 = sqrt(x g)·t1 < 0.5, so
    // f = (2 x g + sqrt(x g) t1) x.
    let (x, g, t) = (1.0_f64, 2.0_f64, 0.25_f64);
    let r = (x * g).sqrt();
    let (value, gr) = f_grad(x, g, t);
    close(value, (2.0 * x * g + r * t) * x);
    close(
        gr.x,
        (2.0 * x * g + r * t) + x * (2.0 * g + t * g / (2.0 * r)),
    );
    close(gr.grad, x * (2.0 * x + t * x / (2.0 * r)));
    close(gr.__t1, x * r);
}

// ------------------------------------------------------------------- ranges

/// Loops over ranges: a recurrence (its values go on a tape, a `__t<n>`
/// variable), a reduction, a loop variable named like a temporary, `for _`
/// (whose index the expansion names `i`) beside a user local `i`, `.rev()`,
/// `.step_by()` (recorded), and a `for` with `break` (counted).
mod ranges {
    use grad::prelude::*;

    #[differentiate(wrt(w, __t1))]
    pub fn f(w: f64, __t1: f64, n: usize) -> f64 {
        let mut __t2 = __t1;
        for __t3 in 0..n {
            __t2 = (__t2 * w + __t3 as f64 * 0.1).tanh();
        }
        let mut __d_w = 0.0;
        for _ in 0..n {
            __d_w += w * __t2;
        }
        let mut i = 1.0;
        for __d_t2 in (0..n).rev() {
            i = i * w + __d_t2 as f64 * __t1;
        }
        let mut grad = 0.0;
        for value in (1..=n).step_by(2) {
            grad += (w * value as f64).sin() * i;
        }
        let mut __t4 = __t1;
        for __t5 in 0..10 {
            if __t5 >= n {
                break;
            }
            __t4 = __t4 * 0.5 + w * __t4.cos();
        }
        __t2 + __d_w + i * 0.1 + grad + __t4
    }
}

#[test]
fn range_loop_names() {
    use ranges::*;
    for n in [0, 1, 3, 4] {
        check(
            |[w, t]| f(w, t, n),
            |[w, t]| {
                let (value, g) = f_grad(w, t, n);
                (value, [g.w, g.__t1])
            },
            &[[0.5, 0.3], [-0.8, 1.2], [1.1, -0.6]],
        );
    }
    // By hand for n = 1: t2 = tanh(t w), d_w = w t2, i = w (k = 0),
    // grad = sin(w)·i, t4 = t/2 + w cos t.
    let (w, t) = (0.5_f64, 0.3_f64);
    let t2 = (t * w).tanh();
    let dt2 = 1.0 - t2 * t2;
    let (value, g) = f_grad(w, t, 1);
    close(
        value,
        t2 + w * t2 + w * 0.1 + w.sin() * w + t * 0.5 + w * t.cos(),
    );
    close(
        g.w,
        t * dt2 * (1.0 + w) + t2 + 0.1 + w.cos() * w + w.sin() + t.cos(),
    );
    close(g.__t1, w * dt2 * (1.0 + w) + 0.5 - w * t.sin());
}

// ------------------------------------------------------------------- slices

/// A differentiated slice named `grad` (its gradient field is `grad` too),
/// a slice of data named like an adjoint, elements named like temporaries
/// and adjoints, and a `while` loop whose counter is the user's `i`.
mod slices {
    use grad::prelude::*;

    #[differentiate(wrt(grad, value))]
    pub fn f(grad: &[f64], value: f64, __d_grad: &[f64]) -> f64 {
        let mut __t1 = 0.0;
        for (__t2, __d_value) in grad.iter().zip(__d_grad.iter()) {
            __t1 += __t2 * __d_value * value;
        }
        let mut __t3 = value;
        for __d_t3 in grad.iter() {
            __t3 = (__t3 * __d_t3).sin() + value;
        }
        let mut i = 0;
        let mut __t4 = 1.0;
        while i < grad.len() {
            __t4 *= grad[i] + 2.0;
            i += 1;
        }
        let mut __d_t4 = 0.0;
        for (i, __t5) in grad.iter().enumerate() {
            __d_t4 += __t5 * (i + 1) as f64;
        }
        __t1 + __t3 + __t4.ln() + __d_t4 * value
    }
}

#[test]
fn slice_loop_names() {
    use slices::*;
    let data = [0.5, -1.0, 2.0];
    check(
        |[a, b, c, v]| f(&[a, b, c], v, &data),
        |[a, b, c, v]| {
            let (value, g) = f_grad(&[a, b, c], v, &data);
            (value, [g.grad[0], g.grad[1], g.grad[2], g.value])
        },
        &[[0.3, -0.2, 0.9, 0.7], [1.5, 0.4, -0.6, -1.1]],
    );
    // By hand for one element: f = a d v + (sin(v a) + v) + ln(a + 2) + a v.
    let (a, v, d) = (0.3_f64, 0.7_f64, 0.5_f64);
    let (value, g) = f_grad(&[a], v, &[d]);
    close(
        value,
        a * d * v + (v * a).sin() + v + (a + 2.0).ln() + a * v,
    );
    close(g.grad[0], d * v + (v * a).cos() * v + 1.0 / (a + 2.0) + v);
    close(g.value, a * d + (v * a).cos() * a + 1.0 + a);
    // `f_backward` sizes the empty `Vec` of the slice named `grad`.
    let mut acc = FGrad::default();
    f_backward(&[a], v, &[d], &mut acc);
    f_backward(&[a], v, &[d], &mut acc);
    close(acc.grad[0], 2.0 * g.grad[0]);
    close(acc.value, 2.0 * g.value);
}

// ------------------------------------------------------------------- arrays

/// An array parameter named like a temporary, a 2-D array parameter named
/// `grad`, local arrays named like an adjoint (`__d_t1`, which is also the
/// name of the adjoint of `__t1`) and a temporary, overwritten in a loop
/// that reads them (the read elements are recorded).
mod arrays {
    use grad::prelude::*;

    #[allow(clippy::needless_range_loop)]
    #[differentiate]
    pub fn f(__t1: [f64; 3], grad: [[f64; 2]; 2]) -> f64 {
        let mut __d_t1 = [0.0; 3];
        for j in 0..3 {
            __d_t1[j] = __t1[j] * grad[j % 2][j / 2];
        }
        for j in 0..3 {
            __d_t1[j] = __d_t1[j].sin() * __t1[j];
        }
        let mut __t2 = [0.0; 2];
        for k in 0..2 {
            for j in 0..3 {
                __t2[k] += __d_t1[j] * grad[k][1 - k];
            }
        }
        let __d_grad = __t2[0] * __t2[1];
        __d_grad + __d_t1[2]
    }
}

#[test]
fn array_names() {
    use arrays::*;
    let unflat = |p: [f64; 7]| ([p[0], p[1], p[2]], [[p[3], p[4]], [p[5], p[6]]]);
    check(
        |p| {
            let (t, g) = unflat(p);
            f(t, g)
        },
        |p| {
            let (t, g) = unflat(p);
            let (value, gr) = f_grad(t, g);
            let [[a, b], [c, d]] = gr.grad;
            (value, [gr.__t1[0], gr.__t1[1], gr.__t1[2], a, b, c, d])
        },
        &[
            [0.5, -1.0, 2.0, 0.3, 0.7, -0.4, 1.1],
            [1.5, 0.2, -0.6, -0.9, 0.25, 0.8, -1.3],
        ],
    );
    // By hand: with e_j = sin(t_j m_j) t_j and m = (g00, g10, g01),
    // f = (Σe · g01)(Σe · g10) + e_2.
    let t = [0.5_f64, -1.0, 2.0];
    let g = [[0.3_f64, 0.7], [-0.4, 1.1]];
    let m = [g[0][0], g[1][0], g[0][1]];
    let e: Vec<f64> = (0..3).map(|j| (t[j] * m[j]).sin() * t[j]).collect();
    let s: f64 = e.iter().sum();
    let (value, gr) = f_grad(t, g);
    close(value, s * g[0][1] * s * g[1][0] + e[2]);
    // ∂e_j/∂t_j = cos(t_j m_j) t_j m_j + sin(t_j m_j).
    let de = |j: usize| (t[j] * m[j]).cos() * t[j] * m[j] + (t[j] * m[j]).sin();
    let ds = 2.0 * s * g[0][1] * g[1][0];
    close(gr.__t1[0], ds * de(0));
    close(gr.__t1[2], ds * de(2) + de(2));
}

// -------------------------------------------------------------------- calls

/// Callees whose parameters are named like the caller's generated names,
/// a caller with a parameter named like a callee's gradient struct and like
/// a callee's `_backward` companion, locals named like callee gradients
/// (`__t_grad`, `__g_grad`) and companions (`g_backward`), and a call
/// through a module path.
mod calls {
    use grad::prelude::*;

    #[differentiate]
    pub fn g(grad: f64, value: f64) -> f64 {
        grad * value.exp()
    }

    pub mod inner {
        use grad::prelude::*;

        #[differentiate]
        pub fn h(__t1: f64, __d_x: f64) -> f64 {
            let __t2 = __t1 - __d_x;
            __t2 * __t2
        }
    }

    #[differentiate(wrt(x, GGrad))]
    pub fn f(x: f64, GGrad: f64, h_backward: f64) -> f64 {
        let __t_grad = g(x, GGrad);
        let __g_grad = g(__t_grad, x);
        let g_backward = inner::h(x, __g_grad) * h_backward;
        let __h_grad = inner::h(g_backward, GGrad);
        __t_grad + g_backward + __h_grad
    }
}

#[test]
fn call_names() {
    use calls::*;
    check(
        |[x, c]| f(x, c, 0.5),
        |[x, c]| {
            let (value, g) = f_grad(x, c, 0.5);
            (value, [g.x, g.GGrad])
        },
        &[[0.3, 0.2], [-0.5, 0.7], [0.8, -0.4]],
    );
    // By hand: a = x e^c, b = a e^x, h1 = (x - b)², gb = k h1, h2 = (gb - c)²,
    // f = a + gb + h2.
    let (x, c, k) = (0.3_f64, 0.2_f64, 0.5_f64);
    let a = x * c.exp();
    let b = a * x.exp();
    let h1 = (x - b).powi(2);
    let gb = k * h1;
    let h2 = (gb - c).powi(2);
    let (value, g) = f_grad(x, c, k);
    close(value, a + gb + h2);
    let (da_dx, da_dc) = (c.exp(), a);
    let (db_dx, db_dc) = (da_dx * x.exp() + b, da_dc * x.exp());
    let dgb_dx = k * 2.0 * (x - b) * (1.0 - db_dx);
    let dgb_dc = k * 2.0 * (x - b) * -db_dc;
    close(g.x, da_dx + dgb_dx + 2.0 * (gb - c) * dgb_dx);
    close(g.GGrad, da_dc + dgb_dc + 2.0 * (gb - c) * (dgb_dc - 1.0));
}

/// Calls inside loops, with loop variables and locals named like the
/// caller's generated names, and a local named like the callee declared
/// after the loop that calls it (the reverse loop calls the callee's
/// companion, which the local does not hide).
mod looped_calls {
    use grad::prelude::*;

    #[differentiate]
    pub fn g(grad: f64, value: f64) -> f64 {
        (grad * value).sin() + value
    }

    // The index loop names its variable `i`, like the index the expansion
    // gives the loop over `x` above.
    #[allow(clippy::needless_range_loop)]
    #[differentiate(wrt(w, value))]
    pub fn f(w: f64, value: f64, x: &[f64]) -> f64 {
        let mut __t1 = value;
        for __t2 in x.iter() {
            let __g_grad = g(__t1 * w, __t2 * value);
            __t1 = __g_grad * 0.5 + __t2;
        }
        let mut __d_w = 0.0;
        for i in 0..x.len() {
            __d_w += g(w, x[i]) * __t1;
        }
        let g = __t1 * w;
        g * g + __d_w
    }
}

#[test]
fn call_names_in_loops() {
    use looped_calls::*;
    let x = [0.5, -1.0, 2.0];
    check(
        |[w, v]| f(w, v, &x),
        |[w, v]| {
            let (value, g) = f_grad(w, v, &x);
            (value, [g.w, g.value])
        },
        &[[0.3, 0.7], [-0.8, 1.2], [1.5, -0.4]],
    );
    // By hand for one element x0: t = g(v w, x0 v)/2 + x0, d = g(w, x0) t,
    // f = (t w)² + d, with g(a, b) = sin(a b) + b.
    let (w, v, x0) = (0.3_f64, 0.7_f64, 0.5_f64);
    let (a, b) = (v * w, x0 * v);
    let t = ((a * b).sin() + b) * 0.5 + x0;
    let gwx = (w * x0).sin() + x0;
    let (value, gr) = f_grad(w, v, &[x0]);
    close(value, (t * w).powi(2) + gwx * t);
    let c = (a * b).cos();
    let dt_dw = 0.5 * c * b * v;
    let dt_dv = 0.5 * (c * (b * w + a * x0) + x0);
    let dgwx_dw = (w * x0).cos() * x0;
    close(
        gr.w,
        2.0 * t * w * (dt_dw * w + t) + dgwx_dw * t + gwx * dt_dw,
    );
    close(gr.value, 2.0 * t * w * w * dt_dv + gwx * dt_dv);
}

/// Recursion through a parameter named `f_grad`: the recursive call goes
/// through the companion `f_grad`, so inside `f_backward` the parameter gets
/// another name.
mod recursion {
    use grad::prelude::*;

    #[differentiate(wrt(x, f_grad))]
    pub fn f(x: f64, f_grad: f64, n: u32) -> f64 {
        if n == 0 {
            x * f_grad
        } else {
            f(x.sin(), f_grad * x, n - 1) + f_grad
        }
    }
}

#[test]
fn recursion_through_a_parameter_named_like_the_companion() {
    use recursion::*;
    for n in 0..4 {
        check(
            |[x, c]| f(x, c, n),
            |[x, c]| {
                let (value, g) = f_grad(x, c, n);
                (value, [g.x, g.f_grad])
            },
            &[[0.4, 1.5], [-1.2, 0.3]],
        );
    }
    // By hand for n = 1: f = sin(x)·c·x + c.
    let (x, c) = (0.4_f64, 1.5_f64);
    let (value, g) = f_grad(x, c, 1);
    close(value, x.sin() * c * x + c);
    close(g.x, c * (x.cos() * x + x.sin()));
    close(g.f_grad, x.sin() * x + 1.0);
}

// ------------------------------------------------- runtime functions shadowed

/// Locals named like runtime functions and float methods, in straight-line
/// code: a constant `sigmoid`, a `sigmoid` bound to the result of a call of
/// `sigmoid`, `relu`, `exp`, `softplus`, `bce`, `mse`, `tanh`, `clamp`, all
/// used after they are bound, beside calls of the runtime functions and
/// methods of the same names.
mod shadow_runtime {
    use grad::prelude::*;

    #[differentiate]
    pub fn constant(x: f64) -> f64 {
        let sigmoid = 0.5;
        x * sigmoid
    }

    #[differentiate]
    pub fn f(x: f64, y: f64) -> f64 {
        let sigmoid = sigmoid(x * y);
        let relu = x * 2.0;
        let exp = relu.exp();
        let softplus = softplus(y) * sigmoid;
        let bce = bce(sigmoid, 0.3);
        let mse = mse(x, y);
        let tanh = x.tanh() * y;
        let clamp = clamp(tanh, -0.5, 0.5) + y.clamp(-1.0, 1.0);
        relu * sigmoid + exp * softplus + bce + mse + tanh + clamp + x.exp() + f64::exp(y)
    }

    /// The same names in a loop body and after a loop that calls nothing
    /// of those names.
    #[differentiate]
    pub fn looped(x: f64) -> f64 {
        let mut s = 0.0;
        for k in 0..3 {
            let relu = relu(x - k as f64);
            let sigmoid = s * x + relu;
            s = sigmoid.sin();
        }
        let exp = s.exp();
        exp * x
    }
}

#[test]
fn locals_shadowing_runtime_functions() {
    use shadow_runtime::*;
    let (value, g) = constant_grad(3.0);
    assert_eq!((value, g.x), (1.5, 0.5));

    check(
        |[x, y]| f(x, y),
        |[x, y]| {
            let (value, g) = f_grad(x, y);
            (value, [g.x, g.y])
        },
        &[[0.3, 0.4], [-0.6, 1.5], [1.2, -0.25]],
    );
    // By hand at (0.3, 0.4): tanh(x)·y = 0.116 is inside the clamp, y too.
    let (x, y) = (0.3_f64, 0.4_f64);
    let s = grad::sigmoid(x * y);
    let ds = s * (1.0 - s);
    let sp = grad::softplus(y);
    let e2x = (2.0 * x).exp();
    let th = x.tanh();
    let (value, g) = f_grad(x, y);
    close(value, f(x, y));
    // bce(s, 0.3)' in s = (s - 0.3) / (s (1 - s)); times ds = s - 0.3.
    let dbce = s - 0.3;
    close(
        g.x,
        2.0 * s
            + 2.0 * x * ds * y
            + 2.0 * e2x * sp * s
            + e2x * sp * ds * y
            + dbce * y
            + 2.0 * (x - y)
            + 2.0 * (1.0 - th * th) * y
            + x.exp(),
    );
    close(
        g.y,
        2.0 * x * ds * x + e2x * (grad::sigmoid(y) * s + sp * ds * x) + dbce * x - 2.0 * (x - y)
            + 2.0 * th
            + 1.0
            + y.exp(),
    );

    check(
        |[x]| looped(x),
        |[x]| {
            let (value, g) = looped_grad(x);
            (value, [g.x])
        },
        &[[0.5], [1.7], [2.5], [-0.3]],
    );
}

// ------------------------------------------------------------- user types

/// The gradient struct of `fn f` is `FGrad` by contract, so a user type
/// `FGrad` cannot live in the same module (tests/ui/
/// user_struct_named_like_gradient_struct.rs shows the error). What a user
/// can do: keep it in another module and import it under another name, or
/// import it with a glob (the generated item shadows a glob import).
mod user_types {
    pub mod model {
        /// The user's own `FGrad`, unrelated to any gradient.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct FGrad {
            pub rate: f64,
        }

        impl FGrad {
            pub const SCALE: f64 = 3.0;
        }

        /// A user type named like the gradient struct of `g`.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum GGrad {
            Up,
            Down,
        }

        pub const F_GRAD: f64 = 1.5;

        /// Constants named like generated locals, used through a path. (A
        /// constant of such a name in scope, imported or defined, would turn
        /// the generated `let` of that name into a pattern.)
        #[allow(non_upper_case_globals)]
        pub mod consts {
            pub const __t1: f64 = 0.25;
            pub const __d_x: f64 = 2.0;
            pub const grad: f64 = 0.5;
        }
    }

    pub mod with_alias {
        use super::model;
        use super::model::FGrad as Settings;
        use grad::prelude::*;

        /// Takes the user's `FGrad` (as `Settings`) and a user `GGrad`, and
        /// mentions constants named like generated locals through a path.
        #[differentiate(wrt(x))]
        pub fn f(x: f64, settings: Settings, mode: model::GGrad) -> f64 {
            let scaled = x * settings.rate * model::FGrad::SCALE + model::consts::__t1;
            let signed = if matches!(mode, model::GGrad::Up) {
                scaled
            } else {
                -scaled
            };
            signed * signed * model::consts::__d_x + x * model::consts::grad + model::F_GRAD
        }
    }

    pub mod with_glob {
        use super::model::*;
        use grad::prelude::*;

        /// A glob import brings in the user's `FGrad` and `GGrad`: the
        /// generated `FGrad` shadows the first; `GGrad` stays the user's.
        #[differentiate(wrt(x))]
        pub fn f(x: f64, mode: GGrad) -> f64 {
            if matches!(mode, GGrad::Up) {
                x * F_GRAD
            } else {
                x * x
            }
        }
    }

    /// A user type `GGrad` beside a function `g` that is not differentiated,
    /// called with no differentiated argument from a differentiated `f`.
    pub mod beside {
        use grad::prelude::*;

        pub struct GGrad {
            pub scale: f64,
        }

        pub fn g(k: f64) -> f64 {
            k * 2.0
        }

        #[differentiate(wrt(x))]
        pub fn f(x: f64, c: GGrad) -> f64 {
            x * x * g(c.scale)
        }
    }
}

#[test]
fn user_types_named_like_gradient_structs() {
    use user_types::*;
    for mode in [model::GGrad::Up, model::GGrad::Down] {
        let settings = model::FGrad { rate: 0.4 };
        check(
            |[x]| with_alias::f(x, settings, mode),
            |[x]| {
                let (value, g) = with_alias::f_grad(x, settings, mode);
                (value, [g.x])
            },
            &[[0.5], [-1.5]],
        );
        // By hand: s = ±(1.2 x + 0.25), f = 2 s² + x/2 + 1.5.
        let x = 0.5;
        let (value, g) = with_alias::f_grad(x, settings, mode);
        let s = 1.2 * x + 0.25;
        close(value, 2.0 * s * s + 0.5 * x + 1.5);
        close(g.x, 4.0 * s * 1.2 + 0.5);
        // The generated struct is `with_alias::FGrad`, the user's `model::FGrad`.
        let _: with_alias::FGrad = g;
    }

    let up = model::GGrad::Up;
    assert_eq!(
        with_glob::f_grad(2.0, up),
        (3.0, with_glob::FGrad { x: 1.5 })
    );
    let down = model::GGrad::Down;
    assert_eq!(
        with_glob::f_grad(-2.0, down),
        (4.0, with_glob::FGrad { x: -4.0 })
    );

    let (value, g) = beside::f_grad(3.0, beside::GGrad { scale: 0.5 });
    assert_eq!((value, g.x), (9.0, 6.0));
    assert_eq!(beside::f(3.0, beside::GGrad { scale: 0.5 }), 9.0);
}

// ------------------------------------------- std and runtime names shadowed

/// The expansion names std and the runtime by absolute paths
/// (`::std::vec::Vec`, `::core::option::Option::Some`,
/// `::core::default::Default`, `::grad::__private::…`), so a module that
/// defines its own `Vec`, `Option`, `Some`, `Default`, `Clone`, `Debug`,
/// `ArgGrad`, `GradField`, `prepare_grad` and `__private`, and imports
/// nothing from grad but the attribute, still gets the right gradient from
/// loops with tapes, slices, arrays and calls.
#[allow(dead_code, clippy::needless_range_loop)]
mod std_names_shadowed {
    struct Vec;
    struct Option;
    struct Some;
    struct Default;
    struct Clone;
    struct Copy;
    struct Debug;
    struct PartialEq;
    struct ArgGrad;
    struct GradField;
    fn prepare_grad() {}
    fn unreachable() {}
    mod __private {}
    mod derivatives {}

    #[grad::differentiate]
    pub fn g(a: f64, b: f64) -> f64 {
        grad::relu(a) * b.max(0.5)
    }

    #[grad::differentiate]
    pub fn f(w: &[f64], v: [f64; 2], b: f64) -> f64 {
        let mut h = b;
        for wi in w.iter() {
            h = (h * wi + v[0]).tanh();
        }
        let mut acc = [0.0; 2];
        for j in 0..2 {
            acc[j] = g(v[j] * h, b) + grad::sigmoid(v[1 - j]);
        }
        let mut n = 0;
        while n < w.len() {
            h = h * 0.5 + w[n].abs();
            n += 1;
        }
        acc[0] * acc[1] + h
    }
}

#[test]
fn std_and_runtime_names_shadowed() {
    use std_names_shadowed::*;
    check(
        |[a, c, d, e, b]| f(&[a, c], [d, e], b),
        |[a, c, d, e, b]| {
            let (value, g) = f_grad(&[a, c], [d, e], b);
            (value, [g.w[0], g.w[1], g.v[0], g.v[1], g.b])
        },
        &[[0.5, -0.3, 0.8, 1.2, 0.7], [-1.1, 0.6, 0.4, -0.9, 1.3]],
    );
    // By hand with w empty: h = b, acc_j = relu(v_j b)·max(b, 0.5) + σ(v_(1-j)).
    let (v, b) = ([0.8_f64, 1.2_f64], 0.7_f64);
    let s = [grad::sigmoid(v[0]), grad::sigmoid(v[1])];
    let acc = [v[0] * b * b + s[1], v[1] * b * b + s[0]];
    let (value, g) = f_grad(&[], v, b);
    close(value, acc[0] * acc[1] + b);
    assert!(g.w.is_empty());
    close(g.v[0], b * b * acc[1] + acc[0] * s[0] * (1.0 - s[0]));
    close(g.v[1], acc[0] * b * b + s[1] * (1.0 - s[1]) * acc[1]);
    close(g.b, 2.0 * v[0] * b * acc[1] + acc[0] * 2.0 * v[1] * b + 1.0);
}

/// Found by this suite: a parameter named like the function or its
/// `_backward`, generated names (`i`, `ret`) the user's code uses, locals
/// named like a function the body calls, declared after a loop that calls
/// it (the reverse loop comes after them), and a store that folds to
/// `h[1] = h[1]` (clippy's `self_assignment`).
mod found {
    use grad::prelude::*;

    #[differentiate]
    pub fn f(x: f64, f_backward: f64) -> f64 {
        x * f_backward
    }

    pub mod own {
        use grad::prelude::*;

        #[differentiate]
        pub fn f(f: f64, FGrad: f64) -> f64 {
            f * FGrad
        }
    }

    pub fn i() -> f64 {
        3.0
    }

    pub fn ret(k: usize) -> f64 {
        k as f64 + 0.5
    }

    #[differentiate]
    pub fn calls_i(x: &[f64]) -> f64 {
        let mut s = 0.0;
        for xi in x.iter() {
            s += xi * i();
        }
        s
    }

    #[differentiate]
    pub fn calls_ret(x: f64) -> f64 {
        if x < -10.0 {
            return 0.0;
        }
        let mut s = x;
        for k in 0..3 {
            s = (s * ret(k)).sin();
        }
        s
    }

    pub fn helper(k: usize) -> f64 {
        k as f64 * 0.25
    }

    #[differentiate]
    pub fn local_named_like_callees(x: f64) -> f64 {
        let mut s = x;
        for k in 0..2 {
            s = sigmoid(s * x) + helper(k);
        }
        let sigmoid = s * 2.0;
        let helper = x * 0.5;
        sigmoid * sigmoid + helper
    }

    #[differentiate]
    pub fn g(x: f64) -> f64 {
        x.sin()
    }

    #[differentiate]
    pub fn local_named_like_a_companion(x: f64) -> f64 {
        let g_grad = x * 2.0;
        let mut s = g(x) * g_grad;
        for _ in 0..2 {
            s = g(s);
        }
        let g_grad = s * 3.0;
        g_grad + x
    }

    #[differentiate]
    pub fn times_one(x: f64) -> f64 {
        let mut h = [0.0_f64; 2];
        h[1] += x;
        h[1] *= 1.0;
        x * h[1]
    }
}

#[test]
fn names_the_first_version_of_this_suite_found_broken() {
    check(
        |[x, y]| found::f(x, y),
        |[x, y]| {
            let (v, g) = found::f_grad(x, y);
            (v, [g.x, g.f_backward])
        },
        &[[1.5, -2.0]],
    );
    check(
        |[x, y]| found::own::f(x, y),
        |[x, y]| {
            let (v, g) = found::own::f_grad(x, y);
            (v, [g.f, g.FGrad])
        },
        &[[1.5, -2.0]],
    );
    let x = [0.5, -1.0, 2.0];
    let (v, g) = found::calls_i_grad(&x);
    assert_eq!(v, found::calls_i(&x));
    assert_eq!(g.x, vec![3.0; 3]);
    check(
        |[x]| found::calls_ret(x),
        |[x]| {
            let (v, g) = found::calls_ret_grad(x);
            (v, [g.x])
        },
        &[[0.3], [1.2], [-11.0]],
    );
    check(
        |[x]| found::local_named_like_callees(x),
        |[x]| {
            let (v, g) = found::local_named_like_callees_grad(x);
            (v, [g.x])
        },
        &[[0.3], [-1.2]],
    );
    check(
        |[x]| found::local_named_like_a_companion(x),
        |[x]| {
            let (v, g) = found::local_named_like_a_companion_grad(x);
            (v, [g.x])
        },
        &[[0.3], [-1.2]],
    );
    // x · x: 2x.
    assert_eq!(
        found::times_one_grad(1.5),
        (2.25, found::TimesOneGrad { x: 3.0 })
    );
}
