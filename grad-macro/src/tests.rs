//! Unit tests of the pipeline: the rule table through the IR interpreter,
//! lowering, the reverse transform, the simplifier, and expansion snapshots.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::args::Args;
use crate::ctxt::Ctxt;
use crate::interp::{self, Num, Val};
use crate::ir::{
    BinOp, Block, CallForm, Expr, Func, Operand, Origin, Param, Stmt, Ty, UnOp, VarInfo,
};
use crate::rules::{Forms, Rule, RULES};
use crate::{lower, reverse, simplify};

/// Expands and pretty-prints, as `cargo expand` would show it.
pub fn expand(attr: TokenStream, item: TokenStream) -> String {
    let out = crate::expand::differentiate(attr, item);
    match syn::parse2::<syn::File>(out.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(e) => format!("UNPARSABLE ({e}): {out}"),
    }
}

/// Lowers a function (no errors expected) and returns the primal IR.
fn lower_fn(attr: TokenStream, item: TokenStream) -> Func {
    let item: syn::ItemFn = syn::parse2(item).expect("test input is a fn");
    let args: Args = syn::parse2(attr).expect("test attribute parses");
    let cx = Ctxt::new();
    let lowered = lower::lower(&item, &args, &cx);
    if let Err(e) = cx.check() {
        panic!("unexpected errors: {e}");
    }
    lowered.expect("lowered").0
}

fn backward(func: &Func) -> Func {
    let (mut b, suspicious) = reverse::reverse(func).expect("reverse");
    simplify::simplify(&mut b);
    reverse::check_recomputed_reads(&b, &suspicious).expect("no unrecorded read");
    b
}

