//! # grad — compile-time automatic differentiation for Rust
//!
//! Put `#[differentiate]` on an ordinary function and grad writes its
//! gradient at compile time: no tape, no runtime graph, no allocation, the
//! code a careful human would derive by hand, on stable Rust.
//!
//! ```
//! use grad::prelude::*;
//!
//! #[differentiate(wrt(w, b))]
//! fn loss(w: f64, b: f64, x: f64, y: f64) -> f64 {
//!     let z = w * x + b;
//!     let p = sigmoid(z);
//!     bce(p, y)
//! }
//!
//! let (value, grad) = loss_grad(1.0, 0.0, 6.0, 0.0);
//! assert_eq!(format!("{value:.4} {:.4} {:.4}", grad.w, grad.b), "6.0025 5.9852 0.9975");
//! ```
//!
//! Beside the function, with its visibility, `#[differentiate]` emits:
//!
//! | item | meaning |
//! | --- | --- |
//! | `struct LossGrad { pub w: f64, pub b: f64 }` | one field per differentiated parameter; `Debug, Clone, Copy, PartialEq, Default`, `+`, `+=`, `zero()` |
//! | `fn loss_grad(w, b, x, y) -> (f64, LossGrad)` | the value and a fresh gradient |
//! | `fn loss_backward(w, b, x, y, grad: &mut LossGrad) -> f64` | the value; the gradient is **added** into `grad`, as PyTorch's `.grad` accumulates |
//!
//! `wrt(...)` picks the parameters to differentiate (every `f32`/`f64`
//! parameter when omitted); `crate = path` names this crate when it is
//! renamed in `Cargo.toml`. The body may use arithmetic, `let`/`let mut`
//! with reassignment and compound assignment, `if`/`else` (also as values),
//! `match`, early `return`, loops (`for` over ranges and slices, `while`,
//! `loop`, `break`, `continue`), slice and array parameters and local arrays
//! with indexing, the float methods (`sin`, `exp`, `powi`, `max`, …), the
//! runtime functions below, [`chain!`], and calls of other
//! `#[differentiate]` functions, which are differentiated through. Anything
//! else is a compile error that says what to write instead.
//!
//! The runtime functions ([`sigmoid`], [`relu`], [`leaky_relu`],
//! [`softplus`], [`clamp`], [`bce`], [`bce_with_logits`], [`mse`]) are
//! numerically stable, generic over `f32` and `f64`, and their kinks follow
//! PyTorch's subgradient conventions. [`check`] compares any gradient with
//! central finite differences.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use grad_core::{
    bce, bce_with_logits, check, clamp, derivatives, leaky_relu, mse, relu, sigmoid, softplus,
    tanh, Float, EPSILON,
};
pub use grad_macro::{chain, differentiate};

/// Everything a user of grad needs in one import: `use grad::prelude::*;`.
pub mod prelude {
    pub use crate::{
        bce, bce_with_logits, chain, clamp, differentiate, leaky_relu, mse, relu, sigmoid,
        softplus, tanh, Float, EPSILON,
    };
}

