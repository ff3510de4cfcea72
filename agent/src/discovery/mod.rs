//! Kubernetes pod discovery (`monitor_kubernetes_pods = true`): the pods to scrape, found
//! through the API server as Telegraf's `kubernetes.go` finds them, kept in a [`TargetSet`]
//! the input's gathers read.
//!
//! # Layout
//! - [`targets`]: a pod to its scrape URL and tags, or why it waits, or a warning naming the
//!   pod and the annotation (pure);
//! - [`owners`]: a pod's owning workload as tags, the ReplicaSet cache (pure);
//! - [`watch`]: the IO: the kube client, `kube::runtime`'s watcher (list, watch, resume,
//!   relist on 410 Gone, backoff), one GET per new ReplicaSet, and the [`TargetSet`] updates.

pub mod owners;
pub mod targets;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Why discovery cannot reach the API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `kube_config` could not be read or used.
    #[error("kube_config {path}")]
    KubeConfig {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No in-cluster service account, `$KUBECONFIG` or `~/.kube/config`.
    #[error("no Kubernetes client configuration (in-cluster, $KUBECONFIG or ~/.kube/config)")]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
}

/// A `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The discovered targets of one input, by pod (`namespace/name`): written by the watcher,
/// read at every gather. `T` is what the input scrapes (the URL and its tags, prepared).
#[derive(Debug)]
pub struct TargetSet<T> {
    targets: Mutex<BTreeMap<String, Arc<T>>>,
}

impl<T> Default for TargetSet<T> {
    fn default() -> Self {
        TargetSet {
            targets: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<T> TargetSet<T> {
    /// The targets now, in pod order.
    pub fn snapshot(&self) -> Vec<Arc<T>> {
        self.lock().values().cloned().collect()
    }

    /// The pods scraped now (`namespace/name`).
    pub fn pods(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Sets a pod's target; true if the pod is new.
    pub fn insert(&self, pod: String, target: T) -> bool {
        self.lock().insert(pod, Arc::new(target)).is_none()
    }

    /// Removes a pod's target; true if it was there.
    pub fn remove(&self, pod: &str) -> bool {
        self.lock().remove(pod).is_some()
    }

    /// Replaces every target (after a list).
    pub fn replace_all(&self, targets: BTreeMap<String, Arc<T>>) {
        *self.lock() = targets;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<T>>> {
        self.targets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