fn errors_of(attr: TokenStream, item: TokenStream) -> Vec<String> {
    let item: syn::ItemFn = syn::parse2(item).expect("test input is a fn");
    let cx = Ctxt::new();
    match syn::parse2::<Args>(attr) {
        Ok(args) => {
            lower::lower(&item, &args, &cx);
        }
        Err(e) => cx.syn_error(e),
    }
    match cx.check() {
        Ok(()) => vec![],
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

// ------------------------------------------------------------ rule table

/// A function of the IR that applies `rule` to its parameters.
fn rule_func(rule: &'static Rule, ty: Ty) -> Func {
    let mut func = Func {
        vars: vec![],
        params: vec![],
        body: Block::default(),
        derivative_vars_from: None,
        uses: vec![],
    };
    let mut args = vec![];
    for (i, name) in rule.params.iter().enumerate() {
        let int = rule.is_int_param(i);
        let var = func.new_var(VarInfo {
            name: name.to_string(),
            ty: if int { Ty::Int } else { ty },
            origin: Origin::Param,
            active: !int,
            span: Span::call_site(),
            shape: None,
        });
        func.params.push(Param {
            var,
            ident: proc_macro2::Ident::new(name, Span::call_site()),
            ty: if int {
                syn::parse_quote!(i32)
            } else {
                syn::parse_quote!(f64)
            },
            wrt: !int,
        });
        args.push(Operand::Var(var));
    }
    let expr = match (rule.name, rule.forms) {
        ("add", _) => Expr::Binary(BinOp::Add, args[0].clone(), args[1].clone()),
        ("sub", _) => Expr::Binary(BinOp::Sub, args[0].clone(), args[1].clone()),
        ("mul", _) => Expr::Binary(BinOp::Mul, args[0].clone(), args[1].clone()),
        ("div", _) => Expr::Binary(BinOp::Div, args[0].clone(), args[1].clone()),
        ("neg", _) => Expr::Unary(UnOp::Neg, args[0].clone()),
        (_, Forms::Method) => Expr::Prim {
            rule,
            form: CallForm::Method,
            args,
            path: None,
        },
        (_, Forms::Runtime | Forms::MethodAndRuntime) => Expr::Prim {
            rule,
            form: CallForm::Runtime,
            args,
            path: None,
        },
        (_, Forms::Helper) => Expr::Prim {
            rule,
            form: CallForm::Helper,
            args,
            path: None,
        },
    };
    let out = func.new_var(VarInfo {
        name: "out".into(),
        ty,
        origin: Origin::Local,
        active: true,
        span: Span::call_site(),
        shape: None,
    });
    func.body = Block {
        stmts: vec![Stmt::Let { var: out, expr }],
        yields: vec![Operand::Var(out)],
    };
    func
}

/// Deterministic points inside a row's domain, away from the kinks of the
/// piecewise rows (a coordinate at 0, two coordinates equal), where a finite
/// difference straddles the kink.
fn sample(rule: &Rule, n: usize) -> Vec<Vec<f64>> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ rule.name.len() as u64;
    let near_kink = |p: &[f64]| {
        p.iter()
            .enumerate()
            .any(|(i, a)| a.abs() < 0.05 || p[i + 1..].iter().any(|b| (a - b).abs() < 0.05))
    };
    let mut points = vec![];
    while points.len() < n {
        let point = draw(rule, &mut state);
        if !near_kink(&point) {
            points.push(point);
        }
    }
    points
}

fn draw(rule: &Rule, state: &mut u64) -> Vec<f64> {
    let mut next = || {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    };
    rule.domain
        .iter()
        .enumerate()
        .map(|(i, (lo, hi))| {
            let x = lo + (hi - lo) * next();
            if rule.is_int_param(i) {
                x.round()
            } else {
                x
            }
        })
        .collect()
}

fn check_rule<T: Num>(rule: &'static Rule, ty: Ty) {
    let func = rule_func(rule, ty);
    let back = backward(&func);
    for point in sample(rule, 6) {
        let args: Vec<Val<T>> = point
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if rule.is_int_param(i) {
                    Val::I(x as i64)
                } else {
                    Val::F(T::from_f64(x))
                }
            })
            .collect();
        let (value, grad) = interp::run(&back, &args);
        let (primal, _) = interp::run(&func, &args);
        assert_eq!(
            value.to_f64().to_bits(),
            primal.to_f64().to_bits(),
            "{}: value",
            rule.name
        );

        let floats: Vec<usize> = (0..point.len())
            .filter(|&i| !rule.is_int_param(i))
            .collect();
        let x: Vec<T> = floats.iter().map(|&i| T::from_f64(point[i])).collect();
        let analytic: Vec<T> = floats.iter().map(|&i| grad[i]).collect();
        let f = |xs: &[T]| {
            let mut full = args.clone();
            for (k, &i) in floats.iter().enumerate() {
                full[i] = Val::F(xs[k]);
            }
            interp::run(&func, &full).0
        };
        let tolerance = grad_core::check::Tolerance::for_type::<T>();
        if let Err(e) = grad_core::check::check_gradient(f, &x, &analytic, tolerance) {
            panic!("rule `{}` at {point:?}: {e}", rule.name);
        }
    }
}

/// Every row of the table, f64: the reverse pass's gradient (rule formula,
/// transform and simplifier together) equals central finite differences.
#[test]
fn every_rule_matches_finite_differences_f64() {
    for rule in RULES {
        check_rule::<f64>(rule, Ty::F64);
    }
}

/// The same in f32, where the formulas' constants take the f32 width.
#[test]
fn every_rule_matches_finite_differences_f32() {
    for rule in RULES {
        check_rule::<f32>(rule, Ty::F32);
    }
}

// -------------------------------------------------------------- lowering

#[test]
fn lowering_renames_reassignments_and_shadowing() {
    let f = lower_fn(
        quote!(),
        quote! {
            fn f(x: f64) -> f64 {
                let mut a = x * 2.0;
                a += x;
                let a = a * a;
                a
            }
        },
    );
    assert_eq!(
        f.to_string(),
        "fn(%0*) {\n  %1 = %0 * 2.0\n  %2 = %1 + %0\n  %3 = %2 * %2\n  yield %3\n}\n"
    );
}

#[test]
fn lowering_turns_branch_assignments_into_outs() {
    let f = lower_fn(
        quote!(),
        quote! {
            fn f(x: f64) -> f64 {
                let mut y = x;
                if x > 0.0 { y = x.sin(); }
                y
            }
        },
    );
    let text = f.to_string();
    assert!(text.contains("(%4) = if %2 {"), "{text}");
    assert!(text.contains("yield %3"), "{text}");
    assert!(text.contains("yield %1"), "{text}");
}

