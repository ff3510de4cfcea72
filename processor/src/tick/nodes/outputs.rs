//! Building influxDBOut, the node that writes points to InfluxDB (k8sAutoscale, the other node
//! that acts outside the pipeline, is in `autoscale.rs`).

use super::super::Result;
use super::check::{Arg, Checker, RawProperty};
use super::{
    InfluxDbOutSpec, NodeSpec, default_influxdb_out_buffer, default_influxdb_out_flush_interval,
};
use crate::line_protocol::Precision;
use std::collections::BTreeMap;

/// The most lines an influxDBOut node may buffer (`.buffer()`); failed writes keep as many.
pub const MAX_INFLUXDB_OUT_BUFFER: usize = 1_000_000;

const WRITE_CONSISTENCIES: [&str; 4] = ["any", "one", "quorum", "all"];

pub(super) fn build_influxdb_out(
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
        precision: Precision::Nanoseconds,
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
                let text = c.one_string(p)?;
                spec.precision = Precision::from_v1_param(&text).map_err(|_| {
                    c.err(
                        p.offset,
                        format!(
                            "unknown precision '{text}' for {} (n, u, ms, s, m, h)",
                            c.node
                        ),
                    )
                })?;
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

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use crate::line_protocol::Precision;
    use crate::tick::nodes::{InfluxDbOutSpec, NodeSpec};

    /// The spec of node 2 in `stream|from()|<node><props>`.
    pub(in crate::tick::nodes) fn third_node(
        node: &str,
        props: &str,
    ) -> crate::tick::Result<NodeSpec> {
        let script = format!("stream|from()|{node}{props}");
        let pipeline = crate::tick::compile(&script, &Default::default())?;
        Ok(pipeline.nodes[2].spec.clone())
    }

    fn influxdb_out(props: &str) -> crate::tick::Result<InfluxDbOutSpec> {
        match third_node("influxDBOut().database('d')", props)? {
            NodeSpec::InfluxDbOut(spec) => Ok(spec),
            other => panic!("influxdb_out2 is {other:?}"),
        }
    }

    #[test]
    fn influxdb_out_has_kapacitors_buffer_and_flush_defaults() {
        let spec = influxdb_out("").unwrap();
        assert_eq!(spec.buffer, 1000);
        assert_eq!(spec.flush_interval, Duration::from_secs(10));
        assert_eq!(spec.write_consistency, "");
        assert_eq!(spec.precision, Precision::Nanoseconds);
        let spec = influxdb_out(".buffer(5).flushInterval(2s).writeConsistency('quorum').create()")
            .unwrap();
        assert_eq!(spec.buffer, 5);
        assert_eq!(spec.flush_interval, Duration::from_secs(2));
        assert_eq!(spec.write_consistency, "quorum");
        assert!(spec.create);
        for (text, precision) in [
            ("", Precision::Nanoseconds),
            ("ns", Precision::Nanoseconds),
            ("us", Precision::Microseconds),
            ("µ", Precision::Microseconds),
            ("ms", Precision::Milliseconds),
            ("h", Precision::Hours),
        ] {
            let spec = influxdb_out(&format!(".precision('{text}')")).unwrap();
            assert_eq!(spec.precision, precision, "{text}");
        }
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
}
