//! Building k8sAutoscale: Kapacitor's properties, and our extensions (HPA's vocabulary:
//! tolerance, stabilization windows, rate policies; burst; a fallback for silent targets), each
//! checked when the task is defined so that a bad value never reaches a decision.

use std::time::Duration;

use super::super::Result;
use super::super::lambda::{Lambda, ValType};
use super::check::{Arg, Checker, RawProperty};
use super::{K8sAutoscaleSpec, NodeSpec};
use crate::scaler::Kind;
use crate::scaler::behavior::{Behavior, Burst, Fallback, PolicyKind, RatePolicy, Select};

/// HPA's longest stabilization window (`stabilizationWindowSeconds` ≤ 3600).
pub const MAX_STABILIZATION: Duration = crate::scaler::decision::MAX_STABILIZATION;
/// HPA's longest policy period (`periodSeconds` ≤ 1800).
pub const MAX_POLICY_PERIOD: Duration = crate::scaler::decision::MAX_POLICY_PERIOD;
/// How long a burst lasts after its condition last held, unless `.burstHold()` says: Knative's
/// stable window.
pub const DEFAULT_BURST_HOLD: Duration = Duration::from_secs(60);

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
    let mut ext = Extensions::default();
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
            "replicas" => replicas = Some(replicas_lambda(c, p)?),
            "min" => {
                min = c.one_int(p)?;
                min_offset = p.offset;
            }
            "max" => max = c.one_int(p)?,
            "increaseCooldown" => {
                increase_cooldown = c.one_duration(p)?;
                ext.timing.get_or_insert(p.offset);
            }
            "decreaseCooldown" => {
                decrease_cooldown = c.one_duration(p)?;
                ext.timing.get_or_insert(p.offset);
            }
            "currentField" => current_field = c.one_string(p)?,
            "dryRun" => dry_run = c.flag(p)?,
            _ if ext.property(c, p)? => {}
            _ => {
                return Err(c.unknown(
                    p,
                    "cluster, namespace, namespaceTag, kind, kindTag, resourceName, resourceNameTag, resourceTag, replicas, min, max, increaseCooldown, decreaseCooldown, currentField, dryRun, and the extensions tolerance, scaleUpStabilization, scaleDownStabilization, scaleUpPolicy, scaleDownPolicy, scaleUpSelect, scaleDownSelect, burst, burstHold, fallbackAfter, fallbackReplicas",
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
    let (behavior, fallback) = ext.finish(c, min, max)?;
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
        behavior,
        fallback,
    })))
}

/// `.replicas(lambda)`: an int (as Kapacitor) or, our extension, a float (the raw count, to
/// which the node applies the tolerance and then `ceil`).
fn replicas_lambda(c: &Checker<'_>, p: &RawProperty<'_>) -> Result<Lambda> {
    let lambda = c.one_lambda(p, None)?;
    match lambda.static_type() {
        None | Some(ValType::Int | ValType::Float) => Ok(lambda),
        Some(other) => Err(c.err(
            p.args.first().map_or(p.offset, |arg| arg.offset),
            format!(
                "`.replicas()` of {} must evaluate to a number (int or float), but `{}` is {other}",
                c.node,
                lambda.source()
            ),
        )),
    }
}

/// The extension properties as read, checked together at the end.
#[derive(Default)]
struct Extensions {
    behavior: Behavior,
    burst_threshold: Option<(f64, usize)>,
    burst_hold: Option<(Duration, usize)>,
    fallback_after: Option<Duration>,
    fallback_replicas: Option<(i64, usize)>,
    /// Where a property that a burst node cannot use was set (refused on a burst node).
    timing: Option<usize>,
}

impl Extensions {
    /// Reads `p` when it is an extension; false when it is not one.
    fn property(&mut self, c: &Checker<'_>, p: &RawProperty<'_>) -> Result<bool> {
        let b = &mut self.behavior;
        match p.name {
            "tolerance" => {
                let tolerance = c.one_number(p)?;
                if !(0.0..1.0).contains(&tolerance) {
                    return Err(c.err(
                        p.offset,
                        format!(
                            "`.tolerance()` of {} must be at least 0 and below 1 (HPA uses 0.1), got {tolerance}",
                            c.node
                        ),
                    ));
                }
                b.tolerance = Some(tolerance);
            }
            "scaleUpStabilization" => b.up.stabilization = stabilization(c, p)?,
            "scaleDownStabilization" => b.down.stabilization = stabilization(c, p)?,
            "scaleUpPolicy" => b.up.policies.push(rate_policy(c, p)?),
            "scaleDownPolicy" => b.down.policies.push(rate_policy(c, p)?),
            "scaleUpSelect" => b.up.select = select(c, p)?,
            "scaleDownSelect" => b.down.select = select(c, p)?,
            "burst" => {
                let threshold = c.one_number(p)?;
                if !(threshold > 1.0 && threshold.is_finite()) {
                    return Err(c.err(
                        p.offset,
                        format!(
                            "`.burst()` of {} is the multiple of the current count that starts a burst: above 1 (Knative uses 2), got {threshold}",
                            c.node
                        ),
                    ));
                }
                self.burst_threshold = Some((threshold, p.offset));
                return Ok(true);
            }
            "burstHold" => {
                let hold = c.one_duration(p)?;
                if hold.is_zero() || hold > MAX_STABILIZATION {
                    return Err(c.err(
                        p.offset,
                        format!(
                            "`.burstHold()` of {} must be above 0 and at most 1h",
                            c.node
                        ),
                    ));
                }
                self.burst_hold = Some((hold, p.offset));
                return Ok(true);
            }
            "fallbackAfter" => {
                let after = c.one_duration(p)?;
                if after < Duration::from_secs(1) {
                    return Err(c.err(
                        p.offset,
                        format!("`.fallbackAfter()` of {} must be at least 1s", c.node),
                    ));
                }
                self.fallback_after = Some(after);
                return Ok(true);
            }
            "fallbackReplicas" => {
                let replicas = c.one_int(p)?;
                self.fallback_replicas = Some((replicas, p.offset));
                return Ok(true);
            }
            _ => return Ok(false),
        }
        self.timing.get_or_insert(p.offset);
        Ok(true)
    }

