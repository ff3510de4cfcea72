//! The pipeline nodes this processor runs, their properties (typed) and Kapacitor's defaults.
//!
//! Each node is built once the whole script is read, from its constructor arguments
//! (`|derivative('counter')`) and its properties (`.unit(1s)`) in source order; a property
//! set twice keeps the last value (as Kapacitor), except `influxDBOut().tag(k, v)`, which adds.

use std::collections::BTreeMap;
use std::time::Duration;

use super::lambda::{Lambda, ValType};
use super::value::Value;
use super::{Error, Result};

/// The aggregate functions (`|sum('field')`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateFn {
    Sum,
    Mean,
    Count,
    Min,
    Max,
    Median,
    Spread,
    Stddev,
}

impl AggregateFn {
    pub fn method(self) -> &'static str {
        match self {
            AggregateFn::Sum => "sum",
            AggregateFn::Mean => "mean",
            AggregateFn::Count => "count",
            AggregateFn::Min => "min",
            AggregateFn::Max => "max",
            AggregateFn::Median => "median",
            AggregateFn::Spread => "spread",
            AggregateFn::Stddev => "stddev",
        }
    }
}

/// The kind of a node, without its properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Stream,
    From,
    Where,
    GroupBy,
    Derivative,
    Aggregate(AggregateFn),
    MovingAverage,
    Eval,
    Window,
    Log,
    HttpOut,
    InfluxDbOut,
    K8sAutoscale,
}

/// The node methods accepted after `|`, for error messages.
pub const SUPPORTED_NODES: &str = "from, where, groupBy, derivative, sum, mean, count, min, max, median, spread, stddev, movingAverage, eval, window, log, httpOut, influxDBOut, k8sAutoscale";

impl NodeKind {
    /// The kind created by `|method(...)`.
    pub fn from_method(method: &str) -> Option<NodeKind> {
        Some(match method {
            "from" => NodeKind::From,
            "where" => NodeKind::Where,
            "groupBy" => NodeKind::GroupBy,
            "derivative" => NodeKind::Derivative,
            "sum" => NodeKind::Aggregate(AggregateFn::Sum),
            "mean" => NodeKind::Aggregate(AggregateFn::Mean),
            "count" => NodeKind::Aggregate(AggregateFn::Count),
            "min" => NodeKind::Aggregate(AggregateFn::Min),
            "max" => NodeKind::Aggregate(AggregateFn::Max),
            "median" => NodeKind::Aggregate(AggregateFn::Median),
            "spread" => NodeKind::Aggregate(AggregateFn::Spread),
            "stddev" => NodeKind::Aggregate(AggregateFn::Stddev),
            "movingAverage" => NodeKind::MovingAverage,
            "eval" => NodeKind::Eval,
            "window" => NodeKind::Window,
            "log" => NodeKind::Log,
            "httpOut" => NodeKind::HttpOut,
            "influxDBOut" => NodeKind::InfluxDbOut,
            "k8sAutoscale" => NodeKind::K8sAutoscale,
            _ => return None,
        })
    }

    /// The TICKscript method that creates the node.
    pub fn method(self) -> &'static str {
        match self {
            NodeKind::Stream => "stream",
            NodeKind::From => "from",
            NodeKind::Where => "where",
            NodeKind::GroupBy => "groupBy",
            NodeKind::Derivative => "derivative",
            NodeKind::Aggregate(f) => f.method(),
            NodeKind::MovingAverage => "movingAverage",
            NodeKind::Eval => "eval",
            NodeKind::Window => "window",
            NodeKind::Log => "log",
            NodeKind::HttpOut => "httpOut",
            NodeKind::InfluxDbOut => "influxDBOut",
            NodeKind::K8sAutoscale => "k8sAutoscale",
        }
    }

    /// Kapacitor's name prefix for the node (`groupby`, `k8s_autoscale`, `movingAverage`); the
    /// node's name is this plus its index in creation order (`groupby3`).
    pub fn desc(self) -> &'static str {
        match self {
            NodeKind::GroupBy => "groupby",
            NodeKind::HttpOut => "http_out",
            NodeKind::InfluxDbOut => "influxdb_out",
            NodeKind::K8sAutoscale => "k8s_autoscale",
            other => other.method(),
        }
    }
}

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
    /// Timestamp precision written (`n`, `u`, `ms`, `s`, `m`, `h`); empty: nanoseconds.
    pub precision: String,
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
    /// `deployments` (default), `replicasets` or `replicationcontrollers`.
    pub kind: String,
    pub kind_tag: String,
    /// Static resource name; exactly one of this and `resource_name_tag` is set.
    pub resource_name: Option<String>,
    /// Tag carrying the resource name.
    pub resource_name_tag: Option<String>,
    pub resource_tag: String,
    /// Desired replicas; must evaluate to an int.
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

