//! influxDBOut's writer. Each running task with influxDBOut nodes gets one tokio task that
//! buffers the lines its nodes emit and POSTs them to the `[[influxdb]]` sections, so a slow or
//! dead InfluxDB never stalls the task's pipeline.
//!
//! # Layout
//! In the order lines go through them:
//! - `writer`: [`Handle`], the task loop's side, which never waits: when the writer's queue is
//!   full the lines are dropped, counted in the node's `points_dropped` and warned about at
//!   most every [`DROP_WARN_INTERVAL`] ([`DropWarning`]); [`spawn`] starts the writer task,
//!   which feeds the buffers and sends what they say is due.
//! - `buffers`: [`Buffers`], the pure core, time passed in. Per node: the lines not yet sent,
//!   the lines of failed writes kept for the next flush (at most [`RETRY_LINES`] or one
//!   `.buffer()`, oldest dropped and counted), the next interval flush, whether `.create()`
//!   still has to run. A node's lines are flushed when `.buffer()` of them are waiting or
//!   every `.flushInterval()` (Kapacitor's semantics); due nodes that write to the same
//!   (cluster, database, retention policy, precision, consistency) share one POST
//!   ([`Batch`]).
//! - `client`: [`Client`], the HTTP edge: `/write` and `/query` over a section's URLs, with
//!   failover (connection error, timeout or 5xx: the next URL; the last URL that answered goes
//!   first), Basic auth and the section's timeout.
//! - this module: what they share: [`Error`], [`Target`], the node counters
//!   ([`NodeCounters`], [`merge_stats`]) and the limits.
//! - `stand_in` (tests only): a loopback InfluxDB.

mod buffers;
mod client;
#[cfg(test)]
mod stand_in;
mod writer;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::pipeline::NodeStats;
use crate::tick::nodes::InfluxDbOutSpec;

pub use buffers::{Batch, Buffers, Outcome, create_statement};
pub use client::Client;
pub use writer::{DropWarning, Handle, spawn};

/// Messages (one per task-loop turn, each holding that turn's lines) queued for the writer
/// before lines are dropped.
pub const QUEUE_MESSAGES: usize = 1024;

/// Lines of failed writes a node keeps for the next flush (Telegraf's `metric_buffer_limit`
/// default), or its `.buffer()` if that is larger; beyond it the oldest are dropped and
/// counted in `points_dropped`.
pub const RETRY_LINES: usize = 10_000;

/// At most one "queue full" warning per task this often.
pub const DROP_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Why a request to InfluxDB failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no enabled [[influxdb]] section named {0:?}")]
    NoCluster(String),
    #[error("no enabled [[influxdb]] section is marked default (or is the only one)")]
    NoDefault,
    /// Connection error, timeout or 5xx on every URL (the last one's reason): retried.
    #[error("{url}: {reason}")]
    Unavailable { url: String, reason: String },
    /// A 4xx: the request itself is wrong; not retried.
    #[error("{url} answered {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    /// `/query` answered 200 but the statement failed.
    #[error("{url}: {statement}: {message}")]
    Statement {
        url: String,
        statement: String,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the same request may succeed later (InfluxDB down, slow or overloaded).
    pub fn retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

/// Where a node's points go: one POST per distinct target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// `.cluster()`; empty: the default section.
    pub cluster: String,
    pub database: String,
    /// Empty: InfluxDB's default retention policy.
    pub retention_policy: String,
    /// `.precision()`; empty: nanoseconds.
    pub precision: String,
    /// `.writeConsistency()`; empty: not sent.
    pub consistency: String,
}

impl Target {
    fn of(spec: &InfluxDbOutSpec) -> Target {
        Target {
            cluster: spec.cluster.clone(),
            database: spec.database.clone(),
            retention_policy: spec.retention_policy.clone(),
            precision: spec.precision.v1_param().to_owned(),
            consistency: spec.write_consistency.clone(),
        }
    }

