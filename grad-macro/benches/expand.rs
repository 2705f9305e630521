//! Expansion time of `#[differentiate]` (issue 5: "expansion of a 1 000
//! operation function takes well under 100 ms"), for the functions of
//! `src/size_cases.rs` at 10, 100 and 1 000 operations.
//!
//! A proc-macro crate exports nothing but its macros, so this benchmark
//! compiles the macro's modules into itself, each by path, at the crate root
//! where their `crate::…` paths expect them. The list must follow
//! `src/lib.rs` (the unit test `size_tests::bench_includes_every_module`
//! checks it does). The expander runs outside a compiler here: proc-macro2
//! uses its own token streams instead of rustc's, which a real expansion
//! reaches through the proc-macro bridge, so rustc's cost is somewhat
//! higher than these numbers.
//!
//! ```sh
//! cargo bench -p grad-macro --bench expand                  # release, as `cargo bench` builds
//! cargo bench -p grad-macro --bench expand -- chain/1000    # one case
//! cargo bench -p grad-macro --bench expand --profile dev    # as a user's debug build runs the macro
//! ```
//!
//! The last line matters: a user's build runs the macro as compiled for the
//! build's profile, and in `dev` that is unoptimised unless the user sets
//! `[profile.dev.build-override] opt-level = 3` (or a per-package override).

// The modules are the macro's: what only `lib.rs` uses is unused here, and
// cargo compiles a bench with `--cfg test`, so the modules' own `#[cfg(test)]`
// test modules are compiled too, without a harness to use their imports.
#![allow(dead_code, unused_imports)]

#[path = "../src/args.rs"]
mod args;
#[path = "../src/carry.rs"]
mod carry;
#[path = "../src/chain.rs"]
mod chain;
#[path = "../src/ctxt.rs"]
mod ctxt;
#[path = "../src/emit.rs"]
mod emit;
#[path = "../src/expand.rs"]
mod expand;
#[path = "../src/fallback.rs"]
mod fallback;
#[path = "../src/forward.rs"]
mod forward;
#[path = "../src/fuse.rs"]
mod fuse;
#[path = "../src/ir.rs"]
mod ir;
#[path = "../src/items.rs"]
mod items;
#[path = "../src/jacobian.rs"]
mod jacobian;
#[path = "../src/lanes.rs"]
mod lanes;
#[path = "../src/lower.rs"]
mod lower;
#[path = "../src/reverse.rs"]
mod reverse;
#[path = "../src/rules.rs"]
mod rules;
#[path = "../src/simplify.rs"]
mod simplify;
#[path = "../src/window.rs"]
mod window;

#[path = "../src/size_cases.rs"]
mod size_cases;

use std::str::FromStr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use proc_macro2::TokenStream;

use size_cases::Shape;

const SIZES: [usize; 3] = [10, 100, 1_000];

fn expansion(c: &mut Criterion) {
    for shape in Shape::ALL {
        let mut group = c.benchmark_group(format!("expand/{}", shape.name()));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        for n in SIZES {
            let (attr, item) = shape.source(n);
            let attr = TokenStream::from_str(&attr).expect("attribute tokens");
            let item = TokenStream::from_str(&item).expect("item tokens");
            // A complete expansion, not an error's fallback.
            let out = expand::differentiate(attr.clone(), item.clone()).to_string();
            assert!(!out.contains("compile_error"), "{} n = {n}", shape.name());
            group.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter_batched(
                    || (attr.clone(), item.clone()),
                    |(attr, item)| expand::differentiate(attr, item),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, expansion);
criterion_main!(benches);
