//! A stand-in for the Kubernetes API server, served on loopback for tests and the local lab.
//!
//! It answers what `kubectl` and the `kube` crate send for scaling workloads: discovery,
//! `apps/v1` Deployments, StatefulSets, ReplicaSets and core ReplicationControllers with their
//! `/scale` and `/status` subresources, `coordination.k8s.io/v1` Leases, core and
//! `events.k8s.io/v1` Events; with the API server's Status errors, optimistic concurrency,
//! bearer tokens, RBAC-like rules, a request log and injectable faults.
//!
//! ```no_run
//! # async fn demo() -> Result<(), k8s_standin::Error> {
//! use k8s_standin::{Config, Fault, Server};
//! let server = Server::start(Config::default().with_deployment("default", "app", 1)).await?;
//! server.inject(Fault::status(503).times(2).verb("patch").subresource("scale"));
//! // … point kubectl (--server) or kube (Config::new(url)) at server.url() …
//! let calls = server.requests();
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `server`: the HTTP edge and the [`Handle`] tests and the lab hold (request log, faults,
//!   rules, workload state and change subscription).
//! - `request`: method + path → verb, group, resource, subresource, namespace, name.
//! - `auth`: bearer tokens (401) and allow rules (403); `faults`: injected errors and delays.
//! - `store`: objects, resourceVersion, generation, defaults, `/scale`, `/status` (pure).
//! - `patch`: JSON merge, JSON patch, strategic merge, apply; `selector`: label selectors.
//! - `watch`: change history and watch filters behind `?watch=true` streams.
//! - `discovery`, `table`: discovery documents and kubectl's server-side Table printing.
//! - `status`: the `Status` error objects; `timestamp`: RFC 3339 and kubectl ages.
//! - `config`: [`Config`]; `resources`: the served resource types; `tls`: the generated CA
//!   and serving certificate for https.

pub mod auth;
pub mod config;
pub mod discovery;
pub mod faults;
pub mod patch;
pub mod request;
pub mod resources;
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
pub use resources::WorkloadKind;
pub use server::{Error, Handle, RequestRecord, Server, kubeconfig_yaml};
pub use status::ApiError;
pub use store::{StatusMode, WorkloadChange, WorkloadView};
