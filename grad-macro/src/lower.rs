//! syn -> IR: names resolved, shadowing and reassignment turned into fresh
//! variables, `if`/`else` into blocks with outs, early `return` into
//! structured control flow, `chain!` desugared, calls resolved against the
//! rule table. Every construct the macro cannot differentiate is reported to
//! the [`Ctxt`] here, spanned on the user's tokens, and lowering goes on so
//! that one build reports every mistake of the function.
//!
//! Early returns are lowered by continuation: when a statement-level `if`
//! contains a `return`, the rest of the function is lowered into each of its
//! branches (so each path ends in its own return value) and the `if` yields
//! the function's result. That is one copy of the rest for the usual guard
//! clauses, where one branch always leaves. When both branches may go on to
//! the code after the `if` (`if c { if d { return y; } y += 1.0; } else { … }`),
//! copying would double the rest per such `if`; the `if` is lowered instead
//! as a *region* ([`Term::Region`]) that yields whether a path left early,
//! with what, and the variables it assigns, and the rest is lowered once,
//! under `if !left { … }`. Code size stays linear.

use std::collections::BTreeMap;

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::args::Args;
use crate::chain;
use crate::ctxt::Ctxt;
use crate::ir::{
    ArrayInit, BinOp, Block, CallForm, Carried, Expr, FloatConst, Func, Loop, LoopKind, Operand,
    Origin, Param, RangeSpec, Shape, Stmt, Ty, UnOp, Var, VarInfo,
};
use crate::rules;

/// The signature facts the later passes need besides the IR.
pub struct Signature {
    /// The float type of the return value.
    pub ret: Ty,
}

/// The type class of a written type.
pub fn classify(ty: &syn::Type) -> Ty {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => match p.path.get_ident() {
            Some(i) if i == "f64" => Ty::F64,
            Some(i) if i == "f32" => Ty::F32,
            Some(i) if i == "bool" => Ty::Bool,
            Some(i)
                if matches!(
                    i.to_string().as_str(),
                    "i8" | "i16"
                        | "i32"
                        | "i64"
                        | "i128"
                        | "isize"
                        | "u8"
                        | "u16"
                        | "u32"
                        | "u64"
                        | "u128"
                        | "usize"
                ) =>
            {
                Ty::Int
            }
            _ => Ty::Other,
        },
        syn::Type::Paren(p) => classify(&p.elem),
        syn::Type::Group(g) => classify(&g.elem),
        _ if array_shape(ty).is_some() => Ty::Array,
        _ => Ty::Other,
    }
}

/// The shape of a slice or array type (`&[f64]`, `[f64; N]`, `&[f64; N]`,
/// `[[f64; N]; M]`, `&[[f64; N]]`), with scalar elements.
pub fn array_shape(ty: &syn::Type) -> Option<Shape> {
    fn dims(ty: &syn::Type, lens: &mut Vec<Option<syn::Expr>>) -> Option<Ty> {
        match ty {
            syn::Type::Array(a) => {
                lens.push(Some(a.len.clone()));
                dims(&a.elem, lens)
            }
            syn::Type::Paren(p) => dims(&p.elem, lens),
            syn::Type::Group(g) => dims(&g.elem, lens),
            other => match classify(other) {
                t @ (Ty::F32 | Ty::F64 | Ty::Int | Ty::Bool) => Some(t),
                _ => None,
            },
        }
    }
    let mut lens = vec![];
    let inner = match ty {
        syn::Type::Reference(r) => match &*r.elem {
            syn::Type::Slice(s) => {
                lens.push(None);
                &*s.elem
            }
            other => other,
        },
        other => other,
    };
    if !matches!(inner, syn::Type::Array(_)) && lens.is_empty() {
        return None;
    }
    let elem = dims(inner, &mut lens)?;
    Some(Shape { elem, lens })
}

/// Checks the signature and lowers the body. Errors go to `cx`; the IR is
/// returned whenever the signature could be read, so that the body's errors
/// are found too.
pub fn lower(item: &syn::ItemFn, args: &Args, cx: &Ctxt) -> Option<(Func, Signature)> {
    lower_with(item, args, cx, None)
}

/// Lowers `item`, a function with several outputs rewritten by
/// [`jacobian::marked_outputs`](crate::jacobian::marked_outputs): every
/// return is `marker(o₀, …)` with `count` outputs, and the body yields them.
pub fn lower_outputs(
    item: &syn::ItemFn,
    args: &Args,
    cx: &Ctxt,
    marker: &syn::Ident,
    count: usize,
) -> Option<(Func, Signature)> {
    lower_with(item, args, cx, Some((marker.clone(), count)))
}

fn lower_with(
    item: &syn::ItemFn,
    args: &Args,
    cx: &Ctxt,
    outputs: Option<(syn::Ident, usize)>,
) -> Option<(Func, Signature)> {
    let sig = &item.sig;
    check_signature(sig, cx);
    // A generic function gets one error, not one per use of its type parameter.
    let generic = is_generic(sig);
    let ret = match &sig.output {
        syn::ReturnType::Type(_, ty) if classify(ty).is_float() => classify(ty),
        _ if generic => return None,
        syn::ReturnType::Type(_, ty) => {
            cx.error_spanned_by(
                ty,
                "#[differentiate] functions must return `f64` or `f32`; return the scalar loss and compute other outputs in a separate function",
            );
            Ty::F64
        }
        syn::ReturnType::Default => {
            let close = sig.paren_token.span.close();
            cx.error_spanned_by(
                quote::quote_spanned!(close=> ()),
                "#[differentiate] functions must return `f64` or `f32`; add `-> f64` and return the value to differentiate",
            );
            // The body has nothing to return, so its paths are not checked.
            return None;
        }
    };

    let mut lowerer = Lowerer {
        cx,
        func: Func {
            vars: vec![],
            params: vec![],
            body: Block::default(),
            derivative_vars_from: None,
            uses: vec![],
        },
        scopes: Scopes::new(),
        default_float: ret,
        krate: args.krate.clone(),
        ref_elements: Default::default(),
        work: 0,
        aliases: BTreeMap::new(),
        outputs,
    };
    if !lowerer.lower_params(sig, args) {
        // A method: the companions could not stand beside it anyway.
        return None;
    }

    let frames = vec![Frame::of_block(&item.block, Tail::Value, false)];
    let mut body = Block::default();
    // The braces' span, which is what `Spanned::span` gives for a block
    // after printing all of it to tokens.
    let body_span = item.block.brace_token.span.join();
    body.yields = lowerer.lower_path(&mut body, frames, body_span, &Term::Function);
    lowerer.func.body = body;
    Some((lowerer.func, Signature { ret }))
}

