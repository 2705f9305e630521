//! IR -> IR clean-up after the transforms: constant folding and the 0/1
//! identities, copy propagation, common subexpressions, adjoint accumulators
//! turned into plain `let`s where they have a single contribution, and dead
//! code (unused values, adjoints nothing reads, `if` outs and loop-carried
//! variables nobody uses, tape fields nobody pops, whole tapes). The passes
//! run to a fixed point; each is small and local.
//!
//! Zero is a *strong* zero here: `0 * x` folds to `0` even though `x` might
//! be infinite at run time. A constant-zero partial means "no dependence"
//! (PyTorch and JAX treat symbolic zeros the same way), so the fold never
//! turns a finite derivative into NaN; it can only remove a NaN that would
//! otherwise be multiplied in from an unrelated term.

use std::collections::hash_map::Entry;

use crate::ir::{
    substitute_block, walk_stmts, BinOp, Block, CallForm, Expr, FastMap, FastSet, FloatConst, Func,
    LoopKind, Operand, Stmt, Target, Ty, UnOp, Var,
};

/// Simplifies `func` in place, fusing reduction loops (`fuse.rs`) once the
/// passes have removed what keeps them apart.
pub fn simplify(func: &mut Func) {
    run_passes(func);
    if crate::fuse::fuse_reductions(func) {
        run_passes(func);
        if crate::fuse::record_rows(func) {
            run_passes(func);
        }
    }
    if crate::carry::carry_next_element(func) {
        run_passes(func);
    }
}

/// Runs the passes until a round changes nothing. Each pass reports
/// whether it changed the body (comparing the printed body before and after
/// a round cost more than most passes).
fn run_passes(func: &mut Func) {
    for _ in 0..16 {
        let strong = strong_zero_vars(func);
        let mut changed = fold_block(&mut func.body, &strong);
        changed |= propagate_copies(func);
        let stored = stored_arrays(&func.body);
        changed |= cse_block(&mut func.body, &mut FastMap::default(), &stored, None);
        changed |= propagate_copies(func);
        changed |= forward_accumulator_copies(&mut func.body);
        changed |= drop_self_stores(&mut func.body);
        changed |= drop_dead_element_stores(&mut func.body);
        changed |= fold_negated_operands(func);
        changed |= fold_scaled_products(func);
        changed |= sink_accumulators(func);
        changed |= eliminate_dead_code(func);
        if !changed {
            break;
        }
    }
}

// ------------------------------------------------------------------ folding

fn is_zero_expr(expr: &Expr) -> bool {
    matches!(expr, Expr::Use(o) if o.is_float_value(0.0))
}

/// The variables holding derivative values, where `0 * x` may fold to `0`.
/// The primal's own values keep IEEE semantics (`0 * inf` is NaN there too),
/// so that a companion's value is exactly the function's.
fn strong_zero_vars(func: &Func) -> FastSet<Var> {
    let Some(from) = func.derivative_vars_from else {
        return FastSet::default();
    };
    (from..func.vars.len() as u32)
        .map(Var)
        .filter(|v| !matches!(func.info(*v).origin, crate::ir::Origin::Export(_)))
        .collect()
}

/// Returns whether anything changed (as every pass below does).
fn fold_block(block: &mut Block, strong: &FastSet<Var>) -> bool {
    let mut changed = false;
    let len = block.stmts.len();
    block.stmts.retain_mut(|stmt| {
        // Accumulations are always derivative code.
        let strong_here = match stmt {
            Stmt::Let { var, .. } | Stmt::DeclMut { var, .. } => strong.contains(var),
            _ => true,
        };
        if let Some(expr) = stmt.expr_mut() {
            changed |= fold_expr(expr, strong_here);
        }
        for b in stmt.blocks_mut() {
            changed |= fold_block(b, strong);
        }
        match stmt {
            Stmt::Accum { expr, .. } | Stmt::AccumIndex { expr, .. } => !is_zero_expr(expr),
            Stmt::AccumGrad { value, .. } => !value.is_float_value(0.0),
            _ => true,
        }
    });
    changed || block.stmts.len() != len
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

fn fold_expr(expr: &mut Expr, strong_zero: bool) -> bool {
    let folded = match &*expr {
        Expr::Binary(op, a, b) => fold_binary(*op, a, b, strong_zero),
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
        // `gate(s, 1.0)` is `s` (a gate is finite).
        Expr::Prim { rule, args, .. }
            if rule.name == "gate" && args.get(1).is_some_and(|d| d.is_float_value(1.0)) =>
        {
            Some(Expr::Use(args[0].clone()))
        }
        // `mask_zero(c, v)` is `v` for a constant `c != 0` (NaN included) and
        // exactly `0` for `c == 0`; `gate(s, d)` is `s · d` for a constant
        // `s != 0` and `0` for `s == 0`. A constant exponent makes these out
        // of `powi`'s and `powf`'s rules.
        Expr::Prim { rule, args, .. }
            if matches!(rule.name, "mask_zero" | "gate") && args.len() == 2 =>
        {
            match args[0].as_float() {
                Some(0.0) => Some(Expr::Use(Operand::float(0.0))),
                Some(_) if rule.name == "mask_zero" => Some(Expr::Use(args[1].clone())),
                Some(_) => Some(Expr::Binary(BinOp::Mul, args[0].clone(), args[1].clone())),
                None => None,
            }
        }
        Expr::Prim { rule, args, .. } if rule.name == "powi" => {
            match args.get(1).and_then(Operand::as_int) {
                Some(1) => Some(Expr::Use(args[0].clone())),
                Some(0) => Some(Expr::Use(Operand::float(1.0))),
                _ => None,
            }
        }
        _ => None,
    };
    let changed = folded.is_some();
    if let Some(f) = folded {
        *expr = f;
    }
    changed
}

fn fold_binary(op: BinOp, a: &Operand, b: &Operand, strong_zero: bool) -> Option<Expr> {
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
        // `0 + x`, `x + 0` and `0 - x` differ from `x`, `x`, `-x` in the sign
        // of a zero result (`0.0 + -0.0` is `+0.0`), which `signum` or `1 / v`
        // can see: folded only in derivative code, where the sign of a zero
        // adjoint does not matter. `x - 0` is exact.
        BinOp::Add if strong_zero && is(a, 0.0) => use_(b),
        BinOp::Add if strong_zero && is(b, 0.0) => use_(a),
        BinOp::Sub if is(b, 0.0) => use_(a),
        BinOp::Sub if strong_zero && is(a, 0.0) => Some(Expr::Unary(UnOp::Neg, b.clone())),
        BinOp::Mul if strong_zero && (is(a, 0.0) || is(b, 0.0)) => zero(),
        BinOp::Mul if is(a, 1.0) => use_(b),
        BinOp::Mul if is(b, 1.0) => use_(a),
        BinOp::Mul if is(a, -1.0) => Some(Expr::Unary(UnOp::Neg, b.clone())),
        BinOp::Mul if is(b, -1.0) => Some(Expr::Unary(UnOp::Neg, a.clone())),
        BinOp::Div if is(b, 1.0) => use_(a),
        BinOp::Div if strong_zero && is(a, 0.0) => zero(),
        _ => None,
    }
}

