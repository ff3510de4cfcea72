//! The pipeline nodes this processor runs, their properties (typed) and Kapacitor's defaults.
//!
//! Each node is built once the whole script is read, from its constructor arguments
//! (`|derivative('counter')`) and its properties (`.unit(1s)`) in source order; a property
//! set twice keeps the last value (as Kapacitor), except `influxDBOut().tag(k, v)`, which adds.
//!
//! # Layout
//! - `kind.rs`: [`NodeKind`], what `|method(...)` creates, and Kapacitor's node names.
//! - `check.rs`: the arguments and properties as bound ([`Arg`]), checked one by one with errors
//!   that name the node and the property.
//! - `build.rs`: arguments and properties -> [`NodeSpec`], per node, with the defaults.
//! - `outputs.rs`: the same for influxDBOut, the node that writes to InfluxDB.
//! - `autoscale.rs`: the same for k8sAutoscale, Kapacitor's properties and our extensions.
//! - `spec.rs`: [`NodeSpec`], each node's validated properties, as the pipeline runs them.

mod autoscale;
mod build;
mod check;
mod kind;
mod outputs;
mod spec;

pub use build::MAX_MOVING_AVERAGE_COUNT;
pub(crate) use build::build;
pub use check::Arg;
pub(crate) use check::RawProperty;
pub use kind::{AggregateFn, NodeKind, SUPPORTED_NODES};
pub use outputs::MAX_INFLUXDB_OUT_BUFFER;
pub use spec::{
    AggregateSpec, DerivativeSpec, Dimensions, EvalSpec, FromSpec, GroupBySpec, HttpOutSpec,
    InfluxDbOutSpec, K8sAutoscaleSpec, Keep, LogLevel, LogSpec, MovingAverageSpec, NodeSpec,
    WhereSpec, WindowSpec, default_influxdb_out_buffer, default_influxdb_out_flush_interval,
};
