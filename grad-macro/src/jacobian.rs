//! Jacobians of functions that return several values (`-> [f64; M]`,
//! `-> (f64, f64)`).
//!
//! Row `i` of the Jacobian is the gradient of output `i`, and the gradient of
//! `wᵀ f` is `wᵀ J`: so the function is rewritten, at the syntax level, into
//! the scalar function `wᵀ f(params)` with `w: [T; M]` an extra parameter
//! that is not differentiated, every `return e` and the tail `e` becoming
//! `w[0] * e₀ + w[1] * e₁ + …` (pushed into `if`/`match` arms and blocks, so
//! that the outputs are never a value the IR would have to carry as a
//! vector). That function goes through the ordinary pipeline (lower,
//! reverse, simplify, emit) and its `_backward` runs once per output with a
//! unit `w`: M reverse sweeps, each as cheap as a gradient.
//!
//! For forward mode (`f_jvp`, and the Jacobian's forward sweeps when there
//! are fewer inputs than outputs) the same places are rewritten instead into
//! a marker call `outputs(e₀, e₁, …)` ([`marked_outputs`]), which lowering
//! turns into one yield per output on every path.

use proc_macro2::{Ident, Span};
use quote::quote;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;

/// What a vector-valued function returns.
pub struct VectorOutput {
    /// The float type of every output.
    pub elem: syn::Type,
    /// The number of outputs, as written (`3`, `N`).
    pub len: syn::Expr,
    /// The outputs as a tuple (`(f64, f64)`) rather than an array.
    pub arity: Option<usize>,
}

