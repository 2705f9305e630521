//! What is emitted when the function has errors: the function exactly as the
//! user wrote it (so its own type errors still show), every collected error,
//! and stub companions with the right signatures (so callers of `f_grad`
//! elsewhere do not add a cascade of "cannot find" errors).

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::ctxt::Ctxt;
use crate::items::Companions;

/// [`emit`] for a function returning several values: its companions are
/// the gradient struct and `f_jacobian`.
pub fn emit_vector(
    item: &syn::ItemFn,
    companions: &Companions,
    out: &crate::jacobian::VectorOutput,
    cx: Ctxt,
) -> TokenStream {
    let errors = errors(cx);
    if !stubs_fit(item) {
        return quote!(#errors #item);
    }
    let grad_struct = companions.grad_struct();
    let jacobian_fn = companions.jacobian_fn(out, None, None);
    let jvp_fn = companions.jvp_fn(None);
    quote! {
        #errors
        #item
        #grad_struct
        #jacobian_fn
        #jvp_fn
    }
}

/// Every error collected, as `compile_error!`s.
fn errors(cx: Ctxt) -> TokenStream {
    match cx.check() {
        Ok(()) => TokenStream::new(),
        Err(e) => e.to_compile_error(),
    }
}

/// Whether stub companions can stand beside the item: not for a method
/// (`&self`: they would need an impl block) or a generic function (they
/// would need its type parameters), where the error alone stands.
fn stubs_fit(item: &syn::ItemFn) -> bool {
    let generic = crate::lower::is_generic(&item.sig);
    let method = item
        .sig
        .inputs
        .iter()
        .any(|a| matches!(a, syn::FnArg::Receiver(_)));
    !generic && !method
}

pub fn emit(item: &syn::ItemFn, companions: &Companions, cx: Ctxt) -> TokenStream {
    let errors = errors(cx);
    if !stubs_fit(item) {
        return quote!(#errors #item);
    }
    let grad_struct = companions.grad_struct();
    let grad_fn = companions.grad_fn(true);
    let backward_fn = companions.backward_fn(&Ident::new("grad", Span::call_site()), None);
    let jvp_fn = companions.jvp_fn(None);
    let hvp_fn = companions.hvp_fn(None);
    let hessian_fn = companions.hessian_fn(false);
    let hvp_along_fn = companions.hvp_along_impl();
    quote! {
        #errors
        #item
        #grad_struct
        #grad_fn
        #backward_fn
        #jvp_fn
        #hvp_fn
        #hvp_along_fn
        #hessian_fn
    }
}
