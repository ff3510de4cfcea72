//! The processor of a lab run: one, in-process (the default), or `--processor-replicas N`
//! replicas as separate `processor` processes that elect a leader on a Lease in the stand-in,
//! as the manifests run them (every agent writes to every replica; only the leader scales).
//! With replicas, the lab can SIGKILL the leader (the churn profile does it once) and restarts
//! a killed replica after [`RESTART_DELAY`], as a StatefulSet controller would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::lab::LabError;

/// How long a killed replica stays down before the lab starts it again.
pub const RESTART_DELAY: Duration = Duration::from_secs(5);
/// The Lease the replicas elect their leader on (the processor's default `lease-name`).
pub const LEASE_NAME: &str = "processor";
/// The replicas' lease timing: the processor's defaults (15 s / 10 s / 2 s), as in a cluster.
const LEASE_DURATION: &str = "15s";

/// The processor(s) of one run.
pub enum Processors {
    InProcess(InProcess),
    Replicas(Replicas),
}

/// The processor in the lab's own process (the default).
pub struct InProcess {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    scaler: processor::scaler::kubernetes::KubernetesScaler,
}

/// Processor replicas as processes.
pub struct Replicas {
    binary: PathBuf,
    namespace: String,
    replicas: Vec<Replica>,
}

/// One replica: its identity (the Lease's holder identity), address, config and process.
struct Replica {
    identity: String,
    addr: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// When it was killed, to start it again after [`RESTART_DELAY`].
    killed_at: Option<Instant>,
    /// When its process started: the earliest started live replica has the warmest windows.
    started_at: Instant,
}