/// `match s { p1 => a, p2 if g => b, _ => c }` as
/// `if matches!(s, p1) { a } else if matches!(s, p2) && g { b } else { c }`.
/// The scrutinee must not be differentiated (it is re-read per arm,
/// which is harmless for the variables, constants and integer
/// expressions a `match` tests).
pub fn desugar_match(m: &syn::ExprMatch, cx: &Ctxt) -> Option<syn::ExprIf> {
    let scrutinee = &m.expr;
    let Some((last, rest)) = m.arms.split_last() else {
        cx.error_spanned_by(m, "a `match` needs at least one arm");
        return None;
    };
    let mut ok = true;
    for arm in &m.arms {
        let catch_all = matches!(&arm.pat, syn::Pat::Wild(_));
        let is_last = std::ptr::eq(arm, last);
        if let Some(b) = binding_in(&arm.pat) {
            cx.error_spanned_by(b, "patterns that bind values are not supported in a #[differentiate] body; match on constants, ranges and enum variants, or use `_`");
            ok = false;
        }
        if is_last && arm.guard.is_some() && !catch_all {
            cx.error_spanned_by(
                &arm.pat,
                "end the `match` with an arm without a guard (`_ => …`)",
            );
            ok = false;
        }
        if contains_return(&arm.body) || {
            let mut f = FindLoopExit::default();
            f.visit_expr(&arm.body);
            f.0
        } {
            cx.error_spanned_by(&arm.body, "`return`, `break` and `continue` inside `match` arms are not supported yet; write the `match` as an `if`/`else` chain");
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let block_of = |e: &syn::Expr| -> syn::Block {
        match e {
            syn::Expr::Block(b) if b.label.is_none() => b.block.clone(),
            // Built, not re-parsed: an arm such as `0 => crate` is no
            // expression syn can read back, and rustc should report it.
            other => syn::Block {
                brace_token: Default::default(),
                stmts: vec![syn::Stmt::Expr(other.clone(), None)],
            },
        }
    };
    let mut else_branch: syn::Expr = syn::Expr::Block(syn::ExprBlock {
        attrs: vec![],
        label: None,
        block: block_of(&last.body),
    });
    for arm in rest.iter().rev() {
        let pat = &arm.pat;
        let cond: syn::Expr = match &arm.guard {
            Some((_, guard)) => {
                syn::parse_quote!(::core::matches!(#scrutinee, #pat) && (#guard))
            }
            None => syn::parse_quote!(::core::matches!(#scrutinee, #pat)),
        };
        let then_branch = block_of(&arm.body);
        else_branch = syn::Expr::If(syn::ExprIf {
            attrs: vec![],
            if_token: Default::default(),
            cond: Box::new(cond),
            then_branch,
            else_branch: Some((Default::default(), Box::new(else_branch))),
        });
    }
    match else_branch {
        syn::Expr::If(ei) => Some(ei),
        // A single arm: `if true { arm } else { arm }` keeps one code path.
        other => Some(syn::parse_quote!(if true #other else #other)),
    }
}

/// `e` without the parentheses around it.
fn unparen(mut e: &syn::Expr) -> &syn::Expr {
    while let syn::Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// Whether the function is generic: type or const parameters, or an
/// `impl Trait` parameter. Lifetimes are fine.
pub fn is_generic(sig: &syn::Signature) -> bool {
    sig.generics
        .params
        .iter()
        .any(|p| !matches!(p, syn::GenericParam::Lifetime(_)))
        || sig.inputs.iter().any(|a| match a {
            syn::FnArg::Typed(t) => impl_trait_in(&t.ty).is_some(),
            syn::FnArg::Receiver(_) => false,
        })
}

/// The first `impl Trait` inside a type, if any.
fn impl_trait_in(ty: &syn::Type) -> Option<&syn::TypeImplTrait> {
    struct Find<'a>(Option<&'a syn::TypeImplTrait>);
    impl<'a> Visit<'a> for Find<'a> {
        fn visit_type_impl_trait(&mut self, i: &'a syn::TypeImplTrait) {
            self.0.get_or_insert(i);
        }
    }
    let mut find = Find(None);
    find.visit_type(ty);
    find.0
}

fn check_signature(sig: &syn::Signature, cx: &Ctxt) {
    for input in &sig.inputs {
        if let syn::FnArg::Typed(t) = input {
            if let Some(i) = impl_trait_in(&t.ty) {
                cx.error_spanned_by(
                    i,
                    "#[differentiate] does not support `impl Trait` parameters (they make the function generic); use a concrete type",
                );
            }
        }
    }
    if let Some(t) = &sig.asyncness {
        cx.error_spanned_by(t, "#[differentiate] does not support `async fn`; differentiate a plain `fn` and call it from async code");
    }
    if let Some(t) = &sig.constness {
        cx.error_spanned_by(t, "#[differentiate] does not support `const fn`; remove `const` (the gradient companions are not const)");
    }
    if let Some(t) = &sig.unsafety {
        cx.error_spanned_by(
            t,
            "#[differentiate] does not support `unsafe fn`; remove `unsafe`",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(
            abi,
            "#[differentiate] does not support `extern` functions; remove the ABI",
        );
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, "#[differentiate] does not support variadic functions");
    }
    for param in &sig.generics.params {
        if !matches!(param, syn::GenericParam::Lifetime(_)) {
            cx.error_spanned_by(
                param,
                "#[differentiate] does not support generic functions; write the function for `f64` (or `f32`) and differentiate that",
            );
        }
    }
    if let Some(w) = &sig.generics.where_clause {
        cx.error_spanned_by(w, "#[differentiate] does not support `where` clauses; write the function for concrete types");
    }
}

/// How a block's tail expression is used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// It is the function's return value.
    Value,
    /// It is discarded (a statement-position block).
    Discard,
}

#[derive(Clone, Copy)]
enum Item<'s> {
    Stmt(&'s syn::Stmt),
    /// An expression in tail position (the `else if` of a returning `if`).
    Tail(&'s syn::Expr),
}

/// The rest of one block still to lower on the current path.
#[derive(Clone)]
struct Frame<'s> {
    items: Vec<Item<'s>>,
    pos: usize,
    tail: Tail,
    /// Whether leaving the frame closes a scope.
    scoped: bool,
}

impl<'s> Frame<'s> {
    fn of_block(block: &'s syn::Block, tail: Tail, scoped: bool) -> Self {
        Frame {
            items: block.stmts.iter().map(Item::Stmt).collect(),
            pos: 0,
            tail,
            scoped,
        }
    }
}

/// Finds `return` in an expression, not descending into closures or items.
#[derive(Default)]
struct FindReturn(bool);

impl<'ast> Visit<'ast> for FindReturn {
    fn visit_expr_return(&mut self, _: &'ast syn::ExprReturn) {
        self.0 = true;
    }
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

fn contains_return(e: &syn::Expr) -> bool {
    let mut finder = FindReturn::default();
    finder.visit_expr(e);
    finder.0
}

/// Finds `break` and `continue` of the current loop: not inside nested
/// loops, closures or items.
#[derive(Default)]
struct FindLoopExit(bool);

impl<'ast> Visit<'ast> for FindLoopExit {
    fn visit_expr_break(&mut self, _: &'ast syn::ExprBreak) {
        self.0 = true;
    }
    fn visit_expr_continue(&mut self, _: &'ast syn::ExprContinue) {
        self.0 = true;
    }
    fn visit_expr_return(&mut self, _: &'ast syn::ExprReturn) {
        self.0 = true;
    }
    fn visit_expr_for_loop(&mut self, _: &'ast syn::ExprForLoop) {}
    fn visit_expr_while(&mut self, _: &'ast syn::ExprWhile) {}
    fn visit_expr_loop(&mut self, _: &'ast syn::ExprLoop) {}
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

/// Whether `e` ends the current path: a `return` (function) or a `break` /
/// `continue` (loop body; a `return` there is reported at the return).
fn contains_terminator(e: &syn::Expr, term: &Term) -> bool {
    match term.base() {
        Term::Function | Term::Region { .. } => contains_return(e),
        Term::Loop { .. } => {
            let mut finder = FindLoopExit::default();
            finder.visit_expr(e);
            finder.0
        }
    }
}

/// The variables a loop body assigns (`x = …`, `x += …`), in order of first
/// assignment; not looking into closures or items.
#[derive(Default)]
struct FindAssigned(Vec<syn::Ident>);

impl FindAssigned {
    fn target(&mut self, e: &syn::Expr) {
        if let syn::Expr::Path(p) = e {
            if let Some(ident) = p.path.get_ident() {
                if !self.0.contains(ident) {
                    self.0.push(ident.clone());
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for FindAssigned {
    fn visit_expr_assign(&mut self, a: &'ast syn::ExprAssign) {
        self.target(&a.left);
        syn::visit::visit_expr_assign(self, a);
    }
    fn visit_expr_binary(&mut self, b: &'ast syn::ExprBinary) {
        if compound_op(&b.op).is_some() {
            self.target(&b.left);
        }
        syn::visit::visit_expr_binary(self, b);
    }
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

/// What ends a path of the code being lowered.
#[derive(Clone)]
enum Term {
    /// The function: a path ends in the value it returns.
    Function,
    /// A loop body: a path ends in `keep_going` and the next values of the
    /// carried variables (their bindings at that point).
    Loop {
        carried: Vec<String>,
        /// The scope holding the carried variables: a `let` in the body that
        /// shadows one of them does not leak out of the loop.
        depth: usize,
    },
    /// The branches of an `if` lowered as a region: a path ends either by
    /// leaving `base` early, yielding `true` and `base`'s yields, or by
    /// falling through to the code after the `if`, yielding `false` and
    /// placeholders; either way followed by the current values of the
    /// variables the `if` assigns (name and scope depth).
    Region {
        base: Box<Term>,
        assigned: Vec<(String, usize)>,
    },
}

impl Term {
    /// The function or loop that a `return`, `break` or `continue` leaves.
    fn base(&self) -> &Term {
        match self {
            Term::Region { base, .. } => base.base(),
            other => other,
        }
    }
}

/// Names for the outs of an `if` that ends paths of `term`.
fn yield_names(term: &Term, outputs: usize) -> Vec<String> {
    match term {
        Term::Function => vec!["ret".into(); outputs],
        Term::Loop { carried, .. } => std::iter::once("keep".to_string())
            .chain(carried.iter().cloned())
            .collect(),
        Term::Region { base, assigned } => std::iter::once("left".to_string())
            .chain(yield_names(base, outputs))
            .chain(assigned.iter().map(|(name, _)| name.clone()))
            .collect(),
    }
}

/// Whether control can reach the end of `block` (it does not always end in
/// `return`, `break` or `continue`).
fn falls_through(block: &syn::Block) -> bool {
    match block.stmts.last() {
        Some(syn::Stmt::Expr(e, _)) => expr_falls_through(e),
        _ => true,
    }
}

fn expr_falls_through(e: &syn::Expr) -> bool {
    match e {
        syn::Expr::Return(_) | syn::Expr::Break(_) | syn::Expr::Continue(_) => false,
        syn::Expr::Block(b) if b.label.is_none() => falls_through(&b.block),
        syn::Expr::If(ei) => {
            falls_through(&ei.then_branch)
                || ei
                    .else_branch
                    .as_ref()
                    .map_or(true, |(_, e)| expr_falls_through(e))
        }
        syn::Expr::Paren(p) => expr_falls_through(&p.expr),
        _ => true,
    }
}

type Scope = BTreeMap<String, Var>;

mod scopes {
    use super::Scope;
    use crate::ir::Var;

    /// The names in scope, innermost scope last. Every change is journaled:
    /// lowering a branch and then going back to the scopes before it costs
    /// what the branch changed, where copying every scope per `if` made a
    /// function with many branches quadratic.
    pub struct Scopes {
        stack: Vec<Scope>,
        journal: Vec<Change>,
    }

    enum Change {
        /// `name` in the scope at `depth` was bound; what it was bound to before.
        Bind {
            depth: usize,
            name: String,
            previous: Option<Var>,
        },
        Push,
        /// The innermost scope was left (kept to be restored).
        Pop(Scope),
    }

    /// A point of the journal to go back to ([`Scopes::undo`]).
    #[derive(Clone, Copy)]
    pub struct Mark(usize);

    impl Scopes {
        /// The function's scope, for its parameters.
        pub fn new() -> Self {
            Scopes {
                stack: vec![Scope::new()],
                journal: vec![],
            }
        }

        pub fn len(&self) -> usize {
            self.stack.len()
        }

        pub fn get(&self, depth: usize, name: &str) -> Option<Var> {
            self.stack.get(depth)?.get(name).copied()
        }

        /// The innermost binding of `name`, and the depth of its scope.
        pub fn lookup(&self, name: &str) -> Option<(usize, Var)> {
            self.stack
                .iter()
                .enumerate()
                .rev()
                .find_map(|(depth, scope)| scope.get(name).map(|v| (depth, *v)))
        }

        pub fn push(&mut self) {
            self.stack.push(Scope::new());
            self.journal.push(Change::Push);
        }

        pub fn pop(&mut self) {
            if let Some(scope) = self.stack.pop() {
                self.journal.push(Change::Pop(scope));
            }
        }

        /// Binds `name` in the scope at `depth`, if there is one.
        pub fn bind(&mut self, depth: usize, name: String, var: Var) {
            if let Some(scope) = self.stack.get_mut(depth) {
                let previous = scope.insert(name.clone(), var);
                self.journal.push(Change::Bind {
                    depth,
                    name,
                    previous,
                });
            }
        }

        pub fn bind_innermost(&mut self, name: String, var: Var) {
            self.bind(self.stack.len().saturating_sub(1), name, var);
        }

        pub fn mark(&self) -> Mark {
            Mark(self.journal.len())
        }

        /// Back to the scopes as they were at `mark`.
        pub fn undo(&mut self, mark: Mark) {
            while self.journal.len() > mark.0 {
                match self.journal.pop() {
                    Some(Change::Bind {
                        depth,
                        name,
                        previous,
                    }) => {
                        let scope = &mut self.stack[depth];
                        match previous {
                            Some(v) => scope.insert(name, v),
                            None => scope.remove(&name),
                        };
                    }
                    Some(Change::Push) => {
                        self.stack.pop();
                    }
                    Some(Change::Pop(scope)) => self.stack.push(scope),
                    None => {}
                }
            }
        }

        /// The names of the scopes below `depth` that were bound at `mark`
        /// and have been bound again since, each with its binding at `mark`,
        /// by depth and then by name. The scopes below `depth` must all have
        /// been there the whole time.
        pub fn rebound_since(&self, mark: Mark, depth: usize) -> Vec<((usize, String), Var)> {
            let mut rebound = std::collections::BTreeMap::new();
            for change in &self.journal[mark.0..] {
                if let Change::Bind {
                    depth: d,
                    name,
                    previous,
                } = change
                {
                    if *d < depth {
                        // The first binding since the mark knows the one at it.
                        rebound.entry((*d, name.clone())).or_insert(*previous);
                    }
                }
            }
            rebound
                .into_iter()
                .filter_map(|(key, before)| Some((key, before?)))
                .collect()
        }
    }
}

use scopes::Scopes;

struct Lowerer<'a> {
    cx: &'a Ctxt,
    func: Func,
    scopes: Scopes,
    /// The float type of an unsuffixed literal with no other context.
    default_float: Ty,
    krate: Option<syn::Path>,
    /// Loop elements that are references (`&f64`) in the user's code but
    /// values in the IR: passed to a function, they are passed as `&x`.
    ref_elements: std::collections::HashSet<Var>,
    /// Runtime functions imported under another name by a `use` in the body
    /// (`use grad::sigmoid as s;`): alias -> the function's name.
    aliases: BTreeMap<String, String>,
    /// Statements lowered so far: early exits copy the code after them into
    /// each branch, which nested guards can make exponential; past a bound
    /// the function is rejected rather than the build made to crawl.
    work: usize,
    /// Set when lowering a function with several outputs for forward mode
    /// ([`lower_outputs`]): the marker call `marker(o₀, o₁, …)` that the
    /// rewrite put at every return, and the number of outputs. The body then
    /// yields the outputs, one operand each.
    outputs: Option<(syn::Ident, usize)>,
}

/// How many statements one function may lower to, copies included.
const WORK_LIMIT: usize = 20_000;

impl<'s> Lowerer<'_> {
    /// `x` as a call argument: `&x` for an element the user has as a reference.
    fn call_arg(&mut self, block: &mut Block, arg: &syn::Expr, value: Operand) -> Operand {
        let bare = matches!(arg, syn::Expr::Path(p) if p.path.get_ident().is_some());
        match value.as_var() {
            Some(v) if bare && self.ref_elements.contains(&v) => {
                self.emit(block, Expr::Ref(value), Ty::Other, false, arg.span())
            }
            _ => value,
        }
    }

    /// Returns `false` for a method (a `self` parameter).
    fn lower_params(&mut self, sig: &syn::Signature, args: &Args) -> bool {
        let mut float_params = vec![];
        let mut bad_param = false;
        let mut method = false;
        for input in &sig.inputs {
            let pat_type = match input {
                syn::FnArg::Receiver(r) => {
                    method = true;
                    bad_param = true;
                    self.cx.error_spanned_by(
                        r,
                        "#[differentiate] does not support methods; write a free function taking the fields it needs as parameters",
                    );
                    continue;
                }
                syn::FnArg::Typed(t) => t,
            };
            let ident = match &*pat_type.pat {
                syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
                other => {
                    bad_param = true;
                    self.cx.error_spanned_by(
                        other,
                        "#[differentiate] parameters must be plain names (`x: f64`, `mut x: f64`); destructure inside the body",
                    );
                    syn::Ident::new("_", other.span())
                }
            };
            if let syn::Type::Reference(r) = &*pat_type.ty {
                if r.mutability.is_some() {
                    bad_param = true;
                    self.cx.error_spanned_by(
                        &pat_type.ty,
                        "#[differentiate] does not support `&mut` parameters (the function must be a pure function of its inputs); take the value or a `&` reference and return the result",
                    );
                }
            }
            let ty = classify(&pat_type.ty);
            let shape = array_shape(&pat_type.ty);
            let float_array = shape.as_ref().is_some_and(|s| s.elem.is_float());
            let var = self.func.new_var(VarInfo {
                name: ident.to_string(),
                ty,
                origin: Origin::Param,
                active: false,
                span: ident.span(),
                shape,
            });
            if ty.is_float() || float_array {
                float_params.push(self.func.params.len());
            }
            self.scopes.bind(0, ident.to_string(), var);
            self.func.params.push(Param {
                var,
                ident,
                ty: (*pat_type.ty).clone(),
                wrt: false,
            });
        }

        match &args.wrt {
            None => {
                for &i in &float_params {
                    self.func.params[i].wrt = true;
                }
                if bad_param {
                    // That parameter's own error says what to change.
                } else if float_params.is_empty() && !sig.inputs.is_empty() {
                    self.cx.error_spanned_by(
                        &sig.inputs,
                        "#[differentiate] found no `f64` or `f32` parameter to differentiate; give the function a float parameter",
                    );
                } else if sig.inputs.is_empty() {
                    self.cx.error_spanned_by(
                        &sig.ident,
                        "#[differentiate] needs a `f64` or `f32` parameter to differentiate with respect to",
                    );
                }
            }
            Some(names) => {
                for name in names {
                    match self.func.params.iter_mut().find(|p| p.ident == *name) {
                        None => self.cx.error_spanned_by(
                            name,
                            format!("`wrt` names `{name}`, which is not a parameter of `{}`", sig.ident),
                        ),
                        Some(p)
                            if !classify(&p.ty).is_float()
                                && !array_shape(&p.ty).is_some_and(|s| s.elem.is_float()) =>
                        {
                            self.cx.error_spanned_by(
                                name,
                                format!(
                                    "`{name}` has type `{}`; only `f64` and `f32` parameters (and slices and arrays of them) can be differentiated",
                                    p.ty.to_token_stream()
                                ),
                            )
                        }
                        Some(p) if p.wrt => self.cx.error_spanned_by(name, format!("`{name}` is listed twice in `wrt`")),
                        Some(p) => p.wrt = true,
                    }
                }
            }
        }
        for i in 0..self.func.params.len() {
            if self.func.params[i].wrt {
                let var = self.func.params[i].var;
                self.func.info_mut(var).active = true;
            }
        }
        !method
    }

    // ---------------------------------------------------------------- paths

    /// The number of values the function yields.
    fn output_count(&self) -> usize {
        self.outputs.as_ref().map_or(1, |(_, n)| *n)
    }

    /// Placeholders for the function's yields, where a path has no value
    /// (it is reported, or never read).
    fn no_outputs(&self) -> Vec<Operand> {
        vec![Operand::float(0.0); self.output_count()]
    }

    /// The function's yields for the returned expression `e`: its value, or,
    /// with several outputs, the arguments of the marker call the rewrite
    /// put there (`jacobian::marked_outputs`).
    fn lower_returned(&mut self, block: &mut Block, e: &'s syn::Expr) -> Vec<Operand> {
        let Some((marker, count)) = self.outputs.clone() else {
            return vec![self.lower_expr(block, e)];
        };
        match unparen(e) {
            syn::Expr::Call(c) if matches!(&*c.func, syn::Expr::Path(p) if p.path.is_ident(&marker)) =>
            {
                if c.args.len() != count {
                    // The function as written has the same type mismatch,
                    // which rustc reports there, on the user's tokens.
                    self.cx.defer_to_rustc();
                    return self.no_outputs();
                }
                c.args.iter().map(|a| self.lower_expr(block, a)).collect()
            }
            other => {
                self.cx.error_spanned_by(
                    other,
                    "forward mode cannot yet take the outputs from this expression; give them as an array `[a, b]`, a tuple `(a, b)` or an array variable (an `if`, `match` or block around them is fine)",
                );
                self.no_outputs()
            }
        }
    }

    /// What a loop-body path yields when it ends: whether to go on, and the
    /// carried variables' current values.
    fn loop_exit(&self, keep: bool, term: &Term) -> Vec<Operand> {
        let mut yields = vec![Operand::Lit(
            syn::LitBool::new(keep, Span::call_site()).into(),
        )];
        if let Term::Loop { carried, depth } = term {
            for name in carried {
                let value = self
                    .scopes
                    .get(*depth, name)
                    .map_or(Operand::float(0.0), Operand::Var);
                yields.push(value);
            }
        }
        yields
    }

    /// Lowers the rest of the function (or loop body) along one path; returns
    /// what the path yields (see [`Term`]).
    fn lower_path(
        &mut self,
        block: &mut Block,
        mut frames: Vec<Frame<'s>>,
        body_span: Span,
        term: &Term,
    ) -> Vec<Operand>
    where
        Self: 's,
    {
        loop {
            let Some(frame) = frames.last_mut() else {
                match term {
                    Term::Loop { .. } => return self.loop_exit(true, term),
                    Term::Region { .. } => return self.fall_through(term),
                    Term::Function => {}
                }
                self.cx.error_spanned_by(
                    quote::quote_spanned!(body_span=> {}),
                    "this path of the function ends without a value; end the body with the value to return",
                );
                return self.no_outputs();
            };
            let Some(&item) = frame.items.get(frame.pos) else {
                if frame.scoped {
                    self.scopes.pop();
                }
                frames.pop();
                continue;
            };
            frame.pos += 1;
            let is_last = frame.pos == frame.items.len();
            self.work += 1;
            if self.work == WORK_LIMIT {
                self.cx.error_spanned_by(
                    quote::quote_spanned!(body_span=> {}),
                    "this function's early exits (`return`, `break`, `continue` inside nested `if`s) copy the code after them too many times; restructure it with `if`/`else` and one exit, or split it into functions",
                );
            }
            if self.work >= WORK_LIMIT {
                return match term {
                    Term::Function => self.no_outputs(),
                    Term::Loop { .. } => self.loop_exit(true, term),
                    Term::Region { .. } => self.fall_through(term),
                };
            }
            let frame_tail = frame.tail;
            let (expr, semi) = match item {
                Item::Tail(e) => (e, false),
                Item::Stmt(syn::Stmt::Expr(e, semi)) => (e, semi.is_some()),
                Item::Stmt(syn::Stmt::Local(local)) => {
                    self.lower_local(block, local);
                    continue;
                }
                Item::Stmt(syn::Stmt::Item(item)) => {
                    self.lower_item(item);
                    continue;
                }
                Item::Stmt(syn::Stmt::Macro(m)) => {
                    let value = self.lower_macro(block, &m.mac);
                    if is_last && m.semi_token.is_none() && frame_tail == Tail::Value {
                        return vec![value];
                    }
                    continue;
                }
            };
            let tail = if is_last && !semi {
                frame_tail
            } else {
                Tail::Discard
            };
            let base = term.base();
            match (expr, base) {
                (syn::Expr::Return(r), Term::Function) => {
                    let values = match &r.expr {
                        Some(e) => self.lower_returned(block, e),
                        None => {
                            self.cx
                                .error_spanned_by(r, "`return` needs the value to return");
                            self.no_outputs()
                        }
                    };
                    return self.leave(term, values);
                }
                (syn::Expr::Return(r), Term::Loop { .. }) => {
                    self.cx.error_spanned_by(
                        r,
                        "`return` inside a loop is not supported yet; `break` out of the loop and return after it",
                    );
                    let exit = self.loop_exit(false, base);
                    return self.leave(term, exit);
                }
                (syn::Expr::Break(b), Term::Loop { .. }) => {
                    if let Some(l) = &b.label {
                        self.cx.error_spanned_by(l, "labelled `break` is not supported yet; restructure the loops with a flag");
                    }
                    if let Some(v) = &b.expr {
                        self.cx.error_spanned_by(v, "`break` with a value is not supported; assign the value to a variable before `break`");
                    }
                    let exit = self.loop_exit(false, base);
                    return self.leave(term, exit);
                }
                (syn::Expr::Continue(c), Term::Loop { .. }) => {
                    if let Some(l) = &c.label {
                        self.cx.error_spanned_by(l, "labelled `continue` is not supported yet; restructure the loops with a flag");
                    }
                    let exit = self.loop_exit(true, base);
                    return self.leave(term, exit);
                }
                _ => {}
            }
            if contains_terminator(expr, term) {
                match expr {
                    syn::Expr::If(ei) => {
                        let rest_left = frames.iter().any(|f| f.pos < f.items.len());
                        let both_go_on = falls_through(&ei.then_branch)
                            && ei
                                .else_branch
                                .as_ref()
                                .map_or(true, |(_, e)| expr_falls_through(e));
                        if rest_left && both_go_on && tail == Tail::Discard {
                            return self.lower_region_if(block, ei, frames, body_span, term);
                        }
                        return self.lower_terminating_if(block, ei, frames, tail, body_span, term);
                    }
                    syn::Expr::Block(b) if b.label.is_none() => {
                        self.scopes.push();
                        frames.push(Frame::of_block(&b.block, tail, true));
                        continue;
                    }
                    // A loop reports a `return` in its body itself.
                    syn::Expr::Paren(_)
                    | syn::Expr::Group(_)
                    | syn::Expr::ForLoop(_)
                    | syn::Expr::While(_)
                    | syn::Expr::Loop(_) => {}
                    _ => {
                        let what = match base {
                            Term::Function | Term::Region { .. } => "`return` is supported only as a statement, in the function body or in an `if`/`else` branch; compute the value into a variable instead",
                            Term::Loop { .. } => "`break`, `continue` and `return` are supported only as statements, in the loop body or in an `if`/`else` branch",
                        };
                        self.cx.error_spanned_by(expr, what);
                        continue;
                    }
                }
            }
            if tail == Tail::Value {
                // Several outputs are yielded from every path: an `if` or a
                // block around them is lowered as paths, not as a value.
                if self.outputs.is_some() {
                    match unparen(expr) {
                        syn::Expr::If(ei) if ei.else_branch.is_some() => {
                            return self
                                .lower_terminating_if(block, ei, frames, tail, body_span, term);
                        }
                        syn::Expr::Block(b) if b.label.is_none() => {
                            self.scopes.push();
                            frames.push(Frame::of_block(&b.block, tail, true));
                            continue;
                        }
                        _ => {}
                    }
                }
                return self.lower_returned(block, expr);
            }
            self.lower_stmt_expr(block, expr);
        }
    }

    /// An `if` that ends paths: the rest of the code is lowered into each
    /// branch, and the `if` yields what every path yields.
    fn lower_terminating_if(
        &mut self,
        block: &mut Block,
        ei: &'s syn::ExprIf,
        frames: Vec<Frame<'s>>,
        tail: Tail,
        body_span: Span,
        term: &Term,
    ) -> Vec<Operand> {
        let cond = self.lower_cond(block, &ei.cond);
        let saved = self.scopes.mark();

        let mut then_frames = frames.clone();
        then_frames.push(Frame::of_block(&ei.then_branch, tail, true));
        self.scopes.push();
        let mut then_block = Block::default();
        let then_values = self.lower_path(&mut then_block, then_frames, body_span, term);
        self.scopes.undo(saved);

        let mut else_frames = frames;
        match &ei.else_branch {
            None => {}
            Some((_, e)) => match &**e {
                syn::Expr::Block(b) => {
                    self.scopes.push();
                    else_frames.push(Frame::of_block(&b.block, tail, true));
                }
                other => else_frames.push(Frame {
                    items: vec![Item::Tail(other)],
                    pos: 0,
                    tail,
                    scoped: false,
                }),
            },
        }
        let mut else_block = Block::default();
        let else_values = self.lower_path(&mut else_block, else_frames, body_span, term);
        self.scopes.undo(saved);

        let names = yield_names(term, self.output_count());
        let mut outs = vec![];
        for ((t, e), name) in then_values.iter().zip(&else_values).zip(&names) {
            let ty = Ty::join([self.func.operand_ty(t), self.func.operand_ty(e)]);
            let active = self.func.is_active(t) || self.func.is_active(e);
            let origin = match name.as_str() {
                "keep" | "left" => Origin::Temp,
                "ret" => Origin::Synth,
                _ => Origin::Local,
            };
            outs.push(self.new_var(name, ty, origin, active, ei.if_token.span));
        }
        then_block.yields = then_values;
        else_block.yields = else_values;
        let values = outs.iter().map(|v| Operand::Var(*v)).collect();
        block.stmts.push(Stmt::If {
            cond,
            then_block,
            else_block,
            outs,
        });
        values
    }

    /// What a path yields when it leaves `term`'s base early with
    /// `base_yields` (the value returned, or a loop body's exit).
    fn leave(&self, term: &Term, base_yields: Vec<Operand>) -> Vec<Operand> {
        match term {
            Term::Region { .. } => {
                let mut yields = vec![Operand::Lit(
                    syn::LitBool::new(true, Span::call_site()).into(),
                )];
                yields.extend(base_yields);
                yields.extend(self.region_values(term));
                yields
            }
            _ => base_yields,
        }
    }

    /// What a path of a region yields when it falls through to the code
    /// after the `if`: `false`, placeholders for the base's yields, and the
    /// assigned variables.
    fn fall_through(&self, term: &Term) -> Vec<Operand> {
        let Term::Region { base, .. } = term else {
            return vec![];
        };
        let mut yields = vec![Operand::Lit(
            syn::LitBool::new(false, Span::call_site()).into(),
        )];
        match &**base {
            Term::Loop { .. } => yields.extend(self.loop_exit(true, base)),
            _ => yields.extend(self.no_outputs()),
        }
        yields.extend(self.region_values(term));
        yields
    }

    /// The current values of the variables a region assigns.
    fn region_values(&self, term: &Term) -> Vec<Operand> {
        let Term::Region { assigned, .. } = term else {
            return vec![];
        };
        assigned
            .iter()
            .map(|(name, depth)| {
                self.scopes
                    .get(*depth, name)
                    .map_or(Operand::float(0.0), Operand::Var)
            })
            .collect()
    }

    /// An `if` some of whose paths leave early while others go on to the
    /// rest of the code, lowered without copying the rest (see the module's
    /// documentation): the `if` as a [`Term::Region`], then
    /// `if left { <leave with what it left with> } else { <the rest> }`.
    fn lower_region_if(
        &mut self,
        block: &mut Block,
        ei: &'s syn::ExprIf,
        frames: Vec<Frame<'s>>,
        body_span: Span,
        term: &Term,
    ) -> Vec<Operand> {
        let mut finder = FindAssigned::default();
        finder.visit_expr_if(ei);
        let assigned: Vec<(String, usize)> = finder
            .0
            .iter()
            .filter_map(|ident| {
                let name = ident.to_string();
                self.lookup(&name).map(|(depth, _)| (name, depth))
            })
            .collect();
        let region = Term::Region {
            base: Box::new(term.base().clone()),
            assigned: assigned.clone(),
        };
        let outs = self.lower_terminating_if(block, ei, vec![], Tail::Discard, body_span, &region);
        let Some((left, rest)) = outs.split_first() else {
            return outs;
        };
        let (base_values, assigned_values) = rest.split_at(rest.len() - assigned.len());
        for ((name, depth), value) in assigned.iter().zip(assigned_values) {
            if let Some(var) = value.as_var() {
                self.scopes.bind(*depth, name.clone(), var);
            }
        }

        let saved = self.scopes.mark();
        let then_block = Block {
            stmts: vec![],
            yields: self.leave(term, base_values.to_vec()),
        };
        let mut else_block = Block::default();
        else_block.yields = self.lower_path(&mut else_block, frames, body_span, term);
        self.scopes.undo(saved);

        let mut outs = vec![];
        for ((t, e), name) in then_block
            .yields
            .iter()
            .zip(&else_block.yields)
            .zip(yield_names(term, self.output_count()))
        {
            let ty = Ty::join([self.func.operand_ty(t), self.func.operand_ty(e)]);
            let active = self.func.is_active(t) || self.func.is_active(e);
            let origin = match name.as_str() {
                "keep" | "left" => Origin::Temp,
                "ret" => Origin::Synth,
                _ => Origin::Local,
            };
            outs.push(self.new_var(&name, ty, origin, active, ei.if_token.span));
        }
        let values = outs.iter().map(|v| Operand::Var(*v)).collect();
        block.stmts.push(Stmt::If {
            cond: left.clone(),
            then_block,
            else_block,
            outs,
        });
        values
    }

    // ------------------------------------------------------------ statements

    fn new_var(&mut self, name: &str, ty: Ty, origin: Origin, active: bool, span: Span) -> Var {
        self.func.new_var(VarInfo {
            name: name.to_string(),
            ty,
            origin,
            active,
            span,
            shape: None,
        })
    }

    fn emit(&mut self, block: &mut Block, expr: Expr, ty: Ty, active: bool, span: Span) -> Operand {
        let var = self.new_var("t", ty, Origin::Temp, active, span);
        block.stmts.push(Stmt::Let { var, expr });
        Operand::Var(var)
    }

    fn lookup(&self, name: &str) -> Option<(usize, Var)> {
        self.scopes.lookup(name)
    }

    /// Gives `value` the user's name `name`: a fresh temporary is renamed in
    /// place, anything else is copied into a new variable.
    fn bind(
        &mut self,
        block: &mut Block,
        name: &syn::Ident,
        value: Operand,
        declared: Option<Ty>,
    ) -> Var {
        let value_ty = match &value {
            // `f64::NEG_INFINITY`, `std::f32::consts::PI`: the type is in the path.
            Operand::Path(p) if p.segments.iter().any(|s| s.ident == "f64") => Ty::F64,
            Operand::Path(p) if p.segments.iter().any(|s| s.ident == "f32") => Ty::F32,
            other => self.func.operand_ty(other),
        };
        let ty = match declared {
            Some(t) if t != Ty::Other => t,
            _ => value_ty,
        };
        if let Operand::Var(v) = value {
            let fresh = defines_last(block, v);
            let info = self.func.info_mut(v);
            if info.origin == Origin::Temp && fresh {
                info.origin = Origin::Local;
                info.name = name.to_string();
                info.ty = ty;
                info.span = name.span();
                return v;
            }
        }
        let active = self.func.is_active(&value);
        let var = self.new_var(&name.to_string(), ty, Origin::Local, active, name.span());
        block.stmts.push(Stmt::Let {
            var,
            expr: Expr::Use(value),
        });
        var
    }

    fn lower_local(&mut self, block: &mut Block, local: &syn::Local) {
        let (pat, declared) = match &local.pat {
            syn::Pat::Type(t) => (&*t.pat, Some(classify(&t.ty))),
            other => (other, None),
        };
        let ident = match pat {
            syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => &p.ident,
            other => {
                self.cx.error_spanned_by(
                    other,
                    "#[differentiate] supports `let name = value;` (optionally `mut` and a type); bind each value with its own `let`",
                );
                return;
            }
        };
        let Some(init) = &local.init else {
            self.cx.error_spanned_by(
                local,
                "declare the variable with its value (`let x = ...;`); a `let` without a value is not supported",
            );
            // Bind the name anyway, so that later assignments to it do not
            // report errors of their own.
            let var = self.bind(block, ident, Operand::float(0.0), declared);
            self.scopes.bind_innermost(ident.to_string(), var);
            return;
        };
        if let Some((else_token, _)) = &init.diverge {
            self.cx.error_spanned_by(
                else_token,
                "`let ... else` is not supported in a #[differentiate] body",
            );
        }
        if contains_return(&init.expr) {
            self.cx.error_spanned_by(
                &init.expr,
                "`return` is supported only as a statement, in the function body or in an `if`/`else` branch; compute the value into a variable instead",
            );
            return;
        }
        if matches!(&*init.expr, syn::Expr::Repeat(_) | syn::Expr::Array(_)) {
            // `let h: [f64; 2] = [0.0; 2]`: the element type the annotation
            // gives, kept on the literals so the generated code is typed too.
            let declared_elem = match &local.pat {
                syn::Pat::Type(t) => {
                    let mut ty = &*t.ty;
                    while let syn::Type::Array(a) = ty {
                        ty = &a.elem;
                    }
                    Some(classify(ty)).filter(|t| matches!(t, Ty::F32 | Ty::F64))
                }
                _ => None,
            };
            self.lower_local_array(block, ident, &init.expr, declared_elem);
            return;
        }
        let value = self.lower_expr(block, &init.expr);
        let var = self.bind(block, ident, value, declared);
        self.scopes.bind_innermost(ident.to_string(), var);
    }

    fn any_wrt(&self) -> bool {
        self.func.params.iter().any(|p| p.wrt)
    }

    /// `let h = [fill; n];`, `[[fill; n]; m]`, `[a, b, c]`: local storage.
    fn lower_local_array(
        &mut self,
        block: &mut Block,
        ident: &syn::Ident,
        e: &syn::Expr,
        declared_elem: Option<Ty>,
    ) {
        let mut lens = vec![];
        let mut fill = e;
        while let syn::Expr::Repeat(r) = fill {
            lens.push((*r.len).clone());
            fill = &r.expr;
        }
        let init = if lens.is_empty() {
            let syn::Expr::Array(items) = e else { return };
            let items: Vec<Operand> = items
                .elems
                .iter()
                .map(|i| self.lower_expr(block, i))
                .collect();
            let n = proc_macro2::Literal::usize_unsuffixed(items.len());
            lens.push(syn::parse_quote!(#n));
            ArrayInit::List(items)
        } else {
            if matches!(fill, syn::Expr::Array(_)) {
                self.cx.error_spanned_by(
                    fill,
                    "repeat a scalar (`[0.0; n]`, `[[0.0; n]; m]`) to make a local array",
                );
                return;
            }
            let value = self.lower_expr(block, fill);
            if self.func.is_active(&value) {
                self.cx.error_spanned_by(
                    fill,
                    "an array repeating a differentiated value is not supported; start from a constant (`[0.0; n]`) and assign the elements",
                );
            }
            ArrayInit::Repeat {
                fill: value,
                lens: lens.clone(),
            }
        };
        let mut init = init;
        if let Some(declared) = declared_elem {
            let retype = |o: &mut Operand| {
                if let Operand::Float(c) = o {
                    if c.ty == Ty::Float {
                        c.ty = declared;
                    }
                }
            };
            match &mut init {
                ArrayInit::Repeat { fill, .. } => retype(fill),
                ArrayInit::List(items) => items.iter_mut().for_each(retype),
            }
        }
        let elem = match &init {
            ArrayInit::Repeat { fill, .. } => self.func.operand_ty(fill),
            ArrayInit::List(items) => Ty::join(items.iter().map(|i| self.func.operand_ty(i))),
        };
        let elem = if elem == Ty::Float {
            self.default_float
        } else {
            elem
        };
        let active = elem.is_float() && self.any_wrt();
        let var = self.func.new_var(VarInfo {
            name: ident.to_string(),
            ty: Ty::Array,
            origin: Origin::Local,
            active,
            span: ident.span(),
            shape: Some(Shape {
                elem,
                lens: lens.into_iter().map(Some).collect(),
            }),
        });
        block.stmts.push(Stmt::LetArray { var, init });
        self.scopes.bind_innermost(ident.to_string(), var);
    }

    /// The array variable `e` names, if it names one.
    fn array_var(&self, e: &syn::Expr) -> Option<Var> {
        match e {
            syn::Expr::Path(p) => {
                let ident = p.path.get_ident()?;
                let (_, var) = self.lookup(&ident.to_string())?;
                (self.func.info(var).ty == Ty::Array).then_some(var)
            }
            syn::Expr::Paren(p) => self.array_var(&p.expr),
            syn::Expr::Reference(r) => self.array_var(&r.expr),
            _ => None,
        }
    }

    /// `a[i][j]`: the array and the lowered indices, all dimensions given.
    fn element(&mut self, block: &mut Block, e: &syn::Expr) -> Option<(Var, Vec<Operand>)> {
        let mut indices = vec![];
        let mut base = e;
        while let syn::Expr::Index(ix) = base {
            indices.push(&*ix.index);
            base = &ix.expr;
        }
        indices.reverse();
        let Some(array) = self.array_var(base) else {
            self.cx.error_spanned_by(
                base,
                "only slice and array parameters and local arrays can be indexed in a #[differentiate] body",
            );
            return None;
        };
        let rank = self.func.info(array).shape.as_ref().map_or(1, Shape::rank);
        if indices.len() != rank {
            self.cx.error_spanned_by(
                e,
                format!("index every dimension of this array (it has {rank}); rows cannot be taken as values"),
            );
            return None;
        }
        if let Some(r) = indices.iter().find(|i| matches!(i, syn::Expr::Range(_))) {
            self.cx.error_spanned_by(
                r,
                "slicing with a range is not supported in a #[differentiate] body; index single elements in a loop",
            );
            return None;
        }
        let index = indices
            .into_iter()
            .map(|i| self.lower_expr(block, i))
            .collect();
        Some((array, index))
    }

    /// `a[i] = value;`
    fn store(&mut self, block: &mut Block, target: &syn::Expr, value: Operand) {
        let Some((array, index)) = self.element(block, target) else {
            return;
        };
        if self.func.info(array).origin == Origin::Param {
            self.cx.error_spanned_by(
                target,
                "parameters cannot be assigned to; copy the values into a local array (`let mut h = [0.0; n];`)",
            );
            return;
        }
        block.stmts.push(Stmt::Store {
            array,
            index,
            value,
        });
    }

    // ---------------------------------------------------------------- loops

    /// `for`, `while` and `loop`: the variables the body assigns are carried
    /// from one iteration to the next; their values after the loop are the
    /// loop's outs.
    fn lower_loop(&mut self, block: &mut Block, e: &syn::Expr) {
        let (label, body) = match e {
            syn::Expr::ForLoop(f) => (&f.label, &f.body),
            syn::Expr::While(w) => (&w.label, &w.body),
            syn::Expr::Loop(l) => (&l.label, &l.body),
            _ => return,
        };
        // What `body.span()` gives, without printing the body to tokens.
        let body_span = body.brace_token.span.join();
        if let Some(label) = label {
            self.cx.error_spanned_by(
                label,
                "loop labels are not supported yet; restructure the loops with a flag",
            );
        }

        // The header is evaluated once, before the loop.
        let mut element_of: Vec<(syn::Ident, Var, bool)> = vec![];
        let mut index_name: Option<syn::Ident> = None;
        let kind_header = match e {
            syn::Expr::ForLoop(f) => {
                match self.for_header(block, f, &mut element_of, &mut index_name) {
                    Some(h) => Some(h),
                    None => return,
                }
            }
            _ => None,
        };

        // Carried variables: assigned in the body, declared outside it.
        let mut finder = FindAssigned::default();
        finder.visit_block(body);
        if let syn::Expr::While(w) = e {
            finder.visit_expr(&w.cond);
        }
        let carried_names: Vec<(String, usize, Var)> = finder
            .0
            .iter()
            .filter_map(|i| {
                let name = i.to_string();
                self.lookup(&name).map(|(depth, var)| (name, depth, var))
            })
            .filter(|(_, _, var)| self.func.info(*var).ty != Ty::Array)
            .collect();
        let saved = self.scopes.mark();
        // Which carried variables are differentiated: those whose value
        // before the loop is, and those a pass through the body makes so
        // (then the body is lowered again, knowing it).
        let mut phi_active: Vec<bool> = carried_names
            .iter()
            .map(|(_, _, init)| self.func.info(*init).active)
            .collect();
        let error_mark = self.cx.mark();
        let (carried, body_block, kind) = loop {
            self.scopes.undo(saved);
            self.scopes.push();
            let mut carried = vec![];
            for ((name, _, init), &active) in carried_names.iter().zip(&phi_active) {
                let info = self.func.info(*init).clone();
                let phi = self.new_var(name, info.ty, Origin::Local, active, info.span);
                self.scopes.bind_innermost(name.clone(), phi);
                carried.push((Operand::Var(*init), phi));
            }

            let mut body_block = Block::default();
            let mut kind = LoopKind::Loop;
            if let Some((range, var)) = kind_header.clone() {
                if let Some(name) = &index_name {
                    self.scopes.bind_innermost(name.to_string(), var);
                }
                for (name, array, by_ref) in &element_of {
                    let info = self.func.info(*array);
                    let elem = info.shape.as_ref().map_or(Ty::Other, |s| s.elem);
                    let active = info.active && elem.is_float();
                    let value = self.emit(
                        &mut body_block,
                        Expr::Index {
                            array: *array,
                            index: vec![Operand::Var(var)],
                        },
                        elem,
                        active,
                        name.span(),
                    );
                    if let Operand::Var(v) = value {
                        if *by_ref {
                            self.ref_elements.insert(v);
                        }
                        let info = self.func.info_mut(v);
                        info.origin = Origin::Local;
                        info.name = name.to_string();
                        self.scopes.bind_innermost(name.to_string(), v);
                    }
                }
                kind = LoopKind::For { var, range };
            }

            let term = Term::Loop {
                carried: carried_names.iter().map(|(n, _, _)| n.clone()).collect(),
                depth: self.scopes.len() - 1,
            };
            let frames = vec![Frame::of_block(body, Tail::Discard, true)];
            self.scopes.push();
            let yields = match e {
                syn::Expr::While(w) => {
                    let cond = self.lower_cond(&mut body_block, &w.cond);
                    let exit = self.loop_exit(false, &term);
                    let mut then_block = Block::default();
                    let then_yields = self.lower_path(&mut then_block, frames, body_span, &term);
                    then_block.yields = then_yields;
                    let else_block = Block {
                        stmts: vec![],
                        yields: exit,
                    };
                    let mut outs = vec![];
                    for (k, (t, e)) in then_block.yields.iter().zip(&else_block.yields).enumerate()
                    {
                        let ty = Ty::join([self.func.operand_ty(t), self.func.operand_ty(e)]);
                        let active = self.func.is_active(t) || self.func.is_active(e);
                        let name = if k == 0 {
                            "keep".to_string()
                        } else {
                            carried_names[k - 1].0.clone()
                        };
                        outs.push(self.new_var(
                            &name,
                            ty,
                            Origin::Local,
                            active,
                            w.while_token.span,
                        ));
                    }
                    let values = outs.iter().map(|v| Operand::Var(*v)).collect();
                    body_block.stmts.push(Stmt::If {
                        cond,
                        then_block,
                        else_block,
                        outs,
                    });
                    values
                }
                _ => self.lower_path(&mut body_block, frames, body_span, &term),
            };
            let mut changed = false;
            for (j, next) in yields.iter().skip(1).enumerate() {
                if self.func.is_active(next) && !phi_active[j] {
                    phi_active[j] = true;
                    changed = true;
                }
            }
            let mut body_block = body_block;
            body_block.yields = yields;
            if !changed {
                break (carried, body_block, kind);
            }
            self.cx.truncate(error_mark);
        };
        self.scopes.undo(saved);

        let mut carried_ir = vec![];
        for ((name, depth, _), (init, phi)) in carried_names.iter().zip(carried) {
            let info = self.func.info(phi).clone();
            let out = self.new_var(name, info.ty, Origin::Local, info.active, info.span);
            self.scopes.bind(*depth, name.clone(), out);
            carried_ir.push(Carried { init, phi, out });
        }
        block.stmts.push(Stmt::Loop(Box::new(Loop {
            kind,
            carried: carried_ir,
            body: body_block,
            count: None,
            id: None,
            reverse_of: None,
        })));
    }

    /// The range a `for` loop runs over and its loop variable; for loops over
    /// slices, the loop runs over the indices and `elements` gets the
    /// element bindings (name, array).
    fn for_header(
        &mut self,
        block: &mut Block,
        f: &syn::ExprForLoop,
        elements: &mut Vec<(syn::Ident, Var, bool)>,
        index_name: &mut Option<syn::Ident>,
    ) -> Option<(RangeSpec, Var)> {
        let mut iter = &*f.expr;
        let mut rev = false;
        let mut step = None;
        // Peel `.rev()` and `.step_by(k)` (in that order from the outside).
        if let syn::Expr::MethodCall(mc) = iter {
            if mc.method == "rev" && mc.args.is_empty() {
                rev = true;
                iter = &mc.receiver;
            }
        }
        if let syn::Expr::MethodCall(mc) = iter {
            if mc.method == "step_by" && mc.args.len() == 1 {
                step = Some(&mc.args[0]);
                iter = &mc.receiver;
            }
        }
        if let syn::Expr::MethodCall(mc) = iter {
            if mc.method == "rev" {
                self.cx.error_spanned_by(
                    &mc.method,
                    "write `.step_by(k).rev()` (the steps of the range, reversed) rather than `.rev().step_by(k)`",
                );
                return None;
            }
        }
        while let syn::Expr::Paren(p) = iter {
            iter = &p.expr;
        }
        let int_var = |this: &mut Self, name: &str, span: Span| {
            this.new_var(name, Ty::Int, Origin::Local, false, span)
        };
        let synth_index =
            |this: &mut Self, span: Span| this.new_var("i", Ty::Int, Origin::Synth, false, span);

        if let syn::Expr::Range(r) = iter {
            let (Some(start), Some(end)) = (&r.start, &r.end) else {
                self.cx
                    .error_spanned_by(r, "a `for` range needs both ends (`a..b` or `a..=b`)");
                return None;
            };
            let start = self.lower_expr(block, start);
            let end = self.lower_expr(block, end);
            let step = step.map(|s| self.lower_expr(block, s));
            let inclusive = matches!(r.limits, syn::RangeLimits::Closed(_));
            let var = match &*f.pat {
                syn::Pat::Ident(p) if p.subpat.is_none() => {
                    let v = int_var(self, &p.ident.to_string(), p.ident.span());
                    *index_name = Some(p.ident.clone());
                    v
                }
                syn::Pat::Wild(w) => synth_index(self, w.underscore_token.span),
                other => {
                    self.cx.error_spanned_by(
                        other,
                        "bind the loop variable to a name (`for i in 0..n`)",
                    );
                    return None;
                }
            };
            return Some((
                RangeSpec {
                    start,
                    end,
                    inclusive,
                    step,
                    rev,
                },
                var,
            ));
        }

        // Iteration over slices: `x.iter()`, `&x`, `x`, with `.zip(..)` and
        // `.enumerate()`; runs over the indices.
        if step.is_some() {
            self.cx.error_spanned_by(&f.expr, "`.step_by` is supported on ranges; write `for i in (0..x.len()).step_by(k)` and index `x[i]`");
            return None;
        }
        let mut enumerate = false;
        let mut source = iter;
        if let syn::Expr::MethodCall(mc) = source {
            if mc.method == "enumerate" && mc.args.is_empty() {
                enumerate = true;
                source = &mc.receiver;
            }
        }
        let mut arrays = vec![];
        if !self.collect_zip(source, &mut arrays) {
            self.cx.error_spanned_by(
                &f.expr,
                "a #[differentiate] `for` loop runs over a range (`0..n`, `(a..=b).rev()`, `(0..n).step_by(k)`) or over slices (`x.iter()`, `x.iter().zip(y.iter())`, `.enumerate()`)",
            );
            return None;
        }
        // The patterns: `xi`, `(i, xi)`, `(a, b)`, `(i, (a, b))`, with `&`.
        let mut pat = &*f.pat;
        let mut index_ident = None;
        if enumerate {
            let syn::Pat::Tuple(t) = pat else {
                self.cx
                    .error_spanned_by(pat, "bind `.enumerate()` as `(i, x)`");
                return None;
            };
            if t.elems.len() != 2 {
                self.cx
                    .error_spanned_by(pat, "bind `.enumerate()` as `(i, x)`");
                return None;
            }
            match &t.elems[0] {
                syn::Pat::Ident(p) => index_ident = Some(p.ident.clone()),
                syn::Pat::Wild(_) => {}
                other => {
                    self.cx.error_spanned_by(other, "bind the index to a name");
                    return None;
                }
            }
            pat = &t.elems[1];
        }
        let names = match (pat, arrays.len()) {
            (syn::Pat::Tuple(t), n) if n > 1 && t.elems.len() == n => t.elems.iter().collect(),
            (p, 1) => vec![p],
            (other, _) => {
                self.cx
                    .error_spanned_by(other, "bind one name per zipped slice (`(a, b)`)");
                return None;
            }
        };
        for (p, (array, by_ref)) in names.into_iter().zip(&arrays) {
            let (p, by_ref) = match p {
                syn::Pat::Reference(r) => (&*r.pat, false),
                other => (other, *by_ref),
            };
            match p {
                syn::Pat::Ident(i) if i.subpat.is_none() => {
                    let rank = self.func.info(*array).shape.as_ref().map_or(1, Shape::rank);
                    if rank != 1 {
                        self.cx.error_spanned_by(i, "iterating over the rows of a 2-D array is not supported; loop over the indices (`for j in 0..w.len()`) and index `w[j][k]`");
                        return None;
                    }
                    elements.push((i.ident.clone(), *array, by_ref));
                }
                syn::Pat::Wild(_) => {}
                other => {
                    self.cx
                        .error_spanned_by(other, "bind the element to a name");
                    return None;
                }
            }
        }
        let mut end = self.emit(block, Expr::Len(arrays[0].0), Ty::Int, false, f.expr.span());
        for (a, _) in &arrays[1..] {
            let len = self.emit(block, Expr::Len(*a), Ty::Int, false, f.expr.span());
            let rule = rules::lookup("min", CallForm::Method)?;
            end = self.prim(
                None,
                block,
                rule,
                CallForm::Method,
                vec![end, len],
                f.expr.span(),
            );
        }
        let var = match &index_ident {
            Some(i) => {
                *index_name = Some(i.clone());
                int_var(self, &i.to_string(), i.span())
            }
            None => synth_index(self, f.for_token.span),
        };
        let zero = Operand::Lit(syn::parse_quote!(0));
        Some((
            RangeSpec {
                start: zero,
                end,
                inclusive: false,
                step: None,
                rev,
            },
            var,
        ))
    }

    /// `x.iter()`, `&x`, `x`, `a.zip(b)`: the arrays iterated in lockstep.
    /// `x.iter()`, `&x`, `x`, `a.zip(b)`: the arrays iterated in lockstep,
    /// each with whether its items are references (`&f64`) in the user's code.
    fn collect_zip(&self, e: &syn::Expr, arrays: &mut Vec<(Var, bool)>) -> bool {
        match e {
            syn::Expr::MethodCall(mc) if mc.method == "zip" && mc.args.len() == 1 => {
                self.collect_zip(&mc.receiver, arrays) && self.collect_zip(&mc.args[0], arrays)
            }
            syn::Expr::MethodCall(mc) if mc.method == "iter" && mc.args.is_empty() => {
                let ok = self.collect_zip(&mc.receiver, arrays);
                if let Some(last) = arrays.last_mut() {
                    last.1 = true;
                }
                ok
            }
            syn::Expr::MethodCall(mc) if mc.method == "into_iter" && mc.args.is_empty() => {
                self.collect_zip(&mc.receiver, arrays)
            }
            syn::Expr::Reference(r) => {
                let ok = self.collect_zip(&r.expr, arrays);
                if let Some(last) = arrays.last_mut() {
                    last.1 = true;
                }
                ok
            }
            other => match self.array_var(other) {
                Some(a) => {
                    // A slice or `&[f64; N]` parameter yields references; an
                    // array by value yields values.
                    let by_ref = self
                        .func
                        .params
                        .iter()
                        .any(|p| p.var == a && matches!(p.ty, syn::Type::Reference(_)));
                    arrays.push((a, by_ref));
                    true
                }
                None => false,
            },
        }
    }

    /// An expression whose value is discarded: assignments, `if` statements, blocks.
    fn lower_stmt_expr(&mut self, block: &mut Block, e: &syn::Expr) {
        match e {
            syn::Expr::Assign(a) if matches!(&*a.left, syn::Expr::Index(_)) => {
                let value = self.lower_expr(block, &a.right);
                self.store(block, &a.left, value);
            }
            syn::Expr::Binary(b)
                if compound_op(&b.op).is_some() && matches!(&*b.left, syn::Expr::Index(_)) =>
            {
                let Some(op) = compound_op(&b.op) else { return };
                let current = self.lower_expr(block, &b.left);
                let rhs = self.lower_expr(block, &b.right);
                let value = self.binary(block, op, current, rhs, b.op.span());
                self.store(block, &b.left, value);
            }
            syn::Expr::Assign(a) => {
                let value = self.lower_expr(block, &a.right);
                self.assign(block, &a.left, value);
            }
            syn::Expr::Binary(b) if compound_op(&b.op).is_some() => {
                let Some(op) = compound_op(&b.op) else { return };
                let current = self.lower_expr(block, &b.left);
                let rhs = self.lower_expr(block, &b.right);
                let value = self.binary(block, op, current, rhs, b.op.span());
                self.assign(block, &b.left, value);
            }
            syn::Expr::ForLoop(_) | syn::Expr::While(_) | syn::Expr::Loop(_) => {
                self.lower_loop(block, e);
            }
            syn::Expr::Match(m) => {
                if let Some(ei) = desugar_match(m, self.cx) {
                    self.lower_if(block, &ei, false);
                }
            }
            syn::Expr::If(ei) => {
                self.lower_if(block, ei, false);
            }
            syn::Expr::Block(b) if b.label.is_none() => {
                self.lower_scoped_block(block, &b.block, false);
            }
            syn::Expr::Paren(p) => self.lower_stmt_expr(block, &p.expr),
            other => {
                self.lower_expr(block, other);
            }
        }
    }

    fn assign(&mut self, block: &mut Block, target: &syn::Expr, value: Operand) {
        let ident = match target {
            syn::Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
            _ => None,
        };
        let Some(ident) = ident else {
            self.cx.error_spanned_by(
                target,
                "#[differentiate] supports assigning to local variables only (`x = ...`, `x += ...`)",
            );
            return;
        };
        let Some((depth, _)) = self.lookup(&ident.to_string()) else {
            self.cx.error_spanned_by(
                ident,
                format!("cannot find the variable `{ident}` to assign to"),
            );
            return;
        };
        let var = self.bind(block, ident, value, None);
        self.scopes.bind(depth, ident.to_string(), var);
    }

    /// Lowers a `{ ... }` block in a scope of its own; returns its value.
    fn lower_scoped_block(
        &mut self,
        block: &mut Block,
        b: &syn::Block,
        want_value: bool,
    ) -> Option<Operand> {
        self.scopes.push();
        let mut value = None;
        for (i, stmt) in b.stmts.iter().enumerate() {
            let is_last = i + 1 == b.stmts.len();
            match stmt {
                syn::Stmt::Local(local) => self.lower_local(block, local),
                syn::Stmt::Item(item) => self.lower_item(item),
                syn::Stmt::Macro(m) => {
                    let v = self.lower_macro(block, &m.mac);
                    if is_last && m.semi_token.is_none() {
                        value = Some(v);
                    }
                }
                syn::Stmt::Expr(e, semi) => {
                    if contains_return(e) {
                        self.cx.error_spanned_by(
                            e,
                            "`return` is supported only as a statement, in the function body or in an `if`/`else` branch; compute the value into a variable instead",
                        );
                    } else if is_last && semi.is_none() && want_value {
                        value = Some(self.lower_expr(block, e));
                    } else {
                        self.lower_stmt_expr(block, e);
                    }
                }
            }
        }
        self.scopes.pop();
        value
    }

    /// `if`/`else` with assignments to outer variables flowing out as outs,
    /// and the value as the first out when `want_value`.
    fn lower_if(
        &mut self,
        block: &mut Block,
        ei: &syn::ExprIf,
        want_value: bool,
    ) -> Option<Operand> {
        let cond = self.lower_cond(block, &ei.cond);
        let before = self.scopes.mark();
        let depth = self.scopes.len();
        // What a branch rebinds of the enclosing scopes: (depth, name),
        // the binding before the `if` and the one at the end of the branch.
        let rebound = |scopes: &Scopes| -> Vec<((usize, String), Var, Var)> {
            scopes
                .rebound_since(before, depth)
                .into_iter()
                .map(|((d, name), original)| {
                    let now = scopes.get(d, &name).unwrap_or(original);
                    ((d, name), original, now)
                })
                .collect()
        };

        let mut then_block = Block::default();
        let then_value = self.lower_scoped_block(&mut then_block, &ei.then_branch, want_value);
        let then_rebound = rebound(&self.scopes);
        self.scopes.undo(before);

        let mut else_block = Block::default();
        let else_value = match ei.else_branch.as_ref().map(|(_, e)| &**e) {
            None => None,
            Some(syn::Expr::Block(b)) => {
                self.lower_scoped_block(&mut else_block, &b.block, want_value)
            }
            Some(syn::Expr::If(inner)) => self.lower_if(&mut else_block, inner, want_value),
            Some(other) => Some(self.lower_expr(&mut else_block, other)),
        };
        let else_rebound = rebound(&self.scopes);
        self.scopes.undo(before);

        let mut outs = vec![];
        let mut value = None;
        if want_value {
            match (then_value, else_value) {
                (Some(t), Some(e)) => {
                    let ty = Ty::join([self.func.operand_ty(&t), self.func.operand_ty(&e)]);
                    let active = self.func.is_active(&t) || self.func.is_active(&e);
                    let out = self.new_var("t", ty, Origin::Temp, active, ei.if_token.span);
                    then_block.yields.push(t);
                    else_block.yields.push(e);
                    outs.push(out);
                    value = Some(Operand::Var(out));
                }
                _ => {
                    // rustc says "`if` may be missing an `else` clause" on the
                    // function, which is emitted unchanged.
                    self.cx.defer_to_rustc();
                    value = Some(Operand::float(0.0));
                }
            }
        }
        // (depth, name) -> the binding before the `if`, at the end of the
        // then branch, at the end of the else branch; in the order of the
        // scopes and then of the names.
        let mut joined: BTreeMap<(usize, String), (Var, Var, Var)> = BTreeMap::new();
        for (key, original, now) in then_rebound {
            joined.insert(key, (original, now, original));
        }
        for (key, original, now) in else_rebound {
            joined
                .entry(key)
                .or_insert((original, original, original))
                .2 = now;
        }
        for ((depth, name), (original, t, e)) in joined {
            if t == original && e == original {
                continue;
            }
            let ty = Ty::join([self.func.info(t).ty, self.func.info(e).ty]);
            let active = self.func.info(t).active || self.func.info(e).active;
            let span = self.func.info(original).span;
            let out = self.new_var(&name, ty, Origin::Local, active, span);
            then_block.yields.push(Operand::Var(t));
            else_block.yields.push(Operand::Var(e));
            outs.push(out);
            self.scopes.bind(depth, name, out);
        }
        block.stmts.push(Stmt::If {
            cond,
            then_block,
            else_block,
            outs,
        });
        value
    }

    fn lower_cond(&mut self, block: &mut Block, cond: &syn::Expr) -> Operand {
        if let syn::Expr::Let(l) = cond {
            self.cx.error_spanned_by(
                l,
                "`if let` is not supported in a #[differentiate] body; test the value with a comparison instead",
            );
            return Operand::Lit(syn::parse_quote!(false));
        }
        self.lower_expr(block, cond)
    }

    fn lower_macro(&mut self, block: &mut Block, mac: &syn::Macro) -> Operand {
        if mac
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "matches")
        {
            let parsed = mac.parse_body_with(|input: syn::parse::ParseStream| {
                let e: syn::Expr = input.parse()?;
                input.parse::<syn::Token![,]>()?;
                let pat = syn::Pat::parse_multi_with_leading_vert(input)?;
                if input.peek(syn::Token![if]) {
                    return Err(input.error("guards in `matches!` are not supported here; write `matches!(x, p) && guard`"));
                }
                input.parse::<Option<syn::Token![,]>>()?;
                Ok((e, pat))
            });
            return match parsed {
                Ok((e, pat)) => {
                    let operand = self.lower_expr(block, &e);
                    if self.func.is_active(&operand) {
                        self.cx.error_spanned_by(&e, "`matches!` on a differentiated value is not supported; compare it with `<`, `==`, …");
                    }
                    if let Some(b) = binding_in(&pat) {
                        self.cx.error_spanned_by(b, "patterns that bind values are not supported in a #[differentiate] body; match on constants, ranges and enum variants");
                    }
                    self.emit(
                        block,
                        Expr::Matches { operand, pat },
                        Ty::Bool,
                        false,
                        mac.span(),
                    )
                }
                Err(e) => {
                    self.cx.syn_error(e);
                    Operand::Lit(syn::parse_quote!(false))
                }
            };
        }
        if mac.path.segments.last().is_some_and(|s| s.ident == "chain") {
            match chain::desugar(mac.tokens.clone()) {
                Ok(e) => return self.lower_expr(block, &e),
                // The function is emitted unchanged, so the `chain!` macro
                // itself reports this, spanned on its own input.
                Err(_) => self.cx.defer_to_rustc(),
            }
        } else {
            self.cx.error_spanned_by(
                mac,
                "macros other than `chain!` and `matches!` are not supported in a #[differentiate] body; compute the value in a separate function",
            );
        }
        Operand::float(0.0)
    }

    // ----------------------------------------------------------- expressions

    fn float_literal(&self, lit: &syn::LitFloat) -> Operand {
        let ty = match lit.suffix() {
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            _ => Ty::Float,
        };
        let value = lit.base10_parse::<f64>().unwrap_or(f64::NAN);
        Operand::Float(FloatConst { value, ty })
    }

    fn binary(
        &mut self,
        block: &mut Block,
        op: BinOp,
        l: Operand,
        r: Operand,
        span: Span,
    ) -> Operand {
        let active = self.func.is_active(&l) || self.func.is_active(&r);
        if active && rules::for_binop(op).is_none() && !op.is_comparison() {
            self.cx.error_spanned_by(
                quote::quote_spanned!(span=> _),
                match op {
                    BinOp::Rem => "`%` has no derivative rule; for floats write the remainder as `x - (x / y).trunc() * y`, which differentiates".to_string(),
                    _ => format!(
                        "`{}` has no derivative rule; it cannot be applied to a differentiated value",
                        op.symbol()
                    ),
                },
            );
        }
        let ty = if op.is_comparison() {
            Ty::Bool
        } else {
            Ty::join([self.func.operand_ty(&l), self.func.operand_ty(&r)])
        };
        let active = active && rules::for_binop(op).is_some();
        self.emit(block, Expr::Binary(op, l, r), ty, active, span)
    }

    fn lower_expr(&mut self, block: &mut Block, e: &syn::Expr) -> Operand {
        match e {
            syn::Expr::Lit(l) => match &l.lit {
                syn::Lit::Float(f) => self.float_literal(f),
                other => Operand::Lit(other.clone()),
            },
            syn::Expr::Paren(p) => self.lower_expr(block, &p.expr),
            syn::Expr::Group(g) => self.lower_expr(block, &g.expr),
            syn::Expr::Path(p) => self.lower_path_expr(p),
            syn::Expr::Unary(u) => {
                let operand = self.lower_expr(block, &u.expr);
                match u.op {
                    syn::UnOp::Neg(_) => {
                        let ty = self.func.operand_ty(&operand);
                        let active = self.func.is_active(&operand);
                        self.emit(block, Expr::Unary(UnOp::Neg, operand), ty, active, u.span())
                    }
                    syn::UnOp::Not(_) => {
                        let ty = self.func.operand_ty(&operand);
                        self.emit(block, Expr::Unary(UnOp::Not, operand), ty, false, u.span())
                    }
                    // `*x` of a `&f64` is the value itself.
                    syn::UnOp::Deref(_) => operand,
                    _ => {
                        self.cx.error_spanned_by(
                            u,
                            "this unary operator is not supported in a #[differentiate] body",
                        );
                        operand
                    }
                }
            }
            syn::Expr::Binary(b) => self.lower_binary(block, b),
            syn::Expr::Cast(c) => {
                let operand = self.lower_expr(block, &c.expr);
                let ty = classify(&c.ty);
                let active = self.func.is_active(&operand) && ty.is_float();
                self.emit(
                    block,
                    Expr::Cast {
                        operand,
                        ty: (*c.ty).clone(),
                    },
                    ty,
                    active,
                    c.span(),
                )
            }
            syn::Expr::Block(b) if b.label.is_none() => self
                .lower_scoped_block(block, &b.block, true)
                .unwrap_or_else(|| {
                    self.cx.error_spanned_by(
                        b,
                        "this block is used as a value, so it must end with one",
                    );
                    Operand::float(0.0)
                }),
            syn::Expr::If(ei) => self
                .lower_if(block, ei, true)
                .unwrap_or_else(|| Operand::float(0.0)),
            syn::Expr::Match(m) => match desugar_match(m, self.cx) {
                Some(ei) => self
                    .lower_if(block, &ei, true)
                    .unwrap_or_else(|| Operand::float(0.0)),
                None => Operand::float(0.0),
            },
            syn::Expr::MethodCall(mc) => self.lower_method_call(block, mc),
            syn::Expr::Call(c) => self.lower_call(block, c),
            syn::Expr::Macro(m) => self.lower_macro(block, &m.mac),
            syn::Expr::Index(_) => match self.element(block, e) {
                Some((array, index)) => {
                    let info = self.func.info(array);
                    let elem = info.shape.as_ref().map_or(Ty::Other, |s| s.elem);
                    let active = info.active && elem.is_float();
                    self.emit(block, Expr::Index { array, index }, elem, active, e.span())
                }
                None => Operand::float(0.0),
            },
            syn::Expr::Field(f) => {
                let base = self.lower_expr(block, &f.base);
                if self.func.is_active(&base) {
                    self.cx
                        .error_spanned_by(f, "fields of differentiated values are not supported");
                }
                self.emit(
                    block,
                    Expr::Field {
                        base,
                        member: f.member.clone(),
                    },
                    Ty::Other,
                    false,
                    f.span(),
                )
            }
            other => {
                self.cx
                    .error_spanned_by(keyword_of(other), unsupported_message(other));
                Operand::float(0.0)
            }
        }
    }

    fn lower_path_expr(&mut self, p: &syn::ExprPath) -> Operand {
        if p.qself.is_none() {
            if let Some(ident) = p.path.get_ident() {
                if let Some((_, var)) = self.lookup(&ident.to_string()) {
                    if self.func.info(var).ty == Ty::Array {
                        self.cx.error_spanned_by(
                            p,
                            "a slice or array can be indexed (`x[i]`), measured (`x.len()`) or iterated (`for xi in x.iter()`) in a #[differentiate] body, not used as a value; pass its elements",
                        );
                    }
                    return Operand::Var(var);
                }
            }
        }
        Operand::Path(p.path.clone())
    }

    fn lower_binary(&mut self, block: &mut Block, b: &syn::ExprBinary) -> Operand {
        let op = match b.op {
            syn::BinOp::Add(_) => BinOp::Add,
            syn::BinOp::Sub(_) => BinOp::Sub,
            syn::BinOp::Mul(_) => BinOp::Mul,
            syn::BinOp::Div(_) => BinOp::Div,
            syn::BinOp::Rem(_) => BinOp::Rem,
            syn::BinOp::Eq(_) => BinOp::Eq,
            syn::BinOp::Ne(_) => BinOp::Ne,
            syn::BinOp::Lt(_) => BinOp::Lt,
            syn::BinOp::Le(_) => BinOp::Le,
            syn::BinOp::Gt(_) => BinOp::Gt,
            syn::BinOp::Ge(_) => BinOp::Ge,
            syn::BinOp::BitAnd(_) => BinOp::BitAnd,
            syn::BinOp::BitOr(_) => BinOp::BitOr,
            syn::BinOp::BitXor(_) => BinOp::BitXor,
            syn::BinOp::Shl(_) => BinOp::Shl,
            syn::BinOp::Shr(_) => BinOp::Shr,
            syn::BinOp::And(_) | syn::BinOp::Or(_) => return self.lower_short_circuit(block, b),
            _ => {
                self.cx.error_spanned_by(
                    b,
                    "an assignment is a statement: write it on its own line (`x += y;`), not inside an expression",
                );
                return Operand::float(0.0);
            }
        };
        let l = self.lower_expr(block, &b.left);
        let r = self.lower_expr(block, &b.right);
        self.binary(block, op, l, r, b.op.span())
    }

    /// `a && b` is `if a { b } else { false }`: the right side is evaluated
    /// only when it decides the result, as in Rust.
    fn lower_short_circuit(&mut self, block: &mut Block, b: &syn::ExprBinary) -> Operand {
        let is_and = matches!(b.op, syn::BinOp::And(_));
        let cond = self.lower_expr(block, &b.left);
        let mut rhs_block = Block::default();
        let rhs = self.lower_expr(&mut rhs_block, &b.right);
        rhs_block.yields.push(rhs);
        let constant = Block {
            stmts: vec![],
            yields: vec![Operand::Lit(syn::LitBool::new(!is_and, b.op.span()).into())],
        };
        let (then_block, else_block) = if is_and {
            (rhs_block, constant)
        } else {
            (constant, rhs_block)
        };
        let out = self.new_var("t", Ty::Bool, Origin::Temp, false, b.span());
        block.stmts.push(Stmt::If {
            cond,
            then_block,
            else_block,
            outs: vec![out],
        });
        Operand::Var(out)
    }

    fn prim(
        &mut self,
        path: Option<syn::Path>,
        block: &mut Block,
        rule: &'static rules::Rule,
        form: CallForm,
        args: Vec<Operand>,
        span: Span,
    ) -> Operand {
        let active = args
            .iter()
            .enumerate()
            .any(|(i, a)| !rule.is_int_param(i) && self.func.is_active(a));
        let ty = match args.first().map(|a| self.func.operand_ty(a)) {
            Some(Ty::Int) => Ty::Int,
            Some(Ty::Other) | None => Ty::join(args.iter().map(|a| self.func.operand_ty(a))),
            Some(t) => t,
        };
        let ty = if ty == Ty::Other && active {
            self.default_float
        } else {
            ty
        };
        self.emit(
            block,
            Expr::Prim {
                rule,
                form,
                args,
                path,
            },
            ty,
            active,
            span,
        )
    }

    fn lower_method_call(&mut self, block: &mut Block, mc: &syn::ExprMethodCall) -> Operand {
        if let Some(array) = self.array_var(&mc.receiver) {
            if mc.method == "len" && mc.args.is_empty() {
                return self.emit(block, Expr::Len(array), Ty::Int, false, mc.span());
            }
            self.cx.error_spanned_by(
                &mc.method,
                format!("`.{}()` on a slice or array is not supported in a #[differentiate] body; index it (`x[i]`) or iterate it in a `for` loop", mc.method),
            );
            return Operand::float(0.0);
        }
        let receiver = self.lower_expr(block, &mc.receiver);
        let mut args = vec![receiver.clone()];
        for a in &mc.args {
            args.push(self.lower_expr(block, a));
        }
        let name = mc.method.to_string();
        let any_active = args.iter().any(|a| self.func.is_active(a));
        if let Some(rule) = rules::lookup(&name, CallForm::Method) {
            if rule.params.len() == args.len() && mc.turbofish.is_none() {
                return self.prim(None, block, rule, CallForm::Method, args, mc.method.span());
            }
        }
        if any_active {
            self.cx.error_spanned_by(
                &mc.method,
                format!(
                    "no derivative rule for the method `{name}` on a differentiated value; use the supported float methods (sin, exp, ln, powi, …), the runtime functions, or a #[differentiate] function"
                ),
            );
        }
        let args = args.split_off(1);
        self.emit(
            block,
            Expr::Method {
                receiver,
                method: mc.method.clone(),
                args,
            },
            Ty::Other,
            false,
            mc.span(),
        )
    }

    /// An item in the body: a `use` is kept (and repeated in the
    /// companions); any other item is an error.
    fn lower_item(&mut self, item: &syn::Item) {
        let syn::Item::Use(u) = item else {
            self.cx.error_spanned_by(
                item,
                "items inside a #[differentiate] body are not supported (except `use`); move this item out of the function",
            );
            return;
        };
        let mut imports = vec![];
        use_tree_imports(&u.tree, &mut vec![], &mut imports);
        for (path, alias) in imports {
            let Some(name) = path.last() else { continue };
            let from_runtime =
                matches!(path.first().map(String::as_str), Some("grad" | "grad_core"))
                    || self
                        .krate
                        .as_ref()
                        .and_then(|k| k.segments.first())
                        .is_some_and(|k| path.first() == Some(&k.ident.to_string()));
            if from_runtime && rules::is_runtime_fn(name) && alias != *name {
                self.aliases.insert(alias, name.clone());
            }
        }
        self.func.uses.push(u.clone());
    }

    fn is_runtime_path(&self, path: &syn::Path) -> Option<String> {
        if let Some(ident) = path.get_ident() {
            if let Some(name) = self.aliases.get(&ident.to_string()) {
                return Some(name.clone());
            }
        }
        let last = path.segments.last()?.ident.to_string();
        if !rules::is_runtime_fn(&last) {
            return None;
        }
        if path.segments.len() == 1 && path.leading_colon.is_none() {
            return Some(last);
        }
        let first = path.segments.first()?.ident.to_string();
        let krate_first = self
            .krate
            .as_ref()
            .and_then(|k| k.segments.first())
            .map(|s| s.ident.to_string());
        (first == "grad" || first == "grad_core" || Some(&first) == krate_first.as_ref())
            .then_some(last)
    }

    fn lower_call(&mut self, block: &mut Block, c: &syn::ExprCall) -> Operand {
        let path = match &*c.func {
            syn::Expr::Path(p) if p.qself.is_none() => &p.path,
            other => {
                self.cx.error_spanned_by(
                    other,
                    "#[differentiate] can call functions by path only (`f(x)`, `module::f(x)`, `f64::sin(x)`); closures and function values are not supported",
                );
                return Operand::float(0.0);
            }
        };
        let args: Vec<Operand> = c.args.iter().map(|a| self.lower_expr(block, a)).collect();
        let any_active = args.iter().any(|a| self.func.is_active(a));
        let span = path.span();

        // `f64::sin(x)`: the method form written as a path.
        if path.segments.len() == 2 {
            let ty = match path.segments[0].ident.to_string().as_str() {
                "f64" => Some(Ty::F64),
                "f32" => Some(Ty::F32),
                _ => None,
            };
            if let Some(ty) = ty {
                let name = path.segments[1].ident.to_string();
                match rules::lookup(&name, CallForm::Method) {
                    Some(rule) if rule.params.len() == args.len() => {
                        let out = self.prim(None, block, rule, CallForm::Method, args, span);
                        if let Operand::Var(v) = out {
                            self.func.info_mut(v).ty = ty;
                        }
                        return out;
                    }
                    _ if any_active => {
                        self.cx.error_spanned_by(
                            path,
                            format!("no derivative rule for `{}`; use the supported float methods (sin, exp, ln, powi, …) or the runtime functions", path_text(path)),
                        );
                        return Operand::float(0.0);
                    }
                    _ => {}
                }
            }
        }

        if let Some(name) = self.is_runtime_path(path) {
            if let Some(rule) = rules::lookup(&name, CallForm::Runtime) {
                if rule.params.len() == args.len() {
                    return self.prim(
                        Some(path.clone()),
                        block,
                        rule,
                        CallForm::Runtime,
                        args,
                        span,
                    );
                }
                // rustc reports the argument count on the unchanged function.
                self.cx.defer_to_rustc();
                return Operand::float(0.0);
            }
        }

        let ty = Ty::join(args.iter().map(|a| self.func.operand_ty(a)));
        if any_active {
            let ty = if ty.is_float() {
                ty
            } else {
                self.default_float
            };
            let spans = c.args.iter().map(|a| a.span()).collect();
            self.emit(
                block,
                Expr::DiffCall {
                    func: path.clone(),
                    args,
                    spans,
                },
                ty,
                true,
                span,
            )
        } else {
            let args = args
                .into_iter()
                .zip(&c.args)
                .map(|(value, arg)| self.call_arg(block, arg, value))
                .collect();
            self.emit(
                block,
                Expr::Call {
                    func: path.clone(),
                    args,
                },
                Ty::Other,
                false,
                span,
            )
        }
    }
}

/// The imports of a `use` tree: each path (segments, without a leading
/// `::`) and the name it is imported as.
fn use_tree_imports(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_tree_imports(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut path = prefix.clone();
            path.push(n.ident.to_string());
            out.push((path, n.ident.to_string()));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            path.push(r.ident.to_string());
            out.push((path, r.rename.to_string()));
        }
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_tree_imports(t, prefix, out);
            }
        }
        syn::UseTree::Glob(_) => {}
    }
}

/// `a::b::c` as the user wrote it, without token spacing.
fn path_text(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let lead = if path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{lead}{}", segments.join("::"))
}

fn defines_last(block: &Block, v: Var) -> bool {
    match block.stmts.last() {
        Some(Stmt::Let { var, .. }) => *var == v,
        Some(Stmt::If { outs, .. }) => outs.first() == Some(&v),
        _ => false,
    }
}

fn compound_op(op: &syn::BinOp) -> Option<BinOp> {
    Some(match op {
        syn::BinOp::AddAssign(_) => BinOp::Add,
        syn::BinOp::SubAssign(_) => BinOp::Sub,
        syn::BinOp::MulAssign(_) => BinOp::Mul,
        syn::BinOp::DivAssign(_) => BinOp::Div,
        syn::BinOp::RemAssign(_) => BinOp::Rem,
        syn::BinOp::BitAndAssign(_) => BinOp::BitAnd,
        syn::BinOp::BitOrAssign(_) => BinOp::BitOr,
        syn::BinOp::BitXorAssign(_) => BinOp::BitXor,
        syn::BinOp::ShlAssign(_) => BinOp::Shl,
        syn::BinOp::ShrAssign(_) => BinOp::Shr,
        _ => return None,
    })
}

/// The tokens an error about `e` points at: the keyword of a multi-line
/// construct, the whole expression otherwise.
fn keyword_of(e: &syn::Expr) -> proc_macro2::TokenStream {
    match e {
        syn::Expr::Match(m) => m.match_token.to_token_stream(),
        syn::Expr::ForLoop(f) => f.for_token.to_token_stream(),
        syn::Expr::While(w) => w.while_token.to_token_stream(),
        syn::Expr::Loop(l) => l.loop_token.to_token_stream(),
        syn::Expr::Unsafe(u) => u.unsafe_token.to_token_stream(),
        syn::Expr::Async(a) => a.async_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

/// What to say about a construct the macro cannot differentiate.
fn unsupported_message(e: &syn::Expr) -> String {
    let what = match e {
        syn::Expr::Match(_) => "`match` is not supported yet in a #[differentiate] body; write the arms as an `if` / `else if` / `else` chain",
        syn::Expr::ForLoop(_) | syn::Expr::While(_) | syn::Expr::Loop(_) => {
            "loops are not supported yet in a #[differentiate] body; write the steps out, or move the loop into a function that is not differentiated"
        }
        syn::Expr::Closure(_) => "closures are not supported in a #[differentiate] body; write the closure as a separate #[differentiate] fn and call it",
        syn::Expr::Unsafe(_) => "`unsafe` blocks are not supported in a #[differentiate] body; move the unsafe code into a separate function",
        syn::Expr::Async(_) | syn::Expr::Await(_) => "async code is not supported in a #[differentiate] body",
        syn::Expr::Index(_) => "indexing is not supported yet in a #[differentiate] body; pass the values as separate `f64` parameters",
        syn::Expr::Array(_) | syn::Expr::Repeat(_) => "arrays are not supported yet in a #[differentiate] body",
        syn::Expr::Tuple(_) => "tuples are not supported in a #[differentiate] body; bind each value with its own `let`",
        syn::Expr::Reference(_) => "references are not supported in a #[differentiate] body; use the value directly",
        syn::Expr::Try(_) => "the `?` operator is not supported in a #[differentiate] body",
        syn::Expr::Range(_) => "ranges are not supported in a #[differentiate] body",
        syn::Expr::Struct(_) => "struct expressions are not supported in a #[differentiate] body",
        syn::Expr::Let(_) => "`let` expressions (`if let`) are not supported; test the value with a comparison",
        syn::Expr::Break(_) | syn::Expr::Continue(_) => "`break` and `continue` are not supported yet (there are no loops)",
        syn::Expr::Block(_) => "labelled blocks are not supported in a #[differentiate] body",
        syn::Expr::Assign(_) => "an assignment is a statement: write it on its own line (`x = y;`), not inside an expression",
        syn::Expr::Return(_) => "`return` is supported only as a statement, in the function body or in an `if`/`else` branch",
        _ => "this expression is not supported in a #[differentiate] body",
    };
    what.to_string()
}

/// The first binding (`v`, not a constant or a unit variant) in a pattern.
fn binding_in(pat: &syn::Pat) -> Option<&syn::Ident> {
    struct Find<'a>(Option<&'a syn::Ident>);
    impl<'a> Visit<'a> for Find<'a> {
        fn visit_pat_ident(&mut self, p: &'a syn::PatIdent) {
            // Rust style names constants and variants in UpperCamelCase or
            // SCREAMING_CASE; a lower-case name is a fresh binding.
            if p.ident
                .to_string()
                .starts_with(|c: char| c.is_lowercase() || c == '_')
            {
                self.0.get_or_insert(&p.ident);
            }
            syn::visit::visit_pat_ident(self, p);
        }
    }
    let mut find = Find(None);
    find.visit_pat(pat);
    find.0
}