#[test]
fn lowering_moves_the_rest_of_the_function_into_returning_branches() {
    let f = lower_fn(
        quote!(),
        quote! {
            fn f(x: f64) -> f64 {
                if x < 0.0 { return -x; }
                x * 3.0
            }
        },
    );
    let text = f.to_string();
    // Both paths end in their own value; the `if` yields the result.
    assert!(text.contains("-%0"), "{text}");
    assert!(text.contains("%0 * 3.0"), "{text}");
    let f_body = &f.body;
    assert!(
        matches!(f_body.stmts.last(), Some(Stmt::If { outs, .. }) if f_body.yields[0].as_var() == Some(outs[0])),
        "{text}"
    );
}

#[test]
fn short_circuit_evaluates_the_right_side_only_when_needed() {
    let f = lower_fn(
        quote!(),
        quote! {
            fn f(x: f64) -> f64 {
                if x > 0.0 && x.ln() > 1.0 { x } else { 0.0 }
            }
        },
    );
    let text = f.to_string();
    let ln = text.find("ln(").expect("ln lowered");
    let first_if = text.find("if").expect("an if");
    assert!(first_if < ln, "ln must be inside the && branch:\n{text}");
}

#[test]
fn errors_are_all_reported_together() {
    let errors = errors_of(
        quote!(wrt(x, q)),
        quote! {
            fn f(x: f64) -> f64 {
                let a = unsafe { x };
                let b = |t: f64| t;
                x.to_degrees() + a
            }
        },
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].contains("`wrt` names `q`"));
    assert!(errors.iter().any(|e| e.contains("`unsafe`")));
    assert!(errors.iter().any(|e| e.contains("closures")));
    assert!(errors.iter().any(|e| e.contains("to_degrees")));
}

// ------------------------------------------------------- reverse + simplify

fn run_backward(attr: TokenStream, item: TokenStream, args: &[f64]) -> (f64, Vec<f64>) {
    let f = lower_fn(attr, item);
    let b = backward(&f);
    let vals: Vec<Val<f64>> = args.iter().map(|&x| Val::F(x)).collect();
    interp::run(&b, &vals)
}

#[test]
fn the_notebook_values() {
    let (v, g) = run_backward(
        quote!(),
        quote!(
            fn f(x: f64) -> f64 {
                x.powi(2)
            }
        ),
        &[3.0],
    );
    assert_eq!((v, g[0]), (9.0, 6.0));
    let (v, g) = run_backward(
        quote!(),
        quote!(
            fn f(x: f64) -> f64 {
                (x * x).sin()
            }
        ),
        &[3.0],
    );
    assert_eq!(format!("{v:.4} {:.4}", g[0]), "0.4121 -5.4668");
}

#[test]
fn only_the_taken_branch_is_differentiated() {
    let item = quote! {
        fn f(x: f64) -> f64 { if x < 1.0 { x } else { x.sqrt() } }
    };
    let (_, g) = run_backward(quote!(), item.clone(), &[0.0]);
    assert_eq!(g[0], 1.0);
    let (_, g) = run_backward(quote!(), item, &[4.0]);
    assert_eq!(g[0], 0.25);
    let (_, g) = run_backward(
        quote!(),
        quote!(
            fn f(x: f64) -> f64 {
                if x > 0.0 {
                    x.ln()
                } else {
                    x * 2.0
                }
            }
        ),
        &[-1.0],
    );
    assert_eq!(g[0], 2.0);
}

#[test]
fn branches_and_early_returns_match_finite_differences() {
    let item = quote! {
        fn f(x: f64, mut y: f64) -> f64 {
            if x < 1.0 {
                y += x.sin();
                let q = x * x;
                y *= q;
            } else {
                if y > 2.0 { return y.sqrt() * x; }
                y = x.ln() * y;
            }
            y * 2.0
        }
    };
    let f = lower_fn(quote!(), item);
    let b = backward(&f);
    for point in [[0.3, 0.7], [2.0, 3.0], [2.0, 1.5], [-1.0, 5.0]] {
        let args: Vec<Val<f64>> = point.iter().map(|&x| Val::F(x)).collect();
        let (_, grad) = interp::run(&b, &args);
        let primal = |xs: &[f64]| interp::run(&f, &[Val::F(xs[0]), Val::F(xs[1])]).0;
        grad_core::check::assert_gradient(primal, &point, &grad);
    }
}

