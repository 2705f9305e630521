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
//! the function's result. The code after such an `if` is therefore lowered
//! once per path that reaches it; that is linear for the usual guard clauses.

use std::collections::BTreeMap;

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::args::Args;
use crate::chain;
use crate::ctxt::Ctxt;
use crate::ir::{
    BinOp, Block, CallForm, Expr, FloatConst, Func, Operand, Origin, Param, Stmt, Ty, UnOp, Var,
    VarInfo,
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
        _ => Ty::Other,
    }
}

/// Checks the signature and lowers the body. Errors go to `cx`; the IR is
/// returned whenever the signature could be read, so that the body's errors
/// are found too.
pub fn lower(item: &syn::ItemFn, args: &Args, cx: &Ctxt) -> Option<(Func, Signature)> {
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
        },
        scopes: vec![BTreeMap::new()],
        default_float: ret,
        krate: args.krate.clone(),
    };
    if !lowerer.lower_params(sig, args) {
        // A method: the companions could not stand beside it anyway.
        return None;
    }

    let frames = vec![Frame::of_block(&item.block, Tail::Value, false)];
    let mut body = Block::default();
    let result = lowerer.lower_path(&mut body, frames, item.block.span());
    body.yields = vec![result];
    lowerer.func.body = body;
    Some((lowerer.func, Signature { ret }))
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

type Scope = BTreeMap<String, Var>;

struct Lowerer<'a> {
    cx: &'a Ctxt,
    func: Func,
    scopes: Vec<Scope>,
    /// The float type of an unsuffixed literal with no other context.
    default_float: Ty,
    krate: Option<syn::Path>,
}

impl<'s> Lowerer<'_> {
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
            let ty = classify(&pat_type.ty);
            let var = self.func.new_var(VarInfo {
                name: ident.to_string(),
                ty,
                origin: Origin::Param,
                active: false,
                span: ident.span(),
                shape: None,
            });
            if ty.is_float() {
                float_params.push(self.func.params.len());
            }
            self.scopes[0].insert(ident.to_string(), var);
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
                        Some(p) if !classify(&p.ty).is_float() => self.cx.error_spanned_by(
                            name,
                            format!(
                                "`{name}` has type `{}`; only `f64` and `f32` parameters can be differentiated",
                                p.ty.to_token_stream()
                            ),
                        ),
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

