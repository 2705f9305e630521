//! Reduction loops in one pass: the reverse loop of a reduction is fused
//! into its forward loop.
//!
//! The reverse pass differentiates a loop by checkpoint and recompute: the
//! forward loop computes the value, and the reverse loop runs the iterations
//! backwards, recomputing each one before propagating adjoints through it.
//! For a reduction (`for i in 0..n { s += f(w, x[i]) }`, the shape of every
//! per-sample loss) that is two passes over the data where a hand-written
//! gradient makes one: the adjoint of `s` is the same in every iteration, so
//! each iteration's contribution to `w` can be added while the forward loop
//! runs, as soon as that adjoint is known.
//!
//! After simplification, a forward loop `F` and its reverse loop `R` (linked
//! by [`ReverseOf`]) in the same block are fused when
//!
//! * `F` keeps no tape and counts nothing, and `R` pops nothing: nothing is
//!   recorded, so an iteration's values can only come from recomputation;
//! * `R` carries nothing and writes outer variables only by accumulation
//!   (`+=` into adjoints and gradient fields), so the order of its
//!   iterations does not matter (up to rounding);
//! * what `R` reads from the code between `F` and `R` (the adjoint of the
//!   loop's results: `1 / n` for a mean) does not depend on anything `F`
//!   computes, so that code can move before `F`.
//!
//! The fused body is `F`'s body followed by `R`'s adjoint code, with `R`'s
//! recomputed copies replaced by `F`'s own values; the statements that
//! computed the copies disappear. The simplifier then runs again.

use std::collections::{HashMap, HashSet};

use crate::ir::{
    walk_stmts, ArrayInit, Block, Expr, FloatConst, Func, Loop, LoopKind, Operand, Origin, Shape,
    Stmt, Target, Ty, Var, VarInfo,
};

/// Fuses every eligible pair in `func`, after letting reverse loops reload
/// what their forward loop stored (see [`reload_stored`]); returns whether
/// anything changed. Reverse loops that only accumulate run forwards
/// afterwards.
pub fn fuse_reductions(func: &mut Func) -> bool {
    let reloaded = reload_stored(&mut func.body);
    let fused = fuse_in_block(&mut func.body);
    run_forwards(&mut func.body);
    reloaded || fused
}

/// A forward loop that stores each iteration's value into an array element
/// of its own (`h[j] = a.tanh()`, `j` the loop variable), where nothing
/// writes the array again before the reverse loop runs: the reverse loop's
/// recomputed copy of that value becomes a load (`h[j]`), and the
/// simplifier drops the recomputation it no longer needs (for a hidden
/// layer, the whole inner product).
fn reload_stored(block: &mut Block) -> bool {
    let mut changed = false;
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            changed |= reload_stored(b);
        }
    }
    for r in 0..block.stmts.len() {
        let Some(f) = forward_of(block, r) else {
            continue;
        };
        let (Stmt::Loop(fl), Stmt::Loop(rl)) = (&block.stmts[f], &block.stmts[r]) else {
            continue;
        };
        let (LoopKind::For { var: f_var, .. }, LoopKind::For { var: r_var, .. }) =
            (&fl.kind, &rl.kind)
        else {
            continue;
        };
        let Some(reverse_of) = &rl.reverse_of else {
            continue;
        };
        // Arrays stored exactly once in F, at the top of its body, at the
        // loop variable.
        let mut stores: HashMap<Var, usize> = HashMap::new();
        walk_stmts(&fl.body, &mut |s| {
            if let Stmt::Store { array, .. } = s {
                *stores.entry(*array).or_default() += 1;
            }
        });
        let f_inside = defined_inside(&block.stmts[f]);
        let mut stored: HashMap<Var, Var> = HashMap::new();
        for s in &fl.body.stmts {
            if let Stmt::Store {
                array,
                index,
                value: Operand::Var(v),
            } = s
            {
                let own_element = matches!(index.as_slice(), [Operand::Var(i)] if i == f_var);
                if own_element && stores.get(array) == Some(&1) && !f_inside.contains(array) {
                    stored.insert(*v, *array);
                }
            }
        }
        // Nothing between the loops, nor R, writes those arrays.
        let written_later: HashSet<Var> = block.stmts[f + 1..=r].iter().flat_map(mutated).collect();
        stored.retain(|_, array| !written_later.contains(array));
        if stored.is_empty() {
            continue;
        }
        let copies: HashMap<Var, Var> = reverse_of.copies.iter().copied().collect();
        let r_var = *r_var;
        let Stmt::Loop(rl) = &mut block.stmts[r] else {
            continue;
        };
        for s in &mut rl.body.stmts {
            if let Stmt::Let { var, expr } = s {
                let Some(array) = copies.get(var).and_then(|orig| stored.get(orig)) else {
                    continue;
                };
                let load = crate::ir::Expr::Index {
                    array: *array,
                    index: vec![Operand::Var(r_var)],
                };
                if !matches!(expr, crate::ir::Expr::Index { .. }) {
                    *expr = load;
                    changed = true;
                }
            }
        }
    }
    changed
}

