//! A pod's owning workload as tags (`pod_workload_tags`), with the cache of ReplicaSet owners
//! that finds a Deployment (pure: the watcher does the one GET per ReplicaSet, never one per
//! scrape).
//!
//! The pod's controller owner reference (`controller: true`, else the first) names a
//! StatefulSet, DaemonSet or ReplicaSet directly; a ReplicaSet's own controller owner, when it
//! is a Deployment, is the Deployment. A ReplicaSet's owner never changes, so an answer is kept
//! until the cache is cleared (on a relist).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Pod;

use crate::config::WorkloadKind;

/// The pod's controller: kind and name.
pub fn controller(pod: &Pod) -> Option<(&str, &str)> {
    let owners = pod.metadata.owner_references.as_deref()?;
    owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
        .map(|o| (o.kind.as_str(), o.name.as_str()))
}

/// The workload tags of pods, from their owner references and the ReplicaSets looked up.
#[derive(Debug, Default)]
pub struct Owners {
    tags: BTreeMap<WorkloadKind, String>,
    /// (namespace, ReplicaSet) to the Deployment owning it (`None`: owned by none).
    replicasets: HashMap<(String, String), Option<String>>,
}

/// Entries the ReplicaSet cache keeps at most; past it, it is cleared and filled again.
pub const MAX_CACHED_REPLICASETS: usize = 10_000;

impl Owners {
    /// Tags configured by `pod_workload_tags` (kind to tag name).
    pub fn new(tags: BTreeMap<WorkloadKind, String>) -> Self {
        Owners {
            tags,
            replicasets: HashMap::new(),
        }
    }

    /// The ReplicaSet (namespace, name) to GET before `pod`'s tags are complete, if any.
    pub fn lookup_needed(&self, pod: &Pod) -> Option<(String, String)> {
        if !self.tags.contains_key(&WorkloadKind::Deployment) {
            return None;
        }
        let (kind, name) = controller(pod)?;
        let key = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            name.to_owned(),
        );
        (kind == "ReplicaSet" && !self.replicasets.contains_key(&key)).then_some(key)
    }

    /// Records a looked-up ReplicaSet's Deployment owner (`None`: it has none).
    pub fn record_replicaset(&mut self, namespace: &str, name: &str, deployment: Option<String>) {
        if self.replicasets.len() >= MAX_CACHED_REPLICASETS {
            self.replicasets.clear();
        }
        self.replicasets
            .insert((namespace.to_owned(), name.to_owned()), deployment);
    }

    /// Forgets every ReplicaSet (after a relist: ones deleted meanwhile go away).
    pub fn clear(&mut self) {
        self.replicasets.clear();
    }

    /// ReplicaSets cached.
    pub fn cached(&self) -> usize {
        self.replicasets.len()
    }

    /// The workload tags of `pod` with what is known now.
    pub fn tags_of(&self, pod: &Pod) -> Vec<(String, String)> {
        let Some((kind, name)) = controller(pod) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut add = |kind: WorkloadKind, name: &str| {
            if let Some(tag) = self.tags.get(&kind) {
                out.push((tag.clone(), name.to_owned()));
            }
        };
        match kind {
            "StatefulSet" => add(WorkloadKind::StatefulSet, name),
            "DaemonSet" => add(WorkloadKind::DaemonSet, name),
            "ReplicaSet" => {
                add(WorkloadKind::ReplicaSet, name);
                let key = (
                    pod.metadata.namespace.clone().unwrap_or_default(),
                    name.to_owned(),
                );
                if let Some(Some(deployment)) = self.replicasets.get(&key) {
                    add(WorkloadKind::Deployment, deployment);
                }
            }
            _ => {}
        }
        out
    }
}

/// The Deployment owning a ReplicaSet, from the ReplicaSet's owner references.
pub fn deployment_of(
    owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
) -> Option<String> {
    owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
        .filter(|o| o.kind == "Deployment")
        .map(|o| o.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(kind: &str, name: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "shop", "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "0"},
                {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "1", "controller": true},
            ]},
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn all_tags() -> Owners {
        Owners::new(BTreeMap::from([
            (WorkloadKind::Deployment, "deployment".to_owned()),
            (WorkloadKind::StatefulSet, "statefulset".to_owned()),
            (WorkloadKind::DaemonSet, "daemonset".to_owned()),
        ]))
    }

    #[test]
    fn a_deployment_is_found_through_its_replicaset_once_looked_up() {
        let mut owners = all_tags();
        let p = pod("ReplicaSet", "web-5d9");
        assert_eq!(
            owners.lookup_needed(&p),
            Some(("shop".to_owned(), "web-5d9".to_owned()))
        );
        assert_eq!(owners.tags_of(&p), vec![]);
        owners.record_replicaset("shop", "web-5d9", Some("web".to_owned()));
        assert_eq!(owners.lookup_needed(&p), None, "cached: no second call");
        assert_eq!(
            owners.tags_of(&p),
            vec![("deployment".to_owned(), "web".to_owned())]
        );
    }

    #[test]
    fn statefulsets_and_daemonsets_come_from_the_pod_itself() {
        let owners = all_tags();
        for (kind, tag) in [("StatefulSet", "statefulset"), ("DaemonSet", "daemonset")] {
            let p = pod(kind, "db");
            assert_eq!(owners.lookup_needed(&p), None);
            assert_eq!(owners.tags_of(&p), vec![(tag.to_owned(), "db".to_owned())]);
        }
    }

    #[test]
    fn no_lookup_without_a_deployment_tag_and_no_tags_for_other_owners() {
        let owners = Owners::new(BTreeMap::new());
        assert_eq!(owners.lookup_needed(&pod("ReplicaSet", "x")), None);
        assert_eq!(all_tags().tags_of(&pod("Job", "x")), vec![]);
    }

    #[test]
    fn a_replicasets_deployment_is_its_controller_owner_of_kind_deployment() {
        let refs: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> =
            serde_json::from_value(serde_json::json!([
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "1", "controller": true}
            ]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(deployment_of(&refs).as_deref(), Some("web"));
        assert_eq!(deployment_of(&[]), None);
    }
}
