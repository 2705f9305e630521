// A call of another #[differentiate] function is differentiated through its
// `_grad` companion.
#[differentiate]
pub fn bce_loss(y_pred: f64, target: f64) -> f64 {
    let epsilon = 1e-7;
    let prediction = clamp(y_pred, epsilon, 1.0 - epsilon);
    -(target * prediction.ln() + (1.0 - target) * (1.0 - prediction).ln())
}

#[differentiate(wrt(w, b))]
pub fn neuron(w: f64, b: f64, x: f64, target: f64) -> f64 {
    let y_pred = sigmoid(w * x + b);
    bce_loss(y_pred, target)
}
