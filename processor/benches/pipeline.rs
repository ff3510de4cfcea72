//! 1 M points through the tutorial's pipeline up to movingAverage (from, derivative, groupBy,
//! sum, movingAverage): 10 hosts, one point per host per second, written in batches of
//! 10 000 points. Run: `cargo bench -p processor --bench pipeline`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use processor::line_protocol::{Precision, parse_body};
use processor::pipeline::{Graph, Settings};
use processor::point::Batch;
use processor::tick::{VarOverrides, compile};

#[path = "../tests/pipeline_scenario/mod.rs"]
mod pipeline_scenario;

/// The scenario's script (the tutorial's pipeline up to the sum), then the moving average.
fn script() -> String {
    format!(
        "{}    |movingAverage('total_requests_per_second', 60)\n        .as('avg_requests_per_second')\n",
        pipeline_scenario::SUM_SCRIPT
    )
}

const HOSTS: i64 = 10;
const POINTS: i64 = 1_000_000;
const PER_BATCH: i64 = 10_000;

/// The first point's second (2023-11-14).
const T0: i64 = 1_700_000_000;

/// The processor clock when batch `i` arrives: just after its last point (points stamped
/// ahead of the clock are dropped, so the clock must be where the data is).
fn arrival_ns(i: usize) -> i64 {
    let seconds_per_batch = PER_BATCH / HOSTS;
    (T0 + (i as i64 + 1) * seconds_per_batch) * 1_000_000_000 + 2_000_000
}

fn batches() -> Vec<Batch> {
    let t0 = T0;
    let mut out = Vec::new();
    let mut body = String::new();
    for i in 0..POINTS {
        let second = i / HOSTS;
        let host = i % HOSTS;
        body.push_str(&format!(
            "requests,deployment=app,host=app-{host},url=http://10.0.0.{host}:8000/metrics counter={} {}\n",
            second * (100 + host),
            (t0 + second) * 1_000_000_000 + 1_000_000
        ));
        if (i + 1) % PER_BATCH == 0 {
            let parsed = parse_body(
                std::mem::take(&mut body).into_bytes(),
                "autoscale".into(),
                "autogen".into(),
                Precision::Nanoseconds,
                0,
            );
            out.push(parsed.batch);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let batches = batches();
    let pipeline = compile(&script(), &VarOverrides::new()).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(POINTS as u64));
    group.sample_size(10);
    group.bench_function("tutorial_to_moving_average_1m_points", |b| {
        b.iter_batched(
            || {
                Graph::new("bench", &pipeline, Settings::default())
                    .unwrap_or_else(|e| panic!("{e}"))
            },
            |mut graph| {
                let mut effects = Vec::new();
                for (i, batch) in batches.iter().enumerate() {
                    graph.write(batch.points(), arrival_ns(i), &mut effects);
                }
                let stats = graph.stats();
                black_box(stats.last().map(|s| s.emitted));
                graph
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    // Show that the pipeline really emitted (not a no-op measurement).
    let mut graph =
        Graph::new("bench", &pipeline, Settings::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut effects = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        graph.write(batch.points(), arrival_ns(i), &mut effects);
    }
    for stats in graph.stats() {
        println!(
            "{}: collected {} emitted {}",
            stats.name, stats.collected, stats.emitted
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
