//! Tasks: definitions (Kapacitor's shape), their persistence in the data dir, the `[load]`
//! directory, and the runtime that feeds a task's [`Graph`] from the [`Router`].
//!
//! A running task registers one [`Subscriber`] under its subscription keys; the write handler
//! hands it [`Delivery`]s without blocking (a bounded queue; when full the delivery is
//! dropped and counted). The task's own tokio task runs the graph: every delivery at the
//! processor clock's "now", a tick every second for lateness and expiry, then the graph's
//! [`Effect`]s: scaler calls for k8sAutoscale run beside the loop, one per node and target at
//! a time ([`scale_calls`]); influxDBOut's lines go to the task's [`influx_out`] writer
//! without waiting.

pub mod influx_out;
pub mod scale_calls;
pub mod settings;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::pipeline::{Effect, Graph, HttpOutData, HttpRows, NodeStats};
use crate::routing::{Delivery, Router, Subscriber, SubscriptionId};
use crate::scaler::Scaler;
use crate::scaler::dry_run::DryRunScaler;
use crate::tick::{self, Dbrp, DotStats, Node, VarOverrides};
use crate::write_api::Clock;

pub use settings::{InfluxDb, Load, PipelineConfig, TasksConfig};

/// Why a task operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no task exists with id {0:?}")]
    NotFound(String),
    #[error("task {0:?} already exists")]
    Exists(String),
    #[error(
        "task id {0:?} is invalid: use 1 to 200 letters, digits, '_', '-' and '.' (not '.' or '..')"
    )]
    InvalidId(String),
    #[error("task {id}: {source}")]
    Script {
        id: String,
        #[source]
        source: tick::Error,
    },
    #[error("task {id}: {source}")]
    Runtime {
        id: String,
        #[source]
        source: crate::pipeline::Error,
    },
    #[error(
        "task {id}: {node} scales through the Kubernetes API but no scaler is configured (add a [kubernetes] section or use .dryRun())"
    )]
    NoScaler { id: String, node: String },
    #[error("task {id}: {node} cannot write: {source}")]
    NoInfluxDb {
        id: String,
        node: String,
        #[source]
        source: influx_out::Error,
    },
    #[error(
        "task {id}: {node} names cluster {cluster:?}, which no enabled [[kubernetes]] section has as its id"
    )]
    UnknownCluster {
        id: String,
        node: String,
        cluster: String,
    },
    #[error("task {0}: must have at least one dbrp (`-dbrp db.rp` or a `dbrp` statement)")]
    NoDbrp(String),
    #[error("task type {0:?} is not supported: only stream")]
    Type(String),
    #[error("status {0:?} is not enabled or disabled")]
    Status(String),
    #[error(transparent)]
    Persist(#[from] store::Error),
    #[error("load dir: {path}: {reason}")]
    Load { path: PathBuf, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A task's database and retention policy, as Kapacitor's JSON writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbrpJson {
    pub db: String,
    pub rp: String,
}

/// A task definition as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDef {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub dbrps: Vec<DbrpJson>,
    pub script: String,
    #[serde(default)]
    pub vars: VarOverrides,
    /// `enabled` or `disabled`.
    pub status: String,
    /// RFC 3339.
    pub created: String,
    pub modified: String,
    #[serde(rename = "last-enabled", default)]
    pub last_enabled: String,
}

/// Fields of a create or update request (absent = unchanged on update).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskRequest {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub dbrps: Option<Vec<DbrpJson>>,
    pub script: Option<String>,
    pub vars: Option<VarOverrides>,
    pub status: Option<String>,
}

