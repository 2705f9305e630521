//! Unit tests of the pipeline on token streams: expansion text, IR, and the
//! rule table through the IR interpreter.

use proc_macro2::TokenStream;
use quote::quote;

/// Expands and pretty-prints, as `cargo expand` would show it.
pub fn expand(attr: TokenStream, item: TokenStream) -> String {
    let out = crate::expand::differentiate(attr, item);
    match syn::parse2::<syn::File>(out.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(e) => format!("UNPARSABLE ({e}): {out}"),
    }
}

#[test]
fn show_neuron() {
    let s = expand(
        quote!(wrt(w, b)),
        quote! {
            fn loss(w: f64, b: f64, x: f64, y: f64) -> f64 {
                let z = w * x + b;
                let p = sigmoid(z);
                bce(p, y)
            }
        },
    );
    println!("{s}");
}

#[test]
fn show_branches() {
    let s = expand(
        quote!(),
        quote! {
            fn f(x: f64, mut y: f64) -> f64 {
                if x < 1.0 {
                    y += x.sin();
                    let q = x * x;
                    y *= q;
                } else {
                    if y > 2.0 { return y.sqrt(); }
                    y = x.ln();
                }
                y * 2.0
            }
        },
    );
    println!("{s}");
}
