//! A stand-in for the Kubernetes API server, served on loopback for tests and the local lab.
//!
//! It answers what `kubectl` and the `kube` crate send for scaling workloads: discovery (legacy
//! and aggregated v2, and a minimal OpenAPI v3 without schemas), `apps/v1` Deployments,
//! StatefulSets, ReplicaSets and core ReplicationControllers with their `/scale` and `/status`
//! subresources,
//! `autoscaling/v2` HorizontalPodAutoscalers (stored and listed, never acted on),
//! `coordination.k8s.io/v1` Leases, core and `events.k8s.io/v1` Events, core Pods (stored and
//! watched; nothing runs them); get, list, watch (with bookmarks and 410 Expired), create,
//! update, patch (merge, JSON, strategic merge, apply) and delete; with the API server's Status
//! errors, optimistic concurrency (409 on a stale resourceVersion), bearer tokens (401),
//! RBAC-like rules (403), a request log, injectable faults (any status, delays, writes applied
//! yet answered with an error), and optional
//! https with a CA generated at start.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_standin::{Config, Fault, Server, StatusMode, WorkloadKind};
//! let mut config = Config::default().with_deployment("default", "app", 1);
//! config.status_mode = StatusMode::Manual; // the lab's kubelet reports readiness itself
//! let server = Server::start(config).await?;
//! server.inject(Fault::status(503).times(2).verb("patch").subresource("scale"));
//!
//! // The lab's kubelet: follow spec.replicas, report pods as they become ready.
//! let mut changes = server.subscribe();
//! let change = changes.recv().await?;
//! server.set_status(WorkloadKind::Deployment, "default", "app", change.replicas, change.replicas)?;
//!
//! // Tests: point kube (`kube::Config::new(server.url().parse()?)`) or kubectl
//! // (`--server`, or a file with `server.kubeconfig(token)`) at it, then read what was called.
//! let patched = server.requests().iter().any(|r| r.info.verb == "patch");
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! In the order a request goes through the crate:
//! - `server`: binds, seeds the store, accepts connections; for each request: records it,
//!   authenticates, injects faults, authorizes and reads the body.
//! - `request`: method, path and query → verb, group, resource, subresource, namespace, name.
//! - `auth`: bearer tokens (401) and allow rules (403); `faults`: injected errors and delays.
//! - `routes`: discovery, or a verb on the store, answered as JSON; `discovery`, `table`:
//!   discovery documents and kubectl's server-side Table printing.
//! - `store/`: objects, resourceVersion, generation, 409s, `/status` (pure); `validation`,
//!   `workload` (defaults, status), `scale` (`/scale`), `hpa` (HPA defaults and validation).
//!   `patch`: JSON merge, JSON patch, strategic merge, apply; `selector`: label and field
//!   selectors.
//! - `watch`: change history, watch filters and the `?watch=true` stream.
//! - `status`: the `Status` error objects; `timestamp`: RFC 3339 and kubectl ages.
//! - `handle`: the [`Handle`] tests and the lab hold (request log, faults, rules, workload
//!   state and change subscription).
//! - `config`: [`Config`]; `resources`: the served resource types; `tls`: the generated CA
//!   and serving certificate for https.
//! - `pods`: [`PodSeed`], a pod as tests write it (IP, Ready, node, owner), and the field
//!   labels a pod field selector may use.

pub mod auth;
pub mod config;
pub mod discovery;
pub mod faults;
pub mod handle;
pub mod patch;
pub mod pods;
pub mod request;
pub mod resources;
mod routes;
pub mod selector;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod timestamp;
pub mod tls;
pub mod watch;

pub use auth::{Auth, RoleError, Rule, TokenUser};
pub use config::{Config, ConfigError, WorkloadSeed};
pub use faults::{Fault, FaultMatch};
pub use handle::{Handle, kubeconfig_yaml};
pub use pods::PodSeed;
pub use resources::WorkloadKind;
pub use server::{Error, RequestRecord, Server};
pub use status::ApiError;
pub use store::{StatusMode, WorkloadChange, WorkloadView};