/// `Some` if `sig` returns an array of floats or a tuple of one float type.
pub fn vector_output(sig: &syn::Signature) -> Option<VectorOutput> {
    let syn::ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    match &**ty {
        syn::Type::Array(a) if crate::lower::classify(&a.elem).is_float() => Some(VectorOutput {
            elem: (*a.elem).clone(),
            len: a.len.clone(),
            arity: None,
        }),
        syn::Type::Tuple(t) if t.elems.len() >= 2 => {
            let first = t.elems.first()?;
            let float = crate::lower::classify(first);
            let same = t
                .elems
                .iter()
                .all(|e| crate::lower::classify(e) == float && float.is_float());
            let n = t.elems.len();
            same.then(|| VectorOutput {
                elem: first.clone(),
                len: syn::parse_quote!(#n),
                arity: Some(n),
            })
        }
        _ => None,
    }
}

/// The scalar function `wᵀ f`: `item` with the parameter `w: [T; M]` added
/// and its outputs weighted; `Err` with every place whose outputs it cannot
/// weigh.
/// `fresh` gives names no identifier of the function uses.
pub fn weighted(
    item: &syn::ItemFn,
    out: &VectorOutput,
    name: &Ident,
    w: &Ident,
    fresh: &mut dyn FnMut(&str) -> String,
) -> Result<syn::ItemFn, syn::Error> {
    let mut f = item.clone();
    f.sig.ident = name.clone();
    let elem = &out.elem;
    let len = &out.len;
    f.sig.inputs.push(syn::parse_quote!(#w: [#elem; #len]));
    f.sig.output = syn::parse_quote!(-> #elem);
    f.attrs.clear();
    let weigh = Weigh {
        combine: Combine::Weighted {
            w: w.clone(),
            index: Ident::new(&fresh("output"), Span::call_site()),
            sum: Ident::new(&fresh("weighted"), Span::call_site()),
        },
        out,
        errors: None,
    };
    rewrite_outputs(item, f, weigh)
}

/// The number of outputs, if written as a literal (`[f64; 3]`, a tuple):
/// forward mode yields each output, so it needs their count.
pub fn literal_count(out: &VectorOutput) -> Option<usize> {
    if let Some(n) = out.arity {
        return Some(n);
    }
    match &out.len {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(n),
            ..
        }) => n.base10_parse().ok(),
        _ => None,
    }
}

/// The function for forward mode: `item` returning its element type, with
/// every return and the tail `e` replaced by `marker(e₀, e₁, …)` (pushed
/// into `if` branches and blocks like [`weighted`]'s sums, a `match` there
/// turned into an `if` chain, an array variable `a` into `a[0], a[1], …`),
/// for [`lower_outputs`](crate::lower::lower_outputs) to yield the
/// `count` outputs on every path.
pub fn marked_outputs(
    item: &syn::ItemFn,
    out: &VectorOutput,
    marker: &Ident,
    count: usize,
) -> Result<syn::ItemFn, syn::Error> {
    let mut f = item.clone();
    f.sig.output = {
        let elem = &out.elem;
        syn::parse_quote!(-> #elem)
    };
    f.attrs.clear();
    let weigh = Weigh {
        combine: Combine::Marked {
            marker: marker.clone(),
            count,
        },
        out,
        errors: None,
    };
    rewrite_outputs(item, f, weigh)
}

/// Rewrites every return and the tail of `f` (a copy of `item`) with `weigh`.
fn rewrite_outputs(
    item: &syn::ItemFn,
    mut f: syn::ItemFn,
    mut weigh: Weigh,
) -> Result<syn::ItemFn, syn::Error> {
    weigh.visit_block_mut(&mut f.block);
    let returns = ends_in_return(&f.block);
    let tail = f.block.stmts.last_mut().and_then(|s| match s {
        syn::Stmt::Expr(e, None) => Some(e),
        _ => None,
    });
    match tail {
        Some(e) => *e = weigh.weigh(e.clone()),
        None if returns => {}
        None => weigh.error(
            item.block.span(),
            "a function returning several values must end with them (`[a, b]` or `(a, b)`)",
        ),
    }
    match weigh.errors {
        Some(e) => Err(e),
        None => Ok(f),
    }
}

fn ends_in_return(block: &syn::Block) -> bool {
    matches!(
        block.stmts.last(),
        Some(syn::Stmt::Expr(syn::Expr::Return(_), _))
    )
}

struct Weigh<'a> {
    combine: Combine,
    out: &'a VectorOutput,
    errors: Option<syn::Error>,
}

/// What the outputs become where they are returned.
enum Combine {
    /// `w[0] * e₀ + w[1] * e₁ + …`; `index` and `sum` name the loop that
    /// weighs an array variable.
    Weighted { w: Ident, index: Ident, sum: Ident },
    /// `marker(e₀, e₁, …)`, with `count` outputs.
    Marked { marker: Ident, count: usize },
}

impl Weigh<'_> {
    fn error(&mut self, span: Span, message: &str) {
        self.error_combined(syn::Error::new(span, message));
    }

    fn error_combined(&mut self, e: syn::Error) {
        match &mut self.errors {
            Some(all) => all.combine(e),
            None => self.errors = Some(e),
        }
    }

    /// `wᵀ e` for an expression `e` that gives the outputs.
    fn weigh(&mut self, e: syn::Expr) -> syn::Expr {
        match e {
            syn::Expr::Array(a) => {
                self.sum(a.elems.into_iter().collect(), a.bracket_token.span.join())
            }
            syn::Expr::Tuple(t) if self.out.arity.is_some() => {
                self.sum(t.elems.into_iter().collect(), t.paren_token.span.join())
            }
            syn::Expr::Paren(p) => self.weigh(*p.expr),
            syn::Expr::Block(mut b) => {
                self.weigh_block(&mut b.block);
                syn::Expr::Block(b)
            }
            syn::Expr::If(mut i) => {
                self.weigh_block(&mut i.then_branch);
                if let Some((_, else_branch)) = &mut i.else_branch {
                    let inner = std::mem::replace(&mut **else_branch, syn::parse_quote!(()));
                    **else_branch = self.weigh(inner);
                }
                syn::Expr::If(i)
            }
            syn::Expr::Match(m) if matches!(self.combine, Combine::Marked { .. }) => {
                // Outputs are yielded along paths, which a `match` is not
                // lowered as: the same `if` chain lowering makes of it.
                let cx = crate::ctxt::Ctxt::new();
                match crate::lower::desugar_match(&m, &cx) {
                    Some(i) => self.weigh(syn::Expr::If(i)),
                    None => {
                        if let Err(e) = cx.check() {
                            self.error_combined(e);
                        }
                        syn::Expr::Match(m)
                    }
                }
            }
            syn::Expr::Match(mut m) => {
                for arm in &mut m.arms {
                    let body = std::mem::replace(&mut *arm.body, syn::parse_quote!(()));
                    *arm.body = self.weigh(body);
                }
                syn::Expr::Match(m)
            }
            // An array variable: an index loop over the outputs.
            syn::Expr::Path(p) if self.out.arity.is_none() => match &self.combine {
                Combine::Weighted { w, index, sum } => {
                    let len = &self.out.len;
                    let elem = &self.out.elem;
                    syn::parse_quote!({
                        let mut #sum: #elem = 0.0;
                        for #index in 0..#len {
                            #sum += #w[#index] * #p[#index];
                        }
                        #sum
                    })
                }
                Combine::Marked { marker, count } => {
                    let items = (0..*count).map(|k| {
                        let k = proc_macro2::Literal::usize_unsuffixed(k);
                        quote!(#p[#k])
                    });
                    syn::parse_quote!(#marker(#(#items),*))
                }
            },
            syn::Expr::Return(r) => syn::Expr::Return(r),
            other => {
                let what = if self.out.arity.is_some() {
                    "a tuple `(a, b)`"
                } else {
                    "an array `[a, b]` or an array variable"
                };
                self.error(
                    other.span(),
                    &format!(
                        "grad cannot yet take the Jacobian through this expression; give the outputs as {what} here (an `if`, `match` or block around them is fine)"
                    ),
                );
                other
            }
        }
    }

    fn weigh_block(&mut self, block: &mut syn::Block) {
        let returns = ends_in_return(block);
        let span = block.span();
        match block.stmts.last_mut() {
            Some(syn::Stmt::Expr(e, None)) => {
                let inner = std::mem::replace(e, syn::parse_quote!(()));
                *e = self.weigh(inner);
            }
            _ if returns => {}
            _ => self.error(span, "this block must end with the function's outputs"),
        }
    }

    /// `w[0] * e₀ + w[1] * e₁ + …`.
    fn sum(&mut self, items: Vec<syn::Expr>, span: Span) -> syn::Expr {
        if items.is_empty() {
            self.error(
                span,
                "a function returning several values needs at least one",
            );
            return syn::parse_quote!(0.0);
        }
        match &self.combine {
            Combine::Weighted { w, .. } => {
                let terms = items.iter().enumerate().map(|(k, e)| {
                    let k = proc_macro2::Literal::usize_unsuffixed(k);
                    quote!(#w[#k] * (#e))
                });
                syn::parse_quote!(( #(#terms)+* ))
            }
            Combine::Marked { marker, .. } => syn::parse_quote!(#marker(#(#items),*)),
        }
    }
}

impl VisitMut for Weigh<'_> {
    fn visit_expr_return_mut(&mut self, r: &mut syn::ExprReturn) {
        match r.expr.take() {
            Some(e) => r.expr = Some(Box::new(self.weigh(*e))),
            None => self.error(r.span(), "return the function's outputs here"),
        }
    }

    // A closure's `return` is its own.
    fn visit_expr_closure_mut(&mut self, _: &mut syn::ExprClosure) {}
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}
