//! Forward mode: tangents pushed through the IR alongside the values.
//!
//! Every variable whose value depends on a seeded input gets a *tangent*
//! variable, its directional derivative, computed right after it from the
//! same rule table the reverse pass reads: for `v = f(a, b)`,
//! `v̇ = ∂f/∂a · ȧ + ∂f/∂b · ḃ` (a select partial goes through `gate`, so an
//! infinite tangent does not turn a closed branch into NaN, as in reverse
//! mode). Branches yield their outputs' tangents, loops carry them, arrays
//! have tangent arrays, tapes record tangents beside the values.
//!
//! The pass is written over the whole IR, not only what lowering produces,
//! because it runs twice:
//!
//! * on the primal, seeded with one tangent per differentiated parameter, it
//!   gives `f_jvp` (the value and the directional derivative);
//! * on the reverse-mode IR (`f_backward`'s), it gives forward-over-reverse:
//!   the tangent of the gradient in direction `v` is the Hessian times `v`
//!   (`f_hvp`, and `f_hessian` column by column). There the accumulations
//!   into the gradient (`grad.w += …`) get tangent accumulations into the
//!   Hessian-vector product.

use std::collections::{HashMap, HashSet};

use proc_macro2::Span;

use crate::ir::{
    walk_stmts, ArrayInit, BinOp, Block, CallForm, Carried, Expr, Func, Loop, Operand, Origin,
    Stmt, Target, Ty, UnOp, Var, VarInfo,
};
use crate::rules::{self, Formula};

/// An error at a span, with its message.
pub type Error = (Span, String);

/// The result of [`forward`]: the transformed function and, per seeded
/// variable (in the order given), its tangent variable. Seeded parameters'
/// tangents are new parameters of the companion.
pub struct Forward {
    pub func: Func,
    pub tangents: Vec<Var>,
}

/// Differentiates `func` in forward mode with respect to `seeds`. The body's
/// yields gain the tangent of each yield (`0.0` where it has none), after
/// the values; `AccumGrad` statements gain a tangent accumulation into
/// output `1` (see [`Stmt::AccumGrad`]).
pub fn forward(func: &Func, seeds: &[Var]) -> Result<Forward, Error> {
    let (varying, tape_slots) = varying_vars(func, seeds);
    let mut pass = Pass {
        func: func.clone(),
        varying,
        tape_slots,
        tangents: HashMap::new(),
    };
    pass.func.derivative_vars_from = Some(
        func.derivative_vars_from
            .unwrap_or(func.vars.len() as u32)
            .min(func.vars.len() as u32),
    );
    let tangents = seeds.iter().map(|&s| pass.tangent(s)).collect();
    let body = pass.block(&func.body)?;
    let mut out = pass.func;
    out.body = body;
    Ok(Forward {
        func: out,
        tangents,
    })
}

struct Pass {
    func: Func,
    varying: HashSet<Var>,
    /// Per tape, the positions of its records that vary.
    tape_slots: HashMap<Var, HashSet<usize>>,
    tangents: HashMap<Var, Var>,
}

impl Pass {
    /// The tangent variable of `var`, created on first use.
    fn tangent(&mut self, var: Var) -> Var {
        if let Some(&t) = self.tangents.get(&var) {
            return t;
        }
        let t = self.func.derived_var(var, Origin::Tangent(var));
        self.tangents.insert(var, t);
        t
    }

    /// The positions of `tape`'s records whose tangents it records too.
    fn slots(&self, tape: Var) -> Vec<usize> {
        let mut slots: Vec<usize> = self
            .tape_slots
            .get(&tape)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        slots.sort_unstable();
        slots
    }

    /// The tangent of `operand`; `None` if it is constant.
    fn dot(&mut self, operand: &Operand) -> Option<Operand> {
        let var = operand.as_var().filter(|v| self.varying.contains(v))?;
        Some(Operand::Var(self.tangent(var)))
    }

    /// The tangent of `operand`, `0.0` if it is constant.
    fn dot_or_zero(&mut self, operand: &Operand) -> Operand {
        self.dot(operand).unwrap_or_else(|| Operand::float(0.0))
    }

    fn temp(&mut self, stmts: &mut Vec<Stmt>, expr: Expr, ty: Ty) -> Operand {
        let var = self.func.new_var(VarInfo::scalar(
            "t",
            ty,
            Origin::Temp,
            false,
            Span::call_site(),
        ));
        stmts.push(Stmt::Let { var, expr });
        Operand::Var(var)
    }

