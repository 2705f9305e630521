//! A macro that cannot be broken: the expander is fuzzed in-process.
//!
//! Inputs come from three generators:
//!
//! * **mutations** of valid functions (the [`SEEDS`] below and the random
//!   programs of [`super`]): tokens dropped, duplicated, swapped, inserted or
//!   replaced from a vocabulary of Rust tokens; identifiers, literals and
//!   operators replaced by others; statements dropped, duplicated or moved;
//! * a **grammar** of functions that mixes what the macro supports with what
//!   it does not: closures, `loop`/`while`/`while let`, `match` with bindings,
//!   macros, items in bodies, labels, `?`, references, generics, `impl Trait`,
//!   methods, odd patterns and return types, attributes, qualifiers;
//! * random **attribute arguments** (`wrt()`, `crate = 1`, `hessian`, …).
//!
//! Every input is expanded by [`crate::expand::differentiate`] on a thread
//! of its own (8 MiB of stack, as rustc gives a proc macro) under
//! `catch_unwind`, and [`check_input`] asserts: no panic; done within 5 s;
//! when the item is a `fn`, the output parses as a file, contains the
//! function exactly as written, and, without errors, its companions (and a
//! second expansion gives the same tokens); when it is not a `fn`, the output
//! starts with a `compile_error!`. `chain!`'s desugaring gets every input too.
//!
//! The regression corpus `grad-macro/tests/corpus/*.txt` runs every time:
//! header lines `// attr: …` (the attribute's arguments) and `// bug: …` (a
//! reported bug the entry still shows: it must fail until the fix, when the
//! line is removed). The random run counts failures of reported, open bugs
//! ([`known_bug`]) instead of failing. `GRAD_FUZZ_CASES` overrides the number
//! of generated inputs (10,000); `GRAD_FUZZ_VERBOSE=1` times each corpus entry.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::time::{Duration, Instant};

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestError, TestRunner};
use quote::ToTokens;

use super::{arb_program, config, resolve};

/// Valid (or nearly valid) uses of the macro that mutations start from.
const SEEDS: &[(&str, &str)] = &[
    ("wrt(w, b)", "fn loss(w: f64, b: f64, x: f64, y: f64) -> f64 { let z = w * x + b; let p = sigmoid(z); bce(p, y) }"),
    ("", "fn f(x: f64) -> f64 { x.powi(2) }"),
    ("forward", "fn f(x: f64, y: f32) -> f64 { (x * x).sin() + y as f64 }"),
    ("hessian, hvp", "fn f(x: f64, y: f64) -> f64 { x.exp() * y.ln() }"),
    ("crate = ::my_grad", "pub(crate) fn g(x: f64) -> f64 { chain!(x * 2.0 -> sigmoid -> bce(0.5)) }"),
    ("", "fn f(x: f64, mut y: f64) -> f64 { if x < 1.0 { y += x.sin(); let q = x * x; y *= q; } else { if y > 2.0 { return y.sqrt() * x; } y = x.ln() * y; } y * 2.0 }"),
    ("", "fn f(w: f64, x: &[f64]) -> f64 { let mut s = 0.0; for i in 0..x.len() { s += (w * x[i]).sin(); } s }"),
    ("", "fn f(w: f64, x: &[f64]) -> f64 { let mut h = 0.0; for xi in x.iter() { h = (h * w + xi).tanh(); } h }"),
    ("", "fn f(x: f64, w: [f64; 3]) -> f64 { let mut acc = 0.0; let mut i = 0; loop { if i >= 3 { break; } if w[i] < 0.0 { i += 1; continue; } acc = acc * x + w[i]; i += 1; } let mut h = [0.0; 3]; for j in 0..3 { h[j] = (w[j] * x).sin(); } let mut y = x; while y < 10.0 { y = y * 1.7 + h[1]; } acc + y }"),
    ("", "fn f(w: [[f64; 2]; 3], x: &[f64]) -> f64 { let mut out = 0.0; for s in 0..2 { let mut h = [0.0; 3]; for j in 0..3 { for k in 0..2 { h[j] += w[j][k] * x[s * 2 + k]; } } for j in 0..3 { out += h[j].tanh() * x[s * 2]; } } out }"),
    ("", "fn f(x: f64, n: u32) -> f64 { match n { 0 => x, 1 | 2 => x * 2.0, _ if n > 10 => 0.0, _ => x.sin() } }"),
    ("", "fn f(x: f64, y: f64) -> f64 { x.atan2(y) + x.hypot(y) + x.max(y).min(1.0) + x.clamp(-1.0, 1.0) + x.mul_add(y, 1.0) }"),
    ("", "fn f(x: f64) -> f64 { relu(x) + leaky_relu(x, 0.1) + softplus(x) + mse(x, 1.0) + bce_with_logits(x, 0.3) + clamp(x, 0.0, 1.0) }"),
    ("", "fn f(x: f64) -> f64 { let y = bce_loss(x, 1.0); y * g(x) }"),
    ("wrt(x)", "fn f(x: f64, y: f64) -> f64 { if x > 0.0 && x.ln() > 1.0 || y < 0.0 { x } else { 0.0 } }"),
    ("", "pub fn f<'a>(x: f64, w: &'a [f64]) -> f64 { let mut p = 1.0; let mut m = f64::NEG_INFINITY; for i in (0..w.len()).rev() { p *= w[i]; m = m.max(w[i] * p); } p + m + x }"),
    ("", "fn f(x: f32) -> f32 { (x * 2.0f32).sqrt().cbrt().exp2().ln_1p() }"),
    ("", "fn f(x: f64, y: &[f64], z: &[f64]) -> f64 { let mut s = 0.0; for (i, (a, b)) in y.iter().zip(z.iter()).enumerate() { s += a * b * x + i as f64; } s }"),
    ("", "fn f(x: f64) -> f64 { let a = { let t = x * 2.0; t * t }; let b = if a > 1.0 { a } else { -a }; std::f64::consts::PI * b }"),
    ("", "fn f(x: f64) -> [f64; 2] { [x.sin(), x.cos()] }"),
    ("", "fn f(x: f64, y: f64) -> (f64, f64) { (x * y, x + y) }"),
];

