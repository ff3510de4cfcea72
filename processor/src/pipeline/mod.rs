//! Running a compiled TICKscript [`tick::Pipeline`](crate::tick::Pipeline): the node graph as
//! pure state machines. Time is passed in (`now`, the processor clock, in ns); nothing here
//! does IO. What needs the outside world comes back as [`Effect`]s for the task runtime
//! (`k8sAutoscale` -> a [`ScaleIntent`], `influxDBOut` -> line protocol to write).
//!
//! # Layout
//! - [`point`]: owned points between nodes (shared series and group).
//! - [`nodes`]: from, where, groupBy, eval; [`derivative`], [`moving_average`].
//! - [`aggregate`]: sum/mean/... aligned by time across a group's series (our fix).
//! - [`window`]: batches of a group's points over time.
//! - [`autoscale`]: the k8sAutoscale node (a [`ScaleIntent`] per point, `old`/`new` points
//!   from the scaler's answers).
//! - [`series_limit`]: the per-task cardinality limit, applied where the from nodes intern a
//!   new series.
//! - `node`: a node's state and one point or batch through it (log, httpOut and influxDBOut
//!   are handled there).
//! - this file: [`Graph`] (routing messages between the nodes, ticks, stats).

pub mod aggregate;
pub mod autoscale;
pub mod derivative;
pub mod intern;
pub mod moving_average;
mod node;
pub mod nodes;
pub mod point;
pub mod series_limit;
pub mod window;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::point::PointRef;
use crate::scaler::{ScaleError, ScaleIntent, ScaleOutcome};
use crate::tick::nodes::InfluxDbOutSpec;
use crate::tick::{NodeSpec, Pipeline as Script};
use node::{InfluxDbOut, NodeRef, State, on_batch, on_point};

pub use point::{Batch, Field, Group, Message, Point, Series};

/// Timing settings of a running pipeline (`[pipeline]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// An aggregate emits an aligned time at the latest this long after its first value arrived
    /// (the bound: it waits for each series only as long as that series' learned cadence says).
    pub lateness: Duration,
    /// A series that sent nothing for this long stops counting as a live contributor (the
    /// bound: a series with a learned cadence is gone after four of its flush intervals).
    pub series_expiry: Duration,
    /// Per-series/per-group state (derivative, movingAverage, caches) unused this long is freed.
    pub state_expiry: Duration,
    /// Points stamped further ahead of the processor clock than this are dropped by the from
    /// nodes (`future_points`): a pod with a broken clock must not hold a group's times.
    pub future_limit: Duration,
    /// Series the task's from nodes keep state for at once; points of further new series are
    /// dropped and counted (`series_over_limit`). 0 = no limit.
    pub max_series: usize,
    /// Every k8sAutoscale node only decides and reports (the config's dry run).
    pub dry_run: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lateness: Duration::from_secs(15),
            series_expiry: Duration::from_secs(30),
            state_expiry: Duration::from_secs(600),
            future_limit: Duration::from_secs(60),
            max_series: 100_000,
            dry_run: false,
        }
    }
}

/// Why a pipeline cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{node}: the {method} node is not supported by the runtime yet")]
    Unsupported { node: String, method: &'static str },
}

/// Something the runtime must do outside the pipeline.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Ask the scaler; then hand its answer to [`Graph::scaled`] with the same `node` and `point`.
    Scale {
        node: usize,
        intent: Box<ScaleIntent>,
        point: Point,
    },
    /// Write one line of line protocol (influxDBOut), its timestamp in `out.precision`.
    Write {
        node: usize,
        out: Arc<InfluxDbOutSpec>,
        line: String,
    },
    /// Keep a decision record (a k8sAutoscale node's evaluation and its outcome).
    Decision(Box<crate::decisions::Record>),
}

/// What an httpOut node serves for one group: its latest point (stream) or batch (after a
/// window).
#[derive(Debug, Clone)]
pub struct HttpRows {
    pub name: Arc<str>,
    pub group: Arc<Group>,
    /// In time order.
    pub points: Vec<Point>,
    /// Processor time of the update, ns (rows of quiet groups are freed after `state_expiry`).
    pub updated: i64,
}

