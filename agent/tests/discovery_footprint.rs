//! Footprint of one agent in discovery mode (not a pass/fail test: it PRINTS its figures).
//! One agent binary discovers 100 pods on the Kubernetes API stand-in (each an exposition
//! server on its own loopback port, serving the app's `requests` counter), scrapes them every
//! second and writes to a file output (whose lines are counted); after a warm-up, its peak RSS and CPU are
//! read from /proc.
//!
//! Run with the release profile:
//! `cargo test --release -p agent --test discovery_footprint -- --ignored --nocapture`
//! (`FOOTPRINT_SECONDS`, default 30).

use std::time::Duration;

use k8s_standin::{Config as StandinConfig, PodSeed, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use workspace_bins::peers::KillOnDrop;

const PODS: usize = 100;

/// An exposition server answering every request with the app's counter.
async fn exposition_server(index: usize) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let body = format!(
        "# HELP requests Number of requests\n# TYPE requests counter\nrequests{{host=\"pod-{index}\",deployment=\"app\"}} {}.0\n",
        index * 10
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buffer[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: prints the agent's footprint with 100 discovered pods"]
async fn one_discovering_agent_scraping_100_pods_every_second_prints_its_footprint() {
    let seconds: u64 = std::env::var("FOOTPRINT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let server = Server::start(StandinConfig::default())
        .await
        .unwrap_or_else(|e| panic!("stand-in: {e}"));
    for index in 0..PODS {
        let port = exposition_server(index).await;
        server
            .apply_pod(
                &PodSeed::new("default", &format!("app-{index}"))
                    .annotation("prometheus.io/scrape", "true")
                    .annotation("prometheus.io/port", &port.to_string())
                    .owned_by("ReplicaSet", "app-5d9", "u")
                    .running("127.0.0.1", true),
            )
            .unwrap_or_else(|e| panic!("pod: {e}"));
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig(None)).unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("agent.conf");
    let out = dir.path().join("metrics.lp");
    std::fs::write(
        &config,
        format!(
            "[agent]\ninterval = \"1s\"\nflush_interval = \"1s\"\nomit_hostname = true\n\
             [[inputs.prometheus]]\nmonitor_kubernetes_pods = true\nkube_config = {:?}\n\
             pod_workload_tags = {{ deployment = \"deployment\" }}\n\
             [[outputs.file]]\nfiles = [{:?}]\n",
            kubeconfig.display().to_string(),
            out.display().to_string()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut child = std::process::Command::new(workspace_bins::binary("agent", "agent"));
    child
        .args(["--config", &config.display().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let agent = KillOnDrop(child.spawn().unwrap_or_else(|e| panic!("agent: {e}")));
    let pid = agent.0.id();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let scrapes_before = server.requests().len();
    let lines = || {
        std::fs::read_to_string(&out)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let lines_before = lines();
    let start = cpu_ticks(pid).unwrap_or(0);
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let ticks = cpu_ticks(pid).unwrap_or(0).saturating_sub(start);
    let elapsed = started.elapsed().as_secs_f64();
    // CLK_TCK is 100 on Linux.
    let cpu_percent = ticks as f64 / 100.0 / elapsed * 100.0;
    let peak_kib = proc_field(pid, "status", "VmHWM:").unwrap_or(0);
    let rss_kib = proc_field(pid, "status", "VmRSS:").unwrap_or(0);
    let per_second = (lines() - lines_before) as f64 / elapsed;
    println!(
        "discovery footprint: {PODS} pods every 1 s for {elapsed:.0} s: peak RSS {:.1} MiB ({peak_kib} KiB), RSS now {rss_kib} KiB, CPU {cpu_percent:.2} % of a core; {per_second:.1} metrics written per second; API requests during the measurement: {}",
        peak_kib as f64 / 1024.0,
        server.requests().len() - scrapes_before
    );
    drop(agent);
    server.shutdown().await;
}