// ----------------------------------------------------------------- tokens

/// A token of a flattened token stream.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open(char),
    Close(char),
    /// The token's text and whether it is a punctuation joined to the next.
    Text(String, bool),
}

fn flatten(ts: TokenStream, out: &mut Vec<Tok>) {
    for tt in ts {
        match tt {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ('(', ')'),
                    Delimiter::Brace => ('{', '}'),
                    Delimiter::Bracket => ('[', ']'),
                    Delimiter::None => {
                        flatten(g.stream(), out);
                        continue;
                    }
                };
                out.push(Tok::Open(open));
                flatten(g.stream(), out);
                out.push(Tok::Close(close));
            }
            TokenTree::Punct(p) => out.push(Tok::Text(
                p.as_char().to_string(),
                p.spacing() == Spacing::Joint,
            )),
            TokenTree::Ident(i) => out.push(Tok::Text(i.to_string(), false)),
            TokenTree::Literal(l) => out.push(Tok::Text(l.to_string(), false)),
        }
    }
}

/// Text of `toks`, with unbalanced delimiters repaired (a stray closer is
/// dropped, open groups are closed at the end) so that most mutants lex.
fn render(toks: &[Tok]) -> String {
    let mut stack = vec![];
    let mut s = String::new();
    for t in toks {
        match t {
            Tok::Open(c) => {
                stack.push(match c {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                });
                s.push(*c);
                s.push(' ');
            }
            Tok::Close(c) => {
                if stack.last() == Some(c) {
                    stack.pop();
                    s.push(*c);
                    s.push(' ');
                }
            }
            Tok::Text(t, joint) => {
                s.push_str(t);
                if !joint {
                    s.push(' ');
                }
            }
        }
    }
    while let Some(c) = stack.pop() {
        s.push(c);
    }
    s
}

/// Tokens that mutations insert.
const VOCAB: &[&str] = &[
    "fn",
    "let",
    "mut",
    "if",
    "else",
    "for",
    "in",
    "while",
    "loop",
    "match",
    "return",
    "break",
    "continue",
    "x",
    "y",
    "w",
    "f64",
    "f32",
    "usize",
    "1.0",
    "0",
    "2",
    "1e400",
    "-",
    "\"s\"",
    "'a",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    ";",
    ":",
    "::",
    "->",
    "=>",
    "=",
    "+",
    "*",
    "/",
    "%",
    "<",
    ">",
    "<=",
    "==",
    "!",
    "&",
    "&&",
    "||",
    "|",
    ".",
    "..",
    "..=",
    "?",
    "#",
    "@",
    "_",
    "sin",
    "powi",
    "sigmoid",
    "bce",
    "chain!",
    "matches!",
    "self",
    "Self",
    "crate",
    "super",
    "as",
    "impl",
    "dyn",
    "where",
    "async",
    "await",
    "unsafe",
    "move",
    "const",
    "static",
    "struct",
    "true",
    "false",
    "r#x",
    "wrt",
    "grad",
    "__d_x",
    "__t1",
    "x_grad",
    "FGrad",
    "f_backward",
    "'",
    "b'x'",
    "i32::MAX",
    "T",
    "<T>",
    "Vec<f64>",
    "[f64; 2]",
];

#[derive(Clone, Debug)]
enum Mutation {
    Drop(usize),
    Dup(usize),
    Swap(usize, usize),
    Insert(usize, usize),
    Replace(usize, usize),
    /// The i-th identifier replaced by one of [`IDENTS`].
    Ident(usize, usize),
    /// The i-th literal replaced by one of [`LITERALS`].
    Literal(usize, usize),
    /// The i-th operator replaced by one of [`OPERATORS`].
    Operator(usize, usize),
    /// A statement of the body (a `;`-separated run at the body's top
    /// level) dropped, duplicated, or moved before another.
    StmtDrop(usize),
    StmtDup(usize),
    StmtMove(usize, usize),
}