struct Running {
    subscriptions: Vec<SubscriptionId>,
    /// Ends when the task's loop does (stopped, or failed: see [`Shared::failure`]).
    handle: tokio::task::JoinHandle<()>,
    /// The task's influxDBOut writer: it flushes what it holds once the task loop is gone.
    writer: Option<tokio::task::JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// What the running task publishes for the API.
struct Shared {
    stats: Mutex<Vec<NodeStats>>,
    http_outs: BTreeMap<String, HttpOutData>,
    throughput: Mutex<f64>,
    dropped: AtomicU64,
    /// Why the task's loop died (a panic in a node); the task then shows as not executing,
    /// with this as its error.
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

struct Entry {
    def: TaskDef,
    pipeline: Option<tick::Pipeline>,
    running: Option<Running>,
    error: String,
}

/// Everything a task master needs from the server.
pub struct Options {
    pub router: Arc<Router>,
    /// Carries out k8sAutoscale intents; `None`: only `.dryRun()` nodes may run (with an
    /// in-memory [`DryRunScaler`]).
    pub scaler: Option<Arc<dyn Scaler>>,
    pub clock: Clock,
    pub config: TasksConfig,
    /// Where task definitions are saved (`<data_dir>/tasks/`); `None`: nothing is saved.
    pub data_dir: Option<PathBuf>,
}

/// The set of tasks.
pub struct TaskMaster {
    router: Arc<Router>,
    scaler: Option<Arc<dyn Scaler>>,
    dry_run: Arc<DryRunScaler>,
    clock: Clock,
    config: TasksConfig,
    store: Option<store::TaskStore>,
    /// Held by every change (define, update, delete, the load dir) from its check to its
    /// saved file: changes of one id never interleave, and the store has one writer.
    changes: Mutex<()>,
    tasks: Mutex<BTreeMap<String, Entry>>,
    influx: Arc<influx_out::Client>,
}

/// The longest task id (it names a file in the data dir).
const MAX_ID_LEN: usize = 200;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn rfc3339(ns: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

impl TaskMaster {
    /// Restores saved tasks, applies the `[load]` directory and starts enabled tasks. Must be
    /// called inside a tokio runtime.
    pub fn start(options: Options) -> Result<Arc<TaskMaster>> {
        let (store, restored) = match &options.data_dir {
            Some(dir) => {
                let (store, restored) = store::TaskStore::open(dir)?;
                (Some(store), restored)
            }
            None => (None, store::Restored::default()),
        };
        for file in &restored.recovered {
            tracing::warn!(file = %file.path.display(), reason = %file.reason, "saved task unreadable: its previous copy was restored");
        }
        for file in &restored.unreadable {
            tracing::error!(file = %file.path.display(), reason = %file.reason, "saved task unreadable: not started (the file is left as it is)");
        }
        let master = Arc::new(TaskMaster {
            dry_run: Arc::new(DryRunScaler::new(Arc::clone(&options.clock))),
            influx: Arc::new(influx_out::Client::new(&options.config.influxdb)),
            router: options.router,
            scaler: options.scaler,
            clock: options.clock,
            config: options.config,
            store,
            changes: Mutex::new(()),
            tasks: Mutex::new(BTreeMap::new()),
        });
        for def in restored.tasks {
            let id = def.id.clone();
            let enabled = def.status == "enabled";
            let entry = Entry {
                def,
                pipeline: None,
                running: None,
                error: String::new(),
            };
            master.lock().insert(id.clone(), entry);
            if enabled && let Err(error) = master.set_running(&id, true) {
                tracing::error!(%error, task = %id, "saved task cannot start");
                if let Some(entry) = master.lock().get_mut(&id) {
                    entry.error = error.to_string();
                }
            }
        }
        if master.config.load.enabled {
            master.load_dir()?;
        }
        Ok(master)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves one definition (nothing without a data dir).
    fn save(&self, def: &TaskDef) -> Result<()> {
        match &self.store {
            Some(store) => Ok(store.save(def)?),
            None => Ok(()),
        }
    }

    /// `[load] dir`: every `<dir>/tasks/*.tick` becomes an enabled stream task named after
    /// the file; each must name its `dbrp`.
    fn load_dir(&self) -> Result<()> {
        let dir = self.config.load.dir.join("tasks");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), "load dir has no tasks directory");
                return Ok(());
            }
            Err(e) => {
                return Err(Error::Load {
                    path: dir,
                    reason: e.to_string(),
                });
            }
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for path in files {
            if path.extension().and_then(|e| e.to_str()) != Some("tick") {
                tracing::warn!(file = %path.display(), "load dir: ignoring a file that is not .tick");
                continue;
            }
            let load_err = |reason: String| Error::Load {
                path: path.clone(),
                reason,
            };
            let id = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let script = std::fs::read_to_string(&path).map_err(|e| load_err(e.to_string()))?;
            let pipeline = tick::compile(&script, &VarOverrides::new())
                .map_err(|e| load_err(e.to_string()))?;
            if pipeline.dbrps.is_empty() {
                return Err(load_err(
                    "the script names no dbrp (add `dbrp \"db\".\"rp\"`)".into(),
                ));
            }
            let request = TaskRequest {
                id: Some(id.clone()),
                kind: Some("stream".into()),
                dbrps: Some(Vec::new()),
                script: Some(script),
                vars: None,
                status: Some("enabled".into()),
            };
            let exists = self.lock().contains_key(&id);
            let result = if exists {
                self.update(&id, request).map(drop)
            } else {
                self.create(request).map(drop)
            };
            result.map_err(|e| load_err(e.to_string()))?;
            tracing::info!(task = %id, file = %path.display(), "task loaded");
        }
        Ok(())
    }