// ------------------------------------------------------------ dead stores

/// Removes `a[j] = v;` from a loop over `j` when nothing reads the element
/// afterwards: `a` is a local array of the enclosing block, the loop is the
/// last statement of the block that touches `a`, and in the loop `a` is
/// touched only at `a[j]`, at the top level of the body, reads before
/// stores. The reverse pass leaves such stores behind (`__d_h[j] = 0.0`:
/// the adjoint of an element the forward loop overwrote, reset after its
/// last use); without them the loop only accumulates, and `fuse.rs` runs it
/// forwards (W4's hidden layer).
fn drop_dead_element_stores(block: &mut Block) -> bool {
    let mut changed = false;
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            changed |= drop_dead_element_stores(b);
        }
    }
    let arrays: Vec<(usize, Var)> = block
        .stmts
        .iter()
        .enumerate()
        .filter_map(|(at, s)| match s {
            Stmt::LetArray { var, .. } => Some((at, *var)),
            _ => None,
        })
        .collect();
    for (declared, a) in arrays {
        if block.yields.iter().any(|o| o.as_var() == Some(a)) {
            continue;
        }
        let Some(last) = block.stmts.iter().rposition(|s| mentions(s, a)) else {
            continue;
        };
        if last <= declared {
            continue;
        }
        let Stmt::Loop(l) = &mut block.stmts[last] else {
            continue;
        };
        let LoopKind::For { var: j, .. } = l.kind else {
            continue;
        };
        let at_j = |index: &[Operand]| matches!(index, [Operand::Var(k)] if *k == j);
        let mut stored = false;
        let mut only_own_element = !l.body.yields.iter().any(|o| o.as_var() == Some(a));
        for s in &l.body.stmts {
            only_own_element &= match s {
                Stmt::Let {
                    expr: Expr::Index { array, index },
                    ..
                } if *array == a => !stored && at_j(index),
                Stmt::Store { array, index, .. } if *array == a => {
                    stored = true;
                    at_j(index)
                }
                other => !mentions(other, a),
            };
        }
        if stored && only_own_element {
            l.body
                .stmts
                .retain(|s| !matches!(s, Stmt::Store { array, .. } if *array == a));
            changed = true;
        }
    }
    changed
}

/// Whether `stmt`, or anything nested in it, reads or writes `var` (a
/// store or `+=` into an array reads it).
fn mentions(stmt: &Stmt, var: Var) -> bool {
    let mut reads = stmt.reads();
    for b in stmt.blocks() {
        crate::ir::reads_in_block(b, &mut reads);
    }
    reads.contains(&var)
}

// ------------------------------------------------------------ self stores

/// Removes `h[i] = h[i];`, which is what `h[i] *= 1.0` folds to (clippy's
/// `self_assignment` is an error): a store of the value just loaded from
/// the same element, with no store to the array in between.
fn drop_self_stores(block: &mut Block) -> bool {
    let len = block.stmts.len();
    let mut loads: FastMap<Var, (Var, String)> = FastMap::default();
    let key = |index: &[Operand]| {
        index
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    block.stmts.retain(|stmt| match stmt {
        Stmt::Let {
            var,
            expr: Expr::Index { array, index },
        } => {
            loads.insert(*var, (*array, key(index)));
            true
        }
        Stmt::Store {
            array,
            index,
            value,
        } => {
            let same = value
                .as_var()
                .and_then(|v| loads.get(&v))
                .is_some_and(|(a, k)| a == array && *k == key(index));
            loads.retain(|_, (a, _)| a != array);
            !same
        }
        _ => {
            if !stmt.blocks().is_empty() {
                // Nested code may store anywhere.
                loads.clear();
            }
            true
        }
    });
    let mut changed = block.stmts.len() != len;
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            changed |= drop_self_stores(b);
        }
    }
    changed
}

