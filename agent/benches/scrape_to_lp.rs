//! One node_exporter page from bytes to line protocol, as the agent does per scrape: parse,
//! convert (metric_version 1), apply the input's rules and serialise every metric into the
//! output buffer's lines. `cargo bench -p agent --bench scrape_to_lp`. Goal: <= 0.3 ms per page
//! (Go's parser alone takes 0.8 ms on it here). `node_exporter_page` is the agent's streaming
//! path (`convert::convert_streaming`); `node_exporter_page_whole` the page parsed whole first
//! (`prom::parse_bytes` then `convert::convert`), as the agent did before.

use std::hint::black_box;

use agent::config::Config;
use agent::convert::{self, Mapping};
use agent::line_protocol::{self, Options};
use agent::prom::{self, Format, Streamed};
use agent::transform::Transform;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn scrape_to_lp(c: &mut Criterion) {
    let Some(samples) = workspace_bins::samples_dir() else {
        return;
    };
    let page = std::fs::read(samples.join("node_exporter_metrics.txt")).expect("sample");
    let config = Config::parse(
        "[agent]\ninterval = \"1s\"\n[[inputs.prometheus]]\nurls = [\"http://localhost:9100/metrics\"]\n[[outputs.file]]\n",
        |_| None,
    )
    .expect("config");
    let transform = Transform::new(
        &config.agent,
        &config.inputs[0],
        "http://localhost:9100/metrics",
        &[("host".to_owned(), "node-1".to_owned())],
    );
    let mapping = Mapping {
        metric_version: 1,
        ignore_timestamp: false,
    };
    let mut group = c.benchmark_group("scrape_to_lp");
    group.throughput(Throughput::Bytes(page.len() as u64));
    group.bench_function("node_exporter_page", |b| {
        let mut line = String::with_capacity(256);
        b.iter(|| {
            let mut lines: Vec<Box<str>> = Vec::with_capacity(512);
            let ended = convert::convert_streaming(
                black_box(&page),
                Format::Text,
                mapping,
                1_700_000_000_000_000_000,
                |metric| {
                    if transform.apply(metric) {
                        line.clear();
                        if line_protocol::write_metric(&mut line, metric, Options::default())
                            .is_ok()
                        {
                            lines.push(line.as_str().into());
                        }
                    }
                },
            )
            .expect("parses");
            assert_eq!(ended, Streamed::Complete);
            lines.len()
        })
    });
    group.bench_function("node_exporter_page_whole", |b| {
        let mut line = String::with_capacity(256);
        b.iter(|| {
            let families = prom::parse_bytes(black_box(&page), Format::Text).expect("parses");
            let mut lines: Vec<Box<str>> = Vec::with_capacity(512);
            convert::convert(
                &families,
                Format::Text,
                mapping,
                1_700_000_000_000_000_000,
                |metric| {
                    if transform.apply(metric) {
                        line.clear();
                        if line_protocol::write_metric(&mut line, metric, Options::default())
                            .is_ok()
                        {
                            lines.push(line.as_str().into());
                        }
                    }
                },
            );
            lines.len()
        })
    });
    group.finish();
}

criterion_group!(benches, scrape_to_lp);
criterion_main!(benches);