/// An httpOut node's rows by group id, shared with the HTTP API.
pub type HttpOutData = Arc<Mutex<BTreeMap<String, HttpRows>>>;

/// Counters of one node, as Kapacitor reports them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStats {
    pub name: String,
    pub collected: u64,
    pub emitted: u64,
    pub errors: u64,
    /// Moving average of sampled execution times.
    pub avg_exec_time_ns: u64,
    /// Node-specific counters, by name.
    pub specific: Vec<(&'static str, u64)>,
    /// Groups or series the node keeps state for.
    pub working_cardinality: u64,
}

struct Slot {
    name: String,
    children: Vec<usize>,
    state: State,
    stats: NodeStats,
    samples: u64,
}

/// A running pipeline.
pub struct Graph {
    task: String,
    slots: Vec<Slot>,
    settings: Settings,
    http_outs: BTreeMap<String, HttpOutData>,
    /// Reusable output buffers (one per nesting level), so steady state allocates none.
    pool: Vec<Vec<Message>>,
    /// The task's series budget, shared by its from nodes.
    series_limit: series_limit::SeriesLimit,
}

const SAMPLE_EVERY: u64 = 16;

impl Graph {
    /// Builds the runtime state for `script`, as task `task`.
    pub fn new(task: &str, script: &Script, settings: Settings) -> Result<Graph, Error> {
        let alignment = aggregate::Alignment {
            lateness_ns: nodes::nanos(settings.lateness).unwrap_or(0),
            series_expiry_ns: nodes::nanos(settings.series_expiry).unwrap_or(i64::MAX),
            state_expiry_ns: nodes::nanos(settings.state_expiry).unwrap_or(i64::MAX),
            // A group waits one lateness before its first time: every series that flushes
            // within it has been seen.
            warm_up_ns: nodes::nanos(settings.lateness).unwrap_or(0),
        };
        let future_limit_ns = nodes::nanos(settings.future_limit).unwrap_or(i64::MAX);
        let mut slots = Vec::with_capacity(script.nodes.len());
        let mut http_outs = BTreeMap::new();
        for node in &script.nodes {
            let state = match &node.spec {
                NodeSpec::Stream => State::Stream,
                NodeSpec::From(spec) => {
                    State::From(Box::new(nodes::From::new(spec, future_limit_ns)))
                }
                NodeSpec::Where(spec) => State::Where(spec.clone()),
                NodeSpec::GroupBy(spec) => State::GroupBy(nodes::GroupBy::new(spec)),
                NodeSpec::Derivative(spec) => State::Derivative(derivative::Derivative::new(spec)),
                NodeSpec::Aggregate(spec) => {
                    State::Aggregate(aggregate::Aggregate::new(spec, alignment))
                }
                NodeSpec::MovingAverage(spec) => {
                    State::MovingAverage(moving_average::MovingAverage::new(spec))
                }
                NodeSpec::Eval(spec) => State::Eval(Box::new(spec.clone())),
                NodeSpec::Log(spec) => State::Log(spec.clone()),
                NodeSpec::HttpOut(spec) => {
                    let data = HttpOutData::default();
                    http_outs.insert(spec.endpoint.clone(), Arc::clone(&data));
                    State::HttpOut(data)
                }
                NodeSpec::InfluxDbOut(spec) => State::InfluxDbOut(Box::new(InfluxDbOut {
                    spec: Arc::new(spec.clone()),
                    unit_ns: spec.precision.nanos(),
                    tags: spec
                        .tags
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                })),
                NodeSpec::K8sAutoscale(spec) => {
                    State::K8s(Box::new(autoscale::Autoscale::new(spec, settings.dry_run)))
                }
                NodeSpec::Window(spec) => State::Window(window::Window::new(spec, alignment)),
            };
            slots.push(Slot {
                name: node.name.clone(),
                children: node.children.clone(),
                state,
                stats: NodeStats {
                    name: node.name.clone(),
                    ..NodeStats::default()
                },
                samples: 0,
            });
        }
        Ok(Graph {
            task: task.to_owned(),
            slots,
            settings,
            http_outs,
            pool: Vec::new(),
            series_limit: series_limit::SeriesLimit::new(settings.max_series),
        })
    }

