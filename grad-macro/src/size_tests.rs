//! Compile cost linear in the function's size (issue 5): the emitted code of
//! a function of `n` operations is at most [`BOUND`] times the input's tokens
//! plus a fixed part, for `n` = 10 … 10 000, in every shape of
//! [`cases::Shape`], and the ratio does not grow with `n`. Naive symbolic
//! differentiation swells exponentially (each partial repeats its operand's
//! expression); grad's reverse sweep names every intermediate, so it must
//! not.
//!
//! Tokens are counted flat: every identifier, literal and punctuation
//! character, plus one per delimited group (`( … )` counts 1 + its contents).
//! The output includes the user's function, emitted unchanged.
//!
//! What runs by default: every shape but one at 10, 100 and 1 000
//! operations. Run by hand (`--ignored`), because they fail or take minutes
//! today (see each one's reason):
//!
//! * `emitted_tokens_are_linear_up_to_10_000_operations`: 10 000 operations;
//! * `early_exits_emit_linear_code`: guard clauses and regions, whose code
//!   grows quadratically;
//! * `expansion_time_is_linear_in_the_function_size`.
//!
//! Diagnostics (`--ignored --nocapture`): `pass_times_by_size` times each
//! pass of the pipeline (lower, reverse, simplify, emit) per shape and size
//! (`GRAD_SHAPES=chain GRAD_SIZES=1000,10000` to choose); `print_expansion`
//! pretty-prints one expansion with its token counts; `deep_expression_by_env`
//! finds how deep an expression the stack takes.

use std::str::FromStr;
use std::time::{Duration, Instant};

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, ToTokens};

#[path = "size_cases.rs"]
mod cases;

use cases::Shape;

/// Output tokens per input token, at most, beyond [`FIXED`]. The largest
/// marginal ratio measured is 5.9 (`loop_carried`: the reverse loop
/// recomputes the body before running its adjoint code, so the body is
/// emitted three times, and a tape records the carried value); 7 leaves a
/// margin of 18 % there.
const BOUND: f64 = 7.0;

/// Tokens of the output that do not depend on the body: the gradient struct
/// with its derives, `zero`, `Add`, `AddAssign` and one `ArgGrad` impl per
/// differentiated parameter, the companions' signatures and documentation.
/// 498 for `fn f(w: f64, b: f64, x: f64) -> f64 { w * x + b }` (checked by
/// `the_fixed_part_is_within_its_bound`).
const FIXED: usize = 600;

/// How much the ratio may grow from `n` = 100 to a larger `n`.
const GROWTH: f64 = 1.2;

/// How much the slope (output tokens per input token added) may grow from
/// the first pair of sizes to a later one. Quadratic code at least doubles
/// it from one size to the next (`early_exits`: 6.8 from 10 to 100
/// operations, 20.7 from 100 to 1 000). `left_sum` grows by 1.3 from 10 to
/// 1 000 and then stays (3.8 to 10 000): the simplifier stops after 16 rounds, and folding
/// the constant adjoints of a sum reaches a bounded number of terms per
/// round, so past a few hundred terms each keeps two statements of its own.
const SLOPE_GROWTH: f64 = 1.5;

/// The sizes tested on every run, in operations.
const SIZES: [usize; 3] = [10, 100, 1_000];

/// Every size of the issue, for the tests run by hand (`--ignored`).
const ALL_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// The shapes tested on every run: all but [`Shape::EarlyExits`].
const LINEAR_SHAPES: [Shape; 6] = [
    Shape::Chain,
    Shape::LongExpr,
    Shape::LeftSum,
    Shape::LoopBody,
    Shape::LoopCarried,
    Shape::Branchy,
];

/// A proc macro runs on rustc's thread, which has 8 MiB of stack.
const STACK: usize = 8 << 20;

/// Tokens, flattened: see the module's documentation.
fn count_tokens(ts: &TokenStream) -> usize {
    ts.clone()
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => 1 + count_tokens(&g.stream()),
            _ => 1,
        })
        .sum()
}

/// Whether any identifier of the stream is `compile_error`.
fn has_compile_error(ts: &TokenStream) -> bool {
    ts.clone().into_iter().any(|tt| match tt {
        TokenTree::Group(g) => has_compile_error(&g.stream()),
        TokenTree::Ident(i) => i == "compile_error",
        _ => false,
    })
}

