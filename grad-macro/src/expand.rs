//! The pipeline in one function: arguments -> syn -> IR -> reverse ->
//! simplify -> tokens. On any error, [`fallback`](crate::fallback) emits the
//! user's function untouched, every error, and stub companions.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

use crate::args::Args;
use crate::ctxt::Ctxt;
use crate::emit::{Emitter, Namer};
use crate::items::Companions;
use crate::{fallback, lower, reverse, simplify};

/// Expands `#[differentiate(attr)] item`.
pub fn differentiate(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                "#[differentiate] applies to free functions (`fn loss(w: f64, …) -> f64 { … }`)",
            );
            let error = error.to_compile_error();
            return quote!(#error #item);
        }
    };
    let cx = Ctxt::new();
    let args = match syn::parse2::<Args>(attr) {
        Ok(args) => args,
        Err(e) => {
            cx.syn_error(e);
            Args::default()
        }
    };
    let krate = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::grad),
    };

    let lowered = lower::lower(&item_fn, &args, &cx);
    let params = params_of(&item_fn);
    let wrt = match &lowered {
        Some((func, _)) => func
            .params
            .iter()
            .enumerate()
            .filter(|(_, p)| p.wrt)
            .map(|(i, _)| i)
            .collect(),
        None => vec![],
    };
    let companions = Companions {
        item: &item_fn,
        krate: &krate,
        params,
        wrt,
    };
    let (primal, sig) = match lowered {
        Some(l) if !cx.has_errors() => l,
        _ => return fallback::emit(&item_fn, &companions, cx),
    };

    let (mut backward, suspicious) = match reverse::reverse(&primal) {
        Ok(f) => f,
        Err((span, message)) => {
            cx.syn_error(syn::Error::new(span, message));
            return fallback::emit(&item_fn, &companions, cx);
        }
    };
    if std::env::var_os("GRAD_DEBUG_IR").is_some() {
        eprintln!("primal:\n{primal}\nbackward:\n{backward}");
    }
    simplify::simplify(&mut backward);
    if let Err((span, message)) = reverse::check_recomputed_reads(&backward, &suspicious) {
        cx.syn_error(syn::Error::new(span, message));
        return fallback::emit(&item_fn, &companions, cx);
    }

    let mut namer = Namer::new(item_fn.to_token_stream());
    // A parameter named like a callee's companion (`h_grad` beside a call of
    // `h`) would hide it; the body then gives the parameter another name.
    namer.forbid(callee_companions(&primal));
    namer.forbid(called_names(&primal));
    let grad_param = proc_macro2::Ident::new(&namer.fresh("grad"), proc_macro2::Span::call_site());
    let mut emitter = Emitter::new(&backward, &krate, &mut namer, sig.ret);
    emitter.grad_param = Some(grad_param.clone());
    let body = emitter.block(&backward.body);
    // The body's `use` items, for the paths they bring into scope; a
    // companion may not need each of them.
    let uses = &backward.uses;
    let mut body_with_uses = quote!(#(#[allow(unused_imports)] #uses)*);
    // Moved in, not interpolated: `#body` would copy every token.
    body_with_uses.extend(body);
    let body = body_with_uses;
    let param_names = backward
        .params
        .iter()
        .map(|p| emitter.names[p.var.0 as usize].clone())
        .collect();

    let grad_struct = companions.grad_struct();
    let grad_fn = companions.grad_fn(false);
    let backward_fn = companions.backward_fn(&grad_param, Some((param_names, body)));
    quote! {
        #item_fn
        #grad_struct
        #grad_fn
        #backward_fn
    }
}

/// Every parameter's name and type (`_` where the pattern is not a name).
pub fn params_of(item: &syn::ItemFn) -> Vec<(proc_macro2::Ident, syn::Type)> {
    item.sig
        .inputs
        .iter()
        .enumerate()
        .filter_map(|(i, arg)| match arg {
            syn::FnArg::Typed(t) => {
                // A pattern (`_`, `(a, b)`) is an error reported by lowering;
                // the stubs still need a field name that parses.
                let ident = match &*t.pat {
                    syn::Pat::Ident(p) => p.ident.clone(),
                    other => {
                        quote::format_ident!("__arg{i}", span = syn::spanned::Spanned::span(other))
                    }
                };
                Some((ident, (*t.ty).clone()))
            }
            syn::FnArg::Receiver(_) => None,
        })
        .collect()
}

/// The single-name functions the body calls (`sigmoid`, `helper`, `g`):
/// no variable of the companions may have those names.
fn called_names(func: &crate::ir::Func) -> Vec<String> {
    use crate::ir::{Expr, Stmt};
    let mut names = vec![];
    crate::ir::walk_stmts(&func.body, &mut |s| {
        if let Stmt::Let { expr, .. } = s {
            let path = match expr {
                Expr::Call { func, .. } | Expr::DiffCall { func, .. } => Some(func),
                Expr::Prim { path: Some(p), .. } => Some(p),
                _ => None,
            };
            if let Some(ident) = path.and_then(|p| {
                p.get_ident().or_else(|| {
                    // `sigmoid::<f64>`: one segment with arguments.
                    (p.segments.len() == 1 && p.leading_colon.is_none())
                        .then(|| &p.segments[0].ident)
                })
            }) {
                names.push(ident.to_string());
            }
        }
    });
    names
}

/// `g_grad` for every call `g(..)` of another `#[differentiate]` function
/// written as a single name.
fn callee_companions(func: &crate::ir::Func) -> Vec<String> {
    let mut names = vec![];
    crate::ir::walk_stmts(&func.body, &mut |s| {
        if let crate::ir::Stmt::Let {
            expr: crate::ir::Expr::DiffCall { func, .. },
            ..
        } = s
        {
            if let Some(ident) = func.get_ident() {
                names.push(format!(
                    "{}_grad",
                    ident.to_string().trim_start_matches("r#")
                ));
            }
        }
    });
    names
}