/// Early exits in `if`s whose branches both go on (lowered as regions, not
/// by copying the rest): the lowered function computes what Rust computes,
/// and the gradient matches finite differences of the Rust function.
#[test]
fn early_exits_in_regions_match_rust() {
    macro_rules! both {
        ($($item:tt)*) => {{
            $($item)*
            (f as fn(f64, f64) -> f64, quote!($($item)*))
        }};
    }
    let cases = [
        both! {
            fn f(x: f64, y: f64) -> f64 {
                let mut z = x;
                if z > 0.5 { if y > 1.0 { return z * y; } z += y.sin(); } else { z *= 2.0; }
                if z > 1.5 { if y < 0.0 { return z.exp(); } z *= x; } else { z -= y; }
                if z < 3.0 { if z > 2.0 { return z.ln() * y; } } else { z *= 0.5; }
                z * y + x
            }
        },
        both! {
            fn f(x: f64, y: f64) -> f64 {
                let mut s = 0.0;
                for i in 0..6 {
                    let t = (i as f64) * 0.3;
                    if t > x { if s > y { break; } s += t * y; } else { if t < 0.2 { continue; } s *= x; }
                    s += x * y;
                }
                s
            }
        },
    ];
    // Away from the loop's thresholds `i * 0.3`, where the function jumps.
    let points = [
        [0.35, 0.7],
        [2.05, 3.0],
        [0.8, 1.5],
        [1.25, -0.4],
        [0.95, 0.2],
        [0.1, 5.0],
        [0.65, 0.4],
        [1.9, -0.2],
        [1.3, 0.95],
    ];
    for (native, item) in cases {
        let f = lower_fn(quote!(), item.clone());
        let b = backward(&f);
        for point in points {
            let args: Vec<Val<f64>> = point.iter().map(|&x| Val::F(x)).collect();
            let want = native(point[0], point[1]);
            assert_eq!(interp::run(&f, &args).0, want, "{item} at {point:?}");
            let (value, grad) = interp::run(&b, &args);
            assert_eq!(value, want, "{item} at {point:?}");
            let rust = |xs: &[f64]| native(xs[0], xs[1]);
            grad_core::check::assert_gradient(rust, &point, &grad);
        }
    }
}

#[test]
fn simplifier_folds_identities_and_single_contributions() {
    let f = lower_fn(
        quote!(),
        quote!(
            fn f(x: f64) -> f64 {
                x * 1.0 - 0.0
            }
        ),
    );
    let b = backward(&f);
    // No adjoint arithmetic remains: d/dx is the constant 1. (`x + 0.0`
    // stays in the value: it turns `-0.0` into `0.0`.)
    assert_eq!(
        b.to_string(),
        "fn(%0*) {\n  grad[0] += 1.0\n  yield %0\n}\n"
    );
}

#[test]
fn constant_factors_of_derivatives_multiply_out_when_exact() {
    let text = |item: TokenStream| backward(&lower_fn(quote!(), item)).to_string();
    // A square's partial `2 · t` meets the user's constants: one product
    // each (the value keeps the user's form).
    let squares = text(quote!(
        fn f(x: f64, y: f64) -> f64 {
            100.0 * (x - 1.0).powi(2) + 0.5 * (y - 3.0).powi(2)
        }
    ));
    assert!(squares.contains("200.0 *"), "{squares}");
    assert!(!squares.contains(" 2.0 *"), "{squares}");
    // `0.5 · (2 · r)` is `r`: the only `0.5` left is the value's.
    assert_eq!(squares.matches("0.5").count(), 1, "{squares}");
    // Neither factor a power of two: `3 · (0.1 · t)` is not `0.3 · t` in
    // floating point, so it stays.
    let inexact = text(quote!(
        fn f(x: f64) -> f64 {
            3.0 * (0.1 * x.sin())
        }
    ));
    assert!(inexact.contains("0.1"), "{inexact}");
    assert!(inexact.contains("3.0"), "{inexact}");
    // Same values either way, through the interpreter.
    let item = quote!(
        fn f(x: f64, y: f64) -> f64 {
            100.0 * (x - 1.0).powi(2) + 0.5 * (y - 3.0).powi(2)
        }
    );
    let (value, grad) = run_backward(quote!(), item, &[1.7, -0.4]);
    assert_eq!(value, 100.0 * 0.7_f64.powi(2) + 0.5 * (-3.4_f64).powi(2));
    assert_eq!(grad, vec![200.0 * (1.7 - 1.0), -0.4 - 3.0]);
}

