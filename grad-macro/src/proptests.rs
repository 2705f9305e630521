//! Property-based differential testing of the transform.
//!
//! A proptest generator of random function bodies over a small AST
//! ([`Program`]): DAGs of `let` bindings with shadowing, `let mut` with
//! compound reassignment, every primitive of the rule table (with arguments
//! wrapped so that each operation is defined: `(v * v + 0.5).ln()`,
//! `(v.tanh() * 0.9).asin()`, `bce(sigmoid(v), t)`), `if`/`else` as values
//! and as statements, early `return`, `for` loops over ranges and slices with
//! loop-carried state, `break` and `continue`, and slice parameters; call
//! forms vary (`x.sin()`, `f64::sin(x)`, `sigmoid(x)`, `grad::sigmoid(x)`,
//! `chain!(x -> sigmoid)`), as do `wrt` lists, `mut` parameters and an
//! integer parameter used as a loop bound.
//!
//! Each program is printed as Rust source ([`Resolved::source`]), parsed,
//! lowered, reversed and simplified by the real passes, and run through the
//! IR interpreter. Three oracles are compared:
//!
//! * a reference evaluator of the AST ([`Eval`]), written from Rust's
//!   semantics independently of the lowering, gives the value (which the
//!   interpreted primal and the interpreted `_backward` must reproduce bit for
//!   bit) and the trace of every discrete decision (branches, sides of kinks);
//! * central finite differences of the reference evaluator at two step sizes,
//!   used only where the decision trace is the same on both sides of the
//!   point and the two step sizes agree (so the function is smooth there);
//! * the expansion of the same source (`expand::differentiate`) must succeed
//!   without `compile_error!` and re-parse as a file.
//!
//! Points where a primitive's derivative is infinite or undefined
//! (`cbrt(0)`, `atan2(0, 0)`) are not compared. A failure is shrunk by
//! proptest on the AST and then by [`reduce`], and printed as a Rust
//! function. `PROPTEST_CASES` and `PROPTEST_RNG_SEED` override the number of
//! programs (10,000) and the fixed seed. Every bug found is kept as a
//! `regression_*` test at the end.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use proc_macro2::TokenStream;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRunner};

use crate::args::Args;
use crate::ctxt::Ctxt;
use crate::interp::{self, Val};

use crate::ir::{Func, Var};
use crate::rules::{Forms, RULES};
use crate::{lower, reverse, simplify};

/// The expander's fuzzing lives beside this module (`src/fuzz.rs`).
#[path = "fuzz.rs"]
mod fuzz;

// ------------------------------------------------------------------ the AST

