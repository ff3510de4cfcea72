//! Decision records: what every evaluation of a k8sAutoscale target saw, what each rule did,
//! and what came of it. The k8sAutoscale node makes them ([`crate::pipeline::autoscale`]) from
//! the point and the scaler's answer; the task runtime keeps them in a bounded ring per
//! target, served by `GET /kapacitor/v1/decisions`, printed by `processor decisions` and by
//! `processor replay`.
//!
//! # Layout
//! - [`record`]: the [`Record`] and its parts, as JSON.
//! - [`log`]: a task's records, a bounded ring per target ([`DecisionLog`]).

pub mod log;
pub mod record;

pub use log::DecisionLog;
pub use record::{Contributor, Inputs, Outcome, Record, RecordTarget};
