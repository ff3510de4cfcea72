//! Running a compiled TICKscript [`tick::Pipeline`](crate::tick::Pipeline): the node graph as
//! pure state machines. Time is passed in (`now`, the processor clock, in ns); nothing here
//! does IO. What needs the outside world comes back as [`Effect`]s for the task runtime
//! (`k8sAutoscale` -> a [`ScaleIntent`], `influxDBOut` -> line protocol to write).
//!
//! # Layout
//! - [`point`]: owned points between nodes (shared series and group).
//! - [`nodes`]: from, where, groupBy, derivative, movingAverage, eval.
//! - [`aggregate`]: sum/mean/... aligned by time across a group's series (our fix).
//! - this file: [`Graph`] (routing points through the nodes, stats), log, httpOut,
//!   influxDBOut and k8sAutoscale.

pub mod aggregate;
pub mod nodes;
pub mod point;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::line_protocol::Precision;
use crate::point::PointRef;
use crate::scaler::{Decision, Kind, Policy, ScaleError, ScaleIntent, ScaleOutcome, Target};
use crate::tick::nodes::{InfluxDbOutSpec, K8sAutoscaleSpec, LogLevel, LogSpec};
use crate::tick::{NodeSpec, Pipeline as Script};

pub use point::{Field, Group, Point, Series};

/// Timing settings of a running pipeline (`[pipeline]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// An aggregate emits an aligned time at the latest this long after its first value arrived.
    pub lateness: Duration,
    /// A series that sent nothing for this long stops counting as a live contributor.
    pub series_expiry: Duration,
    /// Per-series/per-group state (derivative, movingAverage, caches) unused this long is freed.
    pub state_expiry: Duration,
    /// Every k8sAutoscale node only decides and reports (the config's dry run).
    pub dry_run: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lateness: Duration::from_secs(15),
            series_expiry: Duration::from_secs(30),
            state_expiry: Duration::from_secs(600),
            dry_run: false,
        }
    }
}

/// Why a pipeline cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{node}: the {method} node is not supported by the runtime yet")]
    Unsupported { node: String, method: &'static str },
    #[error(
        "{node}: unknown kind {kind:?} (deployments, statefulsets, replicasets, replicationcontrollers)"
    )]
    Kind { node: String, kind: String },
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
}

/// The latest point per group of an httpOut node, shared with the HTTP API.
pub type HttpOutData = Arc<Mutex<BTreeMap<String, Point>>>;

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

enum State {
    Stream,
    From(Box<nodes::From>),
    Where(crate::tick::nodes::WhereSpec),
    GroupBy(nodes::GroupBy),
    Derivative(nodes::Derivative),
    Aggregate(aggregate::Aggregate),
    MovingAverage(nodes::MovingAverage),
    Eval(Box<crate::tick::nodes::EvalSpec>),
    Log(LogSpec),
    HttpOut(HttpOutData),
    InfluxDbOut(Arc<InfluxDbOutSpec>, i64),
    K8s(Box<K8sNode>),
}

struct K8sNode {
    spec: K8sAutoscaleSpec,
    kind: Kind,
    dry_run: bool,
    increase_events: u64,
    decrease_events: u64,
    cooldown_drops: u64,
    /// Last known replicas per resource name (for `currentField`).
    current: BTreeMap<String, (i64, i64)>,
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
    pool: Vec<Vec<Point>>,
}

const SAMPLE_EVERY: u64 = 16;

