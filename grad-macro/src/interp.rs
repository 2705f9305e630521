//! A test-only interpreter of the IR, generic over `f32` and `f64`: runs the
//! primal and the transformed IR so that tests can compare the gradient a
//! pass produces with finite differences without going through rustc.

use std::collections::HashMap;

use grad_core::Float;

use crate::ir::{BinOp, Block, Expr, Func, Operand, Stmt, UnOp, Var};
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

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val<T> {
    F(T),
    I(i64),
    B(bool),
}

impl<T: Num> Val<T> {
    fn f(self) -> T {
        match self {
            Val::F(x) => x,
            Val::I(i) => T::from_i64(i),
            Val::B(b) => T::from_f64(if b { 1.0 } else { 0.0 }),
        }
    }
    fn i(self) -> i64 {
        match self {
            Val::I(i) => i,
            Val::F(x) => x.to_f64() as i64,
            Val::B(b) => b as i64,
        }
    }
    fn b(self) -> bool {
        match self {
            Val::B(b) => b,
            other => panic!("interpreter: expected a bool, got {other:?}"),
        }
    }
}

/// Runs `func` on `args` (one per parameter); returns the value and, for a
/// `_backward` IR, the gradient added per parameter.
pub fn run<T: Num>(func: &Func, args: &[Val<T>]) -> (T, Vec<T>) {
    let mut env: HashMap<Var, Val<T>> = HashMap::new();
    for (p, a) in func.params.iter().zip(args) {
        env.insert(p.var, *a);
    }
    let mut grad = vec![T::ZERO; func.params.len()];
    let out = block(&func.body, &mut env, &mut grad);
    (out[0].f(), grad)
}

fn operand<T: Num>(o: &Operand, env: &HashMap<Var, Val<T>>) -> Val<T> {
    match o {
        Operand::Var(v) => *env
            .get(v)
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
                other => panic!("interpreter: unknown constant {other}"),
            };
            Val::F(T::from_f64(value))
        }
        other => panic!("interpreter: unsupported operand {other}"),
    }
}

fn expr<T: Num>(e: &Expr, env: &HashMap<Var, Val<T>>) -> Val<T> {
    let get = |o: &Operand| operand(o, env);
    match e {
        Expr::Use(o) => get(o),
        Expr::Unary(UnOp::Neg, o) => match get(o) {
            Val::I(i) => Val::I(-i),
            v => Val::F(-v.f()),
        },
        Expr::Unary(UnOp::Not, o) => Val::B(!get(o).b()),
        Expr::Binary(op, a, b) => {
            let (a, b) = (get(a), get(b));
            if let (Val::I(x), Val::I(y)) = (a, b) {
                return match op {
                    BinOp::Add => Val::I(x + y),
                    BinOp::Sub => Val::I(x - y),
                    BinOp::Mul => Val::I(x * y),
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
            let args: Vec<T> = args.iter().map(|a| get(a).f()).collect();
            Val::F(T::prim(rule, &args))
        }
        Expr::Cast { operand, ty } => {
            let v = get(operand);
            match crate::lower::classify(ty) {
                crate::ir::Ty::Int => Val::I(v.i()),
                _ => Val::F(v.f()),
            }
        }
        other => panic!("interpreter: unsupported expression {other}"),
    }
}

fn block<T: Num>(b: &Block, env: &mut HashMap<Var, Val<T>>, grad: &mut [T]) -> Vec<Val<T>> {
    for s in &b.stmts {
        match s {
            Stmt::Let { var, expr: e } | Stmt::DeclMut { var, expr: e } => {
                let v = expr(e, env);
                env.insert(*var, v);
            }
            Stmt::Accum { var, expr: e } => {
                let add = expr(e, env).f();
                let current = env.get(var).map_or(T::ZERO, |v| v.f());
                env.insert(*var, Val::F(current + add));
            }
            Stmt::AccumGrad { param, value } => grad[*param] += operand(value, env).f(),
            Stmt::If {
                cond,
                then_block,
                else_block,
                outs,
            } => {
                let taken = if operand(cond, env).b() {
                    then_block
                } else {
                    else_block
                };
                let values = block(taken, env, grad);
                for (o, v) in outs.iter().zip(values) {
                    env.insert(*o, v);
                }
            }
            other => panic!("interpreter: unsupported statement {other:?}"),
        }
    }
    b.yields
        .iter()
        .map(|y| match y {
            Operand::Default => Val::F(T::ZERO),
            other => operand(other, env),
        })
        .collect()
}
