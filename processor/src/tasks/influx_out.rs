//! influxDBOut's writer. Each running task with influxDBOut nodes gets one tokio task that
//! buffers the lines its nodes emit and POSTs them to the `[[influxdb]]` sections, so a slow or
//! dead InfluxDB never stalls the task's pipeline.
//!
//! # Layout
//! - [`Buffers`]: the pure core, time passed in. Per node: the lines not yet sent, the lines of
//!   failed writes kept for the next flush (at most [`RETRY_LINES`] or one `.buffer()`,
//!   oldest dropped and counted), the next interval flush, whether `.create()` still has to run. A node's lines
//!   are flushed when `.buffer()` of them are waiting or every `.flushInterval()` (Kapacitor's
//!   semantics); due nodes that write to the same (cluster, database, retention policy,
//!   precision, consistency) share one POST.
//! - [`Client`]: the HTTP edge: `/write` and `/query` over a section's URLs, with failover
//!   (connection error, timeout or 5xx: the next URL; the last URL that answered goes first),
//!   Basic auth and the section's timeout.
//! - [`spawn`] and [`Handle`]: the writer task, and the task loop's side of it, which never
//!   waits: when the writer's queue is full the lines are dropped, counted in the node's
//!   `points_dropped` and warned about at most every [`DROP_WARN_INTERVAL`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::settings::InfluxDb;
use crate::pipeline::NodeStats;
use crate::tick::nodes::InfluxDbOutSpec;

/// Messages (one per task-loop turn, each holding that turn's lines) queued for the writer
/// before lines are dropped.
pub const QUEUE_MESSAGES: usize = 1024;

/// Lines of failed writes a node keeps for the next flush (Telegraf's `metric_buffer_limit`
/// default), or its `.buffer()` if that is larger; beyond it the oldest are dropped and
/// counted in `points_dropped`.
pub const RETRY_LINES: usize = 10_000;

/// At most one "queue full" warning per task this often.
pub const DROP_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Longest part of an InfluxDB error body kept in a message.
const ERROR_BODY_CHARS: usize = 512;

/// Why a request to InfluxDB failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no enabled [[influxdb]] section named {0:?}")]
    NoCluster(String),
    #[error("no enabled [[influxdb]] section is marked default (or is the only one)")]
    NoDefault,
    /// Connection error, timeout or 5xx on every URL (the last one's reason): retried.
    #[error("{url}: {reason}")]
    Unavailable { url: String, reason: String },
    /// A 4xx: the request itself is wrong; not retried.
    #[error("{url} answered {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    /// `/query` answered 200 but the statement failed.
    #[error("{url}: {statement}: {message}")]
    Statement {
        url: String,
        statement: String,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the same request may succeed later (InfluxDB down, slow or overloaded).
    pub fn retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

/// Where a node's points go: one POST per distinct target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// `.cluster()`; empty: the default section.
    pub cluster: String,
    pub database: String,
    /// Empty: InfluxDB's default retention policy.
    pub retention_policy: String,
    /// `.precision()`; empty: nanoseconds.
    pub precision: String,
    /// `.writeConsistency()`; empty: not sent.
    pub consistency: String,
}

impl Target {
    fn of(spec: &InfluxDbOutSpec) -> Target {
        Target {
            cluster: spec.cluster.clone(),
            database: spec.database.clone(),
            retention_policy: spec.retention_policy.clone(),
            precision: spec.precision.v1_param().to_owned(),
            consistency: spec.write_consistency.clone(),
        }
    }

    /// `/write?db=..[&rp=..][&precision=..][&consistency=..]`.
    pub fn write_path(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("db", &self.database);
        if !self.retention_policy.is_empty() {
            query.append_pair("rp", &self.retention_policy);
        }
        // InfluxDB 1.x reads `us` as nanoseconds: microseconds are sent as `u`.
        match self.precision.as_str() {
            "" | "n" | "ns" => {}
            "u" | "us" | "µ" | "µs" => {
                query.append_pair("precision", "u");
            }
            other => {
                query.append_pair("precision", other);
            }
        }
        if !self.consistency.is_empty() {
            query.append_pair("consistency", &self.consistency);
        }
        format!("/write?{}", query.finish())
    }
}

/// InfluxQL's identifier quoting (`influxql.QuoteIdent`).
fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What `.create()` sends, as Kapacitor: `CREATE DATABASE "db" [WITH NAME "rp"]`.
pub fn create_statement(spec: &InfluxDbOutSpec) -> String {
    let mut statement = format!("CREATE DATABASE {}", quote_ident(&spec.database));
    if !spec.retention_policy.is_empty() {
        statement.push_str(" WITH NAME ");
        statement.push_str(&quote_ident(&spec.retention_policy));
    }
    statement
}

/// One influxDBOut node's counters, shown in its node stats.
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Points InfluxDB accepted (Kapacitor's `points_written`).
    pub points_written: AtomicU64,
    /// Failed writes (and failed `.create()` statements), Kapacitor's `write_errors`.
    pub write_errors: AtomicU64,
    /// Points this processor gave up on: the writer's queue was full, or the retry bound.
    pub points_dropped: AtomicU64,
}