/// Replacements that keep the syntax mostly valid.
const IDENTS: &[&str] = &[
    "x",
    "y",
    "w",
    "b",
    "n",
    "xs",
    "i",
    "z",
    "p",
    "q",
    "self",
    "Self",
    "crate",
    "super",
    "f64",
    "f32",
    "sin",
    "powi",
    "powf",
    "max",
    "clamp",
    "ln",
    "iter",
    "len",
    "sigmoid",
    "bce",
    "relu",
    "softplus",
    "f",
    "g",
    "grad",
    "__d_x",
    "__t1",
    "value",
    "f_grad",
    "FGrad",
    "r#fn",
    "_",
    "to_degrees",
    "zip",
    "rev",
    "enumerate",
];
const LITERALS: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "0.0",
    "1.0",
    "-0.0",
    "1e400",
    "1e-400",
    "2.5",
    "1.0f32",
    "1u8",
    "\"s\"",
    "'c'",
    "true",
    "3usize",
    "0x7fffffff",
    "-2147483648",
    "1_000_000.0",
];
const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "%", "<", ">", "<=", ">=", "==", "!=", "&&", "||", "&", "|", "^", "..",
    "+=", "-=", "*=", "/=", "=",
];

fn is_ident(t: &str) -> bool {
    t.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

fn is_literal(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_digit() || c == '"' || c == '\'')
}

/// Tokens of `text` (one token, or a short sequence).
fn tokens_of(text: &str) -> Vec<Tok> {
    let mut out = vec![];
    if let Ok(ts) = TokenStream::from_str(text) {
        flatten(ts, &mut out);
    }
    out
}