// ------------------------------------------------------- copy propagation

/// Removes `let a = b;` (and `let a = -(-b)`) by reading `b` wherever `a` was read.
/// Copies of mutable variables (accumulators, loop phis) are kept: their
/// value changes over time.
fn propagate_copies(func: &mut Func) -> bool {
    let mutable = mutable_vars(&func.body);
    let mut map: FastMap<Var, Operand> = FastMap::default();
    let mut negations: FastMap<Var, Operand> = FastMap::default();
    // Every copy found is removed.
    collect_copies(&mut func.body, &mutable, &mut map, &mut negations);
    if map.is_empty() {
        return false;
    }
    substitute_block(&mut func.body, &|v| resolve(&map, v));
    true
}

fn resolve(map: &FastMap<Var, Operand>, v: Var) -> Option<Operand> {
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
    mutable: &FastSet<Var>,
    map: &mut FastMap<Var, Operand>,
    negations: &mut FastMap<Var, Operand>,
) {
    block.stmts.retain_mut(|stmt| {
        for b in stmt.blocks_mut() {
            collect_copies(b, mutable, map, negations);
        }
        match stmt {
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
            _ => true,
        }
    });
}

/// `a + t` and `t + a` with `t = -b` become `a - b`, and `a - t` becomes
/// `a + b`, for floats: the same numbers exactly (IEEE 754 defines `a - b`
/// as `a + (-b)`), one operation fewer, and what a person writes (the
/// rules' `-1` partials leave such negations in forward-mode code). `b` must
/// be a value that does not change after `t` is defined.
fn fold_negated_operands(func: &mut Func) -> bool {
    let mutable = mutable_vars(&func.body);
    let mut negated: FastMap<Var, Operand> = FastMap::default();
    walk_stmts(&func.body, &mut |s| {
        if let Stmt::Let {
            var,
            expr: Expr::Unary(UnOp::Neg, b),
        } = s
        {
            if func.info(*var).ty.is_float()
                && !matches!(b.as_var(), Some(v) if mutable.contains(&v))
            {
                negated.insert(*var, b.clone());
            }
        }
    });
    if negated.is_empty() {
        return false;
    }
    fold_negated_in(&mut func.body, &negated)
}

fn fold_negated_in(block: &mut Block, negated: &FastMap<Var, Operand>) -> bool {
    let mut changed = false;
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            changed |= fold_negated_in(b, negated);
        }
        let Some(expr) = stmt.expr_mut() else {
            continue;
        };
        let of = |o: &Operand| o.as_var().and_then(|v| negated.get(&v)).cloned();
        let rewritten = match &*expr {
            Expr::Binary(BinOp::Add, a, t) if of(t).is_some() => {
                of(t).map(|b| Expr::Binary(BinOp::Sub, a.clone(), b))
            }
            Expr::Binary(BinOp::Add, t, a) if of(t).is_some() => {
                of(t).map(|b| Expr::Binary(BinOp::Sub, a.clone(), b))
            }
            Expr::Binary(BinOp::Sub, a, t) if of(t).is_some() => {
                of(t).map(|b| Expr::Binary(BinOp::Add, a.clone(), b))
            }
            _ => None,
        };
        if let Some(new) = rewritten {
            *expr = new;
            changed = true;
        }
    }
    changed
}

/// `c₁ · t` with `t = c₂ · x` becomes `(c₁c₂) · x` in derivative code, when
/// `c₁` or `c₂` is a power of two and `c₁c₂` a normal number. Scaling by a
/// power of two is exact, so both forms round `c₁c₂x` once and give the
/// same bits, unless `c₂x` itself overflows or falls below the normal range
/// (why the primal's values keep their form). A square's partial `2 · t`
/// meets the user's constant: Rosenbrock's `100 (x[i+1] − x[i]²)²` gives
/// `200 · t` instead of `100 · (2 · t)`, and `0.5 · r²` gives `r`.
fn fold_scaled_products(func: &mut Func) -> bool {
    let strong = strong_zero_vars(func);
    if strong.is_empty() {
        return false;
    }
    let mutable = mutable_vars(&func.body);
    let mut scaled: FastMap<Var, (Operand, Operand)> = FastMap::default();
    walk_stmts(&func.body, &mut |s| {
        if let Stmt::Let {
            var,
            expr: Expr::Binary(BinOp::Mul, a, b),
        } = s
        {
            let (c, x) = match (a, b) {
                (Operand::Float(_), Operand::Var(_)) => (a, b),
                (Operand::Var(_), Operand::Float(_)) => (b, a),
                _ => return,
            };
            if strong.contains(var)
                && func.info(*var).ty.is_float()
                && !matches!(x.as_var(), Some(v) if mutable.contains(&v))
            {
                scaled.insert(*var, (c.clone(), x.clone()));
            }
        }
    });
    if scaled.is_empty() {
        return false;
    }
    fold_scaled_in(&mut func.body, &scaled, &strong)
}

