//! Contributions to the next iteration's element, kept in a register.
//!
//! A loop whose iteration `i` reads `x[i]` and `x[i + 1]` (Rosenbrock,
//! finite differences, any stencil) differentiates to a loop that adds into
//! `grad.x[i]` and `grad.x[i + 1]`. Written that way, iteration `i + 1`
//! loads the element iteration `i` has just stored, and every iteration
//! waits for the store to reach the load: a latency chain through memory.
//! A hand-written gradient carries the contribution to the next element in
//! a variable instead; this pass does the same:
//!
//! ```text
//! for i in a..b {                        let mut carry = 0.0;
//!     …                                  for i in a..b {
//!     g[i] += e;                   =>        …
//!     g[i + 1] += d;                         g[i] += carry;
//! }                                          g[i] += e;
//!                                            carry = d;
//!                                        }
//!                                        if a < b { g[b] += carry; }
//! ```
//!
//! Each element receives the same additions in the same order as before, so
//! the gradient is bit for bit the same (the first iteration adds `0.0`,
//! which changes nothing but the sign of a zero). The pass applies to a
//! forward `for` over `a..b` with exactly one `g[i + 1] += …` at the top of
//! its body, where every other access to `g` in the body is a top-level
//! `g[i] += …`.

use crate::ir::{
    walk_stmts, BinOp, Block, Carried, Expr, Func, LoopKind, Operand, Origin, Stmt, Target, Ty,
    Var, VarInfo,
};

/// Applies the rewrite to every eligible loop in `func`; returns whether
/// anything changed.
pub fn carry_next_element(func: &mut Func) -> bool {
    let mut body = std::mem::take(&mut func.body);
    let changed = in_block(func, &mut body);
    func.body = body;
    changed
}

fn in_block(func: &mut Func, block: &mut Block) -> bool {
    let mut changed = false;
    for stmt in &mut block.stmts {
        for b in stmt.blocks_mut() {
            changed |= in_block(func, b);
        }
    }
    let mut at = 0;
    while at < block.stmts.len() {
        if let Some(after) = rewrite(func, &mut block.stmts[at]) {
            let n = after.len();
            block.stmts.splice(at + 1..at + 1, after);
            changed = true;
            at += n;
        }
        at += 1;
    }
    changed
}

