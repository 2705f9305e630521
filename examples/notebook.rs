//! The seed notebook (a PyTorch autograd walk-through), cell by cell, with
//! `#[differentiate]` in place of `requires_grad` and `.backward()`.
//!
//! Run it with `cargo run --example notebook`; read what the macro wrote with
//! `cargo expand --example notebook`.

use grad::prelude::*;

// In [21]: target = x ** 2
#[differentiate]
fn square(x: f64) -> f64 {
    x.powi(2)
}

// In [25]: target = x ** 2; z = torch.sin(target)
#[differentiate]
fn sin_of_square(x: f64) -> f64 {
    let target = x.powi(2);
    target.sin()
}

// In [33]: the notebook's own loss, epsilon clamp included.
#[differentiate]
fn bce_loss(y_pred: f64, target: f64) -> f64 {
    let epsilon = 1e-7; // to avoid log(0)
    let prediction = clamp(y_pred, epsilon, 1.0 - epsilon);
    -(target * prediction.ln() + (1.0 - target) * (1.0 - prediction).ln())
}

// In [31]-[34]: the neuron, through the notebook's `bce_loss`; the call is
// differentiated through (chain rule across functions).
#[differentiate(wrt(w, b))]
fn neuron(w: f64, b: f64, x: f64, target: f64) -> f64 {
    let z = w * x + b; // linear transformation
    let y_pred = sigmoid(z); // activation function
    bce_loss(y_pred, target) // loss function
}

// The same neuron with the runtime's `bce` (same ε = 1e-7 clamp) ...
#[differentiate(wrt(w, b))]
fn neuron_runtime_bce(w: f64, b: f64, x: f64, target: f64) -> f64 {
    let z = w * x + b;
    bce(sigmoid(z), target)
}

// ... and as a pipeline.
#[differentiate(wrt(w, b))]
fn neuron_chain(w: f64, b: f64, x: f64, target: f64) -> f64 {
    chain!(w * x + b -> sigmoid -> bce(target))
}

fn main() {
    println!("### Simple Linear Function");
    let x = 3.0;
    let (target, grad) = square_grad(x);
    println!("In [22]: x, target          -> {x}, {target}");
    println!("In [24]: x.grad             -> {}", grad.x);

    println!("\n#### Nested function");
    let (z, grad) = sin_of_square_grad(x);
    println!("In [26]: x, target, z       -> {x}, {}, {z:.4}", x.powi(2));
    println!("In [28]: x.grad             -> {:.4}", grad.x);

    println!("\n### Autograd for a complete NN");
    let (x, target) = (6.0, 0.0); // cgpa, predicted 0/1
    let (w, b) = (1.0, 0.0);
    let z = w * x + b;
    println!("In [31]: z                  -> {z}");
    println!("In [32]: y_pred             -> {:.4}", sigmoid(z));
    let (loss, grad) = neuron_grad(w, b, x, target);
    show_neuron("the notebook's bce_loss", loss, grad.w, grad.b);
    let (loss, grad) = neuron_runtime_bce_grad(w, b, x, target);
    show_neuron("grad::bce", loss, grad.w, grad.b);
    let (loss, grad) = neuron_chain_grad(w, b, x, target);
    show_neuron(
        "chain!(w * x + b -> sigmoid -> bce(target))",
        loss,
        grad.w,
        grad.b,
    );

    println!("\n#### Clearing Grads");
    let x = 6.0;
    let mut grad = SquareGrad::default(); // x.grad starts at zero
    let mut y = 0.0;
    for _ in 0..3 {
        // if you re-run the forward and backward pass, gradients accumulate
        y = square_backward(x, &mut grad);
    }
    println!("In [51]: y                  -> {y}");
    println!("In [52]: x.grad (3 passes)  -> {}", grad.x);
    grad.zero(); // x.grad.zero_()
    println!("In [55]: x.grad.zero_()     -> {}", grad.x);
}

fn show_neuron(how: &str, loss: f64, dw: f64, db: f64) {
    println!("In [34]: loss               -> {loss:.4}    [{how}]");
    println!("In [36]: w.grad, b.grad     -> {dw:.4}, {db:.4}");
}
