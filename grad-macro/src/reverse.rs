//! The reverse-mode transform: primal IR -> the IR of `f_backward`.
//!
//! The result is the forward sweep (the primal, with calls of other
//! `#[differentiate]` functions replaced by their `_grad` companions) followed
//! by the reverse sweep, which visits the statements backwards and adds each
//! statement's contribution `adjoint(out) * ∂out/∂arg` into `adjoint(arg)`,
//! with every partial taken from the rule table. Adjoints are mutable
//! accumulators declared at the start of the reverse code of the block that
//! defines their variable (the simplifier turns the single-contribution ones
//! into plain `let`s).
//!
//! An `if` becomes an `if` on the same condition in the reverse sweep, so only
//! the taken branch's adjoint code runs. Values computed inside a branch that
//! the branch's reverse code needs are passed out of the forward `if` as extra
//! outs (the other branch yields a placeholder it never reads).

use std::collections::{BTreeSet, HashMap};

use crate::ir::{BinOp, Block, Expr, Func, Operand, Origin, Stmt, Ty, UnOp, Var, VarInfo};
use crate::rules::{self, Formula};

/// Builds the IR of the `_backward` companion. Errors are internal (a rule
/// formula that does not lower) and carry a message only.
pub fn reverse(primal: &Func) -> Result<Func, String> {
    let mut func = primal.clone();
    let mut pass = Reverse {
        func: &mut func,
        adjoints: HashMap::new(),
    };
    let (forward, reverse) = pass.block(&primal.body, &[Some(Operand::float(1.0))])?;

    let mut stmts = forward.stmts;
    for param in &primal.params {
        if let Some(&adjoint) = pass.adjoints.get(&param.var) {
            stmts.push(Stmt::DeclMut {
                var: adjoint,
                expr: Expr::Use(Operand::float(0.0)),
            });
        }
    }
    stmts.extend(reverse);
    for (index, param) in primal.params.iter().enumerate() {
        if !param.wrt {
            continue;
        }
        if let Some(&adjoint) = pass.adjoints.get(&param.var) {
            stmts.push(Stmt::AccumGrad {
                param: index,
                value: Operand::Var(adjoint),
            });
        }
    }
    func.body = Block {
        stmts,
        yields: forward.yields,
    };
    Ok(func)
}

struct Reverse<'f> {
    func: &'f mut Func,
    adjoints: HashMap<Var, Var>,
}