/// Runs `f` on a thread with rustc's stack.
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .name("expand".into())
        .stack_size(STACK)
        .spawn(f)
        .expect("spawn the expander's thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// One expansion, measured.
struct Measure {
    shape: Shape,
    n: usize,
    input: usize,
    output: usize,
    time: Duration,
}

impl Measure {
    fn ratio(&self) -> f64 {
        self.output as f64 / self.input as f64
    }
}

/// Parses a case's text into the attribute's and the item's tokens.
fn parse_case(attr: &str, item: &str) -> (TokenStream, TokenStream) {
    let attr = TokenStream::from_str(attr).expect("attribute tokens");
    let item = TokenStream::from_str(item).expect("item tokens");
    (attr, item)
}

fn tokens_of(shape: Shape, n: usize) -> (TokenStream, TokenStream) {
    let (attr, item) = shape.source(n);
    parse_case(&attr, &item)
}

/// Expands a case with the real expander and checks the output is a
/// complete, error-free expansion. Token streams are not `Send`: the case
/// crosses to the expander's thread as text.
fn measure(shape: Shape, n: usize) -> Measure {
    let (attr, item) = shape.source(n);
    let (input, output, time) = on_big_stack(move || {
        let (attr, item) = parse_case(&attr, &item);
        let input = count_tokens(&attr) + count_tokens(&item);
        let start = Instant::now();
        let out = crate::expand::differentiate(attr, item);
        let time = start.elapsed();
        assert!(
            !has_compile_error(&out),
            "{} n = {n}: the expansion reports an error:\n{}",
            shape.name(),
            out.to_string().chars().take(2000).collect::<String>()
        );
        let file: syn::File = syn::parse2(out.clone()).unwrap_or_else(|e| {
            panic!(
                "{} n = {n}: the expansion does not parse: {e}",
                shape.name()
            )
        });
        let backward = file.items.iter().any(
            |i| matches!(i, syn::Item::Fn(f) if f.sig.ident.to_string().ends_with("_backward")),
        );
        assert!(
            backward,
            "{} n = {n}: no `_backward` companion",
            shape.name()
        );
        (input, count_tokens(&out), time)
    });
    Measure {
        shape,
        n,
        input,
        output,
        time,
    }
}

fn report(rows: &[Measure]) {
    eprintln!("shape              n  in tokens  out tokens  ratio  expansion");
    for m in rows {
        eprintln!(
            "{:<12} {:>8} {:>10} {:>11} {:>6.2} {:>10.1?}",
            m.shape.name(),
            m.n,
            m.input,
            m.output,
            m.ratio(),
            m.time
        );
    }
}

#[test]
fn generators_count_operations() {
    // The scaling part of each shape has n operations give or take one line
    // (at most 3): the input grows linearly with n.
    for shape in Shape::ALL {
        let small = count_tokens(&tokens_of(shape, 1_000).1) as f64;
        let large = count_tokens(&tokens_of(shape, 10_000).1) as f64;
        assert!(
            (9.5..10.5).contains(&(large / small)),
            "{}: {small} tokens at 1 000 operations, {large} at 10 000",
            shape.name()
        );
    }
    // A chain line reads the previous value and earlier ones.
    let chain = cases::chain(30);
    assert!(chain.contains("let a9 = a8.tanh() * a4 - a3;"), "{chain}");
}

/// Checks the sizes of `rows`: each output at most [`BOUND`] × its input +
/// [`FIXED`]; for each shape, the ratio at any `n` above 100 at most
/// [`GROWTH`] times the ratio at 100, and the slope (output tokens per input
/// token added) from each size to the next at most [`SLOPE_GROWTH`] times
/// the slope from 10 to 100. The slope sees a superlinear term long before
/// the ratio does.
fn check_ratios(rows: &[Measure]) {
    for m in rows {
        let bound = BOUND * m.input as f64 + FIXED as f64;
        assert!(
            m.output as f64 <= bound,
            "{} n = {}: {} tokens in, {} out (ratio {:.2}) > {BOUND} × in + {FIXED}",
            m.shape.name(),
            m.n,
            m.input,
            m.output,
            m.ratio()
        );
    }
    for shape in Shape::ALL {
        let mut of_shape: Vec<&Measure> = rows.iter().filter(|m| m.shape == shape).collect();
        of_shape.sort_by_key(|m| m.n);
        let Some(base) = of_shape.iter().find(|m| m.n == 100) else {
            continue;
        };
        for m in of_shape.iter().filter(|m| m.n > 100) {
            assert!(
                m.ratio() <= GROWTH * base.ratio(),
                "{}: the ratio grows with n: {:.3} at n = 100, {:.3} at n = {}",
                shape.name(),
                base.ratio(),
                m.ratio(),
                m.n
            );
        }
        let slope = |a: &Measure, b: &Measure| {
            (b.output as f64 - a.output as f64) / (b.input as f64 - a.input as f64)
        };
        let slopes: Vec<(usize, f64)> = of_shape
            .windows(2)
            .map(|w| (w[1].n, slope(w[0], w[1])))
            .collect();
        let Some(&(_, first)) = slopes.first() else {
            continue;
        };
        for &(n, later) in &slopes[1..] {
            assert!(
                later <= SLOPE_GROWTH * first,
                "{}: each added input token costs {first:.2} output tokens at first, \
                 {later:.2} on the way to n = {n}",
                shape.name()
            );
        }
    }
}

fn measure_all(shapes: &[Shape], sizes: &[usize]) -> Vec<Measure> {
    let mut rows = vec![];
    for &shape in shapes {
        for &n in sizes {
            rows.push(measure(shape, n));
        }
    }
    report(&rows);
    rows
}

/// The test: for every shape and size, the output is linear in the
/// input, with a slope and a ratio that do not grow with `n`.
#[test]
fn emitted_tokens_are_linear_in_the_function_size() {
    check_ratios(&measure_all(&LINEAR_SHAPES, &SIZES));
}

/// The same at every size of the issue, 10 000 operations included.
#[test]
#[ignore = "slow for the default run (about 10 s at opt-level 1, most of it the 10 000 \
            operation functions); run by hand"]
