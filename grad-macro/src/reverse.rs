//! The reverse-mode transform: primal IR -> the IR of `f_backward`.
//!
//! The result is the forward sweep (the primal, with calls of other
//! `#[differentiate]` functions replaced by their `_grad` companions) followed
//! by the reverse sweep, which visits the statements backwards and adds each
//! statement's contribution `adjoint(out) * ∂out/∂arg` into `adjoint(arg)`,
//! with every partial taken from the rule table. Adjoints are mutable
//! accumulators declared at the start of the reverse code of the block that
//! defines their variable (the simplifier turns the single-contribution ones
//! into plain `let`s). Arrays have adjoint arrays; a slice or array
//! parameter's adjoint is its gradient field, added into directly.
//!
//! An `if` becomes an `if` on the same condition in the reverse sweep, so only
//! the taken branch's adjoint code runs. Values computed inside a branch that
//! the branch's reverse code needs are passed out of the forward `if` as extra
//! outs (the other branch yields a placeholder it never reads).
//!
//! A loop runs backwards in the reverse sweep, one iteration at a time. Each
//! reverse iteration first *recomputes* the forward iteration's values from a
//! checkpoint and then runs the iteration's reverse code. The checkpoint is
//! pushed onto a tape by the forward loop: the loop-carried variables at the
//! start of the iteration, the loop variable when the iterations cannot be
//! replayed (a `break`, `while`, `loop`), and elements of arrays that the loop
//! or later code overwrites. Everything else is recomputed from values that
//! do not change (parameters, loop-invariant values, arrays nobody overwrites).
//! The simplifier drops every tape field the reverse code does not read, so a
//! reduction (`for i in 0..n { s += f(w, x[i]) }`, whose accumulator's value
//! no derivative needs) keeps no tape at all and allocates nothing. A `for`
//! loop without `break` is replayed by iterating its range reversed; other
//! loops count their iterations.

use std::collections::{BTreeSet, HashMap, HashSet};

use proc_macro2::Span;

use crate::ir::{
    reads_in_block, substitute_block, walk_stmts, ArrayInit, BinOp, Block, CallForm, Expr, Func,
    Loop, LoopKind, Operand, Origin, ReverseOf, Stmt, Target, Ty, UnOp, Var, VarInfo,
};
use crate::rules::{self, Formula};

/// An error of the transform, spanned on the user's tokens where it has any.
pub type Error = (Span, String);

/// Builds the IR of the `_backward` companion. Besides the function, returns
/// the recomputed reads that may see an overwritten array: after
/// simplification, any of them still present is an error (see
/// [`check_recomputed_reads`]).
pub fn reverse(primal: &Func) -> Result<(Func, Vec<(Var, Span)>), Error> {
    let mut func = primal.clone();
    func.derivative_vars_from = Some(primal.vars.len() as u32);
    let mut pass = Reverse {
        sigmoid_into_bce: sigmoids_into_bce(primal),
        every_path: vec![],
        func: &mut func,
        adjoints: HashMap::new(),
        tapes: vec![],
        suspicious: vec![],
    };
    // Local float arrays get their adjoint arrays up front: in a loop, a
    // store is reversed before the load (of a later iteration) that reads it.
    let mut arrays = vec![];
    walk_stmts(&primal.body, &mut |s| {
        if let Stmt::LetArray { var, .. } = s {
            arrays.push(*var);
        }
    });
    for a in arrays {
        if pass.func.info(a).active {
            pass.adjoint(a);
        }
    }
    let ctx = Ctx::default();
    let (forward, reverse) = pass.block(&primal.body, &[Some(Operand::float(1.0))], &ctx)?;

    let mut stmts = vec![];
    for (index, param) in primal.params.iter().enumerate() {
        let slice = pass
            .func
            .info(param.var)
            .shape
            .as_ref()
            .is_some_and(|s| s.lens[0].is_none());
        if param.wrt && slice {
            stmts.push(Stmt::PrepareGrad {
                param: index,
                dot: false,
            });
        }
    }
    stmts.extend(pass.tapes.iter().map(|&tape| Stmt::TapeNew { tape }));
    stmts.extend(forward.stmts);
    for param in &primal.params {
        let Some(&adjoint) = pass.adjoints.get(&param.var) else {
            continue;
        };
        match fixed_lens(pass.func.info(param.var)) {
            // A fixed-size array parameter's gradient is summed in a local
            // array and added to the caller's field once at the end, as for
            // a scalar: inside a loop the local stays in registers, where
            // adding into `grad.<field>[j]` would store to memory in every
            // iteration (the store must happen before a later bounds check
            // can panic).
            Some(lens) => stmts.push(Stmt::LetArray {
                var: adjoint,
                init: ArrayInit::Repeat {
                    fill: Operand::float(0.0),
                    lens,
                },
            }),
            None if pass.func.info(param.var).ty != Ty::Array => stmts.push(Stmt::DeclMut {
                var: adjoint,
                expr: Expr::Use(Operand::float(0.0)),
            }),
            None => {}
        }
    }
    stmts.extend(reverse);
    for (index, param) in primal.params.iter().enumerate() {
        let info = pass.func.info(param.var);
        if !param.wrt || (info.ty == Ty::Array && fixed_lens(info).is_none()) {
            continue;
        }
        if let Some(&adjoint) = pass.adjoints.get(&param.var) {
            stmts.push(Stmt::AccumGrad {
                param: index,
                dot: false,
                value: Operand::Var(adjoint),
            });
        }
    }
    let suspicious = std::mem::take(&mut pass.suspicious);
    func.body = Block {
        stmts,
        yields: forward.yields,
    };
    Ok((func, suspicious))
}

