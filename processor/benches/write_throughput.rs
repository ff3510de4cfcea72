//! Write throughput over HTTP on loopback: batches of 5,000 Telegraf-like lines posted by the
//! same client, first to the processor (in-process, with routing to a subscriber running), then
//! to a real influxd 1.6 (`/usr/bin/influxd`, skipped when absent). Prints points/s for both and
//! the ratio.
//!
//! `cargo bench -p processor --bench write_throughput`
//! Environment: `BENCH_SECONDS` (per target, default 10), `BENCH_CONNECTIONS` (default 4).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod telegraf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use processor::clock;
use processor::config::Http;
use processor::routing::{Delivery, Key, Router, Subscriber};
use processor::server::Server;
use processor::write_api::WriteApi;

const LINES_PER_BATCH: usize = telegraf::LINES;

/// Counts points, as a task's input queue would receive them.
#[derive(Default)]
struct Counter(AtomicU64);

impl Subscriber for Counter {
    fn deliver(&self, delivery: Delivery) {
        self.0.fetch_add(delivery.len() as u64, Ordering::Relaxed);
    }
}

/// Posts `batch` on `connections` keep-alive connections for `seconds`; returns (points
/// accepted, points/s). A connection the server closes is reopened (not counted as a failure);
/// any answer but 204 is.
async fn hammer(
    addr: SocketAddr,
    path: &str,
    batch: Bytes,
    connections: usize,
    seconds: u64,
) -> (f64, f64) {
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (batch, accepted, failed, path) = (
            batch.clone(),
            accepted.clone(),
            failed.clone(),
            path.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            'connect: while Instant::now() < deadline {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let _ = stream.set_nodelay(true);
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .expect("handshake");
                tokio::spawn(connection);
                while Instant::now() < deadline {
                    if sender.ready().await.is_err() {
                        continue 'connect;
                    }
                    let request = Request::post(path.as_str())
                        .header("host", "bench")
                        .body(Full::new(batch.clone()))
                        .expect("request");
                    let Ok(response) = sender.send_request(request).await else {
                        continue 'connect;
                    };
                    let status = response.status();
                    let _ = response.into_body().collect().await;
                    if status == StatusCode::NO_CONTENT {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} batches were not accepted");
    let points = accepted.load(Ordering::Relaxed) as f64 * LINES_PER_BATCH as f64;
    (points, points / elapsed)
}

/// CPU seconds (user + system) used so far by this process's threads named `thread_name`, from
/// /proc (Linux); 0 elsewhere. The machine is shared, so points per CPU-second is the figure
/// that does not depend on what else runs.
fn thread_cpu_seconds(thread_name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim().starts_with(thread_name))
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .map(|stat| stat_cpu_seconds(&stat))
        .sum()
}

/// CPU seconds of every child process of ours named `name` (influxd).
fn child_cpu_seconds(name: &str) -> f64 {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            stat.contains(&format!("({name})"))
                && after.split_whitespace().nth(1) == Some(me.as_str())
        })
        .map(|stat| stat_cpu_seconds(&stat))
        .sum()
}

/// utime + stime of a /proc stat line, in seconds (clock ticks of 1/100 s on Linux).
fn stat_cpu_seconds(stat: &str) -> f64 {
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command: state(0) ppid(1) ... utime(11) stime(12).
    (ticks(11) + ticks(12)) / 100.0
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no flag: keep that fast.
    let benching = std::env::args().any(|a| a == "--bench");
    let seconds = if benching {
        env_number("BENCH_SECONDS", 10)
    } else {
        1
    };
    let connections = env_number("BENCH_CONNECTIONS", 4) as usize;
    let batch = Bytes::from(telegraf::telegraf_batch(1_700_000_000_000_000_000));
    println!(
        "batch: {LINES_PER_BATCH} lines, {} bytes; {connections} connections, {seconds} s per target",
        batch.len()
    );

    // The processor: its own 2-thread runtime, as `processor serve` on this 2-core machine.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("processor")
        .enable_all()
        .build()
        .expect("server runtime");
    let router = Arc::new(Router::new());
    let counter = Arc::new(Counter::default());
    for measurement in ["cpu", "mem", "net", "requests"] {
        router.subscribe(
            Key {
                db: "bench".into(),
                rp: "autogen".into(),
                measurement: Some(measurement.into()),
            },
            counter.clone(),
        );
    }
    let api = Arc::new(WriteApi::new(
        Http::default(),
        "autogen".into(),
        router,
        clock::system(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = server_runtime.block_on(async {
        let server = Server::bind("127.0.0.1:0", api, Duration::from_secs(1))
            .await
            .expect("bind");
        let addr = server.local_addr().expect("address");
        tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        addr
    });

    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("client runtime");
    let cpu_before = thread_cpu_seconds("processor");
    let (_, ours) = client.block_on(hammer(
        addr,
        "/write?db=bench",
        batch.clone(),
        connections,
        seconds,
    ));
    let our_cpu = thread_cpu_seconds("processor") - cpu_before;
    let _ = stop.send(());
    drop(server_runtime);
    let routed = counter.0.load(Ordering::Relaxed) as f64;
    println!(
        "processor: {ours:>12.0} points/s, {:>10.0} points per CPU-second (routed {routed} points)",
        routed / our_cpu.max(0.01),
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let Some(influxd) = workspace_bins::peers::Influxd::start(dir.path()) else {
        println!("influxd: not installed, no comparison (apt-get install influxdb)");
        return;
    };
    let influx_addr = influxd.addr;
    let influx_cpu_before = child_cpu_seconds("influxd");
    let (their_points, theirs) = client.block_on(async {
        // Create the database, then measure.
        let stream = tokio::net::TcpStream::connect(influx_addr)
            .await
            .expect("connect");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(connection);
        let request = Request::post("/query?q=CREATE%20DATABASE%20bench")
            .header("host", "bench")
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = sender.send_request(request).await.expect("create database");
        assert_eq!(response.status(), StatusCode::OK);
        hammer(
            influx_addr,
            "/write?db=bench",
            batch.clone(),
            connections,
            seconds,
        )
        .await
    });
    let influx_cpu = child_cpu_seconds("influxd") - influx_cpu_before;
    drop(influxd);
    println!(
        "influxd:   {theirs:>12.0} points/s, {:>10.0} points per CPU-second",
        their_points / influx_cpu.max(0.01)
    );
    println!(
        "ratio:     {:>12.2}x points/s, {:.2}x points per CPU-second",
        ours / theirs,
        (routed / our_cpu.max(0.01)) / (their_points / influx_cpu.max(0.01))
    );
}