    fn block(&mut self, block: &Block) -> Result<Block, Error> {
        let mut stmts = vec![];
        for stmt in &block.stmts {
            self.stmt(stmt, &mut stmts)?;
        }
        let mut yields = block.yields.clone();
        Ok(Block {
            stmts,
            yields: {
                let dots: Vec<Operand> = block.yields.iter().map(|y| self.dot_or_zero(y)).collect();
                yields.extend(dots);
                yields
            },
        })
    }

    /// Appends `stmt` and its tangent code to `out`.
    fn stmt(&mut self, stmt: &Stmt, out: &mut Vec<Stmt>) -> Result<(), Error> {
        match stmt {
            Stmt::Let { var, expr } => self.assignment(*var, expr, out),
            Stmt::DeclMut { var, expr } => {
                out.push(stmt.clone());
                if self.varying.contains(var) {
                    let dot = self.expr_dot(expr, None, out)?;
                    let t = self.tangent(*var);
                    out.push(Stmt::DeclMut {
                        var: t,
                        expr: Expr::Use(dot),
                    });
                }
                Ok(())
            }
            Stmt::Accum { var, expr } | Stmt::Assign { var, expr } => {
                let dot = if self.varying.contains(var) {
                    Some(self.expr_dot(expr, None, out)?)
                } else {
                    None
                };
                out.push(stmt.clone());
                if let Some(dot) = dot {
                    let t = self.tangent(*var);
                    out.push(match stmt {
                        Stmt::Accum { .. } => Stmt::Accum {
                            var: t,
                            expr: Expr::Use(dot),
                        },
                        _ => Stmt::Assign {
                            var: t,
                            expr: Expr::Use(dot),
                        },
                    });
                }
                Ok(())
            }
            Stmt::AccumGrad { param, value, dot } => {
                out.push(stmt.clone());
                if *dot {
                    return Err(internal("a third derivative"));
                }
                if let Some(tangent) = self.dot(value) {
                    out.push(Stmt::AccumGrad {
                        param: *param,
                        value: tangent,
                        dot: true,
                    });
                }
                Ok(())
            }
            Stmt::AccumIndex {
                target,
                index,
                expr,
            } => {
                let dot = match self.target_dot(*target) {
                    Some(t) if self.expr_varies(expr) => Some((t, self.expr_dot(expr, None, out)?)),
                    _ => None,
                };
                out.push(stmt.clone());
                if let Some((target, dot)) = dot {
                    out.push(Stmt::AccumIndex {
                        target,
                        index: index.clone(),
                        expr: Expr::Use(dot),
                    });
                }
                Ok(())
            }
            Stmt::If {
                cond,
                then_block,
                else_block,
                outs,
            } => {
                let mut then_block = self.block(then_block)?;
                let mut else_block = self.block(else_block)?;
                // The blocks yield their values, then one tangent per value;
                // keep the tangents of the outputs that vary.
                let n = outs.len();
                let mut outs = outs.clone();
                let mut then_dots = then_block.yields.split_off(n);
                let mut else_dots = else_block.yields.split_off(n);
                for (k, &o) in outs.clone().iter().enumerate() {
                    if self.varying.contains(&o) {
                        outs.push(self.tangent(o));
                        then_block
                            .yields
                            .push(std::mem::replace(&mut then_dots[k], Operand::float(0.0)));
                        else_block
                            .yields
                            .push(std::mem::replace(&mut else_dots[k], Operand::float(0.0)));
                    }
                }
                out.push(Stmt::If {
                    cond: cond.clone(),
                    then_block,
                    else_block,
                    outs,
                });
                Ok(())
            }
            Stmt::Loop(l) => self.loop_stmt(l, out),
            Stmt::LetArray { var, init } => {
                out.push(stmt.clone());
                if self.varying.contains(var) {
                    let init = match init {
                        ArrayInit::Repeat { fill, lens } => ArrayInit::Repeat {
                            fill: self.dot_or_zero(fill),
                            lens: lens.clone(),
                        },
                        ArrayInit::List(items) => {
                            ArrayInit::List(items.iter().map(|i| self.dot_or_zero(i)).collect())
                        }
                    };
                    let t = self.tangent(*var);
                    out.push(Stmt::LetArray { var: t, init });
                }
                Ok(())
            }
            Stmt::Store {
                array,
                index,
                value,
            } => {
                out.push(stmt.clone());
                if self.varying.contains(array) {
                    let value = self.dot_or_zero(value);
                    let t = self.tangent(*array);
                    out.push(Stmt::Store {
                        array: t,
                        index: index.clone(),
                        value,
                    });
                }
                Ok(())
            }
            Stmt::TapeNew { .. } => {
                out.push(stmt.clone());
                Ok(())
            }
            // A tape records the tangents of what it records, after the
            // values; `Pop` gets them back in the same order.
            Stmt::Push { tape, values } => {
                let mut values = values.clone();
                for k in self.slots(*tape) {
                    let dot = self.dot_or_zero(&values[k]);
                    values.push(dot);
                }
                out.push(Stmt::Push {
                    tape: *tape,
                    values,
                });
                Ok(())
            }
            Stmt::Pop { tape, vars } => {
                let mut vars = vars.clone();
                for k in self.slots(*tape) {
                    let dot = self.tangent(vars[k]);
                    vars.push(dot);
                }
                out.push(Stmt::Pop { tape: *tape, vars });
                Ok(())
            }
            Stmt::PrepareGrad { param, dot } => {
                if *dot {
                    return Err(internal("a third derivative"));
                }
                out.push(stmt.clone());
                out.push(Stmt::PrepareGrad {
                    param: *param,
                    dot: true,
                });
                Ok(())
            }
            // Forward over reverse through a call: the callee's gradient
            // varies with the arguments' tangents by the callee's Hessian
            // times them, which its hidden `__g_hvp_along` computes.
            Stmt::LetTuple {
                vars,
                expr: Expr::GradCall { func, args },
            } if vars.iter().any(|v| self.varying.contains(v)) => {
                let [value, grad] = vars.as_slice() else {
                    return Err((syn::spanned::Spanned::span(func), SECOND_ORDER_CALL.into()));
                };
                let (value, grad) = (*value, *grad);
                let dirs: Vec<Operand> = args.iter().map(|a| self.dot_or_zero(a)).collect();
                let grad_dot = self.tangent(grad);
                out.push(Stmt::LetTuple {
                    vars: vec![value, grad, grad_dot],
                    expr: Expr::HvpCall {
                        func: func.clone(),
                        args: args.clone(),
                        dirs,
                    },
                });
                if self.varying.contains(&value) {
                    let ty = self.func.info(value).ty;
                    let mut terms = vec![];
                    for (index, arg) in args.iter().enumerate() {
                        let Some(dot) = self.dot(arg) else { continue };
                        let partial = self.temp(
                            out,
                            Expr::ArgGrad {
                                grad,
                                index,
                                span: syn::spanned::Spanned::span(func),
                            },
                            ty,
                        );
                        terms.push(self.temp(out, Expr::Binary(BinOp::Mul, partial, dot), ty));
                    }
                    let sum = self.sum(terms, ty, out);
                    let t = self.tangent(value);
                    out.push(Stmt::Let {
                        var: t,
                        expr: Expr::Use(sum),
                    });
                }
                Ok(())
            }
            Stmt::LetTuple { vars, expr } => {
                if vars.iter().any(|v| self.varying.contains(v)) {
                    return Err((call_span(expr), SECOND_ORDER_CALL.into()));
                }
                out.push(Stmt::LetTuple {
                    vars: vars.clone(),
                    expr: expr.clone(),
                });
                Ok(())
            }
        }
    }