fn fold_scaled_in(
    block: &mut Block,
    scaled: &FastMap<Var, (Operand, Operand)>,
    strong: &FastSet<Var>,
) -> bool {
    let mut changed = false;
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            changed |= fold_scaled_in(b, scaled, strong);
        }
        let derivative = match stmt {
            Stmt::Let { var, .. } | Stmt::DeclMut { var, .. } => strong.contains(var),
            _ => true,
        };
        let Some(expr) = stmt.expr_mut().filter(|_| derivative) else {
            continue;
        };
        let Expr::Binary(BinOp::Mul, a, b) = &*expr else {
            continue;
        };
        let (outer, t, on_the_left) = match (a, b) {
            (Operand::Float(_), Operand::Var(t)) => (a, *t, true),
            (Operand::Var(t), Operand::Float(_)) => (b, *t, false),
            _ => continue,
        };
        let Some((inner, x)) = scaled.get(&t) else {
            continue;
        };
        let (Some(c1), Some(c2)) = (outer.as_float(), inner.as_float()) else {
            continue;
        };
        let Some(Operand::Float(product)) = constant(c1 * c2, outer, Some(inner)) else {
            continue;
        };
        // A factor ±1 is `fold_binary`'s, which removes the product.
        let unit = |c: f64| c.abs() == 1.0;
        if (is_power_of_two(c1) || is_power_of_two(c2))
            && !unit(c1)
            && !unit(c2)
            && is_normal_in(product.value, product.ty)
        {
            let (product, x) = (Operand::Float(product), x.clone());
            *expr = if on_the_left {
                Expr::Binary(BinOp::Mul, product, x)
            } else {
                Expr::Binary(BinOp::Mul, x, product)
            };
            changed = true;
        }
    }
    changed
}

/// Whether `v` is `±2ᵏ`, a normal number.
fn is_power_of_two(v: f64) -> bool {
    v.is_normal() && v.to_bits() & ((1 << 52) - 1) == 0
}

/// Whether `v` is a normal number of type `ty` (an unsuffixed float may be
/// an `f32`).
fn is_normal_in(v: f64, ty: Ty) -> bool {
    match ty {
        Ty::F64 => v.is_normal(),
        _ => {
            v.is_normal() && (f64::from(f32::MIN_POSITIVE)..=f64::from(f32::MAX)).contains(&v.abs())
        }
    }
}

/// Variables whose value changes after they are defined: accumulators and
/// the loop-carried phis.
fn mutable_vars(block: &Block) -> FastSet<Var> {
    let mut set = FastSet::default();
    walk_stmts(block, &mut |s| match s {
        Stmt::DeclMut { var, .. } | Stmt::Accum { var, .. } | Stmt::Assign { var, .. } => {
            set.insert(*var);
        }
        Stmt::Loop(l) => set.extend(l.carried.iter().map(|c| c.phi)),
        _ => {}
    });
    set
}

/// Arrays written after they are created (their loads are not values).
fn stored_arrays(block: &Block) -> FastSet<Var> {
    let mut set = FastSet::default();
    walk_stmts(block, &mut |s| match s {
        Stmt::Store { array, .. } => {
            set.insert(*array);
        }
        Stmt::AccumIndex {
            target: Target::Var(v),
            ..
        } => {
            set.insert(*v);
        }
        _ => {}
    });
    set
}

// ------------------------------------------------ common subexpressions

/// Reuses the first of two identical pure computations; a value computed in
/// an enclosing block is visible in nested blocks (loop bodies included),
/// not the other way round.
///
/// `seen` holds what the enclosing blocks and this one computed. The keys a
/// nested block adds go to `added`, for the caller to take out of the table
/// when that block ends (rather than each nested block working on a copy of
/// the table); the function's body passes `None`.
fn cse_block(
    block: &mut Block,
    seen: &mut FastMap<CseKey, Var>,
    stored: &FastSet<Var>,
    mut added: Option<&mut Vec<CseKey>>,
) -> bool {
    let mutable = mutable_vars(block);
    let mut changed = false;
    for stmt in &mut block.stmts {
        if let Stmt::Let { var, expr } = stmt {
            let mut reads_mutable = false;
            expr.for_each_var(|v| reads_mutable |= mutable.contains(&v));
            let loads_storage = matches!(expr, Expr::Index { array, .. } if stored.contains(array));
            if reads_mutable || loads_storage || matches!(expr, Expr::Use(_)) {
                continue;
            }
            match seen.entry(CseKey::of(expr)) {
                Entry::Occupied(earlier) => {
                    *expr = Expr::Use(Operand::Var(*earlier.get()));
                    changed = true;
                }
                Entry::Vacant(entry) => {
                    if let Some(added) = added.as_deref_mut() {
                        added.push(entry.key().clone());
                    }
                    entry.insert(*var);
                }
            }
            continue;
        }
        for b in stmt.blocks_mut() {
            let mut inner = vec![];
            changed |= cse_block(b, seen, stored, Some(&mut inner));
            for key in inner {
                seen.remove(&key);
            }
        }
    }
    changed
}

