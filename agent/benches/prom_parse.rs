//! Parser throughput on real scrapes: `cargo bench -p agent --bench prom_parse`.
//! Reference: Go's expfmt text parser does 67–72 MB/s on node_exporter_metrics.txt here.

use std::hint::black_box;

use agent::prom::{self, Format};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn inputs() -> Vec<(String, String, Format)> {
    let mut inputs = Vec::new();
    if let Some(samples) = workspace_bins::samples_dir() {
        let path = samples.join("node_exporter_metrics.txt");
        if let Ok(text) = std::fs::read_to_string(&path) {
            inputs.push(("node_exporter_metrics.txt".to_owned(), text, Format::Text));
        }
    }
    if let Some(corpora) = workspace_bins::corpora_dir() {
        let path = corpora.join("prometheus-text/samples/textparse_alltypes.237mfs.prom.txt");
        if let Ok(text) = std::fs::read_to_string(&path) {
            inputs.push((
                "textparse_alltypes.237mfs.prom.txt".to_owned(),
                text.clone(),
                Format::Text,
            ));
            // The same families as OpenMetrics (rendered by our renderer), for the other parser.
            if let Ok(families) = prom::parse(&text, Format::Text) {
                let openmetrics = prom::render(&families, Format::OpenMetrics);
                if prom::parse(&openmetrics, Format::OpenMetrics).is_ok() {
                    inputs.push((
                        "textparse_alltypes.237mfs.openmetrics".to_owned(),
                        openmetrics,
                        Format::OpenMetrics,
                    ));
                }
            }
        }
    }
    inputs
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("prom_parse");
    for (name, text, format) in inputs() {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| prom::parse(black_box(&text), format).map(|families| families.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
