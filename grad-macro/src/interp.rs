//! A test-only interpreter of the IR, generic over `f32` and `f64`: runs the
//! primal and the transformed IR so that tests can compare the gradient a
//! pass produces with finite differences without going through rustc.
//! It covers what the passes produce: scalars, arrays, branches, loops and
//! tapes (calls of other functions are not interpreted).

use std::collections::HashMap;

use grad_core::Float;

use crate::ir::{ArrayInit, BinOp, Block, Expr, Func, LoopKind, Operand, Stmt, Target, UnOp, Var};
use crate::rules::Rule;

/// The float types the interpreter runs in.
pub trait Num: Float {
    fn prim(rule: &Rule, args: &[Self]) -> Self;
    fn from_i64(i: i64) -> Self;
}

impl Num for f64 {
    fn prim(rule: &Rule, args: &[f64]) -> f64 {
        (rule.eval_f64)(args)
    }
    fn from_i64(i: i64) -> f64 {
        i as f64
    }
}

impl Num for f32 {
    fn prim(rule: &Rule, args: &[f32]) -> f32 {
        (rule.eval_f32)(args)
    }
    fn from_i64(i: i64) -> f32 {
        i as f32
    }
}

/// A value: a scalar, an array (nested for rank 2), or a tape.
#[derive(Clone, Debug, PartialEq)]
pub enum Val<T> {
    F(T),
    I(i64),
    B(bool),
    Arr(Vec<Val<T>>),
    Tape(Vec<Vec<Val<T>>>),
}

impl<T: Num> Val<T> {
    fn f(&self) -> T {
        match self {
            Val::F(x) => *x,
            Val::I(i) => T::from_i64(*i),
            Val::B(b) => T::from_f64(if *b { 1.0 } else { 0.0 }),
            other => panic!("interpreter: expected a number, got {other:?}"),
        }
    }
    fn i(&self) -> i64 {
        match self {
            Val::I(i) => *i,
            Val::F(x) => x.to_f64() as i64,
            Val::B(b) => *b as i64,
            other => panic!("interpreter: expected an integer, got {other:?}"),
        }
    }
    fn b(&self) -> bool {
        match self {
            Val::B(b) => *b,
            other => panic!("interpreter: expected a bool, got {other:?}"),
        }
    }

    /// The same shape, all zeros.
    fn zeros_like(&self) -> Val<T> {
        match self {
            Val::Arr(items) => Val::Arr(items.iter().map(Val::zeros_like).collect()),
            _ => Val::F(T::ZERO),
        }
    }

    fn flatten_into(&self, out: &mut Vec<T>) {
        match self {
            Val::Arr(items) => items.iter().for_each(|i| i.flatten_into(out)),
            other => out.push(other.f()),
        }
    }

    fn element(&mut self, index: &[usize]) -> &mut Val<T> {
        let mut v = self;
        for &i in index {
            v = match v {
                Val::Arr(items) => &mut items[i],
                other => panic!("interpreter: indexing {other:?}"),
            };
        }
        v
    }
}

/// `into += add`, element by element for arrays (a fixed-size array
/// parameter's gradient summed in a local array).
fn add_into<T: Num>(into: &mut Val<T>, add: &Val<T>) {
    match (into, add) {
        (Val::Arr(into), Val::Arr(add)) => {
            for (a, b) in into.iter_mut().zip(add) {
                add_into(a, b);
            }
        }
        (into, add) => *into = Val::F(into.f() + add.f()),
    }
}

struct Machine<T> {
    env: HashMap<Var, Val<T>>,
    grads: Vec<Val<T>>,
    /// The gradient's tangent (`AccumGrad` with `dot`).
    grad_dots: Vec<Val<T>>,
}

/// What [`run_yields`] gives: every value the body yields, and the gradient
/// and its tangent accumulated, flattened as [`run`] flattens them.
pub struct Run<T> {
    pub yields: Vec<Val<T>>,
    pub grad: Vec<T>,
    pub grad_dot: Vec<T>,
}

