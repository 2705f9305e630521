//! The intermediate representation every pass reads and writes.
//!
//! A function body is a tree of [`Block`]s holding [`Stmt`]s. Values are
//! single-assignment variables ([`Var`]): a `let mut` that the user reassigns
//! becomes a fresh variable per assignment, and a value that differs by branch
//! flows out of an [`Stmt::If`] through its `outs`, one per variable, as the
//! yields of the two branch blocks (a phi in block-argument form). Operations
//! take [`Operand`]s only, so every intermediate has a name the reverse sweep
//! can refer to.
//!
//! Control flow is structured (blocks nest, `if` has two blocks); loops add a
//! variant of [`Stmt`] without changing the rest. The only mutable variables
//! are the adjoint accumulators the reverse pass introduces ([`Stmt::DeclMut`]
//! and [`Stmt::Accum`]).

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

use crate::rules::Rule;

/// The tables of the passes, keyed by variables and small structural keys,
/// hashed with FxHash (the hash of rustc's own tables) rather than the
/// std default, SipHash, whose resistance to keys chosen to collide is of no
/// use on the user's own function and costs several times more per key.
pub type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;
pub type FastSet<K> = std::collections::HashSet<K, BuildHasherDefault<FxHasher>>;

/// See [`FastMap`].
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }

    fn write_u16(&mut self, i: u16) {
        self.add(i.into());
    }

    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits, which the multiply
        // leaves depending on the low bits of the key alone.
        self.hash.rotate_left(26)
    }
}

/// A single-assignment variable, an index into [`Func::vars`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Var(pub u32);

/// What the macro knows of a value's type: enough to pick literal suffixes,
/// placeholders and gradient field types; rustc infers the rest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ty {
    F32,
    F64,
    /// A float whose width comes from context (an unsuffixed literal).
    Float,
    Int,
    Bool,
    /// Anything else: user types, `&str`, constants of unknown type.
    Other,
    /// A slice or an array (of any rank); its shape is in [`VarInfo::shape`].
    Array,
}

impl Ty {
    pub fn is_float(self) -> bool {
        matches!(self, Ty::F32 | Ty::F64 | Ty::Float)
    }

    /// The type of an arithmetic result: the first concrete float type among
    /// the operands wins, then an unsuffixed float, then the first operand's.
    pub fn join(tys: impl IntoIterator<Item = Ty>) -> Ty {
        let mut first = None;
        let mut float = false;
        for ty in tys {
            match ty {
                Ty::F32 | Ty::F64 => return ty,
                Ty::Float => float = true,
                _ => {}
            }
            first.get_or_insert(ty);
        }
        if float {
            Ty::Float
        } else {
            first.unwrap_or(Ty::Other)
        }
    }
}

/// Where a variable came from; decides its emitted name and whether the
/// emitter may fold it into the expression that uses it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Origin {
    /// A parameter of the user's function (name kept exactly).
    Param,
    /// A `let` binding or reassignment of the user's.
    Local,
    /// A variable the lowering introduces with a descriptive name (a slice
    /// loop's index `i`, an early return's `ret`): named like a user
    /// variable, but never with a name the user's function uses.
    Synth,
    /// An intermediate of an expression.
    Temp,
    /// The adjoint (reverse-mode derivative) of another variable.
    Adjoint(Var),
    /// The gradient struct a call to another `#[differentiate]` function returned.
    CalleeGrad,
    /// The tangent (forward-mode derivative) of another variable.
    Tangent(Var),
    /// A branch-local value passed out of its `if` for the reverse sweep; it
    /// takes the same name, which is free again once the branch ends.
    Export(Var),
}

/// Everything known about one variable.
#[derive(Clone, Debug)]
pub struct VarInfo {
    /// The user's name, or a descriptive stem for generated variables.
    pub name: String,
    pub ty: Ty,
    pub origin: Origin,
    /// Whether the value depends on a differentiated parameter.
    pub active: bool,
    pub span: Span,
    /// For [`Ty::Array`]: the element type and the dimensions.
    pub shape: Option<Shape>,
}

impl VarInfo {
    /// A scalar variable.
    pub fn scalar(
        name: impl Into<String>,
        ty: Ty,
        origin: Origin,
        active: bool,
        span: Span,
    ) -> Self {
        VarInfo {
            name: name.into(),
            ty,
            origin,
            active,
            span,
            shape: None,
        }
    }
}

/// The shape of a slice or array variable.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The scalar element type (`F64`, `F32`, `Int`, …).
    pub elem: Ty,
    /// The lengths, outermost first, as written (`[[f64; 4]; 16]` gives
    /// `16, 4`); `None` for a slice's runtime length.
    pub lens: Vec<Option<syn::Expr>>,
}