    /// The httpOut nodes' data by endpoint name.
    pub fn http_outs(&self) -> &BTreeMap<String, HttpOutData> {
        &self.http_outs
    }

    /// True when a node needs a [`Scaler`](crate::scaler::Scaler): the names of k8sAutoscale
    /// nodes that are not in dry run.
    pub fn scaling_nodes(&self) -> Vec<&str> {
        self.slots
            .iter()
            .filter(|s| matches!(&s.state, State::K8s(k) if k.needs_scaler()))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Feeds written points (in order) at processor time `now`.
    pub fn write<'a>(
        &mut self,
        points: impl Iterator<Item = PointRef<'a>>,
        now: i64,
        effects: &mut Vec<Effect>,
    ) {
        let from_ids: Vec<usize> = self
            .slots
            .first()
            .map(|s| s.children.clone())
            .unwrap_or_default();
        for p in points {
            if let Some(stream) = self.slots.first_mut() {
                stream.stats.collected += 1;
                stream.stats.emitted += 1;
            }
            for &id in &from_ids {
                let Some(slot) = self.slots.get_mut(id) else {
                    continue;
                };
                let State::From(from) = &mut slot.state else {
                    continue;
                };
                slot.stats.collected += 1;
                match from.point(&p, now, &mut self.series_limit) {
                    Ok(Some(point)) => {
                        slot.stats.emitted += 1;
                        self.forward(id, Message::Point(point), now, effects);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        slot.stats.errors += 1;
                        tracing::debug!(task = %self.task, node = %slot.name, %error, "point dropped");
                    }
                }
            }
        }
        if let Some(report) = self.series_limit.report(now) {
            tracing::warn!(
                task = %self.task,
                limit = report.limit,
                live_series = report.live,
                dropped_points = report.dropped_points,
                example = %report.example,
                "points of new series dropped: the task is at its series limit \
                 ([pipeline] max-series-per-task)"
            );
        }
    }

    /// Advances processor time: emits what became due, frees expired state.
    pub fn tick(&mut self, now: i64, effects: &mut Vec<Effect>) {
        let expiry = nodes::nanos(self.settings.state_expiry).unwrap_or(i64::MAX);
        for id in 0..self.slots.len() {
            let mut out = self.pool.pop().unwrap_or_default();
            if let Some(slot) = self.slots.get_mut(id) {
                match &mut slot.state {
                    State::From(n) => self.series_limit.freed(n.expire(now, expiry)),
                    State::GroupBy(n) => n.expire(now, expiry),
                    State::Derivative(n) => n.expire(now, expiry),
                    State::MovingAverage(n) => n.expire(now, expiry),
                    State::K8s(n) => {
                        n.expire(now, expiry);
                        let asker = autoscale::Asker {
                            task: &self.task,
                            node_name: &slot.name,
                            node: id,
                        };
                        n.tick(&asker, now, effects);
                    }
                    State::Aggregate(n) => {
                        let mut points = Vec::new();
                        n.tick(now, &mut points);
                        out.extend(points.into_iter().map(Message::Point));
                    }
                    State::Window(n) => {
                        let mut batches = Vec::new();
                        n.tick(now, &mut batches);
                        out.extend(batches.into_iter().map(Message::Batch));
                    }
                    State::HttpOut(data) => data
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .retain(|_, rows| now.saturating_sub(rows.updated) < expiry),
                    _ => {}
                }
                slot.stats.emitted += out.len() as u64;
            }
            for message in out.drain(..) {
                self.forward(id, message, now, effects);
            }
            self.pool.push(out);
        }
    }

