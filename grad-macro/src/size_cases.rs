//! Functions of a given number of operations, in the shapes the compile-cost
//! tests (`size_tests.rs`) and the expansion benchmark (`benches/expand.rs`)
//! feed to the expander. Plain text generators with no randomness, so a size
//! is always the same function; shared by both through `#[path]`.
//!
//! An *operation* is one primitive the transform differentiates: a binary
//! `+ - * /`, a unary `-`, a float method (`.sin()`, `.powi(2)`, …) or a
//! runtime function (`sigmoid`). Every generator emits exactly `n` of them
//! in the part of the function that scales (a few fixed ones around it, such
//! as a loop's `s += …`, are not counted).

use std::fmt::Write as _;

/// The shapes of function a size test covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Straight-line `let`s, each reading the previous value and one or two
    /// earlier ones (a DAG with long edges, not a path).
    Chain,
    /// One expression: a sum of products of `n` terms, grouped both
    /// left-leaning (`a + b + c`) and right-leaning (`a * (b + (c * …))`),
    /// nesting at most [`NEST`] deep.
    LongExpr,
    /// One left-leaning sum of `n / 2` products, `w * c1 + w * c2 - …`,
    /// with no grouping: `n` levels of syntax tree (see [`deep_expr`]).
    LeftSum,
    /// A reduction over a slice, `s += …` after a loop body of `n`
    /// operations reading the element, the parameters and each other.
    LoopBody,
    /// A loop-carried recurrence, `h = …(h, x[i])` after a body of `n`
    /// operations: the tape records one value per iteration.
    LoopCarried,
    /// A chain with branches: value `if`s, statement `if`s nested two deep
    /// assigning a `let mut`, `else if` chains.
    Branchy,
    /// A chain with early exits: guard clauses (`if … { return …; }`) and
    /// `if`s where both branches go on after an inner early return (the
    /// lowering's regions), one every ten lines.
    EarlyExits,
}

impl Shape {
    /// Every shape, in the order the tests report them.
    pub const ALL: [Shape; 7] = [
        Shape::Chain,
        Shape::LongExpr,
        Shape::LeftSum,
        Shape::LoopBody,
        Shape::LoopCarried,
        Shape::Branchy,
        Shape::EarlyExits,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Chain => "chain",
            Shape::LongExpr => "long_expr",
            Shape::LeftSum => "left_sum",
            Shape::LoopBody => "loop_body",
            Shape::LoopCarried => "loop_carried",
            Shape::Branchy => "branchy",
            Shape::EarlyExits => "early_exits",
        }
    }

    /// The attribute's arguments and the function, as source text.
    pub fn source(self, n: usize) -> (String, String) {
        match self {
            Shape::Chain => (String::new(), chain(n)),
            Shape::LongExpr => (String::new(), long_expr(n)),
            Shape::LeftSum => (String::new(), deep_expr(n, false)),
            Shape::LoopBody => ("wrt(w, b)".into(), loop_body(n)),
            Shape::LoopCarried => ("wrt(w, b)".into(), loop_carried(n)),
            Shape::Branchy => (String::new(), branchy(n)),
            Shape::EarlyExits => (String::new(), early_exits(n)),
        }
    }
}

/// How deep [`Shape::LongExpr`] nests a right-leaning group. A right-leaning
/// sum of `n` terms is `n` levels of syntax tree; a proc macro runs on
/// rustc's thread (8 MiB of stack) and every recursive pass (syn's parser,
/// its `Drop`, lowering) takes stack per level, so the one-expression shape
/// is a left-leaning sequence of right-leaning groups of bounded depth.
/// [`deep_expr`] is the unbounded form.
pub const NEST: usize = 25;

