//! The Telegraf-compatible sidecar: scrapes Prometheus endpoints and pushes line protocol.
//!
//! # Layout
//! - [`runtime`]: the agent loop ([`Agent`]): schedules, gathers, buffers, flushes, retries.
//! - [`telemetry`]: the agent's own metrics (`--metrics-listen`).
//! - [`prom`]: the exposition parser (pure, nom, no IO): Prometheus text 0.0.4 and OpenMetrics
//!   1.0 text in, metric families out, and a renderer back to text.
//! - [`config`]: Telegraf's TOML (the subset implemented; the rest is reported by name).
//! - [`filter`]: namepass/namedrop/tagpass/... with Telegraf's globs.
//! - [`convert`]: parsed families to metrics, as Telegraf's metric_version 1 and 2.
//! - [`transform`]: an input's per-metric rules (filters, renames, tags, time rounding).
//! - [`metric`]: a metric between conversion and serialisation, borrowing from the scrape.
//! - [`line_protocol`]: Telegraf's exact line-protocol serializer.
//! - [`buffer`]: the per-output ring buffer (drops the oldest, counts drops).
//! - [`scrape`]: HTTP GET with timeouts, credentials and content negotiation.
//! - [`output`]: the influxdb (v1 `/write`) and file outputs; [`backoff`] paces retries.
//! - [`http_client`]: the HTTP(S) client with the plugins' TLS settings.

// Several engineers add modules here at once: edit this file in place, never rewrite it.
pub mod backoff;
pub mod buffer;
pub mod config;
pub mod convert;
pub mod filter;
pub mod http_client;
pub mod line_protocol;
pub mod metric;
pub mod output;
pub mod prom;
pub mod runtime;
pub mod scrape;
pub mod telemetry;
pub mod transform;

pub use runtime::Agent;
