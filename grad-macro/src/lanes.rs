//! Four samples at a time: a loop over samples that calls the runtime's
//! kernels (`sigmoid`, `bce`, `tanh`, …) is emitted so that LLVM computes
//! them in vector lanes.
//!
//! A per-sample loss, `for i in 0..n { total += bce(sigmoid(w·x_i + b), y_i) }`,
//! adds into the same accumulators in every iteration (the loss, and after
//! fusion the gradient's `__d_w[k] += dz · x[k]`). Floating-point addition
//! is not associative, so LLVM may not reorder those sums and does not
//! vectorise the loop: the kernels run one sample at a time. This pass
//! runs each group of four iterations in two phases:
//!
//! ```text
//! for i_chunk in (0..covered).step_by(4) {
//!     // what each iteration computes for itself, lane by lane, in loops
//!     // over the four lanes (reads in one, kernels in another):
//!     let mut z_lanes = [b; 4];
//!     for k in 0..D { for lane in 0..4 { z_lanes[lane] += w[k] * x_row…[k]; } }
//!     for lane in 0..4 { p = sigmoid(z_lanes[lane]); loss_lanes[lane] = bce(p, …); … }
//!     // then the sums, in the iterations' order:
//!     for lane in 0..4 { total += loss_lanes[lane]; … }
//! }
//! for i in covered..n { …the body as it was… }
//! ```
//!
//! The kernels' lane loop has no bounds checks and no dependence between
//! lanes, so LLVM vectorises it (the runtime's kernels are inlinable, see
//! `grad-core/src/kernels.rs`); every accumulator still receives the same
//! terms in the same order, so the value and the gradient are the same bit
//! for bit (the interpreter checks it in `tests.rs` and on the random
//! programs).
//!
//! It applies to a `for` loop over a range (forwards, step 1, not a handful
//! of iterations known at compile time) whose body runs to its end (no
//! `break`) and consists only of
//!
//! * lane-local work: `let`s of arithmetic, primitives, casts and reads
//!   (and the runtime's window helpers), arrays declared in the body and
//!   stores into them, and inner `for` loops over a range the same in every
//!   iteration doing only that;
//! * sums: a carried value updated as `s = s + t` and read nowhere else,
//!   `+=` into accumulators and gradients declared outside (read nowhere in
//!   the body), and inner loops doing only that;
//!
//! and calls at least one function of grad's runtime. Anything else (an
//! `if`, a call of a user function, a mutable local, a nested loop of
//! another shape) leaves the loop as it was. The companion panics on the
//! same inputs as the function: every iteration the lanes run is one the
//! loop runs (it runs to its end); a read may fail earlier, before the sums
//! of the lanes before it.
//!
//! Like `window.rs` it runs on `f_backward`'s IR just before emission, on a
//! copy (after the windows, whose helpers it may call per lane).

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

use crate::ir::{
    ArrayInit, BinOp, Block, CallForm, Expr, FastMap, FastSet, Func, Loop, LoopKind, Operand,
    Origin, RangeSpec, Shape, Stmt, Target, Ty, Var, VarInfo,
};

/// Iterations per group: four `f64` lanes fill an AVX2 register.
const LANES: u64 = 4;

/// Splits every eligible loop of `func` into lanes and sums; `krate` is the
/// path of the runtime crate. Returns whether anything changed.
pub fn vectorise_sample_loops(func: &mut Func, krate: &TokenStream) -> bool {
    let helpers = ["window", "window_from"]
        .map(|name| format!("{} :: __private :: {name}", krate.to_token_stream()));
    let mut body = std::mem::take(&mut func.body);
    let changed = in_block(func, &mut body, &helpers);
    func.body = body;
    changed
}

fn in_block(func: &mut Func, block: &mut Block, helpers: &[String]) -> bool {
    let mut changed = false;
    let mut at = 0;
    while at < block.stmts.len() {
        let Some((stmts, results)) = split(func, &block.stmts[at], helpers) else {
            for b in block.stmts[at].blocks_mut() {
                changed |= in_block(func, b, helpers);
            }
            at += 1;
            continue;
        };
        let n = stmts.len();
        block.stmts.splice(at..=at, stmts);
        // The loop's results now live in accumulators.
        let mut rest = Block {
            stmts: block.stmts.split_off(at + n),
            yields: std::mem::take(&mut block.yields),
        };
        crate::ir::substitute_block(&mut rest, &|v| results.get(&v).cloned());
        block.stmts.extend(rest.stmts);
        block.yields = rest.yields;
        at += n;
        changed = true;
    }
    changed
}

/// A carried value the body only adds to: `next = phi + term`.
struct CarriedSum {
    phi: Var,
    out: Var,
    init: Operand,
    next: Var,
    term: Operand,
}

