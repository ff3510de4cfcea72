//! Fuzzing the TICKscript compiler (`tick::compile`: lexer, parser, bind) on the stable
//! toolchain: mutations of the repository's `.tick` files and of the TICKscript literals of
//! the processor's tests.
//!
//! Invariants checked on every input:
//! - no panic and no stack overflow (the check runs on a thread with a 2 MiB stack, as tokio's
//!   workers, where the task API compiles);
//! - compile answers `Ok`, or an error that carries a line and a column inside the script
//!   (only "defines no pipeline" has none: it is about the whole script);
//! - what compiles also renders its DOT graph, gives its subscriptions, builds a running graph
//!   and takes three points without panicking;
//! - (long runs) no input takes longer than `FUZZ_HANG_MS`.
//!
//! CI runs a short run; the long run is
//! `FUZZ_SECONDS=3600 cargo test --release -p processor --test fuzz_tick -- --ignored --nocapture`.

mod fuzz_support;

use fuzz_support::{Budget, run, string_literals};
use processor::line_protocol::{Precision, parse_body};
use processor::pipeline::{Graph, Settings};
use processor::tick::{Dbrp, Error, VarOverrides, compile};

const TOKENS: &[&[u8]] = &[
    b"stream",
    b"batch",
    b"\n    |",
    b"|",
    b".",
    b"@",
    b"(",
    b")",
    b"()",
    b"[",
    b"]",
    b",",
    b"var ",
    b"var x = ",
    b" = ",
    b"1",
    b"-1",
    b"2.5",
    b"1e400",
    b"9223372036854775808",
    b"1s",
    b"100ms",
    b"0s",
    b"1u",
    b"'s'",
    b"'''t'''",
    b"'",
    b"\"f\"",
    b"\"",
    b"/re/",
    b"/(/",
    b"*",
    b"lambda: ",
    b"+",
    b"-",
    b"/",
    b"%",
    b"==",
    b"!=",
    b"<",
    b">=",
    b"=~",
    b"!~",
    b"!",
    b" AND ",
    b" OR ",
    b"TRUE",
    b"FALSE",
    b"int(",
    b"float(",
    b"ceil(",
    b"abs(",
    b"if(",
    b"isPresent(",
    b"\n",
    b" ",
    b"\t",
    b"// c\n",
    b"from()",
    b"derivative('v')",
    b"sum('v')",
    b"movingAverage('v', 3)",
    b"k8sAutoscale()",
    b"eval(lambda: 1)",
    b"where(lambda: TRUE)",
    b"groupBy(*)",
    b"window()",
    b".as('x')",
    b".unit(1s)",
    b".replicas(lambda: 1)",
    b"dbrp ",
    b"\"db\".\"rp\"",
    b"\xc2\xb5",
    b"\xff",
    b"((((((((((",
    b"))))))))))",
    b"----------",
    b"!!!!!!!!!!",
];

fn seeds() -> Vec<Vec<u8>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
    let mut seeds = vec![b"stream\n    |from()\n".to_vec()];
    for dir in ["examples", "tests/fixtures/tick"] {
        seeds.extend(fuzz_support::files_in(
            std::path::Path::new(&format!("{root}{dir}")),
            ".tick",
        ));
    }
    let mut sources = vec![
        "tests/tick_errors.rs".to_owned(),
        "tests/tick_limits.rs".to_owned(),
        "tests/tick_tutorial.rs".to_owned(),
        "tests/tick_proptest.rs".to_owned(),
    ];
    for dir in ["src/tick", "src/tick/lambda", "src/tick/nodes"] {
        if let Ok(entries) = std::fs::read_dir(format!("{root}{dir}")) {
            let mut names: Vec<_> = entries
                .flatten()
                .map(|e| e.path().display().to_string())
                .filter(|p| p.ends_with(".rs"))
                .collect();
            names.sort();
            sources.extend(names);
        }
    }
    for file in sources {
        let path = if file.starts_with('/') {
            file
        } else {
            format!("{root}{file}")
        };
        let source = std::fs::read_to_string(path).unwrap_or_default();
        seeds.extend(
            string_literals(&source)
                .into_iter()
                .filter(|s| {
                    s.contains("stream")
                        || s.contains("lambda")
                        || s.contains("var ")
                        || s.contains('|')
                })
                .map(String::into_bytes),
        );
    }
    seeds
}

fn compile_and_run(script: &str) -> Result<bool, String> {
    let pipeline = match compile(script, &VarOverrides::new()) {
        Ok(pipeline) => pipeline,
        Err(Error::Empty) => return Ok(false),
        Err(error) => {
            let Some(location) = error.location() else {
                return Err(format!("an error without a location: {error}"));
            };
            let lines = script.split('\n').count();
            let line_text = script
                .split('\n')
                .nth(location.line as usize - 1)
                .unwrap_or("");
            let columns = line_text.chars().count() + 1;
            if location.line == 0
                || location.line as usize > lines
                || location.column == 0
                || location.column as usize > columns
            {
                return Err(format!(
                    "location {location} outside the script ({lines} lines, {columns} \
                     columns on that line): {error}"
                ));
            }
            return Ok(false);
        }
    };
    let _ = pipeline.dot("fuzz");
    let _ = pipeline.subscription_keys(&[Dbrp {
        database: "telegraf".into(),
        retention_policy: "autogen".into(),
    }]);
    if let Ok(mut graph) = Graph::new("fuzz", &pipeline, Settings::default()) {
        let mut effects = Vec::new();
        for (i, body) in [
            "requests,host=a,deployment=app counter=1,value=1i 1000000000",
            "requests,host=b,deployment=app counter=5,value=2i 2000000000",
            "requests,host=a,deployment=app counter=9,value=3i 60000000000",
        ]
        .into_iter()
        .enumerate()
        {
            let parsed = parse_body(
                body.as_bytes().to_vec(),
                "telegraf".into(),
                "autogen".into(),
                Precision::Nanoseconds,
                0,
            );
            let now = (i as i64 + 1) * 30_000_000_000;
            graph.write(parsed.batch.points(), now, &mut effects);
        }
        let _ = graph.stats();
    }
    Ok(true)
}

/// Compiles on a 2 MiB stack (tokio's workers'), so deep recursion shows here as it would
/// in the processor; a panic is carried back to the fuzzer.
fn check(input: &[u8]) -> Result<bool, String> {
    let Ok(script) = std::str::from_utf8(input) else {
        // The task API and the loader take text; not UTF-8 never reaches compile.
        return Ok(false);
    };
    let script = script.to_owned();
    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || compile_and_run(&script))
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    match worker.join() {
        Ok(outcome) => outcome,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[test]
fn a_few_thousand_mutated_scripts_compile_or_fail_with_a_location() {
    let report = run("tick", &seeds(), TOKENS, Budget::short(15_000), check);
    assert!(report.runs > 0 && report.accepted > 0, "{report:?}");
}

/// The long run: `FUZZ_SECONDS=3600 cargo test --release -p processor --test fuzz_tick --
/// --ignored --nocapture` (see the module doc for what it checks and where inputs go).
#[test]
#[ignore = "long-running fuzzer; run on demand (see its doc comment)"]
fn fuzz_compile_with_script_mutations() {
    let report = run("tick", &seeds(), TOKENS, Budget::long(), check);
    assert!(report.runs > 0, "{report:?}");
}