    /// The behavior and fallback, once every property is read and `min`/`max` are known.
    fn finish(self, c: &Checker<'_>, min: i64, max: i64) -> Result<(Behavior, Option<Fallback>)> {
        let mut behavior = self.behavior;
        match (self.burst_threshold, self.burst_hold) {
            (Some((threshold, offset)), hold) => {
                if let Some(at) = self.timing {
                    return Err(c.err(
                        at.max(offset),
                        format!(
                            "{} is a burst node (`.burst()`): it acts past cooldowns, tolerance, stabilization and rate policies, so it cannot set them; set them on the node fed by the stable window",
                            c.node
                        ),
                    ));
                }
                behavior.burst = Some(Burst {
                    threshold,
                    hold: hold.map_or(DEFAULT_BURST_HOLD, |(hold, _)| hold),
                });
            }
            (None, Some((_, offset))) => {
                return Err(c.err(
                    offset,
                    format!("`.burstHold()` of {} needs `.burst(threshold)`", c.node),
                ));
            }
            (None, None) => {}
        }
        let fallback = match (self.fallback_after, self.fallback_replicas) {
            (Some(after), replicas) => {
                if let Some((n, offset)) = replicas
                    && (n < min || (max > 0 && n > max))
                {
                    return Err(c.err(
                        offset,
                        format!(
                            "`.fallbackReplicas()` of {} must be within min ({min}) and max ({max}), got {n}",
                            c.node
                        ),
                    ));
                }
                Some(Fallback {
                    after,
                    replicas: replicas.map(|(n, _)| n),
                })
            }
            (None, Some((_, offset))) => {
                return Err(c.err(
                    offset,
                    format!(
                        "`.fallbackReplicas()` of {} needs `.fallbackAfter(duration)`, the silence that triggers it",
                        c.node
                    ),
                ));
            }
            (None, None) => None,
        };
        Ok((behavior, fallback))
    }
}

fn stabilization(c: &Checker<'_>, p: &RawProperty<'_>) -> Result<Duration> {
    let window = c.one_duration(p)?;
    if window > MAX_STABILIZATION {
        return Err(c.err(
            p.offset,
            format!(
                "`.{}()` of {} must be at most 1h (HPA's limit), got {window:?}",
                p.name, c.node
            ),
        ));
    }
    Ok(window)
}

/// `.scaleUpPolicy('pods' | 'percent', value, period)`.
fn rate_policy(c: &Checker<'_>, p: &RawProperty<'_>) -> Result<RatePolicy> {
    let what = format!("`.{}()`", p.name);
    let args = c.count(&what, &p.args, 3, p.offset)?;
    let kind_name = c.string(&what, &args[0])?;
    let kind = PolicyKind::from_name(&kind_name).ok_or_else(|| {
        c.err(
            args[0].offset,
            format!(
                "{what} of {}: unknown policy type '{kind_name}' (pods, percent)",
                c.node
            ),
        )
    })?;
    let value = c.int(&what, &args[1])?;
    if value <= 0 {
        return Err(c.err(
            args[1].offset,
            format!(
                "{what} of {}: the value must be above 0, got {value}",
                c.node
            ),
        ));
    }
    let period = match &args[2].value {
        crate::tick::value::Value::Duration(ns) if *ns <= 0 => {
            return Err(c.err(
                args[2].offset,
                format!("{what} of {}: the period must be above 0", c.node),
            ));
        }
        _ => c.duration(&what, &args[2])?,
    };
    if period > MAX_POLICY_PERIOD {
        return Err(c.err(
            args[2].offset,
            format!(
                "{what} of {}: the period must be at most 30m (HPA's limit), got {period:?}",
                c.node
            ),
        ));
    }
    Ok(RatePolicy {
        kind,
        value,
        period,
    })
}