#[test]
fn an_adjoint_reset_nothing_reads_is_dropped_and_the_loop_runs_forwards() {
    // W4's shape: a hidden layer stored in `h`, read by the output. The
    // reverse loop over the units resets `__d_h[j]` after its last use; once
    // that store is gone, the loop only accumulates and runs forwards.
    let item = quote!(
        fn f(w: [f64; 3], v: [f64; 3], x: f64) -> f64 {
            let mut h = [0.0; 3];
            for j in 0..3 {
                h[j] = (w[j] * x).tanh();
            }
            let mut z = 0.0;
            for j in 0..3 {
                z += v[j] * h[j];
            }
            z
        }
    );
    let text = backward(&lower_fn(quote!(), item.clone())).to_string();
    assert!(!text.contains("] = 0.0"), "{text}");
    assert!(!text.contains(" rev"), "{text}");
    check_through_interpreter(
        item,
        &[
            floats(&[0.5, -0.3, 1.2]),
            floats(&[0.7, 0.2, -1.1]),
            Val::F(0.9),
        ],
    );
}

#[test]
fn unused_values_and_zero_adjoints_disappear() {
    let f = lower_fn(
        quote!(wrt(x)),
        quote!(
            fn f(x: f64, y: f64) -> f64 {
                let unused = y.exp();
                let c = y * 2.0;
                x * c
            }
        ),
    );
    let text = backward(&f).to_string();
    assert!(!text.contains("exp"), "{text}");
    assert!(!text.contains("mut"), "{text}");
}

// ------------------------------------------------------------ expansion

#[test]
fn expansion_of_a_body_with_errors_keeps_the_function_and_stubs() {
    let out = expand(
        quote!(),
        quote!(
            fn f(x: f64) -> f64 {
                unsafe { x }
            }
        ),
    );
    assert!(out.contains("compile_error!"), "{out}");
    assert!(out.contains("fn f(x: f64) -> f64"), "{out}");
    assert!(out.contains("fn f_grad(_: f64) -> (f64, FGrad)"), "{out}");
    assert!(
        out.contains("fn f_backward(_: f64, _: &mut FGrad) -> f64"),
        "{out}"
    );
}

#[test]
fn generated_names_avoid_every_user_identifier() {
    let out = expand(
        quote!(),
        quote! {
            fn f(grad: f64, __d_x: f64, __t1: f64) -> f64 {
                let value = grad * __d_x;
                value * __t1.sin()
            }
        },
    );
    assert!(out.contains("grad_2: &mut FGrad"), "{out}");
    assert!(out.contains("let mut grad_2 = "), "{out}");
    assert!(!out.contains("let __t1"), "{out}");
}

#[test]
fn no_input_makes_the_expander_panic() {
    let inputs = [
        quote!(),
        quote!(
            struct S;
        ),
        quote!(
            fn f() {}
        ),
        quote!(
            fn f(x: f64) -> f64 {
                return;
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                x.powi()
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                chain!()
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                chain!(x -> )
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                let y;
                y
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                if x > 0.0 {
                    return x;
                }
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                1e400 * x
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                {
                    return x;
                }
            }
        ),
    ];
    for input in inputs {
        let _ = crate::expand::differentiate(quote!(), input);
    }
    for attr in [
        quote!(wrt),
        quote!(wrt(x,)),
        quote!(crate),
        quote!(crate = ),
        quote!(,,),
    ] {
        let _ = crate::expand::differentiate(
            attr,
            quote!(
                fn f(x: f64) -> f64 {
                    x
                }
            ),
        );
    }
}

