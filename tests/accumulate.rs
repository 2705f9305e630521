//! The gradient struct and the accumulating `_backward` companion:
//! repeated calls add up (PyTorch's `.grad`), `zero()` resets, the struct
//! is `Copy`, `Default` (all zeros) and adds with `+` and `+=`, and
//! `_grad` is a fresh `_backward`.

use grad::check::assert_gradient;
use grad::prelude::*;

/// y = x², the textbook accumulation example.
#[differentiate]
fn square(x: f64) -> f64 {
    x * x
}

/// Two parameters, to see that each field accumulates on its own.
#[differentiate]
fn product(a: f64, b: f64) -> f64 {
    a * b.sin()
}

#[test]
fn backward_accumulates_and_zero_resets() {
    let mut grad = SquareGrad::default();
    for call in 1..=3 {
        // Returns the value every time, and adds 2x = 12 each time.
        assert_eq!(square_backward(6.0, &mut grad), 36.0);
        assert_eq!(grad.x, 12.0 * f64::from(call));
    }
    assert_eq!(grad.x, 36.0);
    grad.zero();
    assert_eq!(grad.x, 0.0);
    assert_eq!(grad, SquareGrad::default());
    // After a reset it accumulates from zero again.
    assert_eq!(square_backward(6.0, &mut grad), 36.0);
    assert_eq!(grad.x, 12.0);
}

#[test]
fn backward_adds_into_an_existing_gradient() {
    let mut grad = ProductGrad { a: 1.0, b: -2.0 };
    let (a, b) = (0.5_f64, 1.2_f64);
    let value = product_backward(a, b, &mut grad);
    assert_eq!(value, product(a, b));
    assert_eq!(
        grad,
        ProductGrad {
            a: 1.0 + b.sin(),
            b: -2.0 + a * b.cos()
        }
    );
    // Points differ between calls: the sum of both gradients.
    product_backward(-1.0, 0.3, &mut grad);
    let expected = ProductGrad {
        a: 1.0 + b.sin() + 0.3_f64.sin(),
        b: -2.0 + a * b.cos() - 0.3_f64.cos(),
    };
    assert_eq!(grad, expected);
}

#[test]
fn grad_is_a_fresh_backward() {
    for (a, b) in [(0.5, 1.2), (-2.0, 0.1), (3.0, -4.0)] {
        let mut fresh = ProductGrad::default();
        let value = product_backward(a, b, &mut fresh);
        assert_eq!(product_grad(a, b), (value, fresh));
        assert_gradient(
            |v: &[f64]| product(v[0], v[1]),
            &[a, b],
            &[fresh.a, fresh.b],
        );
    }
    let mut fresh = SquareGrad::default();
    assert_eq!(square_grad(6.0), (square_backward(6.0, &mut fresh), fresh));
    assert_eq!(square_grad(6.0).1.x, 12.0);
}

#[test]
fn gradients_add() {
    let g1 = product_grad(0.5, 1.2).1;
    let g2 = product_grad(-1.0, 0.3).1;
    let sum = g1 + g2;
    assert_eq!(
        sum,
        ProductGrad {
            a: g1.a + g2.a,
            b: g1.b + g2.b
        }
    );
    let mut acc = g1;
    acc += g2;
    assert_eq!(acc, sum);
    // `+` and `+=` agree with accumulating through `_backward`.
    let mut backward = ProductGrad::default();
    product_backward(0.5, 1.2, &mut backward);
    product_backward(-1.0, 0.3, &mut backward);
    assert_eq!(backward, sum);
    // Adding the default is the identity.
    assert_eq!(sum + ProductGrad::default(), sum);
}

#[test]
fn default_is_all_zeros() {
    assert_eq!(SquareGrad::default(), SquareGrad { x: 0.0 });
    assert_eq!(ProductGrad::default(), ProductGrad { a: 0.0, b: 0.0 });
    let mut g = ProductGrad { a: 3.0, b: -1.0 };
    g.zero();
    assert_eq!(g, ProductGrad::default());
}

#[test]
fn struct_is_copy_clone_debug() {
    fn assert_copy<T: Copy + Clone + std::fmt::Debug + PartialEq + Default>() {}
    assert_copy::<SquareGrad>();
    assert_copy::<ProductGrad>();
    let g = product_grad(0.5, 1.2).1;
    let copied = g; // a copy, `g` stays usable
    #[allow(clippy::clone_on_copy)]
    let cloned = g.clone();
    assert_eq!(g, copied);
    assert_eq!(g, cloned);
    let debug = format!("{g:?}");
    assert!(
        debug.starts_with("ProductGrad {") && debug.contains("a: ") && debug.contains("b: "),
        "{debug}"
    );
}