/// A bound argument and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub value: Value,
    pub offset: usize,
}

/// `.name(args)` as written, before checking.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawProperty<'a> {
    pub name: &'a str,
    pub args: Vec<Arg>,
    pub offset: usize,
}

/// Checks arguments for one node and phrases errors with the node's name.
struct Checker<'s> {
    source: &'s str,
    node: &'s str,
    offset: usize,
}

fn describe(value: &Value) -> String {
    match value {
        Value::Lambda(_) => "a lambda".to_string(),
        Value::Star => "`*`".to_string(),
        Value::List(_) => "a list".to_string(),
        other => format!("{} {other}", other.var_type()),
    }
}

impl Checker<'_> {
    fn err(&self, offset: usize, reason: impl Into<String>) -> Error {
        Error::invalid(self.source, offset, reason.into())
    }

    fn wrong(&self, what: &str, expected: &str, arg: &Arg) -> Error {
        self.err(
            arg.offset,
            format!(
                "{what} of {} expects {expected}, got {}",
                self.node,
                describe(&arg.value)
            ),
        )
    }

    fn count<'a>(&self, what: &str, args: &'a [Arg], n: usize, offset: usize) -> Result<&'a [Arg]> {
        if args.len() == n {
            Ok(args)
        } else {
            let plural = if n == 1 { "" } else { "s" };
            Err(self.err(
                offset,
                format!(
                    "{what} of {} takes {n} argument{plural}, got {}",
                    self.node,
                    args.len()
                ),
            ))
        }
    }

    fn string(&self, what: &str, arg: &Arg) -> Result<String> {
        match &arg.value {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.wrong(what, "a string", arg)),
        }
    }

    fn int(&self, what: &str, arg: &Arg) -> Result<i64> {
        match &arg.value {
            Value::Int(i) => Ok(*i),
            _ => Err(self.wrong(what, "an int", arg)),
        }
    }

    fn duration(&self, what: &str, arg: &Arg) -> Result<Duration> {
        match &arg.value {
            Value::Duration(d) => u64::try_from(*d).map(Duration::from_nanos).map_err(|_| {
                self.err(
                    arg.offset,
                    format!("{what} of {} must not be negative", self.node),
                )
            }),
            _ => Err(self.wrong(what, "a duration", arg)),
        }
    }

    /// A lambda argument; `returns` is the type it must evaluate to, checked when it is known
    /// without a point (e.g. `.replicas(lambda: ceil(...))` is a float, never an int).
    fn lambda(&self, what: &str, arg: &Arg, returns: Option<ValType>) -> Result<Lambda> {
        let Value::Lambda(l) = &arg.value else {
            return Err(self.wrong(what, "a lambda expression (lambda: ...)", arg));
        };
        if let (Some(expected), Some(actual)) = (returns, l.static_type())
            && expected != actual
        {
            let hint = match expected {
                ValType::Int => " (convert with int())",
                ValType::Bool => " (compare it, e.g. `> 0`)",
                _ => "",
            };
            return Err(self.err(
                arg.offset,
                format!(
                    "{what} of {} must evaluate to {expected}, but `{}` is {actual}{hint}",
                    self.node,
                    l.source()
                ),
            ));
        }
        Ok(l.clone())
    }

    fn one_string(&self, p: &RawProperty<'_>) -> Result<String> {
        let what = format!("`.{}()`", p.name);
        let args = self.count(&what, &p.args, 1, p.offset)?;
        self.string(&what, &args[0])
    }

    fn one_duration(&self, p: &RawProperty<'_>) -> Result<Duration> {
        let what = format!("`.{}()`", p.name);
        let args = self.count(&what, &p.args, 1, p.offset)?;
        self.duration(&what, &args[0])
    }

    fn one_int(&self, p: &RawProperty<'_>) -> Result<i64> {
        let what = format!("`.{}()`", p.name);
        let args = self.count(&what, &p.args, 1, p.offset)?;
        self.int(&what, &args[0])
    }

    fn one_lambda(&self, p: &RawProperty<'_>, returns: Option<ValType>) -> Result<Lambda> {
        let what = format!("`.{}()`", p.name);
        let args = self.count(&what, &p.args, 1, p.offset)?;
        self.lambda(&what, &args[0], returns)
    }

    fn flag(&self, p: &RawProperty<'_>) -> Result<bool> {
        self.count(&format!("`.{}()`", p.name), &p.args, 0, p.offset)?;
        Ok(true)
    }

    fn strings(&self, what: &str, args: &[Arg]) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(args.len());
        for arg in args {
            match &arg.value {
                Value::String(s) => out.push(s.clone()),
                Value::List(items) => {
                    for item in items {
                        match item {
                            Value::String(s) => out.push(s.clone()),
                            _ => return Err(self.wrong(what, "strings", arg)),
                        }
                    }
                }
                _ => return Err(self.wrong(what, "strings", arg)),
            }
        }
        Ok(out)
    }

    fn dimensions(&self, what: &str, args: &[Arg]) -> Result<Dimensions> {
        let mut dims = Dimensions::default();
        let mut add = |value: &Value, arg: &Arg| -> Result<()> {
            match value {
                Value::String(s) => dims.tags.push(s.clone()),
                Value::Star => dims.all = true,
                _ => return Err(self.wrong(what, "tag names (strings) or `*`", arg)),
            }
            Ok(())
        };
        for arg in args {
            match &arg.value {
                Value::List(items) => {
                    for item in items {
                        add(item, arg)?;
                    }
                }
                other => add(other, arg)?,
            }
        }
        Ok(dims)
    }

    fn unknown(&self, p: &RawProperty<'_>, known: &str) -> Error {
        let known = if known.is_empty() {
            "it has none".to_string()
        } else {
            format!("known: {known}")
        };
        self.err(
            p.offset,
            format!(
                "unknown property `.{}()` for {} ({known})",
                p.name, self.node
            ),
        )
    }
}