impl Shape {
    pub fn rank(&self) -> usize {
        self.lens.len()
    }
}

/// A float constant, kept with the suffix the user wrote, if any.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct FloatConst {
    pub value: f64,
    pub ty: Ty,
}

/// An argument of an operation.
#[derive(Clone, Debug)]
pub enum Operand {
    Var(Var),
    Float(FloatConst),
    /// Any other literal (integers, bools, strings), emitted verbatim.
    Lit(syn::Lit),
    /// A path to a constant or static (`PI`, `std::f64::consts::E`, a user
    /// `const`), emitted verbatim; never differentiated.
    Path(syn::Path),
    /// `Default::default()`: what a branch not taken yields for a value only
    /// the other branch computes.
    Default,
}

impl Operand {
    pub fn float(value: f64) -> Operand {
        Operand::Float(FloatConst {
            value,
            ty: Ty::Float,
        })
    }

    pub fn as_var(&self) -> Option<Var> {
        match self {
            Operand::Var(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_float(&self) -> Option<f64> {
        match self {
            Operand::Float(c) => Some(c.value),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Operand::Lit(syn::Lit::Int(i)) => i.base10_parse().ok(),
            _ => None,
        }
    }

    pub fn is_float_value(&self, value: f64) -> bool {
        self.as_float() == Some(value)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
        }
    }
}

/// How a primitive was written, which is how it is emitted again.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CallForm {
    /// `x.sin()` or `f64::sin(x)`: a method of the float type.
    Method,
    /// `sigmoid(x)`: a function of grad's runtime.
    Runtime,
    /// A derivative helper of the runtime (`grad::__private::derivatives`).
    Helper,
}

/// A right-hand side.
#[derive(Clone, Debug)]
pub enum Expr {
    Use(Operand),
    Unary(UnOp, Operand),
    Binary(BinOp, Operand, Operand),
    /// A primitive from the rule table.
    Prim {
        rule: &'static Rule,
        form: CallForm,
        args: Vec<Operand>,
        /// The path the user wrote for a runtime function (`sigmoid`,
        /// `grad::sigmoid`), emitted again so that the call resolves to
        /// whatever the user's function resolves to; `None` for calls the
        /// passes create.
        path: Option<syn::Path>,
    },
    /// `operand as ty`.
    Cast {
        operand: Operand,
        ty: syn::Type,
    },
    /// A call the macro does not differentiate: none of its arguments is active.
    Call {
        func: syn::Path,
        args: Vec<Operand>,
    },
    /// A call of another `#[differentiate]` function with active arguments.
    /// The primal evaluates it as a plain call; the reverse pass turns it into
    /// a call of the companion `func_grad`.
    DiffCall {
        func: syn::Path,
        args: Vec<Operand>,
        spans: Vec<Span>,
    },
    /// `func_grad(args)`: the value and the gradient struct of the callee.
    GradCall {
        func: syn::Path,
        args: Vec<Operand>,
    },
    /// `__func_hvp_along(args, &[dirs])`: the value, the gradient struct and
    /// the Hessian-vector product of the callee along `dirs` (one per
    /// argument, `0.0` for those without a tangent): forward over reverse
    /// through a call.
    HvpCall {
        func: syn::Path,
        args: Vec<Operand>,
        dirs: Vec<Operand>,
    },
    /// The callee gradient's component for argument `index`; `span` is the
    /// argument's, where rustc reports a callee that does not differentiate it.
    ArgGrad {
        grad: Var,
        index: usize,
        span: Span,
    },
    /// A method with no rule, called on values none of which is active
    /// (`n.min(m)` on integers, `name.len()`).
    Method {
        receiver: Operand,
        method: syn::Ident,
        args: Vec<Operand>,
    },
    /// `base.member` on a value that is not differentiated.
    Field {
        base: Operand,
        member: syn::Member,
    },
    /// `array[i]`, `array[i][j]`: an element (all indices given).
    Index {
        array: Var,
        index: Vec<Operand>,
    },
    /// `array.len()` (the outermost length).
    Len(Var),
    /// `&operand`: a loop element passed to a function that takes it by
    /// reference, as the user's code does.
    Ref(Operand),
    /// `matches!(operand, pattern)`: a `match` arm's test.
    Matches {
        operand: Operand,
        pat: syn::Pat,
    },
}

impl Expr {
    pub fn operands_mut(&mut self) -> Vec<&mut Operand> {
        match self {
            Expr::Use(a) | Expr::Unary(_, a) => vec![a],
            Expr::Binary(_, a, b) => vec![a, b],
            Expr::Prim { args, .. }
            | Expr::Call { args, .. }
            | Expr::DiffCall { args, .. }
            | Expr::GradCall { args, .. } => args.iter_mut().collect(),
            Expr::HvpCall { args, dirs, .. } => args.iter_mut().chain(dirs.iter_mut()).collect(),
            Expr::Cast { operand, .. } => vec![operand],
            Expr::ArgGrad { .. } => vec![],
            Expr::Method { receiver, args, .. } => {
                std::iter::once(receiver).chain(args.iter_mut()).collect()
            }
            Expr::Field { base, .. } => vec![base],
            Expr::Index { index, .. } => index.iter_mut().collect(),
            Expr::Len(_) => vec![],
            Expr::Matches { operand, .. } | Expr::Ref(operand) => vec![operand],
        }
    }

