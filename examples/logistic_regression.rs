//! Logistic regression on the Breast Cancer Wisconsin (Diagnostic) data set,
//! trained by full-batch gradient descent with a `#[differentiate]` loss.
//!
//! The whole model is one ordinary Rust function, [`loss`]: a loop over the
//! training rows that computes each logit `z = w·x + b` and averages
//! `bce_with_logits(z, y)`, plus a small L2 penalty on `w`. The macro writes
//! `loss_backward`, which the training loop calls once per epoch on a single
//! reused `LossGrad`, zeroing it first: PyTorch's `opt.zero_grad();
//! loss.backward(); opt.step()` without a tape.
//!
//! What it does:
//!
//! 1. reads `examples/data/breast_cancer.csv` (569 rows, 30 features,
//!    0 = malignant, 1 = benign; compiled in with `include_str!`),
//! 2. splits it 80/20 with a fixed shuffle (a 64-bit LCG, seed [`SEED`]),
//! 3. standardises every feature with the training set's mean and standard
//!    deviation,
//! 4. checks the generated gradient against central finite differences at
//!    the initial point,
//! 5. trains, printing the loss and training accuracy every
//!    [`REPORT_EVERY`] epochs, and reports training and held-out accuracy.
//!
//! Held-out accuracy is 96.49 % with the seed used here (between 96.5 % and
//! 100 %, mean 98.2 %, over seeds 0–13).
//!
//! Run it with `cargo run --example logistic_regression` (a debug build is
//! fast enough: about a second).

use grad::check::{check_gradient, Tolerance};
use grad::prelude::*;

/// The data set, compiled into the binary so the example runs from anywhere.
const DATA: &str = include_str!("data/breast_cancer.csv");
/// Seed of the LCG that shuffles the rows before the 80/20 split.
const SEED: u64 = 42;
/// Fraction of the rows used for training; the rest is held out.
const TRAIN_FRACTION: f64 = 0.8;
/// Gradient-descent step size.
const LEARNING_RATE: f64 = 0.5;
/// Weight of the L2 penalty `λ/2 · |w|²`.
const LAMBDA: f64 = 1e-3;
/// Number of full-batch epochs.
const EPOCHS: usize = 300;
/// Print a progress line every this many epochs.
const REPORT_EVERY: usize = 50;

/// Mean binary cross-entropy of a logistic model over the rows of `x`
/// (row-major, `y.len()` rows of `w.len()` features), plus `λ/2 · |w|²`.
#[differentiate(wrt(w, b))]
fn loss(w: &[f64], b: f64, x: &[f64], y: &[f64], lambda: f64) -> f64 {
    let d = w.len();
    let n = y.len();
    let mut total = 0.0;
    for i in 0..n {
        let mut z = b;
        for j in 0..d {
            z += w[j] * x[i * d + j];
        }
        total += bce_with_logits(z, y[i]);
    }
    let mut norm2 = 0.0;
    for &wj in w.iter() {
        norm2 += wj * wj;
    }
    total / n as f64 + 0.5 * lambda * norm2
}

/// Feature rows and 0/1 labels.
struct Data {
    x: Vec<f64>,
    y: Vec<f64>,
    features: usize,
}

impl Data {
    fn rows(&self) -> usize {
        self.y.len()
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.features..(i + 1) * self.features]
    }
}

/// Parses the `ROWS,FEATURES,class names…` header and the rows after it.
fn parse(text: &str) -> Data {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("empty data file").split(',').collect();
    let rows: usize = header[0].parse().expect("row count");
    let features: usize = header[1].parse().expect("feature count");
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<f64> = line
            .split(',')
            .map(|f| f.trim().parse().expect("a number"))
            .collect();
        assert_eq!(fields.len(), features + 1, "bad row: {line}");
        x.extend_from_slice(&fields[..features]);
        y.push(fields[features]);
    }
    assert_eq!(y.len(), rows, "the header promises {rows} rows");
    Data { x, y, features }
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Fisher–Yates shuffle.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Splits `data` into training and held-out sets by a fixed shuffle.
fn split(data: &Data) -> (Data, Data) {
    let mut order: Vec<usize> = (0..data.rows()).collect();
    Lcg(SEED).shuffle(&mut order);
    let n_train = (TRAIN_FRACTION * data.rows() as f64).round() as usize;
    let take = |idx: &[usize]| Data {
        x: idx.iter().flat_map(|&i| data.row(i)).copied().collect(),
        y: idx.iter().map(|&i| data.y[i]).collect(),
        features: data.features,
    };
    (take(&order[..n_train]), take(&order[n_train..]))
}