impl Graph {
    /// Builds the runtime state for `script`, as task `task`.
    pub fn new(task: &str, script: &Script, settings: Settings) -> Result<Graph, Error> {
        let alignment = aggregate::Alignment {
            lateness_ns: nodes::nanos(settings.lateness).unwrap_or(0),
            series_expiry_ns: nodes::nanos(settings.series_expiry).unwrap_or(i64::MAX),
            state_expiry_ns: nodes::nanos(settings.state_expiry).unwrap_or(i64::MAX),
        };
        let mut slots = Vec::with_capacity(script.nodes.len());
        let mut http_outs = BTreeMap::new();
        for node in &script.nodes {
            let state = match &node.spec {
                NodeSpec::Stream => State::Stream,
                NodeSpec::From(spec) => State::From(Box::new(nodes::From::new(spec))),
                NodeSpec::Where(spec) => State::Where(spec.clone()),
                NodeSpec::GroupBy(spec) => State::GroupBy(nodes::GroupBy::new(spec)),
                NodeSpec::Derivative(spec) => State::Derivative(nodes::Derivative::new(spec)),
                NodeSpec::Aggregate(spec) => {
                    State::Aggregate(aggregate::Aggregate::new(spec, alignment))
                }
                NodeSpec::MovingAverage(spec) => {
                    State::MovingAverage(nodes::MovingAverage::new(spec))
                }
                NodeSpec::Eval(spec) => State::Eval(Box::new(spec.clone())),
                NodeSpec::Log(spec) => State::Log(spec.clone()),
                NodeSpec::HttpOut(spec) => {
                    let data = HttpOutData::default();
                    http_outs.insert(spec.endpoint.clone(), Arc::clone(&data));
                    State::HttpOut(data)
                }
                NodeSpec::InfluxDbOut(spec) => {
                    // The parser admits only the precisions this knows; anything else: ns.
                    let unit =
                        Precision::from_v1_param(&spec.precision).map_or(1, Precision::nanos);
                    State::InfluxDbOut(Arc::new(spec.clone()), unit)
                }
                NodeSpec::K8sAutoscale(spec) => {
                    let kind = Kind::from_name(&spec.kind).ok_or_else(|| Error::Kind {
                        node: node.name.clone(),
                        kind: spec.kind.clone(),
                    })?;
                    State::K8s(Box::new(K8sNode {
                        dry_run: spec.dry_run || settings.dry_run,
                        spec: (**spec).clone(),
                        kind,
                        increase_events: 0,
                        decrease_events: 0,
                        cooldown_drops: 0,
                        current: BTreeMap::new(),
                    }))
                }
                NodeSpec::Window(_) => {
                    return Err(Error::Unsupported {
                        node: node.name.clone(),
                        method: "window",
                    });
                }
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
            .filter(|s| matches!(&s.state, State::K8s(k) if !k.dry_run))
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
                match from.point(&p, now) {
                    Ok(Some(point)) => {
                        slot.stats.emitted += 1;
                        self.forward(id, point, now, effects);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        slot.stats.errors += 1;
                        tracing::debug!(task = %self.task, node = %slot.name, %error, "point dropped");
                    }
                }
            }
        }
    }

    /// Advances processor time: emits what became due, frees expired state.
    pub fn tick(&mut self, now: i64, effects: &mut Vec<Effect>) {
        let expiry = nodes::nanos(self.settings.state_expiry).unwrap_or(i64::MAX);
        for id in 0..self.slots.len() {
            let mut out = self.pool.pop().unwrap_or_default();
            if let Some(slot) = self.slots.get_mut(id) {
                match &mut slot.state {
                    State::From(n) => n.expire(now, expiry),
                    State::GroupBy(n) => n.expire(now, expiry),
                    State::Derivative(n) => n.expire(now, expiry),
                    State::MovingAverage(n) => n.expire(now, expiry),
                    State::Aggregate(n) => n.tick(now, &mut out),
                    _ => {}
                }
                slot.stats.emitted += out.len() as u64;
            }
            for point in out.drain(..) {
                self.forward(id, point, now, effects);
            }
            self.pool.push(out);
        }
    }

    /// Sends `point`, emitted by node `from`, to its children (depth first).
    fn forward(&mut self, from: usize, point: Point, now: i64, effects: &mut Vec<Effect>) {
        let children = match self.slots.get(from) {
            Some(slot) => slot.children.len(),
            None => return,
        };
        let mut point = Some(point);
        for i in 0..children {
            let Some(child) = self
                .slots
                .get(from)
                .and_then(|s| s.children.get(i).copied())
            else {
                continue;
            };
            let p = if i + 1 == children {
                point.take()
            } else {
                point.clone()
            };
            if let Some(p) = p {
                self.process(child, p, now, effects);
            }
        }
    }

