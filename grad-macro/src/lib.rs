//! The `#[differentiate]` attribute and the `chain!` macro of
//! [grad](https://docs.rs/grad). This crate is an implementation detail:
//! depend on `grad`, which re-exports both together with the runtime that
//! the generated code calls.
//!
//! The pipeline (see `ARCHITECTURE.md`): [`args`] -> [`lower`] (syn -> IR)
//! -> [`reverse`] -> [`simplify`] -> [`emit`], with every error collected in
//! [`ctxt`] and reported at once by [`fallback`].

extern crate proc_macro;

mod args;
mod carry;
mod chain;
mod ctxt;
mod emit;
mod expand;
mod fallback;
mod forward;
mod fuse;
mod ir;
mod items;
mod jacobian;
mod lanes;
mod lower;
mod reverse;
mod rules;
mod simplify;
mod window;

#[cfg(test)]
mod interp;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod size_tests;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Emits the function unchanged and, beside it, its gradient companions.
/// See the `grad` crate for the full documentation.
#[proc_macro_attribute]
pub fn differentiate(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::differentiate(attr.into(), item.into()).into()
}

/// `chain!(w * x + b -> sigmoid -> bce(y))` is `bce(sigmoid(w * x + b), y)`:
/// each stage receives the previous value as its first argument.
#[proc_macro]
pub fn chain(input: TokenStream) -> TokenStream {
    match chain::desugar(input.into()) {
        Ok(expr) => quote::ToTokens::into_token_stream(expr).into(),
        Err(e) => e.to_compile_error().into(),
    }
}