fn emitted_tokens_are_linear_up_to_10_000_operations() {
    check_ratios(&measure_all(&LINEAR_SHAPES, &ALL_SIZES));
}

/// Guard clauses and regions emit linear code too.
#[test]
#[ignore = "fails today: every value computed after an early exit that the reverse sweep \
            needs is passed out of each enclosing `if` as an out (with a placeholder in the \
            other branch), so the code grows with (values after a guard) × (guards before \
            them): output/input 7.3 at 100 operations, 19.3 at 1 000"]
fn early_exits_emit_linear_code() {
    check_ratios(&measure_all(&[Shape::EarlyExits], &SIZES));
}

/// [`FIXED`] covers the part of the output that does not grow with the body.
#[test]
fn the_fixed_part_is_within_its_bound() {
    let m = on_big_stack(|| {
        let (attr, item) = parse_case("", "fn f(w: f64, b: f64, x: f64) -> f64 { w * x + b }");
        let input = count_tokens(&item);
        let output = count_tokens(&crate::expand::differentiate(attr, item));
        output - input
    });
    assert!(
        m <= FIXED,
        "{m} tokens besides the function, FIXED is {FIXED}"
    );
}

/// Expansion time grows linearly too. Timing on a shared machine is noisy,
/// so the bound is loose: a 10 times larger function may take at most 30
/// times longer (a quadratic pass gives 100; the benchmark `benches/expand.rs`
/// measures the real numbers). Each time is the best of three expansions.
#[test]
#[ignore = "timing, which a loaded machine disturbs (about 9 times longer from 100 to \
            1 000 operations when measured); run by hand"]
fn expansion_time_is_linear_in_the_function_size() {
    for shape in LINEAR_SHAPES {
        let best = |n| {
            (0..3)
                .map(|_| measure(shape, n).time)
                .min()
                .expect("three runs")
        };
        let times = [best(100), best(1_000)];
        eprintln!(
            "{}: {:?} at n = 100, {:?} at n = 1 000",
            shape.name(),
            times[0],
            times[1]
        );
        assert!(
            times[1] <= times[0] * 30,
            "{}: {:?} at n = 100 but {:?} at n = 1 000",
            shape.name(),
            times[0],
            times[1]
        );
    }
}

/// A single expression nested deep expands within rustc's stack: 300
/// parenthesised levels (`t + (t - (t + …))`), and a left-leaning sum of
/// 1 000 terms (2 000 levels of syntax tree). syn itself, unoptimised as a
/// proc macro's dependencies are in a debug build, overflows 8 MiB at about
/// 480 parenthesised levels; left-leaning sums it parses in a loop.
#[test]
fn deep_expressions_expand_within_the_stack() {
    for (n, right) in [(2_000, false), (600, true)] {
        let item = cases::deep_expr(n, right);
        on_big_stack(move || {
            let (attr, item) = parse_case("", &item);
            let out = crate::expand::differentiate(attr, item);
            assert!(!has_compile_error(&out), "right-leaning: {right}");
        });
    }
}

