//! THE derivative table: one row per primitive.
//!
//! A row names the primitive, the forms it may be written in, its parameters,
//! and for each parameter the partial derivative of the output as a formula
//! over the parameters and `out` (the primitive's own value), in the spirit of
//! PyTorch's `derivatives.yaml`. Formulas are ordinary Rust expressions over
//! `+ - * /`, float literals, other rows called by name, and `float(n)`
//! (an integer converted to the operation's float type); [`Formula`] turns
//! one into IR at the place the pass needs it. Every pass (reverse now,
//! forward and higher orders later) reads partials only from here, and the
//! rule tests check every row against finite differences, so adding a
//! primitive is adding a row (and its runtime function, if it is new).
//!
//! Subgradients at kinks follow PyTorch; the conventions live in the runtime's
//! `derivatives` helpers that the formulas call (`relu_grad`, `abs_grad`,
//! `max_grad`, `clamp_grad`, `mask_zero`, …), each of which has a row of its
//! own with a zero (or masked) derivative, so formulas can be differentiated
//! again.

use crate::ir::{
    BinOp, CallForm, Expr, FloatConst, Func, Operand, Origin, Stmt, Ty, UnOp, VarInfo,
};

/// Which call forms select a row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Forms {
    /// A method of `f32`/`f64`: `x.sin()` and `f64::sin(x)`.
    Method,
    /// A function of grad's runtime: `sigmoid(x)`.
    Runtime,
    /// Both: `x.clamp(lo, hi)` and `clamp(x, lo, hi)`.
    MethodAndRuntime,
    /// A derivative helper that formulas call; users cannot name it.
    Helper,
}

/// One primitive.
#[derive(Debug)]
pub struct Rule {
    pub name: &'static str,
    pub forms: Forms,
    /// Parameter names as the formulas use them; for methods the first is the receiver.
    pub params: &'static [&'static str],
    /// Which parameters are integers (never differentiated), e.g. `powi`'s exponent.
    pub int_params: &'static [&'static str],
    /// One formula per parameter (`None` for integer parameters).
    pub partials: &'static [Option<&'static str>],
    /// Per parameter, the interval the rule tests sample from (where the
    /// primitive is defined and smooth almost everywhere).
    #[cfg_attr(not(test), allow(dead_code))]
    pub domain: &'static [(f64, f64)],
    /// A step helper whose value (0, ½ or 1) selects where the gradient of
    /// a kink flows (`relu_grad`, `max_grad`, `clamp_grad`, …): a partial
    /// that is one call of it passes the adjoint through `gate` (see
    /// [`Rule::is_select`]).
    pub selects: bool,
    /// A mask helper (`mask_zero(c, v)`, `powf_exp_mask(x, y, v)`): its value
    /// is its last argument or exactly 0, so its partial in that argument,
    /// the mask passing `1.0`, is a step too (see [`Rule::is_select`]).
    pub masks: bool,
    /// Evaluates the primitive on `f64` (test-only; generated from the row).
    #[cfg(test)]
    pub eval_f64: fn(&[f64]) -> f64,
    /// Evaluates the primitive on `f32` (test-only; generated from the row).
    #[cfg(test)]
    pub eval_f32: fn(&[f32]) -> f32,
}

impl Rule {
    pub fn accepts(&self, form: CallForm) -> bool {
        matches!(
            (self.forms, form),
            (Forms::Method | Forms::MethodAndRuntime, CallForm::Method)
                | (Forms::Runtime | Forms::MethodAndRuntime, CallForm::Runtime)
                | (Forms::Helper, CallForm::Helper)
        )
    }

    pub fn is_int_param(&self, index: usize) -> bool {
        self.int_params.contains(&self.params[index])
    }

    /// Whether the partial for parameter `index` is one call of a step
    /// helper that *selects* where the gradient flows (`relu_grad(x)`,
    /// `max_grad(x, y)`, `clamp_grad(x, lo, hi)`, …). The reverse pass then
    /// passes the adjoint on through `gate(s, d)`, a select as PyTorch's
    /// `threshold_backward` and `where` are, rather than multiplying it by a
    /// zero: an infinite adjoint (`relu(x).sqrt()` at `x < 0`) gives 0, not NaN.
    ///
    /// A mask passing `1.0` (`mask_zero(c, 1.0)`, the partial of
    /// `mask_zero(c, v)` in `v`) is such a step too, 0 or 1: forward mode over
    /// a gradient that holds a mask (`hypot`'s at `(0, 0)`) must give 0 there,
    /// not `0 · NaN`.
    pub fn is_select(&self, index: usize) -> bool {
        let Some(Some(formula)) = self.partials.get(index) else {
            return false;
        };
        let Some((name, rest)) = formula.split_once('(') else {
            return false;
        };
        by_name(name).is_some_and(|r| r.selects || (r.masks && rest.ends_with(", 1.0)")))
            && rest.ends_with(')')
            && !rest[..rest.len() - 1].contains('(')
    }
}

