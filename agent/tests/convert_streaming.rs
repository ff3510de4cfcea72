//! The streaming conversion the agent runs on every scrape (`convert::convert_streaming`, with
//! the whole-page conversion when a text page is out of order for it) gives exactly what the
//! whole-page path (`prom::parse_bytes` then `convert::convert`) gives: the same lines in the
//! same order, or the same error, on every corpus file and sample in both formats and both
//! metric versions, on pages big enough to be handed out in several chunks, and on generated
//! pages whose families and groups are split up.

use std::path::{Path, PathBuf};

use agent::convert::{self, Mapping};
use agent::line_protocol::{self, Options};
use agent::prom::{self, Format, Streamed};
use proptest::prelude::*;

const TIME: i64 = 1_700_000_000_000_000_000;

fn mapping(metric_version: u8) -> Mapping {
    Mapping {
        metric_version,
        ignore_timestamp: false,
    }
}

fn line(metric: &agent::metric::Metric<'_>, out: &mut Vec<String>) {
    let mut line = String::new();
    if line_protocol::write_metric(&mut line, metric, Options::default()).is_ok() {
        out.push(line);
    }
}

/// The whole-page path: every line, or the parse error.
fn whole(body: &[u8], format: Format, metric_version: u8) -> Result<Vec<String>, String> {
    let families = prom::parse_bytes(body, format).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    convert::convert(&families, format, mapping(metric_version), TIME, |m| {
        line(m, &mut out)
    });
    Ok(out)
}

/// The streaming path alone: how it ended and what it emitted.
fn streamed(
    body: &[u8],
    format: Format,
    metric_version: u8,
) -> Result<(Streamed, Vec<String>), String> {
    let mut out = Vec::new();
    let ended = convert::convert_streaming(body, format, mapping(metric_version), TIME, |m| {
        line(m, &mut out)
    })
    .map_err(|e| e.to_string())?;
    Ok((ended, out))
}

/// What the agent keeps of a page: the streamed lines, or the whole-page result when the page
/// was out of order for streaming. Returns whether it streamed.
fn agent_result(
    body: &[u8],
    format: Format,
    metric_version: u8,
) -> (Result<Vec<String>, String>, bool) {
    match streamed(body, format, metric_version) {
        Ok((Streamed::Complete, lines)) => (Ok(lines), true),
        Ok((Streamed::OutOfOrder, _)) => (whole(body, format, metric_version), false),
        Err(error) => (Err(error), true),
    }
}

/// Compares both paths on `body`; returns whether the page streamed.
fn same_on(body: &[u8], what: &str) -> (usize, usize) {
    let mut streamed_pages = 0;
    let mut pages = 0;
    for format in [Format::Text, Format::OpenMetrics] {
        for metric_version in [1, 2] {
            let (result, streamed) = agent_result(body, format, metric_version);
            let expected = whole(body, format, metric_version);
            assert_eq!(
                result, expected,
                "{what} ({format:?}, metric_version {metric_version})"
            );
            pages += 1;
            streamed_pages += usize::from(streamed);
        }
    }
    (streamed_pages, pages)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.extension().is_none_or(|e| e != "json") {
            out.push(path);
        }
    }
}

#[test]
fn streaming_matches_the_whole_page_on_every_corpus_file_and_sample() {
    let (Some(corpora), Some(samples)) =
        (workspace_bins::corpora_dir(), workspace_bins::samples_dir())
    else {
        return;
    };
    let mut files = Vec::new();
    files_under(&corpora.join("openmetrics"), &mut files);
    files_under(&corpora.join("prometheus-text"), &mut files);
    files_under(&samples, &mut files);
    assert!(files.len() > 100, "the corpora hold {} files", files.len());
    let (mut streamed, mut pages) = (0, 0);
    for file in &files {
        let body = std::fs::read(file).unwrap();
        let (s, p) = same_on(&body, &file.display().to_string());
        streamed += s;
        pages += p;
    }
    println!(
        "{} files, {pages} conversions, {streamed} streamed, {} converted whole",
        files.len(),
        pages - streamed
    );
    // The fallback is for odd pages: almost every page streams.
    assert!(streamed * 10 > pages * 9, "{streamed} of {pages} streamed");
}