fn select(c: &Checker<'_>, p: &RawProperty<'_>) -> Result<Select> {
    let name = c.one_string(p)?;
    Select::from_name(&name).ok_or_else(|| {
        c.err(
            p.offset,
            format!(
                "`.{}()` of {}: unknown select '{name}' (max, min, disabled)",
                p.name, c.node
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::outputs::tests::third_node;
    use crate::scaler::Kind;
    use crate::scaler::behavior::{PolicyKind, RatePolicy, Select};
    use crate::tick::nodes::{K8sAutoscaleSpec, NodeSpec};

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

    #[test]
    fn a_tick_without_extensions_has_the_default_behavior() {
        let spec = k8s_autoscale(".increaseCooldown(1m)").unwrap();
        assert_eq!(spec.behavior, Default::default());
        assert_eq!(spec.fallback, None);
    }

    #[test]
    fn the_hpa_vocabulary_is_read_into_the_behavior() {
        let spec = k8s_autoscale(
            ".tolerance(0.1).scaleDownStabilization(30s).scaleUpPolicy('percent', 100, 15s).scaleUpPolicy('Pods', 4, 15s).scaleDownPolicy('pods', 1, 1m).scaleDownSelect('min')",
        )
        .unwrap();
        let b = spec.behavior;
        assert_eq!(b.tolerance, Some(0.1));
        assert_eq!(b.down.stabilization, Duration::from_secs(30));
        assert_eq!(b.up.stabilization, Duration::ZERO);
        assert_eq!(
            b.up.policies,
            vec![
                RatePolicy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period: Duration::from_secs(15)
                },
                RatePolicy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: Duration::from_secs(15)
                }
            ]
        );
        assert_eq!(b.down.select, Select::Min);
        assert_eq!(b.up.select, Select::Max);
    }

    #[test]
    fn a_float_replicas_lambda_is_accepted_and_a_string_one_refused() {
        let spec = third_node(
            "k8sAutoscale().resourceName('app').replicas(lambda: float(\"v\") / 100.0)",
            "",
        );
        assert!(spec.is_ok(), "{spec:?}");
        let error = third_node(
            "k8sAutoscale().resourceName('app').replicas(lambda: 'three')",
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("must evaluate to a number"), "{error}");
    }

    #[test]
    fn burst_and_fallback_are_read_with_their_defaults() {
        let spec = k8s_autoscale(".burst(2.0).max(10)").unwrap();
        let burst = spec.behavior.burst.unwrap();
        assert_eq!(burst.threshold, 2.0);
        assert_eq!(burst.hold, super::DEFAULT_BURST_HOLD);
        let spec = k8s_autoscale(".burst(3).burstHold(30s)").unwrap();
        assert_eq!(spec.behavior.burst.unwrap().hold, Duration::from_secs(30));
        let spec = k8s_autoscale(".fallbackAfter(5m).fallbackReplicas(3).max(5)").unwrap();
        let fallback = spec.fallback.unwrap();
        assert_eq!(fallback.after, Duration::from_secs(300));
        assert_eq!(fallback.replicas, Some(3));
        assert_eq!(
            k8s_autoscale(".fallbackAfter(5m)")
                .unwrap()
                .fallback
                .unwrap()
                .replicas,
            None,
            "hold"
        );
    }

    #[test]
    fn bad_extension_values_are_refused_when_the_task_is_defined() {
        for (props, expected) in [
            (
                ".scaleUpPolicy('pods', 4, 0s)",
                "the period must be above 0",
            ),
            (
                ".scaleUpPolicy('pods', 4, -5s)",
                "the period must be above 0",
            ),
            (".scaleDownPolicy('pods', 4, 31m)", "at most 30m"),
            (
                ".scaleUpPolicy('replicas', 4, 15s)",
                "unknown policy type 'replicas' (pods, percent)",
            ),
            (
                ".scaleUpPolicy('pods', 0, 15s)",
                "the value must be above 0",
            ),
            (
                ".scaleUpPolicy('pods', -2, 15s)",
                "the value must be above 0",
            ),
            (".scaleUpPolicy('pods', 4)", "takes 3 arguments"),
            (
                ".scaleUpSelect('avg')",
                "unknown select 'avg' (max, min, disabled)",
            ),
            (".tolerance(-0.1)", "at least 0 and below 1"),
            (".tolerance(1.5)", "at least 0 and below 1"),
            (".scaleDownStabilization(2h)", "at most 1h"),
            (".scaleDownStabilization(-1s)", "must not be negative"),
            (".burst(1.0)", "above 1"),
            (".burst(2.0).increaseCooldown(1m)", "is a burst node"),
            (".burst(2.0).tolerance(0.1)", "is a burst node"),
            (".burstHold(10s)", "needs `.burst(threshold)`"),
            (".fallbackReplicas(2)", "needs `.fallbackAfter(duration)`"),
            (
                ".fallbackAfter(1m).fallbackReplicas(20).max(10)",
                "within min (1) and max (10)",
            ),
            (".fallbackAfter(0s)", "at least 1s"),
        ] {
            let error = k8s_autoscale(props).map(|_| ()).unwrap_err().to_string();
            assert!(error.contains(expected), "{props}: {error}");
        }
    }
}