/// Converts a sampled `f64` to an integer parameter's type inside the
/// generated test evaluators.
#[cfg(test)]
macro_rules! arg {
    ($v:expr) => {
        $v
    };
    ($v:expr, int) => {
        $v as i32
    };
}

/// Calls the primitive a row describes, in the given form (test evaluators).
#[cfg(test)]
macro_rules! call {
    (method $name:ident, $first:ident $(, $rest:ident)*) => {
        $first.$name($($rest),*)
    };
    (runtime $name:ident, $($arg:ident),*) => {
        grad_core::$name($($arg),*)
    };
    (both $name:ident, $($arg:ident),*) => {
        grad_core::$name($($arg),*)
    };
    (helper $name:ident, $($arg:ident),*) => {
        grad_core::derivatives::$name($($arg),*)
    };
    (builtin add, $x:ident, $y:ident) => { $x + $y };
    (builtin sub, $x:ident, $y:ident) => { $x - $y };
    (builtin mul, $x:ident, $y:ident) => { $x * $y };
    (builtin div, $x:ident, $y:ident) => { $x / $y };
    (builtin neg, $x:ident) => { -$x };
}

macro_rules! forms {
    (method) => {
        Forms::Method
    };
    (runtime) => {
        Forms::Runtime
    };
    (both) => {
        Forms::MethodAndRuntime
    };
    (helper) => {
        Forms::Helper
    };
    // The arithmetic operators: reached through `BinOp`/`UnOp`, never by name.
    (builtin) => {
        Forms::Helper
    };
}

macro_rules! int_params {
    ($($p:ident $(: $int:ident)?),*) => {
        &[$($(int_params!(@ $p $int),)?)*]
    };
    (@ $p:ident int) => {
        stringify!($p)
    };
}

macro_rules! rule {
    // A step helper that selects where a gradient flows (see `Rule::selects`).
    (select $($rest:tt)*) => {
        Rule {
            selects: true,
            ..rule!($($rest)*)
        }
    };
    // A mask helper whose value is its last argument or 0 (`Rule::masks`).
    (mask $($rest:tt)*) => {
        Rule {
            masks: true,
            ..rule!($($rest)*)
        }
    };
    ($form:ident $name:ident ($($p:ident $(: $int:ident)?),*) => [$($d:tt),*] on [$($dom:expr),*]) => {
        Rule {
            name: stringify!($name),
            forms: forms!($form),
            params: &[$(stringify!($p)),*],
            int_params: int_params!($($p $(: $int)?),*),
            partials: &[$(rule!(@partial $d)),*],
            domain: &[$($dom),*],
            selects: false,
            masks: false,
            #[cfg(test)]
            eval_f64: |a: &[f64]| {
                let mut it = a.iter().copied();
                $(let $p = arg!(it.next().unwrap_or(0.0) $(, $int)?);)*
                call!($form $name, $($p),*)
            },
            #[cfg(test)]
            eval_f32: |a: &[f32]| {
                let mut it = a.iter().copied();
                $(let $p = arg!(it.next().unwrap_or(0.0) $(, $int)?);)*
                call!($form $name, $($p),*)
            },
        }
    };
    (@partial int) => { None };
    (@partial $d:literal) => { Some($d) };
}

const ALL: (f64, f64) = (-3.0, 3.0);
const POS: (f64, f64) = (0.2, 4.0);
const UNIT: (f64, f64) = (-0.9, 0.9);
const PROB: (f64, f64) = (0.05, 0.95);