    fn target_dot(&mut self, target: Target) -> Option<Target> {
        match target {
            Target::Var(v) if self.varying.contains(&v) => Some(Target::Var(self.tangent(v))),
            Target::Var(_) => None,
            Target::Grad(p) => Some(Target::GradDot(p)),
            Target::GradDot(_) => None,
        }
    }

    fn expr_varies(&self, expr: &Expr) -> bool {
        expr_varies(&self.varying, expr)
    }

    /// `var = expr` and `var`'s tangent.
    fn assignment(&mut self, var: Var, expr: &Expr, out: &mut Vec<Stmt>) -> Result<(), Error> {
        if let Expr::DiffCall { func, args, spans } = expr {
            if self.varying.contains(&var) {
                return self.call(var, func, args, spans, out);
            }
        }
        out.push(Stmt::Let {
            var,
            expr: expr.clone(),
        });
        if !self.varying.contains(&var) {
            return Ok(());
        }
        let dot = self.expr_dot(expr, Some(var), out)?;
        let t = self.tangent(var);
        out.push(Stmt::Let {
            var: t,
            expr: Expr::Use(dot),
        });
        Ok(())
    }

    /// A call of another `#[differentiate]` function: its `_grad` companion
    /// gives the value and the gradient, and the tangent is the gradient
    /// times the arguments' tangents.
    fn call(
        &mut self,
        var: Var,
        func: &syn::Path,
        args: &[Operand],
        spans: &[Span],
        out: &mut Vec<Stmt>,
    ) -> Result<(), Error> {
        let info = self.func.info(var).clone();
        let grad = self.func.callee_grad_var(var);
        out.push(Stmt::LetTuple {
            vars: vec![var, grad],
            expr: Expr::GradCall {
                func: func.clone(),
                args: args.to_vec(),
            },
        });
        let mut terms = vec![];
        for (index, arg) in args.iter().enumerate() {
            let Some(dot) = self.dot(arg) else { continue };
            let span = spans.get(index).copied().unwrap_or(info.span);
            let partial = self.temp(out, Expr::ArgGrad { grad, index, span }, info.ty);
            terms.push(self.temp(out, Expr::Binary(BinOp::Mul, partial, dot), info.ty));
        }
        let sum = self.sum(terms, info.ty, out);
        let t = self.tangent(var);
        out.push(Stmt::Let {
            var: t,
            expr: Expr::Use(sum),
        });
        Ok(())
    }