impl Processors {
    /// The in-process processor on a free port, scaling through `kube` against the stand-in.
    /// Its `[pipeline]` settings are the defaults, as a new user's; `PROCESSOR_PIPELINE_*`
    /// variables set them as they do for the processor binary. Returns it and its pipeline's
    /// `lateness` (a new group's first total waits that long).
    pub async fn in_process(
        data_dir: &Path,
        api_url: &str,
    ) -> Result<(Processors, Duration), LabError> {
        let config_path = write_config(data_dir, api_url, None)?;
        let loaded = processor::config::Config::load_with_env(
            Some(&config_path),
            std::env::vars().filter(|(name, _)| name.starts_with("PROCESSOR_PIPELINE_")),
        )?;
        let warm_up = loaded.config.tasks.pipeline.lateness;
        let clock = processor::clock::system();
        let scaler =
            processor::startup::connect_kubernetes(&loaded.config.kubernetes, Arc::clone(&clock))
                .await?;
        let options = processor::Options {
            scaler: Some(Arc::new(scaler.clone())),
            clock,
            metrics: false,
            gate: processor::ha::Gate::standalone(),
        };
        let processor = processor::Processor::bind(loaded.config, options).await?;
        let url = match processor.local_addr() {
            Some(addr) => format!("http://{addr}"),
            None => return Err(LabError::ProcessorDown("no local address".into())),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(processor.serve(async {
            let _ = stopped.await;
        }));
        wait_for_ping(&Http::new(), &url).await?;
        let processors = Processors::InProcess(InProcess {
            url,
            stop: Some(stop),
            task,
            scaler,
        });
        Ok((processors, warm_up))
    }

    /// `count` processor processes of `binary`, each with its own data dir under `dir`, HA
    /// enabled on the Lease [`LEASE_NAME`] in `namespace`, identities `processor-0`, ...;
    /// their logs go to `processor-N.log` in `dir`.
    pub async fn replicas(
        binary: PathBuf,
        count: usize,
        dir: &Path,
        api_url: &str,
        namespace: &str,
    ) -> Result<Processors, LabError> {
        let mut replicas = Vec::with_capacity(count);
        for index in 0..count {
            let identity = format!("processor-{index}");
            let replica_dir = dir.join(&identity);
            std::fs::create_dir_all(&replica_dir).map_err(|source| LabError::Write {
                path: replica_dir.clone(),
                source,
            })?;
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map_err(|source| LabError::Write {
                    path: replica_dir.clone(),
                    source,
                })?;
            let ha = HaSettings {
                identity: &identity,
                namespace,
                addr,
            };
            let config = write_config(&replica_dir, api_url, Some(&ha))?;
            replicas.push(Replica {
                log: dir.join(format!("{identity}.log")),
                identity,
                addr,
                config,
                child: None,
                killed_at: None,
                started_at: Instant::now(),
            });
        }
        let mut set = Replicas {
            binary,
            namespace: namespace.to_owned(),
            replicas,
        };
        for replica in &mut set.replicas {
            replica.start(&set.binary)?;
        }
        let http = Http::new();
        for url in set.urls() {
            wait_for_ping(&http, &url).await?;
        }
        Ok(Processors::Replicas(set))
    }

    /// Every replica's base URL: where agents write (each agent writes to all of them).
    pub fn urls(&self) -> Vec<String> {
        match self {
            Processors::InProcess(one) => vec![one.url.clone()],
            Processors::Replicas(set) => set.urls(),
        }
    }

    /// Defines (and enables) a task on every replica, as the load dir of a real deployment
    /// would give them all the same tasks.
    pub async fn define_task(
        &self,
        http: &Http,
        id: &str,
        script: &str,
        vars: Option<&Value>,
    ) -> Result<(), LabError> {
        for url in self.urls() {
            define_task(http, &url, id, script, vars).await?;
        }
        Ok(())
    }

    /// The URL to read the lab's view task from: the live replica that has run longest (its
    /// windows are the warmest: a replica just restarted after a kill may still be named by
    /// the Lease while its windows fill).
    pub fn reading_url(&self) -> String {
        match self {
            Processors::InProcess(one) => one.url.clone(),
            Processors::Replicas(set) => set
                .replicas
                .iter()
                .filter(|r| r.child.is_some())
                .min_by_key(|r| r.started_at)
                .map_or_else(|| set.urls().remove(0), Replica::url),
        }
    }

    /// The Lease's holder, when replicas elect one.
    pub fn leader(&self, api: &k8s_standin::Handle) -> Option<String> {
        match self {
            Processors::InProcess(_) => None,
            Processors::Replicas(set) => set.leader(api),
        }
    }

    /// SIGKILLs the current leader (no lease release: the others wait for it to expire);
    /// returns its identity, or `None` with one in-process processor or no leader.
    pub fn kill_leader(&mut self, api: &k8s_standin::Handle) -> Option<String> {
        let Processors::Replicas(set) = self else {
            return None;
        };
        let leader = set.leader(api)?;
        let replica = set
            .replicas
            .iter_mut()
            .find(|r| r.identity == leader && r.child.is_some())?;
        if let Some(mut child) = replica.child.take() {
            let _ = child.start_kill();
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        replica.killed_at = Some(Instant::now());
        Some(leader)
    }

    /// Starts again the replicas killed at least [`RESTART_DELAY`] ago (their tasks come back
    /// from their data dirs); returns their identities.
    pub fn restart_killed(&mut self) -> Vec<String> {
        let Processors::Replicas(set) = self else {
            return Vec::new();
        };
        let mut started = Vec::new();
        for replica in &mut set.replicas {
            let due = replica
                .killed_at
                .is_some_and(|at| at.elapsed() >= RESTART_DELAY);
            if due {
                match replica.start(&set.binary) {
                    Ok(()) => started.push(replica.identity.clone()),
                    Err(error) => tracing::error!(%error, replica = %replica.identity,
                        "cannot restart the processor replica"),
                }
            }
        }
        started
    }

    /// The autoscale task's decision records: the in-process processor's, or every replica's
    /// that made or attempted a change (not the followers' `standby` records), newest first.
    pub async fn decision_records(&self, http: &Http) -> Vec<processor::decisions::Record> {
        let mut records = Vec::new();
        for url in self.urls() {
            records.extend(
                decision_records(http, &url)
                    .await
                    .into_iter()
                    .filter(|record| !is_standby(record)),
            );
        }
        records.sort_by_key(|record| std::cmp::Reverse(record.time_ns));
        records
    }

    /// Stops every processor: the in-process one through its shutdown signal, replicas with
    /// SIGTERM (each releases the Lease if it holds it).
    pub async fn stop(self) {
        match self {
            Processors::InProcess(mut one) => {
                one.scaler.shut_down();
                if let Some(stop) = one.stop.take() {
                    let _ = stop.send(());
                }
                let _ = one.task.await;
            }
            Processors::Replicas(set) => {
                let stops: Vec<_> = set
                    .replicas
                    .into_iter()
                    .filter_map(|r| r.child)
                    .map(|child| {
                        tokio::spawn(crate::kubelet::terminate(child, Duration::from_secs(10)))
                    })
                    .collect();
                for stop in stops {
                    let _ = stop.await;
                }
            }
        }
    }
}

impl Replicas {
    fn urls(&self) -> Vec<String> {
        self.replicas.iter().map(Replica::url).collect()
    }

    fn leader(&self, api: &k8s_standin::Handle) -> Option<String> {
        let lease = api.object(&k8s_standin::resources::LEASES, &self.namespace, LEASE_NAME)?;
        let holder = lease["spec"]["holderIdentity"].as_str()?;
        (!holder.is_empty()).then(|| holder.to_owned())
    }
}

impl Replica {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn start(&mut self, binary: &Path) -> Result<(), LabError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| LabError::Write {
                path: self.log.clone(),
                source,
            })?;
        let stderr = log.try_clone().map_err(|source| LabError::Write {
            path: self.log.clone(),
            source,
        })?;
        let child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env("HOSTNAME", &self.identity)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LabError::Spawn {
                program: binary.to_owned(),
                source,
            })?;
        self.child = Some(child);
        self.killed_at = None;
        self.started_at = Instant::now();
        Ok(())
    }
}