/// Index ranges of the body's top-level statements.
fn statements(toks: &[Tok]) -> Vec<std::ops::Range<usize>> {
    let Some(open) = toks.iter().position(|t| *t == Tok::Open('{')) else {
        return vec![];
    };
    let mut out = vec![];
    let mut depth = 0;
    let mut start = open + 1;
    for (i, t) in toks.iter().enumerate().skip(open + 1) {
        match t {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) if depth == 0 => break,
            Tok::Close(_) => depth -= 1,
            Tok::Text(s, _) if depth == 0 && s == ";" => {
                out.push(start..i + 1);
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

/// Replaces the `i`-th token that satisfies `pick` by `with`.
fn replace_nth(toks: &mut Vec<Tok>, i: usize, pick: impl Fn(&str) -> bool, with: &str) {
    let found: Vec<usize> = toks
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t, Tok::Text(s, _) if pick(s)))
        .map(|(k, _)| k)
        .collect();
    if found.is_empty() {
        return;
    }
    let at = found[i % found.len()];
    toks.splice(at..at + 1, tokens_of(with));
}

fn vocab(k: usize) -> Vec<Tok> {
    let mut out = vec![];
    match TokenStream::from_str(VOCAB[k % VOCAB.len()]) {
        Ok(ts) => flatten(ts, &mut out),
        Err(_) => out.push(Tok::Text(VOCAB[k % VOCAB.len()].to_string(), true)),
    }
    // A lone opening or closing delimiter.
    match VOCAB[k % VOCAB.len()] {
        "(" | "[" | "{" => vec![Tok::Open(
            VOCAB[k % VOCAB.len()].chars().next().unwrap_or('('),
        )],
        ")" | "]" | "}" => vec![Tok::Close(
            VOCAB[k % VOCAB.len()].chars().next().unwrap_or(')'),
        )],
        _ => out,
    }
}

/// Applies `mutations`; positions are taken inside the body (after the
/// first `{`) when `in_body`, anywhere otherwise.
fn mutate(mut toks: Vec<Tok>, mutations: &[Mutation], in_body: bool) -> Vec<Tok> {
    for m in mutations {
        if toks.is_empty() {
            break;
        }
        let start = if in_body {
            toks.iter()
                .position(|t| *t == Tok::Open('{'))
                .map_or(0, |i| i + 1)
                .min(toks.len() - 1)
        } else {
            0
        };
        let n = toks.len() - start;
        let at = |i: usize| start + i % n;
        match *m {
            Mutation::Ident(i, k) => {
                replace_nth(&mut toks, i, is_ident, IDENTS[k % IDENTS.len()]);
                continue;
            }
            Mutation::Literal(i, k) => {
                replace_nth(&mut toks, i, is_literal, LITERALS[k % LITERALS.len()]);
                continue;
            }
            Mutation::Operator(i, k) => {
                let op = |t: &str| OPERATORS.contains(&t);
                replace_nth(&mut toks, i, op, OPERATORS[k % OPERATORS.len()]);
                continue;
            }
            Mutation::StmtDrop(i) | Mutation::StmtDup(i) | Mutation::StmtMove(i, _) => {
                let stmts = statements(&toks);
                if stmts.is_empty() {
                    continue;
                }
                let r = stmts[i % stmts.len()].clone();
                let stmt: Vec<Tok> = toks[r.clone()].to_vec();
                match *m {
                    Mutation::StmtDrop(_) => {
                        toks.drain(r);
                    }
                    Mutation::StmtDup(_) => {
                        toks.splice(r.start..r.start, stmt);
                    }
                    Mutation::StmtMove(_, j) => {
                        let to = stmts[j % stmts.len()].start;
                        if to < r.start {
                            toks.drain(r);
                            toks.splice(to..to, stmt);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            _ => {}
        }
        match *m {
            Mutation::Drop(i) => {
                toks.remove(at(i));
            }
            Mutation::Dup(i) => {
                let t = toks[at(i)].clone();
                toks.insert(at(i), t);
            }
            Mutation::Swap(i, j) => toks.swap(at(i), at(j)),
            Mutation::Insert(i, k) => {
                for (o, t) in vocab(k).into_iter().enumerate() {
                    toks.insert(at(i) + o, t);
                }
            }
            Mutation::Replace(i, k) => {
                let i = at(i);
                toks.remove(i);
                for (o, t) in vocab(k).into_iter().enumerate() {
                    toks.insert((i + o).min(toks.len()), t);
                }
            }
            _ => {}
        }
    }
    toks
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<usize>().prop_map(Mutation::Drop),
        1 => any::<usize>().prop_map(Mutation::Dup),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(i, k)| Mutation::Insert(i, k)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(i, k)| Mutation::Replace(i, k)),
        6 => (any::<usize>(), any::<usize>()).prop_map(|(i, k)| Mutation::Ident(i, k)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(i, k)| Mutation::Literal(i, k)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(i, k)| Mutation::Operator(i, k)),
        2 => any::<usize>().prop_map(Mutation::StmtDrop),
        2 => any::<usize>().prop_map(Mutation::StmtDup),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::StmtMove(i, j)),
    ]
}

// ----------------------------------------------------------------- grammar

/// Expressions: supported and unsupported constructs alike.
fn arb_fuzz_expr() -> BoxedStrategy<String> {
    let atom = prop::sample::select(vec![
        "x",
        "y",
        "w",
        "n",
        "xs",
        "xs[0]",
        "w[i][0]",
        "q",
        "self",
        "Self",
        "1.0",
        "0.0",
        "-1.0",
        "2",
        "0",
        "1e400",
        "1.0f32",
        "1_f64",
        "0x10",
        "1u8",
        "'c'",
        "\"s\"",
        "b\"x\"",
        "true",
        "f64::NAN",
        "f64::INFINITY",
        "std::f64::consts::PI",
        "PI",
        "i32::MAX",
        "()",
        "[1.0, 2.0]",
        "[0.0; 3]",
        "(x, y)",
        "S { a: x }",
        "None",
        "Some(x)",
        "r#type",
        "__d_x",
        "__t1",
        "grad",
        "f_grad",
        "x_grad",
        "..",
        "_",
    ])
    .prop_map(str::to_string);
    atom.prop_recursive(4, 24, 3, |inner| {
        let methods = prop::sample::select(vec![
            "sin", "powi", "powf", "ln", "sqrt", "max", "min", "clamp", "atan2", "hypot",
            "mul_add", "abs", "exp", "tanh", "len", "iter", "sum", "clone", "to_string",
            "to_degrees", "foo", "floor", "signum", "recip", "log", "into", "unwrap", "zip",
            "enumerate", "rev", "step_by", "map", "sin::<f64>",
        ]);
        let funcs = prop::sample::select(vec![
            "sigmoid",
            "bce",
            "relu",
            "leaky_relu",
            "softplus",
            "clamp",
            "mse",
            "bce_with_logits",
            "grad::sigmoid",
            "grad_core::bce",
            "f64::sin",
            "f64::max",
            "f32::powi",
            "f",
            "g",
            "f_grad",
            "Self::g",
            "super::f",
            "crate::g",
            "<f64 as Float>::sin",
            "sigmoid::<f64>",
            "std::cmp::max",
            "Some",
            "drop",
        ]);
        let binops = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "&&", "||", "&", "|",
            "^", "<<", ">>", "..", "..=", "=", "+=", "*=", "-=", "/=", "%=", "<<=",
        ]);
        let macros = prop::sample::select(vec![
            "chain!", "matches!", "println!", "vec!", "format!", "assert!", "todo!",
            "unreachable!", "panic!", "grad::chain!", "dbg!", "concat!",
        ]);
        prop_oneof![
            4 => (inner.clone(), binops, inner.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            1 => (prop::sample::select(vec!["-", "!", "*", "&", "&mut "]), inner.clone())
                .prop_map(|(o, a)| format!("{o}{a}")),
            3 => (inner.clone(), methods, prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(r, m, a)| format!("({r}).{m}({})", a.join(", "))),
            3 => (funcs, prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(f, a)| format!("{f}({})", a.join(", "))),
            1 => inner.clone().prop_map(|a| format!("({a})")),
            1 => (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("if {c} {{ {a} }} else {{ {b} }}")),
            1 => (inner.clone(), inner.clone()).prop_map(|(c, a)| format!("if {c} {{ {a} }}")),
            1 => (inner.clone(), inner.clone(), inner.clone()).prop_map(|(s, a, b)| format!(
                "match {s} {{ 0 => {a}, v @ 1..=2 => v, _ if {s} > 0 => {b}, _ => {b} }}"
            )),
            1 => (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("match {a} {{ 1.0 => {b}, _ => {a} }}")),
            1 => inner.clone().prop_map(|a| format!("|t| t * {a}")),
            1 => inner.clone().prop_map(|a| format!("move || {a}")),
            1 => (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("{{ let t = {a}; t * {b} }}")),
            1 => inner.clone().prop_map(|a| format!("loop {{ break {a}; }}")),
            1 => inner.clone().prop_map(|a| format!("'l: loop {{ break 'l {a}; }}")),
            1 => (inner.clone(), inner.clone())
                .prop_map(|(c, a)| format!("while {c} {{ {a}; }}")),
            1 => (macros, prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(m, a)| format!("{m}({})", a.join(", "))),
            1 => (inner.clone(), prop::collection::vec(
                prop::sample::select(vec!["sigmoid", "bce(y)", "clamp(0.0, 1.0)", "|t| t", "x", "-", "f(1.0)"]),
                0..3,
            ))
                .prop_map(|(a, stages)| {
                    let mut s = format!("chain!({a}");
                    for st in stages {
                        let _ = write!(s, " -> {st}");
                    }
                    s.push(')');
                    s
                }),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, i)| format!("{a}[{i}]")),
            1 => inner.clone().prop_map(|a| format!("{a}.0")),
            1 => inner.clone().prop_map(|a| format!("{a}.field")),
            1 => (inner.clone(), prop::sample::select(vec!["f64", "f32", "i32", "usize", "u8", "bool", "T", "_"]))
                .prop_map(|(a, t)| format!("({a} as {t})")),
            1 => inner.clone().prop_map(|a| format!("{a}?")),
            1 => inner.clone().prop_map(|a| format!("return {a}")),
            1 => inner.clone().prop_map(|a| format!("unsafe {{ {a} }}")),
            1 => inner.clone().prop_map(|a| format!("async {{ {a} }}")),
            1 => inner.clone().prop_map(|a| format!("{a}.await")),
            1 => inner.clone().prop_map(|a| format!("#[allow(unused)] {a}")),
            1 => (inner.clone(), inner).prop_map(|(a, b)| format!("({a}, {b})")),
        ]
    })
    .boxed()
}