/// The lengths of a fixed-size array (`[[f64; 4]; 16]` gives `16, 4`);
/// `None` for a scalar or a slice.
fn fixed_lens(info: &VarInfo) -> Option<Vec<syn::Expr>> {
    info.shape.as_ref()?.lens.iter().cloned().collect()
}

/// A read of an array that the loop (or later code) overwrites, nested in an
/// `if` or an inner loop, cannot be recomputed and is not recorded. Most
/// such reads feed only sums, whose derivatives do not need them, and the
/// simplifier removes their recomputation; one that survives is an error.
pub fn check_recomputed_reads(func: &Func, suspicious: &[(Var, Span)]) -> Result<(), Error> {
    let mut defined = HashSet::new();
    walk_stmts(&func.body, &mut |s| defined.extend(s.defines()));
    match suspicious.iter().find(|(v, _)| defined.contains(v)) {
        Some((_, span)) => Err((
            *span,
            "grad cannot yet differentiate this read: the array is overwritten later in the loop (or after it), and the read is nested inside an `if` or an inner loop; read the element into a variable at the top level of the loop body".into(),
        )),
        None => Ok(()),
    }
}

/// What a block's reverse code must know about its surroundings to decide
/// which array elements a loop inside it can reload when it recomputes.
#[derive(Clone, Default)]
struct Ctx {
    /// Arrays stored to after this block, up to the end of the enclosing loop
    /// body (or of the function).
    stored_later: HashSet<Var>,
    /// Arrays declared inside the enclosing loop's body.
    declared_in_region: HashSet<Var>,
    /// Arrays declared outside the enclosing loop that it cannot reload:
    /// stored anywhere in that loop, or unsafe for a loop around it.
    outer_unsafe: HashSet<Var>,
}

fn stores_in(stmts: &[Stmt]) -> HashSet<Var> {
    let mut set = HashSet::new();
    for stmt in stmts {
        let mut f = |s: &Stmt| {
            if let Stmt::Store { array, .. } = s {
                set.insert(*array);
            }
        };
        f(stmt);
        for b in stmt.blocks() {
            walk_stmts(b, &mut f);
        }
    }
    set
}

fn declared_in(block: &Block) -> HashSet<Var> {
    let mut set = HashSet::new();
    walk_stmts(block, &mut |s| {
        if let Stmt::LetArray { var, .. } = s {
            set.insert(*var);
        }
    });
    set
}

struct Reverse<'f> {
    func: &'f mut Func,
    adjoints: HashMap<Var, Var>,
    /// `p = sigmoid(z)` whose only use is `bce(p, y)`: `p` -> `z` (see
    /// [`Reverse::bce_of_sigmoid`]).
    sigmoid_into_bce: HashMap<Var, Operand>,
    /// Per block being reversed, innermost last: what its reverse code so
    /// far adds to on every path (see [`Reverse::guarded`]).
    every_path: Vec<EveryPath>,
    /// Every tape, declared at the start of the function.
    tapes: Vec<Var>,
    /// Recomputed nested reads of overwritten arrays (see `check_recomputed_reads`).
    suspicious: Vec<(Var, Span)>,
}