    /// Variables read, including the gradient struct of [`Expr::ArgGrad`].
    pub fn vars(&self) -> Vec<Var> {
        let mut vars = vec![];
        self.for_each_var(|v| vars.push(v));
        vars
    }

    /// [`Expr::vars`] without collecting them (the passes' hot loops).
    pub fn for_each_var(&self, mut f: impl FnMut(Var)) {
        let mut operand = |o: &Operand| {
            if let Operand::Var(v) = o {
                f(*v);
            }
        };
        match self {
            Expr::Use(a) | Expr::Unary(_, a) => operand(a),
            Expr::Binary(_, a, b) => {
                operand(a);
                operand(b);
            }
            Expr::Prim { args, .. }
            | Expr::Call { args, .. }
            | Expr::DiffCall { args, .. }
            | Expr::GradCall { args, .. } => args.iter().for_each(operand),
            Expr::HvpCall { args, dirs, .. } => args.iter().chain(dirs).for_each(operand),
            Expr::Cast { operand: a, .. }
            | Expr::Field { base: a, .. }
            | Expr::Matches { operand: a, .. }
            | Expr::Ref(a) => operand(a),
            Expr::ArgGrad { grad, .. } => f(*grad),
            Expr::Method { receiver, args, .. } => {
                operand(receiver);
                args.iter().for_each(operand);
            }
            Expr::Index { array, index } => {
                index.iter().for_each(operand);
                f(*array);
            }
            Expr::Len(array) => f(*array),
        }
    }

    /// Rename variables read by this expression.
    pub fn map_vars(&mut self, f: &mut impl FnMut(Var) -> Operand) {
        for operand in self.operands_mut() {
            if let Operand::Var(v) = operand {
                *operand = f(*v);
            }
        }
        match self {
            Expr::ArgGrad { grad: v, .. } | Expr::Index { array: v, .. } | Expr::Len(v) => {
                if let Operand::Var(new) = f(*v) {
                    *v = new;
                }
            }
            _ => {}
        }
    }
}

/// One statement.
#[derive(Clone, Debug)]
pub enum Stmt {
    /// `let var = expr;`
    Let { var: Var, expr: Expr },
    /// `let (vars.0, vars.1, …) = expr;` for calls that return tuples.
    LetTuple { vars: Vec<Var>, expr: Expr },
    /// `let mut var = expr;`: an accumulator.
    DeclMut { var: Var, expr: Expr },
    /// `var += expr;`
    Accum { var: Var, expr: Expr },
    /// `grad.<field> += value;` in a `_backward` companion: `param` is the
    /// index of the differentiated parameter in the function's parameter list.
    /// With `dot`, into the tangent of the gradient instead (`f_hvp`'s
    /// Hessian-vector product, see `forward.rs`).
    AccumGrad {
        param: usize,
        value: Operand,
        dot: bool,
    },
    /// `let (outs…) = if cond { then…; yields } else { else…; yields };`
    If {
        cond: Operand,
        then_block: Block,
        else_block: Block,
        outs: Vec<Var>,
    },
    /// A loop with its loop-carried variables.
    Loop(Box<Loop>),
    /// `let [mut] var = [fill; n]` or `[a, b, …]`: a local array, which is
    /// storage (written by [`Stmt::Store`]), not a single-assignment value.
    LetArray { var: Var, init: ArrayInit },
    /// `array[index…] = value;`
    Store {
        array: Var,
        index: Vec<Operand>,
        value: Operand,
    },
    /// `target[index…] += expr;`: into an adjoint array or a gradient field.
    AccumIndex {
        target: Target,
        index: Vec<Operand>,
        expr: Expr,
    },
    /// `var = expr;`: hands an adjoint from one loop iteration to the previous one.
    Assign { var: Var, expr: Expr },
    /// `let mut tape = Vec::new();`
    TapeNew { tape: Var },
    /// `tape.push((values…));`
    Push { tape: Var, values: Vec<Operand> },
    /// `let (vars…) = tape.pop()…;`
    Pop { tape: Var, vars: Vec<Var> },
    /// Sizes an empty slice gradient `grad.<param>` to the parameter's length
    /// (and checks a non-empty one) before anything is added into it.
    /// With `dot`, the tangent of the gradient.
    PrepareGrad { param: usize, dot: bool },
}

/// Where an [`Stmt::AccumIndex`] adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// An adjoint array of the function.
    Var(Var),
    /// The gradient field of a slice or array parameter (its index).
    Grad(usize),
    /// The same field of the gradient's tangent (the Hessian-vector product).
    GradDot(usize),
}

