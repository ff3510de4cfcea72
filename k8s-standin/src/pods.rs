//! Pods as tests and the lab write them: [`PodSeed`] (name, labels, annotations, node, IP,
//! Ready, owner) to a full core/v1 Pod manifest; and the field labels the API server accepts in
//! a pod field selector (any other is a 400, as there).

use serde_json::{Value, json};

/// The field labels a pod `fieldSelector` may use (the API server's `PodToSelectableFields`
/// and its conversion funcs); any other gets `field label not supported`.
pub const POD_FIELD_LABELS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];

/// A pod as a kubelet would report it, in a few fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSeed {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: Vec<(String, String)>,
    /// `metadata.annotations`.
    pub annotations: Vec<(String, String)>,
    /// `spec.nodeName`; empty: not scheduled.
    pub node: String,
    /// `status.podIP`; `None`: not assigned yet.
    pub ip: Option<String>,
    /// The `Ready` condition (`status.phase` is `Running` either way once an IP is set).
    pub ready: bool,
    /// The controller owner (`metadata.ownerReferences[0]`): kind, name, uid.
    pub owner: Option<(String, String, String)>,
}

impl PodSeed {
    /// A pod in `namespace` named `name`, on node `node-1`, without an IP, not ready.
    pub fn new(namespace: &str, name: &str) -> Self {
        PodSeed {
            namespace: namespace.to_string(),
            name: name.to_string(),
            labels: Vec::new(),
            annotations: Vec::new(),
            node: "node-1".to_string(),
            ip: None,
            ready: false,
            owner: None,
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds an annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets the node.
    pub fn node(mut self, node: &str) -> Self {
        self.node = node.to_string();
        self
    }

    /// Sets the IP and the Ready condition.
    pub fn running(mut self, ip: &str, ready: bool) -> Self {
        self.ip = Some(ip.to_string());
        self.ready = ready;
        self
    }

    /// Sets the controller owner (`ReplicaSet`, `StatefulSet`, `DaemonSet`, ...).
    pub fn owned_by(mut self, kind: &str, name: &str, uid: &str) -> Self {
        self.owner = Some((kind.to_string(), name.to_string(), uid.to_string()));
        self
    }

    /// The full manifest.
    pub fn to_object(&self) -> Value {
        let map = |pairs: &[(String, String)]| -> Value {
            Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        let mut metadata = json!({
            "name": self.name,
            "namespace": self.namespace,
            "labels": map(&self.labels),
            "annotations": map(&self.annotations),
        });
        if let Some((kind, name, uid)) = &self.owner {
            let api_version = if kind == "ReplicationController" {
                "v1"
            } else {
                "apps/v1"
            };
            metadata["ownerReferences"] = json!([{
                "apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
                "controller": true, "blockOwnerDeletion": true,
            }]);
        }
        let mut status = json!({
            "phase": if self.ip.is_some() { "Running" } else { "Pending" },
            "conditions": [
                {"type": "PodScheduled", "status": if self.node.is_empty() { "False" } else { "True" }},
                {"type": "Ready", "status": if self.ready { "True" } else { "False" }},
            ],
        });
        if let Some(ip) = &self.ip {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
            status["hostIP"] = json!("10.0.0.1");
        }
        let mut spec = json!({
            "containers": [{"name": "app", "image": "app:latest"}],
            "restartPolicy": "Always",
        });
        if !self.node.is_empty() {
            spec["nodeName"] = json!(self.node);
        }
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": spec,
            "status": status,
        })
    }
}

/// The error the API server gives for a pod field selector on an unsupported field.
pub fn unsupported_field_label(fields: &[String]) -> Option<String> {
    fields
        .iter()
        .find(|f| !POD_FIELD_LABELS.contains(&f.as_str()))
        .map(|f| format!("field label not supported: {f}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_ready_pod_has_its_ip_phase_condition_and_owner() {
        let pod = PodSeed::new("default", "app-1")
            .label("app", "app")
            .running("127.0.0.1", true)
            .owned_by("ReplicaSet", "app-5d9", "u1")
            .to_object();
        assert_eq!(pod["status"]["podIP"], "127.0.0.1");
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["conditions"][1]["status"], "True");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert_eq!(pod["spec"]["nodeName"], "node-1");
    }

    #[test]
    fn a_pod_without_an_ip_is_pending() {
        let pod = PodSeed::new("default", "app-1").to_object();
        assert_eq!(pod["status"]["phase"], "Pending");
        assert!(pod["status"].get("podIP").is_none());
    }

    #[test]
    fn only_the_api_servers_pod_field_labels_are_supported() {
        assert_eq!(unsupported_field_label(&["spec.nodeName".into()]), None);
        assert_eq!(
            unsupported_field_label(&["spec.nodeName".into(), "spec.foo".into()]).as_deref(),
            Some("field label not supported: spec.foo")
        );
    }
}