impl NodeCounters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `(name, value)` in name order, as `NodeStats::specific`.
    pub fn specific(&self) -> [(&'static str, u64); 3] {
        [
            (
                "points_dropped",
                self.points_dropped.load(Ordering::Relaxed),
            ),
            (
                "points_written",
                self.points_written.load(Ordering::Relaxed),
            ),
            ("write_errors", self.write_errors.load(Ordering::Relaxed)),
        ]
    }
}

/// Counters of every influxDBOut node of a task, by node id.
pub type Counters = BTreeMap<usize, NodeCounters>;

/// Puts the writer's counters into the influxDBOut nodes' stats (by node id).
pub fn merge_stats(counters: &Counters, stats: &mut [NodeStats]) {
    for (id, node) in counters {
        if let Some(s) = stats.get_mut(*id) {
            s.specific.retain(|(k, _)| {
                !matches!(*k, "points_dropped" | "points_written" | "write_errors")
            });
            s.specific.extend(node.specific());
            s.specific.sort_by_key(|(k, _)| *k);
        }
    }
}

struct NodeBuffer {
    target: Target,
    /// `.buffer()`.
    size: usize,
    /// Failed lines kept at most.
    retry_limit: usize,
    interval: Duration,
    /// Lines not sent yet, oldest first.
    fresh: Vec<String>,
    /// Lines of failed writes, oldest first.
    failed: VecDeque<String>,
    next_flush: Instant,
    /// `.create()` has yet to succeed: its statement.
    create: Option<String>,
}

/// Lines for one POST: every due node with this target.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub target: Target,
    /// `(node, its lines)`, each node's oldest first.
    pub parts: Vec<(usize, Vec<String>)>,
    /// `(node, statement)`: `.create()` statements to run before the write.
    pub create: Vec<(usize, String)>,
}

impl Batch {
    pub fn points(&self) -> usize {
        self.parts.iter().map(|(_, lines)| lines.len()).sum()
    }

    /// The lines, newline-separated.
    pub fn body(&self) -> String {
        let mut body = String::with_capacity(
            self.parts
                .iter()
                .flat_map(|(_, l)| l)
                .map(|l| l.len() + 1)
                .sum(),
        );
        for line in self.parts.iter().flat_map(|(_, lines)| lines) {
            body.push_str(line);
            body.push('\n');
        }
        body
    }
}

/// How a batch's write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Written,
    /// Keep the lines for the next flush.
    Retry,
    /// Drop the lines (InfluxDB refused them).
    Rejected,
}

/// The writer's pure core (see the module documentation).
pub struct Buffers {
    nodes: BTreeMap<usize, NodeBuffer>,
    counters: Arc<Counters>,
}

impl Buffers {
    /// Buffers for `nodes` (`(node id, spec)`); the first interval flush is one
    /// `.flushInterval()` after `now`. Failed lines kept per node: `retry_lines` or its
    /// `.buffer()`, whichever is larger.
    pub fn new(
        nodes: impl IntoIterator<Item = (usize, Arc<InfluxDbOutSpec>)>,
        now: Instant,
        retry_lines: usize,
    ) -> Buffers {
        let mut counters = Counters::new();
        let nodes = nodes
            .into_iter()
            .map(|(id, spec)| {
                counters.insert(id, NodeCounters::default());
                let buffer = NodeBuffer {
                    target: Target::of(&spec),
                    size: spec.buffer.max(1),
                    retry_limit: retry_lines.max(spec.buffer),
                    interval: spec.flush_interval.max(Duration::from_millis(1)),
                    fresh: Vec::new(),
                    failed: VecDeque::new(),
                    next_flush: now + spec.flush_interval.max(Duration::from_millis(1)),
                    create: spec.create.then(|| create_statement(&spec)),
                };
                (id, buffer)
            })
            .collect();
        Buffers {
            nodes,
            counters: Arc::new(counters),
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Adds a line of node `node`; false if there is no such influxDBOut node.
    pub fn push(&mut self, node: usize, line: String) -> bool {
        match self.nodes.get_mut(&node) {
            Some(n) => {
                n.fresh.push(line);
                true
            }
            None => false,
        }
    }

    /// Lines waiting (new and failed) for `node`.
    pub fn held(&self, node: usize) -> usize {
        self.nodes
            .get(&node)
            .map_or(0, |n| n.fresh.len() + n.failed.len())
    }

    /// The earliest interval flush.
    pub fn next_flush(&self) -> Option<Instant> {
        self.nodes.values().map(|n| n.next_flush).min()
    }

    /// Takes the lines of every node that is due at `now`: `.buffer()` new lines waiting, or
    /// its `.flushInterval()` passed (then its next one is scheduled). Failed lines go with
    /// the node's next flush, before its new ones.
    pub fn due(&mut self, now: Instant) -> Vec<Batch> {
        self.take(|n| {
            let timer = now >= n.next_flush;
            if timer {
                n.next_flush += n.interval;
                if n.next_flush <= now {
                    n.next_flush = now + n.interval;
                }
            }
            timer || n.fresh.len() >= n.size
        })
    }

    /// Takes every line (the task stopped).
    pub fn drain(&mut self) -> Vec<Batch> {
        self.take(|_| true)
    }

    fn take(&mut self, mut due: impl FnMut(&mut NodeBuffer) -> bool) -> Vec<Batch> {
        let mut batches: BTreeMap<Target, Batch> = BTreeMap::new();
        for (id, n) in &mut self.nodes {
            if !due(n) || (n.fresh.is_empty() && n.failed.is_empty()) {
                continue;
            }
            let mut lines: Vec<String> = n.failed.drain(..).collect();
            lines.append(&mut n.fresh);
            let batch = batches.entry(n.target.clone()).or_insert_with(|| Batch {
                target: n.target.clone(),
                parts: Vec::new(),
                create: Vec::new(),
            });
            batch.parts.push((*id, lines));
            if let Some(statement) = &n.create {
                batch.create.push((*id, statement.clone()));
            }
        }
        batches.into_values().collect()
    }

    /// `.create()` of `node` succeeded: not sent again.
    pub fn created(&mut self, node: usize) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.create = None;
        }
    }

