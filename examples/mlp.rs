//! A small multi-layer perceptron on Fisher's iris data, trained with the
//! gradient `#[differentiate]` writes for it.
//!
//! The network is 4-16-3: a `tanh` hidden layer of 16 units and a softmax
//! over the three species. Its weights are fixed-size arrays passed by value
//! (`w1: [[f64; 4]; 16]`, `b1: [f64; 16]`, `w2: [[f64; 16]; 3]`,
//! `b2: [f64; 3]`), so the generated `LossGrad` has exactly those array
//! types as fields and the update is a plain loop over arrays. The whole
//! loss, mean softmax cross-entropy over the training set, is one ordinary
//! function, [`loss`]: a loop over samples with a local hidden-layer array
//! `let mut h = [0.0; 16];` per sample, and the log-sum-exp written by hand
//! with the max subtracted for stability.
//!
//! What it does:
//!
//! 1. reads `examples/data/iris.csv` (150 rows, 4 features, classes 0
//!    setosa, 1 versicolor, 2 virginica; compiled in with `include_str!`),
//! 2. splits it 80/20 with a fixed shuffle (a 64-bit LCG, seed [`SEED`]),
//! 3. standardises the features with the training set's mean and standard
//!    deviation,
//! 4. initialises the weights deterministically (Glorot-uniform from the
//!    same LCG) and checks the generated gradient, all 131 components,
//!    against central finite differences,
//! 5. trains by full-batch gradient descent with momentum, reusing one
//!    gradient struct (`zero()` then `loss_backward`, which accumulates),
//!    printing progress every [`REPORT_EVERY`] epochs, and reports training
//!    and held-out accuracy.
//!
//! With only 30 held-out rows one mistake costs 3.3 points, so the held-out
//! accuracy depends on the split: 96.67 % with the seed used here, and
//! between 90 % and 100 % (mean 96.7 %) over seeds 0–13.
//!
//! Run it with `cargo run --example mlp`; a debug build takes about a
//! second.

use grad::check::{check_gradient, Tolerance};
use grad::prelude::*;

/// The data set, compiled into the binary so the example runs from anywhere.
const DATA: &str = include_str!("data/iris.csv");
/// Seed of the LCG that shuffles the rows and initialises the weights.
const SEED: u64 = 42;
/// Fraction of the rows used for training; the rest is held out.
const TRAIN_FRACTION: f64 = 0.8;
/// Gradient-descent step size.
const LEARNING_RATE: f64 = 0.1;
/// Momentum coefficient (heavy ball).
const MOMENTUM: f64 = 0.9;
/// Number of full-batch epochs.
const EPOCHS: usize = 300;
/// Print a progress line every this many epochs.
const REPORT_EVERY: usize = 50;

/// Input features.
const IN: usize = 4;
/// Hidden units.
const HIDDEN: usize = 16;
/// Classes.
const OUT: usize = 3;

/// Mean softmax cross-entropy of the 4-16-3 network over the rows of `x`
/// (row-major, `IN` features per row) with class labels `y`.
#[differentiate(wrt(w1, b1, w2, b2))]
fn loss(
    w1: [[f64; IN]; HIDDEN],
    b1: [f64; HIDDEN],
    w2: [[f64; HIDDEN]; OUT],
    b2: [f64; OUT],
    x: &[f64],
    y: &[usize],
) -> f64 {
    let n = y.len();
    let mut total = 0.0;
    for i in 0..n {
        // Hidden layer.
        let mut h = [0.0; HIDDEN];
        for j in 0..HIDDEN {
            let mut a = b1[j];
            for k in 0..IN {
                a += w1[j][k] * x[i * IN + k];
            }
            h[j] = tanh(a);
        }
        // Output logits.
        let mut z = [0.0; OUT];
        for c in 0..OUT {
            let mut a = b2[c];
            for j in 0..HIDDEN {
                a += w2[c][j] * h[j];
            }
            z[c] = a;
        }
        // -log softmax(z)[y] = logsumexp(z) - z[y], with the max subtracted.
        let m = z[0].max(z[1]).max(z[2]);
        let lse = m + ((z[0] - m).exp() + (z[1] - m).exp() + (z[2] - m).exp()).ln();
        total += lse - z[y[i]];
    }
    total / n as f64
}

