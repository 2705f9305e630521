//! IR -> tokens, the last step. Owns every generated name: the companions
//! (`f_grad`, `f_backward`, `FGrad`), the temporaries (`__t1`, the adjoint
//! `__d_z` of `z`), and the choice of names that cannot clash with anything
//! the user wrote. Single-use temporaries are folded back into the expression
//! that uses them, so the output reads like hand-written code under
//! `cargo expand`.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, ToTokens};

use crate::ir::{
    ArrayInit, BinOp, Block, CallForm, Expr, FastMap, FastSet, FloatConst, Func, Loop, LoopKind,
    Operand, Origin, RangeSpec, Stmt, Target, Ty, UnOp, Var,
};

// ------------------------------------------------------------------ names

/// Picks identifiers that differ from every identifier in the user's function.
pub struct Namer {
    reserved: FastSet<String>,
    taken: FastSet<String>,
    /// Names even parameters must not have in generated code.
    forbidden: FastSet<String>,
    next_number: FastMap<String, usize>,
    /// The prefix of a parameter's tangent: `d` (`f_jvp`'s `dw`) or `v`
    /// (`f_hvp`'s direction `vw`).
    pub tangent_prefix: &'static str,
}

impl Namer {
    /// Reserves every identifier that occurs in `tokens`.
    pub fn new(tokens: TokenStream) -> Self {
        let mut reserved = FastSet::default();
        collect_idents(tokens, &mut reserved);
        Namer {
            reserved,
            taken: FastSet::default(),
            forbidden: FastSet::default(),
            next_number: FastMap::default(),
            tangent_prefix: "d",
        }
    }

    /// Names that must not be bound at all, not even by a parameter.
    pub fn forbid(&mut self, names: impl IntoIterator<Item = String>) {
        for name in names {
            self.reserved.insert(name.clone());
            self.forbidden.insert(name);
        }
    }

    /// `base`, or `base_2`, `base_3`, … : a name nobody else uses.
    pub fn fresh(&mut self, base: &str) -> String {
        let mut candidate = base.to_string();
        let mut n = 2;
        while self.reserved.contains(&candidate) || self.taken.contains(&candidate) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        self.taken.insert(candidate.clone());
        candidate
    }

    /// `base1`, `base2`, … : numbered temporaries.
    fn numbered(&mut self, base: &str) -> String {
        let n = self.next_number.entry(base.to_string()).or_insert(1);
        loop {
            let candidate = format!("{base}{n}");
            *n += 1;
            if !self.reserved.contains(&candidate) && self.taken.insert(candidate.clone()) {
                return candidate;
            }
        }
    }

    /// The user's own name for a user variable, unless an earlier variable
    /// already has it (shadowing), in which case a numbered variant.
    fn claim(&mut self, name: &str) -> String {
        if self.taken.insert(name.to_string()) {
            return name.to_string();
        }
        self.fresh(name.trim_start_matches("r#"))
    }
}

fn collect_idents(tokens: TokenStream, out: &mut FastSet<String>) {
    for tt in tokens {
        match tt {
            TokenTree::Ident(i) => {
                out.insert(i.to_string());
            }
            TokenTree::Group(g) => collect_idents(g.stream(), out),
            _ => {}
        }
    }
}

/// The same tokens, every one spanned at `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tt = TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

pub fn ident(name: &str, span: Span) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, span),
        None => Ident::new(name, span),
    }
}

/// `loss_fn` -> `LossFnGrad`.
pub fn struct_name(fn_name: &Ident) -> Ident {
    let name = fn_name.to_string();
    let mut camel = String::new();
    for part in name
        .trim_start_matches("r#")
        .split('_')
        .filter(|p| !p.is_empty())
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            camel.extend(first.to_uppercase());
            camel.push_str(chars.as_str());
        }
    }
    format_ident!("{}Grad", camel, span = fn_name.span())
}

/// `path::f` -> `path::f_<suffix>`, keeping the user's spans so that an error
/// (no such companion) points at the call the user wrote.
pub fn companion_path(path: &syn::Path, suffix: &str) -> syn::Path {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        let base = last.ident.to_string();
        last.ident = format_ident!(
            "{}_{}",
            base.trim_start_matches("r#"),
            suffix,
            span = last.ident.span()
        );
    }
    path
}

/// `a::GGrad` for a path `a::g`: the callee's gradient struct.
pub fn grad_struct_path(path: &syn::Path) -> syn::Path {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = struct_name(&last.ident);
        last.arguments = syn::PathArguments::None;
    }
    path
}

// ------------------------------------------------------------ expressions

const P_CMP: u8 = 5;
const P_BOR: u8 = 6;
const P_BXOR: u8 = 7;
const P_BAND: u8 = 8;
const P_SHIFT: u8 = 9;
const P_ADD: u8 = 10;
const P_MUL: u8 = 11;
const P_CAST: u8 = 12;
const P_UNARY: u8 = 13;
const P_POSTFIX: u8 = 14;
const P_ATOM: u8 = 15;