/// How deep an expression the expander takes (run by hand, one process per
/// try: a stack overflow aborts the process). `GRAD_DEEP=1000` operations,
/// `GRAD_DEEP_RIGHT=1` for right-leaning, `GRAD_DEEP_STAGE=parse` to only
/// parse the function with syn, `GRAD_STACK` bytes of stack (8 MiB).
#[test]
#[ignore = "a diagnostic: may overflow the stack on purpose"]
fn deep_expression_by_env() {
    let var = |name: &str| std::env::var(name).ok();
    let n: usize = var("GRAD_DEEP").map_or(1_000, |v| v.parse().expect("GRAD_DEEP"));
    let right = var("GRAD_DEEP_RIGHT").is_some_and(|v| v == "1");
    let parse_only = var("GRAD_DEEP_STAGE").is_some_and(|v| v == "parse");
    let stack: usize = var("GRAD_STACK").map_or(STACK, |v| v.parse().expect("GRAD_STACK"));
    let item = cases::deep_expr(n, right);
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let (attr, item) = parse_case("", &item);
            if parse_only {
                let f: syn::ItemFn = syn::parse2(item).expect("parses");
                drop(f);
            } else {
                let out = crate::expand::differentiate(attr, item);
                assert!(!has_compile_error(&out));
            }
        })
        .expect("spawn")
        .join()
        .expect("no panic");
    eprintln!("depth {n} right-leaning {right} parse-only {parse_only}: ok");
}

/// `benches/expand.rs` compiles the macro's modules into itself by path: it
/// must name every module `lib.rs` declares outside tests.
#[test]
fn bench_includes_every_module() {
    let modules = |text: &str, what: &str| -> Vec<String> {
        let file = syn::parse_file(text).unwrap_or_else(|e| panic!("{what} parses: {e}"));
        let mut names: Vec<String> = file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Mod(m) if m.content.is_none() => {
                    let test_only = m.attrs.iter().any(|a| {
                        a.path().is_ident("cfg")
                            && a.meta.to_token_stream().to_string().contains("test")
                    });
                    (!test_only).then(|| m.ident.to_string())
                }
                _ => None,
            })
            .collect();
        names.sort();
        names
    };
    let lib = modules(include_str!("lib.rs"), "lib.rs");
    let mut bench = modules(include_str!("../benches/expand.rs"), "benches/expand.rs");
    bench.retain(|m| m != "size_cases");
    assert_eq!(
        lib, bench,
        "benches/expand.rs must include (by #[path]) exactly the modules lib.rs declares"
    );
}

/// Prints the token counts and the pretty-printed expansion of the function
/// in the file `GRAD_SRC` (attribute arguments in `GRAD_ATTR`), or of a
/// shape's case (`GRAD_SHAPES=branchy GRAD_SIZES=100`).
#[test]
#[ignore = "a diagnostic: prints an expansion"]
fn print_expansion() {
    let (attr, item) = match std::env::var("GRAD_SRC") {
        Ok(path) => (
            std::env::var("GRAD_ATTR").unwrap_or_default(),
            std::fs::read_to_string(path).expect("GRAD_SRC is readable"),
        ),
        Err(_) => {
            let shape = std::env::var("GRAD_SHAPES").unwrap_or_else(|_| "chain".into());
            let shape = Shape::ALL
                .into_iter()
                .find(|s| s.name() == shape)
                .expect("a shape's name");
            let n = std::env::var("GRAD_SIZES").map_or(10, |n| n.parse().expect("a size"));
            shape.source(n)
        }
    };
    let text = on_big_stack(move || {
        let (attr, item) = parse_case(&attr, &item);
        let input = count_tokens(&attr) + count_tokens(&item);
        let out = crate::expand::differentiate(attr, item);
        let output = count_tokens(&out);
        let pretty = match syn::parse2::<syn::File>(out.clone()) {
            Ok(file) => prettyplease::unparse(&file),
            Err(e) => format!("UNPARSABLE ({e}): {out}"),
        };
        format!("// {input} tokens in, {output} out\n{pretty}")
    });
    println!("{text}");
}

// ---------------------------------------------------------- pass timings

/// The time of each pass of [`crate::expand::differentiate`]'s pipeline,
/// which this repeats step by step (without its error paths).
#[derive(Default, Debug, Clone, Copy)]
struct PassTimes {
    parse: Duration,
    lower: Duration,
    reverse: Duration,
    simplify: Duration,
    check: Duration,
    emit: Duration,
    items: Duration,
    ir_stmts: (usize, usize, usize),
}

