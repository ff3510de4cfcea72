//! Two or more `processor` binaries as separate processes electing a leader on the Kubernetes
//! API stand-in (in-process), each with its own bearer token so the stand-in's request log
//! attributes every request to its replica and a fault can hit one replica only; the tutorial's
//! task with short vars; the same points written to every replica, as agents fanning out would.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_standin::{Handle, RequestRecord};
use workspace_bins::peers::{KillOnDrop, free_port, try_http};

/// The Lease timings the tests run with: lease 3 s, renew deadline 2 s, retry 0.5 s.
pub const LEASE: Duration = Duration::from_secs(3);
pub const RENEW_DEADLINE: Duration = Duration::from_secs(2);
pub const RETRY: Duration = Duration::from_millis(500);

pub const TUTORIAL: &str = include_str!("../fixtures/tick/autoscale.tick");

/// One replica: its process, address, identity (also its stand-in user).
pub struct Replica {
    pub process: Option<KillOnDrop>,
    pub addr: SocketAddr,
    pub identity: String,
    pub log: PathBuf,
}

impl Replica {
    /// SIGKILL.
    pub fn kill(&mut self) {
        self.process.take();
    }

    /// Sends SIGTERM (the process keeps running while it stops).
    pub fn signal_term(&self) {
        if let Some(process) = &self.process {
            let pid = process.0.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
    }

    /// Waits for the process to exit (at most 20 s, then SIGKILL).
    pub fn wait_exit(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = process.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = process.0.kill();
    }

    /// `/ready`'s JSON (`None` when it does not answer 200).
    pub fn ready(&self) -> Option<serde_json::Value> {
        match try_http(self.addr, "GET", "/ready", "") {
            Some((200, body)) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// `leader`, `follower`, or `None` when it does not answer.
    pub fn role(&self) -> Option<String> {
        self.ready()
            .and_then(|r| r["role"].as_str().map(str::to_owned))
    }

    /// The task's decision records, oldest first.
    pub fn decisions(&self) -> Vec<serde_json::Value> {
        match try_http(
            self.addr,
            "GET",
            "/kapacitor/v1/decisions?task=autoscale&limit=1000",
            "",
        ) {
            Some((200, body)) => {
                let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let mut records = json["decisions"].as_array().cloned().unwrap_or_default();
                records.reverse();
                records
            }
            _ => Vec::new(),
        }
    }

    /// `/metrics` text ("" when it does not answer).
    pub fn metrics(&self) -> String {
        try_http(self.addr, "GET", "/metrics", "")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The replica's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The stand-in holding Deployment `default/app` at 1 replica, accepting the tokens of
/// `identities` (token = user = identity).
pub async fn stand_in(identities: &[&str]) -> Handle {
    let mut config = k8s_standin::Config::default().with_deployment("default", "app", 1);
    for identity in identities {
        config = config.with_token(identity, identity);
    }
    k8s_standin::Server::start(config)
        .await
        .unwrap_or_else(|e| panic!("stand-in: {e}"))
}

/// Starts replica `identity` of the processor binary against `api`, with HA on the test
/// timings, defines and enables the tutorial's task with short vars.
pub fn start_replica(dir: &Path, api: &Handle, identity: &str) -> Replica {
    let port = free_port();
    let data = dir.join(identity);
    let config = dir.join(format!("{identity}.conf"));
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[http]\nbind-address = \"127.0.0.1:{port}\"\n\
             shutdown-timeout = \"1s\"\n[pipeline]\nlateness = \"1s\"\n\
             [kubernetes]\nenabled = true\napi-servers = [\"{url}\"]\ntoken = \"{identity}\"\n\
             namespace = \"default\"\n\
             [ha]\nenabled = true\nidentity = \"{identity}\"\nlease-duration = \"{lease}\"\n\
             renew-deadline = \"{renew}\"\nretry-period = \"{retry}\"\n",
            data = data.display().to_string(),
            url = api.url(),
            lease = humantime::format_duration(LEASE),
            renew = humantime::format_duration(RENEW_DEADLINE),
            retry = humantime::format_duration(RETRY),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let log = dir.join(format!("{identity}.log"));
    let stderr = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
    let process = KillOnDrop(
        Command::new(workspace_bins::binary("processor", "processor"))
            .args(["serve", "--config", &config.display().to_string()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("processor: {e}")),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let replica = Replica {
        process: Some(process),
        addr,
        identity: identity.to_owned(),
        log,
    };
    let up = (0..400).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        try_http(addr, "GET", "/ping", "").is_some()
    });
    assert!(up, "{identity} does not answer: {}", replica.log_text());
    let body = serde_json::json!({
        "id": "autoscale",
        "type": "stream",
        "dbrps": [{"db": "autoscale", "rp": "autogen"}],
        "script": TUTORIAL,
        "status": "enabled",
        "vars": {
            "moving_avg_count": {"type": "int", "value": 3},
            "increase_cooldown": {"type": "duration", "value": "2s"},
            "decrease_cooldown": {"type": "duration", "value": "4s"},
        },
    })
    .to_string();
    let defined = try_http(addr, "POST", "/kapacitor/v1/tasks", &body);
    assert!(
        matches!(defined, Some((200, _))),
        "{identity}: define failed: {defined:?}"
    );
    replica
}

/// Writes, once a second, the counters of two pods of Deployment `app` (together `rps`
/// requests per second, changeable through [`Feeder::set_rps`]) to every replica.
pub struct Feeder {
    rps: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Feeder {
    pub fn start(targets: Vec<SocketAddr>, rps: u64) -> Feeder {
        let rate = Arc::new(AtomicU64::new(rps));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&rate), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut counter = 0u64;
            while !s.load(Ordering::SeqCst) {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                counter += r.load(Ordering::SeqCst) / 2;
                let body = format!(
                    "requests,deployment=app,host=pod-1 counter={counter} {now}\n\
                     requests,deployment=app,host=pod-2 counter={counter} {now}\n"
                );
                for addr in &targets {
                    let _ = try_http(
                        *addr,
                        "POST",
                        "/write?db=autoscale&rp=autogen&precision=s",
                        &body,
                    );
                }
                // To the start of the next second.
                let into = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.subsec_millis())
                    .unwrap_or(0);
                std::thread::sleep(Duration::from_millis(u64::from(1000 - into.min(999))));
            }
        });
        Feeder {
            rps: rate,
            stop,
            thread: Some(thread),
        }
    }

    pub fn set_rps(&self, rps: u64) {
        self.rps.store(rps, Ordering::SeqCst);
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `check` every 20 ms until it holds or `within` passes.
pub fn wait_for(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

/// Whether `record` is a write to a workload's `/scale` (PUT or PATCH) that reached the
/// stand-in's handler (not answered by an injected fault before it).
pub fn is_scale_write(record: &RequestRecord) -> bool {
    record.info.subresource == "scale"
        && matches!(record.info.verb.as_str(), "update" | "patch")
        && !(record.fault_injected && record.status >= 400)
}

/// Whether `record` is a successful write (create or update) of the Lease.
pub fn is_lease_acquired(record: &RequestRecord) -> bool {
    record.info.resource == "leases"
        && matches!(record.info.verb.as_str(), "create" | "update")
        && (200..300).contains(&record.status)
}

/// The writers check, from the stand-in's request log alone, in arrival order: after each
/// successful Lease write by client X the holder of record is X (only an acquiring or renewing
/// replica writes the Lease; a release at shutdown is the holder's own last write); every
/// `/scale` write must come from the holder of record at its arrival. Returns the violations
/// as `(seq, writer, holder of record)`, and the scale writers in order.
pub fn writers_check(log: &[RequestRecord]) -> (Vec<(u64, String, String)>, Vec<String>) {
    let mut holder = String::new();
    let mut violations = Vec::new();
    let mut writers = Vec::new();
    for record in log {
        if is_lease_acquired(record) {
            holder = record.user.clone();
        } else if is_scale_write(record) {
            writers.push(record.user.clone());
            if record.user != holder {
                violations.push((record.seq, record.user.clone(), holder.clone()));
            }
        }
    }
    (violations, writers)
}

/// A temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ha-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}