/// The expansion snapshots under `tests/expand/`: each `NAME.rs` holds
/// `#[differentiate]` functions and `NAME.expanded.rs` their expansion, as
/// `cargo expand` prints it. `GRAD_BLESS=1 cargo test -p grad-macro` rewrites
/// the expected files. `tests/expansion_numbers.rs` runs every snapshot's
/// numbers.
#[test]
fn expansion_snapshots() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/expand");
    let bless = std::env::var_os("GRAD_BLESS").is_some();
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/expand exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "rs")
                && !p.to_string_lossy().ends_with(".expanded.rs")
        })
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 3, "snapshots missing in {}", dir.display());
    let mut failures = vec![];
    for input in inputs {
        let source = std::fs::read_to_string(&input).expect("readable snapshot input");
        let file = syn::parse_file(&source).expect("snapshot input parses");
        let mut out = TokenStream::new();
        for item in file.items {
            let syn::Item::Fn(mut f) = item else { continue };
            let Some(pos) = f
                .attrs
                .iter()
                .position(|a| a.path().is_ident("differentiate"))
            else {
                continue;
            };
            let attr = f.attrs.remove(pos);
            let args = match attr.meta {
                syn::Meta::List(list) => list.tokens,
                _ => TokenStream::new(),
            };
            out.extend(crate::expand::differentiate(args, quote!(#f)));
        }
        let file: syn::File = syn::parse2(out).expect("expansion parses");
        let actual = prettyplease::unparse(&file);
        let expected_path = input.with_extension("expanded.rs");
        if bless {
            std::fs::write(&expected_path, &actual).expect("writable snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{} differs from its expansion (GRAD_BLESS=1 to accept):\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ------------------------------------------------------------------ loops

/// The flat list of float inputs in `args` (arrays row-major).
fn flatten(args: &[Val<f64>]) -> Vec<f64> {
    fn go(v: &Val<f64>, out: &mut Vec<f64>) {
        match v {
            Val::F(x) => out.push(*x),
            Val::Arr(items) => items.iter().for_each(|i| go(i, out)),
            _ => {}
        }
    }
    let mut out = vec![];
    args.iter().for_each(|a| go(a, &mut out));
    out
}

/// `args` with its float inputs replaced, in order, by `flat`.
fn refill(args: &[Val<f64>], flat: &[f64]) -> Vec<Val<f64>> {
    fn go(v: &Val<f64>, flat: &mut std::slice::Iter<f64>) -> Val<f64> {
        match v {
            Val::F(_) => Val::F(*flat.next().expect("enough inputs")),
            Val::Arr(items) => Val::Arr(items.iter().map(|i| go(i, flat)).collect()),
            other => other.clone(),
        }
    }
    let mut it = flat.iter();
    args.iter().map(|a| go(a, &mut it)).collect()
}

fn floats(xs: &[f64]) -> Val<f64> {
    Val::Arr(xs.iter().map(|&x| Val::F(x)).collect())
}

/// Runs the transform on `item` and checks its gradient against finite
/// differences of the primal, both through the interpreter.
fn check_through_interpreter(item: TokenStream, args: &[Val<f64>]) {
    let f = lower_fn(quote!(), item);
    let b = backward(&f);
    let (value, grad) = interp::run(&b, args);
    let (primal, _) = interp::run(&f, args);
    assert_eq!(value, primal, "the companion's value is the function's");
    // Gradients of integer parameters are not part of `flatten`.
    let x = flatten(args);
    let g: Vec<f64> = {
        let mut out = vec![];
        let mut k = 0;
        for a in args {
            let n = flatten(std::slice::from_ref(a)).len();
            let is_float = matches!(a, Val::F(_) | Val::Arr(_));
            if is_float {
                out.extend_from_slice(&grad[k..k + n]);
            }
            k += if is_float { n } else { 1 };
        }
        out
    };
    let primal_at = |xs: &[f64]| interp::run(&f, &refill(args, xs)).0;
    grad_core::check::assert_gradient(primal_at, &x, &g);
}

#[test]
fn reductions_recurrences_and_products_through_loops() {
    let x = floats(&[0.3, -1.2, 0.8, 2.0]);
    check_through_interpreter(
        quote!(
            fn f(w: f64, x: &[f64]) -> f64 {
                let mut s = 0.0;
                for i in 0..x.len() {
                    s += (w * x[i]).sin();
                }
                s
            }
        ),
        &[Val::F(0.7), x.clone()],
    );
    check_through_interpreter(
        quote!(
            fn f(w: f64, x: &[f64]) -> f64 {
                let mut h = 0.0;
                for xi in x.iter() {
                    h = (h * w + xi).tanh();
                }
                h
            }
        ),
        &[Val::F(0.7), x.clone()],
    );
    check_through_interpreter(
        quote!(
            fn f(x: &[f64]) -> f64 {
                let mut p = 1.0;
                let mut m = f64::NEG_INFINITY;
                for i in (0..x.len()).rev() {
                    p *= x[i];
                    m = m.max(x[i] * p);
                }
                p + m
            }
        ),
        &[x],
    );
}

#[test]
fn break_continue_while_and_local_arrays() {
    let w = floats(&[0.5, -0.3, 1.2]);
    check_through_interpreter(
        quote!(
            fn f(x: f64, w: [f64; 3]) -> f64 {
                let mut acc = 0.0;
                let mut i = 0;
                loop {
                    if i >= 3 {
                        break;
                    }
                    if w[i] < 0.0 {
                        i += 1;
                        continue;
                    }
                    acc = acc * x + w[i];
                    i += 1;
                }
                let mut h = [0.0; 3];
                for j in 0..3 {
                    h[j] = (w[j] * x).sin();
                }
                let mut y = x;
                while y < 10.0 {
                    y = y * 1.7 + h[1];
                }
                acc + y
            }
        ),
        &[Val::F(0.9), w],
    );
    check_through_interpreter(
        quote!(
            fn f(w: [[f64; 2]; 3], x: &[f64]) -> f64 {
                let mut out = 0.0;
                for s in 0..2 {
                    let mut h = [0.0; 3];
                    for j in 0..3 {
                        for k in 0..2 {
                            h[j] += w[j][k] * x[s * 2 + k];
                        }
                    }
                    for j in 0..3 {
                        out += h[j].tanh() * x[s * 2];
                    }
                }
                out
            }
        ),
        &[
            Val::Arr(vec![
                floats(&[0.1, 0.2]),
                floats(&[-0.3, 0.4]),
                floats(&[0.5, -0.6]),
            ]),
            floats(&[0.7, -1.1, 0.4, 0.9]),
        ],
    );
}

#[test]
fn a_reduction_keeps_no_tape_and_a_recurrence_keeps_one_value() {
    let reduction = backward(&lower_fn(
        quote!(),
        quote!(
            fn f(w: f64, x: &[f64]) -> f64 {
                let mut s = 0.0;
                for i in 0..x.len() {
                    s += (w * x[i]).sin();
                }
                s
            }
        ),
    ));
    assert!(!reduction.to_string().contains("tape"), "{reduction}");
    let recurrence = backward(&lower_fn(
        quote!(),
        quote!(
            fn f(w: f64, x: &[f64]) -> f64 {
                let mut h = 0.0;
                for i in 0..x.len() {
                    h = (h * w + x[i]).tanh();
                }
                h
            }
        ),
    ));
    let text = recurrence.to_string();
    assert_eq!(text.matches("= tape").count(), 1, "{text}");
    assert!(
        text.contains("push %") && !text.contains(", %") || text.matches("push").count() == 1,
        "{text}"
    );
}

// ------------------------------------------------------------------ lanes

/// Applies `lanes.rs` to `_backward` of `item` and runs both versions in the
/// interpreter on every argument list: the value and the gradient must be
/// the same bits. Returns whether the pass rewrote anything.
fn lanes_agree(attr: TokenStream, item: TokenStream, calls: &[Vec<Val<f64>>]) -> bool {
    let back = backward(&lower_fn(attr, item));
    let mut laned = back.clone();
    let changed = crate::lanes::vectorise_sample_loops(&mut laned, &quote!(::grad));
    for args in calls {
        let (value, grad) = interp::run(&back, args);
        let (lanes_value, lanes_grad) = interp::run(&laned, args);
        assert_eq!(lanes_value.to_bits(), value.to_bits(), "value, {laned}");
        let bits = |g: &[f64]| g.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&lanes_grad), bits(&grad), "gradient, {laned}");
    }
    changed
}

/// Deterministic values in [-1, 1).
fn wobble(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|k| ((k as f64 + 1.0) * 0.618_034 * seed as f64).sin())
        .collect()
}

#[test]
fn lanes_give_a_per_sample_loss_the_same_bits_for_every_length() {
    // Logistic regression: whole groups of four, a remainder, or neither.
    let item = quote! {
        fn logistic(w: [f64; 3], b: f64, x: &[f64], y: &[f64]) -> f64 {
            let n = y.len();
            let mut total = 0.0;
            for i in 0..n {
                let mut z = b;
                for j in 0..3 {
                    z += w[j] * x[i * 3 + j];
                }
                total += bce(sigmoid(z), y[i]);
            }
            total / n as f64
        }
    };
    let calls: Vec<_> = [1, 3, 4, 5, 9, 16]
        .iter()
        .map(|&n| {
            let labels: Vec<f64> = wobble(n, 7).iter().map(|v| f64::from(*v > 0.0)).collect();
            vec![
                floats(&[0.3, -0.7, 1.1]),
                Val::F(0.1),
                floats(&wobble(3 * n, 3)),
                floats(&labels),
            ]
        })
        .collect();
    assert!(lanes_agree(quote!(wrt(w, b)), item, &calls));
}

#[test]
fn lanes_start_anywhere_and_add_into_slice_gradients() {
    // A range not starting at 0 (and empty for short inputs), a gradient
    // element per iteration, two sums.
    let item = quote! {
        fn f(x: &[f64], c: f64) -> f64 {
            let mut s = 0.0;
            let mut t = 0.0;
            for i in 2..x.len() {
                let p = sigmoid(x[i] * c);
                s += p * x[i - 1];
                t += tanh(p - x[i - 2]);
            }
            s * t
        }
    };
    let calls: Vec<_> = [0, 1, 2, 3, 6, 7, 13]
        .iter()
        .map(|&n| vec![floats(&wobble(n, 5)), Val::F(1.3)])
        .collect();
    assert!(lanes_agree(quote!(wrt(x, c)), item, &calls));
}

#[test]
fn lanes_run_inner_loops_with_their_own_carried_values() {
    // The inner loop's start value differs by iteration; the gradient of
    // `x` gets contributions from several iterations per element.
    let item = quote! {
        fn f(w: [f64; 3], x: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..x.len() {
                let mut z = x[i];
                for j in 0..3 {
                    z += w[j] * x[(i + j) % x.len()];
                }
                s += sigmoid(z);
            }
            s
        }
    };
    let calls: Vec<_> = [4, 6, 11]
        .iter()
        .map(|&n| vec![floats(&[0.5, -1.5, 0.9]), floats(&wobble(n, 9))])
        .collect();
    assert!(lanes_agree(quote!(wrt(w, x)), item, &calls));
}

#[test]
fn lanes_leave_other_loops_as_they_are() {
    let calls = vec![vec![floats(&wobble(7, 2))]];
    let others = [
        // A branch in the body.
        quote! {
            fn f(x: &[f64]) -> f64 {
                let mut s = 0.0;
                for i in 0..x.len() {
                    if x[i] > 0.0 {
                        s += sigmoid(x[i]);
                    }
                }
                s
            }
        },
        // No kernel of the runtime: nothing to vectorise.
        quote! {
            fn f(x: &[f64]) -> f64 {
                let mut s = 0.0;
                for i in 0..x.len() {
                    s += x[i] * x[i].exp();
                }
                s
            }
        },
        // A carried value that is not a sum.
        quote! {
            fn f(x: &[f64]) -> f64 {
                let mut s = 1.0;
                for i in 0..x.len() {
                    s = s * sigmoid(x[i]);
                }
                s
            }
        },
    ];
    for item in others {
        assert!(!lanes_agree(quote!(wrt(x)), item.clone(), &calls), "{item}");
    }
}