    /// Counts a batch's outcome; on [`Outcome::Retry`] its lines wait for the node's next
    /// flush, the oldest beyond the retry bound dropped.
    pub fn finish(&mut self, batch: Batch, outcome: Outcome) {
        for (id, lines) in batch.parts {
            let Some(counters) = self.counters.get(&id) else {
                continue;
            };
            match outcome {
                Outcome::Written => NodeCounters::add(&counters.points_written, lines.len()),
                Outcome::Rejected => NodeCounters::add(&counters.write_errors, 1),
                Outcome::Retry => {
                    NodeCounters::add(&counters.write_errors, 1);
                    let Some(n) = self.nodes.get_mut(&id) else {
                        continue;
                    };
                    let mut kept: VecDeque<String> = lines.into();
                    kept.append(&mut n.failed);
                    let excess = kept.len().saturating_sub(n.retry_limit);
                    kept.drain(..excess);
                    NodeCounters::add(&counters.points_dropped, excess);
                    n.failed = kept;
                }
            }
        }
    }
}

/// Rate-limits the "queue full" warning: counts drops and says when to warn, with how many.
#[derive(Debug, Default)]
pub struct DropWarning {
    last: Option<Instant>,
    pending: u64,
}

impl DropWarning {
    /// Records `n` dropped lines at `now`; `Some(total since the last warning)` when a warning
    /// is due (the first drop, then at most once per [`DROP_WARN_INTERVAL`]).
    pub fn record(&mut self, n: usize, now: Instant) -> Option<u64> {
        self.pending += n as u64;
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < DROP_WARN_INTERVAL)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// One `[[influxdb]]` section, ready to send.
struct Cluster {
    config: InfluxDb,
    /// `urls` without a trailing `/`.
    bases: Vec<String>,
    /// Index of the URL tried first: the last one that answered.
    preferred: AtomicUsize,
    authorization: Option<HeaderValue>,
}

/// The HTTP edge: sends to the `[[influxdb]]` sections, shared by every task.
pub struct Client {
    clusters: Vec<Cluster>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(sections: &[InfluxDb]) -> Client {
        use base64::Engine as _;
        let clusters = sections
            .iter()
            .filter(|s| s.enabled)
            .map(|s| Cluster {
                bases: s
                    .urls
                    .iter()
                    .map(|u| u.trim_end_matches('/').to_owned())
                    .collect(),
                preferred: AtomicUsize::new(0),
                authorization: (!s.username.is_empty())
                    .then(|| {
                        let token = base64::engine::general_purpose::STANDARD
                            .encode(format!("{}:{}", s.username, s.password));
                        HeaderValue::from_str(&format!("Basic {token}")).map(|mut v| {
                            v.set_sensitive(true);
                            v
                        })
                    })
                    .and_then(|v| v.ok()),
                config: s.clone(),
            })
            .collect();
        Client {
            clusters,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The section `.cluster(name)` writes to: by name, or for an empty name the one marked
    /// `default` (else the only enabled one).
    fn cluster(&self, name: &str) -> Result<&Cluster> {
        if name.is_empty() {
            self.clusters
                .iter()
                .find(|c| c.config.default)
                .or(match self.clusters.as_slice() {
                    [only] => Some(only),
                    _ => None,
                })
                .ok_or(Error::NoDefault)
        } else {
            self.clusters
                .iter()
                .find(|c| c.config.name == name)
                .ok_or_else(|| Error::NoCluster(name.to_owned()))
        }
    }

    /// Whether `.cluster(name)` names a usable section.
    pub fn check(&self, name: &str) -> Result<()> {
        self.cluster(name).map(|_| ())
    }

    /// The longest a final flush may take: every URL of the slowest section timing out once.
    pub fn stop_limit(&self) -> Duration {
        self.clusters
            .iter()
            .map(|c| {
                c.config
                    .timeout
                    .saturating_mul(u32::try_from(c.bases.len().max(1)).unwrap_or(u32::MAX))
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// POSTs line protocol to `target`.
    pub async fn write(&self, target: &Target, body: String) -> Result<()> {
        self.post(
            &target.cluster,
            &target.write_path(),
            "text/plain; charset=utf-8",
            Bytes::from(body),
        )
        .await
        .map(|_| ())
    }

    /// POSTs `q=statement` to `/query`; a statement error in the answer is an error.
    pub async fn query(&self, cluster: &str, statement: &str) -> Result<()> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", statement)
            .finish();
        let (url, body) = self
            .post(
                cluster,
                "/query",
                "application/x-www-form-urlencoded",
                Bytes::from(form),
            )
            .await?;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = json["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|r| r["error"].as_str())
            .or_else(|| json["error"].as_str());
        match message {
            Some(message) => Err(Error::Statement {
                url,
                statement: statement.to_owned(),
                message: message.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Tries the section's URLs from the preferred one on; returns the answering URL and body.
    async fn post(
        &self,
        cluster: &str,
        path: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<(String, Bytes)> {
        let c = self.cluster(cluster)?;
        let count = c.bases.len();
        let start = c.preferred.load(Ordering::Relaxed);
        let mut last = Error::NoCluster(cluster.to_owned());
        for i in 0..count {
            let index = (start + i) % count;
            let Some(base) = c.bases.get(index) else {
                continue;
            };
            let url = format!("{base}{path}");
            match self.once(c, &url, content_type, body.clone()).await {
                Ok((status, answer)) if status.is_server_error() => {
                    last = Error::Unavailable {
                        url,
                        reason: format!("status {status}: {}", excerpt(&answer)),
                    };
                }
                Ok((status, answer)) => {
                    c.preferred.store(index, Ordering::Relaxed);
                    if status.is_success() {
                        return Ok((url, answer));
                    }
                    return Err(Error::Rejected {
                        url,
                        status: status.as_u16(),
                        body: excerpt(&answer),
                    });
                }
                Err(reason) => last = Error::Unavailable { url, reason },
            }
        }
        Err(last)
    }

    /// One request with the section's timeout over sending and reading the answer.
    async fn once(
        &self,
        c: &Cluster,
        url: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<(hyper::StatusCode, Bytes), String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
        let mut request = hyper::Request::post(uri)
            .header(CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        if let Some(auth) = &c.authorization {
            request.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| error_chain(&e))?;
            let status = response.status();
            let answer = response
                .into_body()
                .collect()
                .await
                .map_err(|e| error_chain(&e))?
                .to_bytes();
            Ok((status, answer))
        };
        tokio::time::timeout(c.config.timeout, exchange)
            .await
            .map_err(|_| format!("timed out after {:?}", c.config.timeout))?
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(ERROR_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The task loop's side of its writer: hands lines over without waiting.
pub struct Handle {
    task: String,
    tx: mpsc::Sender<Vec<(usize, String)>>,
    counters: Arc<Counters>,
    warning: DropWarning,
}

impl Handle {
    /// Queues one turn's lines (`(node id, line)`); when the queue is full they are dropped
    /// and counted.
    pub fn send(&mut self, lines: Vec<(usize, String)>, now: Instant) {
        if lines.is_empty() {
            return;
        }
        let Err(error) = self.tx.try_send(lines) else {
            return;
        };
        let lines = match error {
            mpsc::error::TrySendError::Full(l) | mpsc::error::TrySendError::Closed(l) => l,
        };
        for (node, _) in &lines {
            if let Some(c) = self.counters.get(node) {
                NodeCounters::add(&c.points_dropped, 1);
            }
        }
        if let Some(dropped) = self.warning.record(lines.len(), now) {
            tracing::warn!(
                task = %self.task,
                points = dropped,
                "influxDBOut writer queue full (InfluxDB slow or down): points dropped"
            );
        }
    }

    /// Puts the writer's counters into the task's node stats.
    pub fn merge_stats(&self, stats: &mut [NodeStats]) {
        merge_stats(&self.counters, stats);
    }
}

/// Starts the writer of task `task` for its influxDBOut `nodes`. It runs until the returned
/// [`Handle`] is dropped, then flushes what it holds (bounded by [`Client::stop_limit`]).
pub fn spawn(
    task: &str,
    nodes: Vec<(usize, Arc<InfluxDbOutSpec>)>,
    client: Arc<Client>,
) -> (Handle, tokio::task::JoinHandle<()>) {
    let buffers = Buffers::new(nodes, Instant::now(), RETRY_LINES);
    let (tx, rx) = mpsc::channel(QUEUE_MESSAGES);
    let handle = Handle {
        task: task.to_owned(),
        tx,
        counters: buffers.counters(),
        warning: DropWarning::default(),
    };
    let writer = tokio::spawn(run(task.to_owned(), buffers, rx, client));
    (handle, writer)
}

async fn run(
    task: String,
    mut buffers: Buffers,
    mut rx: mpsc::Receiver<Vec<(usize, String)>>,
    client: Arc<Client>,
) {
    loop {
        let next = buffers
            .next_flush()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            message = rx.recv() => match message {
                Some(lines) => {
                    for (node, line) in lines {
                        if !buffers.push(node, line) {
                            tracing::debug!(task = %task, node, "line of an unknown influxDBOut node dropped");
                        }
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(next) => {}
        }
        for batch in buffers.due(Instant::now()) {
            flush(&task, &mut buffers, &client, batch).await;
        }
    }
    let limit = client.stop_limit();
    let batches = buffers.drain();
    let points: usize = batches.iter().map(Batch::points).sum();
    let final_flush = async {
        for batch in batches {
            flush(&task, &mut buffers, &client, batch).await;
        }
    };
    if tokio::time::timeout(limit, final_flush).await.is_err() {
        tracing::error!(task = %task, points, ?limit, "influxDBOut final flush timed out: points lost");
    }
}

async fn flush(task: &str, buffers: &mut Buffers, client: &Client, batch: Batch) {
    for (node, statement) in &batch.create {
        match client.query(&batch.target.cluster, statement).await {
            Ok(()) => {
                buffers.created(*node);
                tracing::info!(task = %task, node, statement = %statement, "influxDBOut created its database");
            }
            Err(error) => {
                tracing::warn!(
                    task = %task,
                    %error,
                    statement = %statement,
                    points = batch.points(),
                    "influxDBOut .create() failed: points kept, both retried at the next flush"
                );
                buffers.finish(batch, Outcome::Retry);
                return;
            }
        }
    }
    let points = batch.points();
    let outcome = match client.write(&batch.target, batch.body()).await {
        Ok(()) => {
            tracing::debug!(task = %task, points, db = %batch.target.database, "influxDBOut wrote");
            Outcome::Written
        }
        Err(error) if error.retryable() => {
            tracing::warn!(task = %task, %error, points, "influxDBOut write failed: points kept for the next flush");
            Outcome::Retry
        }
        Err(error) => {
            tracing::error!(task = %task, %error, points, "influxDBOut write rejected: points dropped");
            Outcome::Rejected
        }
    };
    buffers.finish(batch, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(db: &str, buffer: usize, flush_secs: u64) -> Arc<InfluxDbOutSpec> {
        Arc::new(InfluxDbOutSpec {
            database: db.to_owned(),
            retention_policy: String::new(),
            measurement: String::new(),
            cluster: String::new(),
            precision: crate::line_protocol::Precision::Seconds,
            tags: BTreeMap::new(),
            create: false,
            buffer,
            flush_interval: Duration::from_secs(flush_secs),
            write_consistency: String::new(),
        })
    }

    fn lines(batch: &Batch) -> Vec<&str> {
        batch
            .parts
            .iter()
            .flat_map(|(_, l)| l)
            .map(String::as_str)
            .collect()
    }

    fn counter(buffers: &Buffers, node: usize) -> [(&'static str, u64); 3] {
        buffers.counters()[&node].specific()
    }

    #[test]
    fn a_node_flushes_when_its_buffer_fills_and_not_before() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(3, spec("db", 3, 10))], t0, RETRY_LINES);
        b.push(3, "m v=1 1".into());
        b.push(3, "m v=2 2".into());
        assert!(b.due(t0 + Duration::from_secs(1)).is_empty());
        b.push(3, "m v=3 3".into());
        let due = b.due(t0 + Duration::from_secs(1));
        assert_eq!(due.len(), 1);
        assert_eq!(lines(&due[0]), ["m v=1 1", "m v=2 2", "m v=3 3"]);
        assert_eq!(due[0].body(), "m v=1 1\nm v=2 2\nm v=3 3\n");
        assert_eq!(b.held(3), 0);
    }

    #[test]
    fn a_node_flushes_every_interval_whatever_it_holds() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 1000, 10))], t0, RETRY_LINES);
        assert_eq!(b.next_flush(), Some(t0 + Duration::from_secs(10)));
        b.push(1, "m v=1 1".into());
        assert!(b.due(t0 + Duration::from_secs(9)).is_empty());
        let due = b.due(t0 + Duration::from_secs(10));
        assert_eq!(lines(&due[0]), ["m v=1 1"]);
        assert_eq!(b.next_flush(), Some(t0 + Duration::from_secs(20)));
        // an empty interval sends nothing; a long stall does not replay missed ticks
        assert!(b.due(t0 + Duration::from_secs(75)).is_empty());
        assert_eq!(b.next_flush(), Some(t0 + Duration::from_secs(85)));
    }

    #[test]
    fn due_nodes_with_the_same_target_share_one_post_and_others_get_their_own() {
        let t0 = Instant::now();
        let mut b = Buffers::new(
            [
                (1, spec("a", 1, 10)),
                (2, spec("a", 1, 10)),
                (3, spec("b", 1, 10)),
            ],
            t0,
            RETRY_LINES,
        );
        b.push(1, "x v=1 1".into());
        b.push(2, "y v=1 1".into());
        b.push(3, "z v=1 1".into());
        let due = b.due(t0);
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].target.database, "a");
        assert_eq!(lines(&due[0]), ["x v=1 1", "y v=1 1"]);
        assert_eq!(due[1].target.database, "b");
    }

    #[test]
    fn a_failed_write_is_sent_again_first_at_the_next_flush_and_counted() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 2, 10))], t0, RETRY_LINES);
        b.push(1, "m v=1 1".into());
        b.push(1, "m v=2 2".into());
        let batch = b.due(t0).remove(0);
        b.finish(batch, Outcome::Retry);
        assert_eq!(b.held(1), 2);
        // one new line neither fills the buffer nor is the interval over: the retry waits
        b.push(1, "m v=3 3".into());
        assert!(b.due(t0 + Duration::from_secs(1)).is_empty());
        let batch = b.due(t0 + Duration::from_secs(10)).remove(0);
        assert_eq!(lines(&batch), ["m v=1 1", "m v=2 2", "m v=3 3"]);
        b.finish(batch, Outcome::Written);
        assert_eq!(
            counter(&b, 1),
            [
                ("points_dropped", 0),
                ("points_written", 3),
                ("write_errors", 1)
            ]
        );
    }

    #[test]
    fn retried_lines_beyond_the_bound_drop_the_oldest_and_count_them() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 2, 10))], t0, 3);
        for i in 0..2 {
            b.push(1, format!("m v={i} {i}"));
        }
        let batch = b.due(t0).remove(0);
        b.finish(batch, Outcome::Retry);
        for i in 2..4 {
            b.push(1, format!("m v={i} {i}"));
        }
        let batch = b.due(t0).remove(0);
        assert_eq!(batch.points(), 4);
        b.finish(batch, Outcome::Retry);
        assert_eq!(b.held(1), 3);
        let batch = b.due(t0 + Duration::from_secs(10)).remove(0);
        assert_eq!(lines(&batch), ["m v=1 1", "m v=2 2", "m v=3 3"]);
        assert_eq!(counter(&b, 1)[0], ("points_dropped", 1));
        assert_eq!(counter(&b, 1)[2], ("write_errors", 2));
    }

    #[test]
    fn the_retry_bound_is_never_below_one_buffer() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 5, 10))], t0, 2);
        for i in 0..5 {
            b.push(1, format!("m v={i} {i}"));
        }
        let batch = b.due(t0).remove(0);
        b.finish(batch, Outcome::Retry);
        assert_eq!(b.held(1), 5);
        assert_eq!(counter(&b, 1)[0], ("points_dropped", 0));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(usize),
        Due(u64),
        Finish(usize, u8),
        Drain,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0usize..3).prop_map(Op::Push),
            2 => (0u64..15).prop_map(Op::Due),
            2 => (0usize..4, 0u8..3).prop_map(|(i, o)| Op::Finish(i, o)),
            1 => Just(Op::Drain),
        ]
    }

    proptest::proptest! {
        /// Every line pushed is written, rejected, dropped and counted, in flight or held:
        /// never lost silently, never duplicated.
        #[test]
        fn every_line_is_accounted_for(ops in proptest::collection::vec(op(), 0..200)) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut b = Buffers::new(
                [(0, spec("a", 3, 5)), (1, spec("a", 2, 7)), (2, spec("b", 4, 3))],
                t0,
                6,
            );
            let (mut pushed, mut rejected) = (0u64, 0u64);
            let mut in_flight: Vec<Batch> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(node) => {
                        let line = format!("m v={pushed} {pushed}");
                        proptest::prop_assert!(b.push(node, line));
                        pushed += 1;
                    }
                    Op::Due(secs) => {
                        now += Duration::from_secs(secs);
                        in_flight.extend(b.due(now));
                    }
                    Op::Drain => in_flight.extend(b.drain()),
                    Op::Finish(i, outcome) => {
                        if i < in_flight.len() {
                            let batch = in_flight.remove(i);
                            let outcome = match outcome {
                                0 => Outcome::Written,
                                1 => Outcome::Retry,
                                _ => {
                                    rejected += batch.points() as u64;
                                    Outcome::Rejected
                                }
                            };
                            b.finish(batch, outcome);
                        }
                    }
                }
                let counters = b.counters();
                let written: u64 = counters.values().map(|c| c.specific()[1].1).sum();
                let dropped: u64 = counters.values().map(|c| c.specific()[0].1).sum();
                let held: usize = (0..3).map(|n| b.held(n)).sum();
                let flying: usize = in_flight.iter().map(Batch::points).sum();
                proptest::prop_assert_eq!(
                    pushed,
                    written + dropped + rejected + held as u64 + flying as u64
                );
            }
        }
    }

    #[test]
    fn a_rejected_write_is_counted_and_not_retried() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 1, 10))], t0, RETRY_LINES);
        b.push(1, "m v=1 1".into());
        let batch = b.due(t0).remove(0);
        b.finish(batch, Outcome::Rejected);
        assert_eq!(b.held(1), 0);
        assert!(b.due(t0 + Duration::from_secs(10)).is_empty());
        assert_eq!(counter(&b, 1)[2], ("write_errors", 1));
    }

    #[test]
    fn create_is_asked_for_until_it_succeeds() {
        let t0 = Instant::now();
        let mut create = (*spec("my \"db\"", 1, 10)).clone();
        create.create = true;
        create.retention_policy = "rp".into();
        let mut b = Buffers::new([(1, Arc::new(create))], t0, RETRY_LINES);
        b.push(1, "m v=1 1".into());
        let batch = b.due(t0).remove(0);
        assert_eq!(
            batch.create,
            [(
                1,
                r#"CREATE DATABASE "my \"db\"" WITH NAME "rp""#.to_owned()
            )]
        );
        b.finish(batch, Outcome::Retry);
        let batch = b.due(t0 + Duration::from_secs(10)).remove(0);
        assert_eq!(batch.create.len(), 1);
        b.created(1);
        b.finish(batch, Outcome::Written);
        b.push(1, "m v=2 2".into());
        assert!(
            b.due(t0 + Duration::from_secs(11))
                .remove(0)
                .create
                .is_empty()
        );
    }

    #[test]
    fn drain_takes_everything_held() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 100, 10))], t0, RETRY_LINES);
        b.push(1, "m v=1 1".into());
        assert!(b.due(t0).is_empty());
        assert_eq!(b.drain()[0].points(), 1);
        assert!(b.drain().is_empty());
    }

    #[test]
    fn lines_of_an_unknown_node_are_refused() {
        let mut b = Buffers::new([(1, spec("db", 1, 10))], Instant::now(), RETRY_LINES);
        assert!(!b.push(2, "m v=1 1".into()));
    }

    #[test]
    fn the_write_url_carries_rp_precision_and_consistency_as_influxdb_reads_them() {
        let mut target = Target::of(&spec("d b", 1, 1));
        assert_eq!(target.write_path(), "/write?db=d+b&precision=s");
        target.retention_policy = "autogen".into();
        target.precision = "us".into();
        target.consistency = "quorum".into();
        assert_eq!(
            target.write_path(),
            "/write?db=d+b&rp=autogen&precision=u&consistency=quorum"
        );
        target.precision = String::new();
        assert_eq!(
            target.write_path(),
            "/write?db=d+b&rp=autogen&consistency=quorum"
        );
    }

    #[test]
    fn queue_full_warnings_come_at_most_once_per_interval_with_the_total() {
        let t0 = Instant::now();
        let mut w = DropWarning::default();
        assert_eq!(w.record(5, t0), Some(5));
        assert_eq!(w.record(2, t0 + Duration::from_secs(1)), None);
        assert_eq!(w.record(3, t0 + Duration::from_secs(9)), None);
        assert_eq!(w.record(1, t0 + DROP_WARN_INTERVAL), Some(6));
    }

    #[test]
    fn merged_stats_replace_earlier_values_and_keep_name_order() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 1, 10))], t0, RETRY_LINES);
        b.push(1, "m v=1 1".into());
        let batch = b.due(t0).remove(0);
        b.finish(batch, Outcome::Written);
        let mut stats = vec![NodeStats::default(), NodeStats::default()];
        stats[1].specific = vec![("other", 7)];
        merge_stats(&b.counters(), &mut stats);
        merge_stats(&b.counters(), &mut stats);
        assert_eq!(
            stats[1].specific,
            [
                ("other", 7),
                ("points_dropped", 0),
                ("points_written", 1),
                ("write_errors", 0)
            ]
        );
        assert!(stats[0].specific.is_empty());
    }

    /// A loopback stand-in for InfluxDB: answers every request with `status` and `body` (or
    /// never, for `status` 0) and records `(request line, authorization, body)`.
    struct StandIn {
        url: String,
        seen: Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
    }

    impl StandIn {
        async fn start(status: u16, body: &'static str) -> StandIn {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let record = Arc::clone(&seen);
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let record = Arc::clone(&record);
                    tokio::spawn(async move {
                        let mut data = Vec::new();
                        let mut chunk = [0u8; 4096];
                        let (head, request_body) = loop {
                            let n = stream.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            data.extend_from_slice(&chunk[..n]);
                            let text = String::from_utf8_lossy(&data).into_owned();
                            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                                let length = head
                                    .lines()
                                    .find_map(|l| {
                                        l.to_ascii_lowercase()
                                            .strip_prefix("content-length:")
                                            .map(|v| v.trim().parse::<usize>().unwrap())
                                    })
                                    .unwrap_or(0);
                                if body.len() >= length {
                                    break (head.to_owned(), body.to_owned());
                                }
                            }
                        };
                        let authorization = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("authorization: ")
                                    .or_else(|| l.strip_prefix("Authorization: "))
                            })
                            .unwrap_or_default()
                            .to_owned();
                        let line = head.lines().next().unwrap_or_default().to_owned();
                        record
                            .lock()
                            .unwrap()
                            .push((line, authorization, request_body));
                        if status == 0 {
                            std::future::pending::<()>().await;
                        }
                        let answer = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                    });
                }
            });
            StandIn { url, seen }
        }

        fn requests(&self) -> Vec<(String, String, String)> {
            self.seen.lock().unwrap().clone()
        }
    }

    fn client(urls: &[&str], timeout: Duration) -> Client {
        Client::new(&[InfluxDb {
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            username: "kapacitor".into(),
            password: "s3cret".into(),
            timeout,
            ..InfluxDb::default()
        }])
    }

    fn target() -> Target {
        Target::of(&spec("db", 1, 1))
    }

    /// A URL nothing listens on.
    async fn dead_url() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        url
    }

    #[tokio::test]
    async fn a_write_fails_over_to_the_next_url_and_then_prefers_it() {
        let broken = StandIn::start(503, "overloaded").await;
        let live = StandIn::start(204, "").await;
        let dead = dead_url().await;
        let c = client(&[&dead, &broken.url, &live.url], Duration::from_secs(5));
        c.write(&target(), "m v=1 1\n".into()).await.unwrap();
        c.write(&target(), "m v=2 2\n".into()).await.unwrap();
        assert_eq!(broken.requests().len(), 1, "the 5xx URL is not tried again");
        let seen = live.requests();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "POST /write?db=db&precision=s HTTP/1.1");
        assert_eq!(seen[1].2, "m v=2 2\n");
    }

    #[tokio::test]
    async fn requests_carry_basic_auth() {
        let live = StandIn::start(204, "").await;
        let c = client(&[&live.url], Duration::from_secs(5));
        c.write(&target(), "m v=1 1\n".into()).await.unwrap();
        // base64("kapacitor:s3cret")
        assert_eq!(live.requests()[0].1, "Basic a2FwYWNpdG9yOnMzY3JldA==");
    }

    #[tokio::test]
    async fn a_4xx_is_rejected_with_influxdbs_answer_and_no_other_url_is_tried() {
        let refusing = StandIn::start(
            400,
            r#"{"error":"unable to parse 'm v=': missing field value"}"#,
        )
        .await;
        let live = StandIn::start(204, "").await;
        let c = client(&[&refusing.url, &live.url], Duration::from_secs(5));
        let error = c.write(&target(), "m v=\n".into()).await.unwrap_err();
        assert!(!error.retryable());
        assert!(error.to_string().contains("answered 400"), "{error}");
        assert!(error.to_string().contains("missing field value"), "{error}");
        assert!(live.requests().is_empty());
    }

    #[tokio::test]
    async fn a_url_that_never_answers_times_out_as_retryable() {
        let hung = StandIn::start(0, "").await;
        let c = client(&[&hung.url], Duration::from_millis(200));
        let error = c.write(&target(), "m v=1 1\n".into()).await.unwrap_err();
        assert!(error.retryable());
        assert!(error.to_string().contains("timed out"), "{error}");
        let dead = dead_url().await;
        let error = client(&[&dead], Duration::from_secs(5))
            .write(&target(), "m v=1 1\n".into())
            .await
            .unwrap_err();
        assert!(error.retryable(), "{error}");
    }

    #[tokio::test]
    async fn create_posts_the_statement_as_a_form_and_reads_statement_errors() {
        let ok = StandIn::start(200, r#"{"results":[{"statement_id":0}]}"#).await;
        let c = client(&[&ok.url], Duration::from_secs(5));
        c.query("", r#"CREATE DATABASE "db""#).await.unwrap();
        let seen = ok.requests();
        assert_eq!(seen[0].0, "POST /query HTTP/1.1");
        assert_eq!(seen[0].2, "q=CREATE+DATABASE+%22db%22");
        let failing =
            StandIn::start(200, r#"{"results":[{"statement_id":0,"error":"boom"}]}"#).await;
        let error = client(&[&failing.url], Duration::from_secs(5))
            .query("", "CREATE DATABASE x")
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Statement { ref message, .. } if message == "boom"));
    }

    async fn eventually(mut check: impl FnMut() -> bool) -> bool {
        for _ in 0..500 {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn the_writer_flushes_what_it_holds_when_its_task_stops() {
        let live = StandIn::start(204, "").await;
        let c = Arc::new(client(&[&live.url], Duration::from_secs(5)));
        let (mut handle, _writer) = spawn("t", vec![(4, spec("db", 1000, 3600))], c);
        handle.send(
            vec![(4, "m v=1 1".into()), (4, "m v=2 2".into())],
            Instant::now(),
        );
        let counters = Arc::clone(&handle.counters);
        drop(handle);
        assert!(eventually(|| live.requests().len() == 1).await);
        assert_eq!(live.requests()[0].2, "m v=1 1\nm v=2 2\n");
        assert!(eventually(|| counters[&4].specific()[1] == ("points_written", 2)).await);
    }

    #[tokio::test]
    async fn a_stuck_writer_makes_the_task_drop_and_count_lines_without_waiting() {
        let hung = StandIn::start(0, "").await;
        let c = Arc::new(client(&[&hung.url], Duration::from_secs(3600)));
        let (mut handle, _writer) = spawn("t", vec![(1, spec("db", 1, 3600))], c);
        handle.send(vec![(1, "m v=0 0".into())], Instant::now());
        assert!(eventually(|| hung.requests().len() == 1).await);
        for i in 0..QUEUE_MESSAGES + 10 {
            handle.send(vec![(1, format!("m v={i} {i}"))], Instant::now());
        }
        assert_eq!(handle.counters[&1].specific()[0], ("points_dropped", 10));
    }

    fn section(name: &str, default: bool) -> InfluxDb {
        InfluxDb {
            name: name.to_owned(),
            urls: vec!["http://127.0.0.1:1".to_owned()],
            default,
            ..InfluxDb::default()
        }
    }

    #[test]
    fn clusters_resolve_by_name_then_default_then_the_only_one() {
        let one = Client::new(&[section("a", false)]);
        assert!(one.check("").is_ok());
        assert!(one.check("a").is_ok());
        assert!(matches!(one.check("b"), Err(Error::NoCluster(_))));
        let two = Client::new(&[section("a", false), section("b", false)]);
        assert!(matches!(two.check(""), Err(Error::NoDefault)));
        let marked = Client::new(&[section("a", false), section("b", true)]);
        assert!(marked.check("").is_ok());
        let mut disabled = section("a", true);
        disabled.enabled = false;
        assert!(Client::new(&[disabled]).check("a").is_err());
    }
}
