//! IR -> IR clean-up after the transforms: constant folding and the 0/1
//! identities, copy propagation, common subexpressions, adjoint accumulators
//! turned into plain `let`s where they have a single contribution, and dead
//! code (unused values, adjoints that nothing reads, `if` outs nobody uses).
//! The passes run to a fixed point; each is small and local.
//!
//! Zero is a *strong* zero here: `0 * x` folds to `0` even though `x` might
//! be infinite at run time. A constant-zero partial means "no dependence"
//! (PyTorch and JAX treat symbolic zeros the same way), so the fold never
//! turns a finite derivative into NaN; it can only remove a NaN that would
//! otherwise be multiplied in from an unrelated term.

use std::collections::{HashMap, HashSet};

use crate::ir::{BinOp, Block, Expr, FloatConst, Func, Operand, Stmt, Ty, UnOp, Var};

/// Simplifies `func` in place.
pub fn simplify(func: &mut Func) {
    for _ in 0..16 {
        let before = format!("{}", func.body);
        fold_block(&mut func.body);
        propagate_copies(func);
        cse_block(&mut func.body, &mut HashMap::new());
        propagate_copies(func);
        sink_accumulators(func);
        eliminate_dead_code(func);
        if format!("{}", func.body) == before {
            break;
        }
    }
}

// ------------------------------------------------------------------ folding

fn fold_block(block: &mut Block) {
    block.stmts.retain_mut(|stmt| {
        match stmt {
            Stmt::Let { expr, .. } | Stmt::DeclMut { expr, .. } => fold_expr(expr),
            Stmt::Accum { expr, .. } => {
                fold_expr(expr);
                if let Expr::Use(o) = expr {
                    if o.is_float_value(0.0) {
                        return false;
                    }
                }
            }
            Stmt::AccumGrad { value, .. } => {
                if value.is_float_value(0.0) {
                    return false;
                }
            }
            Stmt::If {
                then_block,
                else_block,
                ..
            } => {
                fold_block(then_block);
                fold_block(else_block);
            }
            Stmt::LetTuple { .. } => {}
        }
        true
    });
}

fn constant(value: f64, a: &Operand, b: Option<&Operand>) -> Option<Operand> {
    if !value.is_finite() {
        return None;
    }
    let ty_of = |o: &Operand| match o {
        Operand::Float(c) => c.ty,
        _ => Ty::Float,
    };
    let ty = Ty::join([ty_of(a), b.map_or(Ty::Float, ty_of)]);
    Some(Operand::Float(FloatConst { value, ty }))
}

