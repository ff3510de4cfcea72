//! What the fault tests share: the real `app`, `agent` and `processor` binaries as separate
//! processes on loopback (the processor restartable with SIGTERM or SIGKILL on the same port and
//! data dir), the Kubernetes API stand-in in-process, a steady open-loop load, and readers for
//! what the tests observe: the processor's recording (what its task received), each agent's own
//! file output (what it gathered), the agents' and the processor's counters, the httpOut total,
//! the decision records.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use autoscaler_lab::loadgen::{LoadGenerator, Targets};
use serde_json::Value;
use workspace_bins::peers::{KillOnDrop, free_port, try_http};

/// The tutorial's task with a 10-point window, short cooldowns and an httpOut of the cross-pod
/// total (`total`), so a test can read the total the scaler is fed.
pub const TICK: &str = r#"dbrp "autoscale"."autogen"
var target = 100.0
var increase_cooldown = 3s
var decrease_cooldown = 6s
var moving_avg_count = 10
var total = stream
    |from()
        .measurement('requests')
        .groupBy('host', 'deployment')
        .truncate(1s)
    |derivative('counter')
        .as('requests_per_second')
        .unit(1s)
        .nonNegative()
    |groupBy('deployment')
    |sum('requests_per_second')
        .as('total_requests_per_second')
total
    |httpOut('total')
total
    |movingAverage('total_requests_per_second', moving_avg_count)
        .as('avg_requests_per_second')
    |k8sAutoscale()
        .kind('deployments')
        .resourceNameTag('deployment')
        .increaseCooldown(increase_cooldown)
        .decreaseCooldown(decrease_cooldown)
        .min(1)
        .max(10)
        .replicas(lambda: int(ceil("avg_requests_per_second" / target)))
"#;

/// A fresh directory under the system temp dir, removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("faults-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn wait_for_port(addr: SocketAddr) {
    for _ in 0..400 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on {addr}");
}

/// Sends `signal` (`TERM`, `KILL`) to a process with the system's `kill` (no `unsafe` here).
pub fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {}", child.id());
}

/// The processor binary, serving on a fixed port with a fixed data dir, so it can be killed
/// and started again as a restarted pod would be.
pub struct Processor {
    pub child: Option<KillOnDrop>,
    pub addr: SocketAddr,
    pub config: PathBuf,
    pub log: PathBuf,
    pub starts: u32,
}