/// Rewrites the loop `stmt` if it is eligible; returns the statements to
/// insert after it.
fn rewrite(func: &mut Func, stmt: &mut Stmt) -> Option<Vec<Stmt>> {
    let Stmt::Loop(l) = stmt else { return None };
    let LoopKind::For { var: i, range } = &l.kind else {
        return None;
    };
    if range.rev || range.inclusive || range.step.is_some() {
        return None;
    }
    let (i, start, end) = (*i, range.start.clone(), range.end.clone());
    // `k = i + 1` at the top level of the body.
    let next: Vec<Var> = l
        .body
        .stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Let {
                var,
                expr: Expr::Binary(BinOp::Add, a, b),
            } if is_var_plus_one(a, b, i) || is_var_plus_one(b, a, i) => Some(*var),
            _ => None,
        })
        .collect();
    let target = l.body.stmts.iter().find_map(|s| match s {
        Stmt::AccumIndex { target, index, .. }
            if matches!(index.as_slice(), [Operand::Var(k)] if next.contains(k)) =>
        {
            Some(*target)
        }
        _ => None,
    })?;
    if !only_element_accumulations(&l.body, target, i, &next) {
        return None;
    }
    let ahead = l.body.stmts.iter().position(|s| {
        matches!(s, Stmt::AccumIndex { target: t, index, .. }
            if *t == target && matches!(index.as_slice(), [Operand::Var(k)] if next.contains(k)))
    })?;

    let element = element_ty(func, target);
    let named_after = match target {
        Target::Var(v) => v,
        Target::Grad(p) | Target::GradDot(p) => func.params[p].var,
    };
    let new_var = |func: &mut Func| {
        let span = func.info(named_after).span;
        func.new_var(VarInfo::scalar(
            format!("{}_next", func.info(named_after).name),
            element,
            Origin::Adjoint(named_after),
            false,
            span,
        ))
    };
    let (phi, out, handed) = (new_var(func), new_var(func), new_var(func));
    let Stmt::AccumIndex { expr, .. } = l.body.stmts.remove(ahead) else {
        return None;
    };
    l.body.stmts.insert(ahead, Stmt::Let { var: handed, expr });
    // The carried contribution goes in just before the iteration's own first
    // `g[i] += …` (the same additions in the same order): with no bounds
    // check between them, LLVM merges the read-modify-writes into one.
    let first_own = l
        .body
        .stmts
        .iter()
        .position(|s| {
            matches!(s, Stmt::AccumIndex { target: t, index, .. }
                if *t == target && matches!(index.as_slice(), [Operand::Var(k)] if *k == i))
        })
        .unwrap_or(0);
    l.body.stmts.insert(
        first_own,
        Stmt::AccumIndex {
            target,
            index: vec![Operand::Var(i)],
            expr: Expr::Use(Operand::Var(phi)),
        },
    );
    l.carried.push(Carried {
        init: Operand::float(0.0),
        phi,
        out,
    });
    l.body.yields.push(Operand::Var(handed));

    // After the loop, the last iteration's contribution goes to `g[end]`,
    // if there was a last iteration.
    let ran = func.new_var(VarInfo::scalar(
        "ran",
        Ty::Bool,
        Origin::Temp,
        false,
        func.info(named_after).span,
    ));
    Some(vec![
        Stmt::Let {
            var: ran,
            expr: Expr::Binary(BinOp::Lt, start, end.clone()),
        },
        Stmt::If {
            cond: Operand::Var(ran),
            then_block: Block {
                stmts: vec![Stmt::AccumIndex {
                    target,
                    index: vec![end],
                    expr: Expr::Use(Operand::Var(out)),
                }],
                yields: vec![],
            },
            else_block: Block::default(),
            outs: vec![],
        },
    ])
}

fn is_var_plus_one(a: &Operand, b: &Operand, i: Var) -> bool {
    a.as_var() == Some(i) && b.as_int() == Some(1)
}

/// Whether every access to `target` in `body` is a top-level
/// `target[i] += …` or `target[k] += …` (`k` in `next`), with exactly one of
/// the latter, and nothing reads `target` otherwise.
fn only_element_accumulations(body: &Block, target: Target, i: Var, next: &[Var]) -> bool {
    let mut top_level = 0;
    let mut ahead = 0;
    for s in &body.stmts {
        if let Stmt::AccumIndex {
            target: t, index, ..
        } = s
        {
            if *t != target {
                continue;
            }
            match index.as_slice() {
                [Operand::Var(k)] if *k == i => top_level += 1,
                [Operand::Var(k)] if next.contains(k) => {
                    top_level += 1;
                    ahead += 1;
                }
                _ => return false,
            }
        }
    }
    let array = match target {
        Target::Var(v) => Some(v),
        Target::Grad(_) | Target::GradDot(_) => None,
    };
    let mut everywhere = 0;
    let mut read_elsewhere = false;
    walk_stmts(body, &mut |s| {
        let own = match s {
            Stmt::AccumIndex { target: t, .. } if *t == target => {
                everywhere += 1;
                true
            }
            _ => false,
        };
        if let Some(v) = array {
            let mut reads = s.reads();
            if own {
                if let Some(at) = reads.iter().rposition(|r| *r == v) {
                    reads.remove(at);
                }
            }
            read_elsewhere |= reads.contains(&v) || s.defines().contains(&v);
            if matches!(s, Stmt::Store { array, .. } if *array == v) {
                read_elsewhere = true;
            }
        }
    });
    ahead == 1 && everywhere == top_level && !read_elsewhere
}

fn element_ty(func: &Func, target: Target) -> Ty {
    let var = match target {
        Target::Var(v) => v,
        Target::Grad(p) | Target::GradDot(p) => func.params[p].var,
    };
    func.info(var)
        .shape
        .as_ref()
        .map_or(Ty::Float, |shape| shape.elem)
}