/// One top-level statement of the body, classified.
enum Item {
    /// Computed once per group of lanes: it reads nothing that differs
    /// between iterations.
    Invariant(Stmt),
    /// An array declared in the body: one per lane.
    Array(Var, ArrayInit),
    /// Lane-local statements run in one lane loop (see [`Kind`]).
    Group(Kind, Vec<Stmt>),
    /// An inner loop of lane-local work: the lanes run inside it.
    Inner(Loop),
    /// A reduction, run for each lane in order after the lane-local work.
    Sum(Stmt),
}

/// What a lane loop holds: reads and kernels go in separate loops, so that
/// the kernels' loop has no bounds checks and vectorises.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reads,
    Kernels,
}

/// The statements that replace the loop `stmt` (declarations, the loop
/// over groups of lanes, the loop over the remaining iterations), and the
/// accumulators that now hold its results; `None` if it is not eligible.
fn split(
    func: &mut Func,
    stmt: &Stmt,
    helpers: &[String],
) -> Option<(Vec<Stmt>, FastMap<Var, Operand>)> {
    let Stmt::Loop(l) = stmt else { return None };
    let LoopKind::For { var: i, range } = &l.kind else {
        return None;
    };
    let runs_to_end = l.runs_to_end();
    if range.rev
        || range.inclusive
        || range.step.is_some()
        || !runs_to_end
        || l.count.is_some()
        || l.carried.is_empty() && !has_accumulation(&l.body)
    {
        return None;
    }
    let i = *i;

    // A few iterations known at compile time (an inner loop over a small
    // layer) would run as the remainder anyway.
    if let (Some(a), Some(b)) = (range.start.as_int(), range.end.as_int()) {
        if b - a < 2 * LANES as i64 {
            return None;
        }
    }
    // Carried values: sums only.
    let originals = carried_sums(l)?;
    if !calls_kernel(&l.body) {
        return None;
    }

    // The lanes compute with their own variables; the loop over the
    // remaining iterations keeps the originals.
    let inside = crate::fuse::defined_inside(stmt);
    let mut fresh: std::collections::HashMap<Var, Operand> = std::collections::HashMap::new();
    let mut ordered: Vec<Var> = inside.iter().copied().collect();
    ordered.sort();
    for v in ordered {
        let copy = func.derived_var(v, func.info(v).origin.clone());
        fresh.insert(v, Operand::Var(copy));
    }
    let renamed = |v: Var| match fresh.get(&v) {
        Some(Operand::Var(new)) => *new,
        _ => v,
    };
    let mut copy = l.clone();
    if let LoopKind::For { var, .. } = &mut copy.kind {
        *var = renamed(*var);
    }
    for c in &mut copy.carried {
        c.phi = renamed(c.phi);
    }
    crate::reverse::rename_definitions(&mut copy.body, &fresh);
    crate::ir::substitute_block(&mut copy.body, &|v| fresh.get(&v).cloned());
    let l = &copy;
    let i = renamed(i);
    let sums: Vec<CarriedSum> = originals
        .iter()
        .map(|s| CarriedSum {
            phi: renamed(s.phi),
            out: s.out,
            init: s.init.clone(),
            next: renamed(s.next),
            term: match &s.term {
                Operand::Var(v) => Operand::Var(renamed(*v)),
                other => other.clone(),
            },
        })
        .collect();
    let sum_nexts: FastSet<Var> = sums.iter().map(|s| s.next).collect();

    // Arrays declared in the body, and accumulators from outside.
    let mut arrays = FastSet::default();
    for s in &l.body.stmts {
        if let Stmt::LetArray { var, .. } = s {
            arrays.insert(*var);
        }
    }
    let inside = crate::fuse::defined_inside(&Stmt::Loop(l.clone()));
    let mut outer_sums = FastSet::default();
    crate::ir::walk_stmts(&l.body, &mut |s| match s {
        Stmt::Accum { var, .. }
        | Stmt::AccumIndex {
            target: Target::Var(var),
            ..
        } if !inside.contains(var) => {
            outer_sums.insert(*var);
        }
        _ => {}
    });
    // Nothing in the body may read an accumulator (other than adding to it).
    let mut ok = true;
    crate::ir::walk_stmts(&l.body, &mut |s| {
        let mut read = vec![];
        if let Some(e) = s.expr() {
            e.for_each_var(|v| read.push(v));
        }
        match s {
            Stmt::AccumIndex { index, .. } | Stmt::Store { index, .. } => {
                read.extend(index.iter().filter_map(Operand::as_var));
            }
            _ => {}
        }
        if let Stmt::Store { value, .. } = s {
            read.extend(value.as_var());
        }
        if let Stmt::Loop(inner) = s {
            read.extend(
                inner
                    .header_operands()
                    .into_iter()
                    .filter_map(Operand::as_var),
            );
        }
        ok &= !read.iter().any(|v| outer_sums.contains(v));
    });
    if !ok {
        return None;
    }

    // Classify the top-level statements, tracking what differs by lane.
    let mut varying: FastSet<Var> = FastSet::default();
    varying.insert(i);
    varying.extend(arrays.iter().copied());
    let mut items: Vec<Item> = vec![];
    let mut kernels = false;
    for s in &l.body.stmts {
        match s {
            Stmt::Let { var, .. } if sum_nexts.contains(var) => {}
            Stmt::Let { var, expr } => {
                if !allowed(expr, helpers) {
                    return None;
                }
                if reads_any(s, &varying) {
                    varying.insert(*var);
                    kernels |= is_kernel(expr);
                    let kind = if is_read(expr, &arrays) {
                        Kind::Reads
                    } else if is_kernel(expr) {
                        Kind::Kernels
                    } else {
                        // Arithmetic joins whatever loop is open.
                        match items.last() {
                            Some(Item::Group(kind, _)) => *kind,
                            _ => Kind::Kernels,
                        }
                    };
                    place(&mut items, kind, s.clone(), &varying, &arrays);
                } else {
                    items.push(Item::Invariant(s.clone()));
                }
            }
            Stmt::LetArray {
                var,
                init: init @ ArrayInit::Repeat { fill, .. },
            } if !fill.as_var().is_some_and(|v| varying.contains(&v)) => {
                items.push(Item::Array(*var, init.clone()));
            }
            Stmt::Store { array, .. }
            | Stmt::AccumIndex {
                target: Target::Var(array),
                ..
            } if arrays.contains(array) => {
                if let Some(e) = s.expr() {
                    if !allowed(e, helpers) {
                        return None;
                    }
                }
                let kind = match items.last() {
                    Some(Item::Group(kind, _)) => *kind,
                    _ => Kind::Kernels,
                };
                items.push(Item::Group(kind, vec![s.clone()]));
                merge_last(&mut items);
            }
            Stmt::Accum { var, expr } if outer_sums.contains(var) && allowed(expr, helpers) => {
                items.push(Item::Sum(s.clone()));
            }
            Stmt::AccumIndex {
                target: Target::Var(_) | Target::Grad(_),
                expr,
                ..
            } if allowed(expr, helpers) => {
                items.push(Item::Sum(s.clone()));
            }
            Stmt::Loop(inner) => {
                match inner_kind(inner, &varying, &arrays, &outer_sums, helpers)? {
                    InnerKind::Lanes => {
                        kernels |= calls_kernel(&inner.body);
                        let mut inner_varying = varying.clone();
                        mark_varying(inner, &mut inner_varying);
                        varying = inner_varying;
                        items.push(Item::Inner((**inner).clone()));
                    }
                    InnerKind::Sums => items.push(Item::Sum(s.clone())),
                    InnerKind::Invariant => items.push(Item::Invariant(s.clone())),
                }
            }
            _ => return None,
        }
    }
    if !kernels {
        return None;
    }

    Some(emit(
        func,
        stmt_loop(stmt),
        i,
        range,
        items,
        (sums, originals),
        &varying,
        &arrays,
    ))
}