fn precedence(op: BinOp) -> u8 {
    match op {
        BinOp::Add | BinOp::Sub => P_ADD,
        BinOp::Mul | BinOp::Div | BinOp::Rem => P_MUL,
        BinOp::Shl | BinOp::Shr => P_SHIFT,
        BinOp::BitAnd => P_BAND,
        BinOp::BitXor => P_BXOR,
        BinOp::BitOr => P_BOR,
        _ => P_CMP,
    }
}

type Prec = (TokenStream, u8);

/// Whether `tokens` end with `as Type` outside any parentheses (a path type
/// such as `f64` or `core::primitive::f64`).
fn ends_in_cast(tokens: &TokenStream) -> bool {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let Some(at) = trees
        .iter()
        .rposition(|t| matches!(t, TokenTree::Ident(i) if i == "as"))
    else {
        return false;
    };
    trees[at + 1..].iter().all(|t| match t {
        TokenTree::Ident(_) => true,
        TokenTree::Punct(p) => p.as_char() == ':',
        _ => false,
    })
}

fn wrap((tokens, prec): Prec, min: u8) -> TokenStream {
    if prec < min {
        quote!((#tokens))
    } else {
        tokens
    }
}

/// Writes float constants: shortest round-trip digits, in the precision of
/// the operation, with a suffix only where rustc needs one.
fn float_literal(c: &FloatConst, suffix: Option<Ty>) -> Prec {
    let magnitude = c.value.abs();
    let mut text = match c.ty {
        Ty::F32 => format_float(magnitude as f32 as f64, true),
        _ => format_float(magnitude, false),
    };
    match suffix {
        Some(Ty::F32) => text.push_str("_f32"),
        Some(_) => text.push_str("_f64"),
        None => {}
    }
    let lit = syn::LitFloat::new(&text, Span::call_site());
    if c.value.is_sign_negative() && c.value != 0.0 {
        (quote!(-#lit), P_UNARY)
    } else {
        (lit.into_token_stream(), P_ATOM)
    }
}

fn format_float(v: f64, single: bool) -> String {
    if !v.is_finite() {
        return "0.0".into();
    }
    let text = if v != 0.0 && !(1e-5..1e16).contains(&v) {
        if single {
            format!("{:e}", v as f32)
        } else {
            format!("{v:e}")
        }
    } else if single {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    };
    if text.contains(['.', 'e']) {
        text
    } else {
        format!("{text}.0")
    }
}

/// Emits the body of one function of the IR.
pub struct Emitter<'a> {
    pub func: &'a Func,
    pub krate: &'a TokenStream,
    pub names: Vec<Ident>,
    /// Temporaries folded into their single use.
    inline: FastMap<Var, &'a Expr>,
    live: FastMap<Var, usize>,
    /// The name of the `&mut FGrad` parameter, for `AccumGrad`.
    pub grad_param: Option<Ident>,
    /// The name of the gradient's tangent in `f_hvp`, for `AccumGrad` with `dot`.
    pub grad_dot_param: Option<Ident>,
    /// The local `&mut [T]` through which a slice parameter's gradient (or,
    /// with `true`, its tangent) is added into, per parameter index.
    slice_grads: FastMap<(usize, bool), Ident>,
    /// The float type of unsuffixed literals that must carry a suffix.
    pub default_float: Ty,
    /// Arrays written after their `let` (declared `mut`).
    mutated: FastSet<Var>,
    /// Loop-carried updates written as compound assignments: the next value's
    /// variable, and the phi it updates (`s += x[i];` for `let s_2 = s + x[i];`
    /// followed by `s = s_2;` at the end of the body).
    compound: FastMap<Var, Var>,
}

impl<'a> Emitter<'a> {
    pub fn new(
        func: &'a Func,
        krate: &'a TokenStream,
        namer: &mut Namer,
        default_float: Ty,
    ) -> Self {
        // Only variables that appear get names, so that the user's name goes
        // to the first variable that is emitted with it.
        let mut appears = FastSet::default();
        let mut reads = vec![];
        crate::ir::reads_in_block(&func.body, &mut reads);
        appears.extend(reads);
        crate::ir::walk_stmts(&func.body, &mut |s| {
            appears.extend(s.defines());
            if let Stmt::Loop(l) = s {
                appears.extend(l.body_params());
            }
        });
        let mut names: Vec<Ident> = Vec::with_capacity(func.vars.len());
        for (index, info) in func.vars.iter().enumerate() {
            let span = info.span;
            let var = Var(index as u32);
            // Parameters, and the tangent parameters of forward mode, are
            // named even when the body never reads them.
            let parameter = match info.origin {
                Origin::Param => true,
                Origin::Tangent(of) => func.info(of).origin == Origin::Param,
                _ => false,
            };
            if !appears.contains(&var) && !parameter {
                names.push(Ident::new("__unused", Span::call_site()));
                continue;
            }
            let name = match &info.origin {
                Origin::Param if namer.forbidden.contains(&info.name) => namer.fresh(&info.name),
                Origin::Param => {
                    namer.taken.insert(info.name.clone());
                    info.name.clone()
                }
                // A local named like a function the body calls (`let sigmoid
                // = …` after a loop that calls `sigmoid`) would hide it from
                // the reverse code emitted after it.
                Origin::Local if namer.forbidden.contains(&info.name) => namer.fresh(&info.name),
                Origin::Local => namer.claim(&info.name),
                Origin::Synth => namer.fresh(&info.name),
                Origin::Temp => namer.numbered("__t"),
                Origin::Adjoint(of) => {
                    // The value itself may have been folded away (`z` in
                    // `let mut z = x;`): its adjoint still takes its name.
                    let base = if appears.contains(of) || func.info(*of).origin == Origin::Param {
                        names[of.0 as usize].to_string()
                    } else {
                        func.info(*of).name.clone()
                    };
                    namer.fresh(&format!(
                        "__d_{}",
                        base.trim_start_matches("r#").trim_start_matches("__")
                    ))
                }
                Origin::CalleeGrad => {
                    namer.fresh(&format!("__{}", info.name.trim_start_matches("r#")))
                }
                // A tangent parameter is `d<name>` (DESIGN.md); other
                // tangents are `__<name>_dot`, JAX's name for them.
                Origin::Tangent(of) => {
                    let base = if appears.contains(of) || func.info(*of).origin == Origin::Param {
                        names[of.0 as usize].to_string()
                    } else {
                        func.info(*of).name.clone()
                    };
                    let base = base.trim_start_matches("r#");
                    if func.info(*of).origin == Origin::Param {
                        namer.fresh(&format!("{}{base}", namer.tangent_prefix))
                    } else {
                        namer.fresh(&format!("__{}_dot", base.trim_start_matches("__")))
                    }
                }
                // A value passed out of a branch, or a recomputed copy: the
                // original's name (its scope has ended), or, if the original
                // is not emitted, a name of its own kind.
                Origin::Export(of) if appears.contains(of) => names[of.0 as usize].to_string(),
                Origin::Export(of) => {
                    let mut root = *of;
                    while let Origin::Export(next) = &func.info(root).origin {
                        root = *next;
                    }
                    let root_info = func.info(root);
                    match &root_info.origin {
                        Origin::Local | Origin::Param => namer.claim(&root_info.name),
                        Origin::Adjoint(_) | Origin::CalleeGrad => {
                            namer.fresh(&format!("__{}", root_info.name.trim_start_matches("r#")))
                        }
                        _ => namer.numbered("__t"),
                    }
                }
            };
            let span = match info.origin {
                Origin::Param | Origin::Local | Origin::Export(_) => span,
                _ => Span::call_site(),
            };
            names.push(ident(&name, span));
        }
        // A slice's gradient is added into through a local `&mut [T]` of the
        // parameter's length (what `prepare_grad` returns): its pointer and
        // length stay in registers, where `grad.x[i] += …` reloads them from
        // the struct after every store, and a bounds check on the parameter
        // (`x[i]`) also covers it.
        let mut used_slices = FastSet::default();
        crate::ir::walk_stmts(&func.body, &mut |s| {
            if let Stmt::AccumIndex { target, .. } = s {
                match target {
                    Target::Grad(p) => used_slices.insert((*p, false)),
                    Target::GradDot(p) => used_slices.insert((*p, true)),
                    Target::Var(_) => false,
                };
            }
        });
        let mut slice_grads = FastMap::default();
        crate::ir::walk_stmts(&func.body, &mut |s| {
            if let Stmt::PrepareGrad { param, dot } = s {
                if used_slices.contains(&(*param, *dot)) {
                    let field = func.params[*param].ident.to_string();
                    let base = format!(
                        "{}_{}",
                        if *dot { "hv" } else { "grad" },
                        field.trim_start_matches("r#")
                    );
                    slice_grads.insert(
                        (*param, *dot),
                        ident(&namer.fresh(&base), Span::call_site()),
                    );
                }
            }
        });
        let mut emitter = Emitter {
            func,
            krate,
            names,
            slice_grads,
            inline: FastMap::default(),
            live: FastMap::default(),
            grad_param: None,
            grad_dot_param: None,
            default_float,
            mutated: FastSet::default(),
            compound: FastMap::default(),
        };
        crate::ir::walk_stmts(&func.body, &mut |s| match s {
            Stmt::Store { array, .. } => {
                emitter.mutated.insert(*array);
            }
            Stmt::AccumIndex {
                target: Target::Var(v),
                ..
            } => {
                emitter.mutated.insert(*v);
            }
            _ => {}
        });
        // A loop's result is its phi variable after the loop: same name.
        crate::ir::walk_stmts(&func.body, &mut |s| {
            if let Stmt::Loop(l) = s {
                for c in &l.carried {
                    emitter.names[c.out.0 as usize] = emitter.names[c.phi.0 as usize].clone();
                }
            }
        });
        emitter.plan_inlining();
        emitter.plan_compound_updates();
        emitter
    }

    fn plan_compound_updates(&mut self) {
        let mut found = vec![];
        crate::ir::walk_stmts(&self.func.body, &mut |s| {
            let Stmt::Loop(l) = s else { return };
            for (j, c) in l.carried.iter().enumerate() {
                let Some(next) = l.body.yields.get(1 + j).and_then(Operand::as_var) else {
                    continue;
                };
                let Some(pos) = l.body.stmts.iter().position(|s| {
                    matches!(s, Stmt::Let { var, expr: Expr::Binary(op, Operand::Var(p), _) }
                        if *var == next && *p == c.phi && matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div))
                }) else {
                    continue;
                };
                // The phi must not be read after the update, which now
                // changes it in place; the next value is read only as the yield.
                let mut later = vec![];
                let rest = Block {
                    stmts: l.body.stmts[pos + 1..].to_vec(),
                    yields: vec![],
                };
                crate::ir::reads_in_block(&rest, &mut later);
                if later.contains(&c.phi) || later.contains(&next) {
                    continue;
                }
                found.push((next, c.phi));
            }
        });
        for (next, phi) in found {
            self.inline.remove(&next);
            self.compound.insert(next, phi);
        }
    }

    fn plan_inlining(&mut self) {
        let mut reads = vec![];
        crate::ir::reads_in_block(&self.func.body, &mut reads);
        for v in reads {
            *self.live.entry(v).or_default() += 1;
        }
        // Values that change after they are defined: accumulators, arrays
        // written to, loop phis (reassigned at the end of each iteration).
        let mut mutable = self.mutated.clone();
        crate::ir::walk_stmts(&self.func.body, &mut |s| match s {
            Stmt::DeclMut { var, .. } => {
                mutable.insert(*var);
            }
            Stmt::Loop(l) => mutable.extend(l.carried.iter().map(|c| c.phi)),
            _ => {}
        });
        let mut inline = FastMap::default();
        plan_block(
            self.func,
            &self.func.body,
            &self.live,
            &mutable,
            &mut inline,
        );
        self.inline = inline;
    }

    fn name(&self, v: Var) -> &Ident {
        &self.names[v.0 as usize]
    }

    fn operand(&self, o: &Operand) -> Prec {
        match o {
            Operand::Var(v) => match self.inline.get(v) {
                Some(expr) => self.expr(expr),
                None => (self.name(*v).to_token_stream(), P_ATOM),
            },
            Operand::Float(c) => float_literal(c, None),
            Operand::Lit(l) => (l.to_token_stream(), P_ATOM),
            Operand::Path(p) => (p.to_token_stream(), P_ATOM),
            Operand::Default => (quote!(::core::default::Default::default()), P_POSTFIX),
        }
    }

    fn operand_at(&self, o: &Operand, min: u8) -> TokenStream {
        wrap(self.operand(o), min)
    }

    /// A constant written with its suffix when it has a known float type:
    /// where the literal alone types a value (array elements, the arms of
    /// a value `if`), dropping `_f64` would leave rustc's `{float}`, on
    /// which a method call is error E0689.
    fn typed_operand(&self, o: &Operand) -> TokenStream {
        match o {
            Operand::Float(c) if matches!(c.ty, Ty::F32 | Ty::F64) => {
                wrap(float_literal(c, Some(c.ty)), 0)
            }
            other => self.operand_at(other, 0),
        }
    }

    fn args(&self, args: &[Operand]) -> TokenStream {
        let args = args.iter().map(|a| self.operand_at(a, 0));
        quote!(#(#args),*)
    }

    fn receiver(&self, o: &Operand) -> TokenStream {
        match o {
            Operand::Float(c) => {
                let suffix = if c.ty == Ty::Float {
                    self.default_float
                } else {
                    c.ty
                };
                wrap(float_literal(c, Some(suffix)), P_POSTFIX)
            }
            other => self.operand_at(other, P_POSTFIX),
        }
    }

    fn expr(&self, e: &Expr) -> Prec {
        let krate = self.krate;
        match e {
            Expr::Use(o) => self.operand(o),
            Expr::Unary(op, o) => {
                let inner = self.operand_at(o, P_UNARY);
                match op {
                    UnOp::Neg => (quote!(-#inner), P_UNARY),
                    UnOp::Not => (quote!(!#inner), P_UNARY),
                }
            }
            Expr::Binary(op, a, b) => {
                let prec = precedence(*op);
                let (left_min, right_min) = if op.is_comparison() {
                    (prec + 1, prec + 1)
                } else {
                    (prec, prec + 1)
                };
                // The left operand is rendered once: rendering it again to
                // look at it would make nested sums exponential.
                let left = self.operand(a);
                // `a * n as f64 < b` would read `<` as the start of generic
                // arguments: a left side ending in a cast is wrapped before
                // `<` or `<<`.
                let l = if matches!(op, BinOp::Lt | BinOp::Shl) && ends_in_cast(&left.0) {
                    let tokens = left.0;
                    quote!((#tokens))
                } else {
                    wrap(left, left_min)
                };
                let r = self.operand_at(b, right_min);
                let symbol = punct(op.symbol());
                let mut tokens = l;
                tokens.extend(symbol);
                tokens.extend(r);
                (tokens, prec)
            }
            Expr::Prim {
                rule,
                form,
                args,
                path,
            } => {
                let name = Ident::new(rule.name, Span::call_site());
                match form {
                    CallForm::Method => {
                        let (receiver, rest) = match args.split_first() {
                            Some((r, rest)) => (self.receiver(r), rest),
                            None => (quote!(()), &[][..]),
                        };
                        let rest = self.args(rest);
                        (quote!(#receiver.#name(#rest)), P_POSTFIX)
                    }
                    CallForm::Runtime => {
                        let call_args = self.args(args);
                        match path {
                            // The user's path with the float type spelled out:
                            // grad's functions are generic, so a function of
                            // the user's with the same name is a compile error
                            // here rather than silently replaced by grad's.
                            Some(path)
                                if path.segments.last().is_some_and(|s| !s.arguments.is_none()) =>
                            {
                                (quote!(#path(#call_args)), P_POSTFIX)
                            }
                            Some(path) => {
                                let width =
                                    match Ty::join(args.iter().map(|a| self.func.operand_ty(a))) {
                                        Ty::F32 => quote!(f32),
                                        Ty::F64 => quote!(f64),
                                        _ if self.default_float == Ty::F32 => quote!(f32),
                                        _ => quote!(f64),
                                    };
                                (quote!(#path::<#width>(#call_args)), P_POSTFIX)
                            }
                            None => (quote!(#krate::#name(#call_args)), P_POSTFIX),
                        }
                    }
                    CallForm::Helper => {
                        let args = self.args(args);
                        (
                            quote!(#krate::__private::derivatives::#name(#args)),
                            P_POSTFIX,
                        )
                    }
                }
            }
            Expr::Cast { operand, ty } => {
                let o = self.operand_at(operand, P_CAST);
                (quote!(#o as #ty), P_CAST)
            }
            Expr::Call { func, args } | Expr::DiffCall { func, args, .. } => {
                let args = self.args(args);
                (quote!(#func(#args)), P_POSTFIX)
            }
            Expr::GradCall { func, args } => {
                let func = companion_path(func, "grad");
                let args = self.args(args);
                (quote!(#func(#args)), P_POSTFIX)
            }
            Expr::HvpCall { func, args, dirs } => {
                // Through the callee's gradient struct, spanned on the call:
                // a callee without `hvp` is reported there by `HvpAlong`'s
                // message.
                let strukt = grad_struct_path(func);
                let args = self.args(args);
                let dirs = self.args(dirs);
                let call = quote!(
                    <#strukt as #krate::__private::HvpAlong<_, _>>::hvp_along((#args,), &[#dirs])
                );
                (respan(call, syn::spanned::Spanned::span(func)), P_POSTFIX)
            }
            Expr::ArgGrad { grad, index, span } => {
                let g = self.name(*grad);
                let index = proc_macro2::Literal::usize_unsuffixed(*index);
                // Spanned on the argument: if the callee does not differentiate
                // it, rustc's error (ArgGrad's on_unimplemented) points there.
                // Not the index: an integer literal spanned on `0.5` reads
                // to clippy's literal lints as the text `0.5`.
                let mut tokens = respan(quote!(#krate::__private::ArgGrad::<), *span);
                tokens.extend(quote!(#index));
                tokens.extend(respan(quote!(>::arg_grad(&#g)), *span));
                (tokens, P_POSTFIX)
            }
            Expr::Method {
                receiver,
                method,
                args,
            } => {
                let r = self.receiver(receiver);
                let args = self.args(args);
                (quote!(#r.#method(#args)), P_POSTFIX)
            }
            Expr::Field { base, member } => {
                let b = self.operand_at(base, P_POSTFIX);
                (quote!(#b.#member), P_POSTFIX)
            }
            Expr::Index { array, index } => {
                let a = self.name(*array);
                let index = self.indices(index);
                (quote!(#a #index), P_POSTFIX)
            }
            Expr::Len(array) => {
                let a = self.name(*array);
                (quote!(#a.len()), P_POSTFIX)
            }
            Expr::Ref(o) => {
                let o = self.operand_at(o, P_UNARY);
                (quote!(&#o), P_UNARY)
            }
            Expr::Matches { operand, pat } => {
                let o = self.operand_at(operand, 0);
                (quote!(::core::matches!(#o, #pat)), P_POSTFIX)
            }
        }
    }

    /// `[i][j]…`
    fn indices(&self, index: &[Operand]) -> TokenStream {
        let index = index.iter().map(|i| self.operand_at(i, 0));
        quote!(#([#index])*)
    }

    fn range(&self, range: &RangeSpec, reversed: bool) -> TokenStream {
        let start = self.operand_at(&range.start, P_BOR);
        let end = self.operand_at(&range.end, P_BOR);
        let mut tokens = if range.inclusive {
            quote!(#start..=#end)
        } else {
            quote!(#start..#end)
        };
        let rev = range.rev != reversed;
        if range.step.is_some() || rev {
            tokens = quote!((#tokens));
        }
        if let Some(step) = &range.step {
            let step = self.operand_at(step, 0);
            tokens = quote!(#tokens.step_by(#step));
        }
        if rev {
            tokens = quote!(#tokens.rev());
        }
        tokens
    }

    /// `grad.<field>`, or with `dot` the same field of the gradient's
    /// tangent (`f_hvp`'s Hessian-vector product).
    fn grad_field(&self, param: usize, dot: bool) -> TokenStream {
        let field = &self.func.params[param].ident;
        let grad = if dot {
            &self.grad_dot_param
        } else {
            &self.grad_param
        };
        quote!(#grad.#field)
    }

    /// Where `target[i] += …` adds for a parameter's gradient: the local
    /// slice `prepare_grad` returned, or the field (an array's).
    fn element_target(&self, param: usize, dot: bool) -> TokenStream {
        match self.slice_grads.get(&(param, dot)) {
            Some(local) => local.to_token_stream(),
            None => self.grad_field(param, dot),
        }
    }

    fn is_live(&self, v: Var) -> bool {
        self.live.get(&v).copied().unwrap_or(0) > 0
    }

    fn stmt(&self, s: &Stmt) -> TokenStream {
        match s {
            Stmt::Let { var, expr } => {
                if let (Some(phi), Expr::Binary(op, _, rhs)) = (self.compound.get(var), expr) {
                    let phi = self.name(*phi);
                    let symbol = punct(&format!("{}=", op.symbol()));
                    let rhs = self.operand_at(rhs, 0);
                    return quote!(#phi #symbol #rhs;);
                }
                if self.inline.contains_key(var) {
                    return TokenStream::new();
                }
                let name = self.name(*var);
                let value = wrap(self.expr(expr), 0);
                quote!(let #name = #value;)
            }
            Stmt::LetTuple { vars, expr } => {
                let names = vars.iter().map(|v| {
                    if self.is_live(*v) {
                        self.name(*v).to_token_stream()
                    } else {
                        quote!(_)
                    }
                });
                let value = wrap(self.expr(expr), 0);
                quote!(let (#(#names),*) = #value;)
            }
            Stmt::DeclMut { var, expr } => {
                let name = self.name(*var);
                let value = wrap(self.expr(expr), 0);
                quote!(let mut #name = #value;)
            }
            Stmt::Accum { var, expr } => {
                let name = self.name(*var);
                let value = wrap(self.expr(expr), 0);
                quote!(#name += #value;)
            }
            Stmt::AccumGrad { param, value, dot } => {
                let field = self.grad_field(*param, *dot);
                if let Some(array) = value
                    .as_var()
                    .filter(|&v| self.func.info(v).ty == Ty::Array)
                {
                    let krate = self.krate;
                    let array = self.name(array);
                    return quote!(#krate::__private::GradField::add_field(&mut #field, &#array););
                }
                let value = self.operand_at(value, 0);
                quote!(#field += #value;)
            }
            Stmt::Loop(l) => self.loop_stmt(l),
            Stmt::LetArray { var, init } => {
                let name = self.name(*var);
                let mutable = self.mutated.contains(var).then(|| quote!(mut));
                let value = match init {
                    ArrayInit::Repeat { fill, lens } => {
                        let mut value = self.typed_operand(fill);
                        for len in lens.iter().rev() {
                            value = quote!([#value; #len]);
                        }
                        value
                    }
                    ArrayInit::List(items) => {
                        let items = items.iter().map(|i| self.typed_operand(i));
                        quote!([#(#items),*])
                    }
                };
                quote!(let #mutable #name = #value;)
            }
            Stmt::Store {
                array,
                index,
                value,
            } => {
                let a = self.name(*array);
                // `h[j] = h[j] + e` is written `h[j] += e`, as the user did.
                if let Some(Expr::Binary(op, Operand::Var(t), rhs)) =
                    value.as_var().and_then(|v| self.inline.get(&v))
                {
                    let same_element = matches!(
                        self.inline.get(t),
                        Some(Expr::Index { array: a2, index: i2 })
                            if a2 == array
                                && i2.iter().map(ToString::to_string).eq(index.iter().map(ToString::to_string))
                    );
                    if same_element
                        && matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div)
                    {
                        let index = self.indices(index);
                        let symbol = punct(&format!("{}=", op.symbol()));
                        let rhs = self.operand_at(rhs, 0);
                        return quote!(#a #index #symbol #rhs;);
                    }
                }
                let index = self.indices(index);
                let value = self.operand_at(value, 0);
                quote!(#a #index = #value;)
            }
            Stmt::AccumIndex {
                target,
                index,
                expr,
            } => {
                let target = match target {
                    Target::Var(v) => self.name(*v).to_token_stream(),
                    Target::Grad(p) => self.element_target(*p, false),
                    Target::GradDot(p) => self.element_target(*p, true),
                };
                let index = self.indices(index);
                let value = wrap(self.expr(expr), 0);
                quote!(#target #index += #value;)
            }
            Stmt::Assign { var, expr } => {
                let name = self.name(*var);
                let value = wrap(self.expr(expr), 0);
                quote!(#name = #value;)
            }
            Stmt::TapeNew { tape } => {
                let name = self.name(*tape);
                quote!(let mut #name = ::std::vec::Vec::new();)
            }
            Stmt::Push { tape, values } => {
                let name = self.name(*tape);
                let values: Vec<TokenStream> =
                    values.iter().map(|v| self.operand_at(v, 0)).collect();
                match values.as_slice() {
                    [one] => quote!(#name.push(#one);),
                    many => quote!(#name.push((#(#many),*));),
                }
            }
            Stmt::Pop { tape, vars } => {
                let name = self.name(*tape);
                let vars: Vec<TokenStream> = vars
                    .iter()
                    .map(|v| {
                        if self.is_live(*v) {
                            self.name(*v).to_token_stream()
                        } else {
                            quote!(_)
                        }
                    })
                    .collect();
                let pattern = match vars.as_slice() {
                    [one] => one.clone(),
                    many => quote!((#(#many),*)),
                };
                // The reverse sweep pops exactly what the forward sweep pushed.
                quote!(let ::core::option::Option::Some(#pattern) = #name.pop() else { ::core::unreachable!() };)
            }
            Stmt::PrepareGrad { param, dot } => {
                let krate = self.krate;
                let field = self.grad_field(*param, *dot);
                let p = &self.func.params[*param];
                let param_name = self.name(p.var);
                let label = p.ident.to_string();
                let call =
                    quote!(#krate::__private::prepare_grad(&mut #field, #param_name.len(), #label));
                match self.slice_grads.get(&(*param, *dot)) {
                    Some(local) => quote!(let #local = #call;),
                    None => quote!(#call;),
                }
            }
            Stmt::If {
                cond,
                then_block,
                else_block,
                outs,
            } => {
                // An out both arms give as a bare constant is typed by
                // nothing else: those constants keep their suffix.
                let untyped: Vec<bool> = then_block
                    .yields
                    .iter()
                    .zip(&else_block.yields)
                    .map(|(a, b)| matches!((a, b), (Operand::Float(_), Operand::Float(_))))
                    .collect();
                let then_tokens = braced(self.block_typed(then_block, &untyped));
                let else_tokens = braced(self.block_typed(else_block, &untyped));
                let if_expr = if outs.is_empty() && then_block.stmts.is_empty() {
                    let negated = wrap(self.operand(cond), P_UNARY);
                    quote!(if !#negated #else_tokens)
                } else if outs.is_empty() && else_block.stmts.is_empty() {
                    let c = self.operand_at(cond, 0);
                    quote!(if #c #then_tokens)
                } else {
                    let c = self.operand_at(cond, 0);
                    quote!(if #c #then_tokens else #else_tokens)
                };
                match outs.as_slice() {
                    [] => if_expr,
                    [one] => {
                        let name = self.name(*one);
                        quote!(let #name = #if_expr;)
                    }
                    many => {
                        let names = many.iter().map(|v| self.name(*v));
                        quote!(let (#(#names),*) = #if_expr;)
                    }
                }
            }
        }
    }

    fn loop_stmt(&self, l: &Loop) -> TokenStream {
        let mut before = vec![];
        let mut head = vec![];
        let mut tail = vec![];
        if let Some(count) = l.count {
            let name = self.name(count);
            before.push(quote!(let mut #name = 0usize;));
            head.push(quote!(#name += 1;));
        }
        for (j, c) in l.carried.iter().enumerate() {
            let phi = self.name(c.phi);
            let init = self.operand_at(&c.init, 0);
            let next = l.body.yields.get(1 + j);
            if next.and_then(Operand::as_var) == Some(c.phi) {
                before.push(quote!(let #phi = #init;));
            } else {
                before.push(quote!(let mut #phi = #init;));
                match next {
                    Some(Operand::Var(n)) if self.compound.contains_key(n) => {}
                    Some(next) => {
                        let next = self.operand_at(next, 0);
                        tail.push(quote!(#phi = #next;));
                    }
                    None => {}
                }
            }
        }
        let keep = l.body.yields.first();
        if let Some(keep) =
            keep.filter(|k| !matches!(k, Operand::Lit(syn::Lit::Bool(b)) if b.value))
        {
            let keep = self.operand_at(keep, P_UNARY);
            tail.push(quote!(if !#keep { break; }));
        }
        let stmts = l.body.stmts.iter().map(|s| self.stmt(s));
        let body = braced(concat(head.into_iter().chain(stmts).chain(tail)));
        let header = match &l.kind {
            LoopKind::For { var, range } => {
                let var = self.name(*var);
                let range = self.range(range, false);
                quote!(for #var in #range)
            }
            LoopKind::Loop => quote!(loop),
            LoopKind::Times(n) => {
                let n = self.operand_at(n, P_BOR);
                quote!(for _ in 0..#n)
            }
        };
        quote!(#(#before)* #header #body)
    }

    /// The statements of `block` followed by its yields (as a tuple if several).
    pub fn block(&self, block: &Block) -> TokenStream {
        self.block_typed(block, &[])
    }

    /// A block; the yields marked in `typed` keep their suffix (where both
    /// arms of a value `if` give constants, nothing else types its result).
    fn block_typed(&self, block: &Block, typed: &[bool]) -> TokenStream {
        let stmts = block.stmts.iter().map(|s| self.stmt(s));
        let yield_tokens = |(i, y): (usize, &Operand)| {
            if typed.get(i).copied().unwrap_or(false) {
                self.typed_operand(y)
            } else {
                self.operand_at(y, 0)
            }
        };
        let yields = match block.yields.as_slice() {
            [] => TokenStream::new(),
            [one] => yield_tokens((0, one)),
            many => {
                let items = many.iter().enumerate().map(yield_tokens);
                quote!((#(#items),*))
            }
        };
        concat(stmts.chain([yields]))
    }
}

/// The streams one after the other. Each is moved in: interpolated by
/// `quote!`, a stream is copied token by token (with proc-macro2's own
/// streams), and every level of nesting copied the code inside it again.
fn concat(streams: impl IntoIterator<Item = TokenStream>) -> TokenStream {
    let mut out = TokenStream::new();
    out.extend(streams);
    out
}

/// An operator (`+`, `<=`, `*=`) as the lexer gives it: one punctuation
/// token per character, joint to the next (without running the lexer).
fn punct(symbol: &str) -> TokenStream {
    let n = symbol.chars().count();
    symbol
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let spacing = if i + 1 < n {
                proc_macro2::Spacing::Joint
            } else {
                proc_macro2::Spacing::Alone
            };
            TokenTree::Punct(proc_macro2::Punct::new(c, spacing))
        })
        .collect()
}

/// `{ tokens }`, as one token to interpolate (see [`concat`]).
fn braced(tokens: TokenStream) -> proc_macro2::Group {
    proc_macro2::Group::new(proc_macro2::Delimiter::Brace, tokens)
}

/// Chooses the temporaries to fold into their use: read exactly once, by a
/// statement of the same block, and not reading an accumulator (whose value
/// may change between definition and use).
fn plan_block<'a>(
    func: &Func,
    block: &'a Block,
    live: &FastMap<Var, usize>,
    mutable: &FastSet<Var>,
    inline: &mut FastMap<Var, &'a Expr>,
) {
    let mut direct: FastMap<Var, usize> = FastMap::default();
    for stmt in &block.stmts {
        stmt.for_each_read(|v| *direct.entry(v).or_default() += 1);
    }
    for y in &block.yields {
        if let Some(v) = y.as_var() {
            *direct.entry(v).or_default() += 1;
        }
    }
    // Where a single use lands decides whether a named value may disappear
    // into it: a block's tail (`let y = …; y`, which clippy flags) or a
    // gradient field (`grad.w += __d_z * x`) reads better without the name.
    let mut named_ok: FastSet<Var> = block.yields.iter().filter_map(Operand::as_var).collect();
    if block.yields.len() != 1 {
        named_ok.clear();
    }
    for stmt in &block.stmts {
        match stmt {
            Stmt::AccumGrad { value, .. } => named_ok.extend(value.as_var()),
            Stmt::AccumIndex {
                expr: Expr::Use(value),
                ..
            } => named_ok.extend(value.as_var()),
            _ => {}
        }
    }
    for (i, stmt) in block.stmts.iter().enumerate() {
        match stmt {
            Stmt::Let { var, expr } => {
                let once = live.get(var) == Some(&1) && direct.get(var) == Some(&1);
                // An accumulator read by the very next statement cannot change
                // in between.
                let read_next = block.stmts.get(i + 1).is_some_and(|next| {
                    let mut reads = false;
                    next.for_each_read(|v| reads |= v == *var);
                    reads
                });
                // A recomputed copy of a temporary is a temporary too.
                let mut origin = &func.info(*var).origin;
                while let Origin::Export(of) = origin {
                    origin = &func.info(*of).origin;
                }
                let foldable = match origin {
                    Origin::Temp => true,
                    Origin::Local | Origin::Adjoint(_) => named_ok.contains(var),
                    _ => false,
                };
                let mut reads_mutable = false;
                expr.for_each_var(|v| reads_mutable |= mutable.contains(&v));
                if once && foldable && (!reads_mutable || read_next) {
                    inline.insert(*var, expr);
                }
            }
            other => {
                for b in other.blocks() {
                    plan_block(func, b, live, mutable, inline);
                }
            }
        }
    }
}