    /// Defines a task (`POST /kapacitor/v1/tasks`).
    pub fn create(&self, request: TaskRequest) -> Result<serde_json::Value> {
        let id = request.id.clone().unwrap_or_default();
        if !valid_id(&id) {
            return Err(Error::InvalidId(id));
        }
        let now = rfc3339((self.clock)());
        let def = TaskDef {
            id: id.clone(),
            kind: request.kind.clone().unwrap_or_else(|| "stream".into()),
            dbrps: request.dbrps.clone().unwrap_or_default(),
            script: request.script.clone().unwrap_or_default(),
            vars: request.vars.clone().unwrap_or_default(),
            status: request.status.clone().unwrap_or_else(|| "disabled".into()),
            created: now.clone(),
            modified: now,
            last_enabled: String::new(),
        };
        // Compiled before the change begins: a slow script holds no other change.
        let pipeline = validate(&def)?;
        let enable = def.status == "enabled";
        let _changing = self.changing();
        if self.lock().contains_key(&id) {
            return Err(Error::Exists(id));
        }
        self.lock().insert(
            id.clone(),
            Entry {
                def,
                pipeline: Some(pipeline),
                running: None,
                error: String::new(),
            },
        );
        if enable && let Err(error) = self.set_running(&id, true) {
            self.lock().remove(&id);
            return Err(error);
        }
        // Saved with its last-enabled time; a task that cannot be saved does not exist.
        let saved = self.lock().get(&id).map(|e| e.def.clone());
        if let Some(def) = saved
            && let Err(error) = self.save(&def)
        {
            self.discard(&id);
            return Err(error);
        }
        self.get(&id)
    }

    /// Removes a task that was never saved, stopping it.
    fn discard(&self, id: &str) {
        let entry = self.lock().remove(id);
        if let Some(running) = entry.and_then(|e| e.running) {
            let _flushing = self.stop(running);
        }
    }

    /// Changes a task (`PATCH /kapacitor/v1/tasks/<id>`): script, vars, dbrps, status.
    pub fn update(&self, id: &str, request: TaskRequest) -> Result<serde_json::Value> {
        let _changing = self.changing();
        let (old, was_running, failed) = {
            let tasks = self.lock();
            let entry = tasks
                .get(id)
                .ok_or_else(|| Error::NotFound(id.to_owned()))?;
            let executing = executing(entry);
            (
                entry.def.clone(),
                executing,
                entry.running.is_some() && !executing,
            )
        };
        let mut def = old.clone();
        if let Some(kind) = request.kind {
            def.kind = kind;
        }
        if let Some(dbrps) = request.dbrps {
            def.dbrps = dbrps;
        }
        if let Some(script) = request.script {
            def.script = script;
        }
        if let Some(vars) = request.vars {
            def.vars = vars;
        }
        if let Some(status) = request.status {
            def.status = status;
        }
        let pipeline = validate(&def)?;
        let definition_changed = def.script != old.script
            || def.vars != old.vars
            || def.dbrps != old.dbrps
            || def.kind != old.kind;
        def.modified = rfc3339((self.clock)());
        let enable = def.status == "enabled";
        let old_pipeline = self.lock().get(id).and_then(|e| e.pipeline.clone());
        if let Some(entry) = self.lock().get_mut(id) {
            entry.def = def;
            entry.pipeline = Some(pipeline);
        }
        let restart = definition_changed || !enable;
        if failed || (was_running && restart) {
            self.set_running(id, false)?;
        }
        let started = if enable && (definition_changed || !was_running) {
            self.set_running(id, true)
        } else {
            Ok(())
        };
        let saved = started.and_then(|()| {
            let def = self.lock().get(id).map(|e| e.def.clone());
            def.map_or(Ok(()), |def| self.save(&def))
        });
        if let Err(error) = saved {
            // Back to the old definition, running as it was.
            self.set_running(id, false)?;
            if let Some(entry) = self.lock().get_mut(id) {
                entry.def = old;
                entry.pipeline = old_pipeline;
            }
            if was_running && let Err(again) = self.set_running(id, true) {
                tracing::error!(task = %id, error = %again, "the old definition cannot restart");
            }
            return Err(error);
        }
        self.get(id)
    }

