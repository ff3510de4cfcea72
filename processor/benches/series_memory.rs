//! Heap per live series in the tutorial's task, node by node: the pipeline alone (no HTTP, no
//! allocator slack), with a counting global allocator. `SERIES` series (each its own `host`,
//! 100 per `deployment`) send one point a second for `SECONDS` seconds; the live heap is then
//! divided by the series. The script is cut after each node in turn so each line of the table
//! adds one node's state. Finally processor time moves past `state-expiry` and the heap left is
//! printed (state freed or not).
//!
//! Run: `cargo bench -p processor --bench series_memory` (`SERIES=100000 SECONDS=90` to change
//! the scale).

use std::alloc::System;

use cap::Cap;
use processor::line_protocol::{Precision, parse_body};
use processor::pipeline::{Graph, Settings};
use processor::tick::{VarOverrides, compile};

/// Counts live heap bytes.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

fn live() -> isize {
    ALLOCATOR.allocated() as isize
}

const TUTORIAL: &str = include_str!("../tests/fixtures/tick/autoscale.tick");
const S: i64 = 1_000_000_000;
const T0: i64 = 1_700_000_000;
const PODS_PER_DEPLOYMENT: usize = 100;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The tutorial's script cut after the node whose method starts a line with `|{cut}`.
fn script_up_to(cut: Option<&str>) -> String {
    let Some(cut) = cut else {
        return TUTORIAL.to_string();
    };
    let mut out = String::new();
    let mut seen = false;
    for line in TUTORIAL.lines() {
        let trimmed = line.trim_start();
        if seen && trimmed.starts_with('|') {
            break;
        }
        if trimmed.starts_with(&format!("|{cut}(")) {
            seen = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// One second's body: every series' point.
fn body(series: usize, second: i64) -> Vec<u8> {
    let mut body = String::with_capacity(series * 64);
    for s in 0..series {
        body.push_str(&format!(
            "requests,deployment=d{},host=s{s} counter={}i {}\n",
            s / PODS_PER_DEPLOYMENT,
            (second + 1) * 10,
            (T0 + second) * S
        ));
    }
    body.into_bytes()
}

struct Measured {
    per_series: f64,
    after_expiry: isize,
}

fn measure(cut: Option<&str>, series: usize, seconds: i64) -> Measured {
    let pipeline = compile(&script_up_to(cut), &VarOverrides::new()).unwrap_or_else(|e| {
        panic!("{e}");
    });
    let settings = Settings {
        max_series: 0,
        dry_run: true,
        ..Settings::default()
    };
    let mut effects = Vec::new();
    let base = live();
    let mut graph = Graph::new("soak", &pipeline, settings).unwrap_or_else(|e| panic!("{e}"));
    for second in 0..seconds {
        let parsed = parse_body(
            body(series, second),
            "autoscale".into(),
            "autogen".into(),
            Precision::Nanoseconds,
            0,
        );
        let now = (T0 + second) * S + S / 2;
        graph.write(parsed.batch.points(), now, &mut effects);
        drop(parsed);
        graph.tick(now, &mut effects);
        effects.clear();
    }
    let held = live() - base;
    // Past state-expiry, then on for a minute of ticks (interned strings and groups are
    // swept every 10 s once their last holder let go).
    let expiry = (T0 + seconds) * S + settings.state_expiry.as_nanos() as i64;
    for second in 0..60 {
        graph.tick(expiry + second * S, &mut effects);
        effects.clear();
    }
    let after_expiry = live() - base;
    drop(graph);
    Measured {
        per_series: held as f64 / series as f64,
        after_expiry,
    }
}

fn main() {
    let series = env_number("SERIES", 20_000);
    let seconds = env_number("SECONDS", 75) as i64;
    println!(
        "heap per live series, tutorial task, {series} series ({} per deployment), {seconds} s at 1 point/s",
        PODS_PER_DEPLOYMENT
    );
    println!("| script up to | bytes per series | added by the node | heap after state-expiry |");
    println!("|---|---|---|---|");
    let mut previous = 0.0;
    for (label, cut) in [
        ("from", Some("from")),
        ("derivative", Some("derivative")),
        ("groupBy", Some("groupBy")),
        ("sum", Some("sum")),
        ("movingAverage", Some("movingAverage")),
        ("k8sAutoscale (whole task)", None),
    ] {
        let m = measure(cut, series, seconds);
        println!(
            "| {label} | {:.0} | {:+.0} | {} bytes |",
            m.per_series,
            m.per_series - previous,
            m.after_expiry
        );
        previous = m.per_series;
    }
}