/// An expression. `V` is `u8` in generated programs (an index, taken modulo
/// whatever is in scope, so that every program is well-formed and shrinking
/// cannot break it) and `String` once [`resolve`]d to names.
#[derive(Clone, Debug, PartialEq)]
pub enum E<V> {
    /// A scalar variable in scope.
    Var(V),
    Lit(f64),
    /// `std::f64::consts::PI`.
    Pi,
    /// `xs[i]`: an element of a slice parameter or a local array.
    Elem(V, Idx<V>),
    /// `(i as f64)` of a loop variable (or of the integer parameter).
    Cast(V),
    Neg(Box<E<V>>),
    Arith(Op, Box<E<V>>, Box<E<V>>),
    /// A primitive of the rule table: name, call style, arguments. Integer
    /// arguments (`powi`) are [`E::Int`].
    Call(&'static str, u8, Vec<E<V>>),
    /// An integer literal argument.
    Int(i32),
    If(Box<C<V>>, Box<E<V>>, Box<E<V>>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Idx<V> {
    /// The variable of an enclosing loop.
    Loop(V),
    Const(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition.
#[derive(Clone, Debug, PartialEq)]
pub enum C<V> {
    Cmp(Cmp, E<V>, E<V>),
    And(Box<C<V>>, Box<C<V>>),
    Or(Box<C<V>>, Box<C<V>>),
    Not(Box<C<V>>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AOp {
    Set,
    Add,
    Sub,
    Mul,
    /// `/=`; the generator wraps the right side so that it is positive.
    Div,
    /// `m = m * 0.5 + e`: a decaying loop-carried accumulator.
    Decay,
}

#[derive(Clone, Debug, PartialEq)]
pub enum S<V> {
    Let {
        name: V,
        mutable: bool,
        e: E<V>,
    },
    Assign {
        target: V,
        op: AOp,
        e: E<V>,
    },
    If {
        c: C<V>,
        then_: Vec<S<V>>,
        else_: Option<Vec<S<V>>>,
    },
    For {
        kind: ForKind<V>,
        body: Vec<S<V>>,
    },
    /// `if c { break; }` (only inside loops).
    Break(C<V>),
    /// `if c { continue; }` (only inside loops).
    Continue(C<V>),
    /// `if c { return e; }` (only outside loops).
    Return(C<V>, E<V>),
    /// `let mut h = [0.0; len];`: a local array.
    LetArray {
        name: V,
    },
    /// `h[i] = e;`, `h[i] += e;`, …: a store into a local array.
    Store {
        array: V,
        idx: Idx<V>,
        op: AOp,
        e: E<V>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum ForKind<V> {
    /// `for i in (start..end).step_by(2).rev()`
    Range {
        var: V,
        start: usize,
        end: End<V>,
        inclusive: bool,
        step: bool,
        rev: bool,
    },
    /// `for (i, (&e, &g)) in xs.iter().zip(ys.iter()).enumerate().rev()`
    Slices {
        /// The index variable of `.enumerate()`, if any.
        var: Option<V>,
        slices: Vec<V>,
        elems: Vec<V>,
        rev: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum End<V> {
    Const(usize),
    /// `xs.len()`
    Len(V),
    /// The integer parameter `n` or an enclosing loop's variable.
    Var(V),
}

/// A generated program: the signature's shape, the body, and the point at
/// which it is evaluated.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Scalar parameters `p0..`, 1 to 3.
    pub scalars: usize,
    /// Slice parameters `xs0..`, 0 to 2, all of length `len`.
    pub slices: usize,
    pub len: usize,
    /// An integer parameter `n: usize` (= `len`), usable as a loop bound.
    pub int_param: bool,
    /// Scalar parameters declared `mut` (and assignable).
    pub mut_params: bool,
    /// Local arrays `h0..` declared at the top of the body, 0 to 2.
    pub local_arrays: usize,
    /// Which float parameters are differentiated (bit mask; none or all
    /// means no `wrt` list).
    pub wrt: u8,
    pub body: Vec<S<u8>>,
    pub tail: E<u8>,
    /// Argument values: the scalars, then the slices' elements.
    pub point: Vec<f64>,
    /// Whether to run the whole expansion too (one program in eight: it
    /// repeats the passes and adds emission).
    pub expand: bool,
}

// ---------------------------------------------------------------- generator

const LITS: [f64; 10] = [0.0, 0.5, 1.0, 2.0, 1.5, 0.25, 3.0, 0.1, -1.0, -0.5];

/// The literals programs use.
fn lits() -> Vec<f64> {
    LITS.to_vec()
}

/// Every primitive the generator emits, by rule name (`add`, `sub`, `mul`,
/// `neg` come from [`E::Arith`] and [`E::Neg`]).
const PRIMS: &[&str] = &[
    "sin",
    "cos",
    "tan",
    "powi",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "exp",
    "exp2",
    "exp_m1",
    "ln",
    "ln_1p",
    "log2",
    "log10",
    "sqrt",
    "cbrt",
    "recip",
    "abs",
    "signum",
    "floor",
    "ceil",
    "round",
    "trunc",
    // From here on, primitives of two or three arguments.
    "powf",
    "log",
    "atan2",
    "hypot",
    "min",
    "max",
    "clamp",
    "mul_add",
    "sigmoid",
    "relu",
    "leaky_relu",
    "softplus",
    "bce",
    "bce_with_logits",
    "mse",
    "div",
];

/// How many of [`PRIMS`] take one float argument.
const UNARY: usize = 29;

/// The runtime's functions (free-function form); `clamp` has both forms.
const RUNTIME: &[&str] = &[
    "sigmoid",
    "relu",
    "leaky_relu",
    "softplus",
    "bce",
    "bce_with_logits",
    "mse",
];

type Ex = E<u8>;

fn bx<V>(e: E<V>) -> Box<E<V>> {
    Box::new(e)
}

fn lit(v: f64) -> Ex {
    E::Lit(v)
}

fn m(name: &'static str, args: Vec<Ex>) -> Ex {
    E::Call(name, 0, args)
}

fn add(a: Ex, b: Ex) -> Ex {
    E::Arith(Op::Add, bx(a), bx(b))
}

fn mul(a: Ex, b: Ex) -> Ex {
    E::Arith(Op::Mul, bx(a), bx(b))
}

/// A positive value (> 0.09) made from any `v`.
fn pos(v: Ex, w: u8) -> Ex {
    match w % 3 {
        0 => add(mul(v.clone(), v), lit(0.5)),
        1 => add(m("abs", vec![v]), lit(0.25)),
        _ => add(m("softplus", vec![v]), lit(0.1)),
    }
}

/// A value of moderate size for `exp` and friends.
fn bounded(v: Ex, w: u8) -> Ex {
    match w % 3 {
        0 => v,
        1 => mul(m("tanh", vec![v]), lit(3.0)),
        _ => mul(m("sin", vec![v]), lit(2.0)),
    }
}

/// A value in (-0.9, 0.9).
fn unit(v: Ex, w: u8) -> Ex {
    match w % 2 {
        0 => mul(m("tanh", vec![v]), lit(0.9)),
        _ => mul(m("sin", vec![v]), lit(0.9)),
    }
}

fn prob(v: Ex) -> Ex {
    m("sigmoid", vec![v])
}

/// A target in [0, 1].
fn target(v: Ex, w: u8) -> Ex {
    match w % 4 {
        0 => lit(0.0),
        1 => lit(1.0),
        2 => lit(0.25),
        _ => prob(v),
    }
}

/// Builds primitive `PRIMS[which]` on `a, b, c`, with the arguments wrapped
/// into the primitive's domain.
fn build_prim(which: usize, a: Ex, b: Ex, c: Ex, style: u8, w: u8) -> Ex {
    let name = PRIMS[which % PRIMS.len()];
    let call = |args: Vec<Ex>| E::Call(name, style, args);
    match name {
        "sin" | "cos" | "atan" | "tanh" | "asinh" | "abs" | "signum" | "floor" | "ceil"
        | "round" | "trunc" | "sigmoid" | "relu" | "softplus" => call(vec![a]),
        "exp" | "exp2" | "exp_m1" | "sinh" | "cosh" => call(vec![bounded(a, w)]),
        "ln" | "log2" | "log10" | "sqrt" | "recip" => call(vec![pos(a, w)]),
        "cbrt" => call(vec![if w % 2 == 0 { a } else { pos(a, w / 2) }]),
        "asin" | "acos" | "atanh" => call(vec![unit(a, w)]),
        "tan" => call(vec![if w % 2 == 0 {
            mul(m("tanh", vec![a]), lit(1.2))
        } else {
            m("sin", vec![a])
        }]),
        "acosh" => call(vec![if w % 2 == 0 {
            add(mul(a.clone(), a), lit(1.5))
        } else {
            add(m("abs", vec![a]), lit(1.25))
        }]),
        "ln_1p" => call(vec![if w % 2 == 0 {
            mul(a.clone(), a)
        } else {
            E::Arith(Op::Sub, bx(prob(a)), bx(lit(0.5)))
        }]),
        "powi" => {
            let n = (w % 8) as i32 - 3;
            let base = if n < 0 { pos(a, w / 8) } else { a };
            call(vec![base, E::Int(n)])
        }
        "powf" => call(vec![pos(a, w), bounded(b, w / 3)]),
        "log" => {
            let base = match w % 3 {
                0 => lit(2.0),
                1 => lit(3.0),
                _ => add(mul(b.clone(), b), lit(1.5)),
            };
            call(vec![pos(a, w / 3), base])
        }
        "atan2" | "hypot" | "min" | "max" | "mse" => call(vec![a, b]),
        "mul_add" => call(vec![a, b, c]),
        "clamp" => {
            let width = [0.5, 1.0, 2.0][(w % 3) as usize];
            call(vec![a, b.clone(), add(b, lit(width))])
        }
        "leaky_relu" => {
            let slope = match w % 3 {
                0 => lit(0.1),
                1 => lit(0.25),
                _ => mul(prob(b), lit(0.3)),
            };
            call(vec![a, slope])
        }
        "bce" => call(vec![prob(a), target(b, w)]),
        "bce_with_logits" => call(vec![a, target(b, w)]),
        "div" => {
            let den = if w % 4 == 3 {
                add(m("tanh", vec![b]), lit(2.0))
            } else {
                pos(b, w)
            };
            E::Arith(Op::Div, bx(a), bx(den))
        }
        other => unreachable!("primitive {other} without a generator"),
    }
}

fn arb_idx() -> impl Strategy<Value = Idx<u8>> {
    prop_oneof![
        3 => any::<u8>().prop_map(Idx::Loop),
        1 => (0usize..4).prop_map(Idx::Const),
    ]
}

fn arb_cmp() -> impl Strategy<Value = Cmp> {
    prop_oneof![Just(Cmp::Lt), Just(Cmp::Le), Just(Cmp::Gt), Just(Cmp::Ge)]
}

fn arb_cond(e: BoxedStrategy<Ex>) -> BoxedStrategy<C<u8>> {
    let leaf = (arb_cmp(), e.clone(), e).prop_map(|(op, a, b)| C::Cmp(op, a, b));
    leaf.prop_recursive(2, 4, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| C::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| C::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| C::Not(Box::new(a))),
        ]
    })
    .boxed()
}

fn arb_expr() -> BoxedStrategy<Ex> {
    let leaf = prop_oneof![
        8 => any::<u8>().prop_map(E::Var),
        2 => prop::sample::select(lits()).prop_map(E::Lit),
        1 => Just(E::Pi),
        3 => (any::<u8>(), arb_idx()).prop_map(|(s, i)| E::Elem(s, i)),
        1 => any::<u8>().prop_map(E::Cast),
    ];
    leaf.prop_recursive(3, 10, 2, |inner| {
        let cond = arb_cond(
            prop_oneof![
                any::<u8>().prop_map(E::Var),
                (any::<u8>(), arb_idx()).prop_map(|(s, i)| E::Elem(s, i)),
                inner.clone(),
            ]
            .boxed(),
        );
        prop_oneof![
            4 => (
                prop_oneof![Just(Op::Add), Just(Op::Sub), Just(Op::Mul)],
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, a, b)| E::Arith(op, bx(a), bx(b))),
            1 => inner.clone().prop_map(|a| E::Neg(bx(a))),
            5 => (0..UNARY, inner.clone(), any::<u8>(), any::<u8>()).prop_map(
                |(which, a, style, w)| build_prim(which, a, lit(0.5), lit(0.5), style, w)
            ),
            3 => (
                UNARY..PRIMS.len(),
                inner.clone(),
                inner.clone(),
                any::<u8>(),
                any::<u8>()
            )
                .prop_map(|(which, a, b, style, w)| {
                    // `mul_add`'s third argument: the second, negated.
                    let c = E::Neg(bx(b.clone()));
                    build_prim(which, a, b, c, style, w)
                }),
            1 => (cond, inner.clone(), inner).prop_map(|(c, a, b)| E::If(
                Box::new(c),
                bx(a),
                bx(b)
            )),
        ]
    })
    .boxed()
}

fn arb_for_kind() -> impl Strategy<Value = ForKind<u8>> {
    let end = prop_oneof![
        2 => (1usize..4).prop_map(End::Const),
        2 => any::<u8>().prop_map(End::Len),
        1 => any::<u8>().prop_map(End::Var),
    ];
    prop_oneof![
        3 => (
            0usize..2,
            end,
            any::<bool>(),
            prop::bool::weighted(0.2),
            any::<bool>()
        )
            .prop_map(|(start, end, inclusive, step, rev)| ForKind::Range {
                var: 0,
                start,
                end,
                inclusive,
                step,
                rev,
            }),
        2 => (
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 1..3),
            any::<bool>()
        )
            .prop_map(|(enumerate, slices, rev)| ForKind::Slices {
                var: enumerate.then_some(0),
                elems: vec![0; slices.len()],
                slices,
                rev,
            }),
    ]
}

fn arb_aop() -> impl Strategy<Value = AOp> {
    prop_oneof![
        2 => Just(AOp::Set),
        3 => Just(AOp::Add),
        1 => Just(AOp::Sub),
        2 => Just(AOp::Mul),
        1 => Just(AOp::Div),
        3 => Just(AOp::Decay),
    ]
}

fn arb_stmt(e: BoxedStrategy<Ex>) -> BoxedStrategy<S<u8>> {
    let cond = arb_cond(e.clone());
    let leaf = prop_oneof![
        5 => (any::<u8>(), any::<bool>(), e.clone())
            .prop_map(|(name, mutable, e)| S::Let { name, mutable, e }),
        5 => (any::<u8>(), arb_aop(), e.clone(), any::<u8>()).prop_map(|(target, op, e, w)| {
            let e = if op == AOp::Div {
                if w % 2 == 0 {
                    add(m("tanh", vec![e]), lit(2.0))
                } else {
                    pos(e, w / 2)
                }
            } else {
                e
            };
            S::Assign { target, op, e }
        }),
        2 => any::<u8>().prop_map(|name| S::LetArray { name }),
        5 => (any::<u8>(), arb_idx(), arb_aop(), e.clone()).prop_map(|(array, idx, op, e)| {
            let op = if op == AOp::Div { AOp::Add } else { op };
            S::Store { array, idx, op, e }
        }),
        1 => cond.clone().prop_map(S::Break),
        1 => cond.clone().prop_map(S::Continue),
        1 => (cond.clone(), e).prop_map(|(c, e)| S::Return(c, e)),
    ];
    leaf.prop_recursive(2, 8, 3, move |inner| {
        prop_oneof![
            2 => (
                cond.clone(),
                prop::collection::vec(inner.clone(), 0..3),
                prop::option::of(prop::collection::vec(inner.clone(), 0..3))
            )
                .prop_map(|(c, then_, else_)| S::If { c, then_, else_ }),
            2 => (arb_for_kind(), prop::collection::vec(inner, 1..4))
                .prop_map(|(kind, body)| S::For { kind, body }),
        ]
    })
    .boxed()
}

pub fn arb_program() -> impl Strategy<Value = Program> {
    let e = arb_expr();
    (
        1usize..4,
        0usize..3,
        3usize..5,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        any::<u8>(),
        prop::collection::vec(arb_stmt(e.clone()), 0..5),
        e,
        prop::collection::vec(-2.0f64..2.0, 12),
        prop::bool::weighted(0.125),
        prop_oneof![2 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)],
    )
        .prop_map(
            |(
                scalars,
                slices,
                len,
                int_param,
                mut_params,
                wrt,
                body,
                tail,
                point,
                expand,
                local_arrays,
            )| {
                Program {
                    expand,
                    scalars,
                    slices,
                    len,
                    int_param,
                    mut_params,
                    local_arrays,
                    wrt,
                    body,
                    tail,
                    point,
                }
            },
        )
}

// --------------------------------------------------------------- resolution

/// A parameter of a resolved program.
#[derive(Clone, Debug)]
pub enum ParamDecl {
    Scalar {
        name: String,
        wrt: bool,
        mutable: bool,
    },
    Slice {
        name: String,
        wrt: bool,
    },
    Int {
        name: String,
    },
}

/// A program with every reference resolved to a name, as printed.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub params: Vec<ParamDecl>,
    /// `wrt` list, or empty for the default (every float parameter).
    pub wrt: Vec<String>,
    pub body: Vec<S<String>>,
    pub tail: E<String>,
    pub len: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Scalar {
        mutable: bool,
    },
    /// A slice parameter or a local array.
    Array {
        local: bool,
    },
    Other,
}

struct Resolver {
    frames: Vec<Vec<(String, Kind)>>,
    /// Index variables of the enclosing loops, outermost first.
    loop_vars: Vec<String>,
    /// How many loops enclose the current statement.
    loop_depth: usize,
    len: usize,
    int_param: Option<String>,
}

impl Resolver {
    /// The visible scalars, each name once (its innermost binding).
    fn scalars(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = vec![];
        for frame in &self.frames {
            for (name, kind) in frame {
                let mutable = match kind {
                    Kind::Scalar { mutable } => *mutable,
                    Kind::Array { .. } | Kind::Other => continue,
                };
                match out.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 = mutable,
                    None => out.push((name.clone(), mutable)),
                }
            }
        }
        out
    }

    /// The visible arrays (slice parameters, then local arrays), each name
    /// once; with `local_only`, the local arrays only.
    fn arrays(&self, local_only: bool) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for frame in &self.frames {
            for (name, kind) in frame {
                if let Kind::Array { local } = kind {
                    if (*local || !local_only) && !out.contains(name) {
                        out.push(name.clone());
                    }
                }
            }
        }
        out
    }

    fn idx(&self, idx: &Idx<u8>) -> Idx<String> {
        match idx {
            Idx::Loop(k) if !self.loop_vars.is_empty() => {
                Idx::Loop(self.loop_vars[*k as usize % self.loop_vars.len()].clone())
            }
            Idx::Loop(k) => Idx::Const(*k as usize % self.len),
            Idx::Const(k) => Idx::Const(k % self.len),
        }
    }

    fn bind(&mut self, name: String, kind: Kind) {
        if let Some(frame) = self.frames.last_mut() {
            frame.push((name, kind));
        }
    }

    fn expr(&self, e: &Ex) -> E<String> {
        match e {
            E::Var(k) => {
                let scalars = self.scalars();
                match scalars.get(*k as usize % scalars.len().max(1)) {
                    Some((name, _)) => E::Var(name.clone()),
                    None => E::Lit(1.0),
                }
            }
            E::Lit(v) => E::Lit(*v),
            E::Pi => E::Pi,
            E::Int(n) => E::Int(*n),
            E::Elem(s, idx) => {
                let arrays = self.arrays(false);
                if arrays.is_empty() {
                    return E::Lit(0.5);
                }
                E::Elem(arrays[*s as usize % arrays.len()].clone(), self.idx(idx))
            }
            E::Cast(k) => {
                if !self.loop_vars.is_empty() {
                    E::Cast(self.loop_vars[*k as usize % self.loop_vars.len()].clone())
                } else if let Some(n) = &self.int_param {
                    E::Cast(n.clone())
                } else {
                    E::Lit(2.0)
                }
            }
            E::Neg(a) => E::Neg(Box::new(self.expr(a))),
            E::Arith(op, a, b) => E::Arith(*op, Box::new(self.expr(a)), Box::new(self.expr(b))),
            E::Call(name, style, args) => {
                E::Call(name, *style, args.iter().map(|a| self.expr(a)).collect())
            }
            E::If(c, a, b) => E::If(
                Box::new(self.cond(c)),
                Box::new(self.expr(a)),
                Box::new(self.expr(b)),
            ),
        }
    }

    fn cond(&self, c: &C<u8>) -> C<String> {
        match c {
            C::Cmp(op, a, b) => C::Cmp(*op, self.expr(a), self.expr(b)),
            C::And(a, b) => C::And(Box::new(self.cond(a)), Box::new(self.cond(b))),
            C::Or(a, b) => C::Or(Box::new(self.cond(a)), Box::new(self.cond(b))),
            C::Not(a) => C::Not(Box::new(self.cond(a))),
        }
    }

    fn block(&mut self, stmts: &[S<u8>]) -> Vec<S<String>> {
        self.frames.push(vec![]);
        let out = stmts.iter().filter_map(|s| self.stmt(s)).collect();
        self.frames.pop();
        out
    }

    fn let_name(&self, k: u8) -> String {
        let params: Vec<String> = self.frames[0]
            .iter()
            .filter(|(_, kind)| matches!(kind, Kind::Scalar { .. }))
            .map(|(n, _)| n.clone())
            .collect();
        match k % 7 {
            5 | 6 if params.len() > (k % 7 - 5) as usize => params[(k % 7 - 5) as usize].clone(),
            i => format!("v{}", i % 5),
        }
    }

    fn stmt(&mut self, s: &S<u8>) -> Option<S<String>> {
        Some(match s {
            S::Let { name, mutable, e } => {
                let e = self.expr(e);
                let name = self.let_name(*name);
                self.bind(name.clone(), Kind::Scalar { mutable: *mutable });
                S::Let {
                    name,
                    mutable: *mutable,
                    e,
                }
            }
            S::Assign { target, op, e } => {
                let targets: Vec<String> = self
                    .scalars()
                    .into_iter()
                    .filter(|(_, m)| *m)
                    .map(|(n, _)| n)
                    .collect();
                if targets.is_empty() {
                    return None;
                }
                let target = targets[*target as usize % targets.len()].clone();
                let e = self.expr(e);
                match op {
                    AOp::Decay => S::Assign {
                        e: E::Arith(
                            Op::Add,
                            Box::new(E::Arith(
                                Op::Mul,
                                Box::new(E::Var(target.clone())),
                                Box::new(E::Lit(0.5)),
                            )),
                            Box::new(e),
                        ),
                        target,
                        op: AOp::Set,
                    },
                    op => S::Assign { target, op: *op, e },
                }
            }
            S::If { c, then_, else_ } => S::If {
                c: self.cond(c),
                then_: self.block(then_),
                else_: else_.as_ref().map(|b| self.block(b)),
            },
            S::LetArray { name } => {
                let name = format!("h{}", name % 3);
                self.bind(name.clone(), Kind::Array { local: true });
                S::LetArray { name }
            }
            S::Store { array, idx, op, e } => {
                let arrays = self.arrays(true);
                if arrays.is_empty() {
                    return None;
                }
                let array = arrays[*array as usize % arrays.len()].clone();
                let e = self.expr(e);
                let idx = self.idx(idx);
                match op {
                    AOp::Decay => S::Store {
                        e: E::Arith(
                            Op::Add,
                            Box::new(E::Arith(
                                Op::Mul,
                                Box::new(E::Elem(array.clone(), idx.clone())),
                                Box::new(E::Lit(0.5)),
                            )),
                            Box::new(e),
                        ),
                        array,
                        idx,
                        op: AOp::Set,
                    },
                    op => S::Store {
                        array,
                        idx,
                        op: *op,
                        e,
                    },
                }
            }
            S::Break(c) if self.loop_depth > 0 => S::Break(self.cond(c)),
            S::Continue(c) if self.loop_depth > 0 => S::Continue(self.cond(c)),
            S::Return(c, e) if self.loop_depth == 0 => S::Return(self.cond(c), self.expr(e)),
            S::Break(_) | S::Continue(_) | S::Return(..) => return None,
            S::For { kind, body } => {
                let depth = self.loop_depth;
                let kind = match kind {
                    ForKind::Range {
                        start,
                        end,
                        inclusive,
                        step,
                        rev,
                        ..
                    } => {
                        let (end, inclusive) = match end {
                            End::Const(k) if *inclusive => {
                                (End::Const((*k).min(self.len - 1)), true)
                            }
                            End::Const(k) => (End::Const(*k), false),
                            End::Len(s) if !self.arrays(false).is_empty() => {
                                let arrays = self.arrays(false);
                                (End::Len(arrays[*s as usize % arrays.len()].clone()), false)
                            }
                            End::Var(k) if !self.loop_vars.is_empty() && k % 2 == 0 => (
                                End::Var(
                                    self.loop_vars[*k as usize / 2 % self.loop_vars.len()].clone(),
                                ),
                                *inclusive,
                            ),
                            End::Var(_) if self.int_param.is_some() => {
                                (End::Var(self.int_param.clone().unwrap_or_default()), false)
                            }
                            _ => (End::Const(2), *inclusive),
                        };
                        ForKind::Range {
                            var: format!("i{depth}"),
                            start: *start,
                            end,
                            // `RangeInclusive<usize>` is not `ExactSizeIterator`,
                            // so `(a..=b).step_by(k).rev()` does not compile.
                            inclusive: inclusive && !(*step && *rev),
                            step: *step,
                            rev: *rev,
                        }
                    }
                    ForKind::Slices {
                        var, slices, rev, ..
                    } => {
                        // Slice parameters only: iterating a local array
                        // borrows it, and the body may store into it.
                        let arrays: Vec<String> = self.frames[0]
                            .iter()
                            .filter(|(_, k)| matches!(k, Kind::Array { local: false }))
                            .map(|(n, _)| n.clone())
                            .collect();
                        if arrays.is_empty() {
                            ForKind::Range {
                                var: format!("i{depth}"),
                                start: 0,
                                end: End::Const(2),
                                inclusive: false,
                                step: false,
                                rev: *rev,
                            }
                        } else {
                            let slices: Vec<String> = slices
                                .iter()
                                .map(|s| arrays[*s as usize % arrays.len()].clone())
                                .collect();
                            let elems = ["e", "g"][..slices.len()]
                                .iter()
                                .map(|p| format!("{p}{depth}"))
                                .collect();
                            ForKind::Slices {
                                var: var.map(|_| format!("i{depth}")),
                                slices,
                                elems,
                                rev: *rev,
                            }
                        }
                    }
                };
                self.frames.push(vec![]);
                let pushed_var = match &kind {
                    ForKind::Range { var, .. } | ForKind::Slices { var: Some(var), .. } => {
                        self.bind(var.clone(), Kind::Other);
                        self.loop_vars.push(var.clone());
                        true
                    }
                    ForKind::Slices { var: None, .. } => false,
                };
                if let ForKind::Slices { elems, .. } = &kind {
                    for e in elems {
                        self.bind(e.clone(), Kind::Scalar { mutable: false });
                    }
                }
                self.loop_depth += 1;
                let body = self.block(body);
                self.loop_depth -= 1;
                if pushed_var {
                    self.loop_vars.pop();
                }
                self.frames.pop();
                S::For { kind, body }
            }
        })
    }
}

pub fn resolve(p: &Program) -> Resolved {
    let mut params = vec![];
    let mut frame = vec![];
    let mut floats = vec![];
    for i in 0..p.scalars {
        let name = format!("p{i}");
        frame.push((
            name.clone(),
            Kind::Scalar {
                mutable: p.mut_params,
            },
        ));
        floats.push(name);
    }
    let slices: Vec<String> = (0..p.slices).map(|i| format!("xs{i}")).collect();
    floats.extend(slices.iter().cloned());
    let mask = p.wrt as usize & ((1 << floats.len()) - 1);
    let all = mask == 0 || mask == (1 << floats.len()) - 1;
    let wrt_of = |i: usize| all || mask & (1 << i) != 0;
    for (i, name) in floats.iter().take(p.scalars).enumerate() {
        params.push(ParamDecl::Scalar {
            name: name.clone(),
            wrt: wrt_of(i),
            mutable: p.mut_params,
        });
    }
    for (j, s) in slices.iter().enumerate() {
        params.push(ParamDecl::Slice {
            name: s.clone(),
            wrt: wrt_of(p.scalars + j),
        });
        frame.push((s.clone(), Kind::Array { local: false }));
    }
    let int_param = p.int_param.then(|| "n".to_string());
    if let Some(n) = &int_param {
        params.push(ParamDecl::Int { name: n.clone() });
        frame.push((n.clone(), Kind::Other));
    }
    let wrt = if all {
        vec![]
    } else {
        (0..floats.len())
            .filter(|&i| wrt_of(i))
            .map(|i| floats[i].clone())
            .collect()
    };
    let mut r = Resolver {
        frames: vec![frame],
        loop_vars: vec![],
        loop_depth: 0,
        len: p.len,
        int_param,
    };
    let mut body: Vec<S<String>> = (0..p.local_arrays as u8)
        .filter_map(|k| r.stmt(&S::LetArray { name: k }))
        .collect();
    body.extend(p.body.iter().filter_map(|s| r.stmt(s)));
    let tail = r.expr(&p.tail);
    Resolved {
        params,
        wrt,
        body,
        tail,
        len: p.len,
    }
}

// ------------------------------------------------------------------ printing

/// Whether an expression's type is left to inference (no typed leaf), in
/// which case its literals are printed with `_f64` so that method calls on
/// it type-check.
fn untyped(e: &E<String>) -> bool {
    match e {
        E::Var(_) | E::Pi | E::Elem(..) | E::Cast(_) => false,
        E::Lit(_) | E::Int(_) => true,
        E::Neg(a) => untyped(a),
        E::Arith(_, a, b) => untyped(a) && untyped(b),
        E::Call(_, _, args) => args.iter().all(untyped),
        E::If(_, a, b) => untyped(a) && untyped(b),
    }
}

fn fmt_lit(v: f64, suffix: bool) -> String {
    let s = format!("{v:?}");
    if suffix {
        format!("{s}_f64")
    } else {
        s
    }
}

/// Precedence levels: 0 `if`, 1 `+ -`, 2 `* /`, 3 unary `-`, 4 atoms,
/// calls and method calls.
fn print_expr(e: &E<String>, suffix: bool) -> (String, u8) {
    // A literal takes its suffix from the context; the operands of an
    // untyped operation are all suffixed.
    let inner = suffix || untyped(e);
    let p = |e: &E<String>, need: u8| {
        let (s, prec) = print_expr(e, inner);
        if prec < need {
            format!("({s})")
        } else {
            s
        }
    };
    match e {
        E::Var(n) => (n.clone(), 4),
        E::Lit(v) => (fmt_lit(*v, suffix), if *v < 0.0 { 3 } else { 4 }),
        E::Int(n) => (n.to_string(), if *n < 0 { 3 } else { 4 }),
        E::Pi => ("std::f64::consts::PI".into(), 4),
        E::Elem(s, Idx::Loop(i)) => (format!("{s}[{i}]"), 4),
        E::Elem(s, Idx::Const(k)) => (format!("{s}[{k}]"), 4),
        E::Cast(i) => (format!("({i} as f64)"), 4),
        E::Neg(a) => (format!("-{}", p(a, 4)), 3),
        E::Arith(op, a, b) => {
            let (sym, prec) = match op {
                Op::Add => ("+", 1),
                Op::Sub => ("-", 1),
                Op::Mul => ("*", 2),
                Op::Div => ("/", 2),
            };
            (format!("{} {sym} {}", p(a, prec), p(b, prec + 1)), prec)
        }
        E::Call(name, style, args) => {
            let top = |e: &E<String>| p(e, 1);
            let rest: Vec<String> = args[1..].iter().map(top).collect();
            let all: Vec<String> = args.iter().map(top).collect();
            let runtime = RUNTIME.contains(name) || (*name == "clamp" && style % 3 != 0);
            let text = if runtime {
                let chain_stage = if rest.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}({})", rest.join(", "))
                };
                match style % 3 {
                    1 => format!("chain!({} -> {chain_stage})", p(&args[0], 0)),
                    2 if *name != "clamp" => format!("grad::{name}({})", all.join(", ")),
                    _ => format!("{name}({})", all.join(", ")),
                }
            } else if style % 2 == 1 {
                format!("f64::{name}({})", all.join(", "))
            } else {
                // A receiver of unknown float type needs its suffix even
                // where the call itself is typed by its arguments.
                let (receiver, prec) = print_expr(&args[0], inner || untyped(&args[0]));
                let receiver = if prec < 4 {
                    format!("({receiver})")
                } else {
                    receiver
                };
                format!("{receiver}.{name}({})", rest.join(", "))
            };
            (text, 4)
        }
        E::If(c, a, b) => (
            format!(
                "if {} {{ {} }} else {{ {} }}",
                print_cond(c, 0),
                p(a, 0),
                p(b, 0)
            ),
            0,
        ),
    }
}