/// After fusion, an inner loop over a constant range `0..L` (a dense layer's
/// `for j in 0..D { z += w[j] * x[i * D + j] }`) and its reverse loop sit in
/// the same body, and the reverse loop loads every `x[i * D + j]` again, with
/// its bounds check, although the forward loop has just loaded it. The
/// forward loop now also records each load in a local array of length `L`
/// (`x_row[j] = x[i * D + j]`), and the reverse loop reads the record: with
/// both loops unrolled, the array lives in registers, and the second set of
/// loads and bounds checks is gone. Returns whether anything changed.
pub fn record_rows(func: &mut Func) -> bool {
    let mut body = std::mem::take(&mut func.body);
    let stored = stored_anywhere(&body);
    let changed = record_rows_in(func, &mut body, &stored);
    func.body = body;
    changed
}

fn stored_anywhere(block: &Block) -> HashSet<Var> {
    let mut stored = HashSet::new();
    walk_stmts(block, &mut |s| {
        if let Stmt::Store { array, .. } = s {
            stored.insert(*array);
        }
    });
    stored
}

fn record_rows_in(func: &mut Func, block: &mut Block, stored: &HashSet<Var>) -> bool {
    let mut changed = false;
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            changed |= record_rows_in(func, b, stored);
        }
    }
    let mut r = 0;
    while r < block.stmts.len() {
        let Some(f) = forward_of(block, r) else {
            r += 1;
            continue;
        };
        let (Stmt::Loop(fl), Stmt::Loop(rl)) = (&block.stmts[f], &block.stmts[r]) else {
            r += 1;
            continue;
        };
        let (
            LoopKind::For {
                var: f_var,
                range: f_range,
            },
            LoopKind::For {
                var: r_var,
                range: r_range,
            },
        ) = (&fl.kind, &rl.kind)
        else {
            r += 1;
            continue;
        };
        // A constant trip count from 0, the same in both loops.
        let len: Option<syn::Expr> = match &f_range.end {
            Operand::Lit(lit @ syn::Lit::Int(_)) => Some(syn::parse_quote!(#lit)),
            Operand::Path(path) => Some(syn::parse_quote!(#path)),
            _ => None,
        };
        let eligible = f_range.start.as_int() == Some(0)
            && !f_range.inclusive
            && f_range.step.is_none()
            && r_range.step.is_none()
            && f_range.inclusive == r_range.inclusive
            && same_operands(&f_range.operands(), &r_range.operands());
        let (Some(len), true, Some(reverse_of)) = (len, eligible, &rl.reverse_of) else {
            r += 1;
            continue;
        };
        let (f_var, r_var) = (*f_var, *r_var);
        // Loads at the top of F's body, from arrays nothing stores into, at
        // an index other than the loop variable itself.
        let loads: HashMap<Var, Var> = fl
            .body
            .stmts
            .iter()
            .filter_map(|s| match s {
                Stmt::Let {
                    var,
                    expr: Expr::Index { array, index },
                } if !stored.contains(array)
                    && !matches!(index.as_slice(), [Operand::Var(v)] if *v == f_var) =>
                {
                    Some((*var, *array))
                }
                _ => None,
            })
            .collect();
        // R's recomputed copies of those loads, at the top of its body.
        let copies: HashMap<Var, Var> = reverse_of.copies.iter().copied().collect();
        let reloads: Vec<(Var, Var)> = rl
            .body
            .stmts
            .iter()
            .filter_map(|s| match s {
                Stmt::Let {
                    var,
                    expr: Expr::Index { .. },
                } => copies
                    .get(var)
                    .filter(|orig| loads.contains_key(orig))
                    .map(|orig| (*var, *orig)),
                _ => None,
            })
            .collect();
        if reloads.is_empty() {
            r += 1;
            continue;
        }
        let mut rows: HashMap<Var, Var> = HashMap::new();
        let mut before = vec![];
        for &(_, orig) in &reloads {
            if rows.contains_key(&orig) {
                continue;
            }
            let array = loads[&orig];
            let info = func.info(array).clone();
            let elem = info.shape.as_ref().map_or(Ty::Float, |s| s.elem);
            let row = func.new_var(VarInfo {
                name: format!("{}_row", info.name.trim_start_matches("r#")),
                ty: Ty::Array,
                origin: Origin::Synth,
                active: false,
                span: proc_macro2::Span::call_site(),
                shape: Some(Shape {
                    elem,
                    lens: vec![Some(len.clone())],
                }),
            });
            rows.insert(orig, row);
            before.push(Stmt::LetArray {
                var: row,
                init: ArrayInit::Repeat {
                    fill: Operand::Float(FloatConst {
                        value: 0.0,
                        ty: elem,
                    }),
                    lens: vec![len.clone()],
                },
            });
        }
        if let Stmt::Loop(fl) = &mut block.stmts[f] {
            let mut stmts = Vec::with_capacity(fl.body.stmts.len() + rows.len());
            for s in std::mem::take(&mut fl.body.stmts) {
                let recorded = match &s {
                    Stmt::Let { var, .. } => rows.get(var).map(|row| (*row, *var)),
                    _ => None,
                };
                stmts.push(s);
                if let Some((row, value)) = recorded {
                    stmts.push(Stmt::Store {
                        array: row,
                        index: vec![Operand::Var(f_var)],
                        value: Operand::Var(value),
                    });
                }
            }
            fl.body.stmts = stmts;
        }
        if let Stmt::Loop(rl) = &mut block.stmts[r] {
            for s in &mut rl.body.stmts {
                if let Stmt::Let { var, expr } = s {
                    if let Some(row) = copies.get(var).and_then(|orig| rows.get(orig)) {
                        *expr = Expr::Index {
                            array: *row,
                            index: vec![Operand::Var(r_var)],
                        };
                    }
                }
            }
        }
        let n = before.len();
        block.stmts.splice(f..f, before);
        changed = true;
        r += n + 1;
    }
    changed
}

/// A reverse loop that keeps no tape, carries nothing and writes outer
/// variables only by accumulation gives the same sums in any order (up to
/// rounding): it iterates its range forwards, as the data lies in memory.
fn run_forwards(block: &mut Block) {
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            run_forwards(b);
        }
        let Stmt::Loop(l) = stmt else { continue };
        let eligible = l.reverse_of.is_some()
            && l.carried.is_empty()
            && l.count.is_none()
            && !has_tape_ops(&l.body)
            && only_accumulates(stmt);
        if let Stmt::Loop(l) = stmt {
            if let LoopKind::For { range, .. } = &mut l.kind {
                if eligible && range.rev && range.step.is_none() {
                    range.rev = false;
                }
            }
        }
    }
}

/// Whether the loop `stmt` writes variables from outside only by `+=`, and
/// the outer variables it accumulates into.
fn outer_accumulations(stmt: &Stmt) -> Option<HashSet<Var>> {
    let Stmt::Loop(l) = stmt else { return None };
    let inside = defined_inside(stmt);
    let mut accumulated = HashSet::new();
    let mut order_free = true;
    walk_stmts(&l.body, &mut |s| match s {
        Stmt::Accum { var, .. } if !inside.contains(var) => {
            accumulated.insert(*var);
        }
        Stmt::AccumIndex {
            target: Target::Var(v),
            ..
        } if !inside.contains(v) => {
            accumulated.insert(*v);
        }
        Stmt::Assign { var, .. } if !inside.contains(var) => order_free = false,
        Stmt::Store { array, .. } if !inside.contains(array) => order_free = false,
        Stmt::PrepareGrad { .. } => order_free = false,
        _ => {}
    });
    // An accumulator read inside the loop (other than by its own `+=`) sees
    // the iterations before it: then the order matters.
    walk_stmts(&l.body, &mut |s| {
        let own = match s {
            Stmt::Accum { var, .. } => Some(*var),
            Stmt::AccumIndex {
                target: Target::Var(v),
                ..
            } => Some(*v),
            _ => None,
        };
        let mut reads = s.reads();
        if let Some(v) = own {
            if let Some(at) = reads.iter().rposition(|r| *r == v) {
                reads.remove(at);
            }
        }
        if reads.iter().any(|v| accumulated.contains(v)) {
            order_free = false;
        }
    });
    order_free.then_some(accumulated)
}

fn only_accumulates(stmt: &Stmt) -> bool {
    outer_accumulations(stmt).is_some()
}

fn fuse_in_block(block: &mut Block) -> bool {
    let mut changed = false;
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            changed |= fuse_in_block(b);
        }
    }
    let mut r = 0;
    while r < block.stmts.len() {
        if let Some(f) = forward_of(block, r) {
            if let Some(stmts) = fused(block, f, r) {
                block.stmts = stmts;
                changed = true;
                // The block has been rebuilt; look again from the start.
                r = 0;
                continue;
            }
        }
        r += 1;
    }
    changed
}