/// Every primitive the macro knows.
pub static RULES: &[Rule] = &[
    // The arithmetic operators, used through `BinOp`/`UnOp`.
    rule!(builtin add(x, y) => ["1.0", "1.0"] on [ALL, ALL]),
    rule!(builtin sub(x, y) => ["1.0", "-1.0"] on [ALL, ALL]),
    rule!(builtin mul(x, y) => ["y", "x"] on [ALL, ALL]),
    rule!(builtin div(x, y) => ["1.0 / y", "-out / y"] on [ALL, POS]),
    rule!(builtin neg(x) => ["-1.0"] on [ALL]),
    // Methods of f32 and f64.
    rule!(method powi(x, n: int) => ["mask_zero(float(n), float(n) * powi(x, n - 1))", int] on [(0.5, 2.5), (-3.0, 4.0)]),
    rule!(method powf(x, y) => [
        "mask_zero(y, y * powf(x, y - 1.0))",
        "powf_exp_mask(x, y, out * ln(x))"
    ] on [POS, ALL]),
    rule!(method sqrt(x) => ["0.5 / out"] on [POS]),
    rule!(method cbrt(x) => ["1.0 / (3.0 * out * out)"] on [POS]),
    rule!(method exp(x) => ["out"] on [ALL]),
    rule!(method exp2(x) => ["out * LN_2"] on [ALL]),
    rule!(method exp_m1(x) => ["out + 1.0"] on [ALL]),
    rule!(method ln(x) => ["1.0 / x"] on [POS]),
    rule!(method ln_1p(x) => ["1.0 / (1.0 + x)"] on [(-0.8, 3.0)]),
    rule!(method log(x, base) => [
        "1.0 / (x * ln(base))",
        "-out / (base * ln(base))"
    ] on [POS, (1.5, 4.0)]),
    rule!(method log2(x) => ["1.0 / (x * LN_2)"] on [POS]),
    rule!(method log10(x) => ["1.0 / (x * LN_10)"] on [POS]),
    rule!(method sin(x) => ["cos(x)"] on [ALL]),
    rule!(method cos(x) => ["-sin(x)"] on [ALL]),
    rule!(method tan(x) => ["1.0 + out * out"] on [(-1.2, 1.2)]),
    rule!(method asin(x) => ["1.0 / sqrt(1.0 - x * x)"] on [UNIT]),
    rule!(method acos(x) => ["-1.0 / sqrt(1.0 - x * x)"] on [UNIT]),
    rule!(method atan(x) => ["1.0 / (1.0 + x * x)"] on [ALL]),
    // Divided by hypot twice rather than by x² + y², which under- and
    // overflows far from the extremes of the range.
    rule!(method atan2(y, x) => [
        "x / hypot(x, y) / hypot(x, y)",
        "-y / hypot(x, y) / hypot(x, y)"
    ] on [ALL, POS]),
    rule!(method sinh(x) => ["cosh(x)"] on [ALL]),
    rule!(method cosh(x) => ["sinh(x)"] on [ALL]),
    rule!(method tanh(x) => ["1.0 - out * out"] on [ALL]),
    rule!(method asinh(x) => ["1.0 / hypot(x, 1.0)"] on [ALL]),
    rule!(method acosh(x) => ["1.0 / (sqrt(x - 1.0) * sqrt(x + 1.0))"] on [(1.2, 4.0)]),
    rule!(method atanh(x) => ["1.0 / (1.0 - x * x)"] on [UNIT]),
    rule!(method abs(x) => ["abs_grad(x)"] on [ALL]),
    rule!(method signum(x) => ["0.0"] on [ALL]),
    rule!(method floor(x) => ["0.0"] on [ALL]),
    rule!(method ceil(x) => ["0.0"] on [ALL]),
    rule!(method round(x) => ["0.0"] on [ALL]),
    rule!(method trunc(x) => ["0.0"] on [ALL]),
    rule!(method min(x, y) => ["min_grad(x, y)", "min_grad(y, x)"] on [ALL, ALL]),
    rule!(method max(x, y) => ["max_grad(x, y)", "max_grad(y, x)"] on [ALL, ALL]),
    rule!(both clamp(x, lo, hi) => [
        "clamp_grad(x, lo, hi)",
        "clamp_grad_lo(x, lo, hi)",
        "clamp_grad_hi(x, lo, hi)"
    ] on [ALL, (-2.0, -0.5), (0.5, 2.0)]),
    rule!(method recip(x) => ["-out * out"] on [POS]),
    rule!(method hypot(x, y) => ["mask_zero(out, x / out)", "mask_zero(out, y / out)"] on [ALL, ALL]),
    rule!(method mul_add(a, b, c) => ["b", "a", "1.0"] on [ALL, ALL, ALL]),
    // The runtime's functions.
    rule!(runtime sigmoid(x) => ["out * (1.0 - out)"] on [ALL]),
    // Its own row beside the method's: the runtime's branch-free tanh is not
    // `f64::tanh` bit for bit, and the interpreter evaluates each form as
    // rustc will.
    rule!(runtime tanh(x) => ["1.0 - out * out"] on [ALL]),
    rule!(runtime relu(x) => ["relu_grad(x)"] on [ALL]),
    rule!(runtime leaky_relu(x, slope) => [
        "relu_grad(x) + (1.0 - relu_grad(x)) * slope",
        "mask_zero(1.0 - relu_grad(x), x)"
    ] on [ALL, (0.01, 0.3)]),
    rule!(runtime softplus(x) => ["sigmoid(x)"] on [ALL]),
    rule!(runtime bce(p, target) => [
        "bce_clamp_grad(p) * (bce_clamp(p) - target) / (bce_clamp(p) * (1.0 - bce_clamp(p)))",
        "ln(1.0 - bce_clamp(p)) - ln(bce_clamp(p))"
    ] on [PROB, (0.0, 1.0)]),
    rule!(runtime bce_with_logits(z, target) => ["sigmoid(z) - target", "-z"] on [ALL, (0.0, 1.0)]),
    rule!(runtime mse(p, target) => ["2.0 * (p - target)", "2.0 * (target - p)"] on [ALL, ALL]),
    // The runtime's derivative helpers: steps and masks, whose derivatives
    // are zero (or the mask again), so formulas can be differentiated twice.
    rule!(select helper relu_grad(x) => ["0.0"] on [ALL]),
    rule!(helper abs_grad(x) => ["0.0"] on [ALL]),
    rule!(select helper max_grad(x, y) => ["0.0", "0.0"] on [ALL, ALL]),
    rule!(select helper min_grad(x, y) => ["0.0", "0.0"] on [ALL, ALL]),
    rule!(select helper clamp_grad(x, lo, hi) => ["0.0", "0.0", "0.0"] on [ALL, (-2.0, -0.5), (0.5, 2.0)]),
    rule!(select helper clamp_grad_lo(x, lo, hi) => ["0.0", "0.0", "0.0"] on [ALL, (-2.0, -0.5), (0.5, 2.0)]),
    rule!(select helper clamp_grad_hi(x, lo, hi) => ["0.0", "0.0", "0.0"] on [ALL, (-2.0, -0.5), (0.5, 2.0)]),
    rule!(helper bce_clamp(p) => ["bce_clamp_grad(p)"] on [PROB]),
    rule!(helper bce_clamp_grad(p) => ["0.0"] on [PROB]),
    rule!(mask helper mask_zero(c, v) => ["0.0", "mask_zero(c, 1.0)"] on [(0.5, 3.0), ALL]),
    rule!(helper gate(s, d) => ["d", "s"] on [(0.5, 3.0), ALL]),
    rule!(mask helper powf_exp_mask(x, y, v) => ["0.0", "0.0", "powf_exp_mask(x, y, 1.0)"] on [POS, ALL, ALL]),
];

