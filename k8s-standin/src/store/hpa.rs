//! HorizontalPodAutoscalers (`autoscaling/v2`) in the store: the defaults the API server fills
//! in (`SetDefaults_HorizontalPodAutoscaler`: `minReplicas` 1, and a CPU utilization target of
//! 80 % when no metric is given), the validation a user's manifest meets (the `scaleTargetRef`
//! names a kind and an object; `minReplicas` at least 1; `maxReplicas` at least 1 and not below
//! `minReplicas`), and the empty status a new one starts with. No controller acts on them: they
//! are there to be found by whoever lists them.

use serde_json::{Value, json};

use super::set_in;
use crate::resources::{HORIZONTALPODAUTOSCALERS, ResourceDef};
use crate::status::{ApiError, FieldError, Result};

/// Whether `def` is the HorizontalPodAutoscaler resource.
pub(super) fn is_hpa(def: &ResourceDef) -> bool {
    def == &HORIZONTALPODAUTOSCALERS
}

/// The status of an HPA no controller has looked at yet (as the API server resets it on create).
pub(super) fn new_status() -> Value {
    json!({"desiredReplicas": 0})
}

/// Fills in what the API server defaults.
pub(super) fn default_hpa(obj: &mut Value) {
    if obj.pointer("/spec/minReplicas").is_none_or(Value::is_null) {
        set_in(obj, &["spec", "minReplicas"], json!(1));
    }
    let no_metrics = match obj.pointer("/spec/metrics") {
        None | Some(Value::Null) => true,
        Some(Value::Array(metrics)) => metrics.is_empty(),
        Some(_) => false,
    };
    if no_metrics {
        set_in(
            obj,
            &["spec", "metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
}

/// Refuses what the API server's validation refuses of an HPA's spec (the first error only).
pub(super) fn validate_hpa(name: &str, obj: &Value) -> Result<()> {
    let invalid = |field: &str, value: Option<&Value>, detail: &str| {
        ApiError::invalid(FieldError {
            group: HORIZONTALPODAUTOSCALERS.group.into(),
            kind: HORIZONTALPODAUTOSCALERS.kind.into(),
            name: name.into(),
            field: field.into(),
            value: value.map(Value::to_string),
            detail: detail.into(),
        })
    };
    for field in ["kind", "name"] {
        let path = format!("/spec/scaleTargetRef/{field}");
        let full = format!("spec.scaleTargetRef.{field}");
        match obj.pointer(&path) {
            None | Some(Value::Null) => return Err(invalid(&full, None, "")),
            Some(Value::String(s)) if s.is_empty() => return Err(invalid(&full, None, "")),
            Some(Value::String(s)) => {
                if let Some(problem) = path_segment_problem(s) {
                    return Err(invalid(&full, obj.pointer(&path), problem));
                }
            }
            Some(other) => return Err(invalid(&full, Some(other), "must be a string")),
        }
    }
    let min = match obj.pointer("/spec/minReplicas") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if (1..=i64::from(i32::MAX)).contains(&n) => Some(n),
            _ => {
                return Err(invalid(
                    "spec.minReplicas",
                    Some(v),
                    "must be greater than or equal to 1",
                ));
            }
        },
    };
    let max = obj.pointer("/spec/maxReplicas");
    match max.map(|v| (v, v.as_i64())) {
        None | Some((Value::Null, _)) => Err(invalid("spec.maxReplicas", None, "")),
        Some((v, Some(n))) if (1..=i64::from(i32::MAX)).contains(&n) => {
            if min.is_some_and(|min| n < min) {
                Err(invalid(
                    "spec.maxReplicas",
                    Some(v),
                    "must be greater than or equal to `minReplicas`",
                ))
            } else {
                Ok(())
            }
        }
        Some((v, _)) => Err(invalid(
            "spec.maxReplicas",
            Some(v),
            "must be greater than 0",
        )),
    }
}

/// Why `name` cannot be a path segment (`ValidatePathSegmentName`), `None` when it can.
fn path_segment_problem(name: &str) -> Option<&'static str> {
    if name == "." || name == ".." {
        Some("may not be '.' or '..'")
    } else if name.contains('/') {
        Some("may not contain '/'")
    } else if name.contains('%') {
        Some("may not contain '%'")
    } else {
        None
    }
}