/// The loop of a statement known to be one.
fn stmt_loop(stmt: &Stmt) -> &Loop {
    match stmt {
        Stmt::Loop(l) => l,
        _ => unreachable!("split checked that the statement is a loop"),
    }
}

/// The loop's carried values, if every one is a sum: updated as
/// `next = phi + term`, the phi read only there and the next value only
/// in the yield.
fn carried_sums(l: &Loop) -> Option<Vec<CarriedSum>> {
    let mut reads = vec![];
    crate::ir::reads_in_block(&l.body, &mut reads);
    let count = |v: Var| reads.iter().filter(|r| **r == v).count();
    let mut sums = vec![];
    for (j, c) in l.carried.iter().enumerate() {
        let next = l.body.yields.get(1 + j)?.as_var()?;
        let term = l.body.stmts.iter().find_map(|s| match s {
            Stmt::Let {
                var,
                expr: Expr::Binary(BinOp::Add, Operand::Var(p), term),
            } if *var == next && *p == c.phi => Some(term.clone()),
            _ => None,
        })?;
        if count(c.phi) != 1 || count(next) != 1 {
            return None;
        }
        sums.push(CarriedSum {
            phi: c.phi,
            out: c.out,
            init: c.init.clone(),
            next,
            term,
        });
    }
    Some(sums)
}

/// Whether a loop body adds into anything (a loop with no carried values
/// can still be a reduction into accumulators).
fn has_accumulation(body: &Block) -> bool {
    let mut found = false;
    crate::ir::walk_stmts(body, &mut |s| {
        found |= matches!(s, Stmt::Accum { .. } | Stmt::AccumIndex { .. });
    });
    found
}

/// Expressions a lane may evaluate: no calls with effects of their own.
fn allowed(expr: &Expr, helpers: &[String]) -> bool {
    match expr {
        Expr::Use(_)
        | Expr::Unary(..)
        | Expr::Binary(..)
        | Expr::Prim { .. }
        | Expr::Cast { .. }
        | Expr::Index { .. }
        | Expr::Len(_) => true,
        Expr::Call { func, .. } => helpers.contains(&func.to_token_stream().to_string()),
        _ => false,
    }
}

