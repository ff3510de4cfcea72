//! A running task: the queue the router fills ([`Queue`], the task's [`Subscriber`]), the loop
//! that feeds its [`Graph`] from it and carries out the graph's [`Effect`]s, and what the loop
//! publishes for the API ([`Shared`]).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::decisions::metrics::TargetMetrics;
use crate::decisions::{DecisionLog, DecisionMetrics, Outcome, Record};
use crate::pipeline::{Effect, Graph, HttpOutData, NodeStats};
use crate::routing::{Delivery, Router, Subscriber, SubscriptionId};
use crate::scaler::Scaler;
use crate::scaler::decision::describe_steps;

use super::recorder::Recorder;
use super::{influx_out, scale_calls};

/// A running task, as the task master holds it.
pub(super) struct Running {
    pub(super) subscriptions: Vec<SubscriptionId>,
    /// Ends when the task's loop does (stopped, or failed: see [`Shared::failure`]).
    handle: tokio::task::JoinHandle<()>,
    /// The task's influxDBOut writer: it flushes what it holds once the task loop is gone.
    writer: Option<tokio::task::JoinHandle<()>>,
    pub(super) shared: Arc<Shared>,
}

/// Where a task sends what it does not keep: influxDBOut's writer (with the task running
/// it), the recording (`[record]`, its thread is the task master's).
#[derive(Default)]
pub(super) struct Sinks {
    pub(super) influx: Option<(influx_out::Handle, tokio::task::JoinHandle<()>)>,
    pub(super) recorder: Option<Recorder>,
}

impl Running {
    /// Starts task `task`'s loop over `graph` with a queue of `queue_size` deliveries;
    /// `subscribe` registers the queue with the router and returns its subscriptions.
    pub(super) fn start(
        task: &str,
        graph: Graph,
        scaler: Arc<dyn Scaler>,
        sinks: Sinks,
        clock: Clock,
        queue_size: usize,
        subscribe: impl FnOnce(Arc<dyn Subscriber>) -> Vec<SubscriptionId>,
    ) -> Running {
        let (influx, writer) = sinks.influx.unzip();
        let recorder = sinks.recorder;
        let mut stats = graph.stats();
        if let Some(influx) = &influx {
            influx.merge_stats(&mut stats);
        }
        let shared = Arc::new(Shared::new(stats, graph.http_outs().clone()));
        let (tx, rx) = mpsc::channel(queue_size);
        let subscriber = Arc::new(Queue {
            task: task.to_owned(),
            tx,
            shared: Arc::clone(&shared),
            warning: Mutex::new(influx_out::DropWarning::default()),
        });
        let handle = tokio::spawn(run_guarded(
            task.to_owned(),
            run_task(
                graph,
                rx,
                clock,
                scaler,
                Outputs { influx, recorder },
                Arc::clone(&shared),
            ),
            Arc::clone(&shared),
        ));
        Running {
            subscriptions: subscribe(subscriber),
            handle,
            writer,
            shared,
        }
    }

    /// Stops the task's loop; its influxDBOut writer (returned) then flushes what it holds and
    /// ends.
    pub(super) fn stop(self, router: &Router) -> Option<tokio::task::JoinHandle<()>> {
        for sub in self.subscriptions {
            router.unsubscribe(sub);
        }
        self.handle.abort();
        self.writer
    }
}

/// What the running task publishes for the API: written by its loop, read through the
/// methods below.
pub(super) struct Shared {
    stats: Mutex<Vec<NodeStats>>,
    http_outs: BTreeMap<String, HttpOutData>,
    /// Points per second into the graph over the last tick.
    throughput: Mutex<f64>,
    /// Points dropped because the task's queue was full (or its loop gone).
    dropped: AtomicU64,
    /// Why the task's loop died (a panic in a node); the task then shows as not executing,
    /// with this as its error.
    failure: Mutex<Option<String>>,
    /// The k8sAutoscale nodes' decision records.
    decisions: Mutex<DecisionLog>,
    /// Their figures per target, for `/metrics`.
    decision_metrics: Mutex<DecisionMetrics>,
}