/// Builds a node's spec from its constructor arguments and properties.
/// The most points `movingAverage()` may average: each group keeps that many values
/// (8 bytes each), so the bound keeps one task from asking for more memory than a node has.
pub const MAX_MOVING_AVERAGE_COUNT: usize = 1_000_000;

/// The most lines an influxDBOut node may buffer (`.buffer()`); failed writes keep as many.
pub const MAX_INFLUXDB_OUT_BUFFER: usize = 1_000_000;

pub(crate) fn build(
    source: &str,
    kind: NodeKind,
    name: &str,
    offset: usize,
    ctor: &[Arg],
    props: &[RawProperty<'_>],
) -> Result<NodeSpec> {
    let c = Checker {
        source,
        node: name,
        offset,
    };
    let ctor_what = format!("`{}()`", kind.method());
    match kind {
        NodeKind::Stream => {
            if let Some(p) = props.first() {
                return Err(c.unknown(p, ""));
            }
            Ok(NodeSpec::Stream)
        }
        NodeKind::From => build_from(&c, &ctor_what, ctor, props),
        NodeKind::Where => {
            let args = c.count(&ctor_what, ctor, 1, offset)?;
            let predicate = c.lambda(&ctor_what, &args[0], Some(ValType::Bool))?;
            if let Some(p) = props.first() {
                return Err(c.unknown(p, ""));
            }
            Ok(NodeSpec::Where(WhereSpec { predicate }))
        }
        NodeKind::GroupBy => {
            let mut spec = GroupBySpec {
                dimensions: c.dimensions(&ctor_what, ctor)?,
                by_measurement: false,
            };
            for p in props {
                match p.name {
                    "byMeasurement" => spec.by_measurement = c.flag(p)?,
                    _ => return Err(c.unknown(p, "byMeasurement")),
                }
            }
            Ok(NodeSpec::GroupBy(spec))
        }
        NodeKind::Derivative => {
            let args = c.count(&ctor_what, ctor, 1, offset)?;
            let field = c.string(&ctor_what, &args[0])?;
            let mut spec = DerivativeSpec {
                as_: field.clone(),
                field,
                unit: Duration::from_secs(1),
                non_negative: false,
            };
            for p in props {
                match p.name {
                    "unit" => spec.unit = c.one_duration(p)?,
                    "nonNegative" => spec.non_negative = c.flag(p)?,
                    "as" => spec.as_ = c.one_string(p)?,
                    _ => return Err(c.unknown(p, "unit, nonNegative, as")),
                }
            }
            if spec.unit.is_zero() {
                return Err(c.err(offset, format!("the unit of {name} must be positive")));
            }
            Ok(NodeSpec::Derivative(spec))
        }
        NodeKind::Aggregate(function) => {
            let args = c.count(&ctor_what, ctor, 1, offset)?;
            let mut spec = AggregateSpec {
                function,
                field: c.string(&ctor_what, &args[0])?,
                as_: function.method().to_string(),
                use_point_times: false,
            };
            for p in props {
                match p.name {
                    "as" => spec.as_ = c.one_string(p)?,
                    "usePointTimes" => spec.use_point_times = c.flag(p)?,
                    _ => return Err(c.unknown(p, "as, usePointTimes")),
                }
            }
            Ok(NodeSpec::Aggregate(spec))
        }
        NodeKind::MovingAverage => {
            let args = c.count(&ctor_what, ctor, 2, offset)?;
            let field = c.string(&ctor_what, &args[0])?;
            let count = c.int(&ctor_what, &args[1])?;
            let count = usize::try_from(count)
                .ok()
                .filter(|n| (1..=MAX_MOVING_AVERAGE_COUNT).contains(n))
                .ok_or_else(|| {
                    c.err(
                        args[1].offset,
                        format!(
                            "the point count of {name} must be from 1 to {MAX_MOVING_AVERAGE_COUNT}, got {count}"
                        ),
                    )
                })?;
            let mut spec = MovingAverageSpec {
                field,
                count,
                as_: "movingAverage".to_string(),
            };
            for p in props {
                match p.name {
                    "as" => spec.as_ = c.one_string(p)?,
                    _ => return Err(c.unknown(p, "as")),
                }
            }
            Ok(NodeSpec::MovingAverage(spec))
        }
        NodeKind::Eval => build_eval(&c, &ctor_what, ctor, props),
        NodeKind::Window => build_window(&c, &ctor_what, ctor, props),
        NodeKind::Log => {
            c.count(&ctor_what, ctor, 0, offset)?;
            let mut spec = LogSpec {
                level: LogLevel::Info,
                prefix: String::new(),
            };
            for p in props {
                match p.name {
                    "level" => {
                        let level = c.one_string(p)?;
                        spec.level = match level.to_ascii_uppercase().as_str() {
                            "DEBUG" => LogLevel::Debug,
                            "INFO" => LogLevel::Info,
                            "WARN" => LogLevel::Warn,
                            "ERROR" => LogLevel::Error,
                            _ => {
                                return Err(c.err(
                                    p.offset,
                                    format!("unknown log level '{level}' for {name} (DEBUG, INFO, WARN, ERROR)"),
                                ));
                            }
                        };
                    }
                    "prefix" => spec.prefix = c.one_string(p)?,
                    _ => return Err(c.unknown(p, "level, prefix")),
                }
            }
            Ok(NodeSpec::Log(spec))
        }
        NodeKind::HttpOut => {
            let args = c.count(&ctor_what, ctor, 1, offset)?;
            let endpoint = c.string(&ctor_what, &args[0])?;
            if endpoint.is_empty() || endpoint.contains('/') {
                return Err(c.err(
                    args[0].offset,
                    format!("the endpoint of {name} must be a non-empty name without `/`"),
                ));
            }
            if let Some(p) = props.first() {
                return Err(c.unknown(p, ""));
            }
            Ok(NodeSpec::HttpOut(HttpOutSpec { endpoint }))
        }
        NodeKind::InfluxDbOut => build_influxdb_out(&c, &ctor_what, ctor, props),
        NodeKind::K8sAutoscale => build_k8s_autoscale(&c, &ctor_what, ctor, props),
    }
}

fn build_from(
    c: &Checker<'_>,
    ctor_what: &str,
    ctor: &[Arg],
    props: &[RawProperty<'_>],
) -> Result<NodeSpec> {
    c.count(ctor_what, ctor, 0, c.offset)?;
    let mut spec = FromSpec {
        database: None,
        retention_policy: None,
        measurement: None,
        where_: None,
        group_by: Dimensions::default(),
        group_by_measurement: false,
        truncate: None,
        round: None,
    };
    for p in props {
        match p.name {
            "database" => spec.database = Some(c.one_string(p)?),
            "retentionPolicy" => spec.retention_policy = Some(c.one_string(p)?),
            "measurement" => spec.measurement = Some(c.one_string(p)?),
            "where" => spec.where_ = Some(c.one_lambda(p, Some(ValType::Bool))?),
            "groupBy" => spec.group_by = c.dimensions("`.groupBy()`", &p.args)?,
            "groupByMeasurement" => spec.group_by_measurement = c.flag(p)?,
            "truncate" => spec.truncate = Some(c.one_duration(p)?),
            "round" => spec.round = Some(c.one_duration(p)?),
            _ => {
                return Err(c.unknown(
                    p,
                    "database, retentionPolicy, measurement, where, groupBy, groupByMeasurement, truncate, round",
                ));
            }
        }
    }
    for (what, d) in [("truncate", spec.truncate), ("round", spec.round)] {
        if d.is_some_and(|d| d.is_zero()) {
            let p = props.iter().rev().find(|p| p.name == what);
            return Err(c.err(
                p.map_or(c.offset, |p| p.offset),
                format!("`.{what}()` of {} must be positive", c.node),
            ));
        }
    }
    Ok(NodeSpec::From(spec))
}

fn build_eval(
    c: &Checker<'_>,
    ctor_what: &str,
    ctor: &[Arg],
    props: &[RawProperty<'_>],
) -> Result<NodeSpec> {
    if ctor.is_empty() {
        return Err(c.err(
            c.offset,
            format!("{ctor_what} of {} needs at least one lambda", c.node),
        ));
    }
    let expressions = ctor
        .iter()
        .map(|a| c.lambda(ctor_what, a, None))
        .collect::<Result<Vec<_>>>()?;
    let mut spec = EvalSpec {
        expressions,
        as_: Vec::new(),
        keep: Keep::None,
        tags: Vec::new(),
        quiet: false,
    };
    let mut as_offset = c.offset;
    for p in props {
        match p.name {
            "as" => {
                spec.as_ = c.strings("`.as()`", &p.args)?;
                as_offset = p.offset;
            }
            "keep" => {
                let names = c.strings("`.keep()`", &p.args)?;
                spec.keep = if names.is_empty() {
                    Keep::All
                } else {
                    Keep::Only(names)
                };
            }
            "tags" => spec.tags = c.strings("`.tags()`", &p.args)?,
            "quiet" => spec.quiet = c.flag(p)?,
            _ => return Err(c.unknown(p, "as, keep, tags, quiet")),
        }
    }
    if spec.as_.len() != spec.expressions.len() {
        return Err(c.err(
            as_offset,
            format!(
                "{} has {} expression(s) but {} name(s) in `.as()`: give one name per expression",
                c.node,
                spec.expressions.len(),
                spec.as_.len()
            ),
        ));
    }
    if let Some(tag) = spec.tags.iter().find(|t| !spec.as_.contains(t)) {
        return Err(c.err(
            c.offset,
            format!(
                "`.tags()` of {} names '{tag}', which is not one of its `.as()` names",
                c.node
            ),
        ));
    }
    Ok(NodeSpec::Eval(spec))
}

fn build_window(
    c: &Checker<'_>,
    ctor_what: &str,
    ctor: &[Arg],
    props: &[RawProperty<'_>],
) -> Result<NodeSpec> {
    c.count(ctor_what, ctor, 0, c.offset)?;
    let (mut period, mut every) = (None, Duration::ZERO);
    let (mut align, mut fill_period) = (false, false);
    for p in props {
        match p.name {
            "period" => period = Some(c.one_duration(p)?),
            "every" => every = c.one_duration(p)?,
            "align" => align = c.flag(p)?,
            "fillPeriod" => fill_period = c.flag(p)?,
            _ => return Err(c.unknown(p, "period, every, align, fillPeriod")),
        }
    }
    let period = period
        .filter(|d| !d.is_zero())
        .ok_or_else(|| c.err(c.offset, format!("{} needs a positive `.period()`", c.node)))?;
    Ok(NodeSpec::Window(WindowSpec {
        period,
        every,
        align,
        fill_period,
    }))
}

const WRITE_CONSISTENCIES: [&str; 4] = ["any", "one", "quorum", "all"];

const PRECISIONS: [&str; 11] = ["", "n", "ns", "u", "us", "µ", "µs", "ms", "s", "m", "h"];

fn build_influxdb_out(
    c: &Checker<'_>,
    ctor_what: &str,
    ctor: &[Arg],
    props: &[RawProperty<'_>],
) -> Result<NodeSpec> {
    c.count(ctor_what, ctor, 0, c.offset)?;
    let mut spec = InfluxDbOutSpec {
        database: String::new(),
        retention_policy: String::new(),
        measurement: String::new(),
        cluster: String::new(),
        precision: String::new(),
        tags: BTreeMap::new(),
        create: false,
        buffer: default_influxdb_out_buffer(),
        flush_interval: default_influxdb_out_flush_interval(),
        write_consistency: String::new(),
    };
    for p in props {
        match p.name {
            "database" => spec.database = c.one_string(p)?,
            "retentionPolicy" => spec.retention_policy = c.one_string(p)?,
            "measurement" => spec.measurement = c.one_string(p)?,
            "cluster" => spec.cluster = c.one_string(p)?,
            "precision" => {
                spec.precision = c.one_string(p)?;
                if !PRECISIONS.contains(&spec.precision.as_str()) {
                    return Err(c.err(
                        p.offset,
                        format!(
                            "unknown precision '{}' for {} (n, u, ms, s, m, h)",
                            spec.precision, c.node
                        ),
                    ));
                }
            }
            "tag" => {
                let args = c.count("`.tag()`", &p.args, 2, p.offset)?;
                let key = c.string("`.tag()`", &args[0])?;
                let value = c.string("`.tag()`", &args[1])?;
                spec.tags.insert(key, value);
            }
            "create" => spec.create = c.flag(p)?,
            "buffer" => {
                let n = c.one_int(p)?;
                spec.buffer = usize::try_from(n)
                    .ok()
                    .filter(|n| (1..=MAX_INFLUXDB_OUT_BUFFER).contains(n))
                    .ok_or_else(|| {
                        c.err(
                            p.offset,
                            format!(
                                "`.buffer()` of {} must be a point count from 1 to {MAX_INFLUXDB_OUT_BUFFER}, got {n}",
                                c.node
                            ),
                        )
                    })?;
            }
            "flushInterval" => {
                spec.flush_interval = c.one_duration(p)?;
                if spec.flush_interval.is_zero() {
                    return Err(c.err(
                        p.offset,
                        format!("`.flushInterval()` of {} must be positive", c.node),
                    ));
                }
            }
            "writeConsistency" => {
                spec.write_consistency = c.one_string(p)?;
                if !WRITE_CONSISTENCIES.contains(&spec.write_consistency.as_str()) {
                    return Err(c.err(
                        p.offset,
                        format!(
                            "unknown write consistency '{}' for {} (any, one, quorum, all)",
                            spec.write_consistency, c.node
                        ),
                    ));
                }
            }
            _ => {
                return Err(c.unknown(
                    p,
                    "database, retentionPolicy, measurement, cluster, precision, tag, create, buffer, flushInterval, writeConsistency",
                ));
            }
        }
    }
    if spec.database.is_empty() {
        return Err(c.err(c.offset, format!("{} needs `.database()`", c.node)));
    }
    Ok(NodeSpec::InfluxDbOut(spec))
}

const K8S_KINDS: [&str; 3] = ["deployments", "replicasets", "replicationcontrollers"];

fn build_k8s_autoscale(
    c: &Checker<'_>,
    ctor_what: &str,
    ctor: &[Arg],
    props: &[RawProperty<'_>],
) -> Result<NodeSpec> {
    c.count(ctor_what, ctor, 0, c.offset)?;
    let mut cluster = String::new();
    let mut namespace = String::new();
    let mut namespace_tag = "namespace".to_string();
    let mut kind = "deployments".to_string();
    let mut kind_tag = "kind".to_string();
    let mut resource_name = None;
    let mut resource_name_tag = None;
    let mut resource_tag = "resource".to_string();
    let mut replicas = None;
    let (mut min, mut max) = (1, 0);
    let mut min_offset = c.offset;
    let mut increase_cooldown = Duration::ZERO;
    let mut decrease_cooldown = Duration::ZERO;
    let mut current_field = String::new();
    let mut dry_run = false;
    for p in props {
        match p.name {
            "cluster" => cluster = c.one_string(p)?,
            "namespace" => namespace = c.one_string(p)?,
            "namespaceTag" => namespace_tag = c.one_string(p)?,
            "kind" => {
                kind = c.one_string(p)?;
                // Kapacitor 1.1 validated the singular form (its constant) but documented the
                // plural: accept both, keep the API's plural resource name.
                if kind == "replicationcontroller" {
                    kind = "replicationcontrollers".to_string();
                }
                if !K8S_KINDS.contains(&kind.as_str()) {
                    return Err(c.err(
                        p.offset,
                        format!(
                            "unknown kind '{kind}' for {} (deployments, replicasets, replicationcontrollers)",
                            c.node
                        ),
                    ));
                }
            }
            "kindTag" => kind_tag = c.one_string(p)?,
            "resourceName" => resource_name = Some(c.one_string(p)?),
            "resourceNameTag" => resource_name_tag = Some(c.one_string(p)?),
            "resourceTag" => resource_tag = c.one_string(p)?,
            "replicas" => replicas = Some(c.one_lambda(p, Some(ValType::Int))?),
            "min" => {
                min = c.one_int(p)?;
                min_offset = p.offset;
            }
            "max" => max = c.one_int(p)?,
            "increaseCooldown" => increase_cooldown = c.one_duration(p)?,
            "decreaseCooldown" => decrease_cooldown = c.one_duration(p)?,
            "currentField" => current_field = c.one_string(p)?,
            "dryRun" => dry_run = c.flag(p)?,
            _ => {
                return Err(c.unknown(
                    p,
                    "cluster, namespace, namespaceTag, kind, kindTag, resourceName, resourceNameTag, resourceTag, replicas, min, max, increaseCooldown, decreaseCooldown, currentField, dryRun",
                ));
            }
        }
    }
    if resource_name.is_some() == resource_name_tag.is_some() {
        return Err(c.err(
            c.offset,
            format!(
                "{} needs exactly one of `.resourceName()` and `.resourceNameTag()`",
                c.node
            ),
        ));
    }
    let Some(replicas) = replicas else {
        return Err(c.err(
            c.offset,
            format!("{} needs `.replicas(lambda: ...)`", c.node),
        ));
    };
    if min < 1 {
        return Err(c.err(
            min_offset,
            format!("`.min()` of {} must be at least 1, got {min}", c.node),
        ));
    }
    if max < 0 || (max > 0 && max < min) {
        return Err(c.err(
            c.offset,
            format!(
                "`.max()` of {} must be 0 (unlimited) or at least min ({min}), got {max}",
                c.node
            ),
        ));
    }
    Ok(NodeSpec::K8sAutoscale(Box::new(K8sAutoscaleSpec {
        cluster,
        namespace,
        namespace_tag,
        kind,
        kind_tag,
        resource_name,
        resource_name_tag,
        resource_tag,
        replicas,
        min,
        max,
        increase_cooldown,
        decrease_cooldown,
        current_field,
        dry_run,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kapacitor_node_name_prefixes() {
        assert_eq!(NodeKind::GroupBy.desc(), "groupby");
        assert_eq!(NodeKind::K8sAutoscale.desc(), "k8s_autoscale");
        assert_eq!(NodeKind::MovingAverage.desc(), "movingAverage");
        assert_eq!(NodeKind::InfluxDbOut.desc(), "influxdb_out");
        assert_eq!(NodeKind::HttpOut.desc(), "http_out");
        assert_eq!(NodeKind::Aggregate(AggregateFn::Sum).desc(), "sum");
    }

    #[test]
    fn singular_replicationcontroller_kind_is_accepted_as_kapacitor_did() {
        let pipeline = crate::tick::compile(
            "stream|from()|k8sAutoscale().kind('replicationcontroller').resourceName('rc').replicas(lambda: 1)",
            &Default::default(),
        )
        .unwrap();
        let NodeSpec::K8sAutoscale(k) = &pipeline.nodes[2].spec else {
            panic!("k8s_autoscale2")
        };
        assert_eq!(k.kind, "replicationcontrollers");
    }

    fn influxdb_out(props: &str) -> crate::tick::Result<InfluxDbOutSpec> {
        let pipeline = crate::tick::compile(
            &format!("stream|from()|influxDBOut().database('d'){props}"),
            &Default::default(),
        )?;
        match &pipeline.nodes[2].spec {
            NodeSpec::InfluxDbOut(spec) => Ok(spec.clone()),
            other => panic!("influxdb_out2 is {other:?}"),
        }
    }

    #[test]
    fn influxdb_out_has_kapacitors_buffer_and_flush_defaults() {
        let spec = influxdb_out("").unwrap();
        assert_eq!(spec.buffer, 1000);
        assert_eq!(spec.flush_interval, Duration::from_secs(10));
        assert_eq!(spec.write_consistency, "");
        let spec = influxdb_out(".buffer(5).flushInterval(2s).writeConsistency('quorum').create()")
            .unwrap();
        assert_eq!(spec.buffer, 5);
        assert_eq!(spec.flush_interval, Duration::from_secs(2));
        assert_eq!(spec.write_consistency, "quorum");
        assert!(spec.create);
    }

    #[test]
    fn bad_influxdb_out_properties_name_the_node_and_the_property() {
        for (props, expected) in [
            (
                ".buffer(0)",
                "`.buffer()` of influxdb_out2 must be a point count from 1 to 1000000",
            ),
            (
                ".buffer(1000001)",
                "`.buffer()` of influxdb_out2 must be a point count from 1 to 1000000, got 1000001",
            ),
            (
                ".buffer(-3)",
                "`.buffer()` of influxdb_out2 must be a point count from 1 to 1000000, got -3",
            ),
            (
                ".buffer('x')",
                "`.buffer()` of influxdb_out2 expects an int",
            ),
            (
                ".flushInterval(0s)",
                "`.flushInterval()` of influxdb_out2 must be positive",
            ),
            (
                ".flushInterval(10)",
                "`.flushInterval()` of influxdb_out2 expects a duration",
            ),
            (
                ".writeConsistency('most')",
                "unknown write consistency 'most' for influxdb_out2",
            ),
            (
                ".flush(1s)",
                "unknown property `.flush()` for influxdb_out2",
            ),
        ] {
            let error = influxdb_out(props).unwrap_err().to_string();
            assert!(error.contains(expected), "{props}: {error}");
        }
    }

    #[test]
    fn every_supported_method_round_trips() {
        for method in SUPPORTED_NODES.split(", ") {
            let kind = NodeKind::from_method(method).unwrap();
            assert_eq!(kind.method(), method);
        }
        assert_eq!(NodeKind::from_method("alert"), None);
    }
}
