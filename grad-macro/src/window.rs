//! One bounds check before a stencil loop instead of one per element read.
//!
//! A loop `for i in a..b` that reads a slice parameter at `x[i]` and
//! `x[i + 1]` (Rosenbrock, finite differences, any stencil) checks both
//! indices in every iteration: LLVM cannot drop the checks, because nothing
//! ties `b` to `x.len()` (in `for i in 0..n - 1`, `n - 1` even wraps at
//! `n = 0`). A hand-written gradient iterates `x.windows(2)` and has none.
//! This pass gives `f_backward` the same: before the loop it takes the part
//! of `x` the loop can read,
//!
//! ```text
//! let x_window = grad::__private::window(x, a, b, 1);   // &x[..b + 1] if a < b
//! for i in a..b {
//!     … x_window[i] … x_window[i + 1] …
//! }
//! ```
//!
//! and the reads go through it. From the one check in `window`, LLVM knows
//! that every `i + c` with `c ≤ 1` is in bounds for `x_window`, and for the
//! gradient slice of `x` as well (`prepare_grad` gave it `x`'s length).
//! BENCHMARKS.md has what it saves (W2, W3, W4).
//!
//! The companion panics on exactly the inputs where the loop would have
//! (only the message and the moment differ): the pass applies only where
//! every iteration runs to its end (no `break`, no early `return`), the
//! reads it moves are at the top level of the body (so every iteration
//! makes them), and the body calls nothing that could diverge or have an
//! effect before the loop would have panicked (no calls of user functions
//! or methods, no `while`/`loop` inside). Then the loop reads index
//! `b − 1 + c_max`, and panics, exactly when `b + c_max > x.len()`, which is
//! what `window` checks.
//!
//! A read `x[m + j]` in a loop over `j`, with `m` the same in every
//! iteration (a row's start `i * D` in a dense layer), goes through
//! `window_from(x, m, a, b, 0)` (`&x[m..][..b]` if the loop runs) as
//! `x_window[j]`: one check per row instead of one per element. `m` is
//! computed again before the loop when the body computed it; in a debug
//! build that multiplication could overflow where the original, whose inner
//! loop did not run, never made it: only for an outer index past
//! `usize::MAX / D`.
//!
//! It runs on `f_backward`'s IR just before emission, after the simplifier,
//! on a copy: forward mode over that IR (`f_hvp`) never sees the window.

use proc_macro2::TokenStream;

use crate::ir::{
    BinOp, Block, Expr, FastMap, FastSet, Func, LoopKind, Operand, Origin, Stmt, Target, Ty, Var,
};