/// Conditions: 0 top, 1 `||`, 2 `&&`, 3 comparisons and `!`.
fn print_cond(c: &C<String>, need: u8) -> String {
    let (s, prec) = match c {
        C::Cmp(op, a, b) => {
            let sym = match op {
                Cmp::Lt => "<",
                Cmp::Le => "<=",
                Cmp::Gt => ">",
                Cmp::Ge => ">=",
            };
            let side = |e: &E<String>| {
                let (s, prec) = print_expr(e, false);
                if prec < 1 {
                    format!("({s})")
                } else {
                    s
                }
            };
            (format!("{} {sym} {}", side(a), side(b)), 3)
        }
        C::And(a, b) => (format!("{} && {}", print_cond(a, 3), print_cond(b, 3)), 2),
        C::Or(a, b) => (format!("{} || {}", print_cond(a, 3), print_cond(b, 3)), 1),
        C::Not(a) => (format!("!({})", print_cond(a, 0)), 3),
    };
    if prec < need {
        format!("({s})")
    } else {
        s
    }
}

fn print_stmts(stmts: &[S<String>], depth: usize, len: usize, out: &mut String) {
    let pad = "    ".repeat(depth);
    for s in stmts {
        match s {
            S::Let { name, mutable, e } => {
                let (text, _) = print_expr(e, false);
                let m = if *mutable { "mut " } else { "" };
                let ty = if untyped(e) { ": f64" } else { "" };
                let _ = writeln!(out, "{pad}let {m}{name}{ty} = {text};");
            }
            S::Assign { target, op, e } => {
                let (text, _) = print_expr(e, false);
                let sym = match op {
                    AOp::Set | AOp::Decay => "=",
                    AOp::Add => "+=",
                    AOp::Sub => "-=",
                    AOp::Mul => "*=",
                    AOp::Div => "/=",
                };
                let _ = writeln!(out, "{pad}{target} {sym} {text};");
            }
            S::If { c, then_, else_ } => {
                let _ = writeln!(out, "{pad}if {} {{", print_cond(c, 0));
                print_stmts(then_, depth + 1, len, out);
                match else_ {
                    Some(e) => {
                        let _ = writeln!(out, "{pad}}} else {{");
                        print_stmts(e, depth + 1, len, out);
                        let _ = writeln!(out, "{pad}}}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}}}");
                    }
                }
            }
            S::For { kind, body } => {
                let head = match kind {
                    ForKind::Range {
                        var,
                        start,
                        end,
                        inclusive,
                        step,
                        rev,
                    } => {
                        let end = match end {
                            End::Const(k) => k.to_string(),
                            End::Len(s) => format!("{s}.len()"),
                            End::Var(v) => v.clone(),
                        };
                        let dots = if *inclusive { "..=" } else { ".." };
                        let mut range = format!("{start}{dots}{end}");
                        if *step || *rev {
                            range = format!("({range})");
                        }
                        if *step {
                            range.push_str(".step_by(2)");
                        }
                        if *rev {
                            range.push_str(".rev()");
                        }
                        format!("for {var} in {range}")
                    }
                    ForKind::Slices {
                        var,
                        slices,
                        elems,
                        rev,
                    } => {
                        let mut iter = format!("{}.iter()", slices[0]);
                        for s in &slices[1..] {
                            let _ = write!(iter, ".zip({s}.iter())");
                        }
                        let pats: Vec<String> = elems.iter().map(|e| format!("&{e}")).collect();
                        let mut pat = if pats.len() == 1 {
                            pats[0].clone()
                        } else {
                            format!("({})", pats.join(", "))
                        };
                        if let Some(i) = var {
                            iter.push_str(".enumerate()");
                            pat = format!("({i}, {pat})");
                        }
                        if *rev {
                            iter.push_str(".rev()");
                        }
                        format!("for {pat} in {iter}")
                    }
                };
                let _ = writeln!(out, "{pad}{head} {{");
                print_stmts(body, depth + 1, len, out);
                let _ = writeln!(out, "{pad}}}");
            }
            // Both the suffixed and the annotated form.
            S::LetArray { name } if name.ends_with('1') => {
                let _ = writeln!(out, "{pad}let mut {name} = [0.0_f64; {len}];");
            }
            S::LetArray { name } => {
                let _ = writeln!(out, "{pad}let mut {name}: [f64; {len}] = [0.0; {len}];");
            }
            S::Store { array, idx, op, e } => {
                let (text, _) = print_expr(e, false);
                let sym = match op {
                    AOp::Set | AOp::Decay => "=",
                    AOp::Add => "+=",
                    AOp::Sub => "-=",
                    AOp::Mul => "*=",
                    AOp::Div => "/=",
                };
                let idx = match idx {
                    Idx::Loop(i) => i.clone(),
                    Idx::Const(k) => k.to_string(),
                };
                let _ = writeln!(out, "{pad}{array}[{idx}] {sym} {text};");
            }
            S::Break(c) => {
                let _ = writeln!(out, "{pad}if {} {{", print_cond(c, 0));
                let _ = writeln!(out, "{pad}    break;");
                let _ = writeln!(out, "{pad}}}");
            }
            S::Continue(c) => {
                let _ = writeln!(out, "{pad}if {} {{", print_cond(c, 0));
                let _ = writeln!(out, "{pad}    continue;");
                let _ = writeln!(out, "{pad}}}");
            }
            S::Return(c, e) => {
                let _ = writeln!(out, "{pad}if {} {{", print_cond(c, 0));
                let _ = writeln!(out, "{pad}    return {};", print_expr(e, false).0);
                let _ = writeln!(out, "{pad}}}");
            }
        }
    }
}

impl Resolved {
    /// The attribute's arguments.
    pub fn attr(&self) -> String {
        if self.wrt.is_empty() {
            String::new()
        } else {
            format!("wrt({})", self.wrt.join(", "))
        }
    }

    /// The function, without the attribute.
    pub fn item(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match p {
                ParamDecl::Scalar { name, mutable, .. } => {
                    format!("{}{name}: f64", if *mutable { "mut " } else { "" })
                }
                ParamDecl::Slice { name, .. } => format!("{name}: &[f64]"),
                ParamDecl::Int { name } => format!("{name}: usize"),
            })
            .collect();
        let mut out = format!("fn f({}) -> f64 {{\n", params.join(", "));
        print_stmts(&self.body, 1, self.len, &mut out);
        let _ = writeln!(out, "    {}", print_expr(&self.tail, false).0);
        out.push_str("}\n");
        out
    }

    /// The whole function as a user would write it.
    pub fn source(&self) -> String {
        format!("#[differentiate({})]\n{}", self.attr(), self.item())
    }
}

// ------------------------------------------------------ reference evaluator

#[derive(Clone, Copy, Debug)]
enum Value {
    F(f64),
    I(usize),
    /// An array: an index into [`Eval::arrays`].
    A(usize),
}

enum Flow {
    Normal,
    Break,
    Continue,
    Return(f64),
}

/// Evaluates a resolved program with Rust's semantics, recording every
/// discrete decision (branch taken, side of a kink) in `trace` and the
/// largest magnitude of any intermediate in `max_abs`.
struct Eval<'a> {
    frames: Vec<Vec<(&'a str, Value)>>,
    /// Every array: the slice parameters, then local arrays as declared.
    arrays: Vec<Vec<f64>>,
    /// The length of slices and local arrays.
    len: usize,
    trace: Vec<i64>,
    max_abs: f64,
    finite: bool,
    /// A primitive was evaluated where its derivative is infinite or
    /// undefined (`cbrt(0)`, `atan2(0, 0)`): the gradient is not compared.
    singular: bool,
}

fn sign(x: f64) -> i64 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

fn cmp3(a: f64, b: f64) -> i64 {
    sign(a - b) * 2 + i64::from(a == b)
}

impl<'a> Eval<'a> {
    fn get(&self, name: &str) -> Value {
        for frame in self.frames.iter().rev() {
            if let Some((_, v)) = frame.iter().rev().find(|(n, _)| *n == name) {
                return *v;
            }
        }
        panic!("reference evaluator: `{name}` not in scope")
    }

    fn set(&mut self, name: &str, value: f64) {
        for frame in self.frames.iter_mut().rev() {
            if let Some((_, v)) = frame.iter_mut().rev().find(|(n, _)| *n == name) {
                *v = Value::F(value);
                return;
            }
        }
        panic!("reference evaluator: `{name}` not in scope")
    }

    fn f(&self, name: &str) -> f64 {
        match self.get(name) {
            Value::F(x) => x,
            Value::I(i) => i as f64,
            Value::A(_) => panic!("reference evaluator: `{name}` is an array"),
        }
    }

    fn i(&self, name: &str) -> usize {
        match self.get(name) {
            Value::I(i) => i,
            Value::F(x) => x as usize,
            Value::A(_) => panic!("reference evaluator: `{name}` is an array"),
        }
    }

    fn array(&self, name: &str) -> usize {
        match self.get(name) {
            Value::A(a) => a,
            _ => panic!("reference evaluator: `{name}` is not an array"),
        }
    }

    fn index(&self, idx: &Idx<String>) -> usize {
        match idx {
            Idx::Loop(i) => self.i(i),
            Idx::Const(k) => *k,
        }
    }