    /// Deletes a task (`DELETE /kapacitor/v1/tasks/<id>`), stopping it first.
    pub fn delete(&self, id: &str) -> Result<()> {
        let _changing = self.changing();
        if !self.lock().contains_key(id) {
            return Err(Error::NotFound(id.to_owned()));
        }
        if let Some(store) = &self.store {
            store.remove(id)?;
        }
        self.discard(id);
        Ok(())
    }

    /// Stops a task's loop; its influxDBOut writer (returned) then flushes what it holds and
    /// ends.
    fn stop(&self, running: Running) -> Option<tokio::task::JoinHandle<()>> {
        for sub in running.subscriptions {
            self.router.unsubscribe(sub);
        }
        running.handle.abort();
        running.writer
    }

    fn set_running(&self, id: &str, run: bool) -> Result<()> {
        let mut tasks = self.lock();
        let entry = tasks
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(id.to_owned()))?;
        if !run {
            if let Some(running) = entry.running.take() {
                drop(tasks);
                let _flushing = self.stop(running);
            }
            return Ok(());
        }
        if entry
            .running
            .as_ref()
            .is_some_and(|r| r.shared.failure().is_none())
        {
            return Ok(());
        }
        if let Some(failed) = entry.running.take() {
            let _flushing = self.stop(failed);
        }
        let pipeline = match &entry.pipeline {
            Some(p) => p.clone(),
            None => validate(&entry.def)?,
        };
        let settings = self.config.pipeline.settings();
        let graph = Graph::new(id, &pipeline, settings).map_err(|source| Error::Runtime {
            id: id.to_owned(),
            source,
        })?;
        let scaler: Arc<dyn Scaler> = match (&self.scaler, graph.scaling_nodes().first()) {
            (Some(scaler), _) => {
                for node in &pipeline.nodes {
                    if let crate::tick::NodeSpec::K8sAutoscale(spec) = &node.spec
                        && !scaler.has_cluster(&spec.cluster)
                    {
                        return Err(Error::UnknownCluster {
                            id: id.to_owned(),
                            node: node.name.clone(),
                            cluster: spec.cluster.clone(),
                        });
                    }
                }
                Arc::clone(scaler)
            }
            (None, Some(node)) => {
                return Err(Error::NoScaler {
                    id: id.to_owned(),
                    node: (*node).to_owned(),
                });
            }
            (None, None) => Arc::clone(&self.dry_run) as Arc<dyn Scaler>,
        };
        let mut influx_nodes = Vec::new();
        for node in &pipeline.nodes {
            if let crate::tick::NodeSpec::InfluxDbOut(spec) = &node.spec {
                self.influx
                    .check(&spec.cluster)
                    .map_err(|source| Error::NoInfluxDb {
                        id: id.to_owned(),
                        node: node.name.clone(),
                        source,
                    })?;
                influx_nodes.push((node.id, Arc::new(spec.clone())));
            }
        }
        let (influx, writer) = if influx_nodes.is_empty() {
            (None, None)
        } else {
            let (influx, writer) = influx_out::spawn(id, influx_nodes, Arc::clone(&self.influx));
            (Some(influx), Some(writer))
        };
        let mut stats = graph.stats();
        if let Some(influx) = &influx {
            influx.merge_stats(&mut stats);
        }
        let shared = Arc::new(Shared {
            stats: Mutex::new(stats),
            http_outs: graph.http_outs().clone(),
            throughput: Mutex::new(0.0),
            dropped: AtomicU64::new(0),
            failure: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel(self.config.pipeline.queue_size.max(1));
        let subscriber = Arc::new(Queue {
            task: id.to_owned(),
            tx,
            shared: Arc::clone(&shared),
            warning: Mutex::new(influx_out::DropWarning::default()),
        });
        let handle = tokio::spawn(run_guarded(
            id.to_owned(),
            run_task(
                graph,
                rx,
                Arc::clone(&self.clock),
                scaler,
                influx,
                Arc::clone(&shared),
            ),
            Arc::clone(&shared),
        ));
        let dbrps = all_dbrps(&entry.def, &pipeline);
        let subscriptions = pipeline
            .subscription_keys(&dbrps)
            .into_iter()
            .map(|key| {
                self.router
                    .subscribe(key, Arc::clone(&subscriber) as Arc<dyn Subscriber>)
            })
            .collect();
        entry.running = Some(Running {
            subscriptions,
            handle,
            writer,
            shared,
        });
        entry.error.clear();
        entry.def.last_enabled = rfc3339((self.clock)());
        tracing::info!(task = %id, "task enabled");
        Ok(())
    }

    /// One task in Kapacitor's JSON shape, with stats and the DOT graph.
    pub fn get(&self, id: &str) -> Result<serde_json::Value> {
        let tasks = self.lock();
        let entry = tasks
            .get(id)
            .ok_or_else(|| Error::NotFound(id.to_owned()))?;
        Ok(task_json(entry))
    }

    /// Every task, by id.
    pub fn list(&self) -> serde_json::Value {
        let tasks = self.lock();
        serde_json::json!({ "tasks": tasks.values().map(task_json).collect::<Vec<_>>() })
    }

    /// The latest points of an httpOut node as `{"series": [...]}`.
    pub fn http_out(&self, id: &str, endpoint: &str) -> Option<serde_json::Value> {
        let tasks = self.lock();
        let data = tasks
            .get(id)?
            .running
            .as_ref()?
            .shared
            .http_outs
            .get(endpoint)?
            .clone();
        drop(tasks);
        let rows = data.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let series: Vec<serde_json::Value> = rows.values().map(rows_json).collect();
        Some(serde_json::json!({ "series": series }))
    }

    /// `(tasks, enabled tasks, subscriptions)` for `/kapacitor/v1/debug/vars`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let tasks = self.lock();
        let enabled = tasks.values().filter(|e| executing(e)).count();
        let subs = tasks
            .values()
            .filter_map(|e| e.running.as_ref())
            .map(|r| r.subscriptions.len())
            .sum();
        (tasks.len(), enabled, subs)
    }

