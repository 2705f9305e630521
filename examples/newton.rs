//! Second-order optimisation with grad: the n-dimensional Rosenbrock function
//! minimised four ways:
//!
//! * **Newton's method** with the exact Hessian from `rosenbrock_hessian`
//!   (solved by nalgebra's Cholesky, shifted by a multiple of the identity
//!   where the Hessian is not positive definite), kept globally convergent
//!   two ways: by the *watchdog* (full Newton steps, even ones that go
//!   uphill for a while, with a return to the last good point and a line
//!   search there if a few of them in a row fail to decrease the value;
//!   Chamberlain, Powell, Lemaréchal & Pedersen 1982), and by a backtracking
//!   line search on every step;
//! * **Newton-CG**, the matrix-free variant for large problems: the Newton
//!   system is solved by conjugate gradients using only Hessian-vector
//!   products from `rosenbrock_hvp` (one forward-over-reverse sweep each, as
//!   cheap as a few gradients, never forming the n × n Hessian);
//! * **gradient descent** with the same line search and `rosenbrock_grad`.
//!
//! Two problems: n = 2 from the classic start `(−1.2, 1)`, and n = 10 (or
//! the first argument) from the origin. Newton with the watchdog takes the
//! full steps that cross the curved valley and solves the classic problem
//! in a handful of iterations; with a line search on every step it creeps
//! along the valley for a few dozen; both end in quadratic convergence (the
//! example prints the last gradient norms). Gradient descent needs tens of
//! thousands. (From `(−1.2, 1, −1.2, 1, …)` in 10 dimensions every method
//! finds the local minimum near `x₁ = −1`, which is why the second problem
//! starts at the origin.)
//!
//! ```sh
//! cargo run --release --example newton            # n = 10
//! cargo run --release --example newton -- 50      # any n ≥ 2
//! ```
//!
//! It prints, for each method, the iterations, the derivative evaluations,
//! the final value, gradient norm and distance to the minimum `(1, …, 1)`.

use grad::prelude::*;
use nalgebra::{DMatrix, DVector};

/// `Σ 100 (x[i+1] − x[i]²)² + (1 − x[i])²`: minimum 0 at `(1, …, 1)`.
#[differentiate(hessian)]
fn rosenbrock(x: &[f64]) -> f64 {
    let mut total = 0.0;
    for i in 0..x.len() - 1 {
        total += 100.0 * (x[i + 1] - x[i].powi(2)).powi(2) + (1.0 - x[i]).powi(2);
    }
    total
}

/// Stop when the gradient's norm is below this.
const TOLERANCE: f64 = 1e-10;