    fn note(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            self.finite = false;
        }
        self.max_abs = self.max_abs.max(x.abs());
        x
    }

    fn expr(&mut self, e: &'a E<String>) -> f64 {
        let v = match e {
            E::Var(n) => self.f(n),
            E::Lit(v) => *v,
            E::Int(n) => *n as f64,
            E::Pi => std::f64::consts::PI,
            E::Elem(s, idx) => self.arrays[self.array(s)][self.index(idx)],
            E::Cast(i) => self.i(i) as f64,
            E::Neg(a) => -self.expr(a),
            E::Arith(op, a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => a / b,
                }
            }
            E::Call(name, _, args) => {
                if *name == "powi" {
                    let x = self.expr(&args[0]);
                    let n = match &args[1] {
                        E::Int(n) => *n,
                        _ => unreachable!("powi's exponent is an integer literal"),
                    };
                    x.powi(n)
                } else {
                    let a: Vec<f64> = args.iter().map(|a| self.expr(a)).collect();
                    self.prim(name, &a)
                }
            }
            E::If(c, a, b) => {
                if self.cond(c) {
                    self.expr(a)
                } else {
                    self.expr(b)
                }
            }
        };
        self.note(v)
    }

    fn prim(&mut self, name: &str, a: &[f64]) -> f64 {
        let eps = grad_core::EPSILON;
        if a.iter().any(|x| !x.is_finite()) {
            // Out of the domain already (and `clamp` panics on NaN bounds).
            self.finite = false;
            return f64::NAN;
        }
        match name {
            "abs" | "signum" | "relu" | "leaky_relu" | "cbrt" => self.trace.push(sign(a[0])),
            "floor" | "ceil" | "round" | "trunc" => {
                self.trace.push((a[0] * 2.0).floor() as i64);
                self.trace.push(sign(a[0]));
            }
            "min" | "max" => self.trace.push(cmp3(a[0], a[1])),
            "clamp" => {
                self.trace.push(cmp3(a[0], a[1]));
                self.trace.push(cmp3(a[0], a[2]));
            }
            "bce" => {
                self.trace.push(cmp3(a[0], eps));
                self.trace.push(cmp3(a[0], 1.0 - eps));
            }
            "atan2" => {
                self.trace.push(sign(a[1]));
                if a[1] < 0.0 {
                    self.trace.push(i64::from(a[0] >= 0.0));
                }
            }
            "hypot" => self.trace.push(i64::from(a[0] == 0.0 && a[1] == 0.0)),
            _ => {}
        }
        match name {
            "cbrt" if a[0] == 0.0 => self.singular = true,
            "atan2" if a[0] == 0.0 && a[1] == 0.0 => self.singular = true,
            _ => {}
        }
        match name {
            "sin" => a[0].sin(),
            "cos" => a[0].cos(),
            "tan" => a[0].tan(),
            "asin" => a[0].asin(),
            "acos" => a[0].acos(),
            "atan" => a[0].atan(),
            "sinh" => a[0].sinh(),
            "cosh" => a[0].cosh(),
            "tanh" => a[0].tanh(),
            "asinh" => a[0].asinh(),
            "acosh" => a[0].acosh(),
            "atanh" => a[0].atanh(),
            "exp" => a[0].exp(),
            "exp2" => a[0].exp2(),
            "exp_m1" => a[0].exp_m1(),
            "ln" => a[0].ln(),
            "ln_1p" => a[0].ln_1p(),
            "log2" => a[0].log2(),
            "log10" => a[0].log10(),
            "sqrt" => a[0].sqrt(),
            "cbrt" => a[0].cbrt(),
            "recip" => a[0].recip(),
            "abs" => a[0].abs(),
            "signum" => a[0].signum(),
            "floor" => a[0].floor(),
            "ceil" => a[0].ceil(),
            "round" => a[0].round(),
            "trunc" => a[0].trunc(),
            "powf" => a[0].powf(a[1]),
            "log" => a[0].log(a[1]),
            "atan2" => a[0].atan2(a[1]),
            "hypot" => a[0].hypot(a[1]),
            "min" => a[0].min(a[1]),
            "max" => a[0].max(a[1]),
            "clamp" => a[0].clamp(a[1], a[2]),
            "mul_add" => a[0].mul_add(a[1], a[2]),
            "sigmoid" => grad_core::sigmoid(a[0]),
            "relu" => grad_core::relu(a[0]),
            "leaky_relu" => grad_core::leaky_relu(a[0], a[1]),
            "softplus" => grad_core::softplus(a[0]),
            "bce" => grad_core::bce(a[0], a[1]),
            "bce_with_logits" => grad_core::bce_with_logits(a[0], a[1]),
            "mse" => grad_core::mse(a[0], a[1]),
            other => panic!("reference evaluator: no primitive {other}"),
        }
    }

    fn cond(&mut self, c: &'a C<String>) -> bool {
        let b = match c {
            C::Cmp(op, a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                match op {
                    Cmp::Lt => a < b,
                    Cmp::Le => a <= b,
                    Cmp::Gt => a > b,
                    Cmp::Ge => a >= b,
                }
            }
            C::And(a, b) => self.cond(a) && self.cond(b),
            C::Or(a, b) => self.cond(a) || self.cond(b),
            C::Not(a) => !self.cond(a),
        };
        self.trace.push(i64::from(b));
        b
    }

    fn block(&mut self, stmts: &'a [S<String>]) -> Flow {
        self.frames.push(vec![]);
        let flow = self.stmts(stmts);
        self.frames.pop();
        flow
    }

    fn stmts(&mut self, stmts: &'a [S<String>]) -> Flow {
        for s in stmts {
            match self.stmt(s) {
                Flow::Normal => {}
                other => return other,
            }
        }
        Flow::Normal
    }

    fn stmt(&mut self, s: &'a S<String>) -> Flow {
        match s {
            S::Let { name, e, .. } => {
                let v = self.expr(e);
                if let Some(frame) = self.frames.last_mut() {
                    frame.push((name, Value::F(v)));
                }
            }
            S::Assign { target, op, e } => {
                let rhs = self.expr(e);
                let cur = self.f(target);
                let v = match op {
                    AOp::Set | AOp::Decay => rhs,
                    AOp::Add => cur + rhs,
                    AOp::Sub => cur - rhs,
                    AOp::Mul => cur * rhs,
                    AOp::Div => cur / rhs,
                };
                let v = self.note(v);
                self.set(target, v);
            }
            S::If { c, then_, else_ } => {
                if self.cond(c) {
                    return self.block(then_);
                } else if let Some(e) = else_ {
                    return self.block(e);
                }
            }
            S::LetArray { name } => {
                self.arrays.push(vec![0.0; self.len]);
                let a = Value::A(self.arrays.len() - 1);
                if let Some(frame) = self.frames.last_mut() {
                    frame.push((name, a));
                }
            }
            S::Store { array, idx, op, e } => {
                let rhs = self.expr(e);
                let (a, i) = (self.array(array), self.index(idx));
                let cur = self.arrays[a][i];
                let v = match op {
                    AOp::Set | AOp::Decay => rhs,
                    AOp::Add => cur + rhs,
                    AOp::Sub => cur - rhs,
                    AOp::Mul => cur * rhs,
                    AOp::Div => cur / rhs,
                };
                self.arrays[a][i] = self.note(v);
            }
            S::Break(c) => {
                if self.cond(c) {
                    return Flow::Break;
                }
            }
            S::Continue(c) => {
                if self.cond(c) {
                    return Flow::Continue;
                }
            }
            S::Return(c, e) => {
                if self.cond(c) {
                    return Flow::Return(self.expr(e));
                }
            }
            S::For { kind, body } => {
                let (var, indices, elems, slices): (Option<&'a str>, Vec<usize>, _, _) = match kind
                {
                    ForKind::Range {
                        var,
                        start,
                        end,
                        inclusive,
                        step,
                        rev,
                    } => {
                        let end = match end {
                            End::Const(k) => *k,
                            End::Len(s) => self.arrays[self.array(s)].len(),
                            End::Var(v) => self.i(v),
                        };
                        let end = if *inclusive { end + 1 } else { end };
                        let mut ix: Vec<usize> =
                            (*start..end).step_by(if *step { 2 } else { 1 }).collect();
                        if *rev {
                            ix.reverse();
                        }
                        (Some(var.as_str()), ix, &[][..], &[][..])
                    }
                    ForKind::Slices {
                        var,
                        slices,
                        elems,
                        rev,
                    } => {
                        let n = slices
                            .iter()
                            .map(|s| self.arrays[self.array(s)].len())
                            .min()
                            .unwrap_or(0);
                        let mut ix: Vec<usize> = (0..n).collect();
                        if *rev {
                            ix.reverse();
                        }
                        (var.as_deref(), ix, &elems[..], &slices[..])
                    }
                };
                for i in indices {
                    let mut frame: Vec<(&'a str, Value)> = vec![];
                    if let Some(v) = var {
                        frame.push((v, Value::I(i)));
                    }
                    for (e, s) in elems.iter().zip(slices) {
                        let x = self.arrays[self.array(s)][i];
                        frame.push((e.as_str(), Value::F(x)));
                    }
                    self.frames.push(frame);
                    let flow = self.block(body);
                    self.frames.pop();
                    match flow {
                        Flow::Normal | Flow::Continue => {}
                        Flow::Break => break,
                        Flow::Return(v) => return Flow::Return(v),
                    }
                }
            }
        }
        Flow::Normal
    }
}

/// The value, the decision trace and the largest intermediate magnitude;
/// `None` where a value is not finite.
fn evaluate(r: &Resolved, args: &[f64]) -> Option<(f64, Vec<i64>, f64)> {
    let mut frame = vec![];
    let mut arrays = vec![];
    let mut k = 0;
    for p in &r.params {
        match p {
            ParamDecl::Scalar { name, .. } => {
                frame.push((name.as_str(), Value::F(args[k])));
                k += 1;
            }
            ParamDecl::Slice { name, .. } => {
                arrays.push(args[k..k + r.len].to_vec());
                frame.push((name.as_str(), Value::A(arrays.len() - 1)));
                k += r.len;
            }
            ParamDecl::Int { name } => frame.push((name.as_str(), Value::I(r.len))),
        }
    }
    let mut ev = Eval {
        frames: vec![frame],
        arrays,
        len: r.len,
        trace: vec![],
        max_abs: 0.0,
        finite: true,
        singular: false,
    };
    let value = match ev.stmts(&r.body) {
        Flow::Return(v) => v,
        _ => ev.expr(&r.tail),
    };
    if ev.singular {
        // Recorded in the trace, which then differs from any regular point's.
        ev.trace.push(i64::MIN);
    }
    (ev.finite && value.is_finite()).then_some((value, ev.trace, ev.max_abs))
}

// ------------------------------------------------------------------ checking

/// The flat float inputs of a program (scalars, then slice elements).
fn inputs(p: &Program, r: &Resolved) -> Vec<f64> {
    let n = p.scalars + p.slices * r.len;
    p.point.iter().cycle().take(n).copied().collect()
}

fn interp_args(r: &Resolved, flat: &[f64]) -> Vec<Val<f64>> {
    let mut k = 0;
    r.params
        .iter()
        .map(|p| match p {
            ParamDecl::Scalar { .. } => {
                k += 1;
                Val::F(flat[k - 1])
            }
            ParamDecl::Slice { .. } => {
                k += r.len;
                Val::Arr(flat[k - r.len..k].iter().map(|&x| Val::F(x)).collect())
            }
            ParamDecl::Int { .. } => Val::I(r.len as i64),
        })
        .collect()
}

/// For each flat input: whether it is differentiated, and its index in the
/// interpreter's flattened gradient (where an integer parameter takes one slot).
fn input_slots(r: &Resolved) -> Vec<(bool, usize)> {
    let mut out = vec![];
    let mut slot = 0;
    for p in &r.params {
        match p {
            ParamDecl::Scalar { wrt, .. } => {
                out.push((*wrt, slot));
                slot += 1;
            }
            ParamDecl::Slice { wrt, .. } => {
                for _ in 0..r.len {
                    out.push((*wrt, slot));
                    slot += 1;
                }
            }
            ParamDecl::Int { .. } => slot += 1,
        }
    }
    out
}

/// Lowers a function the way the macro does; the errors, if any.
fn lower_tokens(attr: TokenStream, item: TokenStream) -> Result<Func, String> {
    let item: syn::ItemFn =
        syn::parse2(item).map_err(|e| format!("generated source does not parse: {e}"))?;
    let args: Args = syn::parse2(attr).map_err(|e| format!("attribute: {e}"))?;
    let cx = Ctxt::new();
    let lowered = lower::lower(&item, &args, &cx);
    if let Err(e) = cx.check() {
        let all: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        return Err(format!("lowering reported errors: {all:?}"));
    }
    lowered
        .map(|l| l.0)
        .ok_or_else(|| "lowering returned nothing".to_string())
}

fn backward(f: &Func) -> Result<Func, String> {
    let (mut b, suspicious) =
        reverse::reverse(f).map_err(|(_, m)| format!("reverse pass refused: {m}"))?;
    simplify::simplify(&mut b);
    reverse::check_recomputed_reads(&b, &suspicious)
        .map_err(|(_, m)| format!("unrecorded read: {m}"))?;
    Ok(b)
}

/// What one program gave.
#[derive(Default, Debug, Clone)]
struct Outcome {
    /// Evaluated (the point is in the domain, values finite).
    evaluated: bool,
    /// Gradient components compared with finite differences.
    compared: usize,
    /// Components skipped (a decision flips within the step, or the two
    /// step sizes disagree).
    skipped: usize,
    /// Refused with the documented error for reads of overwritten arrays
    /// nested in an `if` or an inner loop.
    limitation: bool,
    /// Directional derivatives (`f_jvp`) compared with `grad · v`.
    jvps: usize,
    /// Hessian-vector product components (`f_hvp`) compared with
    /// differences of the gradient.
    hvps: usize,
    /// Whether `lanes.rs` rewrote a loop of `_backward` (value and gradient
    /// then compared bit for bit with the loop as it was).
    laned: bool,
}

const STEP: f64 = 1e-5;

/// Checks one program; `Err` describes the failure.
fn check(p: &Program) -> Result<Outcome, String> {
    let r = resolve(p);
    let attr = TokenStream::from_str(&r.attr()).map_err(|e| e.to_string())?;
    let item = TokenStream::from_str(&r.item()).map_err(|e| e.to_string())?;
    let primal = lower_tokens(attr.clone(), item.clone())?;
    let back = match backward(&primal) {
        // A documented limitation (ARCHITECTURE.md, loops): not a bug.
        Err(e) if e.contains("cannot yet differentiate this read") => {
            return Ok(Outcome {
                limitation: true,
                ..Outcome::default()
            })
        }
        other => other?,
    };

    if p.expand {
        // The macro itself expands the same source without an error.
        let expanded = crate::expand::differentiate(attr, item);
        let text = expanded.to_string();
        if text.contains("compile_error") {
            return Err(format!("the expansion has errors:\n{expanded}"));
        }
        if let Err(e) = syn::parse2::<syn::File>(expanded) {
            return Err(format!("the expansion does not parse: {e}\n{text}"));
        }
    }

    let x = inputs(p, &r);
    let mut outcome = Outcome::default();
    let Some((value, trace, max_abs)) = evaluate(&r, &x) else {
        return Ok(outcome);
    };
    if max_abs > 1e8 {
        return Ok(outcome);
    }
    outcome.evaluated = true;
    let args = interp_args(&r, &x);
    let (interp_value, _) = interp::run(&primal, &args);
    if interp_value.to_bits() != value.to_bits() {
        return Err(format!(
            "the lowered primal computes {interp_value:e}, Rust's semantics give {value:e} at {x:?}"
        ));
    }
    let (back_value, grad) = interp::run(&back, &args);
    if back_value.to_bits() != value.to_bits() {
        return Err(format!(
            "`_backward` returns {back_value:e}, the function {value:e} at {x:?}"
        ));
    }
    // The loops emitted in lanes compute the same bits.
    let mut laned = back.clone();
    if crate::lanes::vectorise_sample_loops(&mut laned, &quote::quote!(::grad)) {
        outcome.laned = true;
        let (lanes_value, lanes_grad) = interp::run(&laned, &args);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        if lanes_value.to_bits() != back_value.to_bits() || bits(&lanes_grad) != bits(&grad) {
            return Err(format!(
                "in lanes `_backward` returns {lanes_value:e} and {lanes_grad:?}, as written \
                 {back_value:e} and {grad:?} at {x:?}"
            ));
        }
    }

    if trace.last() == Some(&i64::MIN) {
        // A derivative is infinite or undefined at this point.
        outcome.skipped += 1;
        return Ok(outcome);
    }
    let direction = check_jvp(&r, &primal, &args, value, &grad, &x)?;
    outcome.jvps += 1;
    outcome.hvps += check_hvp(&r, &back, &args, value, &grad, &x, &trace, &direction)?;
    for (j, (wrt, slot)) in input_slots(&r).into_iter().enumerate() {
        let g = grad[slot];
        if !wrt {
            if g != 0.0 {
                return Err(format!(
                    "input {j} is not differentiated but gets gradient {g:e} at {x:?}"
                ));
            }
            continue;
        }
        let Ok(d) = differences(&r, &x, &trace, max_abs, j) else {
            outcome.skipped += 1;
            continue;
        };
        let richardson = d.d2 + (d.d2 - d.d1) / 15.0;
        // The two steps' disagreement is how far the differences themselves
        // are from the derivative: truncation (then the smaller step and
        // Richardson are closer) or rounding amplified through the program
        // (then the larger step is), more than `noise` estimates for an
        // ill-conditioned loop. Steps disagreeing by over 1e-5 are skipped.
        let tol = 1e-6 * d.scale.max(g.abs()) + d.noise + (d.d1 - d.d2).abs();
        let off = (g - d.d2)
            .abs()
            .min((g - richardson).abs())
            .min((g - d.d1).abs());
        if off.is_nan() || off > tol {
            return Err(format!(
                "gradient of input {j}: transform {g:e}, finite differences {:e} \
                 (step {:e}: {:e}) at {x:?}",
                d.d2, d.h, d.d1
            ));
        }
        outcome.compared += 1;
    }
    Ok(outcome)
}

/// Forward mode on the same program: `f_jvp` in a fixed direction `v` (one
/// tangent per differentiated input, from the point's own bits) returns the
/// value bit for bit and a directional derivative equal to `grad · v`, the
/// gradient that `check` compares with finite differences.
fn check_jvp(
    r: &Resolved,
    primal: &Func,
    args: &[Val<f64>],
    value: f64,
    grad: &[f64],
    x: &[f64],
) -> Result<Vec<(Var, Val<f64>)>, String> {
    let seeds: Vec<_> = primal
        .params
        .iter()
        .filter(|p| p.wrt)
        .map(|p| p.var)
        .collect();
    let crate::forward::Forward { mut func, tangents } = crate::forward::forward(primal, &seeds)
        .map_err(|(_, m)| format!("forward pass refused: {m}"))?;
    simplify::simplify(&mut func);
    // A direction in [-1, 1] per input, fixed by the point.
    let direction = |k: usize| {
        let bits = x.iter().fold(k as u64 + 1, |h, v| {
            (h ^ v.to_bits()).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        });
        (bits >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let mut k = 0;
    let mut next = || {
        k += 1;
        direction(k)
    };
    let mut extra = vec![];
    let mut expected = 0.0;
    let mut magnitude = 0.0;
    let slots = input_slots(r);
    let mut flat = 0;
    for (param, arg) in primal.params.iter().zip(args) {
        let width = match arg {
            Val::Arr(items) => items.len(),
            Val::I(_) => 0,
            _ => 1,
        };
        if !param.wrt {
            flat += width;
            continue;
        }
        let mut tangent = |_: f64| next();
        let v = match arg {
            Val::Arr(items) => Val::Arr(items.iter().map(|_| Val::F(tangent(0.0))).collect()),
            _ => Val::F(tangent(0.0)),
        };
        let mut components = vec![];
        match &v {
            Val::Arr(items) => components.extend(items.iter().map(|i| match i {
                Val::F(f) => *f,
                _ => 0.0,
            })),
            Val::F(f) => components.push(*f),
            _ => {}
        }
        for (offset, vk) in components.iter().enumerate() {
            let g = grad[slots[flat + offset].1];
            expected += g * vk;
            magnitude += (g * vk).abs();
        }
        flat += width;
        extra.push((tangents[extra.len()], v));
    }
    let out = interp::run_yields(&func, args, &extra).yields;
    let (Some(Val::F(v)), Some(Val::F(dot))) = (out.first(), out.get(1)) else {
        return Err(format!("`f_jvp` yields {out:?}"));
    };
    if v.to_bits() != value.to_bits() {
        return Err(format!(
            "`f_jvp` returns {v:e}, the function {value:e} at {x:?}"
        ));
    }
    let tol = 1e-10 * magnitude.max(1.0);
    if !((dot - expected).abs() <= tol || (dot.is_nan() && expected.is_nan())) {
        return Err(format!(
            "`f_jvp` gives {dot:e}, the gradient times the direction {expected:e} at {x:?}"
        ));
    }
    // The direction, per differentiated parameter, for `check_hvp`.
    Ok(primal
        .params
        .iter()
        .filter(|p| p.wrt)
        .map(|p| p.var)
        .zip(extra.into_iter().map(|(_, v)| v))
        .collect())
}

/// Forward-over-reverse on the same program: `f_hvp` in the direction of
/// `check_jvp` returns the value and the gradient bit for bit, and a
/// Hessian-vector product equal to central differences of the gradient
/// along the direction (where the decisions do not change within the step).
#[allow(clippy::too_many_arguments)]
fn check_hvp(
    r: &Resolved,
    back: &Func,
    args: &[Val<f64>],
    value: f64,
    grad: &[f64],
    x: &[f64],
    trace: &[i64],
    direction: &[(Var, Val<f64>)],
) -> Result<usize, String> {
    let seeds: Vec<Var> = direction.iter().map(|(v, _)| *v).collect();
    let crate::forward::Forward { mut func, tangents } = crate::forward::forward(back, &seeds)
        .map_err(|(_, m)| format!("forward-over-reverse refused: {m}"))?;
    func.body.yields.truncate(1);
    simplify::simplify(&mut func);
    let extra: Vec<(Var, Val<f64>)> = tangents
        .iter()
        .zip(direction)
        .map(|(t, (_, v))| (*t, v.clone()))
        .collect();
    let run = interp::run_yields(&func, args, &extra);
    let Some(Val::F(v)) = run.yields.first() else {
        return Err(format!("`f_hvp` yields {:?}", run.yields));
    };
    if v.to_bits() != value.to_bits() {
        return Err(format!(
            "`f_hvp` returns {v:e}, the function {value:e} at {x:?}"
        ));
    }
    for (k, (a, b)) in run.grad.iter().zip(grad).enumerate() {
        if a.to_bits() != b.to_bits() {
            return Err(format!(
                "`f_hvp`'s gradient component {k} is {a:e}, `_backward`'s {b:e} at {x:?}"
            ));
        }
    }
    // The direction in the flat inputs' order (0 for inputs not differentiated).
    let mut flat_v = vec![];
    let mut dirs = direction.iter();
    for p in &r.params {
        match p {
            ParamDecl::Scalar { wrt: true, .. } | ParamDecl::Slice { wrt: true, .. } => {
                match dirs.next().map(|(_, v)| v) {
                    Some(Val::F(f)) => flat_v.push(*f),
                    Some(Val::Arr(items)) => flat_v.extend(items.iter().map(|i| match i {
                        Val::F(f) => *f,
                        _ => 0.0,
                    })),
                    _ => return Err("direction and parameters disagree".into()),
                }
            }
            ParamDecl::Scalar { .. } => flat_v.push(0.0),
            ParamDecl::Slice { .. } => flat_v.extend(std::iter::repeat_n(0.0, r.len)),
            ParamDecl::Int { .. } => {}
        }
    }
    // Central differences of the gradient along the direction, at two steps,
    // where the decision trace is the same.
    let gradient_at = |t: f64| -> Option<Vec<f64>> {
        let moved: Vec<f64> = x.iter().zip(&flat_v).map(|(x, v)| x + t * v).collect();
        let (_, tr, _) = evaluate(r, &moved)?;
        if tr != trace {
            return None;
        }
        Some(interp::run(back, &interp_args(r, &moved)).1)
    };
    let h = STEP * x.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    let fd = |h: f64| -> Option<Vec<f64>> {
        let (p, m) = (gradient_at(h)?, gradient_at(-h)?);
        Some(p.iter().zip(&m).map(|(p, m)| (p - m) / (2.0 * h)).collect())
    };
    let (Some(d1), Some(d2)) = (fd(h), fd(h / 4.0)) else {
        return Ok(0);
    };
    let mut compared = 0;
    for (k, hv) in run.grad_dot.iter().enumerate() {
        let (a, b) = (d1[k], d2[k]);
        let scale = a.abs().max(b.abs()).max(hv.abs());
        if (a - b).abs() > 1e-4 * scale + 1e-6 {
            // Not smooth enough at the scale of the step.
            continue;
        }
        let richardson = b + (b - a) / 15.0;
        let off = (hv - b).abs().min((hv - richardson).abs());
        if off.is_nan() || off > 1e-5 * scale + 1e-6 {
            return Err(format!(
                "Hessian-vector product component {k}: forward-over-reverse {hv:e}, \
                 differences of the gradient {b:e} (step {h:e}: {a:e}) at {x:?}"
            ));
        }
        compared += 1;
    }
    Ok(compared)
}

/// Why the finite differences of an input are not compared.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Skip {
    /// A primitive is evaluated where its derivative is infinite or
    /// undefined (`cbrt(0)`, `atan2(0, 0)`).
    Singular,
    /// A discrete decision (a branch, the side of a kink) changes within
    /// the step, or a value there is not finite.
    Decision,
    /// The central differences at two step sizes disagree: the function is
    /// not smooth enough there at the scale of the step.
    Steps,
}

/// Central differences of the reference evaluator in one input.
struct Differences {
    /// The larger step.
    h: f64,
    /// The central differences with steps `h` and `h / 4`.
    d1: f64,
    d2: f64,
    /// `max(|d1|, |d2|)`.
    scale: f64,
    /// The rounding error to allow for, from the largest intermediate
    /// magnitude at the point and within the step.
    noise: f64,
}

/// The central differences of input `j` at `x` (where the reference
/// evaluator gives `trace` and the largest intermediate `max_abs`), if they
/// are meaningful there: no derivative is singular at `x`, the decision trace
/// is the same at `x ± h` and `x ± h / 4`, and the two differences agree.
fn differences(
    r: &Resolved,
    x: &[f64],
    trace: &[i64],
    max_abs: f64,
    j: usize,
) -> Result<Differences, Skip> {
    if trace.last() == Some(&i64::MIN) {
        return Err(Skip::Singular);
    }
    let fd = |h: f64| -> Option<(f64, f64)> {
        let mut plus = x.to_vec();
        plus[j] += h;
        let mut minus = x.to_vec();
        minus[j] -= h;
        let (fp, tp, mp) = evaluate(r, &plus)?;
        let (fm, tm, mm) = evaluate(r, &minus)?;
        (tp == trace && tm == trace).then_some(((fp - fm) / (2.0 * h), mp.max(mm)))
    };
    let h = STEP * x[j].abs().max(1.0);
    let (Some((d1, m1)), Some((d2, m2))) = (fd(h), fd(h / 4.0)) else {
        return Err(Skip::Decision);
    };
    let noise = (1e-9 + 64.0 * f64::EPSILON * max_abs / (STEP / 4.0))
        .max(1e-9 + 64.0 * f64::EPSILON * m1.max(m2) / (h / 4.0));
    let scale = d1.abs().max(d2.abs());
    if (d1 - d2).abs() > 1e-5 * scale + noise {
        return Err(Skip::Steps);
    }
    Ok(Differences {
        h,
        d1,
        d2,
        scale,
        noise,
    })
}

// ------------------------------------------------------------- minimisation

/// Every program one step simpler than `p`: a statement removed or replaced
/// by its body, an expression replaced by one of its operands or a leaf.
fn simpler(p: &Program) -> Vec<Program> {
    let mut out = vec![];
    let with_body = |body: Vec<S<u8>>| Program { body, ..p.clone() };
    for body in simpler_stmts(&p.body) {
        out.push(with_body(body));
    }
    for tail in simpler_expr(&p.tail) {
        out.push(Program { tail, ..p.clone() });
    }
    for local_arrays in 0..p.local_arrays {
        out.push(Program {
            local_arrays,
            ..p.clone()
        });
    }
    if p.int_param {
        out.push(Program {
            int_param: false,
            ..p.clone()
        });
    }
    if p.mut_params {
        out.push(Program {
            mut_params: false,
            ..p.clone()
        });
    }
    for scalars in 1..p.scalars {
        out.push(Program {
            scalars,
            ..p.clone()
        });
    }
    for slices in 0..p.slices {
        out.push(Program {
            slices,
            ..p.clone()
        });
    }
    if p.wrt != 0 {
        out.push(Program {
            wrt: 0,
            ..p.clone()
        });
    }
    out
}

fn simpler_stmts(stmts: &[S<u8>]) -> Vec<Vec<S<u8>>> {
    let mut out = vec![];
    for i in 0..stmts.len() {
        let mut without = stmts.to_vec();
        without.remove(i);
        out.push(without);
        let splice = |inner: &[S<u8>]| {
            let mut v = stmts[..i].to_vec();
            v.extend_from_slice(inner);
            v.extend_from_slice(&stmts[i + 1..]);
            v
        };
        let replace = |s: S<u8>| {
            let mut v = stmts.to_vec();
            v[i] = s;
            v
        };
        match &stmts[i] {
            S::If { c, then_, else_ } => {
                out.push(splice(then_));
                if let Some(e) = else_ {
                    out.push(splice(e));
                    out.push(replace(S::If {
                        c: c.clone(),
                        then_: then_.clone(),
                        else_: None,
                    }));
                    for e2 in simpler_stmts(e) {
                        out.push(replace(S::If {
                            c: c.clone(),
                            then_: then_.clone(),
                            else_: Some(e2),
                        }));
                    }
                }
                for t in simpler_stmts(then_) {
                    out.push(replace(S::If {
                        c: c.clone(),
                        then_: t,
                        else_: else_.clone(),
                    }));
                }
                for c2 in simpler_cond(c) {
                    out.push(replace(S::If {
                        c: c2,
                        then_: then_.clone(),
                        else_: else_.clone(),
                    }));
                }
            }
            S::For { kind, body } => {
                out.push(splice(body));
                for b in simpler_stmts(body) {
                    out.push(replace(S::For {
                        kind: kind.clone(),
                        body: b,
                    }));
                }
                if let ForKind::Range {
                    step, rev, start, ..
                } = kind
                {
                    if *step || *rev || *start > 0 {
                        let mut k = kind.clone();
                        if let ForKind::Range {
                            step, rev, start, ..
                        } = &mut k
                        {
                            *step = false;
                            *rev = false;
                            *start = 0;
                        }
                        out.push(replace(S::For {
                            kind: k,
                            body: body.clone(),
                        }));
                    }
                }
            }
            S::Let { name, mutable, e } => {
                for e2 in simpler_expr(e) {
                    out.push(replace(S::Let {
                        name: *name,
                        mutable: *mutable,
                        e: e2,
                    }));
                }
            }
            S::Assign { target, op, e } => {
                for e2 in simpler_expr(e) {
                    out.push(replace(S::Assign {
                        target: *target,
                        op: *op,
                        e: e2,
                    }));
                }
                if *op != AOp::Set {
                    out.push(replace(S::Assign {
                        target: *target,
                        op: AOp::Set,
                        e: e.clone(),
                    }));
                }
            }
            S::LetArray { .. } => {}
            S::Store { array, idx, op, e } => {
                for e2 in simpler_expr(e) {
                    out.push(replace(S::Store {
                        array: *array,
                        idx: idx.clone(),
                        op: *op,
                        e: e2,
                    }));
                }
                if *op != AOp::Set {
                    out.push(replace(S::Store {
                        array: *array,
                        idx: idx.clone(),
                        op: AOp::Set,
                        e: e.clone(),
                    }));
                }
            }
            S::Break(c) | S::Continue(c) => {
                let brk = matches!(stmts[i], S::Break(_));
                for c2 in simpler_cond(c) {
                    out.push(replace(if brk { S::Break(c2) } else { S::Continue(c2) }));
                }
            }
            S::Return(c, e) => {
                for c2 in simpler_cond(c) {
                    out.push(replace(S::Return(c2, e.clone())));
                }
                for e2 in simpler_expr(e) {
                    out.push(replace(S::Return(c.clone(), e2)));
                }
            }
        }
    }
    out
}

fn simpler_cond(c: &C<u8>) -> Vec<C<u8>> {
    let mut out = vec![];
    match c {
        C::Cmp(op, a, b) => {
            for a2 in simpler_expr(a) {
                out.push(C::Cmp(*op, a2, b.clone()));
            }
            for b2 in simpler_expr(b) {
                out.push(C::Cmp(*op, a.clone(), b2));
            }
        }
        C::And(a, b) | C::Or(a, b) => {
            out.push((**a).clone());
            out.push((**b).clone());
        }
        C::Not(a) => out.push((**a).clone()),
    }
    out
}

fn simpler_expr(e: &Ex) -> Vec<Ex> {
    let mut out = vec![];
    let leaves = [E::Var(0), E::Lit(1.0)];
    match e {
        E::Var(0) | E::Lit(_) | E::Int(_) => return out,
        E::Var(_) | E::Pi | E::Elem(..) | E::Cast(_) => {
            out.extend(leaves);
            return out;
        }
        _ => {}
    }
    out.extend(leaves);
    match e {
        E::Neg(a) => {
            out.push((**a).clone());
            out.extend(simpler_expr(a).into_iter().map(|a| E::Neg(bx(a))));
        }
        E::Arith(op, a, b) => {
            out.push((**a).clone());
            out.push((**b).clone());
            for a2 in simpler_expr(a) {
                out.push(E::Arith(*op, bx(a2), b.clone()));
            }
            for b2 in simpler_expr(b) {
                out.push(E::Arith(*op, a.clone(), bx(b2)));
            }
        }
        E::Call(name, style, args) => {
            if *style != 0 {
                out.push(E::Call(name, 0, args.clone()));
            }
            for (k, a) in args.iter().enumerate() {
                if !matches!(a, E::Int(_)) {
                    out.push(a.clone());
                }
                for a2 in simpler_expr(a) {
                    let mut args2 = args.clone();
                    args2[k] = a2;
                    out.push(E::Call(name, *style, args2));
                }
            }
        }
        E::If(c, a, b) => {
            out.push((**a).clone());
            out.push((**b).clone());
            for c2 in simpler_cond(c) {
                out.push(E::If(Box::new(c2), a.clone(), b.clone()));
            }
            for a2 in simpler_expr(a) {
                out.push(E::If(c.clone(), bx(a2), b.clone()));
            }
            for b2 in simpler_expr(b) {
                out.push(E::If(c.clone(), a.clone(), bx(b2)));
            }
        }
        _ => {}
    }
    out
}

/// Greedy reduction of a failing program (after proptest's shrinking, which
/// cannot replace a node by one of its operands): keeps taking the first
/// simpler program that still fails, until none does (or two minutes pass).
pub fn reduce(p: &Program, fails: impl Fn(&Program) -> bool) -> Program {
    let start = std::time::Instant::now();
    let mut current = p.clone();
    'outer: while start.elapsed() < std::time::Duration::from_secs(120) {
        for candidate in simpler(&current) {
            if fails(&candidate) {
                current = candidate;
                continue 'outer;
            }
        }
        break;
    }
    current
}

/// The kind of a failure: its first three words ("gradient of input",
/// "the expansion does"), so that reduction keeps the same failure.
fn kind(failure: &str) -> String {
    failure
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `check` fails on `p` (a panic counts).
fn fails(p: &Program) -> Option<String> {
    match std::panic::catch_unwind(|| check(p)) {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e),
        Err(panic) => Some(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}

// --------------------------------------------------------------------- tests

/// proptest's configuration: `cases` programs (or `PROPTEST_CASES`), a fixed
/// seed unless `PROPTEST_RNG_SEED` is set, no persistence file.
pub fn config(cases: u32) -> Config {
    let env = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            env.cases
        } else {
            cases
        },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            env.rng_seed
        } else {
            RngSeed::Fixed(0x6772_6164)
        },
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::XorShift,
        max_shrink_iters: 1_000,
        max_shrink_time: 120_000,
        ..env
    }
}