/// What makes two right-hand sides the same computation: the operation,
/// its operands (constants by value, whatever their suffix), the syntax it
/// carries (paths, types, patterns) by its tokens, and for a primitive the
/// form it is written in. Neither spans nor the path a user wrote for a
/// runtime function count: the same call either way.
///
/// Syntax is boxed: the table moves its keys, and a `syn::Type` or a
/// `syn::Pat` inline would make every key hundreds of bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
enum CseKey {
    Unary(UnOp, KeyOperand),
    Binary(BinOp, KeyOperand, KeyOperand),
    Prim(&'static str, CallForm, Vec<KeyOperand>),
    Cast(KeyOperand, Box<syn::Type>),
    Call(Box<syn::Path>, Vec<KeyOperand>),
    DiffCall(Box<syn::Path>, Vec<KeyOperand>),
    GradCall(Box<syn::Path>, Vec<KeyOperand>),
    HvpCall(Box<syn::Path>, Vec<KeyOperand>, Vec<KeyOperand>),
    ArgGrad(Var, usize),
    Method(KeyOperand, Box<syn::Ident>, Vec<KeyOperand>),
    Field(KeyOperand, Box<syn::Member>),
    Index(Var, Vec<KeyOperand>),
    Len(Var),
    Ref(KeyOperand),
    Matches(KeyOperand, Box<syn::Pat>),
    /// Not a computation: never a key (`cse_block` skips copies).
    Use(KeyOperand),
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum KeyOperand {
    Var(Var),
    /// The value's bits, one for every NaN.
    Float(u64),
    Lit(Box<syn::Lit>),
    Path(Box<syn::Path>),
    Default,
}

impl KeyOperand {
    fn of(o: &Operand) -> Self {
        match o {
            Operand::Var(v) => KeyOperand::Var(*v),
            Operand::Float(c) if c.value.is_nan() => KeyOperand::Float(f64::NAN.to_bits()),
            Operand::Float(c) => KeyOperand::Float(c.value.to_bits()),
            Operand::Lit(l) => KeyOperand::Lit(Box::new(l.clone())),
            Operand::Path(p) => KeyOperand::Path(Box::new(p.clone())),
            Operand::Default => KeyOperand::Default,
        }
    }

    fn all(os: &[Operand]) -> Vec<Self> {
        os.iter().map(KeyOperand::of).collect()
    }
}

impl CseKey {
    fn of(expr: &Expr) -> Self {
        let o = KeyOperand::of;
        let all = KeyOperand::all;
        match expr {
            Expr::Use(a) => CseKey::Use(o(a)),
            Expr::Unary(op, a) => CseKey::Unary(*op, o(a)),
            Expr::Binary(op, a, b) => CseKey::Binary(*op, o(a), o(b)),
            Expr::Prim {
                rule, form, args, ..
            } => CseKey::Prim(rule.name, *form, all(args)),
            Expr::Cast { operand, ty } => CseKey::Cast(o(operand), Box::new(ty.clone())),
            Expr::Call { func, args } => CseKey::Call(Box::new(func.clone()), all(args)),
            Expr::DiffCall { func, args, .. } => {
                CseKey::DiffCall(Box::new(func.clone()), all(args))
            }
            Expr::GradCall { func, args } => CseKey::GradCall(Box::new(func.clone()), all(args)),
            Expr::HvpCall { func, args, dirs } => {
                CseKey::HvpCall(Box::new(func.clone()), all(args), all(dirs))
            }
            Expr::ArgGrad { grad, index, .. } => CseKey::ArgGrad(*grad, *index),
            Expr::Method {
                receiver,
                method,
                args,
            } => CseKey::Method(o(receiver), Box::new(method.clone()), all(args)),
            Expr::Field { base, member } => CseKey::Field(o(base), Box::new(member.clone())),
            Expr::Index { array, index } => CseKey::Index(*array, all(index)),
            Expr::Len(array) => CseKey::Len(*array),
            Expr::Ref(a) => CseKey::Ref(o(a)),
            Expr::Matches { operand, pat } => CseKey::Matches(o(operand), Box::new(pat.clone())),
        }
    }
}

/// `let a = d;` where `d` is an accumulator that nothing changes afterwards
/// in the block: read `d` directly. A loop hands an adjoint to the previous
/// iteration with `d = a;`, which is a no-op when `a` is still `d`'s value.
///
/// One sweep over the block: where each variable is written is indexed up
/// front, removed statements are marked rather than taken out of the vector,
/// and each statement gets the renamings of the copies before it when the
/// sweep reaches it (rather than the rest of the block at every copy, which
/// made long blocks quadratic).
fn forward_accumulator_copies(block: &mut Block) -> bool {
    let mut changed = false;
    for b in block.stmts.iter_mut().flat_map(|s| s.blocks_mut()) {
        changed |= forward_accumulator_copies(b);
    }
    // What the block's copies copy, directly or (a copy of a removed copy
    // is renamed before the sweep reaches it) through other copies.
    let mut copied: FastSet<Var> = FastSet::default();
    let mut roots: FastMap<Var, Var> = FastMap::default();
    for s in &block.stmts {
        if let Stmt::Let {
            var,
            expr: Expr::Use(Operand::Var(d)),
        } = s
        {
            let root = roots.get(d).copied().unwrap_or(*d);
            roots.insert(*var, root);
            copied.extend([*d, root]);
        }
    }
    if copied.is_empty() {
        return changed;
    }
    // Statement indices that write each of those, ascending. A copy is a
    // `let`, never written, so renaming copies moves no write.
    let mut writes_at: FastMap<Var, Vec<usize>> = FastMap::default();
    for (j, s) in block.stmts.iter().enumerate() {
        let mut check = |s: &Stmt| {
            if let Stmt::Accum { var, .. } | Stmt::Assign { var, .. } | Stmt::DeclMut { var, .. } =
                s
            {
                if copied.contains(var) {
                    let at = writes_at.entry(*var).or_default();
                    if at.last() != Some(&j) {
                        at.push(j);
                    }
                }
            }
        };
        check(s);
        for b in s.blocks() {
            walk_stmts(b, &mut check);
        }
    }
    // Copy -> the accumulator it is read as.
    let mut renamed: FastMap<Var, Var> = FastMap::default();
    let mut removed = vec![false; block.stmts.len()];
    for i in 0..block.stmts.len() {
        if removed[i] {
            continue;
        }
        if !renamed.is_empty() {
            crate::ir::substitute_stmt(&mut block.stmts[i], &|v| {
                renamed.get(&v).map(|&d| Operand::Var(d))
            });
        }
        let Stmt::Let {
            var: copy,
            expr: Expr::Use(Operand::Var(d)),
        } = block.stmts[i]
        else {
            continue;
        };
        // Drop `d = copy;` while `d` still holds `copy`; any other write
        // of `d` later in the block keeps the copy.
        let mut written_later = false;
        for &j in writes_at.get(&d).map_or(&[][..], Vec::as_slice) {
            if j <= i || removed[j] {
                continue;
            }
            match &block.stmts[j] {
                Stmt::Assign {
                    var,
                    expr: Expr::Use(Operand::Var(v)),
                } if *var == d && renamed.get(v).unwrap_or(v) == &copy => removed[j] = true,
                _ => {
                    written_later = true;
                    break;
                }
            }
        }
        if !written_later {
            removed[i] = true;
            renamed.insert(copy, d);
        }
    }
    // (An `d = copy;` may go even where the copy stays.)
    if !removed.contains(&true) {
        return changed;
    }
    for y in &mut block.yields {
        if let Some(&d) = y.as_var().and_then(|v| renamed.get(&v)) {
            *y = Operand::Var(d);
        }
    }
    let mut k = 0;
    block.stmts.retain(|_| {
        k += 1;
        !removed[k - 1]
    });
    true
}

// --------------------------------------------------- adjoint accumulators

/// `let mut d = 0.0; …; d += e;` with nothing touching `d` in between becomes
/// `let mut d = e;`, and an accumulator never changed again becomes a `let`.
fn sink_accumulators(func: &mut Func) -> bool {
    let mut mentions = Mentions::default();
    mentions.index_block(&func.body);
    let sunk = sink_block(&mut func.body, &mentions.at);
    let mut changed = FastSet::default();
    walk_stmts(&func.body, &mut |s| {
        if let Stmt::Accum { var, .. } | Stmt::Assign { var, .. } = s {
            changed.insert(*var);
        }
    });
    freeze_block(&mut func.body, &changed) | sunk
}

fn is_zero_decl(stmt: &Stmt) -> Option<Var> {
    match stmt {
        Stmt::DeclMut {
            var,
            expr: Expr::Use(init),
        } if init.is_float_value(0.0) => Some(*var),
        _ => None,
    }
}

/// Where the accumulators that [`sink_block`] may sink (`let mut d = 0.0;`)
/// are mentioned (read, defined, or yielded by a nested block): for each, the
/// indices of the statements of its own block that mention it, themselves
/// or anywhere inside them, ascending. One walk of the function with a stack
/// of the enclosing blocks finds the statement of the declaring block for
/// each mention; gathering each statement's mentions separately at every
/// level walked nested code once per enclosing block.
///
/// Sinking in a nested block changes no mention of an enclosing block's
/// accumulator (it drops `let mut x = 0.0;` or turns `x += e;` into
/// `let mut x = e;`, for the nested block's own `x`), so one index serves the
/// whole bottom-up pass.
#[derive(Default)]
struct Mentions {
    at: FastMap<Var, Vec<usize>>,
    /// Each accumulator's declaring block: its depth and serial number.
    declared: FastMap<Var, (usize, usize)>,
    /// The enclosing blocks: serial number and current statement index.
    stack: Vec<(usize, usize)>,
    blocks: usize,
}

impl Mentions {
    fn index_block(&mut self, block: &Block) {
        let depth = self.stack.len();
        self.blocks += 1;
        let serial = self.blocks;
        self.stack.push((serial, 0));
        for (i, stmt) in block.stmts.iter().enumerate() {
            self.stack[depth].1 = i;
            if let Some(var) = is_zero_decl(stmt) {
                self.declared.insert(var, (depth, serial));
            }
            stmt.for_each_read(|v| self.mention(v));
            for v in stmt.defines() {
                self.mention(v);
            }
            for b in stmt.blocks() {
                self.index_block(b);
            }
        }
        self.stack.pop();
        // Seen from the enclosing blocks, a nested block's yields are
        // mentions too (its own level checks them itself).
        if depth > 0 {
            for v in block.yields.iter().filter_map(Operand::as_var) {
                self.mention(v);
            }
        }
    }

    fn mention(&mut self, v: Var) {
        let Some(&(depth, serial)) = self.declared.get(&v) else {
            return;
        };
        let Some(&(s, i)) = self.stack.get(depth) else {
            return;
        };
        if s == serial {
            let at = self.at.entry(v).or_default();
            if at.last() != Some(&i) {
                at.push(i);
            }
        }
    }
}

fn sink_block(block: &mut Block, mentioned: &FastMap<Var, Vec<usize>>) -> bool {
    let mut changed = false;
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            changed |= sink_block(b, mentioned);
        }
    }
    let mut removed: FastSet<usize> = FastSet::default();
    for i in 0..block.stmts.len() {
        let Some(var) = is_zero_decl(&block.stmts[i]) else {
            continue;
        };
        let next = mentioned.get(&var).and_then(|js| {
            let k = js.partition_point(|&j| j <= i);
            js.get(k).copied()
        });
        match next {
            None if !block.yields.iter().any(|y| y.as_var() == Some(var)) => {
                removed.insert(i);
            }
            Some(j) => {
                if let Stmt::Accum { var: target, expr } = &block.stmts[j] {
                    if *target == var && !expr.vars().contains(&var) {
                        let expr = expr.clone();
                        block.stmts[j] = Stmt::DeclMut { var, expr };
                        removed.insert(i);
                    }
                }
            }
            None => {}
        }
    }
    // Every change removes the declaration.
    if removed.is_empty() {
        return changed;
    }
    let mut k = 0;
    block.stmts.retain(|_| {
        k += 1;
        !removed.contains(&(k - 1))
    });
    true
}

