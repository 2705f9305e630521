// A stencil over a slice (Rosenbrock, W2): iteration `i` reads `x[i]` and
// `x[i + 1]`. `f_backward` takes the part of `x` the loop reads once,
// before the loop (`x_window`), so the reads in the loop need no bounds
// checks; the contribution to `grad.x[i + 1]` is carried to the next
// iteration in a variable.
#[differentiate]
pub fn rosenbrock(x: &[f64]) -> f64 {
    let n = x.len();
    let mut total = 0.0;
    for i in 0..n - 1 {
        total += 100.0 * (x[i + 1] - x[i].powi(2)).powi(2) + (1.0 - x[i]).powi(2);
    }
    total
}

// The read of `x[i + 1]` only happens when `i + 1 < n`: no window, since
// checking the whole range up front would panic where the function does not.
#[differentiate(wrt(x))]
pub fn guarded(x: &[f64], m: usize) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..m {
        if i + 1 < n {
            s += x[i + 1].sin();
        }
    }
    s
}
