//! Building a node's spec from its constructor arguments and properties, with Kapacitor's
//! defaults; the output nodes are built in `outputs.rs`.

use std::time::Duration;

use super::super::Result;
use super::super::lambda::ValType;
use super::autoscale::build_k8s_autoscale;
use super::check::{Arg, Checker, RawProperty};
use super::outputs::build_influxdb_out;
use super::{
    AggregateSpec, DerivativeSpec, Dimensions, EvalSpec, FromSpec, GroupBySpec, HttpOutSpec, Keep,
    LogLevel, LogSpec, MovingAverageSpec, NodeKind, NodeSpec, WhereSpec, WindowSpec,
};

/// The most points `movingAverage()` may average: each group keeps that many values
/// (8 bytes each), so the bound keeps one task from asking for more memory than a node has.
pub const MAX_MOVING_AVERAGE_COUNT: usize = 1_000_000;

/// Builds a node's spec from its constructor arguments and properties.
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
            c.no_properties(props)?;
            Ok(NodeSpec::Stream)
        }
        NodeKind::From => build_from(&c, &ctor_what, ctor, props),
        NodeKind::Where => {
            let args = c.count(&ctor_what, ctor, 1, offset)?;
            let predicate = c.lambda(&ctor_what, &args[0], Some(ValType::Bool))?;
            c.no_properties(props)?;
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
            c.no_properties(props)?;
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