/// The index of the forward loop that the statement at `r` reverses.
fn forward_of(block: &Block, r: usize) -> Option<usize> {
    let Stmt::Loop(rl) = &block.stmts[r] else {
        return None;
    };
    let id = rl.reverse_of.as_ref()?.id;
    block.stmts[..r]
        .iter()
        .rposition(|s| matches!(s, Stmt::Loop(fl) if fl.id == Some(id)))
}

/// The block's statements with the loops at `f` and `r` fused, if they may be.
fn fused(block: &Block, f: usize, r: usize) -> Option<Vec<Stmt>> {
    let (Stmt::Loop(fl), Stmt::Loop(rl)) = (&block.stmts[f], &block.stmts[r]) else {
        return None;
    };
    let reverse_of = rl.reverse_of.as_ref()?;
    let LoopKind::For {
        var: f_var,
        range: f_range,
    } = &fl.kind
    else {
        return None;
    };
    let LoopKind::For { range: r_range, .. } = &rl.kind else {
        return None;
    };
    if fl.count.is_some()
        || rl.count.is_some()
        || !rl.carried.is_empty()
        || f_range.step.is_some()
        || r_range.step.is_some()
        || f_range.inclusive != r_range.inclusive
        || !same_operands(&f_range.operands(), &r_range.operands())
        || has_tape_ops(&fl.body)
        || has_tape_ops(&rl.body)
    {
        return None;
    }

    // R writes outer variables only by accumulation.
    let r_writes = outer_accumulations(&block.stmts[r])?;
    // R must not read F's results (a sum's final value, which the adjoint
    // of another sum is when the function returns their product): fused,
    // it would read them while F is still computing them.
    let f_results: HashSet<Var> = fl.carried.iter().map(|c| c.out).chain(fl.count).collect();
    if free_reads(&block.stmts[r])
        .iter()
        .any(|v| f_results.contains(v))
    {
        return None;
    }

    // The code between F and R that R needs moves before F.
    let mut needed: HashSet<Var> = free_reads(&block.stmts[r]);
    let mut hoist = HashSet::new();
    for j in (f + 1..r).rev() {
        let s = &block.stmts[j];
        if writes(s).iter().any(|v| needed.contains(v)) {
            hoist.insert(j);
            needed.extend(free_reads(s));
        }
    }
    // Hoisted code must not read what F defines or changes: an array F
    // stores into (`h[j] = …`) read by code between the loops that R's
    // adjoints depend on would be read before F has written it.
    let f_outs: HashSet<Var> = writes(&block.stmts[f]).into_iter().collect();
    if hoist.iter().any(|&j| {
        free_reads(&block.stmts[j])
            .iter()
            .any(|v| f_outs.contains(v))
    }) {
        return None;
    }
    // Moving the hoisted code and R earlier must not change what the code
    // that stays reads.
    let mut hoisted_writes: HashMap<Var, usize> = HashMap::new();
    for &j in &hoist {
        for v in mutated(&block.stmts[j]) {
            let last = hoisted_writes.entry(v).or_insert(j);
            *last = (*last).max(j);
        }
    }
    for k in f + 1..r {
        if hoist.contains(&k) {
            continue;
        }
        for v in free_reads(&block.stmts[k]) {
            if r_writes.contains(&v) || hoisted_writes.get(&v).is_some_and(|&last| last > k) {
                return None;
            }
        }
    }

    // R's body with its recomputed copies replaced by F's values.
    let copies: HashMap<Var, Var> = reverse_of.copies.iter().copied().collect();
    let f_top: HashSet<Var> = fl
        .body
        .stmts
        .iter()
        .flat_map(Stmt::defines)
        .chain([*f_var])
        .collect();
    let phis: HashSet<Var> = fl.carried.iter().map(|c| c.phi).collect();
    let mut adjoint_code = vec![];
    for s in &rl.body.stmts {
        let touched: Vec<Var> = defined_inside(s).into_iter().chain(writes(s)).collect();
        if !touched.is_empty() && touched.iter().all(|v| copies.contains_key(v)) {
            continue;
        }
        adjoint_code.push(s.clone());
    }
    let mut adjoint_block = Block {
        stmts: adjoint_code,
        yields: vec![],
    };
    let mut still_reads_copy = false;
    let mut reads_missing = false;
    let mut reads = vec![];
    crate::ir::reads_in_block(&adjoint_block, &mut reads);
    for v in reads {
        if let Some(orig) = copies.get(&v) {
            if !f_top.contains(orig) || phis.contains(orig) {
                reads_missing = true;
            }
        }
    }
    crate::ir::substitute_block(&mut adjoint_block, &|v| {
        copies.get(&v).map(|&orig| Operand::Var(orig))
    });
    walk_stmts(&adjoint_block, &mut |s| {
        if defined_inside(s)
            .iter()
            .chain(&writes(s))
            .any(|v| copies.contains_key(v))
        {
            still_reads_copy = true;
        }
    });
    let mut leftover = vec![];
    crate::ir::reads_in_block(&adjoint_block, &mut leftover);
    if reads_missing || still_reads_copy || leftover.iter().any(|v| copies.contains_key(v)) {
        return None;
    }

    let mut fused_loop: Loop = (**fl).clone();
    fused_loop.body.stmts.extend(adjoint_block.stmts);
    fused_loop.id = None;

    let mut stmts = Vec::with_capacity(block.stmts.len());
    stmts.extend(block.stmts[..f].iter().cloned());
    for &j in sorted(&hoist).iter() {
        stmts.push(block.stmts[j].clone());
    }
    stmts.push(Stmt::Loop(Box::new(fused_loop)));
    for k in f + 1..r {
        if !hoist.contains(&k) {
            stmts.push(block.stmts[k].clone());
        }
    }
    stmts.extend(block.stmts[r + 1..].iter().cloned());
    Some(stmts)
}