/// The network's parameters.
#[derive(Clone, Copy)]
struct Params {
    w1: [[f64; IN]; HIDDEN],
    b1: [f64; HIDDEN],
    w2: [[f64; HIDDEN]; OUT],
    b2: [f64; OUT],
}

impl Params {
    /// Number of scalar parameters.
    const LEN: usize = HIDDEN * IN + HIDDEN + OUT * HIDDEN + OUT;

    const ZERO: Self = Params {
        w1: [[0.0; IN]; HIDDEN],
        b1: [0.0; HIDDEN],
        w2: [[0.0; HIDDEN]; OUT],
        b2: [0.0; OUT],
    };

    /// Glorot-uniform weights from `rng`, zero biases.
    fn init(rng: &mut Lcg) -> Self {
        let mut p = Self::ZERO;
        let a1 = (6.0 / (IN + HIDDEN) as f64).sqrt();
        for row in &mut p.w1 {
            for v in row {
                *v = a1 * rng.uniform();
            }
        }
        let a2 = (6.0 / (HIDDEN + OUT) as f64).sqrt();
        for row in &mut p.w2 {
            for v in row {
                *v = a2 * rng.uniform();
            }
        }
        p
    }

    fn loss(&self, x: &[f64], y: &[usize]) -> f64 {
        loss(self.w1, self.b1, self.w2, self.b2, x, y)
    }

    /// All parameters in one vector: w1, b1, w2, b2, row-major.
    fn flatten(&self) -> Vec<f64> {
        let mut v = Vec::with_capacity(Self::LEN);
        self.w1.iter().for_each(|r| v.extend_from_slice(r));
        v.extend_from_slice(&self.b1);
        self.w2.iter().for_each(|r| v.extend_from_slice(r));
        v.extend_from_slice(&self.b2);
        v
    }

    /// The inverse of [`Params::flatten`].
    fn unflatten(v: &[f64]) -> Self {
        let mut it = v.iter().copied();
        let mut p = Self::ZERO;
        p.w1.iter_mut()
            .flatten()
            .for_each(|x| *x = it.next().unwrap());
        p.b1.iter_mut().for_each(|x| *x = it.next().unwrap());
        p.w2.iter_mut()
            .flatten()
            .for_each(|x| *x = it.next().unwrap());
        p.b2.iter_mut().for_each(|x| *x = it.next().unwrap());
        assert!(it.next().is_none());
        p
    }

    /// The predicted class of one row (the largest logit).
    fn predict(&self, row: &[f64]) -> usize {
        let mut h = [0.0; HIDDEN];
        for (hj, (w, b)) in h.iter_mut().zip(self.w1.iter().zip(&self.b1)) {
            *hj = tanh(b + w.iter().zip(row).map(|(w, x)| w * x).sum::<f64>());
        }
        let logit =
            |c: usize| self.b2[c] + self.w2[c].iter().zip(&h).map(|(w, h)| w * h).sum::<f64>();
        (0..OUT)
            .max_by(|&a, &b| logit(a).total_cmp(&logit(b)))
            .unwrap()
    }

    fn accuracy(&self, data: &Data) -> f64 {
        let correct = (0..data.rows())
            .filter(|&i| self.predict(data.row(i)) == data.y[i])
            .count();
        correct as f64 / data.rows() as f64
    }
}

/// Feature rows and class labels.
struct Data {
    x: Vec<f64>,
    y: Vec<usize>,
}

impl Data {
    fn rows(&self) -> usize {
        self.y.len()
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * IN..(i + 1) * IN]
    }
}