fn arb_fuzz_stmt() -> BoxedStrategy<String> {
    let e = arb_fuzz_expr();
    let pat = prop::sample::select(vec![
        "a",
        "mut a",
        "x",
        "mut x",
        "_",
        "(a, b)",
        "[a, b]",
        "a: f64",
        "a: f32",
        "a: [f64; 2]",
        "mut h: [f64; 3]",
        "ref a",
        "Some(a)",
        "S { a }",
        "a @ _",
        "__t1",
        "grad",
        "r#match",
    ]);
    let leaf = prop_oneof![
        4 => (pat.clone(), e.clone()).prop_map(|(p, e)| format!("let {p} = {e};")),
        1 => pat.clone().prop_map(|p| format!("let {p};")),
        1 => (pat.clone(), e.clone())
            .prop_map(|(p, e)| format!("let {p} = {e} else {{ return 0.0; }};")),
        4 => e.clone().prop_map(|e| format!("{e};")),
        2 => (
            prop::sample::select(vec!["x", "a", "y", "h[0]", "*x", "w[i][0]", "xs[1]", "q", "x.0"]),
            prop::sample::select(vec!["=", "+=", "-=", "*=", "/=", "%=", "<<=", "|="]),
            e.clone()
        )
            .prop_map(|(l, o, e)| format!("{l} {o} {e};")),
        1 => prop::sample::select(vec![
            "fn g(x: f64) -> f64 { x }",
            "struct S { a: f64 }",
            "use std::f64::consts::PI;",
            "const C: f64 = 1.0;",
            "static S: f64 = 1.0;",
            "impl S {}",
            "mod m {}",
            "macro_rules! m { () => {} }",
            "break;",
            "continue;",
            "return;",
            "return 1.0;",
            ";",
            "#[cfg(test)] let z = 1.0;",
            "println!(\"{}\", x);",
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(2, 8, 3, move |inner| {
        let block = prop::collection::vec(inner, 0..3).prop_map(|b| b.join(" "));
        prop_oneof![
            (e.clone(), block.clone(), block.clone())
                .prop_map(|(c, a, b)| format!("if {c} {{ {a} }} else {{ {b} }}")),
            (
                prop::sample::select(vec![
                    "i in 0..n",
                    "i in 0..xs.len()",
                    "i in (0..3).rev()",
                    "i in (0..4).step_by(2)",
                    "i in (0..4).rev().step_by(2)",
                    "x in xs.iter()",
                    "(i, a) in xs.iter().enumerate()",
                    "(a, b) in xs.iter().zip(w.iter())",
                    "&a in &xs",
                    "a in xs",
                    "a in w.iter()",
                    "i in 0..",
                    "i in ..3",
                    "_ in 0..2",
                    "(i, (a, b)) in xs.iter().zip(xs.iter()).enumerate()",
                    "i in vec![1, 2]",
                ]),
                block.clone()
            )
                .prop_map(|(h, b)| format!("for {h} {{ {b} }}")),
            (e.clone(), block.clone()).prop_map(|(c, b)| format!("while {c} {{ {b} }}")),
            block.clone().prop_map(|b| format!("loop {{ {b} break; }}")),
            block
                .clone()
                .prop_map(|b| format!("'outer: for i in 0..2 {{ {b} continue 'outer; }}")),
            block
                .clone()
                .prop_map(|b| format!("while let Some(v) = it.next() {{ {b} }}")),
            block.clone().prop_map(|b| format!("{{ {b} }}")),
            (e.clone(), block).prop_map(|(c, b)| format!("if let Some(v) = {c} {{ {b} }}")),
        ]
    })
    .boxed()
}

fn arb_fuzz_fn() -> impl Strategy<Value = String> {
    let attrs = prop::sample::select(vec![
        "",
        "#[inline]",
        "/// Doc.",
        "#[doc = \"x\"]",
        "#[cfg(test)]",
        "#[differentiate]",
        "#[must_use]",
        "#[allow(unused)] #[inline(always)]",
    ]);
    let quals = prop::sample::select(vec![
        "",
        "",
        "pub",
        "pub(crate)",
        "const",
        "async",
        "unsafe",
        "extern \"C\"",
        "pub const unsafe",
    ]);
    let name = prop::sample::select(vec![
        "f", "f", "loss", "_f", "r#match", "F", "f_grad", "grad", "a_b_c", "Loss",
    ]);
    let generics = prop::sample::select(vec![
        "",
        "",
        "",
        "<T>",
        "<'a>",
        "<const N: usize>",
        "<T: Float>",
        "<'a, T>",
    ]);
    let param = prop::sample::select(vec![
        "x: f64",
        "x: f64",
        "y: f32",
        "mut y: f64",
        "w: &[f64]",
        "xs: &[f64]",
        "w: [f64; 3]",
        "w: [[f64; 2]; 3]",
        "w: &[[f64; 2]]",
        "xs: &'a [f64]",
        "n: usize",
        "n: i32",
        "b: bool",
        "(p, q): (f64, f64)",
        "_: f64",
        "s: &str",
        "t: T",
        "x: impl Float",
        "x: &f64",
        "x: &mut f64",
        "x: Option<f64>",
        "r#type: f64",
        "grad: f64",
        "__d_x: f64",
        "h_grad: f64",
        "x: Real",
        "x: f64, x: f64",
        "w: [f64; N]",
        "xs: Vec<f64>",
        "args: ...",
    ]);
    let ret = prop::sample::select(vec![
        "-> f64",
        "-> f64",
        "-> f64",
        "-> f32",
        "",
        "-> ()",
        "-> [f64; 2]",
        "-> (f64, f64)",
        "-> (f64, f32)",
        "-> T",
        "-> impl Fn()",
        "-> Self",
        "-> !",
        "-> Result<f64, ()>",
        "-> usize",
        "-> &f64",
        "-> [f64; 0]",
        "-> ((f64, f64), f64)",
    ]);
    let where_ = prop::sample::select(vec!["", "", "", "where T: Copy"]);
    (
        attrs,
        quals,
        name,
        generics,
        prop::sample::select(vec!["", "", "", "", "", "", "self", "&self", "&mut self"]),
        prop::collection::vec(param, 0..4),
        ret,
        where_,
        prop::collection::vec(arb_fuzz_stmt(), 0..5),
        prop::option::of(arb_fuzz_expr()),
    )
        .prop_map(|(a, q, n, g, receiver, mut ps, r, w, body, tail)| {
            if !receiver.is_empty() {
                ps.insert(0, receiver);
            }
            format!(
                "{a}\n{q} fn {n}{g}({}) {r} {w} {{ {} {} }}",
                ps.join(", "),
                body.join(" "),
                tail.unwrap_or_default()
            )
        })
}

fn arb_attr() -> impl Strategy<Value = String> {
    let part = prop::sample::select(vec![
        "wrt(x)",
        "wrt(x, y)",
        "wrt(w, b)",
        "wrt()",
        "wrt",
        "wrt = x",
        "wrt(1)",
        "wrt(x,,)",
        "wrt(x(y))",
        "wrt(self)",
        "wrt(r#type)",
        "wrt(xs)",
        "wrt(x, x)",
        "wrt(n)",
        "wrt(q)",
        "crate = grad",
        "crate = ::grad",
        "crate = 1",
        "crate = \"grad\"",
        "crate",
        "crate =",
        "crate = a::b::c",
        "crate = self",
        "forward",
        "hessian",
        "hvp",
        "jacobian",
        "foo",
        "foo = 1",
        "1",
        "\"x\"",
        "#",
        "wrt(x) wrt(y)",
        ",",
        "forward(x)",
        "hessian = true",
    ]);
    prop::collection::vec(part, 0..4).prop_map(|p| p.join(", "))
}

/// One fuzz input: the attribute's arguments and the item, as text.
#[derive(Clone, Debug)]
pub struct Input {
    pub attr: String,
    pub item: String,
}

fn arb_input() -> impl Strategy<Value = Input> {
    let seed = prop_oneof![
        2 => (0..SEEDS.len()).prop_map(|i| (SEEDS[i].0.to_string(), SEEDS[i].1.to_string())),
        1 => arb_program().prop_map(|p| {
            let r = resolve(&p);
            (r.attr(), r.item())
        }),
    ];
    let mutated = (
        seed,
        prop::collection::vec(arb_mutation(), 1..4),
        prop::bool::weighted(0.8),
        prop::option::weighted(0.2, arb_attr()),
    )
        .prop_map(|((attr, item), mutations, in_body, new_attr)| {
            let mut toks = vec![];
            if let Ok(ts) = TokenStream::from_str(&item) {
                flatten(ts, &mut toks);
            }
            Input {
                attr: new_attr.unwrap_or(attr),
                item: render(&mutate(toks, &mutations, in_body)),
            }
        });
    let grammar =
        (prop::option::weighted(0.5, arb_attr()), arb_fuzz_fn()).prop_map(|(attr, item)| Input {
            attr: attr.unwrap_or_default(),
            item,
        });
    let attr_only = (arb_attr(), 0..SEEDS.len()).prop_map(|(attr, i)| Input {
        attr,
        item: SEEDS[i].1.to_string(),
    });
    prop_oneof![5 => mutated, 4 => grammar, 1 => attr_only]
}

// ------------------------------------------------------------------- oracle

/// What the expander did with an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Does not lex (rustc would never call the macro with it).
    Unlexable,
    /// Not a function: the output is a `compile_error!` (and the input).
    NotAFn,
    /// A function the macro reports errors for.
    Rejected,
    /// A function the macro differentiates.
    Accepted,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// An expansion taking longer than this is a failure (a debug build on a
/// loaded machine expands the largest corpus entries in well under a second).
const SLOW: Duration = Duration::from_secs(5);

/// Expands on a thread of its own (with rustc's 8 MiB stack for proc
/// macros), as text because token streams cannot cross threads; a panic or
/// an expansion running longer than [`SLOW`] is an error (the thread is left
/// to finish on its own).
fn expand_timed(attr: &str, item: &str) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (attr, item) = (attr.to_string(), item.to_string());
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let out = catch_unwind(AssertUnwindSafe(|| {
                let attr = TokenStream::from_str(&attr).unwrap_or_default();
                let item = TokenStream::from_str(&item).unwrap_or_default();
                crate::expand::differentiate(attr, item).to_string()
            }));
            let _ = tx.send(out.map_err(|p| panic_message(&*p)));
        })
        .map_err(|e| format!("no thread: {e}"))?;
    match rx.recv_timeout(SLOW) {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(message)) => Err(format!("the expander panicked: {message}")),
        Err(_) => Err(format!("the expansion did not finish in {SLOW:?}")),
    }
}