    /// Node stats of every running task: `(task, stats)`.
    pub fn node_stats(&self) -> Vec<(String, Vec<NodeStats>, u64)> {
        self.lock()
            .iter()
            .filter_map(|(id, e)| {
                let running = e.running.as_ref()?;
                let stats = running
                    .shared
                    .stats
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                Some((
                    id.clone(),
                    stats,
                    running.shared.dropped.load(Ordering::Relaxed),
                ))
            })
            .collect()
    }

    /// Stops every task (shutdown) and waits for their influxDBOut writers' last flush, at most
    /// `limit` (the `[http] shutdown-timeout`) or what the writers allow themselves
    /// (`[[influxdb]] timeout` per URL), whichever is shorter.
    pub async fn stop_all(&self, limit: Duration) {
        let running: Vec<Running> = self
            .lock()
            .values_mut()
            .filter_map(|e| e.running.take())
            .collect();
        let writers: Vec<_> = running.into_iter().filter_map(|r| self.stop(r)).collect();
        let limit = limit.min(self.influx.stop_limit() + Duration::from_secs(1));
        let all = async {
            for writer in writers {
                let _ = writer.await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::error!(
                ?limit,
                "influxDBOut writers did not finish their last flush"
            );
        }
    }
}

/// One group of an httpOut node as a series, as Kapacitor's: `time` then the fields in order
/// of first appearance (`null` where a point lacks one), one row per point.
fn rows_json(rows: &HttpRows) -> serde_json::Value {
    let mut names: Vec<&str> = Vec::new();
    for point in &rows.points {
        for (k, _) in &point.fields {
            if !names.contains(&&**k) {
                names.push(k);
            }
        }
    }
    let columns: Vec<serde_json::Value> = std::iter::once("time")
        .chain(names.iter().copied())
        .map(|c| serde_json::json!(c))
        .collect();
    let values: Vec<serde_json::Value> = rows
        .points
        .iter()
        .map(|p| {
            let row: Vec<serde_json::Value> =
                std::iter::once(serde_json::json!(rfc3339_nanos(p.time)))
                    .chain(
                        names
                            .iter()
                            .map(|n| p.field(n).map_or(serde_json::Value::Null, |v| v.to_json())),
                    )
                    .collect();
            serde_json::Value::Array(row)
        })
        .collect();
    let mut series = serde_json::json!({
        "name": &*rows.name,
        "columns": columns,
        "values": values,
    });
    if !rows.group.dims.is_empty()
        && let Some(obj) = series.as_object_mut()
    {
        let tags: serde_json::Map<String, serde_json::Value> = rows
            .group
            .dims
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(&**v)))
            .collect();
        obj.insert("tags".into(), serde_json::Value::Object(tags));
    }
    series
}