impl Reverse<'_> {
    fn adjoint(&mut self, var: Var) -> Var {
        if let Some(&a) = self.adjoints.get(&var) {
            return a;
        }
        let info = self.func.info(var).clone();
        let adjoint = self.func.new_var(VarInfo {
            name: info.name,
            ty: info.ty,
            origin: Origin::Adjoint(var),
            active: false,
            span: info.span,
        });
        self.adjoints.insert(var, adjoint);
        adjoint
    }

    /// `adjoint(target) += expr`, if `target` is differentiated.
    fn contribute(&mut self, rev: &mut Vec<Stmt>, target: &Operand, expr: Expr) {
        if let Some(var) = target.as_var().filter(|&v| self.func.info(v).active) {
            let adjoint = self.adjoint(var);
            rev.push(Stmt::Accum { var: adjoint, expr });
        }
    }

    /// Returns the forward sweep of `block` and its reverse code, given what
    /// each yield's adjoint is (`None`: nothing flows back through it).
    fn block(
        &mut self,
        block: &Block,
        yield_adjoints: &[Option<Operand>],
    ) -> Result<(Block, Vec<Stmt>), String> {
        let mut rev = vec![];
        for (value, adjoint) in block.yields.iter().zip(yield_adjoints) {
            if let Some(adjoint) = adjoint {
                self.contribute(&mut rev, value, Expr::Use(adjoint.clone()));
            }
        }
        let mut forward_rev_order = vec![];
        for stmt in block.stmts.iter().rev() {
            let forward = self.stmt(stmt, &mut rev)?;
            forward_rev_order.push(forward);
        }
        forward_rev_order.reverse();

        // Declare the adjoints of this block's variables before any use.
        let mut prologue = vec![];
        for stmt in &forward_rev_order {
            for var in stmt.defines() {
                if let Some(&adjoint) = self.adjoints.get(&var) {
                    prologue.push(Stmt::DeclMut {
                        var: adjoint,
                        expr: Expr::Use(Operand::float(0.0)),
                    });
                }
            }
        }
        prologue.extend(rev);
        Ok((
            Block {
                stmts: forward_rev_order,
                yields: block.yields.clone(),
            },
            prologue,
        ))
    }

    /// Appends the reverse code of `stmt` to `rev` and returns its forward form.
    fn stmt(&mut self, stmt: &Stmt, rev: &mut Vec<Stmt>) -> Result<Stmt, String> {
        match stmt {
            Stmt::Let { var, expr } => self.assignment(*var, expr, rev),
            Stmt::If {
                cond,
                then_block,
                else_block,
                outs,
            } => {
                let out_adjoints: Vec<Option<Operand>> = outs
                    .iter()
                    .map(|o| self.adjoints.get(o).map(|a| Operand::Var(*a)))
                    .collect();
                let (mut then_fwd, then_rev) = self.block(then_block, &out_adjoints)?;
                let (mut else_fwd, else_rev) = self.block(else_block, &out_adjoints)?;
                let mut outs = outs.clone();
                let then_rev = self.export(&mut then_fwd, &mut else_fwd, &mut outs, then_rev);
                let else_rev = self.export(&mut else_fwd, &mut then_fwd, &mut outs, else_rev);
                if !then_rev.is_empty() || !else_rev.is_empty() {
                    rev.push(Stmt::If {
                        cond: cond.clone(),
                        then_block: Block {
                            stmts: then_rev,
                            yields: vec![],
                        },
                        else_block: Block {
                            stmts: else_rev,
                            yields: vec![],
                        },
                        outs: vec![],
                    });
                }
                Ok(Stmt::If {
                    cond: cond.clone(),
                    then_block: then_fwd,
                    else_block: else_fwd,
                    outs,
                })
            }
            // The primal has no other statements; keep them as they are.
            other => Ok(other.clone()),
        }
    }

    /// Makes the branch-local values that `branch_rev` reads available after
    /// the `if`: each becomes an extra out (the other branch yields a
    /// placeholder) and `branch_rev` reads the out instead.
    fn export(
        &mut self,
        branch: &mut Block,
        other: &mut Block,
        outs: &mut Vec<Var>,
        mut branch_rev: Vec<Stmt>,
    ) -> Vec<Stmt> {
        let mut defined = BTreeSet::new();
        for stmt in &branch.stmts {
            defined.extend(stmt.defines());
        }
        let mut read = vec![];
        let rev_block = Block {
            stmts: branch_rev,
            yields: vec![],
        };
        crate::ir::reads_in_block(&rev_block, &mut read);
        branch_rev = rev_block.stmts;
        let mut map = HashMap::new();
        for var in read {
            if !defined.contains(&var) || map.contains_key(&var) {
                continue;
            }
            let mut info = self.func.info(var).clone();
            let placeholder = placeholder(&info);
            info.origin = Origin::Export(var);
            let out = self.func.new_var(info);
            branch.yields.push(Operand::Var(var));
            other.yields.push(placeholder);
            outs.push(out);
            map.insert(var, out);
        }
        if !map.is_empty() {
            for stmt in &mut branch_rev {
                substitute_stmt(stmt, &map);
            }
        }
        branch_rev
    }

    fn assignment(&mut self, var: Var, expr: &Expr, rev: &mut Vec<Stmt>) -> Result<Stmt, String> {
        let info = self.func.info(var).clone();
        let forward = match expr {
            Expr::DiffCall { func, args, spans } => {
                let grad = self.func.new_var(VarInfo {
                    name: format!("{}_grad", info.name),
                    ty: Ty::Other,
                    origin: Origin::CalleeGrad,
                    active: false,
                    span: info.span,
                });
                if let Some(&adjoint) = self.adjoints.get(&var) {
                    let mut contrib = vec![];
                    for (index, arg) in args.iter().enumerate() {
                        if !self.func.is_active(arg) {
                            continue;
                        }
                        let span = spans.get(index).copied().unwrap_or(info.span);
                        let partial =
                            self.temp(&mut contrib, Expr::ArgGrad { grad, index, span }, info.ty);
                        self.contribute(
                            &mut contrib,
                            arg,
                            Expr::Binary(BinOp::Mul, Operand::Var(adjoint), partial),
                        );
                    }
                    self.guarded(rev, adjoint, contrib);
                }
                return Ok(Stmt::LetTuple {
                    vars: vec![var, grad],
                    expr: Expr::GradCall {
                        func: func.clone(),
                        args: args.clone(),
                    },
                });
            }
            other => Stmt::Let {
                var,
                expr: other.clone(),
            },
        };
        let Some(&adjoint) = self.adjoints.get(&var) else {
            return Ok(forward);
        };
        if !info.active {
            return Ok(forward);
        }
        let d = Operand::Var(adjoint);
        let out = Operand::Var(var);
        let mut contrib = vec![];
        let needs_guard = matches!(
            expr,
            Expr::Prim { .. } | Expr::Binary(BinOp::Mul | BinOp::Div, ..)
        );
        let rev_all = rev;
        let rev = &mut contrib;
        match expr {
            Expr::Use(a) => self.contribute(rev, a, Expr::Use(d)),
            Expr::Unary(UnOp::Neg, a) => self.partials(
                rev,
                rules::for_neg(),
                std::slice::from_ref(a),
                &out,
                &d,
                info.ty,
            )?,
            Expr::Binary(op, a, b) => {
                if let Some(rule) = rules::for_binop(*op) {
                    self.partials(rev, rule, &[a.clone(), b.clone()], &out, &d, info.ty)?;
                }
            }
            Expr::Prim { rule, args, .. } => self.partials(rev, rule, args, &out, &d, info.ty)?,
            Expr::Cast { operand, .. } => {
                let back = match self.func.operand_ty(operand) {
                    Ty::F32 => Some(syn::parse_quote!(f32)),
                    Ty::F64 => Some(syn::parse_quote!(f64)),
                    _ => None,
                };
                let expr = match back {
                    Some(ty) if self.func.operand_ty(operand) != info.ty => {
                        Expr::Cast { operand: d, ty }
                    }
                    _ => Expr::Use(d),
                };
                self.contribute(rev, operand, expr);
            }
            _ => {}
        }
        if needs_guard {
            self.guarded(rev_all, adjoint, contrib);
        } else {
            rev_all.extend(contrib);
        }
        Ok(forward)
    }

    /// Appends `contrib`, the contributions of a statement whose adjoint is
    /// `adjoint`, to `rev`. When that adjoint is only added to on some paths
    /// (a value computed before an `if` and used in one branch), they run
    /// only where it is non-zero: on the other paths the value is not part
    /// of the result, and a zero adjoint times an infinite partial (`sqrt`
    /// at 0, `ln` of a negative number) must not turn into NaN.
    fn guarded(&mut self, rev: &mut Vec<Stmt>, adjoint: Var, contrib: Vec<Stmt>) {
        if contrib.is_empty() || contributes_on_every_path(rev, adjoint) {
            rev.extend(contrib);
            return;
        }
        let cond = self.func.new_var(VarInfo {
            name: "t".into(),
            ty: Ty::Bool,
            origin: Origin::Temp,
            active: false,
            span: proc_macro2::Span::call_site(),
        });
        rev.push(Stmt::Let {
            var: cond,
            expr: Expr::Binary(BinOp::Ne, Operand::Var(adjoint), Operand::float(0.0)),
        });
        rev.push(Stmt::If {
            cond: Operand::Var(cond),
            then_block: Block {
                stmts: contrib,
                yields: vec![],
            },
            else_block: Block::default(),
            outs: vec![],
        });
    }

    fn temp(&mut self, rev: &mut Vec<Stmt>, expr: Expr, ty: Ty) -> Operand {
        let var = self.func.new_var(VarInfo {
            name: "t".into(),
            ty,
            origin: Origin::Temp,
            active: false,
            span: proc_macro2::Span::call_site(),
        });
        rev.push(Stmt::Let { var, expr });
        Operand::Var(var)
    }

    fn partials(
        &mut self,
        rev: &mut Vec<Stmt>,
        rule: &'static rules::Rule,
        args: &[Operand],
        out: &Operand,
        d: &Operand,
        ty: Ty,
    ) -> Result<(), String> {
        // An argument that occurs twice (`x * x`) gets one contribution, the
        // sum of its partials.
        let mut per_arg: Vec<(Var, Operand)> = vec![];
        for (index, arg) in args.iter().enumerate() {
            let Some(var) = arg.as_var().filter(|_| self.func.is_active(arg)) else {
                continue;
            };
            let mut formula = Formula {
                func: self.func,
                stmts: rev,
                ty,
            };
            let Some(partial) = formula.partial(rule, index, args, out)? else {
                continue;
            };
            match per_arg.iter_mut().find(|(v, _)| *v == var) {
                Some((_, sum)) => {
                    let previous = sum.clone();
                    *sum = self.temp(rev, Expr::Binary(BinOp::Add, previous, partial), ty);
                }
                None => per_arg.push((var, partial)),
            }
        }
        for (var, partial) in per_arg {
            self.contribute(
                rev,
                &Operand::Var(var),
                Expr::Binary(BinOp::Mul, d.clone(), partial),
            );
        }
        Ok(())
    }
}