impl Processor {
    /// Writes `config` (its `[http] bind-address` and `data_dir` are added) and starts it.
    pub fn start(dir: &Path, extra_config: &str) -> Processor {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let config = dir.join("processor.conf");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n{extra_config}\n[http]\nbind-address = \"{addr}\"\n",
                dir.join("data").display().to_string(),
            ),
        )
        .expect("write config");
        let mut processor = Processor {
            child: None,
            addr,
            config,
            log: dir.join("processor.log"),
            starts: 0,
        };
        processor.restart();
        processor
    }

    /// Starts it (again), its stderr appended to `processor.log`; waits for `/ready`.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the processor is still running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(workspace_bins::binary("processor", "processor"))
            .args([
                "serve",
                "--config",
                self.config.to_str().expect("utf-8 path"),
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the processor");
        self.child = Some(KillOnDrop(child));
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        while try_http(self.addr, "GET", "/ready", "").is_none_or(|(status, _)| status != 204) {
            assert!(
                Instant::now() < deadline,
                "the processor did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to drain or flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child.0, "KILL");
            let _ = child.0.wait();
        }
    }

    /// SIGTERM, and waits for it to exit; its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        signal(&child.0, "TERM");
        child.0.wait().ok()
    }

    pub fn get(&self, path: &str) -> Value {
        match try_http(self.addr, "GET", path, "") {
            Some((200, body)) => serde_json::from_str(&body).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Defines and enables a stream task through the task API.
    pub fn define(&self, id: &str, script: &str) {
        let body = serde_json::json!({
            "id": id,
            "type": "stream",
            "dbrps": [{"db": "autoscale", "rp": "autogen"}],
            "script": script,
            "status": "enabled",
        });
        let answer = try_http(self.addr, "POST", "/kapacitor/v1/tasks", &body.to_string());
        assert!(
            answer.as_ref().is_some_and(|(status, _)| *status == 200),
            "define {id}: {answer:?}"
        );
    }

    /// The latest cross-pod total of `task`'s httpOut `total`: (its time in ns, requests/s).
    pub fn total(&self, task: &str) -> Option<(i64, f64)> {
        let json = self.get(&format!("/kapacitor/v1/tasks/{task}/total"));
        let row = json.pointer("/series/0/values/0")?;
        let time = humantime::parse_rfc3339(row.get(0)?.as_str()?).ok()?;
        let ns = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i64;
        Some((ns, row.get(1)?.as_f64()?))
    }

    /// The decision records of `task`, oldest first.
    pub fn decisions(&self, task: &str) -> Vec<Value> {
        let json = self.get(&format!("/kapacitor/v1/decisions?task={task}&limit=10000"));
        let mut records = json["decisions"].as_array().cloned().unwrap_or_default();
        records.reverse();
        records
    }

    /// A node's stats (`GET /kapacitor/v1/tasks/ID`'s `stats.node-stats.NODE`).
    pub fn node_stats(&self, task: &str, node: &str) -> Value {
        self.get(&format!("/kapacitor/v1/tasks/{task}"))
            .pointer(&format!("/stats/node-stats/{node}"))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// What the processor logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// One replica: an app process and its agent process, the agent also writing what it gathers
/// to its own file (`agent-N.lp`) and serving its counters.
pub struct Pod {
    pub name: String,
    pub app: KillOnDrop,
    pub agent: Option<KillOnDrop>,
    pub addr: SocketAddr,
    pub agent_metrics: SocketAddr,
    pub gathered: PathBuf,
}

impl Pod {
    /// Starts app `app-0000N` and its agent (1-s interval and flush, a buffer of
    /// `buffer_limit` metrics in batches of half that) pushing to `processor`.
    pub fn start(dir: &Path, index: usize, processor: SocketAddr, buffer_limit: usize) -> Pod {
        let (app_port, metrics_port, agent_port) = (free_port(), free_port(), free_port());
        let name = format!("app-{index:05}");
        let app = KillOnDrop(
            Command::new(workspace_bins::binary("app", "app"))
                .args(["--listen", &format!("127.0.0.1:{app_port}")])
                .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
                .env("HOSTNAME", &name)
                .env("APP_DEPLOYMENT", "app")
                .stderr(Stdio::null())
                .spawn()
                .expect("start app"),
        );
        let addr: SocketAddr = format!("127.0.0.1:{app_port}").parse().expect("addr");
        wait_for_port(addr);
        let gathered = dir.join(format!("{name}.lp"));
        let config = include_str!("../../agent/examples/tutorial-telegraf.conf")
            .replace("http://kapacitor:9092", &format!("http://{processor}"))
            .replace(
                "http://localhost:8000/metrics",
                &format!("http://127.0.0.1:{metrics_port}/metrics"),
            )
            .replace("flush_interval = \"10s\"", "flush_interval = \"1s\"")
            .replace(
                "metric_buffer_limit = 10000",
                &format!("metric_buffer_limit = {buffer_limit}"),
            )
            // The buffer is at least one batch (as Telegraf's): a small buffer needs small batches.
            .replace(
                "metric_batch_size = 1000",
                &format!("metric_batch_size = {}", buffer_limit.min(1000) / 2),
            )
            .replace(
                "files = [\"stdout\"]",
                &format!("files = [{:?}]", gathered.display().to_string()),
            );
        let path = dir.join(format!("{name}.conf"));
        std::fs::write(&path, config).expect("agent config");
        let agent_metrics: SocketAddr = format!("127.0.0.1:{agent_port}").parse().expect("addr");
        let agent = KillOnDrop(
            Command::new(workspace_bins::binary("agent", "agent"))
                .args(["--config", path.to_str().expect("utf-8 path")])
                .args(["--metrics-listen", &agent_metrics.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start agent"),
        );
        wait_for_port(agent_metrics);
        Pod {
            name,
            app,
            agent: Some(agent),
            addr,
            agent_metrics,
            gathered,
        }
    }

    /// The agent's counter `name` for its influxdb output (summed over the other labels).
    pub fn agent_counter(&self, name: &str) -> f64 {
        let Some((200, text)) = try_http(self.agent_metrics, "GET", "/metrics", "") else {
            return f64::NAN;
        };
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains("output=\"influxdb[0]\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// SIGTERM the agent: one last flush, then it exits.
    pub fn stop_agent(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            signal(&agent.0, "TERM");
            let _ = agent.0.wait();
        }
    }
}

/// Open-loop load at `rps` over `endpoints`, one second at a time on a thread of its own, until
/// dropped.
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(endpoints: Vec<SocketAddr>, rps: f64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            let generator = Arc::new(LoadGenerator::new(Targets::Endpoints(Arc::new(
                RwLock::new(endpoints),
            ))));
            let start = tokio::time::Instant::now();
            let mut second = 0u64;
            while !flag.load(Ordering::SeqCst) {
                let at = start + Duration::from_secs(second);
                let generator = Arc::clone(&generator);
                let s = second;
                runtime.spawn(async move { generator.run_second(s, at, rps).await });
                runtime.block_on(async {
                    tokio::time::sleep_until(at + Duration::from_secs(1)).await
                });
                second += 1;
            }
            runtime.shutdown_timeout(Duration::from_secs(2));
        });
        Load {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One `requests` point: its host, time (ns) and counter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub time: i64,
    pub counter: f64,
}

/// The `requests` points of a line-protocol file, per host, in file order (from byte `from`).
/// Comment lines and other measurements are skipped.
pub fn samples(path: &Path, from: u64) -> BTreeMap<String, Vec<Sample>> {
    samples_between(path, from, u64::MAX)
}

/// [`samples`] of the bytes `from..to` of the file.
pub fn samples_between(path: &Path, from: u64, to: u64) -> BTreeMap<String, Vec<Sample>> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let to = (to.min(bytes.len() as u64)) as usize;
    let text =
        String::from_utf8_lossy(bytes.get(from as usize..to).unwrap_or_default()).into_owned();
    let mut out: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for line in text.lines() {
        if !line.starts_with("requests,") {
            continue;
        }
        let mut parts = line.split(' ');
        let (Some(key), Some(fields), Some(time)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let host = key
            .split(',')
            .find_map(|t| t.strip_prefix("host="))
            .unwrap_or_default()
            .to_owned();
        let counter = fields
            .split(',')
            .find_map(|f| f.strip_prefix("counter="))
            .and_then(|v| v.trim_end_matches('i').parse::<f64>().ok());
        let (Some(counter), Ok(time)) = (counter, time.parse::<i64>()) else {
            continue;
        };
        out.entry(host).or_default().push(Sample { time, counter });
    }
    out
}

/// The true cross-pod rate for each second (ns time → requests/s), from what the agents
/// gathered: the sum over hosts of each host's counter increase into that second.
pub fn true_totals(gathered: &BTreeMap<String, Vec<Sample>>) -> BTreeMap<i64, f64> {
    let mut per_time: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
    for samples in gathered.values() {
        for pair in samples.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.time - a.time == 1_000_000_000 && b.counter >= a.counter {
                let slot = per_time.entry(b.time).or_default();
                slot.0 += b.counter - a.counter;
                slot.1 += 1;
            }
        }
    }
    let hosts = gathered.len();
    per_time
        .into_iter()
        .filter(|(_, (_, n))| *n == hosts)
        .map(|(t, (sum, _))| (t, sum))
        .collect()
}

/// Seconds since the epoch, as ns (the processors' and agents' clock).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Polls `check` every 100 ms for up to `limit`; whether it held.
pub fn until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The stand-in, in-process on a runtime of its own, with Deployment `default/app` at
/// `replicas`.
pub struct Api {
    pub runtime: tokio::runtime::Runtime,
    pub handle: Option<k8s_standin::Handle>,
}

impl Api {
    pub fn start(replicas: i64) -> Api {
        Api::start_with(k8s_standin::Config::default().with_deployment("default", "app", replicas))
    }

    pub fn start_with(config: k8s_standin::Config) -> Api {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let handle = runtime
            .block_on(k8s_standin::Server::start(config))
            .expect("the stand-in starts");
        Api {
            runtime,
            handle: Some(handle),
        }
    }

    pub fn server(&self) -> &k8s_standin::Handle {
        self.handle.as_ref().expect("the stand-in runs")
    }

    /// The `[kubernetes]` section pointing at it.
    pub fn section(&self, extra: &str) -> String {
        format!(
            "[kubernetes]\nenabled = true\napi-servers = [\"{}\"]\nnamespace = \"default\"\n{extra}\n",
            self.server().url()
        )
    }

    /// The Deployment's replicas.
    pub fn replicas(&self) -> i64 {
        self.server()
            .deployment_replicas("default", "app")
            .unwrap_or(-1)
    }

    /// Writes to the Deployment's `/scale` (PUT or PATCH) and their answers.
    pub fn scale_writes(&self) -> Vec<(u64, u16)> {
        self.server()
            .requests()
            .iter()
            .filter(|r| {
                r.info.subresource == "scale" && matches!(r.info.verb.as_str(), "update" | "patch")
            })
            .map(|r| (r.seq, r.status))
            .collect()
    }

    /// The Deployment's metadata.generation: +1 per change of its spec.
    pub fn generation(&self) -> i64 {
        self.server()
            .workload(k8s_standin::WorkloadKind::Deployment, "default", "app")
            .map_or(-1, |w| w.generation)
    }

    /// Sets the Deployment's replicas as someone else would (`kubectl scale`).
    pub fn set_replicas(&self, replicas: i64) {
        self.server()
            .set_replicas(
                k8s_standin::WorkloadKind::Deployment,
                "default",
                "app",
                replicas,
            )
            .expect("set replicas");
    }

    /// The messages of the Events with `reason`.
    pub fn events(&self, reason: &str) -> Vec<String> {
        self.server()
            .events()
            .iter()
            .filter(|e| e["reason"] == reason)
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop();
    }
}