/// Parses the `ROWS,FEATURES,class names…` header and the rows after it.
fn parse(text: &str) -> Data {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("empty data file").split(',').collect();
    let rows: usize = header[0].parse().expect("row count");
    let features: usize = header[1].parse().expect("feature count");
    assert_eq!(features, IN, "iris has {IN} features");
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        assert_eq!(fields.len(), IN + 1, "bad row: {line}");
        x.extend(
            fields[..IN]
                .iter()
                .map(|f| f.parse::<f64>().expect("a number")),
        );
        y.push(fields[IN].parse().expect("a class index"));
    }
    assert_eq!(y.len(), rows, "the header promises {rows} rows");
    Data { x, y }
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

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f64 {
        2.0 * (self.next() as f64 / (1u64 << 31) as f64) - 1.0
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
fn split(data: &Data, rng: &mut Lcg) -> (Data, Data) {
    let mut order: Vec<usize> = (0..data.rows()).collect();
    rng.shuffle(&mut order);
    let n_train = (TRAIN_FRACTION * data.rows() as f64).round() as usize;
    let take = |idx: &[usize]| Data {
        x: idx.iter().flat_map(|&i| data.row(i)).copied().collect(),
        y: idx.iter().map(|&i| data.y[i]).collect(),
    };
    (take(&order[..n_train]), take(&order[n_train..]))
}

/// Standardises both sets with the mean and (population) standard deviation
/// of each feature over the training set only.
fn standardise(train: &mut Data, test: &mut Data) {
    let n = train.rows() as f64;
    for k in 0..IN {
        let mean = (0..train.rows()).map(|i| train.x[i * IN + k]).sum::<f64>() / n;
        let var = (0..train.rows())
            .map(|i| (train.x[i * IN + k] - mean).powi(2))
            .sum::<f64>()
            / n;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        for set in [&mut *train, &mut *test] {
            for i in 0..set.rows() {
                set.x[i * IN + k] = (set.x[i * IN + k] - mean) / std;
            }
        }
    }
}

/// One momentum step, elementwise: `v ← μ·v − η·g`, then `p ← p + v`.
fn step(p: &mut [f64], v: &mut [f64], g: &[f64]) {
    for ((p, v), g) in p.iter_mut().zip(v.iter_mut()).zip(g) {
        *v = MOMENTUM * *v - LEARNING_RATE * g;
        *p += *v;
    }
}

fn main() {
    let data = parse(DATA);
    let mut rng = Lcg(SEED);
    let (mut train, mut test) = split(&data, &mut rng);
    standardise(&mut train, &mut test);
    println!(
        "iris: {} rows, {IN} features, {OUT} classes; {} train / {} held out (seed {SEED})",
        data.rows(),
        train.rows(),
        test.rows()
    );

    let mut p = Params::init(&mut rng);

    // Check the generated gradient at the initial point against central
    // finite differences over all parameters, flattened.
    let (_, g) = loss_grad(p.w1, p.b1, p.w2, p.b2, &train.x, &train.y);
    let analytic = Params {
        w1: g.w1,
        b1: g.b1,
        w2: g.w2,
        b2: g.b2,
    }
    .flatten();
    let f = |v: &[f64]| Params::unflatten(v).loss(&train.x, &train.y);
    match check_gradient(f, &p.flatten(), &analytic, Tolerance::default()) {
        Ok(()) => println!(
            "gradient check: {} components match central differences",
            Params::LEN
        ),
        Err(e) => panic!("gradient check failed: {e}"),
    }

    // Full-batch gradient descent with momentum. One gradient struct for
    // the whole run: `zero()` is PyTorch's `zero_grad()`, `loss_backward` is
    // `backward()`, which ADDS into the struct.
    let mut grad = LossGrad::default();
    let mut velocity = LossGrad::default(); // the same shapes, all zero
    for epoch in 1..=EPOCHS {
        grad.zero();
        let value = loss_backward(p.w1, p.b1, p.w2, p.b2, &train.x, &train.y, &mut grad);
        if epoch == 1 || epoch % REPORT_EVERY == 0 {
            println!(
                "epoch {epoch:4}  loss {value:.4}  train accuracy {:.2}%",
                100.0 * p.accuracy(&train)
            );
        }
        step(
            p.w1.as_flattened_mut(),
            velocity.w1.as_flattened_mut(),
            grad.w1.as_flattened(),
        );
        step(&mut p.b1, &mut velocity.b1, &grad.b1);
        step(
            p.w2.as_flattened_mut(),
            velocity.w2.as_flattened_mut(),
            grad.w2.as_flattened(),
        );
        step(&mut p.b2, &mut velocity.b2, &grad.b2);
    }

    // The plain `loss` is still an ordinary function: evaluate it on both sets.
    for (name, set) in [("train", &train), ("held-out", &test)] {
        println!(
            "final {name:8}  loss {:.4}  accuracy {:.2}% ({} rows)",
            p.loss(&set.x, &set.y),
            100.0 * p.accuracy(set),
            set.rows()
        );
    }
}