/// RFC 3339 with the fraction Go's `RFC3339Nano` writes (trailing zeros dropped), as
/// Kapacitor's JSON times: `…T00:16:50Z`, `…T00:16:50.5Z`.
fn rfc3339_nanos(ns: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    let text = humantime::format_rfc3339_nanos(time).to_string();
    match text.strip_suffix('Z').and_then(|t| t.split_once('.')) {
        Some((seconds, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                format!("{seconds}Z")
            } else {
                format!("{seconds}.{fraction}Z")
            }
        }
        None => text,
    }
}

fn all_dbrps(def: &TaskDef, pipeline: &tick::Pipeline) -> Vec<Dbrp> {
    let mut dbrps: Vec<Dbrp> = def
        .dbrps
        .iter()
        .map(|d| Dbrp {
            database: d.db.clone(),
            retention_policy: d.rp.clone(),
        })
        .collect();
    for d in &pipeline.dbrps {
        if !dbrps.contains(d) {
            dbrps.push(d.clone());
        }
    }
    dbrps
}

fn validate(def: &TaskDef) -> Result<tick::Pipeline> {
    if def.kind != "stream" {
        return Err(Error::Type(def.kind.clone()));
    }
    if def.status != "enabled" && def.status != "disabled" {
        return Err(Error::Status(def.status.clone()));
    }
    let pipeline = tick::compile(&def.script, &def.vars).map_err(|source| Error::Script {
        id: def.id.clone(),
        source,
    })?;
    if all_dbrps(def, &pipeline).is_empty() {
        return Err(Error::NoDbrp(def.id.clone()));
    }
    Ok(pipeline)
}

struct StatsView<'a> {
    stats: &'a [NodeStats],
    throughput: f64,
}

impl DotStats for StatsView<'_> {
    fn graph(&self) -> Vec<(String, String)> {
        vec![(
            "throughput".into(),
            format!("{:.2} points/s", self.throughput),
        )]
    }
    fn node(&self, node: &Node) -> Vec<(String, String)> {
        let Some(stats) = self.stats.get(node.id) else {
            return Vec::new();
        };
        let mut attrs = vec![(
            "avg_exec_time_ns".to_string(),
            tick::value::format_go_duration(i64::try_from(stats.avg_exec_time_ns).unwrap_or(0)),
        )];
        attrs.extend(
            stats
                .specific
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.to_string())),
        );
        attrs
    }
    fn edge(&self, _parent: &Node, child: &Node) -> Vec<(String, String)> {
        let processed = self.stats.get(child.id).map_or(0, |s| s.collected);
        vec![("processed".into(), processed.to_string())]
    }
}

/// True when the task runs: enabled, and its loop has not failed.
fn executing(entry: &Entry) -> bool {
    entry
        .running
        .as_ref()
        .is_some_and(|r| r.shared.failure().is_none())
}

/// The task's dbrps as Kapacitor lists them: those of the define call, then the script's.
fn dbrps_json(entry: &Entry) -> Vec<DbrpJson> {
    let Some(pipeline) = &entry.pipeline else {
        return entry.def.dbrps.clone();
    };
    all_dbrps(&entry.def, pipeline)
        .into_iter()
        .map(|d| DbrpJson {
            db: d.database,
            rp: d.retention_policy,
        })
        .collect()
}