/// Expands `input` and checks the output; `Err` describes a bug.
pub fn check_input(input: &Input) -> Result<Verdict, String> {
    let (Ok(_), Ok(item)) = (
        TokenStream::from_str(&input.attr),
        TokenStream::from_str(&input.item),
    ) else {
        return Ok(Verdict::Unlexable);
    };
    let text = expand_timed(&input.attr, &input.item)?;
    let out = TokenStream::from_str(&text).map_err(|e| format!("the output does not lex: {e}"))?;
    let has_error = text.contains("compile_error");
    let Ok(func) = syn::parse2::<syn::ItemFn>(item.clone()) else {
        if !text.starts_with(":: core :: compile_error !")
            && !text.starts_with(":: std :: compile_error !")
            && !text.starts_with("compile_error !")
        {
            return Err(format!(
                "not a function, but no compile_error first:\n{text}"
            ));
        }
        return Ok(Verdict::NotAFn);
    };
    let file = match syn::parse2::<syn::File>(out.clone()) {
        Ok(file) => file,
        // A keyword path used as a value (`crate`, `super(x)`): rustc
        // parses the expansion and reports "expected value, found module";
        // syn does not parse such a path at the start of a statement.
        Err(_) if keyword_path_in_body(&input.item) => return Ok(Verdict::Rejected),
        Err(e) => return Err(format!("the output does not parse as items ({e}):\n{text}")),
    };
    let original = func.to_token_stream().to_string();
    let fns: Vec<&syn::ItemFn> = file
        .items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Fn(f) => Some(f),
            _ => None,
        })
        .collect();
    if !fns
        .iter()
        .any(|f| f.to_token_stream().to_string() == original)
    {
        return Err(format!(
            "the function is not emitted unchanged:\n{original}\noutput:\n{text}"
        ));
    }
    if has_error {
        return Ok(Verdict::Rejected);
    }
    let name = func.sig.ident.to_string();
    let name = name.trim_start_matches("r#");
    // A function returning several values gets `_jacobian` instead.
    let suffix = if crate::jacobian::vector_output(&func.sig).is_some() {
        "jacobian"
    } else {
        "backward"
    };
    for companion in [format!("{name}_{suffix}")] {
        if !fns.iter().any(|f| f.sig.ident == companion) {
            return Err(format!("accepted, but `{companion}` is missing:\n{text}"));
        }
    }
    if !fns
        .iter()
        .any(|f| f.sig.ident == format!("{name}_grad") || f.sig.ident == format!("{name}_jacobian"))
    {
        return Err(format!("accepted, but no `{name}_grad`:\n{text}"));
    }
    // The same input expands to the same tokens (no hash-order dependence);
    // checked for one accepted input in eight, which is plenty for a
    // property of the whole pipeline.
    if input.item.len() % 8 != 0 {
        return Ok(Verdict::Accepted);
    }
    let again = expand_timed(&input.attr, &input.item)?;
    if again != text {
        return Err(format!(
            "two expansions of the same input differ:\n{text}\n---\n{again}"
        ));
    }
    Ok(Verdict::Accepted)
}

