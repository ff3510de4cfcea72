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
//!
//! # Layout
//! - the config sections tasks read (`[pipeline]`, `[load]`, `[[influxdb]]`) are
//!   [`crate::config::tasks`]'s, re-exported here.
//! - this module: the [`TaskMaster`]: definitions, define/update/delete one at a time,
//!   enable/disable; its public types.
//! - [`store`]: each definition saved in its own file in the data dir.
//! - `load_dir`: `[load] dir`, tasks defined by `.tick` files at start.
//! - `versions`: each change's [`Version`] and the deletes' tombstones, the changes that come
//!   from peer replicas, and the state a replica shows its peers (`crate::ha_sync`).
//! - `runtime`: a running task's queue (its [`Subscriber`]) and the loop feeding its [`Graph`].
//! - [`scale_calls`]: which k8sAutoscale calls the loop may start (pure).
//! - [`influx_out`]: influxDBOut's per-task writer.
//! - [`recorder`]: `[record]`, what a task receives written for `processor replay`.
//! - `views`: what the task API reads (get, list, httpOut, counts, node stats), as Kapacitor's
//!   JSON.
//!
//! [`Subscriber`]: crate::routing::Subscriber
//! [`Delivery`]: crate::routing::Delivery
//! [`Effect`]: crate::pipeline::Effect

pub mod influx_out;
mod load_dir;
pub mod recorder;
mod runtime;
pub mod scale_calls;
pub mod store;
mod versions;
mod views;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{self, Clock};
pub use crate::ha_sync::version::Version;
use crate::pipeline::{self, Graph};
use crate::routing::Router;
use crate::scaler::Scaler;
use crate::scaler::dry_run::DryRunScaler;
use crate::tick::{self, Dbrp, VarOverrides};

use runtime::Running;
use versions::Stamp;
pub use versions::{Applied, Remote, SyncState, Tombstone};

pub use crate::config::record::{RecordConfig, WhenFull};
pub use crate::config::tasks::{InfluxDb, Load, PipelineConfig, TasksConfig};

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
    /// The version of its last change, for the replicas' sync (`crate::ha_sync`); absent in
    /// files saved before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
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

