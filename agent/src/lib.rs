//! The Telegraf-compatible sidecar: scrapes Prometheus endpoints and pushes line protocol.
//!
//! # Layout
//! Nothing is built yet; the modules arrive with their issues (parser, then the agent).