/// The row for `name` written in `form`.
pub fn lookup(name: &str, form: CallForm) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name && r.accepts(form))
}

/// The row for an arithmetic operator, if it is differentiable.
pub fn for_binop(op: BinOp) -> Option<&'static Rule> {
    let name = match op {
        BinOp::Add => "add",
        BinOp::Sub => "sub",
        BinOp::Mul => "mul",
        BinOp::Div => "div",
        _ => return None,
    };
    RULES.iter().find(|r| r.name == name)
}

pub fn for_neg() -> &'static Rule {
    RULES.iter().find(|r| r.name == "neg").unwrap_or(&RULES[0])
}

fn by_name(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// The names of the runtime's functions, for resolving free calls.
pub fn is_runtime_fn(name: &str) -> bool {
    lookup(name, CallForm::Runtime).is_some()
}

/// A formula parsed once: plain data rather than a `syn::Expr`, so that it
/// can be kept for the life of the process. Tokens a proc macro makes are
/// handles valid only during the expansion that made them, and the rule
/// table is read for every partial of every expansion; parsing the source
/// text each time was most of the reverse pass's cost.
#[derive(Debug)]
enum Node {
    Float(f64),
    /// An integer literal, as written.
    Int(String),
    /// `LN_2` or `LN_10`: a path to the std constant of the operation's width.
    StdConst(String),
    /// A parameter of the row, or `out`.
    Name(String),
    Neg(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    /// `float(n)`: the first argument converted to the operation's float type.
    ToFloat(Vec<Node>),
    /// A call of another row.
    Call(&'static Rule, Vec<Node>),
}

/// Every row's formulas, parsed on first use, in the order of [`RULES`].
type Parsed = Vec<Vec<Option<Result<Node, String>>>>;

fn parsed() -> &'static Parsed {
    static PARSED: std::sync::OnceLock<Parsed> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        RULES
            .iter()
            .map(|rule| {
                rule.partials
                    .iter()
                    .map(|p| p.map(|source| parse_formula(rule, source)))
                    .collect()
            })
            .collect()
    })
}