/// Rule names (not helpers) that programs are expected to exercise.
fn user_facing_rules() -> Vec<&'static str> {
    RULES
        .iter()
        .filter(|r| {
            r.forms != Forms::Helper || matches!(r.name, "add" | "sub" | "mul" | "div" | "neg")
        })
        .map(|r| r.name)
        .collect()
}

fn prims_of(r: &Resolved, seen: &mut BTreeMap<&'static str, usize>) {
    fn expr(e: &E<String>, seen: &mut BTreeMap<&'static str, usize>) {
        match e {
            E::Neg(a) => {
                *seen.entry("neg").or_default() += 1;
                expr(a, seen);
            }
            E::Arith(op, a, b) => {
                let name = match op {
                    Op::Add => "add",
                    Op::Sub => "sub",
                    Op::Mul => "mul",
                    Op::Div => "div",
                };
                *seen.entry(name).or_default() += 1;
                expr(a, seen);
                expr(b, seen);
            }
            E::Call(name, _, args) => {
                *seen.entry(name).or_default() += 1;
                args.iter().for_each(|a| expr(a, seen));
            }
            E::If(c, a, b) => {
                cond(c, seen);
                expr(a, seen);
                expr(b, seen);
            }
            _ => {}
        }
    }
    fn cond(c: &C<String>, seen: &mut BTreeMap<&'static str, usize>) {
        match c {
            C::Cmp(_, a, b) => {
                expr(a, seen);
                expr(b, seen);
            }
            C::And(a, b) | C::Or(a, b) => {
                cond(a, seen);
                cond(b, seen);
            }
            C::Not(a) => cond(a, seen),
        }
    }
    fn stmts(ss: &[S<String>], seen: &mut BTreeMap<&'static str, usize>) {
        for s in ss {
            match s {
                S::Let { e, .. } | S::Assign { e, .. } => expr(e, seen),
                S::LetArray { .. } => *seen.entry("<array>").or_default() += 1,
                S::Store { e, .. } => expr(e, seen),
                S::If { c, then_, else_ } => {
                    cond(c, seen);
                    stmts(then_, seen);
                    if let Some(e) = else_ {
                        stmts(e, seen);
                    }
                }
                S::For { body, .. } => {
                    *seen.entry("<for>").or_default() += 1;
                    stmts(body, seen);
                }
                S::Break(c) | S::Continue(c) => cond(c, seen),
                S::Return(c, e) => {
                    cond(c, seen);
                    expr(e, seen);
                }
            }
        }
    }
    stmts(&r.body, seen);
    expr(&r.tail, seen);
}