    /// Sends `message`, emitted by node `from`, to its children (depth first).
    fn forward(&mut self, from: usize, message: Message, now: i64, effects: &mut Vec<Effect>) {
        let children = match self.slots.get(from) {
            Some(slot) => slot.children.len(),
            None => return,
        };
        let mut message = Some(message);
        for i in 0..children {
            let Some(child) = self
                .slots
                .get(from)
                .and_then(|s| s.children.get(i).copied())
            else {
                continue;
            };
            let m = if i + 1 == children {
                message.take()
            } else {
                message.clone()
            };
            if let Some(m) = m {
                self.process(child, m, now, effects);
            }
        }
    }

    fn process(&mut self, id: usize, message: Message, now: i64, effects: &mut Vec<Effect>) {
        let mut out = self.pool.pop().unwrap_or_default();
        let task = &self.task;
        if let Some(slot) = self.slots.get_mut(id) {
            slot.stats.collected += 1;
            slot.samples += 1;
            let start = (slot.samples % SAMPLE_EVERY == 1).then(Instant::now);
            let Slot {
                name, state, stats, ..
            } = slot;
            let node = NodeRef { task, name, id };
            let (errors, first_error) = match message {
                Message::Point(point) => {
                    match on_point(&node, state, point, now, &mut out, effects) {
                        Ok(()) => (0, None),
                        Err(error) => (1, Some(error)),
                    }
                }
                Message::Batch(batch) => on_batch(&node, state, batch, now, &mut out, effects),
            };
            if let Some(error) = first_error {
                stats.errors += errors;
                tracing::debug!(task = %task, node = %name, %error, errors, "point dropped");
            }
            stats.emitted += out.len() as u64;
            if let Some(start) = start {
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let avg = &mut stats.avg_exec_time_ns;
                *avg = if *avg == 0 { ns } else { (*avg * 7 + ns) / 8 };
            }
        }
        for m in out.drain(..) {
            self.forward(id, m, now, effects);
        }
        self.pool.push(out);
    }