/// The initial contents of a local array.
#[derive(Clone, Debug)]
pub enum ArrayInit {
    /// `[fill; lens[0]]`, `[[fill; lens[1]]; lens[0]]`, …
    Repeat { fill: Operand, lens: Vec<syn::Expr> },
    /// `[a, b, c]`
    List(Vec<Operand>),
}

/// A loop. The body yields `keep_going` (false when it `break`s) and then
/// the next value of every carried variable.
#[derive(Clone, Debug)]
pub struct Loop {
    pub kind: LoopKind,
    pub carried: Vec<Carried>,
    pub body: Block,
    /// The number of iterations run, counted when the reverse pass needs it.
    pub count: Option<Var>,
    /// Set by the reverse pass on a forward loop, to find its reverse loop.
    pub id: Option<u32>,
    /// Set by the reverse pass on a reverse loop (see `fuse.rs`).
    pub reverse_of: Option<ReverseOf>,
}

/// What links a reverse loop to the forward loop it reverses.
#[derive(Clone, Debug)]
pub struct ReverseOf {
    /// The forward loop's `id`.
    pub id: u32,
    /// The reverse loop's recomputed copies of the forward body's
    /// variables: `(copy, original)`.
    pub copies: Vec<(Var, Var)>,
}

#[derive(Clone, Debug)]
pub enum LoopKind {
    /// `for var in range`.
    For { var: Var, range: RangeSpec },
    /// `loop { … }`; `while` lowers to it with the test in the body.
    Loop,
    /// `for _ in 0..times`: how the reverse pass replays a counted loop.
    Times(Operand),
}

/// `start..end`, `start..=end`, optionally `.step_by(step)`, optionally `.rev()`.
#[derive(Clone, Debug)]
pub struct RangeSpec {
    pub start: Operand,
    pub end: Operand,
    pub inclusive: bool,
    pub step: Option<Operand>,
    pub rev: bool,
}

impl RangeSpec {
    pub fn operands(&self) -> Vec<&Operand> {
        let mut ops = vec![&self.start, &self.end];
        ops.extend(self.step.as_ref());
        ops
    }

    pub fn operands_mut(&mut self) -> Vec<&mut Operand> {
        let mut ops = vec![&mut self.start, &mut self.end];
        ops.extend(self.step.as_mut());
        ops
    }
}

/// A variable the loop body reassigns: `phi` is its value at the start of
/// an iteration (`init` before the first), `out` its value after the loop.
#[derive(Clone, Debug)]
pub struct Carried {
    pub init: Operand,
    pub phi: Var,
    pub out: Var,
}

impl Loop {
    /// Whether every iteration runs to the end of the body: it never
    /// `break`s (its `keep_going` yield is the literal `true`).
    pub fn runs_to_end(&self) -> bool {
        matches!(self.body.yields.first(), Some(Operand::Lit(syn::Lit::Bool(b))) if b.value)
    }

    /// Variables defined at the start of the body: the loop variable and the phis.
    pub fn body_params(&self) -> Vec<Var> {
        let mut vars = vec![];
        if let LoopKind::For { var, .. } = &self.kind {
            vars.push(*var);
        }
        vars.extend(self.carried.iter().map(|c| c.phi));
        vars
    }

    /// Operands read before the loop starts.
    pub fn header_operands(&self) -> Vec<&Operand> {
        let mut ops: Vec<&Operand> = self.carried.iter().map(|c| &c.init).collect();
        match &self.kind {
            LoopKind::For { range, .. } => ops.extend(range.operands()),
            LoopKind::Times(n) => ops.push(n),
            LoopKind::Loop => {}
        }
        ops
    }