fn parse_formula(rule: &Rule, source: &str) -> Result<Node, String> {
    let parsed: syn::Expr = syn::parse_str(source)
        .map_err(|e| format!("internal: formula `{source}` of `{}`: {e}", rule.name))?;
    to_node(&parsed, rule)
}

fn to_node(e: &syn::Expr, rule: &Rule) -> Result<Node, String> {
    let bad = || {
        format!(
            "internal: unsupported formula syntax in the rule of `{}`",
            rule.name
        )
    };
    match e {
        syn::Expr::Paren(p) => to_node(&p.expr, rule),
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Float(f),
            ..
        }) => Ok(Node::Float(
            f.base10_parse::<f64>().map_err(|e| e.to_string())?,
        )),
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => Ok(Node::Int(i.to_string())),
        syn::Expr::Path(p) => {
            let ident = p.path.get_ident().ok_or_else(bad)?.to_string();
            if ident == "LN_2" || ident == "LN_10" {
                Ok(Node::StdConst(ident))
            } else {
                Ok(Node::Name(ident))
            }
        }
        syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
            Ok(Node::Neg(Box::new(to_node(&u.expr, rule)?)))
        }
        syn::Expr::Binary(b) => {
            let op = match b.op {
                syn::BinOp::Add(_) => BinOp::Add,
                syn::BinOp::Sub(_) => BinOp::Sub,
                syn::BinOp::Mul(_) => BinOp::Mul,
                syn::BinOp::Div(_) => BinOp::Div,
                _ => return Err(bad()),
            };
            let l = to_node(&b.left, rule)?;
            let r = to_node(&b.right, rule)?;
            Ok(Node::Binary(op, Box::new(l), Box::new(r)))
        }
        syn::Expr::Call(c) => {
            let syn::Expr::Path(p) = &*c.func else {
                return Err(bad());
            };
            let name = p.path.get_ident().ok_or_else(bad)?.to_string();
            let args = c
                .args
                .iter()
                .map(|a| to_node(a, rule))
                .collect::<Result<Vec<_>, _>>()?;
            if name == "float" {
                if args.is_empty() {
                    return Err(bad());
                }
                return Ok(Node::ToFloat(args));
            }
            Ok(Node::Call(by_name(&name).ok_or_else(bad)?, args))
        }
        _ => Err(bad()),
    }
}

/// Turns formulas into IR statements appended to a block of `func`.
pub struct Formula<'a> {
    pub func: &'a mut Func,
    pub stmts: &'a mut Vec<Stmt>,
    /// The float type of the operation the formula differentiates.
    pub ty: Ty,
}

