//! A local kubelet: turns the stand-in Deployment's replica count into running replicas, each
//! an app instance with its own agent sidecar (in-process, or as separate `app` and `agent`
//! processes with `--processes`; on loopback ports), and keeps the Service's endpoint list
//! (what the load generator spreads over) and the Deployment's status.
//!
//! Scale-down removes a replica from the endpoints first, then stops its app and its agent
//! (which flushes once more; a process gets SIGTERM), as Kubernetes does with a terminating pod.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_standin::{Handle, WorkloadKind};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How every replica is made.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    pub namespace: String,
    pub deployment: String,
    /// Requests per second one replica serves (`--capacity`).
    pub capacity: Option<f64>,
    /// The processor replicas' write APIs, e.g. `http://127.0.0.1:9092`: each agent writes to
    /// every one (one `[[outputs.influxdb]]` each, as the HA manifests configure agents).
    pub processor_urls: Vec<String>,
    /// Agent interval and flush interval.
    pub interval: Duration,
    pub flush_interval: Duration,
    /// Run each replica as separate processes of these binaries; in-process when `None`.
    pub binaries: Option<Binaries>,
}

/// The `app` and `agent` binaries a replica runs as processes, and where their configs go.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub app: PathBuf,
    pub agent: PathBuf,
    /// A directory for the agents' config files.
    pub config_dir: PathBuf,
}

struct Replica {
    name: String,
    app_addr: SocketAddr,
    running: Running,
}

