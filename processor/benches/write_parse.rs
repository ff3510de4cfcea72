//! Parsing cost per line, without HTTP: `parse_body` on a 5,000-line Telegraf-like batch (these
//! lines are simple, so it takes the one-pass fast path), and the two halves of the full path
//! that other lines take (InfluxDB 1.x's scanner, the crate's parser).
//!
//! `cargo bench -p processor --bench write_parse`

mod telegraf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use processor::line_protocol::{Precision, influx1, parse_body};

fn parse(c: &mut Criterion) {
    let body = telegraf::telegraf_batch(1_700_000_000_000_000_000);
    let mut group = c.benchmark_group("write_parse");
    group.throughput(Throughput::Elements(telegraf::LINES as u64));
    group.bench_function("parse_body", |b| {
        b.iter(|| {
            parse_body(
                body.as_bytes().to_vec(),
                "db".into(),
                "autogen".into(),
                Precision::Nanoseconds,
                0,
            )
        })
    });
    group.bench_function("influx1_check", |b| {
        b.iter(|| {
            body.lines()
                .filter(|l| influx1::check(l.as_bytes()).is_ok())
                .count()
        })
    });
    group.bench_function("crate_parse_lines", |b| {
        b.iter(|| {
            influxdb_line_protocol::parse_lines(&body)
                .filter(Result::is_ok)
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