/// The `Targets` cell of `kubectl get hpa`: each spec metric as `current/target` (current from
/// the status's metric at the same index, `<unknown>` until a controller reports one), resource
/// metrics prefixed by their name; two at most, then `+ N more...`; `<none>` without metrics.
pub(crate) fn targets(obj: &Value) -> String {
    let metrics = obj
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let statuses = obj
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let list: Vec<String> = metrics
        .iter()
        .enumerate()
        .map(|(i, spec)| metric_cell(spec, statuses.get(i)))
        .collect();
    match list.len() {
        0 => "<none>".to_string(),
        1 | 2 => list.join(", "),
        n => format!("{} + {} more...", list[..2].join(", "), n - 2),
    }
}

/// One metric of [`targets`].
fn metric_cell(spec: &Value, status: Option<&Value>) -> String {
    let kind = spec.get("type").and_then(Value::as_str).unwrap_or("");
    // The spec's and the status's sections are named after the type, lower camel case.
    let section = match kind {
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => "pods",
        "Object" => "object",
        "External" => "external",
        _ => return "<unknown>/<unknown>".to_string(),
    };
    let target = spec.pointer(&format!("/{section}/target"));
    let current = status.and_then(|s| s.pointer(&format!("/{section}/current")));
    let text = |v: Option<&Value>, field: &str| -> Option<String> {
        match v?.get(field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let unknown = || "<unknown>".to_string();
    let has = |field: &str| {
        target
            .and_then(|t| t.get(field))
            .is_some_and(|v| !v.is_null())
    };
    match section {
        "resource" | "containerResource" => {
            let name = spec
                .pointer(&format!("/{section}/name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let pair = if has("averageValue") {
                format!(
                    "{}/{}",
                    text(current, "averageValue").unwrap_or_else(unknown),
                    text(target, "averageValue").unwrap_or_else(unknown)
                )
            } else {
                format!(
                    "{}/{}",
                    text(current, "averageUtilization").map_or_else(unknown, |c| format!("{c}%")),
                    text(target, "averageUtilization")
                        .map_or_else(|| "<auto>".to_string(), |t| format!("{t}%"))
                )
            };
            format!("{name}: {pair}")
        }
        "pods" => format!(
            "{}/{}",
            text(current, "averageValue").unwrap_or_else(unknown),
            text(target, "averageValue").unwrap_or_else(unknown)
        ),
        _ if has("averageValue") => format!(
            "{}/{} (avg)",
            text(current, "averageValue").unwrap_or_else(unknown),
            text(target, "averageValue").unwrap_or_else(unknown)
        ),
        _ => format!(
            "{}/{}",
            text(current, "value").unwrap_or_else(unknown),
            text(target, "value").unwrap_or_else(unknown)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::opts;
    use crate::store::{Part, StatusMode, Store};

    fn hpa(spec: Value) -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "app", "namespace": "default"}, "spec": spec})
    }

    fn target() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"})
    }

    fn create(spec: Value) -> Result<Value> {
        let mut store = Store::new(1, StatusMode::Immediate);
        store
            .create(&HORIZONTALPODAUTOSCALERS, "default", hpa(spec), opts())
            .map(|w| w.object)
    }

    #[test]
    fn a_created_hpa_gets_min_replicas_a_cpu_metric_and_an_empty_status() {
        let created = create(json!({"scaleTargetRef": target(), "maxReplicas": 5,
            "status": {"currentReplicas": 9}}));
        let Ok(obj) = created else {
            panic!("{created:?}")
        };
        assert_eq!(obj["spec"]["minReplicas"], 1);
        assert_eq!(
            obj["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(obj["status"], json!({"desiredReplicas": 0}));
        assert_eq!(obj["kind"], "HorizontalPodAutoscaler");
        assert_eq!(obj["apiVersion"], "autoscaling/v2");
        assert!(obj["metadata"].get("generation").is_none());
        assert_eq!(targets(&obj), "cpu: <unknown>/80%");
    }

    #[test]
    fn given_metrics_and_min_replicas_are_kept() {
        let metrics = json!([{"type": "Pods", "pods": {"metric": {"name": "rps"},
            "target": {"type": "AverageValue", "averageValue": "10"}}}]);
        let created = create(json!({"scaleTargetRef": target(), "minReplicas": 2,
            "maxReplicas": 5, "metrics": metrics}));
        let Ok(obj) = created else {
            panic!("{created:?}")
        };
        assert_eq!(obj["spec"]["minReplicas"], 2);
        assert_eq!(obj["spec"]["metrics"], metrics);
    }

    #[test]
    fn invalid_specs_are_refused_naming_the_field() {
        let cases = [
            (
                json!({"maxReplicas": 3}),
                "HorizontalPodAutoscaler.autoscaling \"app\" is invalid: spec.scaleTargetRef.kind: Required value",
            ),
            (
                json!({"scaleTargetRef": {"kind": "Deployment"}, "maxReplicas": 3}),
                "spec.scaleTargetRef.name: Required value",
            ),
            (
                json!({"scaleTargetRef": {"kind": "Deployment", "name": "a/b"}, "maxReplicas": 3}),
                "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
            ),
            (
                json!({"scaleTargetRef": target()}),
                "spec.maxReplicas: Required value",
            ),
            (
                json!({"scaleTargetRef": target(), "maxReplicas": 0}),
                "spec.maxReplicas: Invalid value: 0: must be greater than 0",
            ),
            (
                json!({"scaleTargetRef": target(), "minReplicas": 0, "maxReplicas": 2}),
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
            ),
            (
                json!({"scaleTargetRef": target(), "minReplicas": 4, "maxReplicas": 2}),
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
            ),
        ];
        for (spec, message) in cases {
            let error = create(spec.clone()).map_err(|e| (e.code(), e.to_string()));
            let Err((code, text)) = error else {
                panic!("{spec} was accepted")
            };
            assert_eq!(code, 422, "{spec}");
            assert!(text.contains(message), "{spec}: {text}");
        }
    }

    #[test]
    fn an_update_keeps_the_status_and_is_validated() {
        let mut store = Store::new(1, StatusMode::Immediate);
        let spec = json!({"scaleTargetRef": target(), "maxReplicas": 5});
        let created = store.create(&HORIZONTALPODAUTOSCALERS, "default", hpa(spec), opts());
        let Ok(created) = created else {
            panic!("{created:?}")
        };
        let mut status = created.object.clone();
        status["status"] = json!({"currentReplicas": 3, "desiredReplicas": 3});
        let reported = store.update(
            &HORIZONTALPODAUTOSCALERS,
            "default",
            "app",
            status,
            Part::Status,
            opts(),
        );
        let Ok(reported) = reported else {
            panic!("{reported:?}")
        };
        let mut next = reported.object.clone();
        next["spec"]["maxReplicas"] = json!(7);
        next["status"] = json!({});
        let updated = store.update(
            &HORIZONTALPODAUTOSCALERS,
            "default",
            "app",
            next.clone(),
            Part::Main,
            opts(),
        );
        let Ok(updated) = updated else {
            panic!("{updated:?}")
        };
        assert_eq!(updated.object["spec"]["maxReplicas"], 7);
        assert_eq!(updated.object["status"]["currentReplicas"], 3);
        let mut bad = updated.object.clone();
        bad["spec"]["maxReplicas"] = json!(0);
        let refused = store.update(
            &HORIZONTALPODAUTOSCALERS,
            "default",
            "app",
            bad,
            Part::Main,
            opts(),
        );
        assert_eq!(refused.map_err(|e| e.code()).err(), Some(422));
    }

    #[test]
    fn targets_read_like_kubectl_get_hpa() {
        let obj = json!({"spec": {"metrics": [
            {"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Resource", "resource": {"name": "memory",
                "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
            {"type": "External", "external": {"metric": {"name": "queue"},
                "target": {"type": "Value", "value": "30"}}}
        ]}, "status": {"currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 45, "averageValue": "90m"}}}
        ]}});
        assert_eq!(
            targets(&obj),
            "cpu: 45%/80%, memory: <unknown>/500Mi + 1 more..."
        );
        let external = json!({"spec": {"metrics": [
            {"type": "External", "external": {"metric": {"name": "queue"},
                "target": {"type": "AverageValue", "averageValue": "30"}}},
            {"type": "Object", "object": {"metric": {"name": "rps"},
                "target": {"type": "Value", "value": "1k"}}}
        ]}, "status": {"currentMetrics": [
            {"type": "External", "external": {"current": {"averageValue": "12"}}}
        ]}});
        assert_eq!(targets(&external), "12/30 (avg), <unknown>/1k");
        assert_eq!(targets(&json!({"spec": {}})), "<none>");
    }
}