    fn process(&mut self, id: usize, point: Point, now: i64, effects: &mut Vec<Effect>) {
        let mut out = self.pool.pop().unwrap_or_default();
        let start = self.slots.get_mut(id).and_then(|slot| {
            slot.stats.collected += 1;
            slot.samples += 1;
            (slot.samples % SAMPLE_EVERY == 1).then(Instant::now)
        });
        let task = &self.task;
        if let Some(slot) = self.slots.get_mut(id) {
            let result: Result<(), String> = match &mut slot.state {
                State::Stream | State::From(_) => {
                    out.push(point);
                    Ok(())
                }
                State::Where(spec) => match nodes::where_keeps(spec, &point) {
                    Ok(true) => {
                        out.push(point);
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(e.to_string()),
                },
                State::GroupBy(n) => {
                    out.push(n.point(point, now));
                    Ok(())
                }
                State::Derivative(n) => n
                    .point(point, now)
                    .map(|p| out.extend(p))
                    .map_err(|e| e.to_string()),
                State::Aggregate(n) => n.point(point, now, &mut out).map_err(|e| e.to_string()),
                State::MovingAverage(n) => n
                    .point(point, now)
                    .map(|p| out.extend(p))
                    .map_err(|e| e.to_string()),
                State::Eval(spec) => match nodes::eval(spec, point) {
                    Ok(p) => {
                        out.push(p);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                },
                State::Log(spec) => {
                    log_point(task, &slot.name, spec, &point);
                    out.push(point);
                    Ok(())
                }
                State::HttpOut(data) => {
                    let mut guard = data.lock().unwrap_or_else(|p| p.into_inner());
                    guard.insert(point.group.id.clone(), point.clone());
                    drop(guard);
                    out.push(point);
                    Ok(())
                }
                State::InfluxDbOut(spec, unit_ns) => {
                    let measurement = if spec.measurement.is_empty() {
                        point.series.measurement.to_string()
                    } else {
                        spec.measurement.clone()
                    };
                    let tags: Vec<(String, String)> = spec
                        .tags
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    effects.push(Effect::Write {
                        node: id,
                        out: Arc::clone(spec),
                        line: point.to_line_in(&measurement, &tags, *unit_ns),
                    });
                    out.push(point);
                    Ok(())
                }
                State::K8s(k8s) => k8s_intent(task, &slot.name, k8s, id, point, effects),
            };
            if let Err(error) = result {
                slot.stats.errors += 1;
                tracing::debug!(task = %task, node = %slot.name, %error, "point dropped");
            }
            slot.stats.emitted += out.len() as u64;
            if let Some(start) = start {
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let avg = &mut slot.stats.avg_exec_time_ns;
                *avg = if *avg == 0 { ns } else { (*avg * 7 + ns) / 8 };
            }
        }
        for p in out.drain(..) {
            self.forward(id, p, now, effects);
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
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                slot.stats.errors += 1;
                tracing::warn!(task = %self.task, node = %slot.name, %error, "scale failed");
                return;
            }
        };
        let name = resource_name(&k8s.spec, &point).unwrap_or_default();
        k8s.current.insert(name.clone(), (outcome.old, outcome.new));
        match outcome.decision {
            Decision::Increased => k8s.increase_events += 1,
            Decision::Decreased => k8s.decrease_events += 1,
            Decision::CooldownDrop => {
                k8s.cooldown_drops += 1;
                return;
            }
            Decision::Unchanged | Decision::Stale => return,
        }
        let mut tags = point.group.dims.clone();
        let namespace = if k8s.spec.namespace.is_empty() {
            "default".to_string()
        } else {
            k8s.spec.namespace.clone()
        };
        for (tag, value) in [
            (&k8s.spec.namespace_tag, namespace),
            (&k8s.spec.kind_tag, k8s.kind.resource().to_string()),
            (&k8s.spec.resource_tag, name),
        ] {
            if !tag.is_empty() {
                tags.push((Arc::from(tag.as_str()), Arc::from(value.as_str())));
            }
        }
        let event = Point {
            series: Arc::new(Series::new(Arc::clone(&point.series.measurement), tags)),
            group: Arc::clone(&point.group),
            fields: vec![
                (Arc::from("old"), Field::Int(outcome.old)),
                (Arc::from("new"), Field::Int(outcome.new)),
            ],
            time: point.time,
        };
        slot.stats.emitted += 1;
        self.forward(node, event, now, effects);
    }

    /// Current stats of every node, in node order.
    pub fn stats(&self) -> Vec<NodeStats> {
        self.slots
            .iter()
            .map(|slot| {
                let mut stats = slot.stats.clone();
                let (specific, cardinality): (Vec<(&'static str, u64)>, usize) = match &slot.state {
                    State::From(n) => (Vec::new(), n.cardinality()),
                    State::GroupBy(n) => (Vec::new(), n.cardinality()),
                    State::Derivative(n) => (
                        vec![
                            ("counter_resets", n.stats.counter_resets),
                            ("duplicate_points", n.stats.duplicate_points),
                            ("out_of_order_points", n.stats.out_of_order_points),
                        ],
                        n.cardinality(),
                    ),
                    State::Aggregate(n) => (
                        vec![
                            ("duplicate_points", n.stats.duplicate_points),
                            ("expired_series", n.stats.expired_series),
                            ("late_points", n.stats.late_points),
                        ],
                        n.cardinality(),
                    ),
                    State::MovingAverage(n) => (Vec::new(), n.cardinality()),
                    State::K8s(k) => (
                        vec![
                            ("cooldown_drops", k.cooldown_drops),
                            ("decrease_events", k.decrease_events),
                            ("errors", slot.stats.errors),
                            ("increase_events", k.increase_events),
                        ],
                        k.current.len(),
                    ),
                    _ => (Vec::new(), 0),
                };
                stats.specific = specific;
                stats.working_cardinality = cardinality as u64;
                stats
            })
            .collect()
    }
}

fn log_point(task: &str, node: &str, spec: &LogSpec, point: &Point) {
    let line = point.to_line(&point.series.measurement, &[]);
    let prefix = &spec.prefix;
    match spec.level {
        LogLevel::Debug => tracing::debug!(task, node, prefix, %line, "log"),
        LogLevel::Info => tracing::info!(task, node, prefix, %line, "log"),
        LogLevel::Warn => tracing::warn!(task, node, prefix, %line, "log"),
        LogLevel::Error => tracing::error!(task, node, prefix, %line, "log"),
    }
}

fn resource_name(spec: &K8sAutoscaleSpec, point: &Point) -> Option<String> {
    match (&spec.resource_name, &spec.resource_name_tag) {
        (Some(name), _) if !name.is_empty() => Some(name.clone()),
        (_, Some(tag)) => point
            .series
            .tag(tag)
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}

fn k8s_intent(
    task: &str,
    node_name: &str,
    k8s: &mut K8sNode,
    node: usize,
    point: Point,
    effects: &mut Vec<Effect>,
) -> Result<(), String> {
    let name = resource_name(&k8s.spec, &point)
        .ok_or_else(|| "could not determine the name of the resource".to_string())?;
    let desired = if k8s.spec.current_field.is_empty() {
        k8s.spec.replicas.eval_int(&point)
    } else {
        let current = k8s.current.get(&name).map_or(0, |(_, new)| *new);
        let extra = [(
            k8s.spec.current_field.as_str(),
            crate::point::FieldValue::Integer(current),
        )];
        let scope = crate::tick::WithFields {
            base: &point,
            extra: &extra,
        };
        k8s.spec.replicas.eval_int(&scope)
    }
    .map_err(|e| e.to_string())?;
    let intent = ScaleIntent {
        target: Target {
            cluster: k8s.spec.cluster.clone(),
            namespace: k8s.spec.namespace.clone(),
            kind: k8s.kind,
            name,
        },
        desired,
        policy: Policy {
            min: k8s.spec.min,
            max: k8s.spec.max,
            increase_cooldown: k8s.spec.increase_cooldown,
            decrease_cooldown: k8s.spec.decrease_cooldown,
            dry_run: k8s.dry_run,
        },
        point_time_ns: point.time,
        task: task.to_owned(),
        node: node_name.to_owned(),
    };
    effects.push(Effect::Scale {
        node,
        intent: Box::new(intent),
        point,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::{Precision, parse_body};
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
                Effect::Scale { .. } => None,
            })
            .collect()
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
        assert_eq!(intent.desired, 3);
        assert_eq!(intent.target.name, "app");
        assert_eq!(intent.policy.max, 10);
        assert_eq!(intent.point_time_ns, 5 * S);
        let outcome = ScaleOutcome {
            decision: Decision::Increased,
            old: 1,
            new: 3,
            dry_run: false,
        };
        g.scaled(node, point.clone(), Ok(outcome), 0, &mut effects);
        assert_eq!(
            lines(&effects),
            vec![
                "m,deployment=app,kind=deployments,namespace=default,resource=app old=1i,new=3i 5000000000"
            ]
        );
        let cooldown = ScaleOutcome {
            decision: Decision::CooldownDrop,
            old: 3,
            new: 3,
            dry_run: false,
        };
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
    fn a_window_node_is_refused_with_its_name() {
        let pipeline = compile(
            "stream|from().measurement('m')|window().period(10s).every(10s)",
            &VarOverrides::new(),
        )
        .unwrap();
        let Err(error) = Graph::new("t", &pipeline, Settings::default()) else {
            panic!("window is not supported");
        };
        assert!(error.to_string().contains("window2"), "{error}");
    }
}
