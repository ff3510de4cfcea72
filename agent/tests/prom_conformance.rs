//! Conformance of the exposition parser against the shared corpora (read at test time from
//! `../shared`, never copied): the OpenMetrics parser suite (211 cases with a `shouldParse`
//! verdict), the Go expfmt fuzz corpus (26 inputs), and real scrapes with exact sample counts.

use std::fs;
use std::path::Path;

use agent::prom::{self, Format, MetricFamily, MetricType, Value};

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Sample lines (series) in an exposition as a plain count: lines that are neither blank nor
/// comments.
fn sample_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count()
}

fn series(families: &[MetricFamily<'_>]) -> usize {
    families.iter().map(MetricFamily::series_count).sum()
}

#[test]
fn every_openmetrics_verdict_matches_the_reference() {
    let Some(corpora) = workspace_bins::corpora_dir() else {
        return;
    };
    let cases = corpora.join("openmetrics/parsers");
    let mut entries: Vec<_> = fs::read_dir(&cases)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", cases.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap();
    entries.sort();
    let (mut good, mut bad, mut mismatches) = (0, 0, Vec::new());
    for case in &entries {
        let spec: serde_json::Value = serde_json::from_str(&read(&case.join("test.json"))).unwrap();
        assert_eq!(spec["type"], "text", "{}", case.display());
        let should_parse = spec["shouldParse"].as_bool().unwrap();
        let file = spec["file"].as_str().unwrap();
        let input = fs::read(case.join(file)).unwrap();
        let result = prom::parse_bytes(&input, Format::OpenMetrics);
        if should_parse {
            good += 1;
        } else {
            bad += 1;
        }
        if result.is_ok() != should_parse {
            let name = case.file_name().unwrap().to_string_lossy().into_owned();
            mismatches.push(format!(
                "{name}: expected shouldParse={should_parse}, got {result:?}"
            ));
        }
    }
    assert_eq!((good, bad), (44, 167), "the suite has 211 cases");
    assert!(
        mismatches.is_empty(),
        "{} of 211 verdicts differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_expfmt_fuzz_corpus_verdict_matches_go() {
    let Some(corpora) = workspace_bins::corpora_dir() else {
        return;
    };
    let dir = corpora.join("prometheus-text/expfmt-fuzz-corpus");
    let mut count = 0;
    let mut mismatches = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let should_parse = !name.starts_with("from_test_parse_error_");
        let input = fs::read(&path).unwrap();
        let result = prom::parse_bytes(&input, Format::Text);
        count += 1;
        if result.is_ok() != should_parse {
            mismatches.push(format!(
                "{name}: expected ok={should_parse}, got {result:?}"
            ));
        }
    }
    assert_eq!(count, 26);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn expfmt_corpus_samples_parse_into_go_families() {
    let Some(corpora) = workspace_bins::corpora_dir() else {
        return;
    };
    let dir = corpora.join("prometheus-text/expfmt-fuzz-corpus");
    // from_test_parse_3: summaries merged by label set in any order, spread over the input.
    let input = read(&dir.join("from_test_parse_3"));
    let families = prom::parse(&input, Format::Text).unwrap();
    let names: Vec<_> = families.iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        ["my_summary", "decoy", "fake_sum", "another_summary"]
    );
    let my_summary = &families[0];
    assert_eq!(my_summary.metrics.len(), 4);
    let Value::Summary {
        quantiles,
        sum,
        count,
        ..
    } = &my_summary.metrics[0].value
    else {
        panic!("not a summary: {my_summary:?}");
    };
    assert_eq!(quantiles.len(), 2);
    assert_eq!((*sum, *count), (Some(4711.0), Some(42.0)));
    // "Latest timestamp wins in case of a summary."
    assert_eq!(
        my_summary.metrics[0].timestamp,
        Some(prom::Timestamp::Millis(2))
    );
    // {n2="val2",n1="val1"} and {n1="val1",n2="val2"} are one group.
    let Value::Summary {
        quantiles, count, ..
    } = &my_summary.metrics[1].value
    else {
        panic!("not a summary");
    };
    assert_eq!((quantiles.len(), *count), (1, Some(5.0)));
}

/// Parses a sample file and returns its families, checking the series count against a plain
/// count of its sample lines.
fn parse_sample<'a>(
    text: &'a str,
    format: Format,
    expected_series: usize,
) -> Vec<MetricFamily<'a>> {
    let families = prom::parse(text, format).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sample_lines(text),
        expected_series,
        "sample lines in the file"
    );
    assert_eq!(series(&families), expected_series, "series in the parse");
    families
}

