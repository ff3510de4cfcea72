//! Real programs the tests run beside ours, on free loopback ports in temp dirs: InfluxDB 1.6
//! (`influxd`, Debian package `influxdb`), `prometheus-node-exporter` and a Prometheus 2.x server
//! (`prometheus`). Each is killed when its handle drops.
//!
//! A missing program makes [`Influxd::start`], [`NodeExporter::start`], [`Prometheus::start`]
//! and [`promtool_check_metrics`] return `None` after
//! printing `SKIPPED`, or panic when `REQUIRE_PEERS=1` (set by `.ci/run`, which installs them).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INFLUXD: &str = "/usr/bin/influxd";
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const PROMTOOL: &str = "/usr/bin/promtool";
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

fn available(program: &str, package: &str) -> bool {
    if Path::new(program).exists() {
        return true;
    }
    let message = format!("{program} is not installed (apt-get install {package})");
    if std::env::var("REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("{message}; REQUIRE_PEERS=1 makes this a failure");
    }
    eprintln!("SKIPPED: {message}");
    false
}

/// What `promtool check metrics` (Debian package `prometheus`) says of an exposition.
#[derive(Debug)]
pub struct PromtoolReport {
    /// Its exit code: 0 clean, 3 lint findings only, 1 a text that does not parse.
    pub code: Option<i32>,
    /// Its stdout and stderr: the problems, one per line.
    pub report: String,
}

impl PromtoolReport {
    /// It exited 0: the text parses and no lint fired.
    pub fn passed(&self) -> bool {
        self.code == Some(0)
    }

    /// The reported problems other than those containing one of `allowed` (e.g. a counter
    /// the tutorial names without `_total`).
    pub fn problems_except(&self, allowed: &[&str]) -> Vec<&str> {
        self.report
            .lines()
            .filter(|line| !line.trim().is_empty())
            .filter(|line| !allowed.iter().any(|a| line.contains(a)))
            .collect()
    }
}

