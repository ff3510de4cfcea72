//! Workloads in the store: the defaults the API server fills in, validation, a status that
//! follows spec.replicas (or a kubelet's reports), the changes of spec.replicas the lab's kubelet
//! follows, and seeded manifests.

use serde_json::{Value, json};

use super::{Part, Store, WriteOptions, Written, key, meta_str, replicas_of, set_in};
use crate::resources::{ResourceDef, WorkloadKind};
use crate::selector::selector_string;
use crate::status::{ApiError, Result};

/// How workload `status` follows `spec.replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusMode {
    /// Every spec change is at once reflected in status (replicas, readyReplicas,
    /// availableReplicas, updatedReplicas, observedGeneration): a perfect controller and kubelet.
    #[default]
    Immediate,
    /// Status changes only through `Handle::set_status` or `PUT …/status` (a lab's "kubelet").
    Manual,
}

/// A change of a workload's desired replicas, as the lab's "kubelet" observes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadChange {
    /// Kind of workload.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// spec.replicas before, `None` when the workload was just created.
    pub previous: Option<i64>,
    /// spec.replicas now.
    pub replicas: i64,
    /// metadata.resourceVersion after the change.
    pub resource_version: String,
    /// metadata.generation after the change.
    pub generation: i64,
}

/// A workload as tests see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadView {
    /// spec.replicas.
    pub replicas: i64,
    /// status.replicas.
    pub status_replicas: i64,
    /// status.readyReplicas.
    pub ready_replicas: i64,
    /// metadata.generation.
    pub generation: i64,
    /// status.observedGeneration.
    pub observed_generation: i64,
    /// metadata.resourceVersion.
    pub resource_version: String,
}

impl Store {
    /// Sets a workload's spec.replicas outside the API (like another controller would).
    pub fn set_replicas(
        &mut self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i64,
        now: u64,
    ) -> Result<Written> {
        self.edit_workload(kind, namespace, name, Part::Main, now, |obj| {
            set_in(obj, &["spec", "replicas"], json!(replicas));
        })
    }

    /// Sets a workload's status as a kubelet and controller would: `replicas` pods exist,
    /// `ready` of them ready; observedGeneration catches up with generation.
    pub fn set_status(
        &mut self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i64,
        ready: i64,
        now: u64,
    ) -> Result<Written> {
        self.edit_workload(kind, namespace, name, Part::Status, now, |obj| {
            let status = status_for(kind, replicas, ready, &generation_of(obj));
            set_in(obj, &["status"], status);
        })
    }