#[test]
fn the_generator_knows_every_rule() {
    assert_eq!(
        PRIMS[UNARY], "powf",
        "UNARY counts the one-argument primitives"
    );
    for name in user_facing_rules() {
        assert!(
            PRIMS.contains(&name) || matches!(name, "add" | "sub" | "mul" | "neg"),
            "the rule `{name}` has no generator in proptests.rs: add it to PRIMS and build_prim"
        );
    }
}

/// The generated sources are Rust: they parse, and print again the same.
#[test]
fn generated_programs_print_as_rust() {
    let mut runner = TestRunner::new(config(200));
    let result = runner.run(&arb_program(), |p| {
        let r = resolve(&p);
        let file: syn::File = syn::parse_str(&r.source())
            .map_err(|e| TestCaseError::fail(format!("{e}:\n{}", r.source())))?;
        prop_assert_eq!(file.items.len(), 1);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// 10,000 random programs: the gradient of the transform equals finite
/// differences, the transformed function returns the function's value, and
/// the lowered primal computes what Rust computes.
#[test]
fn random_programs_match_finite_differences() {
    let start = std::time::Instant::now();
    let totals = RefCell::new((0usize, 0usize, 0usize, 0usize, 0usize));
    let second = RefCell::new((0usize, 0usize, 0usize));
    let seen = RefCell::new(BTreeMap::new());
    let mut runner = TestRunner::new(config(10_000));
    let result = runner.run(&arb_program(), |p| {
        let outcome = check(&p).map_err(TestCaseError::fail)?;
        let mut t = totals.borrow_mut();
        t.0 += 1;
        t.4 += usize::from(outcome.limitation);
        if outcome.evaluated {
            t.1 += 1;
            prims_of(&resolve(&p), &mut seen.borrow_mut());
        }
        t.2 += outcome.compared;
        t.3 += outcome.skipped;
        let mut s = second.borrow_mut();
        s.0 += outcome.jvps;
        s.1 += outcome.hvps;
        s.2 += usize::from(outcome.laned);
        Ok(())
    });
    if let Err(e) = result {
        match e {
            TestError::Fail(why, p) => {
                let why1 = why.to_string();
                let small = reduce(&p, |q| fails(q).is_some_and(|e| kind(&e) == kind(&why1)));
                let why2 = fails(&small).unwrap_or(why1);
                panic!(
                    "{why2}\n\nminimal program:\n{}\n(point: {:?})\nAST: {small:?}",
                    resolve(&small).source(),
                    inputs(&small, &resolve(&small)),
                );
            }
            TestError::Abort(why) => panic!("aborted: {why}"),
        }
    }
    let (programs, evaluated, compared, skipped, limited) = *totals.borrow();
    let (jvps, hvps, laned) = *second.borrow();
    eprintln!(
        "proptests: {programs} programs ({evaluated} evaluated, {limited} refused with the \
         documented array-read limitation), {compared} gradient components compared, \
         {skipped} skipped near kinks or singular points; {jvps} directional derivatives \
         (f_jvp) and {hvps} Hessian-vector product components (f_hvp) compared; \
         {laned} `_backward`s with loops in lanes compared bit for bit; in {:.1?}",
        start.elapsed()
    );
    assert!(
        jvps * 10 >= evaluated * 8,
        "{jvps} directional derivatives compared"
    );
    // The domains keep almost every program evaluable.
    assert!(
        evaluated * 10 >= programs * 8,
        "{evaluated} of {programs} evaluated"
    );
    assert!(
        compared >= 5 * skipped,
        "{compared} compared, {skipped} skipped"
    );
    if programs >= 5_000 {
        assert!(laned > 0, "no program had a loop in lanes");
        let seen = seen.borrow();
        for name in user_facing_rules() {
            assert!(
                seen.get(name).copied().unwrap_or(0) > 0,
                "no evaluated program used `{name}`: {seen:?}"
            );
        }
    }
}

// ------------------------------------------------------------- found bugs

fn lower_quote(attr: TokenStream, item: TokenStream) -> Func {
    let item: syn::ItemFn = syn::parse2(item).expect("a fn");
    let args: Args = syn::parse2(attr).expect("an attribute");
    let cx = Ctxt::new();
    let lowered = lower::lower(&item, &args, &cx);
    cx.check().expect("no errors");
    lowered.expect("lowered").0
}

/// Found by `random_programs_match_finite_differences` (fixed): a cast
/// compared with `<` was emitted as `n as f64 < x`, which Rust parses as the
/// start of generic arguments (`f64<x ...>`), so the expansion did not compile.
#[test]
fn regression_cast_before_less_than_is_parenthesised() {
    let out = crate::expand::differentiate(
        quote::quote!(),
        quote::quote! {
            fn f(x: f64, n: usize) -> f64 {
                if (n as f64) < x { x } else { 2.0 * x }
            }
        },
    );
    if let Err(e) = syn::parse2::<syn::File>(out.clone()) {
        panic!("the expansion does not parse ({e}):\n{out}");
    }
}

/// Found by `random_programs_match_finite_differences` (fixed): the
/// simplifier's strong zero (`0 * x = 0`) was applied to the primal values
/// computed in `_backward` too, so its value was not the function's: `+0.0`
/// for `-0.0` at a negative `x` (so `(0.0 * x).signum()` gave 1 for -1), and
/// `0` where the function gives NaN (`x` infinite or NaN).
#[test]
fn regression_backward_value_is_the_function_value_at_zero_times_x() {
    let f = lower_quote(
        quote::quote!(),
        quote::quote! {
            fn f(x: f64) -> f64 {
                0.0 * x
            }
        },
    );
    let b = backward(&f).expect("transformed");
    for x in [f64::INFINITY, f64::NAN, -1.5] {
        let (value, _) = interp::run(&f, &[Val::F(x)]);
        let (back, _) = interp::run(&b, &[Val::F(x)]);
        assert_eq!(
            value.to_bits(),
            back.to_bits(),
            "at x = {x}: f = {value}, f_backward = {back}"
        );
    }
    let f = lower_quote(
        quote::quote!(),
        quote::quote! {
            fn f(x: f64) -> f64 {
                (0.0 * x).signum()
            }
        },
    );
    let b = backward(&f).expect("transformed");
    assert_eq!(interp::run(&b, &[Val::F(-2.0)]).0, -1.0);
}

/// Found by `random_programs_match_finite_differences` (fixed): a `let` in a
/// loop body shadowing a variable that the body also assigns leaked out of
/// the loop as that variable when the body was left by `break` or
/// `continue`. `f(-1.5)` is `-1.5` and `g(1.5)` is `3.0`.
#[test]
fn regression_shadowing_let_in_a_loop_body_stays_inside() {
    for exit in [quote::quote!(break), quote::quote!(continue)] {
        let f = lower_quote(
            quote::quote!(),
            quote::quote! {
                fn f(x: f64) -> f64 {
                    for _i in 0..1 {
                        let mut x = x;
                        x += 1.0;
                        if x > -100.0 {
                            #exit;
                        }
                    }
                    x
                }
            },
        );
        let (value, _) = interp::run(&f, &[Val::F(-1.5)]);
        assert_eq!(value, -1.5, "with `{exit}`");
        let g = lower_quote(
            quote::quote!(),
            quote::quote! {
                fn g(x: f64) -> f64 {
                    let mut y = x;
                    for _i in 0..1 {
                        y = y * 2.0;
                        let y = 1.0;
                        if y > 0.0 {
                            #exit;
                        }
                    }
                    y
                }
            },
        );
        let (value, _) = interp::run(&g, &[Val::F(1.5)]);
        assert_eq!(value, 3.0, "with `{exit}`");
    }
}

/// Found by `random_programs_match_finite_differences` after the fix above:
/// a cast that ends the left operand of `<` is still emitted bare,
/// `let __t3 = p0 * n as f64 < p0;`, which does not parse (the guard in
/// `emit.rs` looks at the left operand's own precedence only).
#[test]
fn regression_cast_inside_the_left_of_less_than() {
    let out = crate::expand::differentiate(
        quote::quote!(),
        quote::quote! {
            fn f(x: f64, n: usize) -> f64 {
                if x * (n as f64) < x { x } else { 2.0 * x }
            }
        },
    );
    if let Err(e) = syn::parse2::<syn::File>(out.clone()) {
        panic!("the expansion does not parse ({e}):\n{out}");
    }
}

/// Found by the expander's fuzzing (corpus `long_sum.txt`), introduced with
/// the cast guard of commit 0f98497: `emit.rs` renders the left operand of
/// every binary operator twice (`self.operand(a)` to look at its
/// precedence, then `operand_at`), so a left-nested chain `x + x.sin() + …`
/// of n terms takes time 2^n: 8 terms 6 ms, 16 terms 0.36 s, 25 terms 197 s
/// (opt-level 1). A user's sum of 30 terms hangs the compiler.
#[test]
fn regression_emission_is_exponential_in_the_length_of_a_sum() {
    let time = |n: usize| {
        let item = format!("fn f(x: f64) -> f64 {{ x{} }}", " + x.sin()".repeat(n));
        let item = TokenStream::from_str(&item).expect("lexes");
        let start = std::time::Instant::now();
        let _ = crate::expand::differentiate(TokenStream::new(), item);
        start.elapsed()
    };
    let (short, long) = (time(8), time(16));
    assert!(
        long < short * 10 + std::time::Duration::from_millis(50),
        "8 terms: {short:?}, 16 terms: {long:?}"
    );
}

/// Found by `random_programs_match_finite_differences` after the fix of
/// `0.0 * x`: the simplifier still rewrites `0.0 - x` to `-x` and `x + 0.0`
/// to `x` in the values `_backward` computes, which changes the sign of a
/// zero: `f(x) = (0.0 - x).signum()` is 1 at `x = 0.0`, `f_backward`
/// returns -1; `1.0 / (0.0 - x)` is `inf`, `f_backward` returns `-inf`;
/// `(x + 0.0).signum()` at `x = -0.0` is 1, `f_backward` returns -1.
/// (`x - 0.0`, `x * 1.0`, `x / 1.0`, `-(-x)` are exact and fine.)
#[test]
fn regression_backward_value_changes_the_sign_of_zero() {
    for (item, x) in [
        (
            quote::quote!(
                fn f(x: f64) -> f64 {
                    (0.0 - x).signum()
                }
            ),
            0.0,
        ),
        (
            quote::quote!(
                fn f(x: f64) -> f64 {
                    1.0 / (0.0 - x)
                }
            ),
            0.0,
        ),
        (
            quote::quote!(
                fn f(x: f64) -> f64 {
                    (x + 0.0).signum()
                }
            ),
            -0.0,
        ),
    ] {
        let f = lower_quote(quote::quote!(), item.clone());
        let b = backward(&f).expect("transformed");
        let (value, _) = interp::run(&f, &[Val::F(x)]);
        let (back, _) = interp::run(&b, &[Val::F(x)]);
        assert_eq!(value, back, "{item} at {x:?}");
    }
}

/// Found by compiling generated programs with rustc
/// (`generated_programs_compile_and_agree_with_the_interpreter`): the
/// element type of a local array is dropped in `_backward`, whether written
/// as an annotation or as a literal suffix, so
/// `let h: [f64; 2] = [0.0; 2]; x * h[1].ceil()` (or `[0.0_f64; 2]`)
/// compiles, while its expansion, `let h = [0.0; 2]; let __t2 = h[1].ceil();`,
/// is error E0689 "can't call method `ceil` on ambiguous numeric type
/// `{float}`" (when no store types the array first).
#[test]
fn regression_local_array_type_annotation_is_dropped() {
    for decl in [
        quote::quote!(let h: [f64; 2] = [0.0; 2];),
        quote::quote!(let h = [0.0_f64; 2];),
    ] {
        let out = crate::tests::expand(
            quote::quote!(),
            quote::quote! {
                fn f(x: f64) -> f64 {
                    #decl
                    x * h[1].ceil()
                }
            },
        );
        let backward = &out[out.find("fn f_backward").expect("f_backward")..];
        let line = backward
            .lines()
            .find(|l| l.contains("let h"))
            .expect("h declared");
        assert!(
            line.contains("f64"),
            "for `{decl}`, untyped in `_backward`: {line}"
        );
    }
}

/// Found by compiling generated programs with rustc: the `f64` suffixes of
/// a value `if`'s literals are dropped in `_backward`, so
/// `x * (if x > 0.0 { 0.1_f64 } else { 0.25_f64 }).round()` compiles, while
/// its expansion, `let __t2 = if x > 0.0 { 0.1 } else { 0.25 }; let __t3 =
/// __t2.round();`, is error E0689 (ambiguous numeric type `{float}`). The
/// same with `f64::round(if … )`.
#[test]
fn regression_suffixes_of_a_value_if_are_dropped() {
    let out = crate::tests::expand(
        quote::quote!(),
        quote::quote! {
            fn f(x: f64) -> f64 {
                x * (if x > 0.0 { 0.1_f64 } else { 0.25_f64 }).round()
            }
        },
    );
    let backward = &out[out.find("fn f_backward").expect("f_backward")..];
    let line = backward
        .lines()
        .find(|l| l.contains("= if"))
        .expect("the if");
    assert!(line.contains("f64"), "untyped in `_backward`: {line}");
}

/// Found by the expander's fuzzing (corpus `match_arm_crate.txt`): a `match`
/// arm whose value is a keyword path panics in `lower.rs` (the arm is wrapped
/// with `parse_quote!({ #other })`, which syn cannot parse back): rustc
/// reports "custom attribute panicked, message: expected `!`" for
/// `fn f(x: f64, n: u32) -> f64 { match n { 0 => crate, _ => x } }`
/// instead of its own "expected value, found module `crate`".
#[test]
fn regression_match_arm_keyword_path_panics() {
    let result = std::panic::catch_unwind(|| {
        crate::expand::differentiate(
            quote::quote!(),
            quote::quote! {
                fn f(x: f64, n: u32) -> f64 { match n { 0 => crate, _ => x } }
            },
        )
        .to_string()
    });
    assert!(result.is_ok(), "the expander panicked");
}

/// Found by `random_programs_match_finite_differences`: `relu`, `clamp`
/// and `max`/`min` pass the gradient on by multiplying it with a 0/1 mask,
/// so an infinite incoming gradient (`sqrt` or `cbrt` at 0, DESIGN's
/// `sqrt'(0) = inf`) becomes `inf * 0 = NaN` where the mask is 0.
/// PyTorch masks with a select (`threshold_backward`, `where`), so
/// `relu(x).sqrt()` at `x = -1` has gradient 0 there, as the `if` form
/// `if x > 0.0 { x } else { 0.0 }.sqrt()` already has in grad. Observed:
/// NaN for each of the three.
#[test]
fn regression_masks_turn_an_infinite_gradient_into_nan() {
    for item in [
        quote::quote!(
            fn f(x: f64) -> f64 {
                relu(x).sqrt()
            }
        ),
        quote::quote!(
            fn f(x: f64) -> f64 {
                clamp(x, 0.0, 1.0).sqrt()
            }
        ),
        quote::quote!(
            fn f(x: f64) -> f64 {
                x.max(0.0).cbrt()
            }
        ),
    ] {
        let f = lower_quote(quote::quote!(), item.clone());
        let b = backward(&f).expect("transformed");
        let (_, grad) = interp::run(&b, &[Val::F(-1.0)]);
        assert_eq!(grad[0], 0.0, "{item}");
    }
}

/// Found while fuzzing the expander: code after an `if` whose branch holds a
/// nested early return is lowered once per path, so `k` such statements in
/// a row expand to 2^k copies of the rest of the function. With `k = 10` the
/// expansion is about 1 MB of code and takes seconds (k = 2: 3 KB, 3 ms);
/// each further statement doubles both.
#[test]
fn regression_nested_guards_expand_exponentially() {
    let source = |k: usize| {
        let mut body = String::from("let mut y = x;");
        for i in 0..k {
            let _ = write!(
                body,
                " if y > {i}.5 {{ if y > 100.0 {{ return y; }} y += 1.0; }} else {{ y *= 2.0; }}"
            );
        }
        format!("fn f(x: f64) -> f64 {{ {body} y }}")
    };
    let size = |k: usize| {
        let item = TokenStream::from_str(&source(k)).expect("lexes");
        crate::expand::differentiate(TokenStream::new(), item)
            .to_string()
            .len()
    };
    let (small, large) = (size(2), size(10));
    assert!(
        large < 25 * small,
        "k = 2: {small} bytes, k = 10: {large} bytes"
    );
}

// ------------------------------------------------------- through rustc

/// The checked-in integration test of compiled random programs, relative to
/// the workspace root.
const COMPILED_FILE: &str = "tests/random_programs.rs";

/// How many programs it holds.
const COMPILED_PROGRAMS: usize = 100;

/// The seed they are drawn from, fixed and independent of `PROPTEST_*`.
const COMPILED_SEED: [u8; 16] = *b"grad:compiled-01";

/// Draws of [`COMPILED_SEED`] kept out of the file, with the bug each shows:
/// (draw number, counting from 1; why). Empty when none.
const COMPILED_EXCLUDED: &[(usize, &str)] = &[];

/// The programs of [`COMPILED_FILE`] (`count` = [`COMPILED_PROGRAMS`]): the
/// first `count` draws of [`COMPILED_SEED`] whose point is in the domain
/// (`check` says evaluated), each with its draw number.
fn compiled_programs(count: usize) -> Vec<(usize, Program)> {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRng;
    // Every setting that generation reads, so that no environment variable
    // changes the programs.
    let config = Config {
        max_default_size_range: 100,
        max_local_rejects: 65_536,
        max_global_rejects: 1_024,
        max_flat_map_regens: 1_000_000,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::XorShift, &COMPILED_SEED);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let mut programs = vec![];
    let mut draw = 0;
    while programs.len() < count {
        let p = arb_program()
            .new_tree(&mut runner)
            .expect("the generator rejects nothing")
            .current();
        draw += 1;
        if COMPILED_EXCLUDED.iter().any(|(d, _)| *d == draw) {
            continue;
        }
        match check(&p) {
            Ok(o) if o.evaluated => programs.push((draw, p)),
            Ok(_) => {}
            Err(e) => panic!(
                "draw {draw} of the compiled programs' seed fails the in-process check: {e}\n\
                 {}\n(record it in COMPILED_EXCLUDED with the bug, and report the bug)",
                resolve(&p).source()
            ),
        }
    }
    programs
}

/// The relative tolerance of the finite-difference checks (`grad::check`'s
/// default for `f64`).
const COMPILED_RELATIVE: f64 = 1e-6;

/// `grad::check::central_difference`'s step for `x`.
fn check_step(x: f64) -> f64 {
    f64::EPSILON.cbrt() * 1f64.max(x.abs())
}

/// `v` rounded up to one significant digit (a readable tolerance).
fn round_up(v: f64) -> f64 {
    let mut exponent = v.log10().floor() as i32;
    let mut digit = (v / 10f64.powi(exponent)).ceil() as i32;
    if digit >= 10 {
        (digit, exponent) = (1, exponent + 1);
    }
    let rounded: f64 = format!("{digit}e{exponent}").parse().expect("a float");
    if rounded < v {
        round_up(rounded * 1.01)
    } else {
        rounded
    }
}

/// Why an input's gradient is not checked against finite differences in the
/// compiled test.
fn skip_reason(skip: Option<Skip>) -> &'static str {
    match skip {
        Some(Skip::Singular) => "a derivative is infinite or undefined at the point",
        Some(Skip::Decision) => "a decision changes within the step",
        Some(Skip::Steps) => "the differences at two step sizes disagree",
        None => "the central difference's truncation error exceeds the tolerance",
    }
}

/// `text` as `///` lines of at most 80 columns (rustfmt leaves comments
/// as they are).
fn doc_comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("///");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 80 && line.len() > 3 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("///");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// One program's module and test, and how many gradient components get the
/// finite-difference check.
fn compiled_program(name: &str, draw: usize, p: &Program) -> (String, usize) {
    let r = resolve(p);
    let x = inputs(p, &r);
    let (reference, trace, max_abs) = evaluate(&r, &x).expect("evaluated");
    let primal = lower_tokens(
        TokenStream::from_str(&r.attr()).expect("attr"),
        TokenStream::from_str(&r.item()).expect("item"),
    )
    .expect("lowers");
    let (value, grad) = interp::run(
        &backward(&primal).expect("transforms"),
        &interp_args(&r, &x),
    );
    assert_eq!(value.to_bits(), reference.to_bits(), "checked by `check`");

    // The arguments, bound to the parameters' names; the call's arguments;
    // the same with the differentiated inputs taken from `x` (for the
    // finite differences); the differentiated parameters (as slices); and,
    // per differentiated input, its name and flat index.
    let (mut lets, mut args, mut varied) = (String::new(), vec![], vec![]);
    let (mut wrt_params, mut wrt) = (vec![], vec![]);
    let mut i = 0;
    for param in &r.params {
        match param {
            ParamDecl::Scalar { name, wrt: w, .. } => {
                let _ = writeln!(lets, "let {name} = {:?};", x[i]);
                args.push(name.clone());
                if *w {
                    varied.push(format!("x[{}]", wrt.len()));
                    wrt_params.push((format!("&[{name}]"), format!("&[{{g}}.{name}]")));
                    wrt.push((name.clone(), i));
                } else {
                    varied.push(name.clone());
                }
                i += 1;
            }
            ParamDecl::Slice { name, wrt: w } => {
                let elems: Vec<String> = x[i..i + r.len].iter().map(|v| format!("{v:?}")).collect();
                let _ = writeln!(lets, "let {name} = [{}];", elems.join(", "));
                args.push(format!("&{name}"));
                if *w {
                    varied.push(format!("&x[{}..{}]", wrt.len(), wrt.len() + r.len));
                    wrt_params.push((format!("&{name}"), format!("&{{g}}.{name}")));
                    for k in 0..r.len {
                        wrt.push((format!("{name}[{k}]"), i + k));
                    }
                } else {
                    varied.push(format!("&{name}"));
                }
                i += r.len;
            }
            ParamDecl::Int { name } => {
                let _ = writeln!(lets, "let {name} = {};", r.len);
                args.push(name.clone());
                varied.push(name.clone());
            }
        }
    }
    let slots = input_slots(&r);
    let args = args.join(", ");

    // Which components get the finite-difference check: those `check`
    // compares (`differences`), where the decisions are also the same
    // within `grad::check`'s own step and its central difference agrees
    // with the interpreter's gradient, as the compiled test will compute it.
    let mut checked = vec![];
    let mut skipped: Vec<(String, &str)> = vec![];
    let mut absolute: f64 = 1e-8;
    for (k, (input, j)) in wrt.iter().enumerate() {
        let g = grad[slots[*j].1];
        let decided = differences(&r, &x, &trace, max_abs, *j).map_err(Some);
        let verdict = decided.and_then(|_| {
            let h = check_step(x[*j]);
            let at = |v: f64| {
                let mut y = x.clone();
                y[*j] = v;
                evaluate(&r, &y)
            };
            let (Some((_, tu, mu)), Some((_, td, md))) = (at(x[*j] + h), at(x[*j] - h)) else {
                return Err(Some(Skip::Decision));
            };
            if tu != trace || td != trace {
                return Err(Some(Skip::Decision));
            }
            let noise = 1e-9 + 64.0 * f64::EPSILON * max_abs.max(mu).max(md) / h;
            let tol = round_up(noise.max(1e-8));
            let f = |v: &[f64]| at(v[0]).map_or(f64::NAN, |e| e.0);
            let tolerance = grad_core::check::Tolerance {
                relative: COMPILED_RELATIVE,
                absolute: tol,
            };
            grad_core::check::check_gradient(f, &[x[*j]], &[g], tolerance).map_err(|_| None)?;
            Ok(tol)
        });
        match verdict {
            Ok(tol) => {
                checked.push(k);
                absolute = absolute.max(tol);
            }
            Err(why) => skipped.push((input.clone(), skip_reason(why))),
        }
    }

    // Forward mode and forward over reverse in a fixed direction, through
    // the interpreter: the compiled `f_jvp` and `f_hvp` must give the same
    // bits.
    let direction = |k: usize| ((k * 7 + 3) % 11) as f64 / 5.0 - 1.0;
    let mut tangent_args = vec![];
    let mut extra = vec![];
    let seeds: Vec<Var> = primal
        .params
        .iter()
        .filter(|q| q.wrt)
        .map(|q| q.var)
        .collect();
    let mut k = 0;
    for param in &r.params {
        match param {
            ParamDecl::Scalar { wrt: true, .. } => {
                let v = direction(k);
                k += 1;
                tangent_args.push(format!("{v:?}"));
                extra.push(Val::F(v));
            }
            ParamDecl::Slice { wrt: true, .. } => {
                let v: Vec<f64> = (0..r.len).map(|j| direction(k + j)).collect();
                k += r.len;
                let items: Vec<String> = v.iter().map(|v| format!("{v:?}")).collect();
                tangent_args.push(format!("&[{}]", items.join(", ")));
                extra.push(Val::Arr(v.into_iter().map(Val::F).collect()));
            }
            _ => {}
        }
    }
    let interp_args = interp_args(&r, &x);
    let crate::forward::Forward {
        func: mut jvp,
        tangents,
    } = crate::forward::forward(&primal, &seeds).expect("forward mode");
    simplify::simplify(&mut jvp);
    let bound: Vec<(Var, Val<f64>)> = tangents.iter().copied().zip(extra.clone()).collect();
    let jvp_out = interp::run_yields(&jvp, &interp_args, &bound).yields;
    let Some(Val::F(jvp_dot)) = jvp_out.get(1).cloned() else {
        panic!("f_jvp yields {jvp_out:?}")
    };
    let back = backward(&primal).expect("transforms");
    let crate::forward::Forward {
        func: mut hvp,
        tangents,
    } = crate::forward::forward(&back, &seeds).expect("forward over reverse");
    hvp.body.yields.truncate(1);
    simplify::simplify(&mut hvp);
    let bound: Vec<(Var, Val<f64>)> = tangents.iter().copied().zip(extra).collect();
    let hvp_run = interp::run_yields(&hvp, &interp_args, &bound);

    let mut out = String::new();
    let attr = if r.wrt.is_empty() {
        "#[differentiate(forward, hvp)]".to_string()
    } else {
        format!("#[differentiate({}, forward, hvp)]", r.attr())
    };
    let _ = write!(
        out,
        "// ---------------------------------------------------------------- {name}\n\n\
         /// Draw {draw} of the seed.\nmod {name} {{\nuse grad::prelude::*;\n\n{attr}\npub {}}}\n\n",
        r.item()
    );

    let names: Vec<&str> = wrt.iter().map(|(n, _)| n.as_str()).collect();
    let mut doc = format!(
        "`{name}::f_grad` and `{name}::f_backward` at the program's point: their value is \
         `f`'s and the reference evaluator's, their gradient the IR interpreter's, bit for \
         bit. "
    );
    if trace.last() == Some(&i64::MIN) {
        skipped.clear();
        doc.push_str(
            "No finite-difference check: a derivative is infinite or undefined at the point.",
        );
    } else if checked.is_empty() {
        doc.push_str("No finite-difference check: ");
    } else {
        let list: Vec<&str> = checked.iter().map(|&k| names[k]).collect();
        let _ = write!(
            doc,
            "Finite differences of `f` check the gradient in {}{}",
            list.join(", "),
            if skipped.is_empty() { "." } else { "; not in " }
        );
    }
    for (n, (input, why)) in skipped.iter().enumerate() {
        let end = if n + 1 == skipped.len() { "." } else { "; " };
        let _ = write!(doc, "{input} ({why}){end}");
    }
    let flat = |g: &str| {
        let parts: Vec<String> = wrt_params
            .iter()
            .map(|(_, f)| f.replace("{g}", g))
            .collect();
        format!("flat(&[{}])", parts.join(", "))
    };
    let _ = writeln!(
        out,
        "{}#[test]\nfn {name}() {{\n{lets}\
         let (value, g) = {name}::f_grad({args});\n\
         let mut b = {name}::FGrad::default();\n\
         let backward = {name}::f_backward({args}, &mut b);\n\
         let run = Run {{\n\
         value: {name}::f({args}),\n\
         grad: (value, {}),\n\
         backward: (backward, {}),\n\
         }};",
        doc_comment(&doc),
        flat("g"),
        flat("b"),
    );
    let _ = writeln!(
        out,
        "run.check(\nf64::from_bits({:#018x}), // {reference:?}\n&[",
        reference.to_bits()
    );
    for (input, j) in &wrt {
        let g = grad[slots[*j].1];
        let _ = writeln!(
            out,
            "f64::from_bits({:#018x}), // {input}: {g:?}",
            g.to_bits()
        );
    }
    let _ = writeln!(out, "],\n);");
    let tangent_args = tangent_args.join(", ");
    let _ = writeln!(
        out,
        "// `f_jvp` and `f_hvp` in a fixed direction: the value is `f`'s, the\n\
         // gradient `f_grad`'s, the derivatives the interpreter's, bit for bit.\n\
         let (jvp_value, jvp) = {name}::f_jvp({args}, {tangent_args});\n\
         assert_eq!(jvp_value.to_bits(), run.value.to_bits());\n\
         assert_eq!(jvp.to_bits(), {:#018x}, \"f_jvp gives {{jvp:?}}, the interpreter {jvp_dot:?}\");\n\
         let (hvp_value, hg, hv) = {name}::f_hvp({args}, {tangent_args});\n\
         assert_eq!(hvp_value.to_bits(), run.value.to_bits());\n\
         assert_eq!(bits(&{}), bits(&run.grad.1));",
        jvp_dot.to_bits(),
        flat("hg"),
    );
    let _ = writeln!(out, "assert_eq!(\nbits(&{}),\n[", flat("hv"));
    for (input, j) in &wrt {
        let h = hvp_run.grad_dot[slots[*j].1];
        let _ = writeln!(out, "{:#018x}, // {input}: {h:?}", h.to_bits());
    }
    let _ = writeln!(out, "],\n\"f_hvp's Hessian-vector product\",\n);");
    if !checked.is_empty() {
        let point: Vec<&str> = wrt_params.iter().map(|(p, _)| p.as_str()).collect();
        let components: Vec<String> = checked.iter().map(|k| k.to_string()).collect();
        let _ = writeln!(
            out,
            "run.finite_differences(\n|x| {name}::f({}),\n&flat(&[{}]),\n&[{}],\n{absolute:e},\n);",
            varied.join(", "),
            point.join(", "),
            components.join(", "),
        );
    }
    out.push_str("}\n\n");
    (out, checked.len())
}

/// The text of [`COMPILED_FILE`], before `rustfmt`.
fn compiled_file() -> String {
    let programs = compiled_programs(COMPILED_PROGRAMS);
    let mut body = String::new();
    let mut fd = 0;
    let mut components = 0;
    for (k, (draw, p)) in programs.iter().enumerate() {
        let (text, checked) = compiled_program(&format!("p{k:02}"), *draw, p);
        body.push_str(&text);
        fd += checked;
        components += input_slots(&resolve(p))
            .iter()
            .filter(|(wrt, _)| *wrt)
            .count();
    }
    let draws = programs.last().map_or(0, |(d, _)| *d);
    format!(
        r#"//! Random programs, compiled.
//!
//! GENERATED by `the_compiled_random_programs_are_current` in
//! `grad-macro/src/proptests.rs`: do not edit. That test fails when this
//! file is not what the generator writes; regenerate it with
//!
//! ```sh
//! GRAD_BLESS=1 cargo test -p grad-macro --lib the_compiled_random_programs_are_current
//! ```
//!
//! The property tests of `grad-macro/src/proptests.rs` run 10,000 random
//! programs through the transform in-process, and run the transformed IR in
//! an interpreter: they cannot see the Rust that `emit.rs` writes. Here
//! {n} programs of the same generator (drawn from a fixed seed: the first
//! {n} of {draws} draws whose point is in the domain) are written out as
//! source, expanded by the real `#[differentiate]` and compiled by rustc, so
//! an emission bug cannot hide behind the interpreter. At each program's
//! point, its test checks:
//!
//! * `f_grad`'s and `f_backward`'s value is `f`'s, bit for bit, which is the
//!   value of the generator's reference evaluator (Rust's semantics,
//!   written independently of the macro);
//! * the gradient of `f_grad`, and the one `f_backward` adds into a default
//!   gradient, are bit for bit what the IR interpreter computes for the
//!   transformed IR;
//! * `f_jvp` and `f_hvp` in a fixed direction return `f`'s value and
//!   `f_grad`'s gradient, and the directional derivative and the
//!   Hessian-vector product the interpreter computes, bit for bit (the
//!   property tests compare those with `grad · v` and with differences of
//!   the gradient);
//! * where finite differences are meaningful at the point (no decision
//!   changes within the steps, two step sizes agree: the proptests' own
//!   criterion, also at `grad::check`'s step), the gradient agrees with
//!   central differences of `f` itself ({fd} of the {components} gradient
//!   components); each test says which.

// The programs are random user code, as the generator prints it: unused
// bindings and loop variables, `mut` never reassigned, `(i as f64)`,
// `p0 < p0`, `!(a < b)`, empty `if`s and `else`s, `for i in 1..1`, … are
// expected in it. Each lint below is one that the functions `f` trigger
// without `#[differentiate]` (the expansion adds none);
// `tests/lint_clean.rs` checks that the macro's own code is lint-free. A
// regenerated file may need the list extended.
#![allow(
    unused_assignments,
    unused_mut,
    unused_parens,
    unused_variables,
    clippy::collapsible_if,
    clippy::double_comparisons,
    clippy::double_parens,
    clippy::eq_op,
    clippy::if_same_then_else,
    clippy::misrefactored_assign_op,
    clippy::needless_else,
    clippy::needless_ifs,
    clippy::needless_range_loop,
    clippy::neg_cmp_op_on_partial_ord,
    clippy::neg_multiply,
    clippy::nonminimal_bool,
    clippy::redundant_locals,
    clippy::reversed_empty_ranges
)]

use grad::check::{{check_gradient, Tolerance}};

/// One program's results at its point, gradients flattened in parameter
/// order (a slice's elements in order).
struct Run {{
    /// `f`'s value.
    value: f64,
    /// `f_grad`'s value and gradient.
    grad: (f64, Vec<f64>),
    /// `f_backward`'s value and the gradient it added into a default one.
    backward: (f64, Vec<f64>),
}}

/// The gradient's fields, flattened.
fn flat(fields: &[&[f64]]) -> Vec<f64> {{
    fields.concat()
}}

fn bits(values: &[f64]) -> Vec<u64> {{
    values.iter().map(|v| v.to_bits()).collect()
}}

impl Run {{
    /// The values are the reference evaluator's `value`, the gradients
    /// the interpreter's `gradient`, bit for bit.
    #[track_caller]
    fn check(&self, value: f64, gradient: &[f64]) {{
        assert_eq!(
            self.value.to_bits(),
            value.to_bits(),
            "f returns {{:?}}, the reference evaluator {{value:?}}",
            self.value
        );
        for (companion, (v, g)) in [("f_grad", &self.grad), ("f_backward", &self.backward)] {{
            assert_eq!(
                v.to_bits(),
                value.to_bits(),
                "{{companion}} returns {{v:?}}, f {{value:?}}"
            );
            assert_eq!(
                bits(g),
                bits(gradient),
                "{{companion}}'s gradient is {{g:?}}, the interpreter's {{gradient:?}}"
            );
        }}
    }}

    /// The gradient's `components` agree with central differences of `f`,
    /// a function of the differentiated inputs, at `point`, within
    /// `grad::check`'s default relative tolerance and `absolute` (which
    /// allows for the rounding of large intermediates).
    #[track_caller]
    fn finite_differences(
        &self,
        f: impl Fn(&[f64]) -> f64,
        point: &[f64],
        components: &[usize],
        absolute: f64,
    ) {{
        let at: Vec<f64> = components.iter().map(|&k| point[k]).collect();
        let analytic: Vec<f64> = components.iter().map(|&k| self.grad.1[k]).collect();
        let g = |v: &[f64]| {{
            let mut x = point.to_vec();
            for (&k, &vk) in components.iter().zip(v) {{
                x[k] = vk;
            }}
            f(&x)
        }};
        let tolerance = Tolerance {{
            relative: {COMPILED_RELATIVE:e},
            absolute,
        }};
        if let Err(e) = check_gradient(g, &at, &analytic, tolerance) {{
            panic!("{{e}} (the components are {{components:?}}, at {{point:?}})");
        }}
    }}
}}

{body}"#,
        n = programs.len(),
    )
}

