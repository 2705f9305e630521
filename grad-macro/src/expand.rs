//! The pipeline in one function: arguments -> syn -> IR -> reverse ->
//! simplify -> tokens. On any error, [`fallback`](crate::fallback) emits the
//! user's function untouched, every error, and stub companions.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

use crate::args::Args;
use crate::ctxt::Ctxt;
use crate::emit::{Emitter, Namer};
use crate::items::Companions;
use crate::{fallback, lanes, lower, reverse, simplify, window};

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
    if let Some(out) = crate::jacobian::vector_output(&item_fn.sig) {
        return differentiate_vector(item_fn, args, out, krate, cx);
    }

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
        forward: args.forward,
        hvp: args.hvp,
        hessian: args.hessian,
    };
    let (primal, sig) = match lowered {
        Some(l) if !cx.has_errors() => l,
        _ => return fallback::emit(&item_fn, &companions, cx),
    };

    let mut namer = Namer::new(item_fn.to_token_stream());
    let Backward {
        func: backward,
        names: param_names,
        grad_param,
        body,
    } = match backward(&primal, &krate, &mut namer, sig.ret) {
        Ok(b) => b,
        Err((span, message)) => {
            cx.syn_error(syn::Error::new(span, message));
            return fallback::emit(&item_fn, &companions, cx);
        }
    };

    // Forward over reverse: the tangent pass applied to `f_backward`'s IR.
    let hvp_fn = if args.hvp || args.hessian {
        match hvp(&item_fn, &backward, &krate, sig.ret, &companions) {
            Ok(body) => companions.hvp_fn(Some(body)),
            Err((span, message)) => {
                cx.syn_error(syn::Error::new(span, message));
                return fallback::emit(&item_fn, &companions, cx);
            }
        }
    } else {
        TokenStream::new()
    };
    let hessian_fn = companions.hessian_fn(true);
    let hvp_along_fn = companions.hvp_along_impl();

    let jvp_fn = if args.forward {
        match jvp(&item_fn, &primal, &krate, sig.ret, 1) {
            Ok(body) => companions.jvp_fn(Some(body)),
            Err((span, message)) => {
                cx.syn_error(syn::Error::new(span, message));
                return fallback::emit(&item_fn, &companions, cx);
            }
        }
    } else {
        TokenStream::new()
    };

    let grad_struct = companions.grad_struct();
    let grad_fn = companions.grad_fn(false);
    let backward_fn = companions.backward_fn(&grad_param, Some((param_names, body)));
    quote! {
        #item_fn
        #grad_struct
        #grad_fn
        #backward_fn
        #jvp_fn
        #hvp_fn
        #hvp_along_fn
        #hessian_fn
    }
}

/// A function returning several values: `f_jacobian` from the reverse
/// sweeps of the scalar function `wᵀ f` (`jacobian.rs`).
fn differentiate_vector(
    item_fn: syn::ItemFn,
    args: Args,
    out: crate::jacobian::VectorOutput,
    krate: TokenStream,
    cx: Ctxt,
) -> TokenStream {
    for (flag, name) in [(args.hvp, "hvp"), (args.hessian, "hessian")] {
        if flag {
            cx.syn_error(syn::Error::new_spanned(
                &item_fn.sig.output,
                format!("`{name}` needs a function with one output: the second derivatives of several outputs are not a matrix; write the output to differentiate twice as its own `#[differentiate({name})]` function"),
            ));
        }
    }
    let mut namer = Namer::new(item_fn.to_token_stream());
    let fn_name = item_fn.sig.ident.to_string();
    let weighted_name = proc_macro2::Ident::new(
        &namer.fresh(&format!("{}_weighted", fn_name.trim_start_matches("r#"))),
        proc_macro2::Span::call_site(),
    );
    let seed = proc_macro2::Ident::new(&namer.fresh("cotangent"), proc_macro2::Span::call_site());
    let weighted = crate::jacobian::weighted(&item_fn, &out, &weighted_name, &seed, &mut |base| {
        namer.fresh(base)
    });
    let params = params_of(&item_fn);
    let lowered = match &weighted {
        Ok(g) => lower::lower(g, &args, &cx),
        Err(e) => {
            cx.syn_error(e.clone());
            None
        }
    };
    // The cotangent is the last parameter, and never differentiated.
    let lowered = lowered.map(|(mut func, sig)| {
        if let Some(last) = func.params.last_mut() {
            last.wrt = false;
        }
        (func, sig)
    });
    let wrt: Vec<usize> = match &lowered {
        Some((func, _)) => func.params[..params.len()]
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
        forward: args.forward,
        hvp: false,
        hessian: false,
    };
    let (primal, sig) = match lowered {
        Some(l) if !cx.has_errors() => l,
        _ => return fallback::emit_vector(&item_fn, &companions, &out, cx),
    };
    // Forward mode yields every output: `f_jvp`, and the Jacobian's columns
    // when there are fewer inputs than outputs. Its errors are the user's
    // only if `forward` was asked for; otherwise the Jacobian takes reverse
    // sweeps alone.
    let tangent = {
        let fcx = Ctxt::new();
        let tangent = vector_jvp(&item_fn, &args, &out, &krate, &mut namer, &fcx);
        if args.forward {
            if let Err(e) = fcx.check() {
                cx.syn_error(e);
            }
            match &tangent {
                Err((span, message)) if !message.is_empty() => {
                    cx.syn_error(syn::Error::new(*span, message));
                }
                _ => {}
            }
            if cx.has_errors() {
                return fallback::emit_vector(&item_fn, &companions, &out, cx);
            }
        }
        tangent.ok()
    };
    let Backward {
        names,
        grad_param,
        body,
        ..
    } = match backward(&primal, &krate, &mut namer, sig.ret) {
        Ok(b) => b,
        Err((span, message)) => {
            cx.syn_error(syn::Error::new(span, message));
            return fallback::emit_vector(&item_fn, &companions, &out, cx);
        }
    };
    let grad_struct = companions.grad_struct();
    let tangent_name = proc_macro2::Ident::new(
        &namer.fresh(&format!("{}_tangent", fn_name.trim_start_matches("r#"))),
        proc_macro2::Span::call_site(),
    );
    let jacobian_fn = companions.jacobian_fn(
        &out,
        Some(crate::items::WeightedBackward {
            name: weighted_name,
            names,
            grad_param,
            body,
        }),
        tangent.as_ref().map(|t| (&tangent_name, t)),
    );
    let jvp_fn = companions.jvp_fn(tangent);
    quote! {
        #item_fn
        #grad_struct
        #jacobian_fn
        #jvp_fn
    }
}

