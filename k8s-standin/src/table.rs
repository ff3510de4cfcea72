//! Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with the columns of the API server's
//! printers (`pkg/printers/internalversion/printers.go`).

use serde_json::{Value, json};

use crate::resources::ResourceDef;
use crate::timestamp::{human_duration, parse_rfc3339};

/// What each row carries besides cells (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// From the query parameter value; unknown values mean the default.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

type Cell = fn(&Value, u64) -> Value;

fn int(obj: &Value, section: &str, field: &str) -> i64 {
    obj.get(section)
        .and_then(|s| s.get(field))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn age_since(stamp: &str, now: u64) -> Value {
    match parse_rfc3339(stamp) {
        Some(t) => json!(human_duration(now.saturating_sub(t))),
        None => json!("<unknown>"),
    }
}

fn name(obj: &Value, _: u64) -> Value {
    json!(text(obj, "/metadata/name"))
}

fn age(obj: &Value, now: u64) -> Value {
    age_since(text(obj, "/metadata/creationTimestamp"), now)
}

fn ready_of_desired(obj: &Value, _: u64) -> Value {
    json!(format!(
        "{}/{}",
        int(obj, "status", "readyReplicas"),
        int(obj, "spec", "replicas")
    ))
}

fn desired(obj: &Value, _: u64) -> Value {
    json!(int(obj, "spec", "replicas"))
}

fn current(obj: &Value, _: u64) -> Value {
    json!(int(obj, "status", "replicas"))
}

fn ready(obj: &Value, _: u64) -> Value {
    json!(int(obj, "status", "readyReplicas"))
}

fn updated(obj: &Value, _: u64) -> Value {
    json!(int(obj, "status", "updatedReplicas"))
}

fn available(obj: &Value, _: u64) -> Value {
    json!(int(obj, "status", "availableReplicas"))
}

fn pod_ready(obj: &Value, _: u64) -> Value {
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    let containers = obj
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Value::String(format!(
        "{}/{containers}",
        if ready { containers } else { 0 }
    ))
}

fn pod_phase(obj: &Value, _: u64) -> Value {
    Value::String(text(obj, "/status/phase").to_string())
}

fn pod_ip(obj: &Value, _: u64) -> Value {
    Value::String(match text(obj, "/status/podIP") {
        "" => "<none>".to_string(),
        ip => ip.to_string(),
    })
}

fn pod_node(obj: &Value, _: u64) -> Value {
    Value::String(match text(obj, "/spec/nodeName") {
        "" => "<none>".to_string(),
        node => node.to_string(),
    })
}

fn holder(obj: &Value, _: u64) -> Value {
    json!(text(obj, "/spec/holderIdentity"))
}

fn hpa_reference(obj: &Value, _: u64) -> Value {
    json!(format!(
        "{}/{}",
        text(obj, "/spec/scaleTargetRef/kind"),
        text(obj, "/spec/scaleTargetRef/name")
    ))
}

fn hpa_targets(obj: &Value, _: u64) -> Value {
    json!(crate::store::hpa::targets(obj))
}

fn hpa_min_pods(obj: &Value, _: u64) -> Value {
    match obj.pointer("/spec/minReplicas").and_then(Value::as_i64) {
        Some(n) => json!(n.to_string()),
        None => json!("<unset>"),
    }
}

fn hpa_max_pods(obj: &Value, _: u64) -> Value {
    json!(int(obj, "spec", "maxReplicas"))
}

fn hpa_replicas(obj: &Value, _: u64) -> Value {
    json!(int(obj, "status", "currentReplicas"))
}

fn event_last_seen(obj: &Value, now: u64) -> Value {
    let stamp = [
        "/lastTimestamp",
        "/eventTime",
        "/series/lastObservedTime",
        "/deprecatedLastTimestamp",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .map(|p| text(obj, p))
    .find(|s| !s.is_empty())
    .unwrap_or("");
    age_since(stamp, now)
}

fn event_type(obj: &Value, _: u64) -> Value {
    json!(text(obj, "/type"))
}

fn event_reason(obj: &Value, _: u64) -> Value {
    json!(text(obj, "/reason"))
}

fn event_object(obj: &Value, _: u64) -> Value {
    let regarding = obj
        .get("involvedObject")
        .or_else(|| obj.get("regarding"))
        .unwrap_or(&Value::Null);
    let kind = regarding
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = regarding.get("name").and_then(Value::as_str).unwrap_or("");
    json!(format!("{kind}/{name}"))
}

fn event_message(obj: &Value, _: u64) -> Value {
    let m = text(obj, "/message");
    json!(if m.is_empty() { text(obj, "/note") } else { m })
}

/// (column name, type, cell) for a resource kind.
fn columns(def: &ResourceDef) -> Vec<(&'static str, &'static str, Cell)> {
    match def.kind {
        "Deployment" => vec![
            ("Name", "string", name),
            ("Ready", "string", ready_of_desired),
            ("Up-to-date", "string", updated),
            ("Available", "string", available),
            ("Age", "string", age),
        ],
        "StatefulSet" => vec![
            ("Name", "string", name),
            ("Ready", "string", ready_of_desired),
            ("Age", "string", age),
        ],
        "ReplicaSet" | "ReplicationController" => vec![
            ("Name", "string", name),
            ("Desired", "integer", desired),
            ("Current", "integer", current),
            ("Ready", "integer", ready),
            ("Age", "string", age),
        ],
        "HorizontalPodAutoscaler" => vec![
            ("Name", "string", name),
            ("Reference", "string", hpa_reference),
            ("Targets", "string", hpa_targets),
            ("MinPods", "string", hpa_min_pods),
            ("MaxPods", "integer", hpa_max_pods),
            ("Replicas", "integer", hpa_replicas),
            ("Age", "string", age),
        ],
        "Pod" => vec![
            ("Name", "string", name),
            ("Ready", "string", pod_ready),
            ("Status", "string", pod_phase),
            ("IP", "string", pod_ip),
            ("Node", "string", pod_node),
            ("Age", "string", age),
        ],
        "Lease" => vec![
            ("Name", "string", name),
            ("Holder", "string", holder),
            ("Age", "string", age),
        ],
        "Event" => vec![
            ("Last Seen", "string", event_last_seen),
            ("Type", "string", event_type),
            ("Reason", "string", event_reason),
            ("Object", "string", event_object),
            ("Message", "string", event_message),
        ],
        _ => vec![("Name", "string", name), ("Created At", "date", age)],
    }
}

/// Renders one object as a Table at `now` (seconds), with the object's resourceVersion.
pub fn render_one(def: &ResourceDef, object: &Value, include: IncludeObject, now: u64) -> Value {
    let rv = object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    render(def, std::slice::from_ref(object), rv, include, now)
}

/// Renders objects (full objects, with or without kind) as a Table at `now` (seconds).
pub fn render(
    def: &ResourceDef,
    objects: &[Value],
    resource_version: &str,
    include: IncludeObject,
    now: u64,
) -> Value {
    let cols = columns(def);
    let definitions: Vec<Value> = cols
        .iter()
        .map(|(n, t, _)| {
            let format = if *n == "Name" { "name" } else { "" };
            json!({"name": n, "type": t, "format": format, "description": n, "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = cols.iter().map(|(_, _, cell)| cell(obj, now)).collect();
            let mut row = json!({"cells": cells});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    });
                }
                IncludeObject::Object => {
                    let mut full = obj.clone();
                    if let Some(m) = full.as_object_mut() {
                        m.insert("kind".into(), json!(def.kind));
                        m.insert("apiVersion".into(), json!(def.group_version()));
                    }
                    row["object"] = full;
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{CORE_EVENTS, DEPLOYMENTS, HORIZONTALPODAUTOSCALERS};

    #[test]
    fn a_deployment_row_reads_like_kubectl_get_deploy() {
        let obj = json!({"metadata": {"name": "app", "creationTimestamp": "2026-11-28T17:00:00Z"},
            "spec": {"replicas": 3},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let now = parse_rfc3339("2026-11-28T17:05:00Z").unwrap_or(0);
        let table = render(&DEPLOYMENTS, &[obj], "9", IncludeObject::Metadata, now);
        assert_eq!(table["rows"][0]["cells"], json!(["app", "2/3", 3, 2, "5m"]));
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(table["columnDefinitions"][0]["format"], "name");
        assert_eq!(table["metadata"]["resourceVersion"], "9");
    }

    #[test]
    fn an_event_row_names_the_involved_object() {
        let ev = json!({"metadata": {"name": "e", "creationTimestamp": "2026-11-28T17:00:00Z"},
            "involvedObject": {"kind": "Deployment", "name": "app"},
            "type": "Normal", "reason": "SuccessfulRescale", "message": "New size: 3",
            "lastTimestamp": "2026-11-28T17:00:30Z"});
        let now = parse_rfc3339("2026-11-28T17:01:00Z").unwrap_or(0);
        let table = render(&CORE_EVENTS, &[ev], "1", IncludeObject::None, now);
        assert_eq!(
            table["rows"][0]["cells"],
            json!([
                "30s",
                "Normal",
                "SuccessfulRescale",
                "deployment/app",
                "New size: 3"
            ])
        );
        assert!(table["rows"][0].get("object").is_none());
    }

    #[test]
    fn an_hpa_row_reads_like_kubectl_get_hpa() {
        let hpa = json!({"metadata": {"name": "app", "creationTimestamp": "2026-11-28T17:00:00Z"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
                "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
            "status": {"currentReplicas": 2, "desiredReplicas": 2}});
        let now = parse_rfc3339("2026-11-28T17:02:00Z").unwrap_or(0);
        let table = render(
            &HORIZONTALPODAUTOSCALERS,
            &[hpa],
            "3",
            IncludeObject::None,
            now,
        );
        assert_eq!(
            table["rows"][0]["cells"],
            json!([
                "app",
                "Deployment/app",
                "cpu: <unknown>/80%",
                "1",
                5,
                2,
                "2m"
            ])
        );
        assert_eq!(table["columnDefinitions"][3]["name"], "MinPods");
    }
}