impl Reverse<'_> {
    fn adjoint(&mut self, var: Var) -> Var {
        if let Some(&a) = self.adjoints.get(&var) {
            return a;
        }
        let adjoint = self.func.derived_var(var, Origin::Adjoint(var));
        self.adjoints.insert(var, adjoint);
        adjoint
    }

    fn new_var(&mut self, name: &str, ty: Ty, origin: Origin) -> Var {
        self.func
            .new_var(VarInfo::scalar(name, ty, origin, false, Span::call_site()))
    }

    /// `adjoint(target) += expr`, if `target` is differentiated.
    fn contribute(&mut self, rev: &mut Vec<Stmt>, target: &Operand, expr: Expr) {
        if let Some(var) = target.as_var().filter(|&v| self.func.info(v).active) {
            let adjoint = self.adjoint(var);
            rev.push(Stmt::Accum { var: adjoint, expr });
        }
    }

    /// `adjoint(array)[index] += expr`: into the gradient field for a
    /// parameter, into the adjoint array for a local array.
    fn contribute_element(
        &mut self,
        rev: &mut Vec<Stmt>,
        array: Var,
        index: Vec<Operand>,
        expr: Expr,
    ) {
        if !self.func.info(array).active {
            return;
        }
        let target = match self.func.params.iter().position(|p| p.var == array) {
            Some(p) if self.func.params[p].wrt && fixed_lens(self.func.info(array)).is_some() => {
                Target::Var(self.adjoint(array))
            }
            Some(p) if self.func.params[p].wrt => Target::Grad(p),
            Some(_) => return,
            None => Target::Var(self.adjoint(array)),
        };
        rev.push(Stmt::AccumIndex {
            target,
            index,
            expr,
        });
    }

    /// Returns the forward sweep of `block` and its reverse code, given what
    /// each yield's adjoint is (`None`: nothing flows back through it).
    fn block(
        &mut self,
        block: &Block,
        yield_adjoints: &[Option<Operand>],
        ctx: &Ctx,
    ) -> Result<(Block, Vec<Stmt>), Error> {
        let mut rev = vec![];
        for (value, adjoint) in block.yields.iter().zip(yield_adjoints) {
            if let Some(adjoint) = adjoint {
                self.contribute(&mut rev, value, Expr::Use(adjoint.clone()));
            }
        }
        let mut forward_rev_order = vec![];
        let mut inner = ctx.clone();
        self.every_path.push(EveryPath::default());
        let mut result = Ok(());
        for stmt in block.stmts.iter().rev() {
            match self.stmt(stmt, &mut rev, &inner) {
                Ok(forward) => forward_rev_order.push(forward),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            inner
                .stored_later
                .extend(stores_in(std::slice::from_ref(stmt)));
        }
        self.every_path.pop();
        result?;
        forward_rev_order.reverse();

        // Declare the adjoints of this block's variables before any use.
        let mut prologue = vec![];
        for stmt in &forward_rev_order {
            for var in stmt.defines() {
                let Some(&adjoint) = self.adjoints.get(&var) else {
                    continue;
                };
                match stmt {
                    Stmt::LetArray { init, .. } => {
                        let lens = match init {
                            ArrayInit::Repeat { lens, .. } => lens.clone(),
                            ArrayInit::List(items) => {
                                let n = proc_macro2::Literal::usize_unsuffixed(items.len());
                                vec![syn::parse_quote!(#n)]
                            }
                        };
                        prologue.push(Stmt::LetArray {
                            var: adjoint,
                            init: ArrayInit::Repeat {
                                fill: Operand::float(0.0),
                                lens,
                            },
                        });
                    }
                    _ => prologue.push(Stmt::DeclMut {
                        var: adjoint,
                        expr: Expr::Use(Operand::float(0.0)),
                    }),
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
    fn stmt(&mut self, stmt: &Stmt, rev: &mut Vec<Stmt>, ctx: &Ctx) -> Result<Stmt, Error> {
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
                let (mut then_fwd, then_rev) = self.block(then_block, &out_adjoints, ctx)?;
                let (mut else_fwd, else_rev) = self.block(else_block, &out_adjoints, ctx)?;
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
            Stmt::Store {
                array,
                index,
                value,
            } => {
                if let Some(&adjoint) = self.adjoints.get(array) {
                    // The stored value gets the element's adjoint, and the
                    // overwritten value none of it.
                    let d = self.new_var("t", Ty::Float, Origin::Temp);
                    self.func.info_mut(d).ty = self.func.operand_ty(value);
                    rev.push(Stmt::Let {
                        var: d,
                        expr: Expr::Index {
                            array: adjoint,
                            index: index.clone(),
                        },
                    });
                    rev.push(Stmt::Store {
                        array: adjoint,
                        index: index.clone(),
                        value: Operand::float(0.0),
                    });
                    self.contribute(rev, value, Expr::Use(Operand::Var(d)));
                }
                Ok(stmt.clone())
            }
            Stmt::LetArray { var, init } => {
                if let (Some(&adjoint), ArrayInit::List(items)) = (self.adjoints.get(var), init) {
                    for (k, item) in items.iter().enumerate() {
                        let k = proc_macro2::Literal::usize_unsuffixed(k);
                        let index = vec![Operand::Lit(syn::parse_quote!(#k))];
                        if self.func.is_active(item) {
                            let d = self.new_var("t", self.func.operand_ty(item), Origin::Temp);
                            rev.push(Stmt::Let {
                                var: d,
                                expr: Expr::Index {
                                    array: adjoint,
                                    index,
                                },
                            });
                            self.contribute(rev, item, Expr::Use(Operand::Var(d)));
                        }
                    }
                }
                Ok(stmt.clone())
            }
            Stmt::Loop(l) => self.loop_stmt(l, rev, ctx),
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
        branch_rev: Vec<Stmt>,
    ) -> Vec<Stmt> {
        let mut defined = BTreeSet::new();
        for stmt in &branch.stmts {
            defined.extend(stmt.defines());
        }
        let mut read = vec![];
        let mut rev_block = Block {
            stmts: branch_rev,
            yields: vec![],
        };
        reads_in_block(&rev_block, &mut read);
        let mut map = HashMap::new();
        for var in read {
            if !defined.contains(&var) || map.contains_key(&var) {
                continue;
            }
            let mut info = self.func.info(var).clone();
            let placeholder = match &info.shape {
                // A local array: the other branch yields zeros of its shape.
                Some(shape) if info.ty == Ty::Array => {
                    let zeros = self.func.new_var(info.clone());
                    let lens = shape.lens.iter().flatten().cloned().collect();
                    other.stmts.push(Stmt::LetArray {
                        var: zeros,
                        init: ArrayInit::Repeat {
                            fill: Operand::float(0.0),
                            lens,
                        },
                    });
                    Operand::Var(zeros)
                }
                _ => placeholder(&info),
            };
            info.origin = Origin::Export(var);
            let out = self.func.new_var(info);
            branch.yields.push(Operand::Var(var));
            other.yields.push(placeholder);
            outs.push(out);
            map.insert(var, Operand::Var(out));
        }
        if !map.is_empty() {
            substitute_block(&mut rev_block, &|v| map.get(&v).cloned());
        }
        rev_block.stmts
    }

    /// Passes `var`, defined somewhere inside the `if`s of `block`, out to
    /// `block`'s level through extra outs; returns the variable there.
    fn hoist(&mut self, block: &mut Block, var: Var) -> Option<Var> {
        for i in 0..block.stmts.len() {
            if block.stmts[i].defines().contains(&var) {
                return Some(var);
            }
            let Stmt::If {
                then_block,
                else_block,
                outs,
                ..
            } = &mut block.stmts[i]
            else {
                continue;
            };
            let (inner, in_then) = match self.hoist(then_block, var) {
                Some(v) => (v, true),
                None => match self.hoist(else_block, var) {
                    Some(v) => (v, false),
                    None => continue,
                },
            };
            let mut info = self.func.info(var).clone();
            let fill = placeholder(&info);
            info.origin = Origin::Export(var);
            let out = self.func.new_var(info);
            let (with, without) = if in_then {
                (then_block, else_block)
            } else {
                (else_block, then_block)
            };
            with.yields.push(Operand::Var(inner));
            without.yields.push(fill);
            outs.push(out);
            return Some(out);
        }
        None
    }

    /// A loop: the forward loop pushes each iteration's checkpoint; the
    /// reverse loop runs the iterations backwards, each recomputing its
    /// values from the checkpoint before running its reverse code.
    fn loop_stmt(&mut self, l: &Loop, rev: &mut Vec<Stmt>, ctx: &Ctx) -> Result<Stmt, Error> {
        // Replayed backwards with `.rev()`: a `for` without `break` and without
        // `step_by` (reversing a `StepBy` needs an `ExactSizeIterator`, which
        // `RangeInclusive<usize>` and 64-bit ranges are not).
        let replay = matches!(&l.kind, LoopKind::For { range, .. } if range.step.is_none())
            && l.runs_to_end();

        // Arrays this loop cannot reload when it recomputes an iteration.
        let declared_here = declared_in(&l.body);
        let mut unsafe_arrays: HashSet<Var> = stores_in(&l.body.stmts);
        unsafe_arrays.extend(ctx.stored_later.iter().copied());
        unsafe_arrays.extend(
            ctx.outer_unsafe
                .difference(&ctx.declared_in_region)
                .copied(),
        );
        for a in &declared_here {
            unsafe_arrays.remove(a);
        }
        let body_ctx = Ctx {
            stored_later: HashSet::new(),
            declared_in_region: declared_here.clone(),
            outer_unsafe: unsafe_arrays.clone(),
        };

        // The checkpoint: phis, the loop variable unless replayed, unsafe loads.
        let mut checkpoint: Vec<Var> = l.carried.iter().map(|c| c.phi).collect();
        if let (LoopKind::For { var, .. }, false) = (&l.kind, replay) {
            checkpoint.push(*var);
        }
        for stmt in &l.body.stmts {
            if let Stmt::Let {
                var,
                expr: Expr::Index { array, .. },
            } = stmt
            {
                if unsafe_arrays.contains(array) {
                    checkpoint.push(*var);
                }
            }
        }
        // Loads of such arrays inside an `if` of the body are passed out of
        // it and recorded too; inside an inner loop they cannot be.
        let mut in_branches = vec![];
        let mut nested_unsafe = vec![];
        collect_nested_loads(
            &l.body,
            &unsafe_arrays,
            false,
            &mut in_branches,
            &mut nested_unsafe,
        );

        // D_j: the adjoint of carried variable j at the end of the current
        // (reverse) iteration; it starts as the adjoint of the loop's result.
        let carried_adjoints: Vec<Option<Var>> = l
            .carried
            .iter()
            .map(|c| self.func.info(c.phi).active.then(|| self.adjoint(c.out)))
            .collect();
        let mut yield_adjoints = vec![None];
        yield_adjoints.extend(carried_adjoints.iter().map(|d| d.map(Operand::Var)));
        let (mut forward_body, body_rev) = self.block(&l.body, &yield_adjoints, &body_ctx)?;

        let mut hoisted: HashMap<Var, Var> = HashMap::new();
        for v in in_branches {
            if let Some(out) = self.hoist(&mut forward_body, v) {
                hoisted.insert(v, out);
                checkpoint.push(out);
            }
        }

        // The forward loop: push the checkpoint at the end of each iteration.
        let tape = self.new_var("tape", Ty::Other, Origin::Temp);
        self.tapes.push(tape);
        forward_body.stmts.push(Stmt::Push {
            tape,
            values: checkpoint.iter().map(|v| Operand::Var(*v)).collect(),
        });
        let count = (!replay).then(|| self.new_var("n", Ty::Int, Origin::Temp));
        let forward = Loop {
            kind: l.kind.clone(),
            carried: l.carried.clone(),
            body: forward_body.clone(),
            count,
            // The tape is this loop's own: its index names the pair.
            id: Some(tape.0),
            reverse_of: None,
        };

        // The reverse iteration: pop, recompute, reverse.
        let mut renamed: HashMap<Var, Operand> = HashMap::new();
        let popped: Vec<Var> = checkpoint
            .iter()
            .map(|&v| {
                let mut info = self.func.info(v).clone();
                info.origin = Origin::Export(v);
                let p = self.func.new_var(info);
                renamed.insert(v, Operand::Var(p));
                p
            })
            .collect();
        let mut kind = match (&l.kind, count) {
            (LoopKind::For { var, range }, None) => {
                let mut info = self.func.info(*var).clone();
                info.origin = Origin::Export(*var);
                let new_var = self.func.new_var(info);
                renamed.insert(*var, Operand::Var(new_var));
                let mut range = range.clone();
                range.rev = !range.rev;
                LoopKind::For {
                    var: new_var,
                    range,
                }
            }
            (_, Some(n)) => LoopKind::Times(Operand::Var(n)),
            (_, None) => LoopKind::Loop,
        };
        let mut recompute = strip_pushes(&forward_body);
        // Stores into arrays from outside the loop are not replayed: the
        // arrays already hold what the forward loop wrote.
        strip_outer_stores(&mut recompute, &declared_here);
        recompute.yields.clear();
        recompute.stmts.retain(|s| match s {
            Stmt::Let { var, .. } => !checkpoint.contains(var),
            _ => true,
        });
        // A recorded load inside a branch reads the recorded value.
        replace_loads(&mut recompute, &hoisted);
        // Every value the copy defines is a new variable (same name: the
        // forward loop's scope has ended).
        let mut defined = vec![];
        walk_stmts(&recompute, &mut |s| {
            defined.extend(s.defines());
            if let Stmt::Loop(inner) = s {
                defined.extend(inner.body_params());
            }
        });
        for v in defined {
            if renamed.contains_key(&v) {
                continue;
            }
            let mut info = self.func.info(v).clone();
            info.origin = Origin::Export(v);
            let new = self.func.new_var(info);
            renamed.insert(v, Operand::Var(new));
        }
        rename_definitions(&mut recompute, &renamed);
        for v in nested_unsafe {
            if let Some(Operand::Var(copy)) = renamed.get(&v) {
                self.suspicious.push((*copy, self.func.info(v).span));
            }
        }
        substitute_block(&mut recompute, &|v| renamed.get(&v).cloned());
        let mut body_rev = Block {
            stmts: body_rev,
            yields: vec![],
        };
        substitute_block(&mut body_rev, &|v| renamed.get(&v).cloned());

        let mut reverse_body = vec![Stmt::Pop { tape, vars: popped }];
        reverse_body.extend(recompute.stmts);
        for (c, d) in l.carried.iter().zip(&carried_adjoints) {
            if let (Some(&adjoint), Some(_)) = (self.adjoints.get(&c.phi), d) {
                reverse_body.push(Stmt::DeclMut {
                    var: adjoint,
                    expr: Expr::Use(Operand::float(0.0)),
                });
            }
        }
        reverse_body.extend(body_rev.stmts);
        for (c, d) in l.carried.iter().zip(&carried_adjoints) {
            if let Some(d) = d {
                let value = match self.adjoints.get(&c.phi) {
                    Some(&a) => Operand::Var(a),
                    None => Operand::float(0.0),
                };
                reverse_body.push(Stmt::Assign {
                    var: *d,
                    expr: Expr::Use(value),
                });
            }
        }
        if let LoopKind::Loop = kind {
            kind = LoopKind::Times(Operand::Lit(syn::parse_quote!(0usize)));
        }
        let copies = renamed
            .iter()
            .filter_map(|(orig, copy)| copy.as_var().map(|c| (c, *orig)))
            .collect();
        rev.push(Stmt::Loop(Box::new(Loop {
            kind,
            carried: vec![],
            body: Block {
                stmts: reverse_body,
                yields: vec![Operand::Lit(syn::parse_quote!(true))],
            },
            count: None,
            id: None,
            reverse_of: Some(ReverseOf { id: tape.0, copies }),
        })));
        for (c, d) in l.carried.iter().zip(&carried_adjoints) {
            if let Some(d) = d {
                self.contribute(rev, &c.init, Expr::Use(Operand::Var(*d)));
            }
        }
        Ok(Stmt::Loop(Box::new(forward)))
    }

    fn assignment(&mut self, var: Var, expr: &Expr, rev: &mut Vec<Stmt>) -> Result<Stmt, Error> {
        let info = self.func.info(var).clone();
        let forward = match expr {
            Expr::DiffCall { func, args, spans } => {
                let grad = self.func.callee_grad_var(var);
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
        if self.bce_of_sigmoid(rev, expr, &d, info.ty)? {
            self.guarded(rev_all, adjoint, contrib);
            return Ok(forward);
        }
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
            Expr::Index { array, index } => {
                let expr = Expr::Use(d.clone());
                self.contribute_element(rev, *array, index.clone(), expr);
            }
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
        if contrib.is_empty() || self.contributes_on_every_path(rev, adjoint) {
            rev.extend(contrib);
            return;
        }
        let cond = self.func.new_var(VarInfo {
            name: "t".into(),
            ty: Ty::Bool,
            origin: Origin::Temp,
            active: false,
            span: proc_macro2::Span::call_site(),
            shape: None,
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

    /// Whether `rev`, the reverse code of the innermost block being reversed,
    /// adds to `adjoint` whichever branches run. That code only grows while
    /// its block is reversed, so each statement is looked at once, not once
    /// per later contribution (which made long blocks quadratic).
    fn contributes_on_every_path(&mut self, rev: &[Stmt], adjoint: Var) -> bool {
        let Some(seen) = self.every_path.last_mut() else {
            let mut all = HashSet::new();
            add_every_path(rev, &mut all);
            return all.contains(&adjoint);
        };
        if seen.scanned > rev.len() {
            // Not the block's code after all: start again.
            *seen = EveryPath::default();
        }
        add_every_path(&rev[seen.scanned..], &mut seen.adjoints);
        seen.scanned = rev.len();
        seen.adjoints.contains(&adjoint)
    }

    /// `bce(p, y)` with `p = sigmoid(z)` used nowhere else: the adjoint goes
    /// straight to `z` as `gate(bce_clamp_grad(p), d * (p - y))`, what the
    /// chain `bce'(p) · sigmoid'(z)` is once `p (1 - p)` cancels (exactly
    /// where the clamp passes `p`, and 0 where it clamps), and what a
    /// hand-written gradient computes: one subtraction instead of a division
    /// and four products. Returns whether it applied.
    fn bce_of_sigmoid(
        &mut self,
        rev: &mut Vec<Stmt>,
        expr: &Expr,
        d: &Operand,
        ty: Ty,
    ) -> Result<bool, Error> {
        let Expr::Prim { rule, args, .. } = expr else {
            return Ok(false);
        };
        let (Some(p), Some(target)) = (args.first(), args.get(1)) else {
            return Ok(false);
        };
        let Some(z) = p
            .as_var()
            .and_then(|p| self.sigmoid_into_bce.get(&p))
            .cloned()
        else {
            return Ok(false);
        };
        let (Some(clamp_grad), Some(gate)) = (
            rules::lookup("bce_clamp_grad", CallForm::Helper),
            rules::lookup("gate", CallForm::Helper),
        ) else {
            return Ok(false);
        };
        if rule.name != "bce" || !self.func.is_active(p) {
            return Ok(false);
        }
        let pass = self.temp(
            rev,
            Expr::Prim {
                rule: clamp_grad,
                form: CallForm::Helper,
                args: vec![p.clone()],
                path: None,
            },
            ty,
        );
        let error = self.temp(rev, Expr::Binary(BinOp::Sub, p.clone(), target.clone()), ty);
        let scaled = self.temp(rev, Expr::Binary(BinOp::Mul, d.clone(), error), ty);
        self.contribute(
            rev,
            &z,
            Expr::Prim {
                rule: gate,
                form: CallForm::Helper,
                args: vec![pass, scaled],
                path: None,
            },
        );
        // The target's partial, from the table.
        if self.func.is_active(target) {
            let mut formula = Formula {
                func: self.func,
                stmts: rev,
                ty,
            };
            if let Some(partial) = formula
                .partial(rule, 1, args, &Operand::float(0.0))
                .map_err(|e| (Span::call_site(), e))?
            {
                self.contribute(rev, target, Expr::Binary(BinOp::Mul, d.clone(), partial));
            }
        }
        Ok(true)
    }

    fn temp(&mut self, rev: &mut Vec<Stmt>, expr: Expr, ty: Ty) -> Operand {
        let var = self.func.new_var(VarInfo {
            name: "t".into(),
            ty,
            origin: Origin::Temp,
            active: false,
            span: proc_macro2::Span::call_site(),
            shape: None,
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
    ) -> Result<(), Error> {
        // An argument that occurs twice (`x * x`) gets one contribution, the
        // sum of its partials.
        // The flag: the partial is a single select (`Rule::is_select`).
        let mut per_arg: Vec<(Var, Operand, bool)> = vec![];
        for (index, arg) in args.iter().enumerate() {
            let Some(var) = arg.as_var().filter(|_| self.func.is_active(arg)) else {
                continue;
            };
            let mut formula = Formula {
                func: self.func,
                stmts: rev,
                ty,
            };
            let Some(partial) = formula
                .partial(rule, index, args, out)
                .map_err(|e| (proc_macro2::Span::call_site(), e))?
            else {
                continue;
            };
            match per_arg.iter_mut().find(|(v, _, _)| *v == var) {
                Some((_, sum, select)) => {
                    let previous = sum.clone();
                    *sum = self.temp(rev, Expr::Binary(BinOp::Add, previous, partial), ty);
                    *select = false;
                }
                None => per_arg.push((var, partial, rule.is_select(index))),
            }
        }
        for (var, partial, select) in per_arg {
            let contribution = match rules::lookup("gate", CallForm::Helper) {
                // `gate(s, d)`: `s * d`, but 0 where the select is 0 whatever d is.
                Some(gate) if select => Expr::Prim {
                    rule: gate,
                    form: CallForm::Helper,
                    args: vec![partial, d.clone()],
                    path: None,
                },
                _ => Expr::Binary(BinOp::Mul, d.clone(), partial),
            };
            self.contribute(rev, &Operand::Var(var), contribution);
        }
        Ok(())
    }
}

/// `p -> z` for every `p = sigmoid(z)` read exactly once, by `bce(p, y)`.
fn sigmoids_into_bce(func: &Func) -> HashMap<Var, Operand> {
    let mut uses: HashMap<Var, usize> = HashMap::new();
    let mut reads = vec![];
    reads_in_block(&func.body, &mut reads);
    for v in reads {
        *uses.entry(v).or_default() += 1;
    }
    let mut sigmoids = HashMap::new();
    let mut into_bce = HashSet::new();
    walk_stmts(&func.body, &mut |s| {
        if let Stmt::Let {
            var,
            expr: Expr::Prim { rule, args, .. },
        } = s
        {
            match (rule.name, args.as_slice()) {
                ("sigmoid", [z]) => {
                    sigmoids.insert(*var, z.clone());
                }
                ("bce", [Operand::Var(p), _]) => {
                    into_bce.insert(*p);
                }
                _ => {}
            }
        }
    });
    sigmoids.retain(|p, _| into_bce.contains(p) && uses.get(p) == Some(&1));
    sigmoids
}

/// The adjoints a prefix of a block's reverse code adds to on every path,
/// and how long that prefix is.
#[derive(Default)]
struct EveryPath {
    scanned: usize,
    adjoints: HashSet<Var>,
}

/// Adds to `out` the adjoints that `stmts` add to whichever branches run.
fn add_every_path(stmts: &[Stmt], out: &mut HashSet<Var>) {
    for s in stmts {
        match s {
            Stmt::Accum { var, .. } => {
                out.insert(*var);
            }
            Stmt::If {
                then_block,
                else_block,
                ..
            } => {
                let mut then = HashSet::new();
                add_every_path(&then_block.stmts, &mut then);
                if then.is_empty() {
                    continue;
                }
                let mut otherwise = HashSet::new();
                add_every_path(&else_block.stmts, &mut otherwise);
                out.extend(then.intersection(&otherwise));
            }
            _ => {}
        }
    }
}

/// A value of the variable's type that the branch not taken yields for it.
fn placeholder(info: &VarInfo) -> Operand {
    match info.ty {
        Ty::Bool => Operand::Lit(syn::parse_quote!(false)),
        Ty::Int => Operand::Lit(syn::parse_quote!(0)),
        Ty::F32 | Ty::F64 | Ty::Float => Operand::float(0.0),
        Ty::Other | Ty::Array => Operand::Default,
    }
}

/// The block without tape pushes (a recomputation must not record again).
fn strip_pushes(block: &Block) -> Block {
    let mut block = block.clone();
    fn strip(block: &mut Block) {
        block.stmts.retain(|s| !matches!(s, Stmt::Push { .. }));
        for s in &mut block.stmts {
            for b in s.blocks_mut() {
                strip(b);
            }
        }
    }
    strip(&mut block);
    block
}

/// Loads of `unsafe_arrays` below the top level of `block`: inside `if`s
/// (`in_branches`, which can be recorded) or inside inner loops (`in_loops`).
fn collect_nested_loads(
    block: &Block,
    unsafe_arrays: &HashSet<Var>,
    nested: bool,
    in_branches: &mut Vec<Var>,
    in_loops: &mut Vec<Var>,
) {
    for stmt in &block.stmts {
        match stmt {
            Stmt::Let {
                var,
                expr: Expr::Index { array, .. },
            } if nested && unsafe_arrays.contains(array) => in_branches.push(*var),
            Stmt::If {
                then_block,
                else_block,
                ..
            } => {
                collect_nested_loads(then_block, unsafe_arrays, true, in_branches, in_loops);
                collect_nested_loads(else_block, unsafe_arrays, true, in_branches, in_loops);
            }
            Stmt::Loop(l) => walk_stmts(&l.body, &mut |s| {
                if let Stmt::Let {
                    var,
                    expr: Expr::Index { array, .. },
                } = s
                {
                    if unsafe_arrays.contains(array) {
                        in_loops.push(*var);
                    }
                }
            }),
            _ => {}
        }
    }
}

/// `let v = a[i];` becomes `let v = recorded;` for the loads in `recorded`.
fn replace_loads(block: &mut Block, recorded: &HashMap<Var, Var>) {
    for stmt in &mut block.stmts {
        if let Stmt::Let { var, expr } = stmt {
            if let Some(r) = recorded.get(var) {
                *expr = Expr::Use(Operand::Var(*r));
            }
        }
        for b in stmt.blocks_mut() {
            replace_loads(b, recorded);
        }
    }
}

fn strip_outer_stores(block: &mut Block, local: &HashSet<Var>) {
    block
        .stmts
        .retain(|s| !matches!(s, Stmt::Store { array, .. } if !local.contains(array)));
    for s in &mut block.stmts {
        for b in s.blocks_mut() {
            strip_outer_stores(b, local);
        }
    }
}

/// Renames the variables `block` defines (including loop variables, phis and
/// counts of nested loops) according to `map`.
pub(crate) fn rename_definitions(block: &mut Block, map: &HashMap<Var, Operand>) {
    let get = |v: &mut Var| {
        if let Some(Operand::Var(new)) = map.get(v) {
            *v = *new;
        }
    };
    for stmt in &mut block.stmts {
        match stmt {
            Stmt::Let { var, .. } | Stmt::DeclMut { var, .. } | Stmt::LetArray { var, .. } => {
                get(var)
            }
            Stmt::LetTuple { vars, .. } | Stmt::Pop { vars, .. } => vars.iter_mut().for_each(get),
            Stmt::If { outs, .. } => outs.iter_mut().for_each(get),
            Stmt::Loop(l) => {
                if let LoopKind::For { var, .. } = &mut l.kind {
                    get(var);
                }
                for c in &mut l.carried {
                    get(&mut c.phi);
                    get(&mut c.out);
                }
                if let Some(c) = &mut l.count {
                    get(c);
                }
            }
            _ => {}
        }
        for b in stmt.blocks_mut() {
            rename_definitions(b, map);
        }
    }
}
