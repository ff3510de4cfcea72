//! The Kapacitor-compatible stream processor: InfluxDB write API, TICKscript tasks, scaling.
//!
//! # Layout
//! In the order data flows, then what surrounds it:
//! - [`server`]: the listener (connection limit; per connection the header-read and idle
//!   timeouts); [`write_api`]: the InfluxDB-compatible HTTP handlers (`/write`, `/ping`, ...),
//!   which read the body (size limit, body-read timeout, gzip) and hand it to
//! - [`line_protocol`]: request body -> [`point::Batch`] + InfluxDB 1.x per-line errors (pure);
//!   [`point`]: the parsed points that subscribers read (spans into the body).
//! - [`routing`]: (db, rp, measurement) -> [`routing::Subscriber`]s, the seam tasks plug into.
//! - [`tasks`]: task definitions and their store, `[load]`, the per-task runtime feeding each
//!   task's [`pipeline::Graph`] (queue, loop, scale calls, influxDBOut's writer) and the JSON
//!   the task API reads; [`task_api`]: `/kapacitor/v1/tasks...`; [`ha_sync`]: the same tasks
//!   on every replica (task changes forwarded to `[ha] peers`, the periodic anti-entropy sync
//!   and its version rule).
//! - [`tick`]: TICKscript -> a validated pipeline (lexer, parser, bind, nodes, lambdas).
//! - [`pipeline`]: a compiled task's nodes as pure state machines (time passed in);
//!   `pipeline::autoscale` is the k8sAutoscale node.
//! - [`scaler`]: what a k8sAutoscale node asks for ([`scaler::ScaleIntent`]), the pure
//!   decision (`scaler::decision`), and who carries it out: `scaler::kubernetes` with `kube`,
//!   `scaler::dry_run` in memory.
//! - [`ha`]: high availability, the Lease election and the gate every Kubernetes write asks.
//! - [`startup`]: what `serve` checks before serving (data_dir writable, Kubernetes reachable).
//! - [`config`]: `kapacitor.conf`-shaped TOML, one file per section, unknown keys warned about
//!   by name; it imports nothing else of the crate. [`clock`]: the processor clock every part
//!   is handed; [`telemetry`]: `/metrics`; [`cli`]: the `kapacitor`-style client commands
//!   (`define`, `enable`, `show`, ...); [`replay`]: `processor replay`, recorded line protocol
//!   through a task's pipeline and the scaling decision on a simulated clock.
//!
//! [`run`] wires them: `config -> Router -> WriteApi -> Server`, until the shutdown future ends.

pub mod allocator;
pub mod cli;
pub mod clock;
pub mod config;
pub mod decisions;
pub mod ha;
pub mod ha_sync;
pub mod line_protocol;
pub mod pipeline;
pub mod point;
pub mod replay;
pub mod routing;
pub mod scaler;
pub mod server;
pub mod startup;
pub mod task_api;
pub mod tasks;
pub mod telemetry;
pub mod tick;
pub mod write_api;

use std::future::Future;
use std::sync::Arc;

use config::Config;
use routing::Router;
use write_api::WriteApi;

/// Why the processor could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Server(#[from] server::Error),
    #[error(transparent)]
    Tasks(#[from] tasks::Error),
}

/// What a processor is built with besides its config.
#[derive(Clone)]
pub struct Options {
    /// Carries out k8sAutoscale intents. `None`: tasks whose k8sAutoscale nodes are not
    /// `.dryRun()` fail to enable, naming the node; dry-run nodes use an in-memory scaler.
    pub scaler: Option<Arc<dyn scaler::Scaler>>,
    /// The processor clock ("now" for writes without a timestamp, lateness, expiry).
    pub clock: clock::Clock,
    /// Serve `/metrics` from the process-wide `metrics` recorder (installed on first use).
    pub metrics: bool,
    /// HA: the election's gate, for `/ready` (the scaler holds its own clone).
    pub gate: ha::Gate,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scaler: None,
            clock: clock::system(),
            metrics: true,
            gate: ha::Gate::standalone(),
        }
    }
}

/// A bound processor: the listener is open and tasks are running; [`Processor::serve`] answers
/// requests. For in-process use (tests, the lab): bind `127.0.0.1:0`, read
/// [`Processor::local_addr`], then spawn `serve`.
pub struct Processor {
    server: server::Server,
    tasks: Arc<tasks::TaskMaster>,
    /// How long a stop waits for in-flight requests, then for influxDBOut's last flush.
    shutdown_timeout: std::time::Duration,
    /// The anti-entropy sync with `[ha] peers`, when there are any.
    sync: Option<tokio::task::JoinHandle<()>>,
}

impl Processor {
    /// Restores and loads tasks, then binds `[http] bind-address`.
    pub async fn bind(config: Config, options: Options) -> Result<Processor, Error> {
        let router = Arc::new(Router::new());
        let api = Arc::new(WriteApi::new(
            config.http.clone(),
            config.default_retention_policy.clone(),
            Arc::clone(&router),
            Arc::clone(&options.clock),
        ));
        api.set_gate(options.gate.clone());
        // The replica's identity: `[ha] identity`, else the host name (the pod name).
        let identity = config.ha.identity.clone();
        let tasks = tasks::TaskMaster::start(tasks::Options {
            router,
            scaler: options.scaler,
            clock: Arc::clone(&options.clock),
            config: config.tasks.clone(),
            data_dir: Some(config.data_dir.clone()),
        })?;
        tasks.set_identity(identity.clone());
        let metrics = if options.metrics {
            let installed = telemetry::Telemetry::install();
            ha_sync::describe();
            installed
        } else {
            None
        };
        let mut task_api = task_api::TaskApi::new(Arc::clone(&tasks), metrics);
        let others = config.peers.others(&identity);
        let sync = if others.is_empty() {
            None
        } else {
            tracing::info!(%identity, peers = ?others, "tasks propagated to peer replicas");
            let client = Arc::new(ha_sync::PeerClient::new(
                others,
                &config.peers,
                &config.http,
            ));
            task_api = task_api.with_peers(Arc::clone(&client));
            Some(ha_sync::spawn(
                client,
                Arc::clone(&tasks),
                options.clock,
                config.peers.sync_interval,
                config.peers.tombstone_ttl,
            ))
        };
        api.set_extra_routes(Arc::new(task_api));
        let server =
            server::Server::bind(&config.http.bind_address, api, config.http.shutdown_timeout)
                .await?;
        Ok(Processor {
            server,
            tasks,
            shutdown_timeout: config.http.shutdown_timeout,
            sync,
        })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.local_addr()
    }

    /// The task master (define, enable, show tasks without HTTP).
    pub fn tasks(&self) -> &Arc<tasks::TaskMaster> {
        &self.tasks
    }

    /// Serves until `shutdown` completes, then stops every task.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        if let Some(address) = self.server.local_addr() {
            tracing::info!(%address, "listening");
        }
        self.server.serve(shutdown).await;
        if let Some(sync) = &self.sync {
            sync.abort();
        }
        self.tasks.stop_all(self.shutdown_timeout).await;
    }
}

/// Binds per `config` and serves until `shutdown` completes, without a Kubernetes scaler.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    run_with(config, Options::default(), shutdown).await
}

/// Binds per `config` with `options` (e.g. a [`scaler::Scaler`]) and serves until `shutdown`.
pub async fn run_with(
    config: Config,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    Processor::bind(config, options)
        .await?
        .serve(shutdown)
        .await;
    Ok(())
}
