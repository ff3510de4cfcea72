//! The fast path for simple lines (`line_protocol/simple.rs`) against the ground truth, a real
//! InfluxDB 1.6 (`/usr/bin/influxd`, started on loopback in a temp dir; skipped when absent):
//! the same Telegraf-shaped lines, with floats drawn from every bit pattern and printed in all the
//! forms both accept, integers up to the i64 edges and every boolean spelling, are posted to
//! both; every value the processor routes equals, to the bit, what influxd stores.
//!
//! The unit tests prove the fast path gives what the crate path gives; this proves what both give
//! is what InfluxDB 1.x gives.

mod write_api_support;

use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use processor::config::Http;
use workspace_bins::peers::Influxd;
use write_api_support::*;

const LINES: usize = 1_500;
const FIRST_TIME: i64 = 1_700_000_000_000_000_000;

/// A stored value, exact: floats by their bits (zero's sign aside, see `exact_float`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Exact {
    Float(u64),
    Integer(i64),
    Boolean(bool),
}

/// Bits of a float, with -0 as 0: InfluxDB 1.6 prints -0 as `0` in its answers, so the sign of
/// zero cannot be read back (the corpus test covers -0 on its own).
fn exact_float(value: f64) -> Exact {
    Exact::Float(if value == 0.0 { 0 } else { value.to_bits() })
}

/// A finite float in one of the forms line protocol allows, with its value.
fn float_text(rng: &mut fastrand::Rng) -> (String, f64) {
    let value = loop {
        let candidate = match rng.u8(0..4) {
            // Any bit pattern: subnormals, huge, tiny.
            0 => f64::from_bits(rng.u64(..)),
            // Telegraf's usual: a few digits either side of the point.
            1 => rng.i64(-1_000_000..1_000_000) as f64 / 10f64.powi(rng.i32(0..7)),
            // Sixteen and more significant digits.
            2 => rng.f64() * 10f64.powi(rng.i32(-30..30)),
            _ => rng.i64(..) as f64,
        };
        if candidate.is_finite() {
            break candidate;
        }
    };
    let text = match rng.u8(0..3) {
        0 => format!("{value}"),
        1 => format!("{value:e}"),
        _ => format!("{value:E}"),
    };
    // What Rust reads back is the value the text stands for (shortest round-trip forms).
    let parsed: f64 = text.parse().expect("a float Rust printed");
    (text, parsed)
}

fn integer(rng: &mut fastrand::Rng) -> i64 {
    match rng.u8(0..4) {
        0 => i64::MIN + rng.i64(0..3),
        1 => i64::MAX - rng.i64(0..3),
        2 => rng.i64(-1000..1000),
        _ => rng.i64(..),
    }
}

const BOOLEANS: [(&str, bool); 10] = [
    ("t", true),
    ("T", true),
    ("true", true),
    ("True", true),
    ("TRUE", true),
    ("f", false),
    ("F", false),
    ("false", false),
    ("False", false),
    ("FALSE", false),
];

/// The body, and for each line's `line` tag the fields it must give.
fn batch() -> (String, BTreeMap<String, Vec<(String, Exact)>>) {
    let mut rng = fastrand::Rng::with_seed(5);
    let mut body = String::new();
    let mut expected = BTreeMap::new();
    for n in 0..LINES {
        let (f0, f0_value) = float_text(&mut rng);
        let (f1, f1_value) = float_text(&mut rng);
        let i0 = integer(&mut rng);
        let (b0, b0_value) = BOOLEANS[n % BOOLEANS.len()];
        let line = format!("{n:05}");
        // Tags sorted one line in two; one or two spaces between the parts.
        let tags = if n % 2 == 0 {
            format!("host=h{},line={line}", n % 7)
        } else {
            format!("line={line},host=h{}", n % 7)
        };
        let gap = if n % 3 == 0 { "  " } else { " " };
        body.push_str(&format!(
            "fast,{tags}{gap}f0={f0},f1={f1},i0={i0}i,b0={b0}{gap}{}\n",
            FIRST_TIME + n as i64
        ));
        let mut fields = vec![
            ("b0".to_owned(), Exact::Boolean(b0_value)),
            ("f0".to_owned(), exact_float(f0_value)),
            ("f1".to_owned(), exact_float(f1_value)),
            ("i0".to_owned(), Exact::Integer(i0)),
        ];
        fields.sort();
        expected.insert(line, fields);
    }
    (body, expected)
}

