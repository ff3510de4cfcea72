//! Building the nodes that act outside the pipeline: influxDBOut (writes points to InfluxDB)
//! and k8sAutoscale (changes a workload's replicas).

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::Result;
use super::super::lambda::ValType;
use super::check::{Arg, Checker, RawProperty};
use super::{
    InfluxDbOutSpec, K8sAutoscaleSpec, NodeSpec, default_influxdb_out_buffer,
    default_influxdb_out_flush_interval,
};
use crate::line_protocol::Precision;
use crate::scaler::Kind;

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

/// The kinds `.kind()` accepts, written as their resource names (`deployments`, ...): those the
/// scaler changes through the `/scale` subresource.
const K8S_KINDS: [Kind; 4] = [
    Kind::Deployments,
    Kind::StatefulSets,
    Kind::ReplicaSets,
    Kind::ReplicationControllers,
];

/// `.kind()`'s value: one of [`K8S_KINDS`] by resource name, or `replicationcontroller`, the
/// singular form Kapacitor 1.1 validated (its constant) while documenting the plural.
fn k8s_kind(name: &str) -> Option<Kind> {
    let name = match name {
        "replicationcontroller" => "replicationcontrollers",
        other => other,
    };
    K8S_KINDS.into_iter().find(|kind| kind.resource() == name)
}

/// The kinds `.kind()` accepts, for error messages.
fn k8s_kind_names() -> String {
    K8S_KINDS.map(Kind::resource).join(", ")
}

pub(super) fn build_k8s_autoscale(
    c: &Checker<'_>,
    ctor_what: &str,
    ctor: &[Arg],
    props: &[RawProperty<'_>],
) -> Result<NodeSpec> {
    c.count(ctor_what, ctor, 0, c.offset)?;
    let mut cluster = String::new();
    let mut namespace = String::new();
    let mut namespace_tag = "namespace".to_string();
    let mut kind = Kind::Deployments;
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
                let name = c.one_string(p)?;
                kind = k8s_kind(&name).ok_or_else(|| {
                    c.err(
                        p.offset,
                        format!(
                            "unknown kind '{name}' for {} ({})",
                            c.node,
                            k8s_kind_names()
                        ),
                    )
                })?;
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
    use std::time::Duration;

    use crate::line_protocol::Precision;
    use crate::scaler::Kind;
    use crate::tick::nodes::{InfluxDbOutSpec, K8sAutoscaleSpec, NodeSpec};

    /// The spec of node 2 in `stream|from()|<node><props>`.
    fn third_node(node: &str, props: &str) -> crate::tick::Result<NodeSpec> {
        let script = format!("stream|from()|{node}{props}");
        let pipeline = crate::tick::compile(&script, &Default::default())?;
        Ok(pipeline.nodes[2].spec.clone())
    }

    fn k8s_autoscale(props: &str) -> crate::tick::Result<K8sAutoscaleSpec> {
        match third_node(
            "k8sAutoscale().resourceName('app').replicas(lambda: 1)",
            props,
        )? {
            NodeSpec::K8sAutoscale(spec) => Ok(*spec),
            other => panic!("k8s_autoscale2 is {other:?}"),
        }
    }

    #[test]
    fn kind_is_typed_when_the_task_is_defined() {
        assert_eq!(k8s_autoscale("").unwrap().kind, Kind::Deployments);
        for (name, kind) in [
            ("deployments", Kind::Deployments),
            ("statefulsets", Kind::StatefulSets),
            ("replicasets", Kind::ReplicaSets),
            ("replicationcontrollers", Kind::ReplicationControllers),
        ] {
            let spec = k8s_autoscale(&format!(".kind('{name}')")).unwrap();
            assert_eq!(spec.kind, kind, "{name}");
        }
    }

    #[test]
    fn an_unknown_kind_lists_exactly_the_supported_kinds() {
        let error = k8s_autoscale(".kind('daemonsets')")
            .unwrap_err()
            .to_string();
        let expected = "unknown kind 'daemonsets' for k8s_autoscale2 (deployments, statefulsets, replicasets, replicationcontrollers)";
        assert!(error.contains(expected), "{error}");
        let listed = error
            .split('(')
            .nth(1)
            .and_then(|s| s.split(')').next())
            .unwrap();
        for name in listed.split(", ") {
            assert!(k8s_autoscale(&format!(".kind('{name}')")).is_ok(), "{name}");
        }
    }

    #[test]
    fn singular_replicationcontroller_kind_is_accepted_as_kapacitor_did() {
        let spec = k8s_autoscale(".kind('replicationcontroller')").unwrap();
        assert_eq!(spec.kind, Kind::ReplicationControllers);
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