/// Runs `promtool check metrics` on `exposition`; `None` (after printing `SKIPPED`) when
/// promtool is not installed, a panic instead under `REQUIRE_PEERS=1`.
pub fn promtool_check_metrics(exposition: &str) -> Option<PromtoolReport> {
    if !available(PROMTOOL, "prometheus") {
        return None;
    }
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool's answer");
    Some(PromtoolReport {
        code: output.status.code(),
        report: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// One plain HTTP/1.0 exchange; returns (status, body), status 0 when the answer has none.
pub fn http(addr: SocketAddr, method: &str, path_and_query: &str, body: &str) -> (u16, String) {
    parse_response(&exchange(addr, method, path_and_query, body).expect("an HTTP exchange"))
}

/// One plain HTTP/1.0 exchange: (status, body), or `None` when the connection failed or
/// closed without an answer (a server that was killed).
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    body: &str,
) -> Option<(u16, String)> {
    let response = exchange(addr, method, path_and_query, body).ok()?;
    match parse_response(&response) {
        (0, _) => None,
        answer => Some(answer),
    }
}

/// Sends one request and reads the whole answer.
fn exchange(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    body: &str,
) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let request = format!(
        "{method} {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// (status, body) of a raw answer; status 0 when there is no status line.
fn parse_response(response: &str) -> (u16, String) {
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A child process killed (and reaped) when dropped, so a failing test leaves no process.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until_up(addr: SocketAddr, path: &str, ok: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // A reset or an empty answer while the program starts means "not up yet".
        if try_http(addr, "GET", path, "").is_some_and(|(status, _)| status == ok) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not start on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `influxd`. Its data lives in a directory that survives [`Influxd::stop`], so a
/// test can stop it and start it again with [`Influxd::restart`] on the same port and data.
pub struct Influxd {
    child: Option<Child>,
    pub addr: SocketAddr,
    rpc_port: u16,
    dir: PathBuf,
}

impl Influxd {
    /// Starts influxd with its data under `dir`.
    pub fn start(dir: &Path) -> Option<Self> {
        if !available(INFLUXD, "influxdb") {
            return None;
        }
        std::fs::create_dir_all(dir).expect("influxd data directory");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut influxd = Self {
            child: None,
            addr,
            rpc_port: free_port(),
            dir: dir.to_owned(),
        };
        influxd.restart();
        Some(influxd)
    }

    /// Starts it again (after [`Influxd::stop`]) on the same address and data.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("influxd.log"))
            .expect("influxd log file");
        let child = Command::new(INFLUXD)
            .arg("run")
            .env("INFLUXDB_META_DIR", self.dir.join("meta"))
            .env("INFLUXDB_DATA_DIR", self.dir.join("data"))
            .env("INFLUXDB_DATA_WAL_DIR", self.dir.join("wal"))
            .env("INFLUXDB_HTTP_BIND_ADDRESS", self.addr.to_string())
            .env(
                "INFLUXDB_BIND_ADDRESS",
                format!("127.0.0.1:{}", self.rpc_port),
            )
            .env("INFLUXDB_REPORTING_DISABLED", "true")
            .env("INFLUXDB_HTTP_LOG_ENABLED", "false")
            .env("INFLUXDB_DATA_QUERY_LOG_ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start influxd");
        self.child = Some(child);
        wait_until_up(self.addr, "/ping", 204, "influxd");
    }

    /// Kills it (the data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs an InfluxQL query against `db` with nanosecond times; returns the JSON body.
    pub fn query(&self, db: &str, query: &str) -> serde_json::Value {
        let params = form_urlencoded::Serializer::new(String::new())
            .append_pair("db", db)
            .append_pair("epoch", "ns")
            .append_pair("q", query)
            .finish();
        let (status, body) = http(self.addr, "GET", &format!("/query?{params}"), "");
        assert_eq!(status, 200, "query {query:?}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("query {query:?}: {e}: {body}"))
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `prometheus-node-exporter`.
pub struct NodeExporter {
    child: Child,
    pub addr: SocketAddr,
}

impl NodeExporter {
    pub fn start() -> Option<Self> {
        if !available(NODE_EXPORTER, "prometheus-node-exporter") {
            return None;
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter");
        let exporter = Self { child, addr };
        wait_until_up(addr, "/metrics", 200, "node_exporter");
        Some(exporter)
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Prometheus server scraping some targets' `/metrics` every second, its config, data
/// and log (`prometheus.log`) in a directory of the test's.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
}

impl Prometheus {
    /// Starts Prometheus under `dir`, scraping `targets` as job `job`; returns once it is
    /// ready (`/-/ready`).
    pub fn start(dir: &Path, job: &str, targets: &[SocketAddr]) -> Option<Self> {
        if !available(PROMETHEUS, "prometheus") {
            return None;
        }
        std::fs::create_dir_all(dir).expect("prometheus directory");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: '{job}'\n    metrics_path: /metrics\n    \
             static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log file");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Self { child, addr };
        wait_until_up(addr, "/-/ready", 200, "prometheus");
        Some(prometheus)
    }

    /// Runs an instant PromQL query; returns `data.result` (a vector of
    /// `{"metric": {...}, "value": [time, "value"]}`).
    pub fn query(&self, query: &str) -> serde_json::Value {
        let params = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", query)
            .finish();
        let (status, body) = http(self.addr, "GET", &format!("/api/v1/query?{params}"), "");
        assert_eq!(status, 200, "query {query:?}: {body}");
        let answer: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("query {query:?}: {e}: {body}"));
        assert_eq!(answer["status"], "success", "query {query:?}: {body}");
        answer["data"]["result"].clone()
    }

    /// The single value `query` answers (`None` while it answers no series).
    pub fn value(&self, query: &str) -> Option<f64> {
        let result = self.query(query);
        let series = result.as_array()?;
        assert!(
            series.len() <= 1,
            "query {query:?}: more than one series: {result}"
        );
        series.first()?["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