    /// Lowers the rest of the function along one path; returns the value the
    /// path returns.
    fn lower_path(
        &mut self,
        block: &mut Block,
        mut frames: Vec<Frame<'s>>,
        body_span: Span,
    ) -> Operand
    where
        Self: 's,
    {
        loop {
            let Some(frame) = frames.last_mut() else {
                self.cx.error_spanned_by(
                    quote::quote_spanned!(body_span=> {}),
                    "this path of the function ends without a value; end the body with the value to return",
                );
                return Operand::float(0.0);
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
            let frame_tail = frame.tail;
            let (expr, semi) = match item {
                Item::Tail(e) => (e, false),
                Item::Stmt(syn::Stmt::Expr(e, semi)) => (e, semi.is_some()),
                Item::Stmt(syn::Stmt::Local(local)) => {
                    self.lower_local(block, local);
                    continue;
                }
                Item::Stmt(syn::Stmt::Item(item)) => {
                    self.cx.error_spanned_by(
                        item,
                        "items inside a #[differentiate] body are not supported; move this item out of the function",
                    );
                    continue;
                }
                Item::Stmt(syn::Stmt::Macro(m)) => {
                    let value = self.lower_macro(block, &m.mac);
                    if is_last && m.semi_token.is_none() && frame_tail == Tail::Value {
                        return value;
                    }
                    continue;
                }
            };
            let tail = if is_last && !semi {
                frame_tail
            } else {
                Tail::Discard
            };
            if let syn::Expr::Return(r) = expr {
                return match &r.expr {
                    Some(e) => self.lower_expr(block, e),
                    None => {
                        self.cx
                            .error_spanned_by(r, "`return` needs the value to return");
                        Operand::float(0.0)
                    }
                };
            }
            if contains_return(expr) {
                match expr {
                    syn::Expr::If(ei) => {
                        return self.lower_returning_if(block, ei, frames, tail, body_span)
                    }
                    syn::Expr::Block(b) if b.label.is_none() => {
                        self.scopes.push(Scope::new());
                        frames.push(Frame::of_block(&b.block, tail, true));
                        continue;
                    }
                    syn::Expr::Paren(_) | syn::Expr::Group(_) => {}
                    _ => {
                        self.cx.error_spanned_by(
                            expr,
                            "`return` is supported only as a statement, in the function body or in an `if`/`else` branch; compute the value into a variable instead",
                        );
                        continue;
                    }
                }
            }
            if tail == Tail::Value {
                return self.lower_expr(block, expr);
            }
            self.lower_stmt_expr(block, expr);
        }
    }

    fn lower_returning_if(
        &mut self,
        block: &mut Block,
        ei: &'s syn::ExprIf,
        frames: Vec<Frame<'s>>,
        tail: Tail,
        body_span: Span,
    ) -> Operand {
        let cond = self.lower_cond(block, &ei.cond);
        let saved = self.scopes.clone();

        let mut then_frames = frames.clone();
        then_frames.push(Frame::of_block(&ei.then_branch, tail, true));
        self.scopes.push(Scope::new());
        let mut then_block = Block::default();
        let then_value = self.lower_path(&mut then_block, then_frames, body_span);
        self.scopes = saved.clone();

        let mut else_frames = frames;
        match &ei.else_branch {
            None => {}
            Some((_, e)) => match &**e {
                syn::Expr::Block(b) => {
                    self.scopes.push(Scope::new());
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
        let else_value = self.lower_path(&mut else_block, else_frames, body_span);
        self.scopes = saved;

        let ty = Ty::join([
            self.func.operand_ty(&then_value),
            self.func.operand_ty(&else_value),
        ]);
        let active = self.func.is_active(&then_value) || self.func.is_active(&else_value);
        let out = self.new_var("ret", ty, Origin::Local, active, ei.if_token.span);
        then_block.yields = vec![then_value];
        else_block.yields = vec![else_value];
        block.stmts.push(Stmt::If {
            cond,
            then_block,
            else_block,
            outs: vec![out],
        });
        Operand::Var(out)
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
        self.scopes
            .iter()
            .enumerate()
            .rev()
            .find_map(|(depth, scope)| scope.get(name).map(|v| (depth, *v)))
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
        let value_ty = self.func.operand_ty(&value);
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
            if let Some(scope) = self.scopes.last_mut() {
                scope.insert(ident.to_string(), var);
            }
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
        let value = self.lower_expr(block, &init.expr);
        let var = self.bind(block, ident, value, declared);
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(ident.to_string(), var);
        }
    }

    /// An expression whose value is discarded: assignments, `if` statements, blocks.
    fn lower_stmt_expr(&mut self, block: &mut Block, e: &syn::Expr) {
        match e {
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
        self.scopes[depth].insert(ident.to_string(), var);
    }

    /// Lowers a `{ ... }` block in a scope of its own; returns its value.
    fn lower_scoped_block(
        &mut self,
        block: &mut Block,
        b: &syn::Block,
        want_value: bool,
    ) -> Option<Operand> {
        self.scopes.push(Scope::new());
        let mut value = None;
        for (i, stmt) in b.stmts.iter().enumerate() {
            let is_last = i + 1 == b.stmts.len();
            match stmt {
                syn::Stmt::Local(local) => self.lower_local(block, local),
                syn::Stmt::Item(item) => self.cx.error_spanned_by(
                    item,
                    "items inside a #[differentiate] body are not supported; move this item out of the function",
                ),
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
        let before = self.scopes.clone();

        let mut then_block = Block::default();
        let then_value = self.lower_scoped_block(&mut then_block, &ei.then_branch, want_value);
        let then_scopes = std::mem::replace(&mut self.scopes, before.clone());

        let mut else_block = Block::default();
        let else_value = match ei.else_branch.as_ref().map(|(_, e)| &**e) {
            None => None,
            Some(syn::Expr::Block(b)) => {
                self.lower_scoped_block(&mut else_block, &b.block, want_value)
            }
            Some(syn::Expr::If(inner)) => self.lower_if(&mut else_block, inner, want_value),
            Some(other) => Some(self.lower_expr(&mut else_block, other)),
        };
        let else_scopes = std::mem::replace(&mut self.scopes, before.clone());

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
        for (depth, scope) in before.iter().enumerate() {
            for (name, &original) in scope {
                let t = then_scopes[depth].get(name).copied().unwrap_or(original);
                let e = else_scopes[depth].get(name).copied().unwrap_or(original);
                if t == original && e == original {
                    continue;
                }
                let ty = Ty::join([self.func.info(t).ty, self.func.info(e).ty]);
                let active = self.func.info(t).active || self.func.info(e).active;
                let span = self.func.info(original).span;
                let out = self.new_var(name, ty, Origin::Local, active, span);
                then_block.yields.push(Operand::Var(t));
                else_block.yields.push(Operand::Var(e));
                outs.push(out);
                self.scopes[depth].insert(name.clone(), out);
            }
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
                "macros other than `chain!` are not supported in a #[differentiate] body; compute the value in a separate function",
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
            syn::Expr::MethodCall(mc) => self.lower_method_call(block, mc),
            syn::Expr::Call(c) => self.lower_call(block, c),
            syn::Expr::Macro(m) => self.lower_macro(block, &m.mac),
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

    fn is_runtime_path(&self, path: &syn::Path) -> Option<String> {
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