fn freeze_block(block: &mut Block, changed: &FastSet<Var>) -> bool {
    let mut frozen = false;
    for stmt in &mut block.stmts {
        if let Stmt::DeclMut { var, expr } = stmt {
            if !changed.contains(var) {
                *stmt = Stmt::Let {
                    var: *var,
                    expr: expr.clone(),
                };
                frozen = true;
            }
            continue;
        }
        for b in stmt.blocks_mut() {
            frozen |= freeze_block(b, changed);
        }
    }
    frozen
}

// ----------------------------------------------------------- dead code

/// Mark and sweep. The roots are what a companion is for: its return value,
/// the gradient fields, the gradient buffers it sizes. A variable is live
/// when something live reads it; then whatever defines or changes it is
/// live (its `let`, every `+=` into it, every store into an array), and so
/// is the control flow around a live statement (an `if`'s condition, a
/// loop's range). Popping a tape field makes the matching pushed value live.
pub(crate) fn eliminate_dead_code(func: &mut Func) -> bool {
    let mut live: FastSet<Var> = FastSet::default();
    let mut tape_fields: FastSet<(Var, usize)> = FastSet::default();
    for y in func.body.yields.iter().filter_map(Operand::as_var) {
        live.insert(y);
    }
    loop {
        let before = (live.len(), tape_fields.len());
        mark_block(&func.body, &mut live, &mut tape_fields);
        if (live.len(), tape_fields.len()) == before {
            break;
        }
    }
    sweep_block(&mut func.body, &live, &tape_fields)
}

