//! The Kapacitor-compatible stream processor: InfluxDB write API, TICKscript tasks, scaling.
//!
//! # Layout
//! Nothing is built yet; the modules arrive with their issues (write API, TICKscript, scaling).