impl Formula<'_> {
    /// The partial derivative of `rule` with respect to parameter `index`,
    /// at `args` with output `out`; `None` if the parameter is an integer.
    pub fn partial(
        &mut self,
        rule: &'static Rule,
        index: usize,
        args: &[Operand],
        out: &Operand,
    ) -> Result<Option<Operand>, String> {
        let Some(source) = rule.partials.get(index).copied().flatten() else {
            return Ok(None);
        };
        let env = Env { rule, args, out };
        // A row outside the table (none today) is parsed on the spot.
        let row = RULES.iter().position(|r| std::ptr::eq(r, rule));
        match row.and_then(|row| parsed()[row][index].as_ref()) {
            Some(Ok(node)) => self.lower(node, &env).map(Some),
            Some(Err(e)) => Err(e.clone()),
            None => {
                let node = parse_formula(rule, source)?;
                self.lower(&node, &env).map(Some)
            }
        }
    }

    fn emit(&mut self, expr: Expr, ty: Ty) -> Operand {
        let var = self.func.new_var(VarInfo {
            name: "t".into(),
            ty,
            origin: Origin::Temp,
            active: false,
            span: proc_macro2::Span::call_site(),
            shape: None,
        });
        self.stmts.push(Stmt::Let { var, expr });
        Operand::Var(var)
    }

    /// The operation's float type, as a type path.
    fn width(&self) -> proc_macro2::Ident {
        let name = match self.ty {
            Ty::F32 => "f32",
            _ => "f64",
        };
        proc_macro2::Ident::new(name, proc_macro2::Span::call_site())
    }

    fn lower(&mut self, node: &Node, env: &Env) -> Result<Operand, String> {
        match node {
            Node::Float(value) => Ok(Operand::Float(FloatConst {
                value: *value,
                ty: self.ty,
            })),
            Node::Int(repr) => Ok(Operand::Lit(syn::Lit::Int(syn::LitInt::new(
                repr,
                proc_macro2::Span::call_site(),
            )))),
            Node::StdConst(ident) => {
                // A path, not a literal: clippy rejects approximations of
                // the std constants, and the width follows the operation.
                let width = self.width();
                let ident = proc_macro2::Ident::new(ident, proc_macro2::Span::call_site());
                let path = syn::parse2(quote::quote!(::core::#width::consts::#ident))
                    .map_err(|e| e.to_string())?;
                Ok(Operand::Path(path))
            }
            Node::Name(name) => env.lookup(name).ok_or_else(|| {
                format!(
                    "internal: unsupported formula syntax in the rule of `{}`",
                    env.rule.name
                )
            }),
            Node::Neg(a) => {
                let a = self.lower(a, env)?;
                let ty = Ty::join([self.func.operand_ty(&a), self.ty]);
                Ok(self.emit(Expr::Unary(UnOp::Neg, a), ty))
            }
            Node::Binary(op, l, r) => {
                let l = self.lower(l, env)?;
                let r = self.lower(r, env)?;
                let ty = Ty::join([self.func.operand_ty(&l), self.func.operand_ty(&r)]);
                Ok(self.emit(Expr::Binary(*op, l, r), ty))
            }
            Node::ToFloat(args) => {
                let mut args = args
                    .iter()
                    .map(|a| self.lower(a, env))
                    .collect::<Result<Vec<_>, _>>()?;
                let width = self.width();
                let ty: syn::Type = syn::parse_quote!(#width);
                let operand = args.swap_remove(0);
                Ok(self.emit(Expr::Cast { operand, ty }, self.ty))
            }
            Node::Call(rule, args) => {
                let args = args
                    .iter()
                    .map(|a| self.lower(a, env))
                    .collect::<Result<Vec<_>, _>>()?;
                let form = match rule.forms {
                    Forms::Method => CallForm::Method,
                    Forms::Runtime | Forms::MethodAndRuntime => CallForm::Runtime,
                    Forms::Helper => CallForm::Helper,
                };
                Ok(self.emit(
                    Expr::Prim {
                        rule,
                        form,
                        args,
                        path: None,
                    },
                    self.ty,
                ))
            }
        }
    }
}

struct Env<'a> {
    rule: &'static Rule,
    args: &'a [Operand],
    out: &'a Operand,
}

impl Env<'_> {
    fn lookup(&self, name: &str) -> Option<Operand> {
        if name == "out" {
            return Some(self.out.clone());
        }
        let index = self.rule.params.iter().position(|p| *p == name)?;
        self.args.get(index).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_well_formed() {
        for rule in RULES {
            assert_eq!(rule.params.len(), rule.partials.len(), "{}", rule.name);
            assert_eq!(rule.params.len(), rule.domain.len(), "{}", rule.name);
            for (i, p) in rule.partials.iter().enumerate() {
                assert_eq!(p.is_none(), rule.is_int_param(i), "{}", rule.name);
                if let Some(src) = p {
                    let parsed: Result<syn::Expr, _> = syn::parse_str(src);
                    assert!(
                        parsed.is_ok(),
                        "formula of {} does not parse: {src}",
                        rule.name
                    );
                }
                // And uses only the syntax `Formula` lowers.
                let row = RULES.iter().position(|r| std::ptr::eq(r, rule)).unwrap();
                if let Some(Err(e)) = &parsed()[row][i] {
                    panic!("formula {i} of {}: {e}", rule.name);
                }
            }
        }
    }

    #[test]
    fn names_are_unique_per_form() {
        for (i, a) in RULES.iter().enumerate() {
            for b in &RULES[i + 1..] {
                // One name may have a method row and a runtime row (`tanh`),
                // never two rows that a call of one form could both match.
                let shared = [CallForm::Method, CallForm::Runtime, CallForm::Helper]
                    .into_iter()
                    .any(|form| a.accepts(form) && b.accepts(form));
                assert!(a.name != b.name || !shared, "two rows for {}", a.name);
            }
        }
    }
}