    pub fn header_operands_mut(&mut self) -> Vec<&mut Operand> {
        let mut ops: Vec<&mut Operand> = self.carried.iter_mut().map(|c| &mut c.init).collect();
        match &mut self.kind {
            LoopKind::For { range, .. } => ops.extend(range.operands_mut()),
            LoopKind::Times(n) => ops.push(n),
            LoopKind::Loop => {}
        }
        ops
    }
}

/// A sequence of statements and the operands it yields to its parent
/// (an `if`'s outs, or the function's return value).
#[derive(Clone, Debug, Default)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub yields: Vec<Operand>,
}

/// A parameter of the function.
#[derive(Clone, Debug)]
pub struct Param {
    pub var: Var,
    pub ident: syn::Ident,
    pub ty: syn::Type,
    /// Whether the gradient is taken with respect to this parameter.
    pub wrt: bool,
}

/// A whole function: the primal as lowered, or a companion after a pass.
#[derive(Clone, Debug)]
pub struct Func {
    pub vars: Vec<VarInfo>,
    pub params: Vec<Param>,
    /// Yields exactly one operand: the return value.
    pub body: Block,
    /// In a transformed function, the first variable the reverse pass
    /// created: variables from there on (but for recomputed copies of the
    /// primal's) hold derivative values, where the simplifier may fold
    /// `0 * x` to `0` (see `simplify`).
    pub derivative_vars_from: Option<u32>,
    /// The `use` items of the body (`use grad::prelude::sigmoid as s;`),
    /// repeated in the companions' bodies so their paths resolve there too.
    pub uses: Vec<syn::ItemUse>,
}

impl Func {
    pub fn new_var(&mut self, info: VarInfo) -> Var {
        self.vars.push(info);
        Var(self.vars.len() as u32 - 1)
    }

    /// A new variable derived from `var` (its adjoint, its tangent): the
    /// same name, type, span and shape, not active.
    pub fn derived_var(&mut self, var: Var, origin: Origin) -> Var {
        let info = self.info(var).clone();
        self.new_var(VarInfo {
            name: info.name,
            ty: info.ty,
            origin,
            active: false,
            span: info.span,
            shape: info.shape,
        })
    }

    /// The gradient struct a call of another `#[differentiate]` function
    /// returns beside `var`, its value (`let (var, var_grad) = g_grad(…)`);
    /// reverse mode and forward mode both make it.
    pub fn callee_grad_var(&mut self, var: Var) -> Var {
        let info = self.info(var);
        let (name, span) = (format!("{}_grad", info.name), info.span);
        self.new_var(VarInfo {
            name,
            ty: Ty::Other,
            origin: Origin::CalleeGrad,
            active: false,
            span,
            shape: None,
        })
    }

    pub fn info(&self, var: Var) -> &VarInfo {
        &self.vars[var.0 as usize]
    }

    pub fn info_mut(&mut self, var: Var) -> &mut VarInfo {
        &mut self.vars[var.0 as usize]
    }

    pub fn operand_ty(&self, operand: &Operand) -> Ty {
        match operand {
            Operand::Var(v) => self.info(*v).ty,
            Operand::Float(c) => c.ty,
            Operand::Lit(syn::Lit::Int(_)) => Ty::Int,
            Operand::Lit(syn::Lit::Bool(_)) => Ty::Bool,
            Operand::Lit(_) | Operand::Path(_) | Operand::Default => Ty::Other,
        }
    }

    pub fn is_active(&self, operand: &Operand) -> bool {
        operand.as_var().is_some_and(|v| self.info(v).active)
    }
}

/// Calls `f` on every statement of `block` and of the blocks nested in it,
/// parents before children.
pub fn walk_stmts<'a>(block: &'a Block, f: &mut impl FnMut(&'a Stmt)) {
    for stmt in &block.stmts {
        f(stmt);
        for b in stmt.blocks() {
            walk_stmts(b, f);
        }
    }
}

impl Stmt {
    /// The blocks nested in this statement.
    pub fn blocks(&self) -> Vec<&Block> {
        match self {
            Stmt::If {
                then_block,
                else_block,
                ..
            } => vec![then_block, else_block],
            Stmt::Loop(l) => vec![&l.body],
            _ => vec![],
        }
    }

    pub fn blocks_mut(&mut self) -> Vec<&mut Block> {
        match self {
            Stmt::If {
                then_block,
                else_block,
                ..
            } => vec![then_block, else_block],
            Stmt::Loop(l) => vec![&mut l.body],
            _ => vec![],
        }
    }