/// Forward mode over a function with several outputs: the function with its
/// outputs marked (`jacobian::marked_outputs`), lowered to yield each, and
/// its tangent pass; lowering's errors go to `cx`.
fn vector_jvp(
    item_fn: &syn::ItemFn,
    args: &Args,
    out: &crate::jacobian::VectorOutput,
    krate: &TokenStream,
    namer: &mut Namer,
    cx: &Ctxt,
) -> Result<crate::items::JvpBody, crate::forward::Error> {
    let Some(count) = crate::jacobian::literal_count(out) else {
        return Err((
            syn::spanned::Spanned::span(&out.len),
            "forward mode needs the number of outputs written as a number (`[f64; 3]`)".into(),
        ));
    };
    let marker = proc_macro2::Ident::new(&namer.fresh("outputs"), proc_macro2::Span::call_site());
    // Errors reported to `cx` come back as an empty message.
    let in_cx = || (proc_macro2::Span::call_site(), String::new());
    let marked = match crate::jacobian::marked_outputs(item_fn, out, &marker, count) {
        Ok(marked) => marked,
        Err(e) => {
            cx.syn_error(e);
            return Err(in_cx());
        }
    };
    match lower::lower_outputs(&marked, args, cx, &marker, count) {
        Some((primal, sig)) if !cx.has_errors() => jvp(item_fn, &primal, krate, sig.ret, count),
        _ => Err(in_cx()),
    }
}

/// `f_backward`'s IR (reversed and simplified) and what its emission gives:
/// the parameters' names, the name of the `&mut FGrad` parameter, the body.
struct Backward {
    func: crate::ir::Func,
    names: Vec<proc_macro2::Ident>,
    grad_param: proc_macro2::Ident,
    body: TokenStream,
}

/// Reverses, simplifies and emits `primal`, with names from `namer`.
fn backward(
    primal: &crate::ir::Func,
    krate: &TokenStream,
    namer: &mut Namer,
    ret: crate::ir::Ty,
) -> Result<Backward, (proc_macro2::Span, String)> {
    let (mut func, suspicious) = reverse::reverse(primal)?;
    if std::env::var_os("GRAD_DEBUG_IR").is_some() {
        eprintln!("primal:\n{primal}\nbackward:\n{func}");
    }
    simplify::simplify(&mut func);
    reverse::check_recomputed_reads(&func, &suspicious)?;
    forbid_callee_names(namer, primal);
    let grad_param = proc_macro2::Ident::new(&namer.fresh("grad"), proc_macro2::Span::call_site());
    // Windows are for emission only: `f_hvp` differentiates `func` again.
    let mut emitted = func.clone();
    window::hoist_bounds_checks(&mut emitted, krate);
    lanes::vectorise_sample_loops(&mut emitted, krate);
    let mut emitter = Emitter::new(&emitted, krate, namer, ret);
    emitter.grad_param = Some(grad_param.clone());
    let body = emitted_body(&emitter, &emitted);
    let names = names_of(&emitter, func.params.iter().map(|p| p.var));
    Ok(Backward {
        func,
        names,
        grad_param,
        body,
    })
}

