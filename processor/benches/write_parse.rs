//! Parsing cost per line, without HTTP: `parse_body` on a 5,000-line Telegraf-like batch (these
//! lines are simple, so it takes the one-pass fast path), and the two halves of the full path
//! that other lines take (InfluxDB 1.x's scanner, the crate's parser).
//!
//! `cargo bench -p processor --bench write_parse`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use processor::line_protocol::{Precision, influx1, parse_body};

fn batch() -> String {
    let mut body = String::new();
    for i in 0..5_000u64 {
        let host = format!("app-{}", i % 20);
        let ts = 1_700_000_000_000_000_000u64 + i * 1_000;
        match i % 4 {
            0 => body.push_str(&format!(
                "cpu,cpu=cpu{},host={host} usage_guest=0,usage_idle={}.25,usage_iowait=0.1,usage_irq=0,usage_system=1.2,usage_user=1.1 {ts}\n",
                i % 8,
                90 + i % 9
            )),
            1 => body.push_str(&format!(
                "mem,host={host} active=1234567i,available=7654321i,available_percent=61.2,free=1111111i,used=2222222i,used_percent=38.8 {ts}\n"
            )),
            2 => body.push_str(&format!(
                "net,host={host},interface=eth0 bytes_recv={}i,bytes_sent={}i,packets_recv=12345i,packets_sent=23456i,err_in=0i,err_out=0i {ts}\n",
                i * 1000,
                i * 700
            )),
            _ => body.push_str(&format!(
                "requests,deployment=app,host={host},url=http://10.0.0.{}:8000/metrics counter={}i {ts}\n",
                i % 250,
                i * 3
            )),
        }
    }
    body
}

fn parse(c: &mut Criterion) {
    let body = batch();
    let mut group = c.benchmark_group("write_parse");
    group.throughput(Throughput::Elements(5_000));
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