/// A function of the runtime (`sigmoid`, `bce`, `tanh`, …): what lanes are for.
fn is_kernel(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Prim {
            form: CallForm::Runtime,
            ..
        }
    )
}

/// A read of memory outside the lanes' own arrays (which may be bounds-checked).
fn is_read(expr: &Expr, arrays: &FastSet<Var>) -> bool {
    match expr {
        Expr::Index { array, .. } => !arrays.contains(array),
        Expr::Call { .. } | Expr::Len(_) => true,
        _ => false,
    }
}

fn calls_kernel(body: &Block) -> bool {
    let mut found = false;
    crate::ir::walk_stmts(body, &mut |s| {
        found |= s.expr().is_some_and(is_kernel);
    });
    found
}

fn reads_any(s: &Stmt, vars: &FastSet<Var>) -> bool {
    let mut found = false;
    s.for_each_read(|v| found |= vars.contains(&v));
    found
}

/// Adds a lane-local `let` to the lane loops planned so far: a read whose
/// operands are all known by the last loop of reads joins that loop (so
/// the kernels after it stay in one loop); otherwise it opens a loop of its
/// kind unless the last one is of that kind.
fn place(
    items: &mut Vec<Item>,
    kind: Kind,
    s: Stmt,
    varying: &FastSet<Var>,
    arrays: &FastSet<Var>,
) {
    if kind == Kind::Reads {
        if let Some(Item::Group(Kind::Kernels, _)) = items.last() {
            // Where its last lane-local operand is defined.
            let operands: Vec<Var> = s
                .reads()
                .into_iter()
                .filter(|v| varying.contains(v) && !arrays.contains(v))
                .collect();
            let defined_at = |v: Var| {
                items.iter().rposition(|item| match item {
                    Item::Group(_, stmts) => stmts.iter().any(|s| s.defines().contains(&v)),
                    Item::Inner(inner) => inner.carried.iter().any(|c| c.out == v),
                    _ => false,
                })
            };
            let after = operands.iter().filter_map(|v| defined_at(*v)).max();
            let target = items
                .iter()
                .rposition(|item| matches!(item, Item::Group(Kind::Reads, _)));
            if let Some(t) = target.filter(|t| after.map_or(true, |a| a <= *t)) {
                if let Item::Group(_, stmts) = &mut items[t] {
                    stmts.push(s);
                    return;
                }
            }
        }
    }
    items.push(Item::Group(kind, vec![s]));
    merge_last(items);
}

/// Merges the last two items if both are lane loops of the same kind.
fn merge_last(items: &mut Vec<Item>) {
    let n = items.len();
    if n < 2 {
        return;
    }
    if let (Item::Group(a, _), Item::Group(b, _)) = (&items[n - 2], &items[n - 1]) {
        if a == b {
            let Some(Item::Group(_, last)) = items.pop() else {
                return;
            };
            if let Some(Item::Group(_, stmts)) = items.last_mut() {
                stmts.extend(last);
            }
        }
    }
}

enum InnerKind {
    /// Lane-local work: interchanged, the lanes inside.
    Lanes,
    /// Only sums into outer accumulators.
    Sums,
    /// Reads and writes nothing that differs by lane.
    Invariant,
}

fn inner_kind(
    inner: &Loop,
    varying: &FastSet<Var>,
    arrays: &FastSet<Var>,
    outer_sums: &FastSet<Var>,
    helpers: &[String],
) -> Option<InnerKind> {
    let LoopKind::For { range, .. } = &inner.kind else {
        return None;
    };
    let runs_to_end = inner.runs_to_end();
    let header_varies = range
        .operands()
        .into_iter()
        .chain(inner.carried.iter().map(|c| &c.init))
        .any(|o| {
            o.as_var()
                .is_some_and(|v| varying.contains(&v) && !arrays.contains(&v))
        });
    if !runs_to_end
        || inner.count.is_some()
        || range
            .operands()
            .iter()
            .any(|o| o.as_var().is_some_and(|v| varying.contains(&v)))
    {
        return None;
    }
    let mut lane_work = false;
    let mut sums = false;
    let mut other = false;
    for s in &inner.body.stmts {
        match s {
            Stmt::Let { expr, .. } if allowed(expr, helpers) => {}
            Stmt::Store { array, .. } if arrays.contains(array) => lane_work = true,
            Stmt::AccumIndex {
                target: Target::Var(v),
                expr,
                ..
            } if arrays.contains(v) && allowed(expr, helpers) => lane_work = true,
            Stmt::Accum { var, expr } if outer_sums.contains(var) && allowed(expr, helpers) => {
                sums = true;
            }
            Stmt::AccumIndex {
                target: Target::Var(v),
                expr,
                ..
            } if outer_sums.contains(v) && allowed(expr, helpers) => sums = true,
            Stmt::AccumIndex {
                target: Target::Grad(_),
                expr,
                ..
            } if allowed(expr, helpers) => sums = true,
            _ => other = true,
        }
    }
    if other || (sums && (lane_work || !inner.carried.is_empty())) {
        return None;
    }
    if sums {
        return Some(InnerKind::Sums);
    }
    let mut probe = varying.clone();
    mark_varying(inner, &mut probe);
    let varies = header_varies
        || lane_work
        || inner.carried.iter().any(|c| probe.contains(&c.phi))
        || inner.body.stmts.iter().any(|s| reads_any(s, varying));
    if varies {
        Some(InnerKind::Lanes)
    } else {
        Some(InnerKind::Invariant)
    }
}