    /// The operands this statement reads directly besides its expression's
    /// (not in nested blocks).
    pub fn operands_mut(&mut self) -> Vec<&mut Operand> {
        match self {
            Stmt::AccumGrad { value, .. } => vec![value],
            Stmt::If { cond, .. } => vec![cond],
            Stmt::Loop(l) => l.header_operands_mut(),
            Stmt::LetArray { init, .. } => match init {
                ArrayInit::Repeat { fill, .. } => vec![fill],
                ArrayInit::List(items) => items.iter_mut().collect(),
            },
            Stmt::Store { index, value, .. } => {
                index.iter_mut().chain(std::iter::once(value)).collect()
            }
            Stmt::AccumIndex { index, .. } => index.iter_mut().collect(),
            Stmt::Push { values, .. } => values.iter_mut().collect(),
            _ => vec![],
        }
    }

    /// The expression of this statement, if it has one.
    pub fn expr(&self) -> Option<&Expr> {
        match self {
            Stmt::Let { expr, .. }
            | Stmt::LetTuple { expr, .. }
            | Stmt::DeclMut { expr, .. }
            | Stmt::Accum { expr, .. }
            | Stmt::AccumIndex { expr, .. }
            | Stmt::Assign { expr, .. } => Some(expr),
            _ => None,
        }
    }

    /// [`Stmt::expr`], mutably.
    pub fn expr_mut(&mut self) -> Option<&mut Expr> {
        match self {
            Stmt::Let { expr, .. }
            | Stmt::LetTuple { expr, .. }
            | Stmt::DeclMut { expr, .. }
            | Stmt::Accum { expr, .. }
            | Stmt::AccumIndex { expr, .. }
            | Stmt::Assign { expr, .. } => Some(expr),
            _ => None,
        }
    }

    /// Variables this statement reads directly (not in nested blocks).
    pub fn reads(&self) -> Vec<Var> {
        let mut vars = vec![];
        self.for_each_read(|v| vars.push(v));
        vars
    }

    /// [`Stmt::reads`] without collecting them (the passes' hot loops).
    pub fn for_each_read(&self, mut f: impl FnMut(Var)) {
        match self {
            Stmt::Let { expr, .. }
            | Stmt::LetTuple { expr, .. }
            | Stmt::DeclMut { expr, .. }
            | Stmt::Assign { expr, .. } => expr.for_each_var(f),
            Stmt::Accum { var, expr } => {
                expr.for_each_var(&mut f);
                f(*var);
            }
            Stmt::AccumIndex {
                target,
                index,
                expr,
            } => {
                expr.for_each_var(&mut f);
                index.iter().filter_map(Operand::as_var).for_each(&mut f);
                if let Target::Var(v) = target {
                    f(*v);
                }
            }
            Stmt::AccumGrad { value: o, .. }
            | Stmt::If { cond: o, .. }
            | Stmt::LetArray {
                init: ArrayInit::Repeat { fill: o, .. },
                ..
            } => o.as_var().into_iter().for_each(f),
            Stmt::Loop(l) => l
                .header_operands()
                .into_iter()
                .filter_map(Operand::as_var)
                .for_each(f),
            Stmt::LetArray {
                init: ArrayInit::List(items),
                ..
            } => items.iter().filter_map(Operand::as_var).for_each(f),
            Stmt::Store {
                array,
                index,
                value,
            } => {
                index
                    .iter()
                    .chain([value])
                    .filter_map(Operand::as_var)
                    .for_each(&mut f);
                f(*array);
            }
            Stmt::TapeNew { .. } | Stmt::PrepareGrad { .. } => {}
            Stmt::Push { tape, values } => {
                values.iter().filter_map(Operand::as_var).for_each(&mut f);
                f(*tape);
            }
            Stmt::Pop { tape, .. } => f(*tape),
        }
    }

    /// Variables this statement defines directly.
    pub fn defines(&self) -> Vec<Var> {
        match self {
            Stmt::Let { var, .. } | Stmt::DeclMut { var, .. } | Stmt::LetArray { var, .. } => {
                vec![*var]
            }
            Stmt::LetTuple { vars, .. } | Stmt::Pop { vars, .. } => vars.clone(),
            Stmt::If { outs, .. } => outs.clone(),
            Stmt::Loop(l) => l.carried.iter().map(|c| c.out).chain(l.count).collect(),
            Stmt::TapeNew { tape } => vec![*tape],
            Stmt::Accum { .. }
            | Stmt::AccumGrad { .. }
            | Stmt::Store { .. }
            | Stmt::AccumIndex { .. }
            | Stmt::Assign { .. }
            | Stmt::Push { .. }
            | Stmt::PrepareGrad { .. } => vec![],
        }
    }
}