/// Hoists the bounds checks of every eligible loop in `func`; `krate` is the
/// path of the runtime crate. Returns whether anything changed.
pub fn hoist_bounds_checks(func: &mut Func, krate: &TokenStream) -> bool {
    let (Ok(window), Ok(window_from)) = (
        syn::parse2::<syn::Path>(quote::quote!(#krate::__private::window)),
        syn::parse2::<syn::Path>(quote::quote!(#krate::__private::window_from)),
    ) else {
        return false;
    };
    let mut lens = FastMap::default();
    crate::ir::walk_stmts(&func.body, &mut |s| {
        if let Stmt::Let {
            var,
            expr: Expr::Len(array),
        } = s
        {
            lens.insert(*var, *array);
        }
    });
    let pass = Pass {
        window,
        window_from,
        lens,
    };
    let mut body = std::mem::take(&mut func.body);
    let changed = pass.in_block(func, &mut body);
    func.body = body;
    if changed {
        // The index arithmetic the windows replaced (`i * D + j`) is unread
        // now: emitted, it would be an unused variable.
        crate::simplify::eliminate_dead_code(func);
    }
    changed
}

struct Pass {
    /// `krate::__private::window`.
    window: syn::Path,
    /// `krate::__private::window_from`.
    window_from: syn::Path,
    /// Variables defined as `array.len()`, and the array.
    lens: FastMap<Var, Var>,
}

impl Pass {
    fn in_block(&self, func: &mut Func, block: &mut Block) -> bool {
        let mut changed = false;
        let mut at = 0;
        while at < block.stmts.len() {
            // The loop itself before the loops in it: their windows are
            // calls, which would make it look ineligible.
            let before = self.hoist(func, &mut block.stmts[at]);
            for b in block.stmts[at].blocks_mut() {
                changed |= self.in_block(func, b);
            }
            let n = before.len();
            block.stmts.splice(at..at, before);
            changed |= n > 0;
            at += n + 1;
        }
        changed
    }

    /// Rewrites the reads of the loop `stmt`, if it is eligible; returns the
    /// windows to take before it.
    fn hoist(&self, func: &mut Func, stmt: &mut Stmt) -> Vec<Stmt> {
        // What the loop defines or changes (its variable, its carried
        // values, anything its body assigns or accumulates into).
        let inside: FastSet<Var> = crate::fuse::defined_inside(stmt)
            .into_iter()
            .chain(crate::fuse::mutated(stmt))
            .collect();
        let Stmt::Loop(l) = stmt else { return vec![] };
        let LoopKind::For { var: i, range } = &l.kind else {
            return vec![];
        };
        let runs_to_end = l.runs_to_end();
        if range.rev
            || range.inclusive
            || range.step.is_some()
            || !runs_to_end
            || !calls_nothing(&l.body)
        {
            return vec![];
        }
        let (i, start, end) = (*i, range.start.clone(), range.end.clone());

        // `k = i + c` at the top level of the body, `i` itself, and
        // `k = m + i` with `m` from outside the loop (a row's start,
        // `x[i * D + j]` in a loop over `j`).
        let outside = |o: &Operand| match o {
            Operand::Var(v) => !inside.contains(v),
            Operand::Lit(_) | Operand::Path(_) => true,
            _ => false,
        };
        // Values the body computes from outside values only (`i * D` in a
        // loop over `j`): a base can be computed again before the loop.
        let mut invariant: FastMap<Var, Expr> = FastMap::default();
        for s in &l.body.stmts {
            if let Stmt::Let {
                var,
                expr: expr @ Expr::Binary(BinOp::Add | BinOp::Mul, a, b),
            } = s
            {
                // Not `/` or `%`, which could panic before a loop that
                // would not have run.
                if outside(a) && outside(b) && func.info(*var).ty == Ty::Int {
                    invariant.insert(*var, expr.clone());
                }
            }
        }
        let mut offsets: FastMap<Var, (Option<Var>, u64)> = FastMap::default();
        offsets.insert(i, (None, 0));
        for s in &l.body.stmts {
            if let Stmt::Let {
                var,
                expr: Expr::Binary(BinOp::Add, a, b),
            } = s
            {
                let is_base = |m: Var| outside(&Operand::Var(m)) || invariant.contains_key(&m);
                let offset = match (a.as_var(), b.as_var()) {
                    (Some(v), None) if v == i => b.as_int().map(|c| (None, c)),
                    (None, Some(v)) if v == i => a.as_int().map(|c| (None, c)),
                    (Some(v), Some(m)) | (Some(m), Some(v)) if v == i && m != i && is_base(m) => {
                        Some((Some(m), 0))
                    }
                    _ => None,
                };
                if let Some((base, c)) = offset {
                    if let Ok(c) = u64::try_from(c) {
                        offsets.insert(*var, (base, c));
                    }
                }
            }
        }

        // Per slice parameter and base: the reads to move, and the reach.
        let mut reads: FastMap<(Var, Option<Var>), (Vec<usize>, u64)> = FastMap::default();
        for (at, s) in l.body.stmts.iter().enumerate() {
            match s {
                Stmt::Let {
                    expr: Expr::Index { array, index },
                    ..
                } if is_slice_param(func, *array) => {
                    if let [Operand::Var(k)] = index.as_slice() {
                        if let Some((base, c)) = offsets.get(k) {
                            let entry = reads.entry((*array, *base)).or_default();
                            entry.0.push(at);
                            entry.1 = entry.1.max(*c);
                        }
                    }
                }
                // The gradient slice has the parameter's length: the window's
                // check covers its elements too, if it reaches them.
                Stmt::AccumIndex {
                    target: Target::Grad(p),
                    index,
                    ..
                } => {
                    let x = func.params[*p].var;
                    let offset = match index.as_slice() {
                        [Operand::Var(k)] => offsets.get(k),
                        _ => None,
                    };
                    if let Some((None, c)) = offset.filter(|_| is_slice_param(func, x)) {
                        let entry = reads.entry((x, None)).or_default();
                        entry.1 = entry.1.max(*c);
                    }
                }
                _ => {}
            }
        }

        let mut before = vec![];
        let mut slices: Vec<_> = reads.into_iter().collect();
        slices.sort_by_key(|((x, base), _)| (*x, *base));
        for ((x, base), (at, reach)) in slices {
            // `for i in 0..x.len()` reading `x[i]`: LLVM needs no help.
            let covered = base.is_none()
                && reach == 0
                && end.as_var().and_then(|e| self.lens.get(&e)) == Some(&x);
            if at.is_empty() || covered {
                continue;
            }
            let info = func.info(x).clone();
            let window = func.new_var(crate::ir::VarInfo {
                name: format!("{}_window", info.name.trim_start_matches("r#")),
                origin: Origin::Synth,
                active: false,
                ..info
            });
            for at in at {
                if let Stmt::Let {
                    expr: Expr::Index { array, index },
                    ..
                } = &mut l.body.stmts[at]
                {
                    *array = window;
                    // Relative to the base: `x_window[j]` for `x[m + j]`.
                    if base.is_some() {
                        *index = vec![Operand::Var(i)];
                    }
                }
            }
            // A base the body computes is computed again before the loop.
            let base = base.map(|m| match invariant.get(&m) {
                Some(expr) => {
                    let copy = func.derived_var(m, Origin::Temp);
                    before.push(Stmt::Let {
                        var: copy,
                        expr: expr.clone(),
                    });
                    copy
                }
                None => m,
            });
            let reach = syn::LitInt::new(&reach.to_string(), proc_macro2::Span::call_site());
            let mut args = vec![Operand::Var(x)];
            args.extend(base.map(Operand::Var));
            args.extend([start.clone(), end.clone(), Operand::Lit(reach.into())]);
            let func_path = if base.is_some() {
                self.window_from.clone()
            } else {
                self.window.clone()
            };
            before.push(Stmt::Let {
                var: window,
                expr: Expr::Call {
                    func: func_path,
                    args,
                },
            });
        }
        before
    }
}

/// Whether `x` is a parameter passed as `&[T]` (a shared reference whose
/// outermost length is known only at run time).
fn is_slice_param(func: &Func, x: Var) -> bool {
    let info = func.info(x);
    info.origin == Origin::Param
        && info
            .shape
            .as_ref()
            .is_some_and(|shape| matches!(shape.lens.as_slice(), [None]))
        && func.params.iter().any(|p| {
            p.var == x && matches!(&p.ty, syn::Type::Reference(r) if r.mutability.is_none())
        })
}

/// Whether `body` is free of anything that could diverge or have an effect
/// of its own: calls of user functions and methods, `while` and `loop`.
fn calls_nothing(body: &Block) -> bool {
    let mut ok = true;
    crate::ir::walk_stmts(body, &mut |s| {
        if let Stmt::Loop(l) = s {
            ok &= !matches!(l.kind, LoopKind::Loop);
        }
        let expr = s.expr();
        ok &= !matches!(
            expr,
            Some(
                Expr::Call { .. }
                    | Expr::DiffCall { .. }
                    | Expr::GradCall { .. }
                    | Expr::HvpCall { .. }
                    | Expr::Method { .. }
            )
        );
    });
    ok
}