/// What a run ended with.
struct Report {
    iterations: usize,
    /// The gradient norm at the last few iterations.
    last_gradients: Vec<f64>,
    /// Gradients, Hessians and Hessian-vector products computed.
    evaluations: String,
    x: Vec<f64>,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Backtracking (Armijo) along `step` from `x`, where the value is `f` and
/// the gradient `g`: the longest of 1, ½, ¼, … that decreases the value
/// enough.
fn line_search(x: &[f64], f: f64, g: &[f64], step: &[f64]) -> Vec<f64> {
    let slope = dot(g, step);
    let mut t = 1.0;
    loop {
        let candidate: Vec<f64> = x.iter().zip(step).map(|(x, s)| x + t * s).collect();
        if rosenbrock(&candidate) <= f + 1e-4 * t * slope || t < 1e-16 {
            return candidate;
        }
        t *= 0.5;
    }
}

/// A descent direction: `step` if it is one, else the negative gradient.
fn descent(step: Vec<f64>, g: &[f64]) -> Vec<f64> {
    if dot(&step, g) < 0.0 {
        step
    } else {
        g.iter().map(|g| -g).collect()
    }
}

/// The value, the gradient and the Newton step `−H⁻¹ g` at `x`. Where the
/// Hessian is not positive definite (the valley's walls), λI is added until
/// it is (Nocedal & Wright, algorithm 3.3), so the step is a descent
/// direction.
fn newton_step(x: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let n = x.len();
    let (f, g, h) = rosenbrock_hessian(x);
    let h = DMatrix::from_fn(n, n, |i, j| h[i][j]);
    let rhs = DVector::from_iterator(n, g.x.iter().map(|g| -g));
    let mut lambda = 0.0;
    let step = loop {
        let shifted = &h + DMatrix::identity(n, n) * lambda;
        if let Some(c) = shifted.cholesky() {
            break c.solve(&rhs);
        }
        lambda = (2.0 * lambda).max(1e-3 * h.norm());
    };
    let step = descent(step.iter().copied().collect(), &g.x);
    (f, g.x, step)
}

/// A point the watchdog can return to: its value, gradient and Newton step.
struct Checkpoint {
    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    step: Vec<f64>,
}

/// How Newton's steps are kept from diverging.
#[derive(Clone, Copy)]
enum Globalisation {
    /// Backtracking on every step.
    LineSearch,
    /// Full steps; after this many in a row without a sufficient decrease
    /// from the last checkpoint, back to it and a line search there.
    Watchdog(usize),
}

fn newton(mut x: Vec<f64>, limit: usize, how: Globalisation) -> Report {
    let n = x.len();
    let mut iterations = 0;
    let mut last_gradients = vec![];
    // The watchdog's checkpoint, and the relaxed (full) steps taken since.
    let mut checkpoint: Option<Checkpoint> = None;
    let mut relaxed = 0;
    while iterations < limit {
        let (f, g, step) = newton_step(&x);
        last_gradients.push(norm(&g));
        if norm(&g) < TOLERANCE {
            break;
        }
        match how {
            Globalisation::LineSearch => x = line_search(&x, f, &g, &step),
            Globalisation::Watchdog(patience) => {
                let decreased = checkpoint
                    .as_ref()
                    .is_some_and(|c| f <= c.f + 1e-4 * dot(&c.g, &c.step));
                if checkpoint.is_none() || decreased {
                    checkpoint = Some(Checkpoint {
                        x: x.clone(),
                        f,
                        g: g.clone(),
                        step: step.clone(),
                    });
                    relaxed = 0;
                }
                if relaxed < patience {
                    x = x.iter().zip(&step).map(|(x, s)| x + s).collect();
                    relaxed += 1;
                } else {
                    // The full steps did not pay off: back to the
                    // checkpoint, and a safe step from there.
                    let c = checkpoint.take().expect("set above");
                    x = line_search(&c.x, c.f, &c.g, &c.step);
                }
            }
        }
        iterations += 1;
    }
    let keep = last_gradients.len().saturating_sub(5);
    Report {
        iterations,
        last_gradients: last_gradients.split_off(keep),
        evaluations: format!(
            "{} Hessians ({} Hessian-vector products)",
            iterations + 1,
            (iterations + 1) * n
        ),
        x,
    }
}

/// Newton-CG (Nocedal & Wright, algorithm 7.1): conjugate gradients on
/// `H p = −g` with `H·d` from `rosenbrock_hvp`, stopped at a relative
/// residual that tightens as the gradient shrinks, or at negative curvature.
fn newton_cg(mut x: Vec<f64>, limit: usize) -> Report {
    let n = x.len();
    let mut iterations = 0;
    let mut products = 0;
    let mut gradients = 0;
    while iterations < limit {
        let (f, g) = rosenbrock_grad(&x);
        gradients += 1;
        let gnorm = norm(&g.x);
        if gnorm < TOLERANCE {
            break;
        }
        let eps = gnorm.sqrt().min(0.5) * gnorm;
        let mut p = vec![0.0; n];
        let mut r = g.x.clone();
        let mut d: Vec<f64> = r.iter().map(|r| -r).collect();
        for _ in 0..n {
            let (_, _, hd) = rosenbrock_hvp(&x, &d);
            products += 1;
            let curvature = dot(&d, &hd.x);
            if curvature <= 0.0 {
                if p.iter().all(|&v| v == 0.0) {
                    p.clone_from(&d);
                }
                break;
            }
            let alpha = dot(&r, &r) / curvature;
            let r_old = dot(&r, &r);
            for k in 0..n {
                p[k] += alpha * d[k];
                r[k] += alpha * hd.x[k];
            }
            if norm(&r) < eps {
                break;
            }
            let beta = dot(&r, &r) / r_old;
            for k in 0..n {
                d[k] = -r[k] + beta * d[k];
            }
        }
        let step = descent(p, &g.x);
        x = line_search(&x, f, &g.x, &step);
        iterations += 1;
    }
    Report {
        iterations,
        last_gradients: vec![],
        evaluations: format!("{gradients} gradients, {products} Hessian-vector products"),
        x,
    }
}

fn gradient_descent(mut x: Vec<f64>, limit: usize) -> Report {
    let mut iterations = 0;
    while iterations < limit {
        let (f, g) = rosenbrock_grad(&x);
        if norm(&g.x) < TOLERANCE {
            break;
        }
        let step: Vec<f64> = g.x.iter().map(|g| -g).collect();
        x = line_search(&x, f, &g.x, &step);
        iterations += 1;
    }
    Report {
        iterations,
        last_gradients: vec![],
        evaluations: format!("{} gradients", iterations + 1),
        x,
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("the dimension is a number"))
        .unwrap_or(10);
    assert!(n >= 2, "Rosenbrock needs n ≥ 2");
    compare("n = 2 from the classic start (−1.2, 1)", vec![-1.2, 1.0]);
    println!();
    compare(&format!("n = {n} from the origin"), vec![0.0; n]);
}

/// Runs the three methods from `start` and prints a table.
fn compare(title: &str, start: Vec<f64>) {
    println!("Rosenbrock, {title}; minimum 0 at (1, …, 1)");
    println!(
        "{:<19} {:>10} {:>11} {:>11} {:>14}  evaluations",
        "method", "iterations", "f(x)", "|∇f(x)|", "|x − (1,…,1)|"
    );
    let runs = [
        (
            "Newton, watchdog",
            newton(start.clone(), 1000, Globalisation::Watchdog(3)),
        ),
        (
            "Newton, line search",
            newton(start.clone(), 1000, Globalisation::LineSearch),
        ),
        ("Newton-CG (hvp)", newton_cg(start.clone(), 1000)),
        ("gradient descent", gradient_descent(start, 200_000)),
    ];
    for (name, report) in &runs {
        let (f, g) = rosenbrock_grad(&report.x);
        let error = norm(&report.x.iter().map(|x| x - 1.0).collect::<Vec<_>>());
        println!(
            "{name:<19} {:>10} {:>11.3e} {:>11.3e} {:>14.3e}  {}",
            report.iterations,
            f,
            norm(&g.x),
            error,
            report.evaluations
        );
    }
    let tail: Vec<String> = runs[0]
        .1
        .last_gradients
        .iter()
        .map(|g| format!("{g:.1e}"))
        .collect();
    println!(
        "Newton (watchdog), last gradient norms: {} (quadratic convergence: the Hessian is exact)",
        tail.join(" → ")
    );
}