fn task_json(entry: &Entry) -> serde_json::Value {
    let def = &entry.def;
    let (stats, throughput) = match &entry.running {
        Some(r) => (
            r.shared
                .stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            *r.shared
                .throughput
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        ),
        None => (Vec::new(), 0.0),
    };
    let dot = match &entry.pipeline {
        Some(p) if entry.running.is_some() => p.dot_with_stats(
            &def.id,
            &StatsView {
                stats: &stats,
                throughput,
            },
        ),
        Some(p) => p.dot(&def.id),
        None => tick::compile(&def.script, &def.vars)
            .map(|p| p.dot(&def.id))
            .unwrap_or_default(),
    };
    let node_stats: serde_json::Map<String, serde_json::Value> = stats
        .iter()
        .map(|s| {
            let mut m = serde_json::Map::new();
            m.insert("avg_exec_time_ns".into(), s.avg_exec_time_ns.into());
            m.insert("collected".into(), s.collected.into());
            m.insert("emitted".into(), s.emitted.into());
            m.insert("errors".into(), s.errors.into());
            m.insert("working_cardinality".into(), s.working_cardinality.into());
            for (k, v) in &s.specific {
                m.insert((*k).into(), (*v).into());
            }
            (s.name.clone(), serde_json::Value::Object(m))
        })
        .collect();
    serde_json::json!({
        "link": {"rel": "self", "href": format!("/kapacitor/v1/tasks/{}", def.id)},
        "id": def.id,
        "template-id": "",
        "type": def.kind,
        "dbrps": dbrps_json(entry),
        "script": def.script,
        "vars": def.vars,
        "dot": dot,
        "status": def.status,
        "executing": executing(entry),
        "error": entry
            .running
            .as_ref()
            .and_then(|r| r.shared.failure())
            .unwrap_or_else(|| entry.error.clone()),
        "stats": {
            "task-stats": {"throughput": throughput},
            "node-stats": node_stats,
        },
        "created": def.created,
        "modified": def.modified,
        "last-enabled": def.last_enabled,
    })
}

/// The task's subscriber: queues deliveries for the task's loop without blocking.
struct Queue {
    task: String,
    tx: mpsc::Sender<Delivery>,
    shared: Arc<Shared>,
    /// Drops are logged at most every 10 s, with the count since the last log.
    warning: Mutex<influx_out::DropWarning>,
}

impl Subscriber for Queue {
    fn deliver(&self, delivery: Delivery) {
        if let Err(error) = self.tx.try_send(delivery) {
            let points = match &error {
                mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => {
                    d.len()
                }
            };
            self.shared
                .dropped
                .fetch_add(points as u64, Ordering::Relaxed);
            let due = self
                .warning
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(points, tokio::time::Instant::now());
            if let Some(points) = due {
                match error {
                    mpsc::error::TrySendError::Full(_) => {
                        tracing::error!(task = %self.task, points, "task queue full: points dropped (logged at most every 10 s)")
                    }
                    mpsc::error::TrySendError::Closed(_) => {
                        tracing::error!(task = %self.task, points, "task failed: points dropped (logged at most every 10 s)")
                    }
                }
            }
        }
    }
}

/// A scaler call a task waits to make: the k8sAutoscale node, its intent and its point.
type ScaleCall = (
    usize,
    Box<crate::scaler::ScaleIntent>,
    crate::pipeline::Point,
);

/// What a finished scaler call hands back to the task loop.
type ScaleDone = (
    scale_calls::Key,
    usize,
    crate::pipeline::Point,
    std::result::Result<crate::scaler::ScaleOutcome, crate::scaler::ScaleError>,
);

/// Runs a task's loop; a panic in it (a defect, never expected) marks the task failed with
/// the panic's message instead of leaving it shown as executing.
async fn run_guarded(task: String, run: impl Future<Output = ()>, shared: Arc<Shared>) {
    use futures::FutureExt;
    if let Err(panic) = std::panic::AssertUnwindSafe(run).catch_unwind().await {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        tracing::error!(task = %task, panic = %message, "task failed: its loop panicked; points for it are dropped until it is redefined or re-enabled");
        *shared.failure.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(format!("task failed: {message}"));
    }
}

