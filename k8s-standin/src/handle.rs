//! The [`Handle`] tests and the lab hold on a running stand-in: its address and kubeconfig, the
//! request log, faults, rules and tokens, workloads' state and changes, stored objects, shutdown.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::auth::Rule;
use crate::faults::Fault;
use crate::resources::{self, ResourceDef, WorkloadKind};
use crate::server::{RequestRecord, Shared, def_of, describe, namespace_of, now_secs};
use crate::status::{ApiError, Result as ApiResult};
use crate::store::{WorkloadChange, WorkloadView, WriteOptions};

/// A running stand-in; dropping it stops the server.
pub struct Handle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Handle {
    /// The handle on a server that `task` runs until `stop` says true.
    pub(crate) fn new(
        shared: Arc<Shared>,
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    ) -> Self {
        Handle {
            shared,
            stop,
            task: Some(task),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://…` when serving TLS.
    pub fn url(&self) -> String {
        let scheme = if self.shared.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.shared.addr)
    }

    /// The CA certificate (PEM) clients must trust, when serving TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.shared.ca_pem.clone()
    }

    /// A kubeconfig for kubectl or kube (`Kubeconfig::from_yaml`): one cluster, context and user
    /// named `standin`, namespace `default`, with the bearer token when given and the CA when
    /// serving TLS.
    pub fn kubeconfig(&self, token: Option<&str>) -> String {
        kubeconfig_yaml(&self.url(), token, self.shared.ca_pem.as_deref())
    }

    /// Every request so far (the last `Config::request_log_limit`), in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.iter().cloned().collect()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// The distinct (api group, resource incl. subresource, verb) triples of resource requests
    /// that were allowed, to compare with a Role.
    pub fn permissions_used(&self) -> BTreeSet<(String, String, String)> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.info.is_resource_request && r.status != 401 && r.status != 403)
            .map(|r| {
                (
                    r.info.api_group.clone(),
                    r.rbac_resource(),
                    r.info.verb.clone(),
                )
            })
            .collect()
    }

    /// Adds a fault (earlier faults take precedence).
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Removes the faults whose matcher is `matching`, e.g. every fault on one client
    /// (`&Fault::status(503).user("a").matching`), leaving the others armed.
    pub fn clear_faults_matching(&self, matching: &crate::faults::FaultMatch) {
        self.shared.lock().faults.clear_matching(matching);
    }

    /// How many faults are still armed.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// Replaces the authorization rules (`None` allows everything).
    pub fn set_rules(&self, rules: Option<Vec<Rule>>) {
        self.shared.lock().auth.rules = rules;
    }

    /// Accepts another bearer token (turns authentication on if it was off).
    pub fn add_token(&self, token: &str, user: &str) {
        self.shared.lock().auth.tokens.push(crate::auth::TokenUser {
            token: token.to_string(),
            user: user.to_string(),
        });
    }

    /// A workload's replicas, status, generation and resourceVersion.
    pub fn workload(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Option<WorkloadView> {
        self.shared.lock().store.workload(kind, namespace, name)
    }

    /// Shorthand for a Deployment's spec.replicas.
    pub fn deployment_replicas(&self, namespace: &str, name: &str) -> Option<i64> {
        self.workload(WorkloadKind::Deployment, namespace, name)
            .map(|w| w.replicas)
    }

    /// Changes spec.replicas as another actor would (bumps resourceVersion and generation).
    pub fn set_replicas(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i64,
    ) -> ApiResult<()> {
        let written =
            self.shared
                .lock()
                .store
                .set_replicas(kind, namespace, name, replicas, now_secs())?;
        self.shared.notify(written.change);
        Ok(())
    }

    /// Sets status as the lab's kubelet: `replicas` pods, `ready` of them ready.
    pub fn set_status(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i64,
        ready: i64,
    ) -> ApiResult<()> {
        self.shared
            .lock()
            .store
            .set_status(kind, namespace, name, replicas, ready, now_secs())
            .map(|_| ())
    }

    /// Changes of workloads' spec.replicas from now on (API writes and `set_replicas`).
    pub fn subscribe(&self) -> broadcast::Receiver<WorkloadChange> {
        self.shared.changes.subscribe()
    }

    /// Every stored object of a resource, e.g. `resources::CORE_EVENTS`, with kind.
    pub fn objects(&self, def: &ResourceDef) -> Vec<Value> {
        self.shared.lock().store.objects_of(def)
    }

    /// One stored object, with kind and apiVersion.
    pub fn object(&self, def: &ResourceDef, namespace: &str, name: &str) -> Option<Value> {
        self.shared.lock().store.get(def, namespace, name).ok()
    }

    /// Core v1 and events.k8s.io/v1 Events, in that order.
    pub fn events(&self) -> Vec<Value> {
        let state = self.shared.lock();
        let mut out = state.store.objects_of(&resources::CORE_EVENTS);
        out.extend(state.store.objects_of(&resources::EVENTS_V1));
        out
    }

    /// Creates an object (full manifest; namespace `default` when unset).
    pub fn create(&self, object: Value) -> ApiResult<Value> {
        let def = def_of(&object).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{} is of a kind the stand-in does not serve",
                describe(&object)
            ))
        })?;
        let ns = namespace_of(&object).to_string();
        let written =
            self.shared
                .lock()
                .store
                .create(def, &ns, object, WriteOptions::at(now_secs()))?;
        self.shared.notify(written.change);
        Ok(written.object)
    }

    /// Creates or replaces a pod, status included (as its kubelet would report it).
    pub fn apply_pod(&self, pod: &crate::pods::PodSeed) -> ApiResult<Value> {
        self.shared.lock().store.put(
            &resources::PODS,
            &pod.namespace,
            pod.to_object(),
            now_secs(),
        )
    }

    /// Deletes a pod at once (no grace period).
    pub fn delete_pod(&self, namespace: &str, name: &str) -> ApiResult<()> {
        self.shared
            .lock()
            .store
            .delete(&resources::PODS, namespace, name)
            .map(|_| ())
    }

    /// Ends every open watch stream now, mid-stream, as a restarting API server or a broken
    /// connection would; clients must watch again from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.shared.drop_watches.send_modify(|n| *n += 1);
    }

    /// Forgets the change history (etcd's compaction): a watch resuming from a resourceVersion
    /// before now gets 410 Expired and must list again.
    pub fn compact_history(&self) {
        self.shared.lock().store.compact_history();
    }

    /// Stops accepting, lets open connections finish within the grace period, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The kubeconfig text for a server URL, optional token and optional CA (PEM).
pub fn kubeconfig_yaml(url: &str, token: Option<&str>, ca_pem: Option<&str>) -> String {
    use base64::Engine as _;
    let ca = match ca_pem {
        Some(pem) => format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => String::new(),
    };
    let user = match token {
        Some(t) => format!("  user:\n    token: {t:?}\n"),
        None => "  user: {}\n".to_string(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {url}\n{ca}contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n    namespace: default\ncurrent-context: standin\npreferences: {{}}\nusers:\n- name: standin\n{user}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_server_and_token() {
        let text = kubeconfig_yaml("http://127.0.0.1:1", Some("abc"), None);
        assert!(text.contains("server: http://127.0.0.1:1\n"));
        assert!(text.contains("token: \"abc\"\n"));
        assert!(!text.contains("certificate-authority-data"));
        assert!(kubeconfig_yaml("http://x", None, None).contains("user: {}\n"));
        let tls = kubeconfig_yaml("https://x", None, Some("PEM"));
        assert!(tls.contains("certificate-authority-data: UEVN\n"));
    }
}