    /// The tangent of `expr`, whose value is `value` when it has been bound
    /// (rules may refer to the result, `exp`'s partial is the value itself).
    fn expr_dot(
        &mut self,
        expr: &Expr,
        value: Option<Var>,
        out: &mut Vec<Stmt>,
    ) -> Result<Operand, Error> {
        let ty = match value {
            Some(v) => self.func.info(v).ty,
            None => expr_ty(&self.func, expr),
        };
        match expr {
            Expr::Use(a) => Ok(self.dot_or_zero(a)),
            Expr::Unary(UnOp::Neg, a) => match self.dot(a) {
                Some(d) => Ok(self.temp(out, Expr::Unary(UnOp::Neg, d), ty)),
                None => Ok(Operand::float(0.0)),
            },
            Expr::Binary(op, a, b) => match rules::for_binop(*op) {
                Some(rule) => {
                    let result = self.result_operand(expr, value, ty, out);
                    self.rule_dot(rule, &[a.clone(), b.clone()], &result, ty, out)
                }
                None => Ok(Operand::float(0.0)),
            },
            Expr::Prim { rule, args, .. } => {
                let result = self.result_operand(expr, value, ty, out);
                self.rule_dot(rule, args, &result, ty, out)
            }
            Expr::Cast { operand, ty: to } => match self.dot(operand) {
                Some(d) => Ok(self.temp(
                    out,
                    Expr::Cast {
                        operand: d,
                        ty: to.clone(),
                    },
                    ty,
                )),
                None => Ok(Operand::float(0.0)),
            },
            Expr::Index { array, index } if self.varying.contains(array) => {
                let t = self.tangent(*array);
                Ok(self.temp(
                    out,
                    Expr::Index {
                        array: t,
                        index: index.clone(),
                    },
                    ty,
                ))
            }
            Expr::Index { .. }
            | Expr::Call { .. }
            | Expr::Method { .. }
            | Expr::Field { .. }
            | Expr::Len(_)
            | Expr::Ref(_)
            | Expr::Matches { .. }
            | Expr::Unary(UnOp::Not, _) => Ok(Operand::float(0.0)),
            // A component of a callee's gradient: the same component of the
            // gradient's tangent (see the `LetTuple` of a `GradCall`).
            Expr::ArgGrad { grad, index, span } if self.varying.contains(grad) => {
                let grad = self.tangent(*grad);
                Ok(self.temp(
                    out,
                    Expr::ArgGrad {
                        grad,
                        index: *index,
                        span: *span,
                    },
                    ty,
                ))
            }
            Expr::ArgGrad { .. } => Ok(Operand::float(0.0)),
            Expr::DiffCall { .. } | Expr::GradCall { .. } | Expr::HvpCall { .. } => {
                Err((call_span(expr), SECOND_ORDER_CALL.into()))
            }
        }
    }

