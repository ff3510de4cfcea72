//! The Telegraf-compatible sidecar: scrapes Prometheus endpoints and pushes line protocol.
//!
//! # Layout
//! - [`prom`]: the exposition parser (pure, nom, no IO): Prometheus text 0.0.4 and OpenMetrics
//!   1.0 text in, metric families out, and a renderer back to text.

// Several engineers add modules here at once: edit this file in place, never rewrite it.
pub mod prom;