/// Runs `func` on `args` (one per parameter); returns the value and, for a
/// `_backward` IR, the gradient added into every parameter, flattened in
/// parameter order (arrays row-major).
pub fn run<T: Num>(func: &Func, args: &[Val<T>]) -> (T, Vec<T>) {
    let mut m = Machine {
        env: HashMap::new(),
        grads: args.iter().map(Val::zeros_like).collect(),
        grad_dots: args.iter().map(Val::zeros_like).collect(),
    };
    for (p, a) in func.params.iter().zip(args) {
        m.env.insert(p.var, a.clone());
    }
    let out = m.block(&func.body);
    let mut flat = vec![];
    for g in &m.grads {
        g.flatten_into(&mut flat);
    }
    (out[0].f(), flat)
}

/// Runs `func` with `args` for its parameters and `extra` bindings (the
/// tangent parameters of a forward-mode function).
pub fn run_yields<T: Num>(func: &Func, args: &[Val<T>], extra: &[(Var, Val<T>)]) -> Run<T> {
    let mut m = Machine {
        env: HashMap::new(),
        grads: args.iter().map(Val::zeros_like).collect(),
        grad_dots: args.iter().map(Val::zeros_like).collect(),
    };
    for (p, a) in func.params.iter().zip(args) {
        m.env.insert(p.var, a.clone());
    }
    for (v, a) in extra {
        m.env.insert(*v, a.clone());
    }
    let yields = m.block(&func.body);
    let flatten = |grads: &[Val<T>]| {
        let mut flat = vec![];
        for g in grads {
            g.flatten_into(&mut flat);
        }
        flat
    };
    Run {
        yields,
        grad: flatten(&m.grads),
        grad_dot: flatten(&m.grad_dots),
    }
}

impl<T: Num> Machine<T> {
    fn operand(&self, o: &Operand) -> Val<T> {
        match o {
            Operand::Var(v) => self
                .env
                .get(v)
                .cloned()
                .unwrap_or_else(|| panic!("interpreter: {v} read before it is defined")),
            Operand::Float(c) => Val::F(T::from_f64(c.value)),
            Operand::Lit(syn::Lit::Int(i)) => Val::I(i.base10_parse().unwrap_or(0)),
            Operand::Lit(syn::Lit::Bool(b)) => Val::B(b.value),
            Operand::Path(p) => {
                let last = p
                    .segments
                    .last()
                    .map(|s| s.ident.to_string())
                    .unwrap_or_default();
                let value = match last.as_str() {
                    "LN_2" => std::f64::consts::LN_2,
                    "LN_10" => std::f64::consts::LN_10,
                    "PI" => std::f64::consts::PI,
                    "E" => std::f64::consts::E,
                    "NEG_INFINITY" => f64::NEG_INFINITY,
                    "INFINITY" => f64::INFINITY,
                    other => panic!("interpreter: unknown constant {other}"),
                };
                Val::F(T::from_f64(value))
            }
            Operand::Default => Val::F(T::ZERO),
            other => panic!("interpreter: unsupported operand {other}"),
        }
    }

    fn indices(&self, index: &[Operand]) -> Vec<usize> {
        index.iter().map(|i| self.operand(i).i() as usize).collect()
    }