/// Items the generated code names; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use grad_core::derivatives;

    /// What a gradient struct's field can be: a float, an array of fields, a
    /// `Vec` of fields (the gradient of a slice). Gives the generated
    /// `Default`, `zero` and `+=` one definition for every shape.
    pub trait GradField: Sized {
        /// All zeros (an empty `Vec`: it is sized on first use).
        fn zero_value() -> Self;
        /// Sets every element to zero, keeping a `Vec`'s length.
        fn zero_field(&mut self);
        /// Adds `rhs` element by element; an empty `Vec` takes `rhs`.
        fn add_field(&mut self, rhs: &Self);
    }

    macro_rules! float_field {
        ($($t:ty),*) => {$(
            impl GradField for $t {
                #[inline]
                fn zero_value() -> Self {
                    0.0
                }
                #[inline]
                fn zero_field(&mut self) {
                    *self = 0.0;
                }
                #[inline]
                fn add_field(&mut self, rhs: &Self) {
                    *self += *rhs;
                }
            }
        )*};
    }
    float_field!(f32, f64);

    impl<T: GradField, const N: usize> GradField for [T; N] {
        fn zero_value() -> Self {
            core::array::from_fn(|_| T::zero_value())
        }
        fn zero_field(&mut self) {
            self.iter_mut().for_each(T::zero_field);
        }
        fn add_field(&mut self, rhs: &Self) {
            for (a, b) in self.iter_mut().zip(rhs) {
                a.add_field(b);
            }
        }
    }

    impl<T: GradField + Clone> GradField for Vec<T> {
        fn zero_value() -> Self {
            Vec::new()
        }
        fn zero_field(&mut self) {
            self.iter_mut().for_each(T::zero_field);
        }
        fn add_field(&mut self, rhs: &Self) {
            // An empty `Vec` is a zero gradient of any length.
            if rhs.is_empty() {
                return;
            }
            if self.is_empty() {
                self.extend(rhs.iter().cloned());
                return;
            }
            assert_eq!(
                self.len(),
                rhs.len(),
                "cannot add gradients of slices of different lengths ({} and {})",
                self.len(),
                rhs.len()
            );
            for (a, b) in self.iter_mut().zip(rhs) {
                a.add_field(b);
            }
        }
    }

    /// Readies the gradient of slice parameter `name` (length `len`) before
    /// `f_backward` adds into it: an empty `Vec` (from `Default`) is sized
    /// with zeros; one of another non-zero length is a caller's mistake.
    /// Returns the gradient as a slice of exactly `len` elements, which the
    /// generated code adds into (its length is the parameter's, so a bounds
    /// check on the parameter covers it).
    #[track_caller]
    #[inline]
    pub fn prepare_grad<'g, T: GradField + Clone>(
        grad: &'g mut Vec<T>,
        len: usize,
        name: &str,
    ) -> &'g mut [T] {
        if grad.len() != len {
            assert!(
                grad.is_empty(),
                "the gradient field `{name}` has length {} but the parameter `{name}` has length {len}; \
                 pass a gradient from `Default::default()` or one of the parameter's length",
                grad.len()
            );
            grad.resize_with(len, T::zero_value);
        }
        &mut grad[..len]
    }

    /// The part of `x` a loop `for i in start..end` reads through `x[i + c]`
    /// with `c ≤ reach`: `&x[..end + reach]` if the loop runs, all of `x`
    /// if it does not. `f_backward` reads a stencil's elements through it
    /// (`grad-macro/src/window.rs`): after this one check LLVM knows every
    /// such index is in bounds, where it would otherwise check each read in
    /// every iteration. Panics where the loop would (`end + reach > x.len()`).
    #[track_caller]
    #[inline(always)]
    pub fn window<T>(x: &[T], start: usize, end: usize, reach: usize) -> &[T] {
        if start < end {
            match end.checked_add(reach) {
                Some(stop) => &x[..stop],
                None => window_overflow(end, reach, x.len()),
            }
        } else {
            x
        }
    }

    /// The part of `x` a loop `for j in start..end` reads through
    /// `x[base + j]`: `&x[base..][..end + reach]` if the loop runs (read as
    /// `row[j]`), empty if it does not. A dense layer's `x[i * D + j]` in a
    /// loop over `j` then costs one bounds check per row instead of one per
    /// element. Panics where the loop would (`base + end + reach > x.len()`).
    #[track_caller]
    #[inline(always)]
    pub fn window_from<T>(x: &[T], base: usize, start: usize, end: usize, reach: usize) -> &[T] {
        if start < end {
            match end.checked_add(reach) {
                Some(stop) => &x[base..][..stop],
                None => window_overflow(end, reach, x.len()),
            }
        } else {
            &x[..0]
        }
    }

    /// [`window`]'s panic when `end + reach` does not fit in a `usize` (the
    /// loop's last index would not either); cold, so that the check stays
    /// small, and diverging, so that LLVM knows `end + reach` did not wrap.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn window_overflow(end: usize, reach: usize, len: usize) -> ! {
        panic!("index out of bounds: the len is {len} but the loop reads index {end} - 1 + {reach}")
    }

    /// A gradient field seen as a flat vector of its floats (arrays row by
    /// row): how `f_hessian` lays out the Hessian of array and slice
    /// parameters, and builds the unit directions it sends through `f_hvp`.
    pub trait FlatField {
        /// The float type.
        type Elem: Copy;
        /// The number of floats.
        fn flat_len(&self) -> usize;
        /// Sets float number `k` to `value`.
        fn set_flat(&mut self, k: usize, value: Self::Elem);
        /// Appends every float, in order, to `out`.
        fn extend_flat(&self, out: &mut Vec<Self::Elem>);
    }

    macro_rules! float_flat {
        ($($t:ty),*) => {$(
            impl FlatField for $t {
                type Elem = $t;
                #[inline]
                fn flat_len(&self) -> usize {
                    1
                }
                #[inline]
                fn set_flat(&mut self, _: usize, value: $t) {
                    *self = value;
                }
                #[inline]
                fn extend_flat(&self, out: &mut Vec<$t>) {
                    out.push(*self);
                }
            }
        )*};
    }
    float_flat!(f32, f64);

    impl<F: FlatField> FlatField for [F] {
        type Elem = F::Elem;
        fn flat_len(&self) -> usize {
            self.iter().map(F::flat_len).sum()
        }
        fn set_flat(&mut self, mut k: usize, value: F::Elem) {
            for item in self.iter_mut() {
                let len = item.flat_len();
                if k < len {
                    return item.set_flat(k, value);
                }
                k -= len;
            }
        }
        fn extend_flat(&self, out: &mut Vec<F::Elem>) {
            self.iter().for_each(|item| item.extend_flat(out));
        }
    }

    /// Arrays and `Vec`s are flat as their slices are.
    macro_rules! flat_as_slice {
        ($([$($generics:tt)*] $t:ty),*) => {$(
            impl<$($generics)*> FlatField for $t {
                type Elem = F::Elem;
                fn flat_len(&self) -> usize {
                    self[..].flat_len()
                }
                fn set_flat(&mut self, k: usize, value: F::Elem) {
                    self[..].set_flat(k, value)
                }
                fn extend_flat(&self, out: &mut Vec<F::Elem>) {
                    self[..].extend_flat(out)
                }
            }
        )*};
    }
    flat_as_slice!([F: FlatField, const N: usize] [F; N], [F: FlatField] Vec<F>);

    /// The direction of flat input `k` restricted to a parameter whose floats
    /// are flat inputs `at..at + len`: `like` with float `k - at` set to one
    /// and the others zero (all zero when `k` is outside).
    #[inline]
    pub fn unit<A: FlatField + GradField>(like: &A, k: usize, at: usize, one: A::Elem) -> A {
        let mut v = A::zero_value();
        if k >= at && k - at < like.flat_len() {
            v.set_flat(k - at, one);
        }
        v
    }

    /// [`unit`] for a slice parameter of length `len`: a `Vec` to pass as
    /// the slice's direction.
    #[inline]
    pub fn unit_vec<T: GradField + Clone>(len: usize, k: usize, at: usize, one: T) -> Vec<T> {
        let mut v: Vec<T> = (0..len).map(|_| T::zero_value()).collect();
        if k >= at && k - at < len {
            v[k - at] = one;
        }
        v
    }

    /// Forward over reverse through a call: implemented by the gradient
    /// struct of a function with `hvp` (or `hessian`), for the tuple of its
    /// parameter types. `hvp_along` is its `f_hvp` with one direction per
    /// parameter, by position (those it does not differentiate are
    /// ignored): a caller knows which arguments have tangents, not which
    /// parameters the callee differentiates.
    #[diagnostic::on_unimplemented(
        message = "second derivatives cannot go through this call: the called function has no `hvp` companion",
        label = "called here by a function with `hvp` or `hessian`",
        note = "add `hvp` (or `hessian`) to the called function's `#[differentiate(...)]`"
    )]
    pub trait HvpAlong<Args, T>: Sized {
        /// The value, the gradient and the Hessian times `directions`.
        fn hvp_along(args: Args, directions: &[T]) -> (T, Self, Self);
    }

    /// Positional access to a gradient struct: the component for the
    /// function's parameter number `I`. Lets a `#[differentiate]` function
    /// call through another without knowing the callee's parameter names.
    #[diagnostic::on_unimplemented(
        message = "this argument is differentiated, but the called function's `#[differentiate]` does not differentiate its parameter (number {I}, counting from 0)",
        label = "the called function's gradient has no component for this argument",
        note = "add the parameter to the called function's `wrt(...)`, or omit `wrt` there to differentiate every float parameter"
    )]
    pub trait ArgGrad<const I: usize> {
        /// The component's type (the parameter's type).
        type Output;
        /// The component of the gradient for parameter `I`.
        fn arg_grad(&self) -> Self::Output;
    }
}