/// Every variable read anywhere in `block` (statements and yields, nested
/// blocks included), with multiplicity.
pub fn reads_in_block(block: &Block, out: &mut Vec<Var>) {
    for stmt in &block.stmts {
        stmt.for_each_read(|v| out.push(v));
        for b in stmt.blocks() {
            reads_in_block(b, out);
        }
    }
    out.extend(block.yields.iter().filter_map(Operand::as_var));
}

/// Replaces every read of a variable for which `f` answers, in `block` and
/// the blocks nested in it.
pub fn substitute_block(block: &mut Block, f: &dyn Fn(Var) -> Option<Operand>) {
    for stmt in &mut block.stmts {
        substitute_stmt(stmt, f);
    }
    for y in &mut block.yields {
        if let Some(new) = y.as_var().and_then(f) {
            *y = new;
        }
    }
}

/// [`substitute_block`] for one statement and the blocks nested in it.
pub fn substitute_stmt(stmt: &mut Stmt, f: &dyn Fn(Var) -> Option<Operand>) {
    let operand = |o: &mut Operand| {
        if let Some(new) = o.as_var().and_then(f) {
            *o = new;
        }
    };
    let rename = |v: &mut Var| {
        if let Some(Operand::Var(new)) = f(*v) {
            *v = new;
        }
    };
    if let Some(expr) = stmt.expr_mut() {
        expr.map_vars(&mut |v| f(v).unwrap_or(Operand::Var(v)));
    }
    for o in stmt.operands_mut() {
        operand(o);
    }
    // Arrays, accumulators and tapes are named, not passed as operands.
    match stmt {
        Stmt::Store { array, .. } => rename(array),
        Stmt::AccumIndex {
            target: Target::Var(v),
            ..
        } => rename(v),
        Stmt::Accum { var, .. } | Stmt::Assign { var, .. } => rename(var),
        Stmt::Push { tape, .. } | Stmt::Pop { tape, .. } => rename(tape),
        // The forward values a reverse loop's copies stand for follow
        // the forward loop's variables when those are renamed.
        Stmt::Loop(l) => {
            if let Some(r) = &mut l.reverse_of {
                r.copies.retain_mut(|(_, orig)| match f(*orig) {
                    Some(Operand::Var(new)) => {
                        *orig = new;
                        true
                    }
                    Some(_) => false,
                    None => true,
                });
            }
        }
        _ => {}
    }
    for b in stmt.blocks_mut() {
        substitute_block(b, f);
    }
}

// ---------------------------------------------------------------------------
// Display: a compact, stable text form for unit tests and debugging.

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

fn tokens(t: &impl ToTokens) -> String {
    let ts: TokenStream = t.to_token_stream();
    ts.to_string().replace(' ', "")
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Var(v) => write!(f, "{v}"),
            Operand::Float(c) => write!(f, "{:?}", c.value),
            Operand::Lit(l) => write!(f, "{}", tokens(l)),
            Operand::Path(p) => write!(f, "{}", tokens(p)),
            Operand::Default => write!(f, "default"),
        }
    }
}

fn list(items: &[Operand]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Use(a) => write!(f, "{a}"),
            Expr::Unary(UnOp::Neg, a) => write!(f, "-{a}"),
            Expr::Unary(UnOp::Not, a) => write!(f, "!{a}"),
            Expr::Binary(op, a, b) => write!(f, "{a} {} {b}", op.symbol()),
            Expr::Prim { rule, args, .. } => write!(f, "{}({})", rule.name, list(args)),
            Expr::Cast { operand, ty } => write!(f, "{operand} as {}", tokens(ty)),
            Expr::Call { func, args } => write!(f, "{}({})", tokens(func), list(args)),
            Expr::DiffCall { func, args, .. } => write!(f, "diff {}({})", tokens(func), list(args)),
            Expr::GradCall { func, args } => write!(f, "grad {}({})", tokens(func), list(args)),
            Expr::HvpCall { func, args, dirs } => {
                write!(f, "hvp {}({}; {})", tokens(func), list(args), list(dirs))
            }
            Expr::ArgGrad { grad, index, .. } => write!(f, "{grad}.arg{index}"),
            Expr::Method {
                receiver,
                method,
                args,
            } => write!(f, "{receiver}.{method}({})", list(args)),
            Expr::Field { base, member } => write!(f, "{base}.{}", tokens(member)),
            Expr::Index { array, index } => write!(f, "{array}[{}]", list(index)),
            Expr::Len(array) => write!(f, "{array}.len()"),
            Expr::Ref(o) => write!(f, "&{o}"),
            Expr::Matches { operand, pat } => write!(f, "matches({operand}, {})", tokens(pat)),
        }
    }
}