/// What a replica's config adds for HA.
struct HaSettings<'a> {
    identity: &'a str,
    namespace: &'a str,
    addr: SocketAddr,
}

/// Writes a processor config into `dir` and returns its path.
fn write_config(
    dir: &Path,
    api_url: &str,
    ha: Option<&HaSettings<'_>>,
) -> Result<PathBuf, LabError> {
    let bind = ha.map_or_else(|| "127.0.0.1:0".to_owned(), |ha| ha.addr.to_string());
    let mut text = format!(
        "data_dir = {:?}\n[http]\nbind-address = \"{bind}\"\n\
         [kubernetes]\nenabled = true\napi-servers = [\"{api_url}\"]\nnamespace = \"default\"\n",
        dir.display().to_string(),
    );
    if let Some(ha) = ha {
        text.push_str(&format!(
            "[ha]\nenabled = true\nlease-name = \"{LEASE_NAME}\"\nlease-namespace = \"{}\"\n\
             identity = \"{}\"\nlease-duration = \"{LEASE_DURATION}\"\n",
            ha.namespace, ha.identity,
        ));
    }
    let path = dir.join("processor.conf");
    std::fs::write(&path, text).map_err(|source| LabError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn is_standby(record: &processor::decisions::Record) -> bool {
    serde_json::to_value(record.outcome)
        .ok()
        .is_some_and(|outcome| outcome == "standby")
}

async fn wait_for_ping(http: &Http, url: &str) -> Result<(), LabError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while http
        .send("GET", &format!("{url}/ping"), None)
        .await
        .is_none_or(|(status, _)| status != 204)
    {
        if Instant::now() > deadline {
            return Err(LabError::ProcessorDown(url.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn define_task(
    http: &Http,
    processor_url: &str,
    id: &str,
    script: &str,
    vars: Option<&Value>,
) -> Result<(), LabError> {
    let mut body = json!({
        "id": id,
        "type": "stream",
        "dbrps": [{"db": "autoscale", "rp": "autogen"}],
        "script": script,
        "status": "enabled",
    });
    if let Some(vars) = vars {
        body["vars"] = vars.clone();
    }
    match http
        .send(
            "POST",
            &format!("{processor_url}/kapacitor/v1/tasks"),
            Some(&body),
        )
        .await
    {
        Some((200..=299, _)) => Ok(()),
        Some((status, text)) => Err(LabError::Task {
            task: id.to_owned(),
            reason: format!("status {status}: {text}"),
        }),
        None => Err(LabError::Task {
            task: id.to_owned(),
            reason: "no answer".into(),
        }),
    }
}

/// The lab task's decision records (`GET /kapacitor/v1/decisions`); none when the processor
/// does not answer (the chart then shows the changes without their rules).
async fn decision_records(http: &Http, processor_url: &str) -> Vec<processor::decisions::Record> {
    let url = format!("{processor_url}/kapacitor/v1/decisions?task=autoscale&limit=10000");
    let Some((200, body)) = http.send("GET", &url, None).await else {
        tracing::warn!(url = %processor_url, "no decision records: the chart shows no rules");
        return Vec::new();
    };
    #[derive(serde::Deserialize)]
    struct Decisions {
        decisions: Vec<processor::decisions::Record>,
    }
    match serde_json::from_str::<Decisions>(&body) {
        Ok(decisions) => decisions.decisions,
        Err(error) => {
            tracing::warn!(%error, "unreadable decision records: the chart shows no rules");
            Vec::new()
        }
    }
}

/// The lab's HTTP client for the processors' APIs.
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Option<(u16, String)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .ok()?;
        let response = tokio::time::timeout(Duration::from_secs(5), self.client.request(request))
            .await
            .ok()?
            .ok()?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// The last value of the first series an httpOut node serves.
    pub async fn last_value(&self, url: &str) -> Option<f64> {
        let (status, body) = self.send("GET", url, None).await?;
        if status != 200 {
            return None;
        }
        let json: Value = serde_json::from_str(&body).ok()?;
        let series = json["series"].as_array()?.first()?;
        let values = series["values"].as_array()?;
        values.last()?.as_array()?.last()?.as_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_config_enables_ha_with_its_identity_and_loads() {
        let dir = std::env::temp_dir().join(format!("lab-processors-{}", fastrand::u32(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let ha = HaSettings {
            identity: "processor-1",
            namespace: "default",
            addr: "127.0.0.1:9092".parse().unwrap(),
        };
        let path = write_config(&dir, "http://127.0.0.1:1", Some(&ha)).unwrap();
        let loaded = processor::config::Config::load(&path).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