/// Marks what an interchanged inner loop makes lane-dependent: its carried
/// values (one per lane) and every `let` that reads a lane-dependent value.
fn mark_varying(inner: &Loop, varying: &mut FastSet<Var>) {
    for c in &inner.carried {
        varying.insert(c.phi);
        varying.insert(c.out);
    }
    for s in &inner.body.stmts {
        if let Stmt::Let { var, .. } = s {
            if reads_any(s, varying) {
                varying.insert(*var);
            }
        }
    }
}

/// Builds the replacement (see the module documentation).
#[allow(clippy::too_many_arguments)]
fn emit(
    func: &mut Func,
    l: &Loop,
    i: Var,
    range: &RangeSpec,
    items: Vec<Item>,
    (sums, originals): (Vec<CarriedSum>, Vec<CarriedSum>),
    varying: &FastSet<Var>,
    arrays: &FastSet<Var>,
) -> (Vec<Stmt>, FastMap<Var, Operand>) {
    let span = func.info(i).span;
    let mut before = vec![];
    let mut results = FastMap::default();

    // Carried sums become accumulators, shared by both loops.
    let mut accs = FastMap::default();
    for (s, original) in sums.iter().zip(&originals) {
        let acc = func.derived_var(original.phi, Origin::Local);
        before.push(Stmt::DeclMut {
            var: acc,
            expr: Expr::Use(s.init.clone()),
        });
        accs.insert(s.phi, acc);
        accs.insert(original.phi, acc);
        results.insert(s.out, Operand::Var(acc));
    }

    // lanes_end = start + (end − start) / 4 · 4, without overflow.
    let int = |func: &mut Func, name: &str| {
        func.new_var(VarInfo::scalar(name, Ty::Int, Origin::Synth, false, span))
    };
    let lanes_lit = Operand::Lit(syn::Lit::Int(syn::LitInt::new(&LANES.to_string(), span)));
    let span_len = if range.start.as_int() == Some(0) {
        range.end.clone()
    } else {
        let v = int(func, "span");
        before.push(Stmt::Let {
            var: v,
            expr: Expr::Method {
                receiver: range.end.clone(),
                method: syn::Ident::new("saturating_sub", span),
                args: vec![range.start.clone()],
            },
        });
        Operand::Var(v)
    };
    let groups = int(func, "groups");
    before.push(Stmt::Let {
        var: groups,
        expr: Expr::Binary(BinOp::Div, span_len, lanes_lit.clone()),
    });
    let covered = int(func, "covered");
    before.push(Stmt::Let {
        var: covered,
        expr: Expr::Binary(BinOp::Mul, Operand::Var(groups), lanes_lit.clone()),
    });
    let lanes_end = if range.start.as_int() == Some(0) {
        covered
    } else {
        let v = int(func, "lanes_end");
        before.push(Stmt::Let {
            var: v,
            expr: Expr::Binary(BinOp::Add, range.start.clone(), Operand::Var(covered)),
        });
        v
    };

    let chunk = {
        let name = format!("{}_chunk", func.info(i).name.trim_start_matches("r#"));
        int(func, &name)
    };
    let mut lanes = Lanes {
        i,
        chunk,
        arrays: arrays.clone(),
        varying: varying.clone(),
        lane_arrays: FastMap::default(),
        span,
        lanes_lit,
    };
    // Lane arrays for the body's arrays, the inner loops' carried values and
    // the values read outside the lane loop that computes them.
    let mut home: FastMap<Var, usize> = FastMap::default();
    for (at, item) in items.iter().enumerate() {
        if let Item::Group(_, stmts) = item {
            for s in stmts {
                for v in s.defines() {
                    home.insert(v, at);
                }
            }
        }
    }
    let mut escapes: FastSet<Var> = FastSet::default();
    for (at, item) in items.iter().enumerate() {
        let mut read = vec![];
        match item {
            Item::Group(_, stmts) => stmts.iter().for_each(|s| read.extend(s.reads())),
            Item::Inner(inner) => {
                read.extend(
                    inner
                        .header_operands()
                        .into_iter()
                        .filter_map(Operand::as_var),
                );
                crate::ir::reads_in_block(&inner.body, &mut read);
            }
            Item::Sum(s) => {
                read.extend(s.reads());
                for b in s.blocks() {
                    crate::ir::reads_in_block(b, &mut read);
                }
            }
            Item::Invariant(_) | Item::Array(..) => {}
        }
        for v in read {
            if home.get(&v).is_some_and(|h| *h != at) {
                escapes.insert(v);
            }
        }
    }
    for s in &sums {
        if let Some(v) = s.term.as_var().filter(|v| home.contains_key(v)) {
            escapes.insert(v);
        }
    }

    let mut body = vec![];
    for item in &items {
        match item {
            Item::Invariant(s) => body.push(s.clone()),
            Item::Array(var, ArrayInit::Repeat { fill, lens }) => {
                let lane_array = lanes.lane_array(func, *var, lens);
                body.push(Stmt::LetArray {
                    var: lane_array,
                    init: ArrayInit::Repeat {
                        fill: fill.clone(),
                        lens: std::iter::once(lanes.len_expr())
                            .chain(lens.iter().cloned())
                            .collect(),
                    },
                });
            }
            Item::Array(..) => unreachable!("only repeated arrays are planned"),
            Item::Group(_, stmts) => {
                for s in stmts {
                    for v in s.defines().into_iter().filter(|v| escapes.contains(v)) {
                        let lane_array = lanes.lane_array(func, v, &[]);
                        body.push(lanes.declare(lane_array));
                    }
                }
                let mut scope = lanes.open(func);
                let mut lane_body = vec![];
                for s in stmts {
                    let mut s = s.clone();
                    lanes.rewrite(func, &mut s, &mut scope, &mut lane_body);
                    let defined = s.defines();
                    lane_body.push(s);
                    for v in defined.into_iter().filter(|v| escapes.contains(v)) {
                        lane_body.push(Stmt::Store {
                            array: lanes.lane_arrays[&v],
                            index: vec![Operand::Var(scope.lane)],
                            value: Operand::Var(v),
                        });
                    }
                }
                body.push(lanes.lane_loop(&scope, lane_body));
            }
            Item::Inner(inner) => body.extend(lanes.interchange(func, inner)),
            Item::Sum(_) => {}
        }
    }

    // The sums, lane by lane, in the iterations' order.
    let mut scope = lanes.open(func);
    let mut lane_body = vec![];
    for s in &sums {
        let mut term = s.term.clone();
        lanes.rewrite_operand(func, &mut term, &mut scope, &mut lane_body);
        lane_body.push(Stmt::Accum {
            var: accs[&s.phi],
            expr: Expr::Use(term),
        });
    }
    for item in &items {
        if let Item::Sum(s) = item {
            let mut s = s.clone();
            lanes.rewrite(func, &mut s, &mut scope, &mut lane_body);
            lane_body.push(s);
        }
    }
    body.push(lanes.lane_loop(&scope, lane_body));

    before.push(Stmt::Loop(Box::new(Loop {
        kind: LoopKind::For {
            var: chunk,
            range: RangeSpec {
                start: range.start.clone(),
                end: Operand::Var(lanes_end),
                inclusive: false,
                step: Some(lanes.lanes_lit.clone()),
                rev: false,
            },
        },
        carried: vec![],
        body: Block {
            stmts: body,
            yields: vec![lanes.true_lit()],
        },
        count: None,
        id: None,
        reverse_of: None,
    })));

    // The remaining iterations, as written, adding into the accumulators.
    let mut rest = l.clone();
    if let LoopKind::For { range, .. } = &mut rest.kind {
        range.start = Operand::Var(lanes_end);
    }
    let nexts: FastMap<Var, (Var, Operand)> = originals
        .iter()
        .map(|s| (s.next, (accs[&s.phi], s.term.clone())))
        .collect();
    for s in &mut rest.body.stmts {
        if let Stmt::Let { var, .. } = s {
            if let Some((acc, term)) = nexts.get(var) {
                *s = Stmt::Accum {
                    var: *acc,
                    expr: Expr::Use(term.clone()),
                };
            }
        }
    }
    rest.carried.clear();
    rest.body.yields.truncate(1);
    before.push(Stmt::Loop(Box::new(rest)));
    (before, results)
}