/// `text` as `cargo fmt` formats the file (rustfmt of the workspace's
/// edition; `$RUSTFMT` overrides the binary, as for `cargo fmt`).
fn rustfmt(text: &str) -> Result<String, String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let mut child = Command::new(&binary)
        .args(["--edition", "2021", "--emit", "stdout"])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", binary.to_string_lossy()))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("rustfmt: {e}"))?;
    writer
        .join()
        .map_err(|_| "rustfmt: writing its input panicked".to_string())?
        .map_err(|e| format!("rustfmt: writing its input: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed ({}):\n{}",
            binary.to_string_lossy(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("rustfmt's output: {e}"))
}

/// `tests/random_programs.rs` is what the generator writes (formatted as
/// `cargo fmt` does): random programs compiled by rustc with the real
/// macro, their gradients compared bit for bit with the interpreter's and
/// with finite differences. `GRAD_BLESS=1` rewrites the file.
#[test]
fn the_compiled_random_programs_are_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(COMPILED_FILE);
    let text = rustfmt(&compiled_file()).unwrap_or_else(|e| {
        panic!(
            "{COMPILED_FILE} is compared formatted as `cargo fmt` formats it, and rustfmt \
             cannot be run (install it with `rustup component add rustfmt`, or set \
             RUSTFMT to its path): {e}"
        )
    });
    if std::env::var_os("GRAD_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != text {
        let line = current
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(current.lines().count().min(text.lines().count()));
        panic!(
            "{COMPILED_FILE} is not what the generator writes (first difference at line {}: \
             {:?} should be {:?}); regenerate it with\n    GRAD_BLESS=1 cargo test -p \
             grad-macro --lib the_compiled_random_programs_are_current",
            line + 1,
            current.lines().nth(line).unwrap_or("<end of file>"),
            text.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}
