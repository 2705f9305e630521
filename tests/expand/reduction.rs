// A reduction over data, the shape of every per-sample loss (logistic
// regression, mean binary cross-entropy): the reverse loop is fused into
// the forward loop, so the gradient is one pass over the data, as a
// hand-written one is, and allocates nothing.
#[differentiate(wrt(w, b))]
pub fn logistic(w: [f64; 4], b: f64, x: &[f64], y: &[f64]) -> f64 {
    let n = y.len();
    let mut s = 0.0;
    for i in 0..n {
        let mut z = b;
        for k in 0..4 {
            z += w[k] * x[i * 4 + k];
        }
        s += bce(sigmoid(z), y[i]);
    }
    s / n as f64
}
