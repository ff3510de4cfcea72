//! Sizes a task asks for are bounded when it is defined: a script can neither make the
//! processor allocate without bound nor overflow its stack on the first point.

use processor::line_protocol::{Precision, parse_body};
use processor::pipeline::{Graph, Settings};
use processor::tick::bind::MAX_CHAIN_DEPTH;
use processor::tick::value::parse_vars_json;
use processor::tick::{VarOverrides, compile};

fn tutorial() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tick/autoscale.tick"
    );
    std::fs::read_to_string(path).expect("fixture autoscale.tick")
}

#[test]
fn a_moving_average_count_that_would_exhaust_memory_is_refused_at_define() {
    for count in ["1000000000000", "9223372036854775807"] {
        let vars = format!(r#"{{"moving_avg_count": {{"type": "int", "value": {count}}}}}"#);
        let vars = parse_vars_json(&vars).unwrap();
        let error = compile(&tutorial(), &vars).unwrap_err().to_string();
        assert!(error.contains("must be from 1 to 1000000"), "{error}");
        let script = format!("stream\n    |from()\n    |movingAverage('v', {count})\n");
        let error = compile(&script, &VarOverrides::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("must be from 1 to 1000000"), "{error}");
    }
    let vars = parse_vars_json(r#"{"moving_avg_count": {"type": "int", "value": 1000000}}"#);
    assert!(compile(&tutorial(), &vars.unwrap()).is_ok());
}

#[test]
fn an_influxdb_out_buffer_beyond_the_bound_is_refused_at_define() {
    let script =
        "stream\n    |from()\n    |influxDBOut().database('d').buffer(9223372036854775807)\n";
    let error = compile(script, &VarOverrides::new())
        .unwrap_err()
        .to_string();
    assert!(error.contains("from 1 to 1000000"), "{error}");
}

fn chain_of_wheres(n: usize) -> String {
    let mut script = String::from("stream\n    |from()\n");
    for _ in 0..n {
        script.push_str("    |where(lambda: TRUE)\n");
    }
    script
}

#[test]
fn a_chain_longer_than_the_limit_is_refused_at_define() {
    for n in [MAX_CHAIN_DEPTH, 20_000] {
        let error = compile(&chain_of_wheres(n), &VarOverrides::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("longer than {MAX_CHAIN_DEPTH} nodes")),
            "{error}"
        );
    }
}

#[test]
fn a_chain_at_the_limit_carries_a_point_on_a_small_stack() {
    // from1 is the first node after stream: MAX_CHAIN_DEPTH - 1 wheres reach the limit.
    let pipeline = compile(&chain_of_wheres(MAX_CHAIN_DEPTH - 1), &VarOverrides::new()).unwrap();
    // Tokio's worker threads have 2 MiB stacks; a debug build's frames are the largest.
    let run = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let mut graph = Graph::new("deep", &pipeline, Settings::default()).unwrap();
            let parsed = parse_body(
                b"m v=1 1".to_vec(),
                "db".into(),
                "rp".into(),
                Precision::Nanoseconds,
                1,
            );
            let mut effects = Vec::new();
            graph.write(parsed.batch.points(), 1, &mut effects);
            let stats = graph.stats();
            stats.last().map(|s| s.collected)
        })
        .unwrap();
    assert_eq!(run.join().unwrap(), Some(1));
}

#[test]
fn a_script_with_120000_vars_binds_every_var_in_order() {
    // 120,000 vars took 26 s when each declaration scanned the ones before it. Printed, not
    // asserted: the machine's speed is not the code's.
    let mut script = String::new();
    for i in 0..120_000 {
        script.push_str(&format!("var v{i} = {i}\n"));
    }
    script.push_str("stream\n    |from()\n    |where(lambda: \"x\" > v119999)\n");
    let started = std::time::Instant::now();
    let pipeline = compile(&script, &VarOverrides::new()).unwrap();
    println!(
        "120,000 vars compiled in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(pipeline.vars.len(), 120_000);
    assert_eq!(
        pipeline.vars.last().map(|(n, _)| n.as_str()),
        Some("v119999")
    );
}