/// `a{k}`: the value of line `k`; line 0 is built from the parameters.
/// Returns the statement and how many operations it has.
fn chain_line(k: usize) -> (String, usize) {
    let p = format!("a{}", k - 1);
    // Two earlier values at varying distances: halfway back and a few back.
    let q = format!("a{}", k / 2);
    let r = format!("a{}", k.saturating_sub(2 + k % 5));
    let (expr, ops) = match k % 8 {
        0 => (format!("({p} * w + b).sin()"), 3),
        1 => (format!("{p}.tanh() * {q} - {r}"), 3),
        2 => (format!("{p} * {q} + 0.5 * {r}"), 3),
        3 => (format!("({p} - {q}).cos()"), 2),
        4 => (format!("{p} / (1.0 + {q} * {q})"), 3),
        5 => (format!("sigmoid({p} * w)"), 2),
        6 => (format!("{p}.powi(2) + x"), 2),
        _ => (format!("{p}.hypot({q}) + {r}"), 2),
    };
    (format!("let a{k} = {expr};\n"), ops)
}

/// Lines `1..` of a chain until `n` operations; returns the last index.
fn chain_lines(out: &mut String, n: usize, ops_before: usize) -> usize {
    let mut ops = ops_before;
    let mut k = 0;
    while ops < n {
        k += 1;
        let (line, o) = chain_line(k);
        out.push_str(&line);
        ops += o;
    }
    k
}

/// [`Shape::Chain`] with `n` operations.
pub fn chain(n: usize) -> String {
    let mut s = String::from("fn chain(w: f64, b: f64, x: f64) -> f64 {\nlet a0 = w * x + b;\n");
    let last = chain_lines(&mut s, n, 2);
    let _ = writeln!(s, "a{last}\n}}");
    s
}

/// One term of a long expression and its operation count: distinct
/// constants so that no two terms are common subexpressions.
fn term(i: usize) -> (String, usize) {
    let c = 1.0 + (i + 1) as f64 / 1024.0; // never 1: `w * 1.0` would fold
    match i % 4 {
        0 => (format!("w * {c:?}"), 1),
        1 => (format!("(x + {c:?}).sin()"), 2),
        2 => (format!("(b * {c:?}).tanh()"), 2),
        _ => (format!("x.powi({})", 2 + i % 3), 1),
    }
}

/// [`Shape::LongExpr`] with `n` operations.
pub fn long_expr(n: usize) -> String {
    let mut groups: Vec<String> = vec![];
    let mut ops = 0;
    let mut i = 0;
    while ops < n {
        // A right-leaning group `(t + (t * (t - … t)))` of up to NEST terms.
        let mut terms = vec![];
        while terms.len() < NEST && ops < n {
            let (t, o) = term(i);
            i += 1;
            ops += o;
            terms.push(t);
            if terms.len() > 1 {
                ops += 1; // the operator joining it to the group
            }
        }
        let mut group = terms.pop().unwrap_or_default();
        for (j, t) in terms.into_iter().enumerate().rev() {
            let op = ["+", "*", "-"][j % 3];
            group = format!("({t} {op} {group})");
        }
        if !groups.is_empty() {
            ops += 1; // the operator joining the group to the sum
        }
        groups.push(group);
    }
    // Left-leaning: `g0 + g1 * g2 - g3 + …` (products bind tighter, so the
    // sum's terms are themselves short left-leaning products).
    let mut body = String::new();
    for (j, g) in groups.iter().enumerate() {
        if j > 0 {
            body.push_str(["\n+ ", "\n* ", "\n- "][j % 3]);
        }
        body.push_str(g);
    }
    format!("fn long_expr(w: f64, b: f64, x: f64) -> f64 {{\n{body}\n}}\n")
}

/// One expression of `n` operations nested `n` deep: right-leaning
/// (`t + (t * (t - …))`) or left-leaning (`((t + t) * t) - …`, written
/// without parentheses where precedence allows it). For measuring the depth
/// the expander's recursion can take.
pub fn deep_expr(n: usize, right: bool) -> String {
    let count = n.div_ceil(2).max(1); // a term and an operator: two ops each
    let t = |i: usize| format!("(w * {:?})", 1.0 + (i + 1) as f64 / 1024.0);
    let mut e = t(0);
    for i in 1..count {
        let op = ["+", "-"][i % 2];
        e = if right {
            format!("({} {op} {e})", t(i))
        } else {
            format!("{e} {op} {}", t(i))
        };
    }
    format!("fn deep(w: f64) -> f64 {{\n{e}\n}}\n")
}

