//! Decision records: what every evaluation of a k8sAutoscale target saw, what each rule did,
//! and what came of it. The k8sAutoscale node makes them ([`crate::pipeline::autoscale`]) from
//! the point and the scaler's answer; the task runtime keeps them in a bounded ring per
//! target, served by `GET /kapacitor/v1/decisions?task=ID[&limit=N]`, printed by
//! `processor decisions ID` and by `processor replay`, and counted for `/metrics`.
//!
//! # Layout
//! - [`record`]: the [`Record`] and its parts, as JSON.
//! - [`log`]: a task's records, a bounded ring per target ([`DecisionLog`]).
//! - [`metrics`]: a task's figures per target for `/metrics` ([`DecisionMetrics`]).

pub mod log;
pub mod metrics;
pub mod record;

pub use log::DecisionLog;
pub use metrics::DecisionMetrics;
pub use record::{Contributor, Inputs, Outcome, Record, RecordTarget};

/// Records `GET /kapacitor/v1/decisions` answers when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` a decisions request may name.
pub const MAX_LIMIT: usize = 10_000;