/// Whether the body (after the first `{`) names `crate`, `super` or
/// `self` outside a path's first segment position rustc and syn agree on.
fn keyword_path_in_body(item: &str) -> bool {
    let mut toks = vec![];
    if let Ok(ts) = TokenStream::from_str(item) {
        flatten(ts, &mut toks);
    }
    let body = toks
        .iter()
        .position(|t| *t == Tok::Open('{'))
        .map_or(&toks[..0], |i| &toks[i..]);
    body.iter()
        .any(|t| matches!(t, Tok::Text(s, _) if s == "crate" || s == "super" || s == "self"))
}

/// The reported, still open bug a failure of [`check_input`] on `input`
/// shows, if it is one: the random fuzzing counts these instead of failing,
/// and the corpus keeps one input per bug, marked `// bug:`. None is open;
/// the ones found so far (a `_` parameter naming a stub field, a cast ending
/// the left of `<`, a `match` arm that is a keyword path, emission
/// exponential in a sum's length) are fixed and their inputs are in the
/// corpus.
fn known_bug(_input: &Input, _failure: &str) -> Option<&'static str> {
    None
}

/// `chain!`'s desugaring, fuzzed the same way: never a panic.
fn check_chain(input: &str) -> Result<(), String> {
    let Ok(ts) = TokenStream::from_str(input) else {
        return Ok(());
    };
    catch_unwind(AssertUnwindSafe(|| crate::chain::desugar(ts)))
        .map(|_| ())
        .map_err(|p| format!("chain! panicked: {}", panic_message(&*p)))
}