#[test]
fn node_exporter_scrape_has_507_samples_in_283_families() {
    let Some(samples) = workspace_bins::samples_dir() else {
        return;
    };
    let text = read(&samples.join("node_exporter_metrics.txt"));
    let families = parse_sample(&text, Format::Text, 507);
    assert_eq!(families.len(), 283);
    let count = |t: MetricType| families.iter().filter(|f| f.metric_type == t).count();
    assert_eq!(
        [
            count(MetricType::Counter),
            count(MetricType::Gauge),
            count(MetricType::Summary),
            count(MetricType::Untyped)
        ],
        [60, 175, 1, 47]
    );
}

/// The "1,857 series" of the upstream benchmark input: every sample line (each bucket, quantile,
/// `_sum` and `_count` line counts once; none repeats a name and label set) in 237 families.
/// `series_count` counts them from the parsed structure; a plain count of the file's non-comment
/// lines gives the same number, and the no-metadata twin parses to the same count.
#[test]
fn textparse_alltypes_has_1857_series_in_237_families() {
    let Some(corpora) = workspace_bins::corpora_dir() else {
        return;
    };
    let dir = corpora.join("prometheus-text/samples");
    let text = read(&dir.join("textparse_alltypes.237mfs.prom.txt"));
    let families = parse_sample(&text, Format::Text, 1857);
    assert_eq!(families.len(), 237);
    let histograms = families
        .iter()
        .filter(|f| f.metric_type == MetricType::Histogram)
        .count();
    assert_eq!(histograms, 15);

    // Without TYPE lines every sample line is its own untyped metric; `# EOF` is a comment.
    let nometa = read(&dir.join("textparse_alltypes.237mfs.nometa.prom.txt"));
    let families = parse_sample(&nometa, Format::Text, 1857);
    assert!(
        families
            .iter()
            .all(|f| f.metric_type == MetricType::Untyped)
    );
    assert_eq!(
        families.iter().map(|f| f.metrics.len()).sum::<usize>(),
        1857
    );
}

#[test]
fn expfmt_testdata_text_parses_with_every_sample() {
    let Some(corpora) = workspace_bins::corpora_dir() else {
        return;
    };
    let text = read(&corpora.join("prometheus-text/samples/expfmt_testdata_text.prom.txt"));
    let families = parse_sample(&text, Format::Text, 248);
    assert_eq!(families.len(), 37);
}

#[test]
fn prometheus_and_python_scrapes_parse_with_every_sample() {
    let Some(samples) = workspace_bins::samples_dir() else {
        return;
    };
    let text = read(&samples.join("prometheus_self_metrics.txt"));
    let families = parse_sample(&text, Format::Text, 475);
    let histograms = families
        .iter()
        .filter(|f| f.metric_type == MetricType::Histogram)
        .count();
    assert_eq!(histograms, 7);

    let text = read(&samples.join("python_app_metrics.txt"));
    let families = parse_sample(&text, Format::Text, 18);
    let names: Vec<_> = families.iter().map(|f| f.name).collect();
    assert!(names.contains(&"requests_total") && names.contains(&"requests_created"));

    let text = read(&samples.join("python_app_metrics.openmetrics.txt"));
    let families = parse_sample(&text, Format::OpenMetrics, 18);
    let requests = families.iter().find(|f| f.name == "requests").unwrap();
    assert_eq!(requests.metric_type, MetricType::Counter);
    assert_eq!(
        requests.metrics[0].value,
        Value::Counter {
            total: Some(3.0),
            created: Some(1.7958818395618002e9),
            exemplar: None
        }
    );
}

/// A live scrape of the real node_exporter (started on a free loopback port) parses, with as
/// many series as the body has sample lines.
#[test]
fn a_live_node_exporter_scrape_parses_completely() {
    let Some(exporter) = workspace_bins::peers::NodeExporter::start() else {
        return;
    };
    let (status, body) = workspace_bins::peers::http(exporter.addr, "GET", "/metrics", "");
    assert_eq!(status, 200);
    let families = prom::parse(&body, Format::Text).unwrap_or_else(|e| panic!("{e}"));
    assert!(families.len() > 50, "{} families", families.len());
    assert_eq!(series(&families), sample_lines(&body));
}
