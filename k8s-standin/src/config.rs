//! What a stand-in serves: listen address, seeded workloads and objects, auth, faults.

use std::net::SocketAddr;

use serde_json::Value;

use crate::auth::Auth;
use crate::faults::Fault;
use crate::resources::WorkloadKind;
use crate::store::StatusMode;

/// A configuration value that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A workload seed is not `namespace/name=replicas`.
    #[error(
        "invalid workload {text:?}: {reason} (expected namespace/name=replicas, e.g. default/app=1)"
    )]
    Workload { text: String, reason: &'static str },
}

/// A workload created at start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkloadSeed {
    /// Deployment, StatefulSet, ReplicaSet or ReplicationController.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name (also its `app` label and selector).
    pub name: String,
    /// spec.replicas, pods.
    pub replicas: i64,
}

impl WorkloadSeed {
    /// Builds one.
    pub fn new(kind: WorkloadKind, namespace: &str, name: &str, replicas: i64) -> Self {
        WorkloadSeed {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            replicas,
        }
    }

    /// Parses `namespace/name=replicas` (`name=replicas` means namespace `default`).
    pub fn parse(kind: WorkloadKind, text: &str) -> Result<Self, ConfigError> {
        let err = |reason| ConfigError::Workload {
            text: text.to_string(),
            reason,
        };
        let (target, replicas) = text
            .split_once('=')
            .ok_or_else(|| err("missing =replicas"))?;
        let replicas: i64 = replicas
            .trim()
            .parse()
            .ok()
            .filter(|r| (0..=i64::from(i32::MAX)).contains(r))
            .ok_or_else(|| err("replicas must be a whole number >= 0"))?;
        let (namespace, name) = target.split_once('/').unwrap_or(("default", target));
        if namespace.is_empty() || name.is_empty() {
            return Err(err("empty namespace or name"));
        }
        Ok(WorkloadSeed::new(kind, namespace, name, replicas))
    }
}

/// The stand-in's configuration (also readable from a JSON file by the binary).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on; keep it on loopback, port 0 picks a free port.
    pub listen: SocketAddr,
    /// Workloads created at start (labels and selector `app: <name>`), already running: their
    /// status shows every replica ready, whatever the status mode.
    pub workloads: Vec<WorkloadSeed>,
    /// Other objects created at start, full manifests (apiVersion, kind, metadata.namespace).
    pub objects: Vec<Value>,
    /// Tokens and RBAC-like rules.
    pub auth: Auth,
    /// How workload status follows spec.replicas.
    pub status_mode: StatusMode,
    /// The Kubernetes minor version `/version` claims (1.x).
    pub minor_version: u32,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Grace period for open connections at shutdown, milliseconds.
    pub shutdown_grace_ms: u64,
    /// Requests kept in the request log, the oldest dropped first.
    pub request_log_limit: usize,
    /// Changes kept for watches resuming from a resourceVersion, events; older ones get
    /// 410 Expired.
    pub watch_history: usize,
    /// How often a watch that asked for bookmarks (`allowWatchBookmarks=true`) gets a BOOKMARK
    /// event with the current resourceVersion, milliseconds (the API server: about a minute).
    #[serde(default = "default_watch_bookmark_ms")]
    pub watch_bookmark_ms: u64,
    /// Serve https with a CA generated at start (`Handle::ca_pem`, and in `Handle::kubeconfig`);
    /// kubectl sends bearer tokens only over TLS.
    pub tls: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn default_minor_version() -> u32 {
    32
}

fn default_max_body_bytes() -> usize {
    3 * 1024 * 1024
}

fn default_request_log_limit() -> usize {
    100_000
}

fn default_watch_history() -> usize {
    crate::watch::HISTORY
}

fn default_watch_bookmark_ms() -> u64 {
    60_000
}

fn default_shutdown_grace_ms() -> u64 {
    2_000
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            workloads: Vec::new(),
            objects: Vec::new(),
            auth: Auth::default(),
            status_mode: StatusMode::default(),
            minor_version: default_minor_version(),
            faults: Vec::new(),
            max_body_bytes: default_max_body_bytes(),
            shutdown_grace_ms: default_shutdown_grace_ms(),
            request_log_limit: default_request_log_limit(),
            watch_history: default_watch_history(),
            watch_bookmark_ms: default_watch_bookmark_ms(),
            tls: false,
        }
    }
}

impl Config {
    /// Adds a workload.
    pub fn with_workload(
        mut self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i64,
    ) -> Self {
        self.workloads
            .push(WorkloadSeed::new(kind, namespace, name, replicas));
        self
    }

    /// Adds a Deployment.
    pub fn with_deployment(self, namespace: &str, name: &str, replicas: i64) -> Self {
        self.with_workload(WorkloadKind::Deployment, namespace, name, replicas)
    }

    /// Requires `Authorization: Bearer <token>`, authenticating as `user`.
    pub fn with_token(mut self, token: &str, user: &str) -> Self {
        self.auth.tokens.push(crate::auth::TokenUser {
            token: token.to_string(),
            user: user.to_string(),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_seeds_parse_with_and_without_namespace() {
        assert_eq!(
            WorkloadSeed::parse(WorkloadKind::Deployment, "prod/web=3"),
            Ok(WorkloadSeed::new(
                WorkloadKind::Deployment,
                "prod",
                "web",
                3
            ))
        );
        assert_eq!(
            WorkloadSeed::parse(WorkloadKind::StatefulSet, "db=1"),
            Ok(WorkloadSeed::new(
                WorkloadKind::StatefulSet,
                "default",
                "db",
                1
            ))
        );
        assert!(WorkloadSeed::parse(WorkloadKind::Deployment, "app").is_err());
        assert!(WorkloadSeed::parse(WorkloadKind::Deployment, "a/b=-1").is_err());
        assert!(WorkloadSeed::parse(WorkloadKind::Deployment, "/b=1").is_err());
    }

    #[test]
    fn the_example_config_parses_and_uses_every_section() {
        let text = include_str!("../examples/standin.json");
        let config: Result<Config, _> = serde_json::from_str(text);
        let Ok(config) = config else {
            panic!("{config:?}")
        };
        assert_eq!(config.workloads.len(), 2);
        assert_eq!(config.objects.len(), 1);
        assert_eq!(config.auth.tokens.len(), 1);
        assert_eq!(config.auth.rules.as_ref().map(Vec::len), Some(3));
        assert_eq!(config.faults.len(), 2);
        assert_eq!(config.status_mode, StatusMode::Immediate);
    }

    #[test]
    fn a_json_config_file_parses_with_defaults() {
        let text = r#"{"workloads": [{"kind": "deployment", "namespace": "default", "name": "app", "replicas": 2}],
            "auth": {"tokens": [{"token": "t", "user": "u"}]},
            "faults": [{"status": 503, "times": 2}]}"#;
        let config: Result<Config, _> = serde_json::from_str(text);
        let Ok(config) = config else {
            panic!("{config:?}")
        };
        assert_eq!(config.workloads.len(), 1);
        assert_eq!(config.minor_version, 32);
        assert_eq!(config.listen, default_listen());
        assert_eq!(config.faults.first().and_then(|f| f.status), Some(503));
        let bad: Result<Config, _> = serde_json::from_str(r#"{"listn": "127.0.0.1:0"}"#);
        assert!(bad.is_err());
    }
}