fn count_stmts(block: &crate::ir::Block) -> usize {
    let mut n = 0;
    crate::ir::walk_stmts(block, &mut |_| n += 1);
    n
}

fn pass_times(attr: TokenStream, item: TokenStream) -> PassTimes {
    use crate::args::Args;
    use crate::ctxt::Ctxt;
    use crate::emit::{Emitter, Namer};
    use crate::items::Companions;
    use crate::{lower, reverse, simplify};

    let mut t = PassTimes::default();
    let mut clock = Instant::now();
    let mut lap = |d: &mut Duration| {
        *d = clock.elapsed();
        clock = Instant::now();
    };
    let item_fn: syn::ItemFn = syn::parse2(item).expect("a fn");
    let args: Args = syn::parse2(attr).expect("arguments");
    let krate = quote!(::grad);
    lap(&mut t.parse);
    let cx = Ctxt::new();
    let (primal, sig) = lower::lower(&item_fn, &args, &cx).expect("lowered");
    cx.check().expect("no errors");
    lap(&mut t.lower);
    let (mut backward, suspicious) = reverse::reverse(&primal).expect("reverse");
    let before = count_stmts(&backward.body);
    lap(&mut t.reverse);
    simplify::simplify(&mut backward);
    lap(&mut t.simplify);
    reverse::check_recomputed_reads(&backward, &suspicious).expect("no unrecorded read");
    lap(&mut t.check);
    t.ir_stmts = (
        count_stmts(&primal.body),
        before,
        count_stmts(&backward.body),
    );
    let mut namer = Namer::new(item_fn.to_token_stream());
    let grad_param = proc_macro2::Ident::new(&namer.fresh("grad"), proc_macro2::Span::call_site());
    let mut emitter = Emitter::new(&backward, &krate, &mut namer, sig.ret);
    emitter.grad_param = Some(grad_param.clone());
    let body = emitter.block(&backward.body);
    let param_names = backward
        .params
        .iter()
        .map(|p| emitter.names[p.var.0 as usize].clone())
        .collect();
    lap(&mut t.emit);
    let wrt = primal
        .params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.wrt)
        .map(|(i, _)| i)
        .collect();
    let companions = Companions {
        item: &item_fn,
        krate: &krate,
        params: crate::expand::params_of(&item_fn),
        wrt,
        forward: false,
        hvp: false,
        hessian: false,
    };
    let grad_struct = companions.grad_struct();
    let grad_fn = companions.grad_fn(false);
    let backward_fn = companions.backward_fn(&grad_param, Some((param_names, body)));
    let out = quote! {
        #item_fn
        #grad_struct
        #grad_fn
        #backward_fn
    };
    drop(out);
    lap(&mut t.items);
    t
}

/// Prints each pass's time at every size and shape (run by hand).
/// `GRAD_SIZES=10,100` and `GRAD_SHAPES=chain,branchy` choose the cases.
#[test]
#[ignore = "a diagnostic: prints per-pass timings"]
fn pass_times_by_size() {
    let sizes: Vec<usize> = match std::env::var("GRAD_SIZES") {
        Ok(s) => s
            .split(',')
            .map(|n| n.trim().parse().expect("a size"))
            .collect(),
        Err(_) => ALL_SIZES.to_vec(),
    };
    let shapes: Vec<Shape> = match std::env::var("GRAD_SHAPES") {
        Ok(s) => Shape::ALL
            .into_iter()
            .filter(|sh| s.split(',').any(|n| n == sh.name()))
            .collect(),
        Err(_) => Shape::ALL.to_vec(),
    };
    eprintln!(
        "shape          n    parse    lower  reverse simplify    check     emit    items  IR stmts (primal, reversed, simplified)"
    );
    for &shape in &shapes {
        for &n in &sizes {
            let (attr, item) = shape.source(n);
            let t = on_big_stack(move || {
                let (attr, item) = parse_case(&attr, &item);
                pass_times(attr, item)
            });
            eprintln!(
                "{:<12} {:>6} {:>8.1?} {:>8.1?} {:>8.1?} {:>8.1?} {:>8.1?} {:>8.1?} {:>8.1?}  {:?}",
                shape.name(),
                n,
                t.parse,
                t.lower,
                t.reverse,
                t.simplify,
                t.check,
                t.emit,
                t.items,
                t.ir_stmts
            );
        }
    }
}
