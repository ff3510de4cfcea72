//! Fuzzing the write path's parser, `line_protocol::parse_body` (what `/write` runs on every
//! body), on the stable toolchain: mutations of the shared line-protocol corpus, the shared
//! `.lp` sample and the line-protocol literals of the processor's tests.
//!
//! Invariants checked on every input (after a well-formed first line, the sentinel):
//! - no panic;
//! - the sentinel is the first point (a bad line loses nothing before it);
//! - every point names the line it came from; every error names a line that holds no point,
//!   once, in order, within the body;
//! - when the body has no `"` and no `\` (so its lines are its newlines), every line that is
//!   not blank or a comment is a point, an error or a drop, and parsing each such line alone
//!   gives the same points and the same error as in the body (nothing else is lost).
//!
//! CI runs a short run; the long run is
//! `FUZZ_SECONDS=3600 cargo test --release -p processor --test fuzz_write_body -- --ignored --nocapture`.

mod fuzz_support;

use base64::Engine as _;
use fuzz_support::{Budget, MAX_INPUT, run, string_literals};
use processor::line_protocol::{Parsed, Precision, parse_body_numbered};

const SENTINEL: &[u8] = b"fuzz_sentinel,k=v f=1i 1\n";
/// The server time given to lines without a timestamp.
const NOW: i64 = 1_700_000_000_123_456_789;

const PRECISIONS: [Precision; 6] = [
    Precision::Nanoseconds,
    Precision::Microseconds,
    Precision::Milliseconds,
    Precision::Seconds,
    Precision::Minutes,
    Precision::Hours,
];