/// A task as the master holds it: its definition, compiled script and loop.
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
    /// Where recordings go when `[record] dir` is not set (`<data_dir>/recordings`).
    data_dir: Option<PathBuf>,
    /// The recording of each recorded task, by id (kept across the task's restarts).
    recordings: Mutex<BTreeMap<String, recorder::Recording>>,
    store: Option<store::TaskStore>,
    /// Held by every change (define, update, delete, the load dir) from its check to its
    /// saved file: changes of one id never interleave, and the store has one writer.
    changes: Mutex<()>,
    tasks: Mutex<BTreeMap<String, Entry>>,
    influx: Arc<influx_out::Client>,
    /// The origin of the versions of the changes this replica accepts (set once by
    /// [`TaskMaster::set_identity`]; empty until then).
    identity: std::sync::OnceLock<String>,
    /// The version of each deleted task, kept for the replicas' sync (`versions`).
    tombstones: Mutex<BTreeMap<String, Version>>,
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
            data_dir: options.data_dir,
            recordings: Mutex::new(BTreeMap::new()),
            store,
            changes: Mutex::new(()),
            tasks: Mutex::new(BTreeMap::new()),
            identity: std::sync::OnceLock::new(),
            tombstones: Mutex::new(BTreeMap::new()),
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

    /// Defines a task (`POST /kapacitor/v1/tasks`).
    pub fn create(&self, request: TaskRequest) -> Result<serde_json::Value> {
        self.create_as(request, Stamp::Local)
    }

    fn create_as(&self, request: TaskRequest, stamp: Stamp) -> Result<serde_json::Value> {
        let id = request.id.clone().unwrap_or_default();
        if !valid_id(&id) {
            return Err(Error::InvalidId(id));
        }
        let now = clock::rfc3339_seconds((self.clock)());
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
            version: None,
        };
        // Compiled before the change begins: a slow script holds no other change.
        let pipeline = validate(&def)?;
        let enable = def.status == "enabled";
        let _changing = self.changing();
        if self.lock().contains_key(&id) {
            return Err(Error::Exists(id));
        }
        let mut def = def;
        def.version = Some(self.stamp(stamp, self.tombstone(&id).as_ref()));
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
        self.forget_tombstone(&id);
        self.get(&id)
    }

    /// Removes a task that was never saved, stopping it.
    fn discard(&self, id: &str) {
        let entry = self.lock().remove(id);
        if let Some(running) = entry.and_then(|e| e.running) {
            let _flushing = running.stop(&self.router);
        }
    }

    /// Changes a task (`PATCH /kapacitor/v1/tasks/<id>`): script, vars, dbrps, status.
    pub fn update(&self, id: &str, request: TaskRequest) -> Result<serde_json::Value> {
        self.update_as(id, request, Stamp::Local)
    }

    fn update_as(&self, id: &str, request: TaskRequest, stamp: Stamp) -> Result<serde_json::Value> {
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
        def.modified = clock::rfc3339_seconds((self.clock)());
        def.version = Some(self.stamp(stamp, old.version.as_ref()));
        let enable = def.status == "enabled";
        let old_pipeline = self.lock().get_mut(id).and_then(|entry| {
            entry.def = def;
            entry.pipeline.replace(pipeline)
        });
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
        self.delete_as(id, Stamp::Local)
    }

    fn delete_as(&self, id: &str, stamp: Stamp) -> Result<()> {
        let _changing = self.changing();
        let previous = match self.lock().get(id) {
            None => return Err(Error::NotFound(id.to_owned())),
            Some(entry) => entry.def.version.clone(),
        };
        if let Some(store) = &self.store {
            store.remove(id)?;
        }
        self.discard(id);
        self.remember_tombstone(id, self.stamp(stamp, previous.as_ref()));
        // Its recording ends (flushed) once the stopped loop lets go of it too.
        self.recordings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }

    fn set_running(&self, id: &str, run: bool) -> Result<()> {
        let mut tasks = self.lock();
        let entry = tasks
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(id.to_owned()))?;
        if !run {
            if let Some(running) = entry.running.take() {
                drop(tasks);
                let _flushing = running.stop(&self.router);
            }
            return Ok(());
        }
        if executing(entry) {
            return Ok(());
        }
        if let Some(failed) = entry.running.take() {
            let _flushing = failed.stop(&self.router);
        }
        let pipeline = match &entry.pipeline {
            Some(p) => p.clone(),
            None => validate(&entry.def)?,
        };
        let settings = pipeline_settings(&self.config.pipeline);
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
        let influx = (!influx_nodes.is_empty())
            .then(|| influx_out::spawn(id, influx_nodes, Arc::clone(&self.influx)));
        let dbrps = all_dbrps(&entry.def, &pipeline);
        let recorder = self.recorder(id, &dbrps);
        let keys = pipeline.subscription_keys(&dbrps);
        entry.running = Some(Running::start(
            id,
            graph,
            scaler,
            runtime::Sinks { influx, recorder },
            Arc::clone(&self.clock),
            self.config.pipeline.queue_size.max(1),
            |subscriber| {
                keys.into_iter()
                    .map(|key| self.router.subscribe(key, Arc::clone(&subscriber)))
                    .collect()
            },
        ));
        entry.error.clear();
        entry.def.last_enabled = clock::rfc3339_seconds((self.clock)());
        tracing::info!(task = %id, "task enabled");
        Ok(())
    }

    /// A handle on the recording of task `id` when `[record]` names it: the task's one
    /// recording, started on its first run and kept across restarts (one writer per file); a
    /// recording that cannot start is logged and the task runs unrecorded.
    fn recorder(&self, id: &str, dbrps: &[Dbrp]) -> Option<recorder::Recorder> {
        let config = &self.config.record;
        if !config.records(id) {
            return None;
        }
        let mut recordings = self.recordings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(recording) = recordings.get(id) {
            return Some(recording.handle());
        }
        let Some(dir) = config
            .dir
            .clone()
            .or_else(|| self.data_dir.as_ref().map(|d| d.join("recordings")))
        else {
            tracing::error!(task = %id, "recording not started: [record] has no dir and the processor no data_dir");
            return None;
        };
        let dbrp = |d: &Dbrp| format!("{}.{}", d.database, d.retention_policy);
        let listed: Vec<String> = dbrps.iter().map(dbrp).collect();
        let path = recorder::Settings::path(&dir, id);
        let header = format!(
            "# processor recording of task {id} (dbrps: {}), started {}: line protocol, ns timestamps\n\
             # replay: processor replay --tick {id}.tick --dbrp {} --input {}\n",
            listed.join(", "),
            clock::rfc3339_seconds((self.clock)()),
            listed.first().map_or("db.rp", String::as_str),
            path.display(),
        );
        let settings = recorder::Settings {
            path,
            max_size: config.max_size,
            when_full: config.when_full,
            header,
        };
        let file = settings.path.display().to_string();
        match recorder::Recording::start(id, settings) {
            Ok(recording) => {
                tracing::info!(task = %id, %file, "recording what the task receives");
                let handle = recording.handle();
                recordings.insert(id.to_owned(), recording);
                Some(handle)
            }
            Err(error) => {
                tracing::error!(task = %id, %file, %error, "recording cannot start: the task runs unrecorded");
                None
            }
        }
    }

    /// Stops every task (shutdown) and waits for their influxDBOut writers' last flush, at most
    /// `limit` (the `[http] shutdown-timeout`) or what the writers allow themselves
    /// (`[[influxdb]] timeout` per URL), whichever is shorter; recordings flush within it.
    pub async fn stop_all(&self, limit: Duration) {
        let running: Vec<Running> = self
            .lock()
            .values_mut()
            .filter_map(|e| e.running.take())
            .collect();
        let writers: Vec<_> = running
            .into_iter()
            .filter_map(|r| r.stop(&self.router))
            .collect();
        let recordings =
            std::mem::take(&mut *self.recordings.lock().unwrap_or_else(|p| p.into_inner()));
        let limit = limit.min(self.influx.stop_limit() + Duration::from_secs(1));
        let all = async {
            for writer in writers {
                let _ = writer.await;
            }
            // Each recording flushes and ends once its task's loop is gone too.
            if !recordings.is_empty() {
                let _ = tokio::task::spawn_blocking(move || {
                    for recording in recordings.into_values() {
                        recording.finish();
                    }
                })
                .await;
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

/// The settings a task's [`Graph`] runs with: `[pipeline]`'s timings, `dry_run` off.
pub(crate) fn pipeline_settings(config: &PipelineConfig) -> pipeline::Settings {
    pipeline::Settings {
        lateness: config.lateness,
        series_expiry: config.series_expiry,
        state_expiry: config.state_expiry,
        future_limit: config.future_limit,
        max_series: config.max_series_per_task,
        dry_run: false,
    }
}

/// True when the task runs: enabled, and its loop has not failed.
fn executing(entry: &Entry) -> bool {
    entry
        .running
        .as_ref()
        .is_some_and(|r| r.shared.failure().is_none())
}