// -------------------------------------------------------------------- corpus

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// A corpus entry: its file name, the input, and the known bug it still
/// shows (a line `// bug: …`), if any.
struct Entry {
    name: String,
    input: Input,
    bug: Option<String>,
}

/// Reads a corpus file: header lines `// attr: …` (the attribute's
/// arguments) and `// bug: …` (a reported bug it still shows), then the item.
fn read_corpus(name: String, text: &str) -> Entry {
    let header = |key: &str| {
        text.lines()
            .take_while(|l| l.starts_with("//"))
            .find_map(|l| l.strip_prefix(key))
            .map(|a| a.trim().to_string())
    };
    Entry {
        name,
        input: Input {
            attr: header("// attr:").unwrap_or_default(),
            item: text.to_string(),
        },
        bug: header("// bug:"),
    }
}

fn corpus() -> Vec<Entry> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("grad-macro/tests/corpus exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable corpus file");
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            read_corpus(name, &text)
        })
        .collect()
}

/// Runs `f` on a thread with the stack rustc gives a proc macro (8 MiB),
/// so that deep inputs are judged as the compiler would run them.
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(f)
        .expect("thread")
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The regression corpus: interesting inputs, and every input that once
/// broke the expander. Each must be handled correctly, except those marked
/// `// bug:` (reported, still open), which must still fail, so that a fix
/// is noticed and the mark removed.
#[test]
fn the_corpus_expands_without_panics() {
    on_big_stack(|| {
        let corpus = corpus();
        assert!(
            corpus.len() >= 20,
            "corpus missing: {}",
            corpus_dir().display()
        );
        let mut failures = vec![];
        for entry in &corpus {
            let start = Instant::now();
            let result = check_input(&entry.input).and(check_chain(&entry.input.item));
            if std::env::var_os("GRAD_FUZZ_VERBOSE").is_some() {
                eprintln!("corpus: {} in {:.1?}", entry.name, start.elapsed());
            }
            match (&entry.bug, result) {
                (None, Err(e)) => failures.push(format!("{}: {e}", entry.name)),
                (Some(bug), Ok(_)) => failures.push(format!(
                    "{}: passes now; remove its `// bug: {bug}` line",
                    entry.name
                )),
                _ => {}
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    });
}

/// Random inputs, mutated and generated; see the module's documentation.
#[test]
fn the_expander_never_panics_and_emits_items() {
    on_big_stack(|| {
        let cases = std::env::var("GRAD_FUZZ_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(10_000);
        let start = Instant::now();
        let counts = std::cell::RefCell::new([0usize; 4]);
        let mut runner = TestRunner::new(config(cases));
        let known = std::cell::RefCell::new(std::collections::BTreeMap::<&str, usize>::new());
        let result = runner.run(&arb_input(), |input| {
            check_chain(&input.item).map_err(TestCaseError::fail)?;
            match check_input(&input) {
                Ok(verdict) => counts.borrow_mut()[verdict as usize] += 1,
                Err(e) => match known_bug(&input, &e) {
                    Some(bug) => *known.borrow_mut().entry(bug).or_default() += 1,
                    None => return Err(TestCaseError::fail(e)),
                },
            }
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => panic!(
                "{why}\n\nminimal input:\n// attr: {}\n{}",
                input.attr, input.item
            ),
            Err(TestError::Abort(why)) => panic!("aborted: {why}"),
        }
        let c = *counts.borrow();
        eprintln!(
            "fuzz: {} inputs in {:.1?}: {} unlexable, {} not a fn, {} rejected, {} accepted; \
             known bugs: {:?}",
            c.iter().sum::<usize>(),
            start.elapsed(),
            c[0],
            c[1],
            c[2],
            c[3],
            known.borrow()
        );
        let total: usize = c.iter().sum();
        assert!(c[2] * 10 > total, "few rejected functions: {c:?}");
        assert!(c[3] * 20 > total, "few accepted functions: {c:?}");
    });
}