/// [`Shape::LoopBody`] with `n` operations in the loop body.
pub fn loop_body(n: usize) -> String {
    let mut s = String::from(
        "fn loop_body(w: f64, b: f64, x: &[f64]) -> f64 {\nlet mut s = 0.0;\nfor i in 0..x.len() {\nlet a0 = w * x[i] + b;\n",
    );
    let last = chain_lines(&mut s, n, 2);
    let _ = writeln!(s, "s += a{last};\n}}\ns / x.len() as f64\n}}");
    // The chain's `+ x` reads the element.
    s.replace(".powi(2) + x;", ".powi(2) + x[i];")
}

/// [`Shape::LoopCarried`] with `n` operations in the loop body.
pub fn loop_carried(n: usize) -> String {
    let mut s = String::from(
        "fn loop_carried(w: f64, b: f64, x: &[f64]) -> f64 {\nlet mut h = 0.0;\nfor i in 0..x.len() {\nlet a0 = h * w + x[i] + b;\n",
    );
    let last = chain_lines(&mut s, n, 3);
    let _ = writeln!(s, "h = a{last}.tanh();\n}}\nh\n}}");
    s.replace(".powi(2) + x;", ".powi(2) + x[i];")
}

/// [`Shape::Branchy`] with `n` operations.
pub fn branchy(n: usize) -> String {
    let mut s = String::from("fn branchy(w: f64, b: f64, x: f64) -> f64 {\nlet a0 = w * x + b;\n");
    let mut ops = 2;
    let mut k = 0;
    while ops < n {
        k += 1;
        let p = format!("a{}", k - 1);
        let q = format!("a{}", k / 2);
        match k % 10 {
            // A value `if`.
            3 => {
                let _ = writeln!(
                    s,
                    "let a{k} = if {p} < {q} {{ {p}.exp() }} else {{ {q} * w }};"
                );
                ops += 2;
            }
            // Nested statement `if`s assigning a `let mut`.
            5 => {
                let _ = writeln!(
                    s,
                    "let mut a{k} = {p};\nif {p} > {q} {{ if {q} < 0.5 {{ a{k} = {p} * w; }} else {{ a{k} = {q}.sin(); }} }} else {{ a{k} += b; }}"
                );
                ops += 3;
            }
            // An `else if` chain.
            8 => {
                let _ = writeln!(
                    s,
                    "let mut a{k} = {p};\nif {p} > 1.0 {{ a{k} = {p}.ln(); }} else if {p} < -1.0 {{ a{k} = -{q}; }}"
                );
                ops += 2;
            }
            _ => {
                let (line, o) = chain_line(k);
                s.push_str(&line);
                ops += o;
            }
        }
    }
    let _ = writeln!(s, "a{k}\n}}");
    s
}

/// [`Shape::EarlyExits`] with `n` operations.
pub fn early_exits(n: usize) -> String {
    let mut s =
        String::from("fn early_exits(w: f64, b: f64, x: f64) -> f64 {\nlet a0 = w * x + b;\n");
    let mut ops = 2;
    let mut k = 0;
    while ops < n {
        k += 1;
        let p = format!("a{}", k - 1);
        let q = format!("a{}", k / 2);
        match k % 20 {
            // A guard clause.
            7 => {
                let _ = writeln!(
                    s,
                    "if {p} > 10.0 {{ return {p} * w; }}\nlet a{k} = {p} - {q};"
                );
                ops += 2;
            }
            // Both branches go on after an inner early return: a region.
            17 => {
                let _ = writeln!(
                    s,
                    "let mut a{k} = {p};\nif {p} < 0.0 {{ if {q} > 5.0 {{ return {q}; }} a{k} += 1.0; }} else {{ a{k} *= 2.0; }}"
                );
                ops += 2;
            }
            _ => {
                let (line, o) = chain_line(k);
                s.push_str(&line);
                ops += o;
            }
        }
    }
    let _ = writeln!(s, "a{k}\n}}");
    s
}