/// A page of `n` series per family type, written as text or OpenMetrics.
fn big_page(n: usize, openmetrics: bool) -> String {
    let mut page = String::new();
    let total = if openmetrics { "_total" } else { "" };
    page.push_str("# TYPE c counter\n");
    for i in 0..n {
        page.push_str(&format!("c{total}{{i=\"{i}\",e=\"a\\\\b\"}} {i}\n"));
    }
    page.push_str("# TYPE g gauge\n");
    for i in 0..n {
        page.push_str(&format!("g{{i=\"{i}\"}} {}.5 {}\n", i, 1_600_000_000 + i));
    }
    page.push_str("# TYPE s summary\n");
    for i in 0..n {
        page.push_str(&format!(
            "s{{i=\"{i}\",quantile=\"0.5\"}} 1\ns{{i=\"{i}\",quantile=\"0.9\"}} 2\ns_sum{{i=\"{i}\"}} 3\ns_count{{i=\"{i}\"}} 4\n"
        ));
    }
    page.push_str("# TYPE h histogram\n");
    for i in 0..n {
        page.push_str(&format!(
            "h_bucket{{i=\"{i}\",le=\"1\"}} 1\nh_bucket{{i=\"{i}\",le=\"+Inf\"}} 2\nh_sum{{i=\"{i}\"}} 3\nh_count{{i=\"{i}\"}} 2\n"
        ));
    }
    if openmetrics {
        page.push_str("# EOF\n");
    }
    page
}

#[test]
fn pages_handed_out_in_many_chunks_match_the_whole_page() {
    for n in [
        prom::STREAM_CHUNK - 1,
        prom::STREAM_CHUNK,
        prom::STREAM_CHUNK + 1,
        1000,
    ] {
        for openmetrics in [false, true] {
            let page = big_page(n, openmetrics);
            let format = if openmetrics {
                Format::OpenMetrics
            } else {
                Format::Text
            };
            for metric_version in [1, 2] {
                let (ended, lines) = streamed(page.as_bytes(), format, metric_version).unwrap();
                assert_eq!(ended, Streamed::Complete, "{n} series, {format:?}");
                let expected = whole(page.as_bytes(), format, metric_version).unwrap();
                assert!(expected.len() >= 4 * n);
                assert_eq!(lines, expected, "{n} series, {format:?}, v{metric_version}");
            }
        }
    }
}

#[test]
fn a_text_page_with_split_families_or_groups_is_converted_whole() {
    let split = [
        // A family's samples around another family's.
        "a 1\nb 2\na 3\n",
        // A family announced first, sampled after a later one.
        "# TYPE a gauge\n# TYPE b gauge\nb 1\na 2\n",
        // A histogram group written in two pieces.
        "# TYPE h histogram\nh_bucket{x=\"1\",le=\"1\"} 1\nh_bucket{x=\"2\",le=\"1\"} 1\nh_count{x=\"1\"} 1\n",
    ];
    for page in split {
        let (ended, _) = streamed(page.as_bytes(), Format::Text, 1).unwrap();
        assert_eq!(ended, Streamed::OutOfOrder, "{page:?}");
        same_on(page.as_bytes(), page);
    }
}

#[test]
fn an_error_late_in_a_page_is_the_same_error_and_nothing_is_kept() {
    let mut page = big_page(600, false);
    page.push_str("broken{ 1\n");
    let streamed = streamed(page.as_bytes(), Format::Text, 1);
    let whole = whole(page.as_bytes(), Format::Text, 1);
    assert!(whole.is_err());
    assert_eq!(streamed.map(|(_, lines)| lines), whole);
}

/// Lines of a few families, in any order: split families, split groups, repeated TYPE lines,
/// names that are suffixes of others.
fn shuffled_page() -> impl Strategy<Value = String> {
    let line = prop::sample::select(vec![
        "# TYPE a gauge\n",
        "# TYPE h histogram\n",
        "# TYPE s summary\n",
        "# HELP a help\n",
        "a 1\n",
        "a{x=\"1\"} 2\n",
        "b 3 1600000000000\n",
        "h_bucket{le=\"1\"} 1\n",
        "h_bucket{x=\"1\",le=\"+Inf\"} 2\n",
        "h_sum 3\n",
        "h_count{x=\"1\"} 2\n",
        "s{quantile=\"0.5\"} 1\n",
        "s_sum{x=\"1\"} 1\n",
        "s_count 2\n",
        "a_sum 4\n",
        "h 5\n",
    ]);
    prop::collection::vec(line, 0..40).prop_map(|lines| lines.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_order_of_lines_gives_what_the_whole_page_gives(page in shuffled_page()) {
        for metric_version in [1, 2] {
            let (result, _) = agent_result(page.as_bytes(), Format::Text, metric_version);
            prop_assert_eq!(result, whole(page.as_bytes(), Format::Text, metric_version));
        }
    }
}