/// influxd's stored rows, read back as CSV (its floats in Go's shortest form, which Rust's
/// parser reads back to the same bits), by `line` tag.
async fn stored_by_influxd(influxd: &Influxd) -> BTreeMap<String, Vec<(String, Exact)>> {
    let query = "q=SELECT+b0,f0,f1,i0,line+FROM+fast&db=fastdb&epoch=ns";
    let reply = send(
        influxd.addr,
        Method::GET,
        &format!("/query?{query}"),
        &[("accept", "application/csv")],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut lines = reply.body.lines();
    let header: Vec<&str> = lines.next().expect("csv header").split(',').collect();
    assert_eq!(
        header,
        ["name", "tags", "time", "b0", "f0", "f1", "i0", "line"]
    );
    let mut stored = BTreeMap::new();
    for row in lines {
        let cells: Vec<&str> = row.split(',').collect();
        let [_, _, _, b0, f0, f1, i0, line] = cells[..] else {
            panic!("row {row:?}");
        };
        let float = |text: &str| exact_float(text.parse().expect("float"));
        let mut fields = vec![
            ("b0".to_owned(), Exact::Boolean(b0.parse().expect("bool"))),
            ("f0".to_owned(), float(f0)),
            ("f1".to_owned(), float(f1)),
            (
                "i0".to_owned(),
                Exact::Integer(i0.parse().expect("integer")),
            ),
        ];
        fields.sort();
        stored.insert(line.to_owned(), fields);
    }
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_lines_store_what_influxd_stores_to_the_bit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(influxd) = Influxd::start(dir.path()) else {
        return;
    };
    let server = start_with(Http::default(), "autogen", &[("fastdb", "autogen")]).await;
    let create = send(
        influxd.addr,
        Method::POST,
        "/query",
        &[("content-type", "application/x-www-form-urlencoded")],
        "q=CREATE+DATABASE+fastdb",
    )
    .await;
    assert_eq!(create.status, StatusCode::OK, "{}", create.body);

    let (body, expected) = batch();
    for target in [influxd.addr, server.addr] {
        let reply = post(target, "/write?db=fastdb", body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::NO_CONTENT,
            "{target}: {}",
            reply.body
        );
    }

    let ours: BTreeMap<String, Vec<(String, Exact)>> = server
        .recorder
        .take()
        .into_iter()
        .map(|point| {
            let line = point
                .tags
                .iter()
                .find(|(k, _)| k == "line")
                .expect("line tag");
            let mut fields: Vec<(String, Exact)> = point
                .fields
                .iter()
                .map(|(key, value)| {
                    let exact = match value {
                        Value::Float(v) => exact_float(*v),
                        Value::Integer(v) => Exact::Integer(*v),
                        Value::Boolean(v) => Exact::Boolean(*v),
                        Value::String(v) => panic!("no strings were written: {v}"),
                    };
                    (key.clone(), exact)
                })
                .collect();
            fields.sort();
            (line.1.clone(), fields)
        })
        .collect();
    assert_eq!(ours.len(), LINES);
    assert_eq!(
        ours, expected,
        "the processor's values are the lines' values"
    );

    let theirs = stored_by_influxd(&influxd).await;
    assert_eq!(theirs.len(), LINES);
    for (line, fields) in &ours {
        assert_eq!(theirs.get(line), Some(fields), "line {line}");
    }
}