/// What the rewriting of lane-local code needs.
struct Lanes {
    /// The original loop variable.
    i: Var,
    /// The first iteration of the group.
    chunk: Var,
    /// The arrays declared in the body.
    arrays: FastSet<Var>,
    varying: FastSet<Var>,
    /// Each lane-dependent value kept for all lanes: its array.
    lane_arrays: FastMap<Var, Var>,
    span: Span,
    /// The literal `4`.
    lanes_lit: Operand,
}

/// One lane loop being written: its lane variable, and the values of other
/// loops it has loaded (or defined) so far.
struct Scope {
    lane: Var,
    values: FastMap<Var, Operand>,
}

impl Lanes {
    fn len_expr(&self) -> syn::Expr {
        syn::Expr::Lit(syn::ExprLit {
            attrs: vec![],
            lit: syn::Lit::Int(syn::LitInt::new(&LANES.to_string(), self.span)),
        })
    }

    fn true_lit(&self) -> Operand {
        Operand::Lit(syn::Lit::Bool(syn::LitBool::new(true, self.span)))
    }

    /// The array holding `var` for every lane (created on first use);
    /// `inner_lens` are the dimensions of an array `var` itself.
    fn lane_array(&mut self, func: &mut Func, var: Var, inner_lens: &[syn::Expr]) -> Var {
        if let Some(a) = self.lane_arrays.get(&var) {
            return *a;
        }
        let info = func.info(var).clone();
        let elem = match &info.shape {
            Some(shape) => shape.elem,
            None => info.ty,
        };
        let mut lens = vec![Some(self.len_expr())];
        match &info.shape {
            Some(shape) if inner_lens.is_empty() => lens.extend(shape.lens.iter().cloned()),
            _ => lens.extend(inner_lens.iter().cloned().map(Some)),
        }
        // Temporaries stay temporaries (`__t4`); named values and adjoints
        // get a name that says what they hold (`z_lanes`, `d_z_lanes`),
        // never one the user's code uses.
        let (name, origin) = match info.origin {
            Origin::Temp => (info.name.clone(), Origin::Temp),
            Origin::Adjoint(of) => (
                format!("d_{}_lanes", func.info(of).name.trim_start_matches("r#")),
                Origin::Synth,
            ),
            _ => (
                format!("{}_lanes", info.name.trim_start_matches("r#")),
                Origin::Synth,
            ),
        };
        let a = func.new_var(VarInfo {
            name,
            ty: Ty::Array,
            origin,
            active: false,
            span: info.span,
            shape: Some(Shape { elem, lens }),
        });
        self.lane_arrays.insert(var, a);
        a
    }