    /// Hands a scaler's answer back to the k8sAutoscale node `node` that asked.
    pub fn scaled(
        &mut self,
        node: usize,
        point: Point,
        result: Result<ScaleOutcome, ScaleError>,
        now: i64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(slot) = self.slots.get_mut(node) else {
            return;
        };
        let State::K8s(k8s) = &mut slot.state else {
            return;
        };
        let asker = autoscale::Asker {
            task: &self.task,
            node_name: &slot.name,
            node,
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                slot.stats.errors += 1;
                if matches!(error, ScaleError::Conflict { .. }) {
                    // The scaler warns once per check; every refused point need not.
                    tracing::debug!(task = %self.task, node = %slot.name, %error, "scale refused");
                } else if matches!(
                    error,
                    ScaleError::Forbidden(_) | ScaleError::NotFound { .. }
                ) {
                    // Only an operator can fix these (the Role, the target's name).
                    tracing::error!(task = %self.task, node = %slot.name, %error, "scale failed: the API refuses this processor; fix its Role or the target");
                } else {
                    tracing::warn!(task = %self.task, node = %slot.name, %error, "scale failed");
                }
                k8s.failed(&asker, &point, &error, now, effects);
                return;
            }
        };
        if let Some(event) = k8s.scaled(&asker, &point, &outcome, now, effects) {
            slot.stats.emitted += 1;
            self.forward(node, Message::Point(event), now, effects);
        }
    }

    /// Current stats of every node, in node order.
    pub fn stats(&self) -> Vec<NodeStats> {
        self.slots
            .iter()
            .map(|slot| {
                let mut stats = slot.stats.clone();
                let (specific, cardinality): (Vec<(&'static str, u64)>, usize) = match &slot.state {
                    State::From(n) => (
                        vec![
                            ("future_points", n.future_points),
                            ("series_over_limit", n.series_over_limit),
                        ],
                        n.cardinality(),
                    ),
                    State::GroupBy(n) => (Vec::new(), n.cardinality()),
                    State::Derivative(n) => (
                        vec![
                            ("counter_resets", n.stats.counter_resets),
                            ("duplicate_points", n.stats.duplicate_points),
                            ("out_of_order_points", n.stats.out_of_order_points),
                            ("overflowed_pairs", n.stats.overflowed_pairs),
                        ],
                        n.cardinality(),
                    ),
                    State::Aggregate(n) => (
                        vec![
                            ("duplicate_points", n.stats.duplicate_points),
                            ("expired_series", n.stats.expired_series),
                            ("late_points", n.stats.late_points),
                            ("warm_up_times", n.stats.warm_up_times),
                        ],
                        n.cardinality(),
                    ),
                    State::MovingAverage(n) => (Vec::new(), n.cardinality()),
                    State::Window(n) => (
                        vec![
                            ("duplicate_points", n.stats.duplicate_points),
                            ("expired_series", n.stats.expired_series),
                            ("late_points", n.stats.late_points),
                        ],
                        n.cardinality(),
                    ),
                    State::K8s(k) => (k.specific(slot.stats.errors), k.cardinality()),
                    _ => (Vec::new(), 0),
                };
                stats.specific = specific;
                stats.working_cardinality = cardinality as u64;
                stats
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::{Precision, parse_body};
    use crate::scaler::{Decision, Desired};
    use crate::tick::{VarOverrides, compile};

    const S: i64 = 1_000_000_000;

    fn graph(script: &str) -> Graph {
        let pipeline = compile(script, &VarOverrides::new()).unwrap();
        Graph::new("t", &pipeline, Settings::default()).unwrap()
    }

    fn write(graph: &mut Graph, body: &str, effects: &mut Vec<Effect>) {
        let parsed = parse_body(
            body.as_bytes().to_vec(),
            "db".into(),
            "rp".into(),
            Precision::Nanoseconds,
            0,
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        graph.write(parsed.batch.points(), 0, effects);
    }

    fn lines(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Write { line, .. } => Some(line.clone()),
                Effect::Scale { .. } | Effect::Decision(_) => None,
            })
            .collect()
    }

    /// Writes `body` at processor time `now`.
    fn write_at(graph: &mut Graph, body: &str, now: i64, effects: &mut Vec<Effect>) {
        let parsed = parse_body(
            body.as_bytes().to_vec(),
            "db".into(),
            "rp".into(),
            Precision::Nanoseconds,
            0,
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        graph.write(parsed.batch.points(), now, effects);
    }

    fn from_stat(graph: &Graph, name: &str) -> u64 {
        graph.stats()[1]
            .specific
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    #[test]
    fn a_task_keeps_at_most_its_series_limit_and_a_series_freed_by_silence_makes_room() {
        let script = "stream|from().measurement('m').groupBy('host')|influxDBOut().database('o')";
        let pipeline = compile(script, &VarOverrides::new()).unwrap();
        let settings = Settings {
            max_series: 2,
            state_expiry: Duration::from_secs(60),
            ..Settings::default()
        };
        let mut g = Graph::new("t", &pipeline, settings).unwrap();
        let mut effects = Vec::new();
        write_at(
            &mut g,
            &format!("m,host=a v=1 {S}\nm,host=b v=1 {S}\nm,host=c v=1 {S}\nm,host=c v=2 {S}"),
            S,
            &mut effects,
        );
        // a and b pass; both points of c are dropped and counted, a and b keep working.
        assert_eq!(lines(&effects).len(), 2, "{:?}", lines(&effects));
        assert_eq!(from_stat(&g, "series_over_limit"), 2);
        assert_eq!(g.stats()[1].working_cardinality, 2);
        write_at(
            &mut g,
            &format!("m,host=b v=2 {}", 50 * S),
            50 * S,
            &mut effects,
        );
        assert_eq!(lines(&effects).len(), 3, "an existing series still passes");
        // a is silent for state-expiry and freed: c gets its place, b keeps its own.
        g.tick(100 * S, &mut effects);
        assert_eq!(g.stats()[1].working_cardinality, 1);
        write_at(
            &mut g,
            &format!("m,host=c v=3 {}", 100 * S),
            100 * S,
            &mut effects,
        );
        assert_eq!(lines(&effects).len(), 4);
        assert_eq!(g.stats()[1].working_cardinality, 2);
        assert_eq!(from_stat(&g, "series_over_limit"), 2);
    }

    #[test]
    fn zero_series_limit_means_no_limit() {
        let script = "stream|from().measurement('m')|influxDBOut().database('o')";
        let pipeline = compile(script, &VarOverrides::new()).unwrap();
        let settings = Settings {
            max_series: 0,
            ..Settings::default()
        };
        let mut g = Graph::new("t", &pipeline, settings).unwrap();
        let body: Vec<String> = (0..1000).map(|i| format!("m,host=h{i} v=1 {S}")).collect();
        let mut effects = Vec::new();
        write_at(&mut g, &body.join("\n"), S, &mut effects);
        assert_eq!(g.stats()[1].working_cardinality, 1000);
        assert_eq!(from_stat(&g, "series_over_limit"), 0);
    }

    /// Answers every scale intent in `effects` as the dry-run scaler would (unchanged at 1).
    fn answer_scale_intents(graph: &mut Graph, now: i64, effects: &mut Vec<Effect>) {
        let intents: Vec<(usize, Point)> = effects
            .drain(..)
            .filter_map(|effect| match effect {
                Effect::Scale { node, point, .. } => Some((node, point)),
                _ => None,
            })
            .collect();
        for (node, point) in intents {
            let mut outcome = ScaleOutcome::plain(Decision::Unchanged, 1, 1, true);
            outcome.decided_at = now;
            graph.scaled(node, point, Ok(outcome), now, effects);
        }
        effects.clear();
    }

    #[test]
    fn every_node_of_the_tutorial_task_frees_its_state_after_the_series_go_silent() {
        let script = include_str!("../../tests/fixtures/tick/autoscale.tick");
        let pipeline = compile(script, &VarOverrides::new()).unwrap();
        let settings = Settings {
            state_expiry: Duration::from_secs(60),
            dry_run: true,
            ..Settings::default()
        };
        let mut g = Graph::new("t", &pipeline, settings).unwrap();
        let mut effects = Vec::new();
        // 3 deployments x 50 pods, one point per second each for 100 s (the moving average's 60
        // points fill after the sum's warm-up), on a simulated clock.
        for second in 1..=100 {
            let now = second * S;
            let body: Vec<String> = (0..150)
                .map(|pod| {
                    format!(
                        "requests,deployment=d{},host=p{pod} counter={}i {now}",
                        pod % 3,
                        second * 100
                    )
                })
                .collect();
            write_at(&mut g, &body.join("\n"), now, &mut effects);
            g.tick(now, &mut effects);
            answer_scale_intents(&mut g, now, &mut effects);
        }
        let busy: Vec<(String, u64)> = g
            .stats()
            .into_iter()
            .map(|s| (s.name, s.working_cardinality))
            .collect();
        let by_name = |name: &str| busy.iter().find(|(n, _)| n.starts_with(name)).map(|x| x.1);
        assert_eq!(by_name("from"), Some(150), "{busy:?}");
        assert_eq!(by_name("derivative"), Some(150), "{busy:?}");
        assert!(by_name("sum").is_some_and(|n| n >= 3), "{busy:?}");
        assert_eq!(by_name("movingAverage"), Some(3), "{busy:?}");
        assert!(by_name("k8s_autoscale").is_some_and(|n| n >= 1), "{busy:?}");
        // Silence: every node's state is gone one state-expiry (and the sum's few cadences)
        // after the last point.
        for second in 101..=(100 + 60 + 5) {
            g.tick(second * S, &mut effects);
            answer_scale_intents(&mut g, second * S, &mut effects);
        }
        let after: Vec<(String, u64)> = g
            .stats()
            .into_iter()
            .map(|s| (s.name, s.working_cardinality))
            .collect();
        assert!(after.iter().all(|(_, n)| *n == 0), "{after:?}");
        effects.clear();
        // And a new series is admitted in the freed space as any other.
        write_at(
            &mut g,
            &format!("requests,deployment=d0,host=new counter=1i {}", 300 * S),
            300 * S,
            &mut effects,
        );
        assert_eq!(g.stats()[1].working_cardinality, 1);
    }

    #[test]
    fn from_filters_truncates_and_rounds() {
        let mut g = graph(
            "stream|from().measurement('m').where(lambda: \"v\" > 1).round(1s)|influxDBOut().database('o')",
        );
        let mut effects = Vec::new();
        write(
            &mut g,
            "m v=1 1000000000\nm v=2 1600000000\nother v=5 1000000000\nm v=3 2400000000",
            &mut effects,
        );
        assert_eq!(
            lines(&effects),
            vec!["m v=2 2000000000", "m v=3 2000000000"]
        );
        let mut g =
            graph("stream|from().measurement('m').truncate(1s)|influxDBOut().database('o')");
        let mut effects = Vec::new();
        write(&mut g, "m v=2 1999999999", &mut effects);
        assert_eq!(lines(&effects), vec!["m v=2 1000000000"]);
    }

    #[test]
    fn eval_keeps_only_its_results_unless_told_and_makes_tags() {
        let mut g = graph(
            "stream|from().measurement('m')|eval(lambda: \"v\" * 2.0, lambda: \"double\" + 1.0, lambda: 'x').as('double', 'plus', 'kind').tags('kind')|influxDBOut().database('o')",
        );
        let mut effects = Vec::new();
        write(&mut g, "m,host=a v=2,w=1 1", &mut effects);
        assert_eq!(lines(&effects), vec!["m,host=a,kind=x double=4,plus=5 1"]);
        let mut g = graph(
            "stream|from().measurement('m')|eval(lambda: \"v\" * 2.0).as('double').keep()|influxDBOut().database('o')",
        );
        let mut effects = Vec::new();
        write(&mut g, "m v=2,w=1 1", &mut effects);
        assert_eq!(lines(&effects), vec!["m v=2,w=1,double=4 1"]);
    }

    #[test]
    fn where_errors_are_counted_and_the_point_dropped() {
        let mut g = graph("stream|from().measurement('m')|where(lambda: \"missing\" > 1)");
        let mut effects = Vec::new();
        write(&mut g, "m v=1 1", &mut effects);
        let stats = g.stats();
        assert_eq!(stats[2].errors, 1);
        assert_eq!(stats[2].emitted, 0);
    }

    #[test]
    fn a_current_field_lambda_is_left_for_the_scaler_to_evaluate_with_the_live_count() {
        let mut g = graph(
            "stream|from().measurement('m')|k8sAutoscale().resourceName('app').currentField('replicas').replicas(lambda: \"replicas\" + int(\"v\"))",
        );
        let mut effects = Vec::new();
        write(&mut g, "m v=2 5000000000", &mut effects);
        let Some(Effect::Scale { intent, .. }) = effects.pop() else {
            panic!("expected a scale intent");
        };
        let Desired::FromCurrent(_) = &intent.desired else {
            panic!(
                "expected a lambda of the current count: {:?}",
                intent.desired
            );
        };
        assert_eq!(intent.desired.resolve(3).unwrap(), Some(5.0));
        assert_eq!(intent.desired.resolve(7).unwrap(), Some(9.0));
    }

    #[test]
    fn k8s_autoscale_asks_the_scaler_and_emits_old_and_new_with_tags() {
        let mut g = graph(
            "stream|from().measurement('m').groupBy('deployment')|k8sAutoscale().resourceNameTag('deployment').replicas(lambda: int(ceil(\"v\" / 100.0))).max(10)|influxDBOut().database('o')",
        );
        let mut effects = Vec::new();
        write(
            &mut g,
            "m,deployment=app,host=h v=250 5000000000",
            &mut effects,
        );
        let Some(Effect::Scale {
            node,
            intent,
            point,
        }) = effects.pop()
        else {
            panic!("expected a scale intent");
        };
        assert_eq!(intent.desired, Desired::Raw(3.0));
        assert_eq!(intent.target.name, "app");
        assert_eq!(intent.policy.max, 10);
        assert_eq!(intent.point_time_ns, 5 * S);
        let outcome = ScaleOutcome::plain(Decision::Increased, 1, 3, false);
        g.scaled(node, point.clone(), Ok(outcome), 0, &mut effects);
        assert_eq!(
            lines(&effects),
            vec![
                "m,deployment=app,kind=deployments,namespace=default,resource=app old=1i,new=3i 5000000000"
            ]
        );
        let cooldown = ScaleOutcome::plain(Decision::CooldownDrop, 3, 3, false);
        g.scaled(node, point.clone(), Ok(cooldown), 0, &mut effects);
        g.scaled(
            node,
            point,
            Err(ScaleError::Api("boom".into())),
            0,
            &mut effects,
        );
        let stats = g.stats();
        let k8s = &stats[2];
        assert_eq!(k8s.name, "k8s_autoscale2");
        for expected in [
            ("cooldown_drops", 1),
            ("decrease_events", 0),
            ("errors", 1),
            ("increase_events", 1),
        ] {
            assert!(k8s.specific.contains(&expected), "{:?}", k8s.specific);
        }
    }

    #[test]
    fn a_window_batches_each_group_and_an_aggregate_reduces_a_batch_to_one_point() {
        let mut g = graph(
            "stream|from().measurement('m').groupBy('host')|window().period(10s).every(10s).align()|mean('v')|influxDBOut().database('o')",
        );
        let mut effects = Vec::new();
        write(
            &mut g,
            "m,host=a v=1 1000000000\nm,host=a v=3 5000000000\nm,host=b v=10 2000000000\nm,host=a v=7 12000000000\nm,host=b v=20 13000000000",
            &mut effects,
        );
        assert_eq!(
            lines(&effects),
            vec![
                "m,host=a mean=2 10000000000",
                "m,host=b mean=10 10000000000"
            ]
        );
        let window = &g.stats()[2];
        assert_eq!(
            (window.name.as_str(), window.collected, window.emitted),
            ("window2", 5, 2)
        );
        assert_eq!(window.working_cardinality, 2);
    }

    #[test]
    fn derivative_and_moving_average_work_within_a_batch_and_http_out_serves_it() {
        let mut g = graph(
            "stream|from().measurement('m')|window().period(10s).every(10s).align()|derivative('v').unit(1s).as('rate')|movingAverage('rate', 2).as('avg')|httpOut('w')",
        );
        let mut effects = Vec::new();
        write(
            &mut g,
            "m v=0 1000000000\nm v=10 2000000000\nm v=30 3000000000\nm v=60 4000000000\nm v=100 11000000000",
            &mut effects,
        );
        let data = g.http_outs().get("w").unwrap().lock().unwrap().clone();
        let rows = data.get("").unwrap();
        let avg: Vec<(i64, Option<f64>)> = rows
            .points
            .iter()
            .map(|p| (p.time / S, p.field("avg").and_then(Field::as_f64)))
            .collect();
        assert_eq!(avg, vec![(3, Some(15.0)), (4, Some(25.0))]);
    }

    #[test]
    fn http_out_rows_of_a_quiet_group_are_freed_after_state_expiry() {
        let mut g = graph("stream|from().measurement('m').groupBy('host')|httpOut('h')");
        let mut effects = Vec::new();
        write(&mut g, "m,host=a v=1 1\nm,host=b v=2 2", &mut effects);
        let rows = || g.http_outs().get("h").unwrap().lock().unwrap().len();
        assert_eq!(rows(), 2);
        g.tick(599 * S, &mut effects);
        assert_eq!(g.http_outs().get("h").unwrap().lock().unwrap().len(), 2);
        g.tick(600 * S, &mut effects);
        assert_eq!(g.http_outs().get("h").unwrap().lock().unwrap().len(), 0);
    }

    #[test]
    fn a_window_must_follow_a_stream_not_a_window() {
        let error = compile(
            "stream|from().measurement('m')|window().period(10s).every(10s)|log()|window().period(1m).every(1m)",
            &VarOverrides::new(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("needs a stream"), "{error}");
        compile(
            "stream|from().measurement('m')|window().period(10s).every(10s)|sum('v')|window().period(1m).every(1m)|mean('sum')",
            &VarOverrides::new(),
        )
        .unwrap();
    }
}