fn add_operands<'a>(ops: impl IntoIterator<Item = &'a Operand>, live: &mut FastSet<Var>) {
    live.extend(ops.into_iter().filter_map(Operand::as_var));
}

/// Marks from `block`; returns whether anything in it is live (has an effect
/// that reaches a root).
fn mark_block(
    block: &Block,
    live: &mut FastSet<Var>,
    tape_fields: &mut FastSet<(Var, usize)>,
) -> bool {
    let mut any = false;
    for stmt in block.stmts.iter().rev() {
        any |= mark_stmt(stmt, live, tape_fields);
    }
    any
}

fn mark_stmt(
    stmt: &Stmt,
    live: &mut FastSet<Var>,
    tape_fields: &mut FastSet<(Var, usize)>,
) -> bool {
    let is = |v: &Var, live: &FastSet<Var>| live.contains(v);
    match stmt {
        Stmt::Let { var, expr } | Stmt::DeclMut { var, expr } => {
            if is(var, live) {
                expr.for_each_var(|v| {
                    live.insert(v);
                });
                return true;
            }
            false
        }
        Stmt::Accum { var, expr } | Stmt::Assign { var, expr } => {
            if is(var, live) {
                expr.for_each_var(|v| {
                    live.insert(v);
                });
                return true;
            }
            false
        }
        Stmt::LetTuple { vars, expr } => {
            if vars.iter().any(|v| is(v, live)) {
                expr.for_each_var(|v| {
                    live.insert(v);
                });
                return true;
            }
            false
        }
        Stmt::AccumGrad { value, .. } => {
            add_operands([value], live);
            true
        }
        Stmt::PrepareGrad { .. } => true,
        Stmt::AccumIndex {
            target,
            index,
            expr,
        } => {
            let root = match target {
                Target::Grad(_) | Target::GradDot(_) => true,
                Target::Var(v) => is(v, live),
            };
            if root {
                expr.for_each_var(|v| {
                    live.insert(v);
                });
                add_operands(index, live);
            }
            root
        }
        Stmt::LetArray { var, .. } | Stmt::Store { array: var, .. } => {
            if is(var, live) {
                stmt.for_each_read(|v| {
                    live.insert(v);
                });
                return true;
            }
            false
        }
        Stmt::TapeNew { tape } => is(tape, live),
        Stmt::Pop { tape, vars } => {
            let mut any = false;
            for (k, v) in vars.iter().enumerate() {
                if is(v, live) {
                    tape_fields.insert((*tape, k));
                    any = true;
                }
            }
            if any {
                live.insert(*tape);
            }
            any
        }
        Stmt::Push { tape, values } => {
            let mut any = false;
            for (k, value) in values.iter().enumerate() {
                if tape_fields.contains(&(*tape, k)) {
                    add_operands([value], live);
                    any = true;
                }
            }
            any
        }
        Stmt::If {
            cond,
            then_block,
            else_block,
            outs,
        } => {
            // The yields of live outs first: the branches then mark what
            // computes them in the same round (rather than one more round
            // of the whole body per level of nesting).
            let mut any = false;
            for (k, out) in outs.iter().enumerate() {
                if is(out, live) {
                    any = true;
                    add_operands(then_block.yields.get(k), live);
                    add_operands(else_block.yields.get(k), live);
                }
            }
            any |= mark_block(then_block, live, tape_fields);
            any |= mark_block(else_block, live, tape_fields);
            if any {
                add_operands([cond], live);
            }
            any
        }
        Stmt::Loop(l) => {
            let mut any = false;
            for (j, c) in l.carried.iter().enumerate() {
                if is(&c.out, live) || is(&c.phi, live) {
                    any = true;
                    live.insert(c.phi);
                    add_operands([&c.init], live);
                    add_operands(l.body.yields.get(1 + j), live);
                }
            }
            any |= mark_block(&l.body, live, tape_fields);
            any |= l.count.is_some_and(|c| is(&c, live));
            if any {
                add_operands(l.header_operands(), live);
                add_operands(l.body.yields.first(), live);
            }
            any
        }
    }
}

