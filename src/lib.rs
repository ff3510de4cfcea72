//! The local lab: the whole autoscaling loop on one machine, no cluster needed.
//!
//! `cargo run --release` starts a Kubernetes API stand-in holding Deployment `app`, the
//! processor (scaling it through `kube` exactly as in a cluster, with the tutorial's
//! TICKscript), a local kubelet that runs each replica as an app instance with its own agent,
//! and an open-loop load generator following a profile. It prints a line per second and ends
//! with a chart and a control-quality summary.
//!
//! # Layout
//! - [`profile`]: load profiles and churn events (pure).
//! - [`loadgen`]: the open-loop generator, also the `load` subcommand against any URL.
//! - [`kubelet`]: replicas from the stand-in's replica count (app + agent, in-process or as
//!   processes).
//! - [`processors`]: the processor, in-process, or replicas as processes electing a leader
//!   (`--processor-replicas`), and the leader kill of the churn profile.
//! - [`task`]: the autoscale task's vars (`--var`) and the loop they make (pure).
//! - [`lab`]: one run, wiring them all; [`view`]: the live lines.
//! - [`score`]: control quality and goals (pure); [`chart`]: the SVG (pure).

pub mod chart;
pub mod kubelet;
pub mod lab;
pub mod loadgen;
pub mod processors;
pub mod profile;
pub mod score;
pub mod task;
pub mod view;