    fn expr(&self, e: &Expr) -> Val<T> {
        let get = |o: &Operand| self.operand(o);
        match e {
            Expr::Use(o) | Expr::Ref(o) => get(o),
            Expr::Unary(UnOp::Neg, o) => match get(o) {
                Val::I(i) => Val::I(-i),
                v => Val::F(-v.f()),
            },
            Expr::Unary(UnOp::Not, o) => Val::B(!get(o).b()),
            Expr::Binary(op, a, b) => {
                let (a, b) = (get(a), get(b));
                if let (Val::I(x), Val::I(y)) = (&a, &b) {
                    let (x, y) = (*x, *y);
                    return match op {
                        BinOp::Add => Val::I(x + y),
                        BinOp::Sub => Val::I(x - y),
                        BinOp::Mul => Val::I(x * y),
                        BinOp::Div => Val::I(x / y),
                        BinOp::Rem => Val::I(x % y),
                        BinOp::Lt => Val::B(x < y),
                        BinOp::Le => Val::B(x <= y),
                        BinOp::Gt => Val::B(x > y),
                        BinOp::Ge => Val::B(x >= y),
                        BinOp::Eq => Val::B(x == y),
                        BinOp::Ne => Val::B(x != y),
                        other => panic!("interpreter: integer {}", other.symbol()),
                    };
                }
                let (x, y) = (a.f(), b.f());
                match op {
                    BinOp::Add => Val::F(x + y),
                    BinOp::Sub => Val::F(x - y),
                    BinOp::Mul => Val::F(x * y),
                    BinOp::Div => Val::F(x / y),
                    BinOp::Lt => Val::B(x < y),
                    BinOp::Le => Val::B(x <= y),
                    BinOp::Gt => Val::B(x > y),
                    BinOp::Ge => Val::B(x >= y),
                    BinOp::Eq => Val::B(x == y),
                    BinOp::Ne => Val::B(x != y),
                    other => panic!("interpreter: float {}", other.symbol()),
                }
            }
            Expr::Prim { rule, args, .. } => {
                let vals: Vec<Val<T>> = args.iter().map(get).collect();
                if vals.iter().all(|v| matches!(v, Val::I(_))) && rule.name == "min" {
                    return Val::I(vals[0].i().min(vals[1].i()));
                }
                let args: Vec<T> = vals.iter().map(Val::f).collect();
                Val::F(T::prim(rule, &args))
            }
            Expr::Cast { operand, ty } => {
                let v = get(operand);
                match crate::lower::classify(ty) {
                    crate::ir::Ty::Int => Val::I(v.i()),
                    _ => Val::F(v.f()),
                }
            }
            Expr::Index { array, index } => {
                let mut a = get(&Operand::Var(*array));
                a.element(&self.indices(index)).clone()
            }
            // The one method the passes emit (`lanes.rs`: an empty range's
            // length).
            Expr::Method {
                receiver,
                method,
                args,
            } if method == "saturating_sub" => {
                Val::I((get(receiver).i() - get(&args[0]).i()).max(0))
            }
            Expr::Len(array) => match get(&Operand::Var(*array)) {
                Val::Arr(items) => Val::I(items.len() as i64),
                other => panic!("interpreter: len of {other:?}"),
            },
            other => panic!("interpreter: unsupported expression {other}"),
        }
    }

