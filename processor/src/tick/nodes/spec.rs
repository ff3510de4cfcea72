//! Each node's validated properties, as the pipeline runs them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::lambda::Lambda;
use super::{AggregateFn, NodeKind};
use crate::line_protocol::Precision;
use crate::scaler::Kind;

/// Tags to group by: explicit names, or every tag of the point (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dimensions {
    /// `*` was given: group by all tags of each point.
    pub all: bool,
    /// Tag names in the order given (the group key sorts them).
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FromSpec {
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub measurement: Option<String>,
    /// `.where(lambda)`: points for which it is false (or fails) are dropped.
    pub where_: Option<Lambda>,
    pub group_by: Dimensions,
    /// `.groupByMeasurement()`: the measurement is part of the group key.
    pub group_by_measurement: bool,
    /// `.truncate(d)`: timestamps floored to a multiple of `d`.
    pub truncate: Option<Duration>,
    /// `.round(d)`: timestamps rounded to the nearest multiple of `d`.
    pub round: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WhereSpec {
    pub predicate: Lambda,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupBySpec {
    pub dimensions: Dimensions,
    /// `.byMeasurement()`
    pub by_measurement: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DerivativeSpec {
    pub field: String,
    /// Rate unit, default 1 s.
    pub unit: Duration,
    /// Drop negative differences (counter resets).
    pub non_negative: bool,
    /// Output field, default the input field's name.
    pub as_: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggregateSpec {
    pub function: AggregateFn,
    pub field: String,
    /// Output field, default the function's name (`sum`).
    pub as_: String,
    /// `.usePointTimes()`
    pub use_point_times: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MovingAverageSpec {
    pub field: String,
    /// Number of points averaged (> 0).
    pub count: usize,
    /// Output field, default `movingAverage`.
    pub as_: String,
}

/// Which input fields an eval node keeps besides its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Default: only the `as` fields.
    None,
    /// `.keep()`: all fields of the input point plus the results.
    All,
    /// `.keep('a', 'b')`: exactly these fields.
    Only(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvalSpec {
    /// Evaluated in order; later ones see earlier results by their `as` name.
    pub expressions: Vec<Lambda>,
    /// One name per expression.
    pub as_: Vec<String>,
    pub keep: Keep,
    /// Results (among `as_`) emitted as tags instead of fields.
    pub tags: Vec<String>,
    /// `.quiet()`: do not log evaluation errors.
    pub quiet: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    /// Length of the window (> 0).
    pub period: Duration,
    /// How often the window is emitted; zero (the default, as Kapacitor): on every point.
    pub every: Duration,
    /// `.align()`: window boundaries aligned to multiples of `every`.
    pub align: bool,
    /// `.fillPeriod()`: wait until a whole period has elapsed before the first emit.
    pub fill_period: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogSpec {
    /// Default INFO.
    pub level: LogLevel,
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpOutSpec {
    /// Served at `/kapacitor/v1/tasks/<task>/<endpoint>`.
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InfluxDbOutSpec {
    pub database: String,
    /// Empty: the server's default retention policy.
    pub retention_policy: String,
    /// Empty: the point's own measurement.
    pub measurement: String,
    /// Name of a configured InfluxDB; empty: the default one.
    pub cluster: String,
    /// `.precision()`: the unit of the timestamps written (`n`, `u`, `ms`, `s`, `m`, `h`);
    /// default nanoseconds.
    pub precision: Precision,
    /// Static tags added to every point.
    pub tags: BTreeMap<String, String>,
    /// `.create()`: create the database if missing.
    pub create: bool,
    /// `.buffer(n)`: points held before a write (default 1000, as Kapacitor).
    pub buffer: usize,
    /// `.flushInterval(d)`: buffered points are written at least this often (default 10 s,
    /// as Kapacitor).
    pub flush_interval: Duration,
    /// `.writeConsistency()`: `any`, `one`, `quorum` or `all`, sent as `consistency=`;
    /// empty: not sent.
    pub write_consistency: String,
}

/// influxDBOut's `.buffer()` default, Kapacitor's `DefaultBufferSize`.
pub fn default_influxdb_out_buffer() -> usize {
    1000
}

/// influxDBOut's `.flushInterval()` default, Kapacitor's `DefaultFlushInterval`.
pub fn default_influxdb_out_flush_interval() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, PartialEq)]
pub struct K8sAutoscaleSpec {
    /// Id of a configured Kubernetes cluster; empty: the default one.
    pub cluster: String,
    /// Empty: `default` (as Kapacitor).
    pub namespace: String,
    pub namespace_tag: String,
    /// `.kind()`: `deployments` (default), `statefulsets`, `replicasets` or
    /// `replicationcontrollers`.
    pub kind: Kind,
    pub kind_tag: String,
    /// Static resource name; exactly one of this and `resource_name_tag` is set.
    pub resource_name: Option<String>,
    /// Tag carrying the resource name.
    pub resource_name_tag: Option<String>,
    pub resource_tag: String,
    /// Desired replicas; evaluates to an int (Kapacitor) or a float (the raw count).
    pub replicas: Lambda,
    /// Lower bound, >= 1 (default 1).
    pub min: i64,
    /// Upper bound; 0 = unlimited (default).
    pub max: i64,
    pub increase_cooldown: Duration,
    pub decrease_cooldown: Duration,
    /// If set, the current replica count is visible to `replicas` under this name.
    pub current_field: String,
    /// `.dryRun()` (this processor's addition): decide and emit, never call the API.
    pub dry_run: bool,
    /// Our extensions: tolerance, stabilization, rate policies, burst (default: none).
    pub behavior: crate::scaler::behavior::Behavior,
    /// `.fallbackAfter()` / `.fallbackReplicas()`: what to do when the target's data stops.
    pub fallback: Option<crate::scaler::behavior::Fallback>,
}

/// A node's kind with its validated properties.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeSpec {
    Stream,
    From(FromSpec),
    Where(WhereSpec),
    GroupBy(GroupBySpec),
    Derivative(DerivativeSpec),
    Aggregate(AggregateSpec),
    MovingAverage(MovingAverageSpec),
    Eval(EvalSpec),
    Window(WindowSpec),
    Log(LogSpec),
    HttpOut(HttpOutSpec),
    InfluxDbOut(InfluxDbOutSpec),
    K8sAutoscale(Box<K8sAutoscaleSpec>),
}

impl NodeSpec {
    pub fn kind(&self) -> NodeKind {
        match self {
            NodeSpec::Stream => NodeKind::Stream,
            NodeSpec::From(_) => NodeKind::From,
            NodeSpec::Where(_) => NodeKind::Where,
            NodeSpec::GroupBy(_) => NodeKind::GroupBy,
            NodeSpec::Derivative(_) => NodeKind::Derivative,
            NodeSpec::Aggregate(a) => NodeKind::Aggregate(a.function),
            NodeSpec::MovingAverage(_) => NodeKind::MovingAverage,
            NodeSpec::Eval(_) => NodeKind::Eval,
            NodeSpec::Window(_) => NodeKind::Window,
            NodeSpec::Log(_) => NodeKind::Log,
            NodeSpec::HttpOut(_) => NodeKind::HttpOut,
            NodeSpec::InfluxDbOut(_) => NodeKind::InfluxDbOut,
            NodeSpec::K8sAutoscale(_) => NodeKind::K8sAutoscale,
        }
    }
}