    /// The result of `expr` as an operand: the bound variable, or (for an
    /// expression not bound to a variable, as in `s += f(x)`) a temporary
    /// computing it again, which the simplifier shares with the original.
    fn result_operand(
        &mut self,
        expr: &Expr,
        value: Option<Var>,
        ty: Ty,
        out: &mut Vec<Stmt>,
    ) -> Operand {
        match value {
            Some(v) => Operand::Var(v),
            None => self.temp(out, expr.clone(), ty),
        }
    }

    /// `Σ ∂rule/∂arg_k · ȧrg_k` over the arguments that vary.
    fn rule_dot(
        &mut self,
        rule: &'static rules::Rule,
        args: &[Operand],
        result: &Operand,
        ty: Ty,
        out: &mut Vec<Stmt>,
    ) -> Result<Operand, Error> {
        let mut terms = vec![];
        for (index, arg) in args.iter().enumerate() {
            let Some(dot) = self.dot(arg) else { continue };
            let mut formula = Formula {
                func: &mut self.func,
                stmts: out,
                ty,
            };
            let Some(partial) = formula
                .partial(rule, index, args, result)
                .map_err(|e| (Span::call_site(), e))?
            else {
                continue;
            };
            let term = match rules::lookup("gate", CallForm::Helper) {
                Some(gate) if rule.is_select(index) => Expr::Prim {
                    rule: gate,
                    form: CallForm::Helper,
                    args: vec![partial, dot],
                    path: None,
                },
                _ => Expr::Binary(BinOp::Mul, partial, dot),
            };
            terms.push(self.temp(out, term, ty));
        }
        Ok(self.sum(terms, ty, out))
    }

    fn sum(&mut self, terms: Vec<Operand>, ty: Ty, out: &mut Vec<Stmt>) -> Operand {
        let mut terms = terms.into_iter();
        let Some(mut sum) = terms.next() else {
            return Operand::float(0.0);
        };
        for t in terms {
            sum = self.temp(out, Expr::Binary(BinOp::Add, sum, t), ty);
        }
        sum
    }

    fn loop_stmt(&mut self, l: &Loop, out: &mut Vec<Stmt>) -> Result<(), Error> {
        let mut body = self.block(&l.body)?;
        // The body yields its flag and the carried values, then a tangent for
        // each of those; keep the carried ones that vary.
        let n = l.body.yields.len();
        let dots = body.yields.split_off(n);
        let mut carried = l.carried.clone();
        for (j, c) in l.carried.iter().enumerate() {
            if !self.varying.contains(&c.phi) {
                continue;
            }
            let init = self.dot_or_zero(&c.init);
            let phi = self.tangent(c.phi);
            let out_t = self.tangent(c.out);
            carried.push(Carried {
                init,
                phi,
                out: out_t,
            });
            body.yields.push(dots[1 + j].clone());
        }
        out.push(Stmt::Loop(Box::new(Loop {
            kind: l.kind.clone(),
            carried,
            body,
            count: l.count,
            // Fusion has run on a reverse-mode IR before this pass, and its
            // records of recomputed copies know nothing of tangents.
            id: None,
            reverse_of: None,
        })));
        Ok(())
    }
}

/// A call whose result this pass cannot differentiate (a third derivative).
const SECOND_ORDER_CALL: &str =
    "grad cannot differentiate this call a third time; write the callee's computation in this function's body";

/// Where to report an error about a call: the callee's path, or the argument.
fn call_span(expr: &Expr) -> Span {
    match expr {
        Expr::DiffCall { func, .. } | Expr::GradCall { func, .. } | Expr::HvpCall { func, .. } => {
            syn::spanned::Spanned::span(func)
        }
        Expr::ArgGrad { span, .. } => *span,
        _ => Span::call_site(),
    }
}

fn internal(what: &str) -> Error {
    (
        Span::call_site(),
        format!("internal: forward mode reached {what}"),
    )
}

/// The float type of an expression's result, for temporaries.
fn expr_ty(func: &Func, expr: &Expr) -> Ty {
    let operands: Vec<&Operand> = match expr {
        Expr::Use(a) | Expr::Unary(_, a) => vec![a],
        Expr::Binary(_, a, b) => vec![a, b],
        Expr::Prim { args, .. } => args.iter().collect(),
        _ => vec![],
    };
    let tys = operands.into_iter().map(|o| func.operand_ty(o));
    match expr {
        Expr::Index { array, .. } => func
            .info(*array)
            .shape
            .as_ref()
            .map_or(Ty::Float, |s| s.elem),
        _ => Ty::join(tys),
    }
}