    /// `let mut a = [Default::default(); 4];`
    fn declare(&self, lane_array: Var) -> Stmt {
        Stmt::LetArray {
            var: lane_array,
            init: ArrayInit::Repeat {
                fill: Operand::Default,
                lens: vec![self.len_expr()],
            },
        }
    }

    /// A new lane loop's scope, with a new lane variable.
    fn open(&self, func: &mut Func) -> Scope {
        let lane = func.new_var(VarInfo::scalar(
            "lane",
            Ty::Int,
            Origin::Synth,
            false,
            self.span,
        ));
        Scope {
            lane,
            values: FastMap::default(),
        }
    }

    /// `for lane in 0..4 { body }`
    fn lane_loop(&self, scope: &Scope, body: Vec<Stmt>) -> Stmt {
        let range = RangeSpec {
            start: Operand::Lit(syn::Lit::Int(syn::LitInt::new("0", self.span))),
            end: self.lanes_lit.clone(),
            inclusive: false,
            step: None,
            rev: false,
        };
        self.for_loop(
            LoopKind::For {
                var: scope.lane,
                range,
            },
            body,
        )
    }

    fn for_loop(&self, kind: LoopKind, stmts: Vec<Stmt>) -> Stmt {
        Stmt::Loop(Box::new(Loop {
            kind,
            carried: vec![],
            body: Block {
                stmts,
                yields: vec![self.true_lit()],
            },
            count: None,
            id: None,
            reverse_of: None,
        }))
    }

    /// The lane's value of `var` in the lane loop of `scope`: what the loop
    /// already has, else loaded from its lane array (the load goes to
    /// `out`), or `chunk + lane` for the loop variable. `None` for values
    /// the same in every lane.
    fn value_of(
        &self,
        func: &mut Func,
        var: Var,
        scope: &mut Scope,
        out: &mut Vec<Stmt>,
    ) -> Option<Operand> {
        if let Some(o) = scope.values.get(&var) {
            return Some(o.clone());
        }
        let expr = if var == self.i {
            Expr::Binary(
                BinOp::Add,
                Operand::Var(self.chunk),
                Operand::Var(scope.lane),
            )
        } else if self.arrays.contains(&var) {
            return None;
        } else if let Some(a) = self.lane_arrays.get(&var) {
            Expr::Index {
                array: *a,
                index: vec![Operand::Var(scope.lane)],
            }
        } else {
            return None;
        };
        // A scalar is a temporary, so that a value read once is folded into
        // its use (`sigmoid(z_lanes[lane])`); a slice keeps a name, to be
        // indexed.
        let origin = match func.info(var).ty {
            Ty::Array | Ty::Other => func.info(var).origin.clone(),
            _ => Origin::Temp,
        };
        let copy = func.derived_var(var, origin);
        out.push(Stmt::Let { var: copy, expr });
        scope.values.insert(var, Operand::Var(copy));
        Some(Operand::Var(copy))
    }