    /// `/write?db=..[&rp=..][&precision=..][&consistency=..]`.
    pub fn write_path(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("db", &self.database);
        if !self.retention_policy.is_empty() {
            query.append_pair("rp", &self.retention_policy);
        }
        // InfluxDB 1.x reads `us` as nanoseconds: microseconds are sent as `u`.
        match self.precision.as_str() {
            "" | "n" | "ns" => {}
            "u" | "us" | "µ" | "µs" => {
                query.append_pair("precision", "u");
            }
            other => {
                query.append_pair("precision", other);
            }
        }
        if !self.consistency.is_empty() {
            query.append_pair("consistency", &self.consistency);
        }
        format!("/write?{}", query.finish())
    }
}

/// One influxDBOut node's counters, shown in its node stats.
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Points InfluxDB accepted (Kapacitor's `points_written`).
    pub points_written: AtomicU64,
    /// Failed writes (and failed `.create()` statements), Kapacitor's `write_errors`.
    pub write_errors: AtomicU64,
    /// Points this processor gave up on: the writer's queue was full, or the retry bound.
    pub points_dropped: AtomicU64,
}

impl NodeCounters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `(name, value)` in name order, as `NodeStats::specific`.
    pub fn specific(&self) -> [(&'static str, u64); 3] {
        [
            (
                "points_dropped",
                self.points_dropped.load(Ordering::Relaxed),
            ),
            (
                "points_written",
                self.points_written.load(Ordering::Relaxed),
            ),
            ("write_errors", self.write_errors.load(Ordering::Relaxed)),
        ]
    }
}

/// Counters of every influxDBOut node of a task, by node id.
pub type Counters = BTreeMap<usize, NodeCounters>;

/// Puts the writer's counters into the influxDBOut nodes' stats (by node id).
pub fn merge_stats(counters: &Counters, stats: &mut [NodeStats]) {
    for (id, node) in counters {
        if let Some(s) = stats.get_mut(*id) {
            s.specific.retain(|(k, _)| {
                !matches!(*k, "points_dropped" | "points_written" | "write_errors")
            });
            s.specific.extend(node.specific());
            s.specific.sort_by_key(|(k, _)| *k);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// An influxDBOut node writing to `db` at second precision.
    pub(super) fn spec(db: &str, buffer: usize, flush_secs: u64) -> Arc<InfluxDbOutSpec> {
        Arc::new(InfluxDbOutSpec {
            database: db.to_owned(),
            retention_policy: String::new(),
            measurement: String::new(),
            cluster: String::new(),
            precision: crate::line_protocol::Precision::Seconds,
            tags: BTreeMap::new(),
            create: false,
            buffer,
            flush_interval: Duration::from_secs(flush_secs),
            write_consistency: String::new(),
        })
    }

    #[test]
    fn the_write_url_carries_rp_precision_and_consistency_as_influxdb_reads_them() {
        let mut target = Target::of(&spec("d b", 1, 1));
        assert_eq!(target.write_path(), "/write?db=d+b&precision=s");
        target.retention_policy = "autogen".into();
        target.precision = "us".into();
        target.consistency = "quorum".into();
        assert_eq!(
            target.write_path(),
            "/write?db=d+b&rp=autogen&precision=u&consistency=quorum"
        );
        target.precision = String::new();
        assert_eq!(
            target.write_path(),
            "/write?db=d+b&rp=autogen&consistency=quorum"
        );
    }

    #[test]
    fn merged_stats_replace_earlier_values_and_keep_name_order() {
        let counters = Counters::from([(1, NodeCounters::default())]);
        NodeCounters::add(&counters[&1].points_written, 1);
        let mut stats = vec![NodeStats::default(), NodeStats::default()];
        stats[1].specific = vec![("other", 7)];
        merge_stats(&counters, &mut stats);
        merge_stats(&counters, &mut stats);
        assert_eq!(
            stats[1].specific,
            [
                ("other", 7),
                ("points_dropped", 0),
                ("points_written", 1),
                ("write_errors", 0)
            ]
        );
        assert!(stats[0].specific.is_empty());
    }
}