/// Whether `stmts` add to `adjoint` whichever branches run.
fn contributes_on_every_path(stmts: &[Stmt], adjoint: Var) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Accum { var, .. } => *var == adjoint,
        Stmt::If {
            then_block,
            else_block,
            ..
        } => {
            contributes_on_every_path(&then_block.stmts, adjoint)
                && contributes_on_every_path(&else_block.stmts, adjoint)
        }
        _ => false,
    })
}

/// A value of the variable's type that the branch not taken yields for it.
fn placeholder(info: &VarInfo) -> Operand {
    match info.ty {
        Ty::Bool => Operand::Lit(syn::parse_quote!(false)),
        Ty::Int => Operand::Lit(syn::parse_quote!(0)),
        Ty::F32 | Ty::F64 | Ty::Float => Operand::float(0.0),
        Ty::Other => Operand::Default,
    }
}

/// Replaces reads of the variables in `map`, in `stmt` and its nested blocks.
pub fn substitute_stmt(stmt: &mut Stmt, map: &HashMap<Var, Var>) {
    let mut f = |v: Var| Operand::Var(*map.get(&v).unwrap_or(&v));
    match stmt {
        Stmt::Let { expr, .. } | Stmt::LetTuple { expr, .. } | Stmt::DeclMut { expr, .. } => {
            expr.map_vars(&mut f)
        }
        Stmt::Accum { var, expr } => {
            expr.map_vars(&mut f);
            if let Some(&v) = map.get(var) {
                *var = v;
            }
        }
        Stmt::AccumGrad { value, .. } => {
            if let Operand::Var(v) = value {
                *value = f(*v);
            }
        }
        Stmt::If {
            cond,
            then_block,
            else_block,
            ..
        } => {
            if let Operand::Var(v) = cond {
                *cond = f(*v);
            }
            for block in [then_block, else_block] {
                for s in &mut block.stmts {
                    substitute_stmt(s, map);
                }
                for y in &mut block.yields {
                    if let Operand::Var(v) = y {
                        *y = f(*v);
                    }
                }
            }
        }
    }
}