    fn rewrite_operand(
        &self,
        func: &mut Func,
        o: &mut Operand,
        scope: &mut Scope,
        out: &mut Vec<Stmt>,
    ) {
        if let Some(v) = o.as_var() {
            if let Some(new) = self.value_of(func, v, scope, out) {
                *o = new;
            }
        }
    }

    /// Rewrites one statement for the lane loop of `scope`: the
    /// lane-dependent values it reads become the lane's (loads go to `out`
    /// first), the body's arrays are indexed by the lane first. What it
    /// defines is the lane's value from then on.
    fn rewrite(&self, func: &mut Func, s: &mut Stmt, scope: &mut Scope, out: &mut Vec<Stmt>) {
        let mut read = s.reads();
        for b in s.blocks() {
            crate::ir::reads_in_block(b, &mut read);
        }
        let inside = crate::fuse::defined_inside(s);
        let mut map: FastMap<Var, Operand> = FastMap::default();
        for v in read {
            if inside.contains(&v) || map.contains_key(&v) {
                continue;
            }
            if let Some(new) = self.value_of(func, v, scope, out) {
                map.insert(v, new);
            }
        }
        crate::ir::substitute_stmt(s, &|v| map.get(&v).cloned());
        self.index_arrays(s, scope.lane);
        for v in s.defines() {
            scope.values.insert(v, Operand::Var(v));
        }
    }

    /// `a[k]` of an array declared in the body becomes `a_lanes[lane][k]`,
    /// in `s` and the blocks nested in it.
    fn index_arrays(&self, s: &mut Stmt, lane: Var) {
        let lane_first = |array: &mut Var, index: &mut Vec<Operand>| {
            if let Some(a) = self
                .lane_arrays
                .get(array)
                .filter(|_| self.arrays.contains(array))
            {
                *array = *a;
                index.insert(0, Operand::Var(lane));
            }
        };
        match s {
            Stmt::Store { array, index, .. }
            | Stmt::AccumIndex {
                target: Target::Var(array),
                index,
                ..
            } => lane_first(array, index),
            _ => {}
        }
        if let Some(Expr::Index { array, index }) = s.expr_mut() {
            lane_first(array, index);
        }
        for b in s.blocks_mut() {
            for inner in &mut b.stmts {
                self.index_arrays(inner, lane);
            }
        }
    }

    /// An inner loop of lane-local work with the lanes inside:
    /// `for k in r { invariant…; for lane in 0..4 { work… } }`, its carried
    /// values in lane arrays.
    fn interchange(&mut self, func: &mut Func, inner: &Loop) -> Vec<Stmt> {
        let mut out = vec![];
        for c in &inner.carried {
            let a = self.lane_array(func, c.phi, &[]);
            self.lane_arrays.insert(c.out, a);
            let fill_varies = c.init.as_var().is_some_and(|v| self.varying.contains(&v));
            out.push(Stmt::LetArray {
                var: a,
                init: ArrayInit::Repeat {
                    fill: if fill_varies {
                        Operand::Default
                    } else {
                        c.init.clone()
                    },
                    lens: vec![self.len_expr()],
                },
            });
            if fill_varies {
                let mut scope = self.open(func);
                let mut body = vec![];
                let mut init = c.init.clone();
                self.rewrite_operand(func, &mut init, &mut scope, &mut body);
                body.push(Stmt::Store {
                    array: a,
                    index: vec![Operand::Var(scope.lane)],
                    value: init,
                });
                out.push(self.lane_loop(&scope, body));
            }
        }
        let mut local_varying = self.varying.clone();
        mark_varying(inner, &mut local_varying);
        let mut scope = self.open(func);
        let mut invariant = vec![];
        let mut lane_body = vec![];
        for s in &inner.body.stmts {
            let lane_dependent = match s {
                Stmt::Let { var, .. } => local_varying.contains(var),
                _ => true,
            };
            if lane_dependent {
                let mut s = s.clone();
                self.rewrite(func, &mut s, &mut scope, &mut lane_body);
                lane_body.push(s);
            } else {
                invariant.push(s.clone());
            }
        }
        for (j, c) in inner.carried.iter().enumerate() {
            let mut next = inner.body.yields[1 + j].clone();
            // Stored once: folded into the store (`z_lanes[lane] += …`).
            if let Some(v) = next.as_var().filter(|v| local_varying.contains(v)) {
                func.info_mut(v).origin = Origin::Temp;
            }
            self.rewrite_operand(func, &mut next, &mut scope, &mut lane_body);
            lane_body.push(Stmt::Store {
                array: self.lane_arrays[&c.phi],
                index: vec![Operand::Var(scope.lane)],
                value: next,
            });
        }
        invariant.push(self.lane_loop(&scope, lane_body));
        out.push(self.for_loop(inner.kind.clone(), invariant));
        out
    }
}