fn expr_varies(varying: &HashSet<Var>, expr: &Expr) -> bool {
    expr.vars().iter().any(|v| varying.contains(v))
}

/// The variables whose value depends on `seeds`, and per tape the positions
/// of its records that do: a forward data-flow analysis to a fixed point
/// (loops carry dependence around).
fn varying_vars(func: &Func, seeds: &[Var]) -> (HashSet<Var>, HashMap<Var, HashSet<usize>>) {
    let mut varying: HashSet<Var> = seeds.iter().copied().collect();
    // Tape positions that record a varying value.
    let mut tape_slots: HashMap<Var, HashSet<usize>> = HashMap::new();
    loop {
        let before = varying.len() + tape_slots.values().map(HashSet::len).sum::<usize>();
        let mut add = vec![];
        walk_stmts(&func.body, &mut |s| {
            let differentiable = |v: &Var| {
                let ty = func.info(*v).ty;
                ty.is_float() || ty == Ty::Array
            };
            match s {
                Stmt::Let { var, expr }
                | Stmt::DeclMut { var, expr }
                | Stmt::Accum { var, expr }
                | Stmt::Assign { var, expr }
                    if differentiable(var) && expr_varies(&varying, expr) =>
                {
                    add.push(*var);
                }
                // A callee's gradient varies with its arguments.
                Stmt::LetTuple {
                    vars,
                    expr: expr @ Expr::GradCall { .. },
                } if expr_varies(&varying, expr) => {
                    add.extend(vars.iter().copied());
                }
                Stmt::LetTuple { vars, expr } if expr_varies(&varying, expr) => {
                    add.extend(vars.iter().filter(|v| differentiable(v)));
                }
                Stmt::If {
                    then_block,
                    else_block,
                    outs,
                    ..
                } => {
                    for (k, o) in outs.iter().enumerate() {
                        let varies = |b: &Block| {
                            b.yields
                                .get(k)
                                .and_then(Operand::as_var)
                                .is_some_and(|v| varying.contains(&v))
                        };
                        if differentiable(o) && (varies(then_block) || varies(else_block)) {
                            add.push(*o);
                        }
                    }
                }
                Stmt::Loop(l) => {
                    for (j, c) in l.carried.iter().enumerate() {
                        let next = l.body.yields.get(1 + j).and_then(Operand::as_var);
                        let varies = c.init.as_var().is_some_and(|v| varying.contains(&v))
                            || next.is_some_and(|v| varying.contains(&v))
                            || varying.contains(&c.phi);
                        if varies && differentiable(&c.phi) {
                            add.push(c.phi);
                            add.push(c.out);
                        }
                    }
                }
                Stmt::LetArray { var, init } => {
                    let ops: Vec<&Operand> = match init {
                        ArrayInit::Repeat { fill, .. } => vec![fill],
                        ArrayInit::List(items) => items.iter().collect(),
                    };
                    if ops
                        .iter()
                        .any(|o| o.as_var().is_some_and(|v| varying.contains(&v)))
                    {
                        add.push(*var);
                    }
                }
                Stmt::Store { array, value, .. }
                    if value.as_var().is_some_and(|v| varying.contains(&v)) =>
                {
                    add.push(*array);
                }
                Stmt::AccumIndex {
                    target: Target::Var(v),
                    expr,
                    ..
                } if expr_varies(&varying, expr) => {
                    add.push(*v);
                }
                Stmt::Push { tape, values } => {
                    for (k, v) in values.iter().enumerate() {
                        if v.as_var().is_some_and(|v| varying.contains(&v)) {
                            tape_slots.entry(*tape).or_default().insert(k);
                        }
                    }
                }
                Stmt::Pop { tape, vars } => {
                    if let Some(slots) = tape_slots.get(tape) {
                        add.extend(
                            vars.iter()
                                .enumerate()
                                .filter(|(k, _)| slots.contains(k))
                                .map(|(_, v)| *v),
                        );
                    }
                }
                _ => {}
            }
        });
        varying.extend(add);
        let after = varying.len() + tape_slots.values().map(HashSet::len).sum::<usize>();
        if after == before {
            return (varying, tape_slots);
        }
    }
}