fn sweep_block(
    block: &mut Block,
    live: &FastSet<Var>,
    tape_fields: &FastSet<(Var, usize)>,
) -> bool {
    let is = |v: &Var| live.contains(v);
    let len = block.stmts.len();
    let mut changed = false;
    block.stmts.retain_mut(|stmt| match stmt {
        Stmt::Let { var, .. } | Stmt::DeclMut { var, .. } => is(var),
        Stmt::Accum { var, .. } | Stmt::Assign { var, .. } => is(var),
        Stmt::LetTuple { vars, expr } => {
            if !vars.iter().any(is) {
                return false;
            }
            // A callee's gradient nobody reads: call the function itself.
            if let (Expr::GradCall { func, args }, [value, grad]) = (&*expr, vars.as_slice()) {
                if !is(grad) {
                    changed = true;
                    *stmt = Stmt::Let {
                        var: *value,
                        expr: Expr::Call {
                            func: func.clone(),
                            args: args.clone(),
                        },
                    };
                }
            }
            true
        }
        Stmt::AccumGrad { .. } | Stmt::PrepareGrad { .. } => true,
        Stmt::AccumIndex { target, .. } => match target {
            Target::Grad(_) | Target::GradDot(_) => true,
            Target::Var(v) => is(v),
        },
        Stmt::LetArray { var, .. }
        | Stmt::Store { array: var, .. }
        | Stmt::TapeNew { tape: var } => is(var),
        Stmt::Pop { tape, vars } => {
            let keep: Vec<usize> = (0..vars.len())
                .filter(|k| tape_fields.contains(&(*tape, *k)))
                .collect();
            changed |= keep.len() != vars.len();
            *vars = keep.iter().map(|&k| vars[k]).collect();
            !vars.is_empty()
        }
        Stmt::Push { tape, values } => {
            let keep: Vec<usize> = (0..values.len())
                .filter(|k| tape_fields.contains(&(*tape, *k)))
                .collect();
            changed |= keep.len() != values.len();
            *values = keep.iter().map(|&k| values[k].clone()).collect();
            !values.is_empty()
        }
        Stmt::If {
            then_block,
            else_block,
            outs,
            ..
        } => {
            let mut k = 0;
            while k < outs.len() {
                if is(&outs[k]) {
                    k += 1;
                } else {
                    outs.remove(k);
                    then_block.yields.remove(k);
                    else_block.yields.remove(k);
                    changed = true;
                }
            }
            changed |= sweep_block(then_block, live, tape_fields);
            changed |= sweep_block(else_block, live, tape_fields);
            !(outs.is_empty() && then_block.stmts.is_empty() && else_block.stmts.is_empty())
        }
        Stmt::Loop(l) => {
            let mut j = 0;
            while j < l.carried.len() {
                let c = &l.carried[j];
                if is(&c.out) || is(&c.phi) {
                    j += 1;
                } else {
                    l.carried.remove(j);
                    l.body.yields.remove(1 + j);
                    changed = true;
                }
            }
            if l.count.is_some_and(|c| !is(&c)) {
                l.count = None;
                changed = true;
            }
            changed |= sweep_block(&mut l.body, live, tape_fields);
            // A loop without effects or results is dead, whatever it computes
            // (a gradient companion does not reproduce a loop that only spins).
            !(l.carried.is_empty() && l.body.stmts.is_empty() && l.count.is_none())
        }
    });
    changed || block.stmts.len() != len
}