fn fold_expr(expr: &mut Expr) {
    let folded = match &*expr {
        Expr::Binary(op, a, b) => fold_binary(*op, a, b),
        Expr::Unary(UnOp::Neg, a) => a
            .as_float()
            .and_then(|v| constant(-v, a, None))
            .map(Expr::Use),
        Expr::Cast { operand, ty } => match (operand.as_int(), crate::lower::classify(ty)) {
            (Some(i), t @ (Ty::F32 | Ty::F64)) => Some(Expr::Use(Operand::Float(FloatConst {
                value: i as f64,
                ty: t,
            }))),
            _ => None,
        },
        Expr::Prim { rule, args, .. } if rule.name == "powi" => {
            match args.get(1).and_then(Operand::as_int) {
                Some(1) => Some(Expr::Use(args[0].clone())),
                Some(0) => Some(Expr::Use(Operand::float(1.0))),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(f) = folded {
        *expr = f;
    }
}

fn fold_binary(op: BinOp, a: &Operand, b: &Operand) -> Option<Expr> {
    if let (Some(x), Some(y)) = (a.as_int(), b.as_int()) {
        let value = match op {
            BinOp::Add => x.checked_add(y)?,
            BinOp::Sub => x.checked_sub(y)?,
            BinOp::Mul => x.checked_mul(y)?,
            _ => return None,
        };
        let lit = if value < 0 {
            return None;
        } else {
            syn::LitInt::new(&value.to_string(), proc_macro2::Span::call_site())
        };
        return Some(Expr::Use(Operand::Lit(lit.into())));
    }
    let use_ = |o: &Operand| Some(Expr::Use(o.clone()));
    let zero = || Some(Expr::Use(Operand::float(0.0)));
    if let (Some(x), Some(y)) = (a.as_float(), b.as_float()) {
        let value = match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            BinOp::Div => x / y,
            _ => return None,
        };
        return constant(value, a, Some(b)).map(Expr::Use);
    }
    let is = |o: &Operand, v: f64| o.is_float_value(v);
    match op {
        BinOp::Add if is(a, 0.0) => use_(b),
        BinOp::Add if is(b, 0.0) => use_(a),
        BinOp::Sub if is(b, 0.0) => use_(a),
        BinOp::Sub if is(a, 0.0) => Some(Expr::Unary(UnOp::Neg, b.clone())),
        BinOp::Mul if is(a, 0.0) || is(b, 0.0) => zero(),
        BinOp::Mul if is(a, 1.0) => use_(b),
        BinOp::Mul if is(b, 1.0) => use_(a),
        BinOp::Mul if is(a, -1.0) => Some(Expr::Unary(UnOp::Neg, b.clone())),
        BinOp::Mul if is(b, -1.0) => Some(Expr::Unary(UnOp::Neg, a.clone())),
        BinOp::Div if is(b, 1.0) => use_(a),
        BinOp::Div if is(a, 0.0) => zero(),
        _ => None,
    }
}

// ------------------------------------------------------- copy propagation

/// Removes `let a = b;` (and `let a = -(-b)`) by reading `b` wherever `a` was read.
/// Copies of mutable accumulators are kept: their value changes over time.
fn propagate_copies(func: &mut Func) {
    let mutable = mutable_vars(&func.body);
    let mut map: HashMap<Var, Operand> = HashMap::new();
    let mut negations: HashMap<Var, Operand> = HashMap::new();
    collect_copies(&mut func.body, &mutable, &mut map, &mut negations);
    if map.is_empty() {
        return;
    }
    substitute_block(&mut func.body, &|v| resolve(&map, v));
}

fn resolve(map: &HashMap<Var, Operand>, v: Var) -> Option<Operand> {
    let mut current = map.get(&v)?.clone();
    for _ in 0..64 {
        match current.as_var().and_then(|n| map.get(&n)) {
            Some(next) => current = next.clone(),
            None => break,
        }
    }
    Some(current)
}

fn collect_copies(
    block: &mut Block,
    mutable: &HashSet<Var>,
    map: &mut HashMap<Var, Operand>,
    negations: &mut HashMap<Var, Operand>,
) {
    block.stmts.retain_mut(|stmt| match stmt {
        Stmt::Let {
            var,
            expr: Expr::Use(o),
        } => {
            if o.as_var().is_some_and(|v| mutable.contains(&v)) {
                return true;
            }
            map.insert(*var, o.clone());
            false
        }
        Stmt::Let {
            var,
            expr: Expr::Unary(UnOp::Neg, Operand::Var(inner)),
        } => {
            let inner = resolve(map, *inner)
                .and_then(|o| o.as_var())
                .unwrap_or(*inner);
            if let Some(original) = negations.get(&inner).cloned() {
                if !original.as_var().is_some_and(|v| mutable.contains(&v)) {
                    map.insert(*var, original);
                    return false;
                }
            }
            negations.insert(*var, Operand::Var(inner));
            true
        }
        Stmt::If {
            then_block,
            else_block,
            ..
        } => {
            collect_copies(then_block, mutable, map, negations);
            collect_copies(else_block, mutable, map, negations);
            true
        }
        _ => true,
    });
}

fn mutable_vars(block: &Block) -> HashSet<Var> {
    let mut set = HashSet::new();
    crate::ir::walk_stmts(block, &mut |s| {
        if let Stmt::DeclMut { var, .. } | Stmt::Accum { var, .. } = s {
            set.insert(*var);
        }
    });
    set
}

/// Replaces every read of a variable for which `f` answers.
pub fn substitute_block(block: &mut Block, f: &dyn Fn(Var) -> Option<Operand>) {
    let operand = |o: &mut Operand| {
        if let Some(new) = o.as_var().and_then(f) {
            *o = new;
        }
    };
    for stmt in &mut block.stmts {
        match stmt {
            Stmt::Let { expr, .. }
            | Stmt::LetTuple { expr, .. }
            | Stmt::DeclMut { expr, .. }
            | Stmt::Accum { expr, .. } => {
                expr.map_vars(&mut |v| f(v).unwrap_or(Operand::Var(v)));
            }
            Stmt::AccumGrad { value, .. } => operand(value),
            Stmt::If {
                cond,
                then_block,
                else_block,
                ..
            } => {
                operand(cond);
                substitute_block(then_block, f);
                substitute_block(else_block, f);
            }
        }
    }
    for y in &mut block.yields {
        operand(y);
    }
}

// ------------------------------------------------ common subexpressions

/// Reuses the first of two identical pure computations; a value computed in
/// an enclosing block is visible in nested blocks, not the other way round.
fn cse_block(block: &mut Block, seen: &mut HashMap<String, Var>) {
    let mutable = mutable_vars(block);
    for stmt in &mut block.stmts {
        match stmt {
            Stmt::Let { var, expr } => {
                let reads_mutable = expr.vars().iter().any(|v| mutable.contains(v));
                if reads_mutable || !expr.is_pure() || matches!(expr, Expr::Use(_)) {
                    continue;
                }
                let key = expr_key(expr);
                match seen.get(&key) {
                    Some(&earlier) => *expr = Expr::Use(Operand::Var(earlier)),
                    None => {
                        seen.insert(key, *var);
                    }
                }
            }
            Stmt::If {
                then_block,
                else_block,
                ..
            } => {
                cse_block(then_block, &mut seen.clone());
                cse_block(else_block, &mut seen.clone());
            }
            _ => {}
        }
    }
}

fn expr_key(expr: &Expr) -> String {
    match expr {
        Expr::Prim { form, .. } => format!("{expr} {form:?}"),
        _ => expr.to_string(),
    }
}

// --------------------------------------------------- adjoint accumulators

/// `let mut d = 0.0; …; d += e;` with nothing touching `d` in between becomes
/// `let mut d = e;`, and an accumulator never added to again becomes a `let`.
fn sink_accumulators(func: &mut Func) {
    sink_block(&mut func.body);
    let mut accumulated = HashSet::new();
    crate::ir::walk_stmts(&func.body, &mut |s| {
        if let Stmt::Accum { var, .. } = s {
            accumulated.insert(*var);
        }
    });
    freeze_block(&mut func.body, &accumulated);
}

fn mentions(stmt: &Stmt, var: Var) -> bool {
    let touches = |s: &Stmt| s.reads().contains(&var) || s.defines().contains(&var);
    let mut found = touches(stmt);
    if let Stmt::If {
        then_block,
        else_block,
        ..
    } = stmt
    {
        for b in [then_block, else_block] {
            crate::ir::walk_stmts(b, &mut |s| found |= touches(s));
            found |= b.yields.iter().any(|y| y.as_var() == Some(var));
        }
    }
    found
}

fn sink_block(block: &mut Block) {
    let mut i = 0;
    while i < block.stmts.len() {
        if let Stmt::If {
            then_block,
            else_block,
            ..
        } = &mut block.stmts[i]
        {
            sink_block(then_block);
            sink_block(else_block);
        }
        let Stmt::DeclMut {
            var,
            expr: Expr::Use(init),
        } = &block.stmts[i]
        else {
            i += 1;
            continue;
        };
        if !init.is_float_value(0.0) {
            i += 1;
            continue;
        }
        let var = *var;
        let next = (i + 1..block.stmts.len()).find(|&j| mentions(&block.stmts[j], var));
        match next {
            None if !block.yields.iter().any(|y| y.as_var() == Some(var)) => {
                // Never added to: the adjoint is zero and nothing reads it.
                block.stmts.remove(i);
                continue;
            }
            Some(j) => {
                if let Stmt::Accum { var: target, expr } = &block.stmts[j] {
                    if *target == var && !expr.vars().contains(&var) {
                        let expr = expr.clone();
                        block.stmts[j] = Stmt::DeclMut { var, expr };
                        block.stmts.remove(i);
                        continue;
                    }
                }
            }
            None => {}
        }
        i += 1;
    }
}

fn freeze_block(block: &mut Block, accumulated: &HashSet<Var>) {
    for stmt in &mut block.stmts {
        match stmt {
            Stmt::DeclMut { var, expr } if !accumulated.contains(var) => {
                *stmt = Stmt::Let {
                    var: *var,
                    expr: expr.clone(),
                };
            }
            Stmt::If {
                then_block,
                else_block,
                ..
            } => {
                freeze_block(then_block, accumulated);
                freeze_block(else_block, accumulated);
            }
            _ => {}
        }
    }
}

// ----------------------------------------------------------- dead code

/// Reads that keep a variable alive: everything but an accumulator's own `+=`.
fn live_reads(func: &Func) -> HashMap<Var, usize> {
    let mut reads = vec![];
    crate::ir::walk_stmts(&func.body, &mut |s| match s {
        Stmt::Accum { expr, .. } => reads.extend(expr.vars()),
        other => reads.extend(other.reads()),
    });
    let mut counts: HashMap<Var, usize> = HashMap::new();
    for v in reads {
        *counts.entry(v).or_default() += 1;
    }
    collect_yields(&func.body, &mut |v| *counts.entry(v).or_default() += 1);
    counts
}

fn collect_yields(block: &Block, f: &mut impl FnMut(Var)) {
    for y in &block.yields {
        if let Some(v) = y.as_var() {
            f(v);
        }
    }
    for stmt in &block.stmts {
        if let Stmt::If {
            then_block,
            else_block,
            ..
        } = stmt
        {
            collect_yields(then_block, f);
            collect_yields(else_block, f);
        }
    }
}

fn eliminate_dead_code(func: &mut Func) {
    for _ in 0..64 {
        let live = live_reads(func);
        let is_live = |v: &Var| live.get(v).copied().unwrap_or(0) > 0;
        let mut changed = false;
        dce_block(&mut func.body, &is_live, &mut changed);
        if !changed {
            break;
        }
    }
}

fn dce_block(block: &mut Block, is_live: &dyn Fn(&Var) -> bool, changed: &mut bool) {
    let before = block.stmts.len();
    block.stmts.retain_mut(|stmt| match stmt {
        Stmt::Let { var, expr } | Stmt::DeclMut { var, expr } => is_live(var) || !expr.is_pure(),
        Stmt::Accum { var, .. } => is_live(var),
        Stmt::LetTuple { vars, expr } => {
            let replacement = match (&*expr, vars.as_slice()) {
                (Expr::GradCall { func, args }, [value, grad]) if !is_live(grad) => Some((
                    *value,
                    Expr::Call {
                        func: func.clone(),
                        args: args.clone(),
                    },
                )),
                _ => None,
            };
            if let Some((var, expr)) = replacement {
                *changed = true;
                let live = is_live(&var);
                *stmt = Stmt::Let { var, expr };
                return live;
            }
            true
        }
        Stmt::AccumGrad { .. } => true,
        Stmt::If {
            then_block,
            else_block,
            outs,
            ..
        } => {
            let mut i = 0;
            while i < outs.len() {
                if is_live(&outs[i]) {
                    i += 1;
                } else {
                    *changed = true;
                    outs.remove(i);
                    then_block.yields.remove(i);
                    else_block.yields.remove(i);
                }
            }
            dce_block(then_block, is_live, changed);
            dce_block(else_block, is_live, changed);
            !(outs.is_empty() && then_block.stmts.is_empty() && else_block.stmts.is_empty())
        }
    });
    if block.stmts.len() != before {
        *changed = true;
    }
}
