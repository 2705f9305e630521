//! Reads criterion's results for grad's benchmarks (`cargo bench` writes
//! them under `target/criterion`) and writes
//!
//! * `BENCHMARKS.png`: per workload, each implementation's time relative to
//!   the hand-written gradient measured in the same run (log scale);
//! * on standard output, the Markdown table that BENCHMARKS.md shows.
//!
//! Run from the repository root after `cargo bench`:
//! `cargo run --release --manifest-path tools/bench-chart/Cargo.toml`.
//! Arguments: the criterion directory (default `target/criterion`) and the
//! PNG to write (default `BENCHMARKS.png`).

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

/// One measurement: median nanoseconds per iteration.
struct Measurement {
    group: String,
    implementation: String,
    median_ns: f64,
}

/// The implementations in the order the table and the chart show them.
const ORDER: &[&str] = &[
    "primal",
    "hand",
    "hand (adding)",
    "grad",
    "grad (array)",
    "num-dual",
    "echidna",
    "symdiff",
];

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/criterion".into()));
    let png = PathBuf::from(args.next().unwrap_or_else(|| "BENCHMARKS.png".into()));
    let measurements = read(&dir)?;
    if measurements.is_empty() {
        return Err(format!(
            "no criterion results under {}; run `cargo bench` first",
            dir.display()
        )
        .into());
    }
    let groups = by_group(measurements);
    print_table(&groups);
    draw(&groups, &png)?;
    eprintln!("wrote {}", png.display());
    Ok(())
}

/// Every `new/benchmark.json` + `new/estimates.json` pair under `dir`.
fn read(dir: &Path) -> Result<Vec<Measurement>, Box<dyn Error>> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let in_new = path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "new");
            if !in_new || path.file_name().is_none_or(|n| n != "benchmark.json") {
                continue;
            }
            let bench: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path)?)?;
            let estimates: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(path.with_file_name("estimates.json"))?)?;
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            let median = estimates["median"]["point_estimate"]
                .as_f64()
                .unwrap_or(f64::NAN);
            out.push(Measurement {
                group: text(&bench["group_id"]),
                implementation: text(&bench["function_id"]),
                median_ns: median,
            });
        }
    }
    Ok(out)
}

/// Group → implementation → median ns, for the groups that have a
/// hand-written gradient (the workloads; not the expansion benchmarks).
/// Groups sort by name with numbers compared as numbers (`n=2` before
/// `n=100`).
fn by_group(ms: Vec<Measurement>) -> BTreeMap<GroupKey, BTreeMap<String, f64>> {
    let mut groups: BTreeMap<GroupKey, BTreeMap<String, f64>> = BTreeMap::new();
    for m in ms {
        groups
            .entry(GroupKey::new(m.group))
            .or_default()
            .insert(m.implementation, m.median_ns);
    }
    groups.retain(|_, row| row.contains_key("hand"));
    groups
}

/// A group name ordered with its digit runs compared as numbers.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    parts: Vec<(String, u64)>,
    name: String,
}

impl GroupKey {
    fn new(name: String) -> Self {
        let mut parts = vec![];
        let mut text = String::new();
        let mut number = String::new();
        for c in name.chars() {
            if c.is_ascii_digit() {
                number.push(c);
            } else {
                if !number.is_empty() {
                    parts.push((std::mem::take(&mut text), number.parse().unwrap_or(0)));
                    number.clear();
                }
                text.push(c);
            }
        }
        parts.push((text, number.parse().unwrap_or(0)));
        GroupKey { parts, name }
    }
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

fn implementations(groups: &BTreeMap<GroupKey, BTreeMap<String, f64>>) -> Vec<String> {
    let mut all: Vec<String> = ORDER.iter().map(|s| s.to_string()).collect();
    for g in groups.values() {
        for k in g.keys() {
            if !all.contains(k) {
                all.push(k.clone());
            }
        }
    }
    all.retain(|i| groups.values().any(|g| g.contains_key(i)));
    all
}

fn human(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn print_table(groups: &BTreeMap<GroupKey, BTreeMap<String, f64>>) {
    let imps = implementations(groups);
    println!("| workload | {} |", imps.join(" | "));
    println!("|---|{}", "---|".repeat(imps.len()));
    for (group, row) in groups {
        let hand = row.get("hand").copied();
        let cells: Vec<String> = imps
            .iter()
            .map(|i| match (row.get(i), hand) {
                (Some(&ns), Some(h)) if i != "hand" => format!("{} ({:.2}×)", human(ns), ns / h),
                (Some(&ns), _) => human(ns),
                (None, _) => "—".into(),
            })
            .collect();
        println!("| {group} | {} |", cells.join(" | "));
    }
}

fn draw(
    groups: &BTreeMap<GroupKey, BTreeMap<String, f64>>,
    png: &Path,
) -> Result<(), Box<dyn Error>> {
    let imps: Vec<String> = implementations(groups)
        .into_iter()
        .filter(|i| i != "hand")
        .collect();
    let names: Vec<&GroupKey> = groups.keys().collect();
    let ratios: Vec<Vec<Option<f64>>> = groups
        .values()
        .map(|row| {
            let hand = row.get("hand").copied();
            imps.iter().map(|i| Some(*row.get(i)? / hand?)).collect()
        })
        .collect();
    let max = ratios
        .iter()
        .flatten()
        .flatten()
        .fold(1.0_f64, |a, &b| a.max(b));
    let min = ratios
        .iter()
        .flatten()
        .flatten()
        .fold(1.0_f64, |a, &b| a.min(b));

    let root = BitMapBackend::new(png, (1200, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let slots = names.len() * (imps.len() + 1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "time relative to the hand-written gradient (log scale, lower is faster)",
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..slots as f64, (min * 0.3..max * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("× hand-written")
        .draw()?;
    // One colour per implementation (seven, with `hand` not drawn).
    let palette = [
        BLUE,
        GREEN,
        RED,
        MAGENTA,
        CYAN,
        BLACK,
        RGBColor(230, 140, 0),
    ];
    for (k, imp) in imps.iter().enumerate() {
        let color = palette[k % palette.len()];
        let bars = names.iter().enumerate().filter_map(|(g, _)| {
            let r = ratios[g][k]?;
            let x0 = (g * (imps.len() + 1) + k) as f64 + 0.5;
            Some(Rectangle::new(
                [(x0, min * 0.5), (x0 + 0.9, r)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(imp.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    // The workloads' names under their bars.
    chart.draw_series(names.iter().enumerate().map(|(g, name)| {
        let x = (g * (imps.len() + 1)) as f64 + 0.5;
        Text::new(
            name.to_string(),
            (x, min * 0.42),
            ("sans-serif", 16).into_font(),
        )
    }))?;
    // The hand-written gradient itself: ratio 1.
    chart.draw_series(LineSeries::new(
        [(0.0, 1.0), (slots as f64, 1.0)],
        BLACK.stroke_width(1),
    ))?;
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