    /// Writes a workload as `edit` changes it, outside the API (no dry run, no precondition).
    fn edit_workload(
        &mut self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        part: Part,
        now: u64,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Written> {
        let def = kind.def();
        let old = self.get(def, namespace, name)?;
        let mut new = old.clone();
        edit(&mut new);
        self.replace(def, namespace, name, &old, new, part, WriteOptions::at(now))
    }

    /// A workload's replicas, generation and resourceVersion.
    pub fn workload(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Option<WorkloadView> {
        let obj = self.objects.get(&key(kind.def(), namespace, name))?;
        let status = |f: &str| {
            obj.get("status")
                .and_then(|s| s.get(f))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        Some(WorkloadView {
            replicas: replicas_of(obj).unwrap_or(0),
            status_replicas: status("replicas"),
            ready_replicas: status("readyReplicas"),
            generation: obj
                .get("metadata")
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0),
            observed_generation: status("observedGeneration"),
            resource_version: meta_str(obj, "resourceVersion").to_string(),
        })
    }
}

/// The defaults the API server fills in for a workload (`SetDefaults_Deployment` and friends).
pub(super) fn default_workload(def: &ResourceDef, obj: &mut Value) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        set_in(obj, &["spec"], json!({}));
    }
    if obj
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .is_none_or(Value::is_null)
    {
        set_in(obj, &["spec", "replicas"], json!(1));
    }
    let Some(Value::Object(spec)) = obj.get_mut("spec") else {
        return;
    };
    match def.kind {
        "Deployment" => {
            if spec.get("strategy").is_none() {
                spec.insert(
                    "strategy".into(),
                    json!({"type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
            }
            if spec.get("revisionHistoryLimit").is_none() {
                spec.insert("revisionHistoryLimit".into(), json!(10));
            }
            if spec.get("progressDeadlineSeconds").is_none() {
                spec.insert("progressDeadlineSeconds".into(), json!(600));
            }
        }
        "StatefulSet" => {
            if spec.get("podManagementPolicy").is_none() {
                spec.insert("podManagementPolicy".into(), json!("OrderedReady"));
            }
            if spec.get("updateStrategy").is_none() {
                spec.insert(
                    "updateStrategy".into(),
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
            }
            if spec.get("revisionHistoryLimit").is_none() {
                spec.insert("revisionHistoryLimit".into(), json!(10));
            }
        }
        _ => {}
    }
}

pub(super) fn validate_workload(def: &ResourceDef, name: &str, obj: &Value) -> Result<()> {
    let invalid = |field: &str, value: Option<String>, detail: &str| {
        ApiError::invalid(crate::status::FieldError {
            group: def.group.into(),
            kind: def.kind.into(),
            name: name.into(),
            field: field.into(),
            value,
            detail: detail.into(),
        })
    };
    match obj.get("spec").and_then(|s| s.get("replicas")) {
        Some(v)
            if v.as_i64()
                .is_some_and(|r| (0..=i64::from(i32::MAX)).contains(&r)) => {}
        Some(v) => {
            return Err(invalid(
                "spec.replicas",
                Some(v.to_string()),
                "must be greater than or equal to 0",
            ));
        }
        None => {}
    }
    if def.group == "apps" {
        let selector = obj.get("spec").and_then(|s| s.get("selector"));
        if selector_string(selector).is_empty() {
            return Err(invalid(
                "spec.selector",
                None,
                "empty selector is invalid for deployment",
            ));
        }
    }
    Ok(())
}

/// metadata.generation as the status's observedGeneration (1 when unset).
fn generation_of(obj: &Value) -> Value {
    obj.get("metadata")
        .and_then(|m| m.get("generation"))
        .cloned()
        .unwrap_or(json!(1))
}

/// A healthy status for `replicas` pods of which `ready` are ready.
fn status_for(kind: WorkloadKind, replicas: i64, ready: i64, generation: &Value) -> Value {
    let mut status = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
    });
    match kind {
        WorkloadKind::Deployment => {
            status["updatedReplicas"] = json!(replicas);
            let unavailable = replicas - ready;
            if unavailable > 0 {
                status["unavailableReplicas"] = json!(unavailable);
            }
        }
        WorkloadKind::StatefulSet => {
            status["currentReplicas"] = json!(replicas);
            status["updatedReplicas"] = json!(replicas);
        }
        WorkloadKind::ReplicaSet | WorkloadKind::ReplicationController => {
            status["fullyLabeledReplicas"] = json!(replicas);
        }
    }
    if let Some(m) = status.as_object_mut() {
        // The API server omits zero counts (`omitempty`) except `replicas`.
        m.retain(|k, v| k == "replicas" || k == "observedGeneration" || v != &json!(0));
    }
    status
}

pub(super) fn mirror_status(obj: &mut Value) {
    let Some(kind) = obj
        .get("kind")
        .and_then(Value::as_str)
        .and_then(WorkloadKind::parse)
    else {
        return;
    };
    let replicas = replicas_of(obj).unwrap_or(0);
    let generation = generation_of(obj);
    set_in(
        obj,
        &["status"],
        status_for(kind, replicas, replicas, &generation),
    );
}

/// A realistic workload object for seeding: labels `app: <name>`, one container.
pub fn workload_manifest(kind: WorkloadKind, namespace: &str, name: &str, replicas: i64) -> Value {
    let def = kind.def();
    let labels = json!({"app": name});
    let template = json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": name, "image": format!("{name}:latest"),
            "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}
    });
    let selector = if kind == WorkloadKind::ReplicationController {
        labels.clone()
    } else {
        json!({"matchLabels": labels})
    };
    let mut spec = json!({"replicas": replicas, "selector": selector, "template": template});
    if kind == WorkloadKind::StatefulSet {
        set_in(&mut spec, &["serviceName"], json!(name));
    }
    json!({
        "apiVersion": def.group_version(),
        "kind": def.kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::DEPLOYMENTS;
    use crate::store::tests::{NOW, opts, store_with_app};

    #[test]
    fn created_deployments_get_uid_generation_defaults_and_status() {
        let store = store_with_app(2);
        let obj = store.get(&DEPLOYMENTS, "default", "app");
        let Ok(obj) = obj else {
            panic!("missing: {obj:?}")
        };
        assert_eq!(obj["metadata"]["generation"], 1);
        assert_eq!(obj["metadata"]["creationTimestamp"], "2026-11-28T17:48:35Z");
        assert_eq!(meta_str(&obj, "uid").len(), 36);
        assert_eq!(obj["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(obj["status"]["readyReplicas"], 2);
        assert_eq!(obj["status"]["observedGeneration"], 1);
        assert_eq!(obj["kind"], "Deployment");
    }

    #[test]
    fn manual_status_mode_leaves_status_to_the_kubelet() {
        let mut store = Store::new(1, StatusMode::Manual);
        let m = workload_manifest(WorkloadKind::Deployment, "default", "app", 1);
        assert!(store.create(&DEPLOYMENTS, "default", m, opts()).is_ok());
        assert!(
            store
                .set_replicas(WorkloadKind::Deployment, "default", "app", 3, NOW)
                .is_ok()
        );
        let view = store.workload(WorkloadKind::Deployment, "default", "app");
        assert_eq!(
            view.as_ref().map(|w| (w.replicas, w.ready_replicas)),
            Some((3, 0))
        );
        assert!(
            store
                .set_status(WorkloadKind::Deployment, "default", "app", 3, 2, NOW)
                .is_ok()
        );
        let view = store.workload(WorkloadKind::Deployment, "default", "app");
        assert_eq!(
            view.map(|w| (w.status_replicas, w.ready_replicas, w.observed_generation)),
            Some((3, 2, 2))
        );
    }
}