fn sorted(set: &HashSet<usize>) -> Vec<usize> {
    let mut v: Vec<usize> = set.iter().copied().collect();
    v.sort_unstable();
    v
}

fn same_operands(a: &[&Operand], b: &[&Operand]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_string() == y.to_string())
}

fn has_tape_ops(block: &Block) -> bool {
    let mut found = false;
    walk_stmts(block, &mut |s| {
        if matches!(
            s,
            Stmt::Push { .. } | Stmt::Pop { .. } | Stmt::TapeNew { .. }
        ) {
            found = true;
        }
        if let Stmt::Loop(l) = s {
            if l.count.is_some() {
                found = true;
            }
        }
    });
    found
}

/// Every variable defined inside `stmt`'s nested blocks (and the loop's
/// own variables), not counting what the statement itself defines for the
/// code after it.
pub(crate) fn defined_inside(stmt: &Stmt) -> HashSet<Var> {
    let mut vars = HashSet::new();
    if let Stmt::Loop(l) = stmt {
        vars.extend(l.body_params());
    }
    for b in stmt.blocks() {
        walk_stmts(b, &mut |s| {
            vars.extend(s.defines());
            if let Stmt::Loop(l) = s {
                vars.extend(l.body_params());
            }
        });
    }
    vars
}

/// What `stmt` reads from outside itself.
fn free_reads(stmt: &Stmt) -> HashSet<Var> {
    let inside = defined_inside(stmt);
    let mut reads = stmt.reads();
    for b in stmt.blocks() {
        crate::ir::reads_in_block(b, &mut reads);
    }
    reads.into_iter().filter(|v| !inside.contains(v)).collect()
}

/// The variables outside `stmt` that it defines or changes.
fn writes(stmt: &Stmt) -> Vec<Var> {
    let inside = defined_inside(stmt);
    let mut vars = stmt.defines();
    vars.extend(mutated(stmt));
    vars.retain(|v| !inside.contains(v));
    vars
}

/// The variables `stmt` changes in place (accumulators, assigned and stored
/// variables), nested blocks included.
pub(crate) fn mutated(stmt: &Stmt) -> Vec<Var> {
    let mut vars = vec![];
    let mut one = |s: &Stmt| match s {
        Stmt::Accum { var, .. } | Stmt::Assign { var, .. } | Stmt::DeclMut { var, .. } => {
            vars.push(*var)
        }
        Stmt::Store { array, .. } => vars.push(*array),
        Stmt::AccumIndex {
            target: Target::Var(v),
            ..
        } => vars.push(*v),
        // A tape changes with every push and pop: the code that pops must
        // stay after the code that pushes.
        Stmt::Push { tape, .. } | Stmt::Pop { tape, .. } => vars.push(*tape),
        _ => {}
    };
    one(stmt);
    for b in stmt.blocks() {
        walk_stmts(b, &mut one);
    }
    vars
}