impl Shared {
    fn new(stats: Vec<NodeStats>, http_outs: BTreeMap<String, HttpOutData>) -> Shared {
        Shared {
            stats: Mutex::new(stats),
            http_outs,
            throughput: Mutex::new(0.0),
            dropped: AtomicU64::new(0),
            failure: Mutex::new(None),
            decisions: Mutex::new(DecisionLog::default()),
            decision_metrics: Mutex::new(DecisionMetrics::default()),
        }
    }

    /// Up to `limit` decision records, newest first.
    pub(super) fn decisions(&self, limit: usize) -> Vec<Record> {
        unpoisoned(&self.decisions).latest(limit)
    }

    /// The decisions' figures per target, for `/metrics`.
    pub(super) fn decision_metrics(&self) -> Vec<TargetMetrics> {
        unpoisoned(&self.decision_metrics).targets()
    }

    /// Keeps a decision record and counts it for `/metrics`; a change is also logged (INFO)
    /// with its facts.
    fn decided(&self, record: Record) {
        if record.outcome.is_change() {
            let target = record.target.to_string();
            let rules = describe_steps(&record.rules);
            let inputs = &record.inputs;
            let series = inputs
                .series
                .iter()
                .map(|c| format!("{} ({})", c.series, c.last))
                .collect::<Vec<_>>()
                .join(", ");
            tracing::info!(
                task = %record.task,
                node = %record.node,
                %target,
                outcome = record.outcome.name(),
                current = ?record.current,
                raw = ?record.raw,
                desired = ?record.desired,
                %rules,
                delay_seconds = ?record.delay_seconds,
                fields = ?inputs.fields,
                point_time = %inputs.time,
                age_seconds = inputs.age_seconds,
                %series,
                "scale decision"
            );
            if record.is_decrease_after_silence() {
                let gone = inputs
                    .expired
                    .iter()
                    .map(|c| format!("{} (last {})", c.series, c.last))
                    .collect::<Vec<_>>()
                    .join(", ");
                tracing::warn!(task = %record.task, node = %record.node, %target, current = ?record.current, desired = ?record.desired, %gone, "decreasing after series stopped reporting: the total may have fallen because pods went silent, not because load fell");
            }
        } else if record.outcome == Outcome::Error {
            tracing::debug!(task = %record.task, node = %record.node, target = %record.target, error = ?record.error, "scale decision failed");
        }
        unpoisoned(&self.decision_metrics).record(&record);
        unpoisoned(&self.decisions).push(record);
    }

    pub(super) fn stats(&self) -> Vec<NodeStats> {
        unpoisoned(&self.stats).clone()
    }

    /// The httpOut node named `endpoint`'s latest points.
    pub(super) fn http_out(&self, endpoint: &str) -> Option<HttpOutData> {
        self.http_outs.get(endpoint).cloned()
    }

    pub(super) fn throughput(&self) -> f64 {
        *unpoisoned(&self.throughput)
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(super) fn failure(&self) -> Option<String> {
        unpoisoned(&self.failure).clone()
    }
}

/// Locks `mutex`, also after a panic while it was held (what it guards stays usable).
fn unpoisoned<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
            let due = unpoisoned(&self.warning).record(points, tokio::time::Instant::now());
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
        *unpoisoned(&shared.failure) = Some(format!("task failed: {message}"));
    }
}

/// Where a task's loop sends what it does not keep: influxDBOut's lines, the recording.
struct Outputs {
    influx: Option<influx_out::Handle>,
    recorder: Option<Recorder>,
}

async fn run_task(
    mut graph: Graph,
    mut rx: mpsc::Receiver<Delivery>,
    clock: Clock,
    scaler: Arc<dyn Scaler>,
    outputs: Outputs,
    shared: Arc<Shared>,
) {
    let Outputs {
        mut influx,
        mut recorder,
    } = outputs;
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
                Some(delivery) => {
                    graph.write(delivery.points(), clock(), &mut effects);
                    if let Some(recorder) = &mut recorder {
                        recorder.record(delivery);
                    }
                }
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
                    *unpoisoned(&shared.throughput) =
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
                Effect::Decision(record) => shared.decided(*record),
            }
        }
        let mut stats = graph.stats();
        if let Some(influx) = &mut influx {
            influx.send(lines, tokio::time::Instant::now());
            influx.merge_stats(&mut stats);
        }
        *unpoisoned(&shared.stats) = stats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared::new(Vec::new(), BTreeMap::new()))
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