/// The body of `f_hvp`: forward mode over `f_backward`'s IR (already
/// simplified), seeded with one direction per differentiated parameter. The
/// gradient accumulates into a local `grad`, its tangent into a local `hv`.
fn hvp(
    item_fn: &syn::ItemFn,
    backward: &crate::ir::Func,
    krate: &TokenStream,
    ret: crate::ir::Ty,
    companions: &Companions,
) -> Result<crate::items::HvpBody, crate::forward::Error> {
    // The value's own tangent is not returned.
    let crate::forward::Forward { func, tangents } = seeded_forward(backward, false)?;
    let mut namer = Namer::new(item_fn.to_token_stream());
    namer.tangent_prefix = "v";
    forbid_callee_names(&mut namer, backward);
    let grad = proc_macro2::Ident::new(&namer.fresh("grad"), proc_macro2::Span::call_site());
    let hv = proc_macro2::Ident::new(&namer.fresh("hv"), proc_macro2::Span::call_site());
    let value = proc_macro2::Ident::new(&namer.fresh("value"), proc_macro2::Span::call_site());
    let mut emitter = Emitter::new(&func, krate, &mut namer, ret);
    emitter.grad_param = Some(grad.clone());
    emitter.grad_dot_param = Some(hv.clone());
    let body = emitted_body(&emitter, &func);
    let strukt = companions.struct_ident();
    let body = quote! {
        let mut #grad = <#strukt as ::core::default::Default>::default();
        let mut #hv = <#strukt as ::core::default::Default>::default();
        let #value = { #body };
        (#value, #grad, #hv)
    };
    let names = names_of(&emitter, func.params.iter().map(|p| p.var));
    let directions = names_of(&emitter, tangents.iter().copied());
    Ok(crate::items::HvpBody {
        names,
        directions,
        body,
    })
}

/// The body of `f_jvp`: forward mode over the primal, seeded with one
/// tangent per differentiated parameter. `outputs` is the number of values
/// the primal yields; with several, the body yields all of them and then
/// their tangents, and names are made for that tuple's parts.
fn jvp(
    item_fn: &syn::ItemFn,
    primal: &crate::ir::Func,
    krate: &TokenStream,
    ret: crate::ir::Ty,
    outputs: usize,
) -> Result<crate::items::JvpBody, crate::forward::Error> {
    let crate::forward::Forward { func, tangents } = seeded_forward(primal, true)?;
    let mut namer = Namer::new(item_fn.to_token_stream());
    forbid_callee_names(&mut namer, primal);
    let emitter = Emitter::new(&func, krate, &mut namer, ret);
    let body = emitted_body(&emitter, &func);
    let names = names_of(&emitter, func.params.iter().map(|p| p.var));
    let tangent_names = names_of(&emitter, tangents.iter().copied());
    let mut yielded = vec![];
    if outputs > 1 {
        for base in ["output", "tangent"] {
            for k in 0..outputs {
                yielded.push(proc_macro2::Ident::new(
                    &namer.fresh(&format!("{base}_{k}")),
                    proc_macro2::Span::call_site(),
                ));
            }
        }
    }
    Ok(crate::items::JvpBody {
        names,
        tangents: tangent_names,
        body,
        yielded,
    })
}

/// Forward mode over `func` (the primal, or `f_backward`'s IR) seeded with
/// one tangent per differentiated parameter, simplified; without
/// `value_tangent`, the tangent of the value is not returned.
fn seeded_forward(
    func: &crate::ir::Func,
    value_tangent: bool,
) -> Result<crate::forward::Forward, crate::forward::Error> {
    let seeds: Vec<crate::ir::Var> = func
        .params
        .iter()
        .filter(|p| p.wrt)
        .map(|p| p.var)
        .collect();
    let mut forward = crate::forward::forward(func, &seeds)?;
    if !value_tangent {
        forward.func.body.yields.truncate(1);
    }
    simplify::simplify(&mut forward.func);
    Ok(forward)
}

/// A parameter named like a callee's companion (`h_grad` beside a call of
/// `h`), or like a function the body calls, would hide it; the body then
/// gives the parameter another name.
fn forbid_callee_names(namer: &mut Namer, func: &crate::ir::Func) {
    namer.forbid(callee_companions(func));
    namer.forbid(called_names(func));
}

/// A companion's body: the function body's `use` items (for the paths they
/// bring into scope; a companion may not need each of them), then `func`'s
/// statements and yields.
fn emitted_body(emitter: &Emitter, func: &crate::ir::Func) -> TokenStream {
    let uses = &func.uses;
    let mut body = quote!(#(#[allow(unused_imports)] #uses)*);
    // Moved in, not interpolated: `#block` would copy every token.
    body.extend(emitter.block(&func.body));
    body
}

/// The names the emitter gave `vars`.
fn names_of(
    emitter: &Emitter,
    vars: impl Iterator<Item = crate::ir::Var>,
) -> Vec<proc_macro2::Ident> {
    vars.map(|v| emitter.names[v.0 as usize].clone()).collect()
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
