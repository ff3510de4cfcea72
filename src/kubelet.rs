//! A local kubelet: turns the stand-in Deployment's replica count into running replicas, each
//! an app instance with its own agent sidecar (in-process, on loopback ports), and keeps the
//! Service's endpoint list (what the load generator spreads over) and the Deployment's status.
//!
//! Scale-down removes a replica from the endpoints first, then stops its app and its agent
//! (which flushes once more), as Kubernetes does with a terminating pod.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_standin::{Handle, WorkloadKind};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How every replica is made.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    pub namespace: String,
    pub deployment: String,
    /// Requests per second one replica serves (`--capacity`).
    pub capacity: Option<f64>,
    /// The processor's write API, e.g. `http://127.0.0.1:9092`.
    pub processor_url: String,
    /// Agent interval and flush interval.
    pub interval: Duration,
    pub flush_interval: Duration,
}

struct Replica {
    name: String,
    app_addr: SocketAddr,
    stop_app: Option<oneshot::Sender<()>>,
    stop_agent: Option<oneshot::Sender<()>>,
    app_task: JoinHandle<()>,
    agent_task: JoinHandle<()>,
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

async fn start_replica(template: &PodTemplate, name: String) -> Result<Replica, StartError> {
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
    // The tutorial's sidecar settings, at the lab's pace.
    let config_text = format!(
        "[agent]\n  interval = \"{}ms\"\n  round_interval = true\n  flush_interval = \"{}ms\"\n  omit_hostname = true\n\
         [[outputs.influxdb]]\n  urls = [\"{}\"]\n  database = \"autoscale\"\n  retention_policy = \"autogen\"\n  timeout = \"2s\"\n\
         [[inputs.prometheus]]\n  urls = [\"http://{metrics_addr}/metrics\"]\n  namepass = [\"requests\"]\n",
        template.interval.as_millis(),
        template.flush_interval.as_millis(),
        template.processor_url,
    );
    let config = agent::config::Config::parse(&config_text, |_| None)?;
    let telemetry = agent::telemetry::Telemetry::new();
    let sidecar = agent::Agent::new(config, None, &telemetry)?;
    let (stop_agent, agent_stopped) = oneshot::channel();
    let agent_task = tokio::spawn(sidecar.run(async {
        let _ = agent_stopped.await;
    }));
    Ok(Replica {
        name,
        app_addr,
        stop_app: Some(stop_app),
        stop_agent: Some(stop_agent),
        app_task,
        agent_task,
    })
}

async fn stop_replica(mut replica: Replica) {
    if let Some(stop) = replica.stop_app.take() {
        let _ = stop.send(());
    }
    if let Some(stop) = replica.stop_agent.take() {
        let _ = stop.send(());
    }
    // The app drains in-flight requests; the agent flushes once more.
    let _ = tokio::time::timeout(Duration::from_secs(5), replica.app_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(15), replica.agent_task).await;
}