/// Standardises both sets with the mean and (population) standard deviation
/// of each feature over the training set only.
fn standardise(train: &mut Data, test: &mut Data) {
    let d = train.features;
    let n = train.rows() as f64;
    for j in 0..d {
        let mean = (0..train.rows()).map(|i| train.x[i * d + j]).sum::<f64>() / n;
        let var = (0..train.rows())
            .map(|i| (train.x[i * d + j] - mean).powi(2))
            .sum::<f64>()
            / n;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        for set in [&mut *train, &mut *test] {
            for i in 0..set.rows() {
                set.x[i * d + j] = (set.x[i * d + j] - mean) / std;
            }
        }
    }
}

/// Fraction of rows whose predicted class (logit > 0) matches the label.
fn accuracy(w: &[f64], b: f64, data: &Data) -> f64 {
    let correct = (0..data.rows())
        .filter(|&i| {
            let z = b + w.iter().zip(data.row(i)).map(|(w, x)| w * x).sum::<f64>();
            (z > 0.0) == (data.y[i] > 0.5)
        })
        .count();
    correct as f64 / data.rows() as f64
}

fn main() {
    let data = parse(DATA);
    let (mut train, mut test) = split(&data);
    standardise(&mut train, &mut test);
    println!(
        "breast cancer: {} rows, {} features; {} train / {} held out (shuffle seed {SEED})",
        data.rows(),
        data.features,
        train.rows(),
        test.rows()
    );

    // A small deterministic starting point (the loss is convex, so any start
    // will do; a nonzero `w` makes the check below exercise the L2 term too).
    let d = train.features;
    let mut rng = Lcg(SEED + 1);
    let mut w: Vec<f64> = (0..d)
        .map(|_| 0.02 * (rng.next() as f64 / (1u64 << 31) as f64 - 0.5))
        .collect();
    let mut b = 0.0;

    // Check the generated gradient at the initial point against central
    // finite differences, over all d + 1 parameters (w then b).
    let (_, g) = loss_grad(&w, b, &train.x, &train.y, LAMBDA);
    let mut point = w.clone();
    point.push(b);
    let mut analytic = g.w.clone();
    analytic.push(g.b);
    let f = |p: &[f64]| loss(&p[..d], p[d], &train.x, &train.y, LAMBDA);
    match check_gradient(f, &point, &analytic, Tolerance::default()) {
        Ok(()) => println!(
            "gradient check: {} components match central differences",
            point.len()
        ),
        Err(e) => panic!("gradient check failed: {e}"),
    }

    // Full-batch gradient descent. One gradient struct for the whole run:
    // `zero()` is PyTorch's `zero_grad()`, `loss_backward` is `backward()`,
    // which ADDS into the struct (an empty `Vec` is sized on first use).
    let mut grad = LossGrad::default();
    for epoch in 1..=EPOCHS {
        grad.zero();
        let value = loss_backward(&w, b, &train.x, &train.y, LAMBDA, &mut grad);
        if epoch == 1 || epoch % REPORT_EVERY == 0 {
            // Both numbers are for the parameters the gradient was taken at.
            println!(
                "epoch {epoch:4}  loss {value:.4}  train accuracy {:.2}%",
                100.0 * accuracy(&w, b, &train)
            );
        }
        for (wj, gj) in w.iter_mut().zip(&grad.w) {
            *wj -= LEARNING_RATE * gj;
        }
        b -= LEARNING_RATE * grad.b;
    }

    // The plain `loss` is still an ordinary function: evaluate the data term
    // (λ = 0) on both sets.
    for (name, set) in [("train", &train), ("held-out", &test)] {
        println!(
            "final {name:8}  loss {:.4}  accuracy {:.2}% ({} rows)",
            loss(&w, b, &set.x, &set.y, 0.0),
            100.0 * accuracy(&w, b, set),
            set.rows()
        );
    }
}
