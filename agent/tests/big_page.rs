//! Peak memory of the agent on a huge honest page: 2,000,000 series (a high-cardinality bug,
//! about 34 MB of text 0.0.4 or 46 MB of OpenMetrics), scraped by the release binary as a new
//! user runs it (default 10,000-metric buffer, the output unreachable so the buffer fills).
//! Prints the peak RSS (`VmHWM` from `/proc/<pid>/status`) after two whole gathers, with the
//! agent's own counts. Run:
//!
//! ```sh
//! cargo test --release -p agent --test big_page -- --ignored --nocapture
//! ```
//!
//! `AGENT_BIN=path` measures another build of the agent (e.g. an older commit's); `SERIES=n`
//! changes the page size.

use std::convert::Infallible;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use workspace_bins::peers::{free_port, try_http};

/// A page of `series` counters of one family, each its own label set.
fn page(series: usize, openmetrics: bool) -> String {
    let mut page = String::with_capacity(series * 24);
    page.push_str("# HELP r Requests by id (a high-cardinality bug).\n");
    page.push_str("# TYPE r counter\n");
    let suffix = if openmetrics { "_total" } else { "" };
    for i in 0..series {
        page.push_str(&format!("r{suffix}{{i=\"{i}\"}} 1\n"));
    }
    if openmetrics {
        page.push_str("# EOF\n");
    }
    page
}

/// Serves `body` on every path; counts the requests that arrived.
async fn serve(body: Bytes, content_type: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            let counted = Arc::clone(&counted);
            let service = hyper::service::service_fn(move |_: Request<hyper::body::Incoming>| {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut response = Response::new(Full::new(body.clone()));
                response
                    .headers_mut()
                    .insert("content-type", content_type.parse().unwrap());
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (port, requests)
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

async fn measure(openmetrics: bool) {
    let series: usize = std::env::var("SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let body = Bytes::from(page(series, openmetrics));
    let size = body.len();
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let (port, requests) = serve(body, content_type).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.conf");
    let (dead, self_port) = (free_port(), free_port());
    std::fs::write(
        &config,
        format!(
            "[agent]\n  interval = \"5s\"\n  round_interval = false\n  flush_interval = \"1s\"\n  omit_hostname = true\n\
             [[inputs.prometheus]]\n  urls = [\"http://127.0.0.1:{port}/metrics\"]\n  timeout = \"60s\"\n\
             [[outputs.influxdb]]\n  urls = [\"http://127.0.0.1:{dead}\"]\n  database = \"big\"\n  timeout = \"1s\"\n"
        ),
    )
    .unwrap();
    let binary = std::env::var("AGENT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_agent").into());
    let mut agent = Command::new(&binary)
        .args(["--config", config.to_str().unwrap()])
        .args(["--metrics-listen", &format!("127.0.0.1:{self_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = agent.id();
    // Two whole gathers are done when the third request arrives (gathers of one input do not
    // overlap).
    let deadline = Instant::now() + Duration::from_secs(300);
    while requests.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < deadline,
            "the agent did not scrape three times"
        );
        assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let peak = status_kib(pid, "VmHWM:").unwrap_or(0);
    let rss = status_kib(pid, "VmRSS:").unwrap_or(0);
    let telemetry = try_http(
        format!("127.0.0.1:{self_port}").parse().unwrap(),
        "GET",
        "/",
        "",
    )
    .map(|(_, body)| body)
    .unwrap_or_default();
    let _ = agent.kill();
    let _ = agent.wait();
    let pick = |prefix: &str| {
        telemetry
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("?")
            .to_owned()
    };
    println!(
        "big page ({}, {series} series, {:.1} MB), agent {binary}: peak RSS {} MiB ({peak} KiB), \
         RSS after two gathers {} MiB; gathered {}, buffer {}, dropped (overflow) {}, \
         last gather {} s",
        if openmetrics {
            "OpenMetrics"
        } else {
            "text 0.0.4"
        },
        size as f64 / 1e6,
        peak / 1024,
        rss / 1024,
        pick("agent_gathered_metrics_total"),
        pick("agent_buffer_metrics{"),
        pick("agent_dropped_metrics_total{output=\"influxdb[0]\",reason=\"overflow\"}"),
        pick("agent_gather_duration_seconds"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: prints the agent's peak memory on a 2M-series page"]
async fn the_peak_memory_on_a_two_million_series_text_page_is_printed() {
    measure(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: prints the agent's peak memory on a 2M-series page"]
async fn the_peak_memory_on_a_two_million_series_openmetrics_page_is_printed() {
    measure(true).await;
}