    fn block(&mut self, b: &Block) -> Vec<Val<T>> {
        for s in &b.stmts {
            self.stmt(s);
        }
        b.yields.iter().map(|y| self.operand(y)).collect()
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Let { var, expr } | Stmt::DeclMut { var, expr } | Stmt::Assign { var, expr } => {
                let v = self.expr(expr);
                self.env.insert(*var, v);
            }
            Stmt::Accum { var, expr } => {
                let add = self.expr(expr).f();
                let current = self.env.get(var).map_or(T::ZERO, |v| v.f());
                self.env.insert(*var, Val::F(current + add));
            }
            Stmt::AccumGrad { param, value, dot } => {
                let add = self.operand(value);
                let grads = if *dot {
                    &mut self.grad_dots
                } else {
                    &mut self.grads
                };
                add_into(&mut grads[*param], &add);
            }
            Stmt::AccumIndex {
                target,
                index,
                expr,
            } => {
                let add = self.expr(expr).f();
                let index = self.indices(index);
                let slot = match target {
                    Target::Var(v) => self.env.get_mut(v).expect("adjoint array").element(&index),
                    Target::Grad(p) => self.grads[*p].element(&index),
                    Target::GradDot(p) => self.grad_dots[*p].element(&index),
                };
                *slot = Val::F(slot.f() + add);
            }
            Stmt::PrepareGrad { .. } => {}
            Stmt::LetArray { var, init } => {
                let value = match init {
                    ArrayInit::List(items) => {
                        Val::Arr(items.iter().map(|i| self.operand(i)).collect())
                    }
                    ArrayInit::Repeat { fill, lens } => {
                        let mut v = self.operand(fill);
                        for len in lens.iter().rev() {
                            let n: usize = match len {
                                syn::Expr::Lit(syn::ExprLit {
                                    lit: syn::Lit::Int(i),
                                    ..
                                }) => i.base10_parse().unwrap_or(0),
                                other => {
                                    panic!("interpreter: array length {}", quote::quote!(#other))
                                }
                            };
                            v = Val::Arr(vec![v; n]);
                        }
                        v
                    }
                };
                self.env.insert(*var, value);
            }
            Stmt::Store {
                array,
                index,
                value,
            } => {
                let value = self.operand(value);
                let index = self.indices(index);
                *self.env.get_mut(array).expect("array").element(&index) = value;
            }
            Stmt::TapeNew { tape } => {
                self.env.insert(*tape, Val::Tape(vec![]));
            }
            Stmt::Push { tape, values } => {
                let values: Vec<Val<T>> = values.iter().map(|v| self.operand(v)).collect();
                match self.env.get_mut(tape) {
                    Some(Val::Tape(t)) => t.push(values),
                    other => panic!("interpreter: push onto {other:?}"),
                }
            }
            Stmt::Pop { tape, vars } => {
                let values = match self.env.get_mut(tape) {
                    Some(Val::Tape(t)) => t.pop().expect("a tape is popped as often as pushed"),
                    other => panic!("interpreter: pop from {other:?}"),
                };
                for (v, value) in vars.iter().zip(values) {
                    self.env.insert(*v, value);
                }
            }
            Stmt::If {
                cond,
                then_block,
                else_block,
                outs,
            } => {
                let taken = if self.operand(cond).b() {
                    then_block
                } else {
                    else_block
                };
                let values = self.block(taken);
                for (o, v) in outs.iter().zip(values) {
                    self.env.insert(*o, v);
                }
            }
            Stmt::Loop(l) => {
                for c in &l.carried {
                    let init = self.operand(&c.init);
                    self.env.insert(c.phi, init);
                }
                let indices: Option<Vec<i64>> = match &l.kind {
                    LoopKind::For { range, .. } => {
                        let (a, b) = (self.operand(&range.start).i(), self.operand(&range.end).i());
                        let end = if range.inclusive { b + 1 } else { b };
                        let step = range.step.as_ref().map_or(1, |s| self.operand(s).i()) as usize;
                        let mut v: Vec<i64> = (a..end).step_by(step).collect();
                        if range.rev {
                            v.reverse();
                        }
                        Some(v)
                    }
                    LoopKind::Times(n) => Some((0..self.operand(n).i()).collect()),
                    LoopKind::Loop => None,
                };
                let mut count = 0i64;
                let mut k = 0;
                loop {
                    if let Some(ix) = &indices {
                        let Some(&i) = ix.get(k) else { break };
                        if let LoopKind::For { var, .. } = &l.kind {
                            self.env.insert(*var, Val::I(i));
                        }
                    }
                    k += 1;
                    count += 1;
                    let yields = self.block(&l.body);
                    for (c, next) in l.carried.iter().zip(&yields[1..]) {
                        self.env.insert(c.phi, next.clone());
                    }
                    if !yields[0].b() {
                        break;
                    }
                    assert!(count < 10_000_000, "interpreter: runaway loop");
                }
                for c in &l.carried {
                    let v = self.env[&c.phi].clone();
                    self.env.insert(c.out, v);
                }
                if let Some(n) = l.count {
                    self.env.insert(n, Val::I(count));
                }
            }
            other => panic!("interpreter: unsupported statement {other:?}"),
        }
    }
}