impl Block {
    fn fmt_indented(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        for stmt in &self.stmts {
            match stmt {
                Stmt::Let { var, expr } => writeln!(f, "{pad}{var} = {expr}")?,
                Stmt::LetTuple { vars, expr } => {
                    let names: Vec<String> = vars.iter().map(ToString::to_string).collect();
                    writeln!(f, "{pad}({}) = {expr}", names.join(", "))?
                }
                Stmt::DeclMut { var, expr } => writeln!(f, "{pad}mut {var} = {expr}")?,
                Stmt::Accum { var, expr } => writeln!(f, "{pad}{var} += {expr}")?,
                Stmt::AccumGrad { param, value, dot } => {
                    let grad = if *dot { "grad_dot" } else { "grad" };
                    writeln!(f, "{pad}{grad}[{param}] += {value}")?
                }
                Stmt::If {
                    cond,
                    then_block,
                    else_block,
                    outs,
                } => {
                    let names: Vec<String> = outs.iter().map(ToString::to_string).collect();
                    writeln!(f, "{pad}({}) = if {cond} {{", names.join(", "))?;
                    then_block.fmt_indented(f, depth + 1)?;
                    writeln!(f, "{pad}}} else {{")?;
                    else_block.fmt_indented(f, depth + 1)?;
                    writeln!(f, "{pad}}}")?;
                }
                Stmt::Loop(l) => {
                    let outs: Vec<String> = l
                        .carried
                        .iter()
                        .map(|c| format!("{}={}->{}", c.phi, c.init, c.out))
                        .collect();
                    let head = match &l.kind {
                        LoopKind::For { var, range } => format!(
                            "for {var} in {}..{}{}{}{}",
                            range.start,
                            if range.inclusive { "=" } else { "" },
                            range.end,
                            range
                                .step
                                .as_ref()
                                .map(|s| format!(" step {s}"))
                                .unwrap_or_default(),
                            if range.rev { " rev" } else { "" }
                        ),
                        LoopKind::Loop => "loop".to_string(),
                        LoopKind::Times(n) => format!("times {n}"),
                    };
                    let count = l.count.map(|c| format!(" count {c}")).unwrap_or_default();
                    writeln!(f, "{pad}{head} [{}]{count} {{", outs.join(", "))?;
                    l.body.fmt_indented(f, depth + 1)?;
                    writeln!(f, "{pad}}}")?;
                }
                Stmt::LetArray { var, init } => match init {
                    ArrayInit::Repeat { fill, lens } => {
                        let lens: Vec<String> = lens.iter().map(tokens).collect();
                        writeln!(f, "{pad}{var} = [{fill}; {}]", lens.join(", "))?
                    }
                    ArrayInit::List(items) => writeln!(f, "{pad}{var} = [{}]", list(items))?,
                },
                Stmt::Store {
                    array,
                    index,
                    value,
                } => writeln!(f, "{pad}{array}[{}] = {value}", list(index))?,
                Stmt::AccumIndex {
                    target,
                    index,
                    expr,
                } => {
                    let target = match target {
                        Target::Var(v) => v.to_string(),
                        Target::Grad(p) => format!("grad[{p}]"),
                        Target::GradDot(p) => format!("grad_dot[{p}]"),
                    };
                    writeln!(f, "{pad}{target}[{}] += {expr}", list(index))?
                }
                Stmt::Assign { var, expr } => writeln!(f, "{pad}{var} := {expr}")?,
                Stmt::TapeNew { tape } => writeln!(f, "{pad}{tape} = tape")?,
                Stmt::Push { tape, values } => writeln!(f, "{pad}push {tape} ({})", list(values))?,
                Stmt::Pop { tape, vars } => {
                    let names: Vec<String> = vars.iter().map(ToString::to_string).collect();
                    writeln!(f, "{pad}({}) = pop {tape}", names.join(", "))?
                }
                Stmt::PrepareGrad { param, dot } => {
                    let grad = if *dot { "grad_dot" } else { "grad" };
                    writeln!(f, "{pad}prepare {grad}[{param}]")?
                }
            }
        }
        if !self.yields.is_empty() {
            writeln!(f, "{pad}yield {}", list(&self.yields))?;
        }
        Ok(())
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_indented(f, 0)
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| format!("{}{}", p.var, if p.wrt { "*" } else { "" }))
            .collect();
        writeln!(f, "fn({}) {{", params.join(", "))?;
        self.body.fmt_indented(f, 1)?;
        writeln!(f, "}}")
    }
}