async fn run_task(
    mut graph: Graph,
    mut rx: mpsc::Receiver<Delivery>,
    clock: Clock,
    scaler: Arc<dyn Scaler>,
    mut influx: Option<influx_out::Handle>,
    shared: Arc<Shared>,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut effects = Vec::new();
    let mut last_collected = 0u64;
    let mut last_tick = clock();
    // Scaler calls run beside the loop (aborted with it), one per node and target at a time.
    let mut calls: scale_calls::ScaleCalls<ScaleCall> = scale_calls::ScaleCalls::default();
    let mut in_flight: tokio::task::JoinSet<ScaleDone> = tokio::task::JoinSet::new();
    let mut keys: HashMap<tokio::task::Id, scale_calls::Key> = HashMap::new();
    let start = |in_flight: &mut tokio::task::JoinSet<ScaleDone>,
                 keys: &mut HashMap<tokio::task::Id, scale_calls::Key>,
                 key: scale_calls::Key,
                 (node, intent, point): ScaleCall| {
        let scaler = Arc::clone(&scaler);
        let call_key = key.clone();
        let handle = in_flight.spawn(async move {
            let result = scaler.scale(*intent).await;
            (call_key, node, point, result)
        });
        keys.insert(handle.id(), key);
    };
    loop {
        tokio::select! {
            delivery = rx.recv() => match delivery {
                Some(delivery) => graph.write(delivery.points(), clock(), &mut effects),
                None => break,
            },
            Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                let key = match done {
                    Ok((id, (key, node, point, result))) => {
                        keys.remove(&id);
                        graph.scaled(node, point, result, clock(), &mut effects);
                        key
                    }
                    Err(error) => {
                        tracing::error!(%error, "scaler call failed");
                        match keys.remove(&error.id()) {
                            Some(key) => key,
                            None => continue,
                        }
                    }
                };
                if let Some(next) = calls.finished(&key) {
                    start(&mut in_flight, &mut keys, key, next);
                }
            }
            _ = ticker.tick() => {
                let now = clock();
                graph.tick(now, &mut effects);
                let collected = graph.stats().first().map_or(0, |s| s.collected);
                let elapsed = (now - last_tick) as f64 / 1e9;
                if elapsed > 0.0 {
                    *shared.throughput.lock().unwrap_or_else(|p| p.into_inner()) =
                        (collected.saturating_sub(last_collected)) as f64 / elapsed;
                }
                last_collected = collected;
                last_tick = now;
            }
        }
        let mut lines = Vec::new();
        for effect in std::mem::take(&mut effects) {
            match effect {
                Effect::Scale {
                    node,
                    intent,
                    point,
                } => {
                    let key = (node, intent.target.clone());
                    let superseded = calls.superseded;
                    if let Some(call) = calls.offer(key.clone(), (node, intent, point)) {
                        start(&mut in_flight, &mut keys, key, call);
                    } else if calls.superseded > superseded {
                        tracing::debug!(
                            node,
                            superseded = calls.superseded,
                            "scale intent superseded by a newer one while a call is in flight"
                        );
                    }
                }
                Effect::Write { node, line, .. } => lines.push((node, line)),
            }
        }
        let mut stats = graph.stats();
        if let Some(influx) = &mut influx {
            influx.send(lines, tokio::time::Instant::now());
            influx.merge_stats(&mut stats);
        }
        *shared.stats.lock().unwrap_or_else(|p| p.into_inner()) = stats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            stats: Mutex::new(Vec::new()),
            http_outs: BTreeMap::new(),
            throughput: Mutex::new(0.0),
            dropped: AtomicU64::new(0),
            failure: Mutex::new(None),
        })
    }

    #[tokio::test]
    async fn a_task_loop_that_panics_is_reported_failed_with_its_message() {
        let shared = shared();
        let capacity = usize::MAX;
        tokio::spawn(run_guarded(
            "t".into(),
            async move {
                let _never: Vec<u64> = Vec::with_capacity(capacity);
            },
            Arc::clone(&shared),
        ))
        .await
        .unwrap();
        let failure = shared.failure().unwrap_or_default();
        assert!(
            failure.starts_with("task failed: capacity overflow"),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn a_task_loop_that_ends_is_not_a_failure() {
        let shared = shared();
        tokio::spawn(run_guarded("t".into(), async {}, Arc::clone(&shared)))
            .await
            .unwrap();
        assert_eq!(shared.failure(), None);
    }
}
