//! A node's state and one message through it: [`on_point`] for a stream edge, [`on_batch`]
//! after a window. [`super::Graph`] routes the messages between nodes.

use std::sync::Arc;

use crate::tick::nodes::{InfluxDbOutSpec, LogLevel, LogSpec};

use super::point::{Batch, Message, Point};
use super::{
    Effect, HttpOutData, HttpRows, aggregate, autoscale, derivative, moving_average, nodes, window,
};

pub(super) enum State {
    Stream,
    From(Box<nodes::From>),
    Where(crate::tick::nodes::WhereSpec),
    GroupBy(nodes::GroupBy),
    Derivative(derivative::Derivative),
    Aggregate(aggregate::Aggregate),
    MovingAverage(moving_average::MovingAverage),
    Eval(Box<crate::tick::nodes::EvalSpec>),
    Window(window::Window),
    Log(LogSpec),
    HttpOut(HttpOutData),
    InfluxDbOut(Box<InfluxDbOut>),
    K8s(Box<autoscale::Autoscale>),
}

/// An influxDBOut node, with what every line needs worked out once.
pub(super) struct InfluxDbOut {
    pub(super) spec: Arc<InfluxDbOutSpec>,
    /// Nanoseconds per unit of `.precision()`.
    pub(super) unit_ns: i64,
    /// `.tag()`s, as [`Point::to_line_in`] takes them.
    pub(super) tags: Vec<(String, String)>,
}

/// The node a message is processed by, for logs and effects.
pub(super) struct NodeRef<'a> {
    pub(super) task: &'a str,
    pub(super) name: &'a str,
    pub(super) id: usize,
}

impl NodeRef<'_> {
    fn asker(&self) -> autoscale::Asker<'_> {
        autoscale::Asker {
            task: self.task,
            node_name: self.name,
            node: self.id,
        }
    }
}

/// One point through one node (a stream edge); emitted messages go to `out`.
pub(super) fn on_point(
    node: &NodeRef<'_>,
    state: &mut State,
    point: Point,
    now: i64,
    out: &mut Vec<Message>,
    effects: &mut Vec<Effect>,
) -> Result<(), String> {
    match state {
        State::Stream | State::From(_) => out.push(Message::Point(point)),
        State::Where(spec) => {
            if nodes::where_keeps(spec, &point).map_err(|e| e.to_string())? {
                out.push(Message::Point(point));
            }
        }
        State::GroupBy(n) => out.push(Message::Point(n.point(point, now))),
        State::Derivative(n) => {
            if let Some(p) = n.point(point, now).map_err(|e| e.to_string())? {
                out.push(Message::Point(p));
            }
        }
        State::Aggregate(n) => {
            let mut points = Vec::new();
            let result = n.point(point, now, &mut points).map_err(|e| e.to_string());
            out.extend(points.into_iter().map(Message::Point));
            result?;
        }
        State::MovingAverage(n) => {
            if let Some(p) = n.point(point, now).map_err(|e| e.to_string())? {
                out.push(Message::Point(p));
            }
        }
        State::Eval(spec) => {
            out.push(Message::Point(
                nodes::eval(spec, point).map_err(|e| e.to_string())?,
            ));
        }
        State::Window(n) => {
            let mut batches = Vec::new();
            n.point(point, now, &mut batches);
            out.extend(batches.into_iter().map(Message::Batch));
        }
        State::Log(spec) => {
            log_point(node.task, node.name, spec, &point);
            out.push(Message::Point(point));
        }
        State::HttpOut(data) => {
            let rows = HttpRows {
                name: Arc::clone(&point.series.measurement),
                group: Arc::clone(&point.group),
                points: vec![point.clone()],
                updated: now,
            };
            data.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(point.group.id(), rows);
            out.push(Message::Point(point));
        }
        State::InfluxDbOut(node_out) => {
            effects.push(influxdb_write(node.id, node_out, &point));
            out.push(Message::Point(point));
        }
        State::K8s(k8s) => k8s.point(&node.asker(), point, now, effects)?,
    }
    Ok(())
}

/// One batch through one node (after a window), as Kapacitor: aggregates reduce it to one
/// point stamped with the batch's time; derivative and movingAverage work within the batch;
/// the others act on each of its points. Returns the number of points dropped for errors
/// and the first error.
pub(super) fn on_batch(
    node: &NodeRef<'_>,
    state: &mut State,
    mut batch: Batch,
    now: i64,
    out: &mut Vec<Message>,
    effects: &mut Vec<Effect>,
) -> (u64, Option<String>) {
    let mut errors = 0;
    let mut first_error = None;
    let mut fail = |error: String| {
        errors += 1;
        first_error.get_or_insert(error);
    };
    match state {
        State::Stream | State::From(_) => out.push(Message::Batch(batch)),
        State::Where(spec) => {
            batch.points.retain(|p| match nodes::where_keeps(spec, p) {
                Ok(keep) => keep,
                Err(error) => {
                    fail(error.to_string());
                    false
                }
            });
            out.push(Message::Batch(batch));
        }
        State::GroupBy(n) => out.extend(n.batch(batch, now).into_iter().map(Message::Batch)),
        State::Derivative(n) => {
            let (batch, failures) = n.batch(batch);
            for error in failures {
                fail(error.to_string());
            }
            out.push(Message::Batch(batch));
        }
        State::Aggregate(n) => match n.batch(&batch) {
            Ok(Some(point)) => out.push(Message::Point(point)),
            Ok(None) => {}
            Err(error) => fail(error.to_string()),
        },
        State::MovingAverage(n) => {
            let (batch, failures) = n.batch(batch);
            for error in failures {
                fail(error.to_string());
            }
            out.push(Message::Batch(batch));
        }
        State::Eval(spec) => {
            let points = std::mem::take(&mut batch.points);
            for point in points {
                match nodes::eval(spec, point) {
                    Ok(p) => batch.points.push(p),
                    Err(error) => fail(error.to_string()),
                }
            }
            out.push(Message::Batch(batch));
        }
        // The compiler refuses a window after a window (a window wants a stream).
        State::Window(_) => fail("a window node cannot take a batch".to_owned()),
        State::Log(spec) => {
            for point in &batch.points {
                log_point(node.task, node.name, spec, point);
            }
            out.push(Message::Batch(batch));
        }
        State::HttpOut(data) => {
            let rows = HttpRows {
                name: Arc::clone(&batch.name),
                group: Arc::clone(&batch.group),
                points: batch.points.clone(),
                updated: now,
            };
            data.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(batch.group.id(), rows);
            out.push(Message::Batch(batch));
        }
        State::InfluxDbOut(node_out) => {
            for point in &batch.points {
                effects.push(influxdb_write(node.id, node_out, point));
            }
            out.push(Message::Batch(batch));
        }
        State::K8s(k8s) => {
            for point in batch.points {
                if let Err(error) = k8s.point(&node.asker(), point, now, effects) {
                    fail(error);
                }
            }
        }
    }
    (errors, first_error)
}

fn influxdb_write(node: usize, out: &InfluxDbOut, point: &Point) -> Effect {
    let measurement = if out.spec.measurement.is_empty() {
        &point.series.measurement
    } else {
        out.spec.measurement.as_str()
    };
    Effect::Write {
        node,
        out: Arc::clone(&out.spec),
        line: point.to_line_in(measurement, &out.tags, out.unit_ns),
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
