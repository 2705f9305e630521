// The seed notebook's neuron: the generated gradient should be no longer
// than a careful hand-written one.
#[differentiate(wrt(w, b))]
pub fn loss(w: f64, b: f64, x: f64, y: f64) -> f64 {
    let z = w * x + b;
    let p = sigmoid(z);
    bce(p, y)
}