const TOKENS: &[&[u8]] = &[
    b"\n",
    b" ",
    b",",
    b"=",
    b"\"",
    b"\\",
    b"\\ ",
    b"\\,",
    b"\\=",
    b"\\\"",
    b"\\\\",
    b"i",
    b"u",
    b"t",
    b"T",
    b"f",
    b"true",
    b"FALSE",
    b"1e309",
    b"-",
    b".",
    b".5",
    b"1.",
    b"e5",
    b"0x10",
    b"NaN",
    b"inf",
    b"9223372036854775807",
    b"9223372036854775808i",
    b"-9223372036854775808",
    b"18446744073709551616u",
    b"#",
    b"\t",
    b"\0",
    b"\r",
    b"\r\n",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"time",
    b" time=",
    b",time=",
    b"=\"",
    b"\" ",
    b" 1",
    b" -1",
    b" 1700000000000000000",
    b"m,t=1 v=1 1\n",
];

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![b"cpu,host=a value=1 1\n".to_vec()];
    if let Some(dir) = workspace_bins::corpora_dir() {
        let corpus: serde_json::Value = std::fs::read(dir.join("line-protocol/corpus.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let inputs = corpus["decode"]
            .as_object()
            .into_iter()
            .flat_map(|decode| decode.values());
        for entry in inputs {
            let text = &entry["input"]["text"];
            if let Some(text) = text.as_str() {
                seeds.push(text.as_bytes().to_vec());
            } else if let Some(bytes) = text["binary"]
                .as_str()
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            {
                seeds.push(bytes);
            }
        }
    }
    if let Some(dir) = workspace_bins::samples_dir() {
        seeds.extend(fuzz_support::files_in(&dir, ".lp"));
    }
    let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/");
    for file in [
        "src/line_protocol/tests.rs",
        "src/line_protocol/influx1.rs",
        "src/line_protocol/simple.rs",
        "tests/write_api.rs",
        "tests/write_api_fastpath.rs",
    ] {
        let source = std::fs::read_to_string(format!("{tests}{file}")).unwrap_or_default();
        seeds.extend(
            string_literals(&source)
                .into_iter()
                .filter(|s| s.contains('=') && s.len() <= MAX_INPUT)
                .map(String::into_bytes),
        );
    }
    seeds
}

/// A point as comparable text.
fn points_of(parsed: &Parsed) -> Vec<String> {
    parsed
        .batch
        .points()
        .map(|p| {
            let tags: Vec<_> = p.tags().collect();
            let fields: Vec<_> = p.fields().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!("{} {tags:?} {fields:?} {}", p.measurement(), p.time())
        })
        .collect()
}

fn parse(body: Vec<u8>, precision: Precision) -> (Parsed, Vec<usize>) {
    parse_body_numbered(body, "db".into(), "rp".into(), precision, NOW)
}

fn check(input: &[u8]) -> Result<bool, String> {
    let precision = PRECISIONS[input.len() % PRECISIONS.len()];
    let mut body = SENTINEL.to_vec();
    body.extend_from_slice(input);
    let last_line = body.iter().filter(|&&b| b == b'\n').count() + 1;
    let (parsed, numbers) = parse(body.clone(), precision);
    let points = points_of(&parsed);
    if numbers.len() != parsed.batch.len() {
        return Err(format!(
            "{} points but {} line numbers",
            parsed.batch.len(),
            numbers.len()
        ));
    }
    match (parsed.batch.point(0), numbers.first()) {
        (Some(first), Some(1)) if first.measurement() == "fuzz_sentinel" => {}
        _ => return Err(format!("the sentinel is not the first point: {points:?}")),
    }
    if numbers.windows(2).any(|w| w[0] > w[1]) {
        return Err(format!("point line numbers out of order: {numbers:?}"));
    }
    let mut previous = 0;
    for error in &parsed.errors {
        let n = error.line_number;
        if n <= previous || n > last_line || numbers.binary_search(&n).is_ok() {
            return Err(format!(
                "error on line {n} (previous {previous}, last {last_line}, point lines \
                 {numbers:?}): {error}"
            ));
        }
        previous = n;
        let text = error.to_string();
        if error.line.is_empty() || !text.starts_with("unable to parse '") {
            return Err(format!("error does not name its line: {text:?}"));
        }
    }
    for point in parsed.batch.points() {
        if point.measurement().is_empty() || point.fields().len() == 0 {
            return Err(format!("point without a name or fields: {points:?}"));
        }
    }
    if !input.contains(&b'"') && !input.contains(&b'\\') {
        let content: Vec<(usize, &[u8])> = body
            .split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, line)| {
                let start = line
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t' | 0))
                    .unwrap_or(line.len());
                (i + 1, line.get(start..).unwrap_or_default())
            })
            .filter(|(_, line)| !line.is_empty() && !line.starts_with(b"#"))
            .collect();
        let mut point_lines = numbers.clone();
        point_lines.dedup();
        let dropped = parsed.dropped.as_ref().map_or(0, |d| d.count);
        if point_lines.len() + parsed.errors.len() + dropped != content.len() {
            return Err(format!(
                "{} lines but {} with points, {} errors, {dropped} dropped",
                content.len(),
                point_lines.len(),
                parsed.errors.len()
            ));
        }
        if content.len() <= 32 {
            for (number, line) in content {
                let (alone, _) = parse(line.to_vec(), precision);
                let in_body: Vec<&String> = numbers
                    .iter()
                    .zip(&points)
                    .filter(|(n, _)| **n == number)
                    .map(|(_, p)| p)
                    .collect();
                let alone_points = points_of(&alone);
                let body_error = parsed.errors.iter().find(|e| e.line_number == number);
                if in_body != alone_points.iter().collect::<Vec<_>>()
                    || body_error.map(|e| &e.reason) != alone.errors.first().map(|e| &e.reason)
                {
                    return Err(format!(
                        "line {number} alone gives {alone_points:?} {:?}, in the body \
                         {in_body:?} {body_error:?}",
                        alone.errors
                    ));
                }
            }
        }
    }
    Ok(parsed.batch.len() > 1)
}

#[test]
fn a_few_thousand_mutated_bodies_parse_without_panic_and_lose_no_line() {
    let report = run("write-body", &seeds(), TOKENS, Budget::short(50_000), check);
    assert!(report.runs > 0 && report.accepted > 0, "{report:?}");
}

/// The long run: `FUZZ_SECONDS=3600 cargo test --release -p processor --test fuzz_write_body
/// -- --ignored --nocapture` (see the module doc for what it checks and where inputs go).
#[test]
#[ignore = "long-running fuzzer; run on demand (see its doc comment)"]
fn fuzz_parse_body_with_corpus_mutations() {
    let report = run("write-body", &seeds(), TOKENS, Budget::long(), check);
    assert!(report.runs > 0, "{report:?}");
}

#[test]
fn the_string_literal_reader_finds_plain_and_raw_strings() {
    let source = "let a = \"x=1\\n\"; let b = r#\"say \"hi\"\"#; let c = '\"'; \"\\\"q\"";
    assert_eq!(
        string_literals(source),
        vec![
            "x=1\n".to_owned(),
            "say \"hi\"".to_owned(),
            "\"q".to_owned()
        ]
    );
}
