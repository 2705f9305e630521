//! Runtime of [grad](https://github.com/grad-rs/grad), compile-time
//! automatic differentiation for Rust.
//!
//! The `#[differentiate]` macro turns the body of an ordinary function into
//! gradient code at compile time; this crate holds everything that code
//! calls at run time. Users depend on the `grad` facade, which re-exports
//! this crate; generated code names these items through `::grad::…`.
//!
//! This crate owns:
//!
//! * [`Float`], the sealed scalar trait implemented for `f32` and `f64`
//!   that every runtime function is generic over;
//! * the differentiable primitives beyond `std`'s float methods:
//!   activations ([`sigmoid`], [`tanh`], [`relu`], [`leaky_relu`],
//!   [`softplus`]),
//!   [`clamp`], and losses ([`bce`], [`bce_with_logits`], [`mse`]), all
//!   numerically stable for any finite input;
//! * [`EPSILON`], the probability clamp used by [`bce`];
//! * [`derivatives`], the step and mask helpers the macro's derivative rules
//!   call, which fix the derivative at kinks to PyTorch's conventions
//!   (`relu'(0) = 0`, `abs'(0) = 0`, ties in `max`/`min` split evenly,
//!   `clamp` passes the gradient on the closed interval);
//! * [`check`], gradient checking against central finite differences.
//!
//! Everything is scalar, allocation-free (except [`check`]) and `#[inline]`,
//! so generated gradients optimise like hand-written code. The crate has no
//! dependencies and no `unsafe`.
//!
//! # Example
//!
//! The seed notebook's neuron, differentiated by hand with the runtime's
//! helpers (this is what `#[differentiate]` generates for you):
//!
//! ```
//! use grad_core::derivatives::{bce_clamp, bce_clamp_grad};
//! use grad_core::{bce, sigmoid};
//!
//! let (w, b, x, y) = (1.0_f64, 0.0, 6.0, 0.0);
//! let p = sigmoid(w * x + b);
//! let loss = bce(p, y);
//!
//! let pc = bce_clamp(p);
//! let dloss_dp = bce_clamp_grad(p) * (pc - y) / (pc * (1.0 - pc));
//! let dloss_dz = dloss_dp * p * (1.0 - p);
//! let (dw, db) = (dloss_dz * x, dloss_dz);
//!
//! assert_eq!(format!("{loss:.4} {dw:.4} {db:.4}"), "6.0025 5.9852 0.9975");
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod activations;
mod branch_free;
pub mod check;
pub mod derivatives;
mod float;
mod kernels;
mod losses;
#[cfg(test)]
mod test_support;

pub use activations::{clamp, leaky_relu, relu, sigmoid, softplus, tanh};
pub use float::Float;
pub use losses::{bce, bce_with_logits, mse};

/// The probability clamp of [`bce`]: predictions are limited to
/// `[EPSILON, 1 − EPSILON]` before taking logarithms, as in the seed
/// notebook (`epsilon = 1e-7`).
///
/// This is an `f64`; the same value in any [`Float`] type is
/// [`Float::EPSILON`] (for `f32`, `1e-7` rounded to nearest). It is not the
/// machine epsilon (`f64::EPSILON`).
pub const EPSILON: f64 = 1e-7;