/// How a replica's app and agent run.
enum Running {
    InProcess {
        stop_app: Option<oneshot::Sender<()>>,
        stop_agent: Option<oneshot::Sender<()>>,
        app_task: JoinHandle<()>,
        agent_task: JoinHandle<()>,
    },
    Processes {
        app: Box<Child>,
        agent: Box<Child>,
    },
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("app: {0}")]
    App(#[from] app::Error),
    #[error("agent config: {0}")]
    AgentConfig(#[from] agent::config::ConfigError),
    #[error("agent: {0}")]
    Agent(#[from] agent::runtime::StartError),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    WriteConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no free loopback port: {0}")]
    Port(#[source] std::io::Error),
    #[error("the app process did not listen on {0} within 10 s")]
    AppDown(SocketAddr),
}

/// The running replicas of one Deployment.
pub struct Kubelet {
    template: PodTemplate,
    replicas: Vec<Replica>,
    /// Live app addresses, shared with the load generator.
    pub endpoints: Arc<RwLock<Vec<SocketAddr>>>,
    next_pod: u64,
}

impl Kubelet {
    pub fn new(template: PodTemplate) -> Self {
        Self {
            template,
            replicas: Vec::new(),
            endpoints: Arc::default(),
            next_pod: 0,
        }
    }

    /// Replicas running now.
    pub fn running(&self) -> usize {
        self.replicas.len()
    }

    /// Brings the running replicas to what the Deployment asks for, and reports status.
    pub async fn reconcile(&mut self, api: &Handle) -> Result<(), StartError> {
        let template = &self.template;
        let wanted = api
            .deployment_replicas(&template.namespace, &template.deployment)
            .unwrap_or(0)
            .max(0) as usize;
        if self.replicas.len() < wanted {
            let mut started = Vec::new();
            while self.replicas.len() + started.len() < wanted {
                let name = self.pod_name();
                started.push(start_replica(&self.template, name).await?);
            }
            // Readiness: a pod joins the Service once its sidecar has taken its first sample,
            // so the requests it serves are all measured (a series' first point only primes
            // the rate).
            first_sample(self.template.interval).await;
            self.replicas.extend(started);
        }
        while self.replicas.len() > wanted {
            if let Some(replica) = self.replicas.pop() {
                self.publish_endpoints();
                stop_replica(replica).await;
            }
        }
        self.publish_endpoints();
        let running = self.replicas.len() as i64;
        let _ = api.set_status(
            WorkloadKind::Deployment,
            &self.template.namespace,
            &self.template.deployment,
            running,
            running,
        );
        Ok(())
    }

    /// Kills replica `index` and starts it again under the same name: its counter restarts at 0
    /// (a container restart).
    pub async fn restart(&mut self, index: usize) -> Result<(), StartError> {
        let Some(slot) = self.replicas.get_mut(index) else {
            return Ok(());
        };
        let name = slot.name.clone();
        let old = std::mem::replace(slot, start_replica(&self.template, name).await?);
        // Traffic moves to the new container before the old one stops.
        self.publish_endpoints();
        stop_replica(old).await;
        Ok(())
    }

    /// Kills replica `index` for good and starts a new pod in its place.
    pub async fn replace(&mut self, index: usize) -> Result<(), StartError> {
        if index >= self.replicas.len() {
            return Ok(());
        }
        let old = self.replicas.remove(index);
        self.publish_endpoints();
        stop_replica(old).await;
        let name = self.pod_name();
        let replica = start_replica(&self.template, name).await?;
        first_sample(self.template.interval).await;
        self.replicas.push(replica);
        self.publish_endpoints();
        Ok(())
    }

    /// Stops every replica.
    pub async fn stop_all(&mut self) {
        let replicas: Vec<Replica> = self.replicas.drain(..).collect();
        self.publish_endpoints();
        for replica in replicas {
            stop_replica(replica).await;
        }
    }

    fn pod_name(&mut self) -> String {
        self.next_pod += 1;
        format!(
            "{}-{:05x}",
            self.template.deployment,
            self.next_pod * 7919 % 0xfffff
        )
    }

    fn publish_endpoints(&self) {
        let mut endpoints = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
        *endpoints = self.replicas.iter().map(|r| r.app_addr).collect();
    }
}

/// Waits until just after the next gather of a new agent (gathers are aligned to multiples of
/// `interval` on the wall clock).
async fn first_sample(interval: Duration) {
    let interval_ns = interval.as_nanos().max(1);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let to_next = interval_ns - now_ns % interval_ns;
    let wait =
        Duration::from_nanos(u64::try_from(to_next).unwrap_or(0)) + Duration::from_millis(250);
    tokio::time::sleep(wait).await;
}

/// The agent's config: the tutorial's sidecar settings, at the lab's pace, with one output per
/// processor replica (each with its own buffer and retries).
fn agent_config(template: &PodTemplate, metrics_addr: SocketAddr) -> String {
    let mut config = format!(
        "[agent]\n  interval = \"{}ms\"\n  round_interval = true\n  flush_interval = \"{}ms\"\n  omit_hostname = true\n",
        template.interval.as_millis(),
        template.flush_interval.as_millis(),
    );
    for url in &template.processor_urls {
        config.push_str(&format!(
            "[[outputs.influxdb]]\n  urls = [\"{url}\"]\n  database = \"autoscale\"\n  retention_policy = \"autogen\"\n  timeout = \"2s\"\n"
        ));
    }
    config.push_str(&format!(
        "[[inputs.prometheus]]\n  urls = [\"http://{metrics_addr}/metrics\"]\n  namepass = [\"requests\"]\n"
    ));
    config
}

async fn start_replica(template: &PodTemplate, name: String) -> Result<Replica, StartError> {
    if let Some(binaries) = &template.binaries {
        return start_processes(template, binaries, name).await;
    }
    let app = app::App::bind(app::Config {
        listen: "127.0.0.1:0".parse().expect("loopback address"),
        metrics_listen: "127.0.0.1:0".parse().expect("loopback address"),
        capacity: template.capacity,
        host: name.clone(),
        deployment: template.deployment.clone(),
    })
    .await?;
    let app_addr = app.app_addr();
    let metrics_addr = app.metrics_addr();
    let (stop_app, app_stopped) = oneshot::channel();
    let app_task = tokio::spawn(app.serve(async {
        let _ = app_stopped.await;
    }));
    let config = agent::config::Config::parse(&agent_config(template, metrics_addr), |_| None)?;
    let telemetry = agent::telemetry::Telemetry::new();
    let sidecar = agent::Agent::new(config, None, &telemetry)?;
    let (stop_agent, agent_stopped) = oneshot::channel();
    let agent_task = tokio::spawn(sidecar.run(async {
        let _ = agent_stopped.await;
    }));
    Ok(Replica {
        name,
        app_addr,
        running: Running::InProcess {
            stop_app: Some(stop_app),
            stop_agent: Some(stop_agent),
            app_task,
            agent_task,
        },
    })
}

/// A free loopback address (bound, read, released).
fn free_loopback() -> Result<SocketAddr, StartError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(StartError::Port)
}

fn spawn(command: &mut Command, program: &std::path::Path) -> Result<Child, StartError> {
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StartError::Spawn {
            program: program.to_owned(),
            source,
        })
}

/// A replica as two processes, as in a pod: the app, then its agent once the app listens.
async fn start_processes(
    template: &PodTemplate,
    binaries: &Binaries,
    name: String,
) -> Result<Replica, StartError> {
    let (app_addr, metrics_addr) = (free_loopback()?, free_loopback()?);
    let mut command = Command::new(&binaries.app);
    command
        .arg("--listen")
        .arg(app_addr.to_string())
        .arg("--metrics-listen")
        .arg(metrics_addr.to_string())
        .env("HOSTNAME", &name)
        .env("APP_DEPLOYMENT", &template.deployment);
    if let Some(capacity) = template.capacity {
        command.arg("--capacity").arg(capacity.to_string());
    }
    let mut app = spawn(&mut command, &binaries.app)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(metrics_addr).await.is_err() {
        if tokio::time::Instant::now() > deadline {
            let _ = app.start_kill();
            return Err(StartError::AppDown(metrics_addr));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = binaries.config_dir.join(format!("{name}.conf"));
    std::fs::write(&path, agent_config(template, metrics_addr)).map_err(|source| {
        StartError::WriteConfig {
            path: path.clone(),
            source,
        }
    })?;
    let agent = spawn(
        Command::new(&binaries.agent).arg("--config").arg(&path),
        &binaries.agent,
    )?;
    Ok(Replica {
        name,
        app_addr,
        running: Running::Processes {
            app: Box::new(app),
            agent: Box::new(agent),
        },
    })
}

/// SIGTERM, as the kubelet stops a container (the processes handle it: the agent flushes once
/// more), then SIGKILL if it is still running after `grace`.
pub(crate) async fn terminate(mut child: Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

async fn stop_replica(replica: Replica) {
    match replica.running {
        Running::InProcess {
            mut stop_app,
            mut stop_agent,
            app_task,
            agent_task,
        } => {
            if let Some(stop) = stop_app.take() {
                let _ = stop.send(());
            }
            if let Some(stop) = stop_agent.take() {
                let _ = stop.send(());
            }
            // The app drains in-flight requests; the agent flushes once more.
            let _ = tokio::time::timeout(Duration::from_secs(5), app_task).await;
            let _ = tokio::time::timeout(Duration::from_secs(15), agent_task).await;
        }
        Running::Processes { app, agent } => {
            tokio::join!(
                terminate(*app, Duration::from_secs(5)),
                terminate(*agent, Duration::from_secs(15))
            );
        }
    }
}
