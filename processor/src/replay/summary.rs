//! What a replay came to: per target the changes, the reversals (a change in the opposite
//! direction of the target's previous change) and the time spent at each replica count; the
//! input's counts; the pipeline's nonzero counters. Pure, ordered (no hash order).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::rfc3339_nanos;
use crate::decisions::{Outcome, Record, RecordTarget};
use crate::pipeline::NodeStats;

use super::Facts;

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub points: Points,
    /// The clock's span: from the first point fed to the last point or decision, whichever is
    /// later (RFC 3339; empty when nothing was fed).
    pub start: String,
    pub end: String,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Pipeline ticks run (one per simulated second, quiet stretches skipped).
    pub ticks: u64,
    /// Decision records (every evaluation of every target).
    pub decisions: u64,
    pub changes: u64,
    pub increases: u64,
    pub decreases: u64,
    pub reversals: u64,
    /// Records of a failed evaluation (`outcome: error`).
    pub errors: u64,
    /// Lines influxDBOut nodes would have written (replay writes none).
    pub influxdb_out_lines: u64,
    /// By target (ordered by namespace, kind, name).
    pub targets: Vec<TargetSummary>,
    /// The pipeline's node-specific counters that are not zero, in node order
    /// (`late_points`, `out_of_order_points`, `future_points`, ...).
    pub counters: Vec<Counter>,
}

/// The input's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Points {
    /// Points of the input (lines skipped are not counted).
    pub read: usize,
    /// Points the task's subscriptions took.
    pub fed: usize,
    /// Points fed with a time before the clock (they arrived late).
    pub out_of_order: usize,
    /// `FILE:LINE` of the first of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_out_of_order: Option<String>,
}

/// One target's part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetSummary {
    pub target: RecordTarget,
    /// Replicas at the start (the first count the scaler read) and at the end.
    pub initial: Option<i64>,
    #[serde(rename = "final")]
    pub last: Option<i64>,
    pub decisions: u64,
    pub changes: u64,
    pub increases: u64,
    pub decreases: u64,
    pub reversals: u64,
    pub errors: u64,
    /// Seconds at each count, by count, over the summary's span.
    pub time_at: Vec<TimeAt>,
}

/// Time spent at one replica count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeAt {
    pub replicas: i64,
    pub seconds: f64,
}

/// One nonzero node counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counter {
    pub node: String,
    pub name: String,
    pub value: u64,
}

#[derive(Default)]
struct Tally {
    initial: Option<i64>,
    count: Option<i64>,
    since: i64,
    decisions: u64,
    increases: u64,
    decreases: u64,
    reversals: u64,
    errors: u64,
    /// The direction of the last change: true = up.
    last_up: Option<bool>,
    time_at: BTreeMap<i64, i64>,
}

/// The summary of `records` (in order) given the run's `facts` and the graph's `stats`.
pub(crate) fn summarize(records: &[Record], facts: &Facts, stats: &[NodeStats]) -> Summary {
    let start = facts.first_ns.unwrap_or(0);
    let end = records
        .iter()
        .map(|r| r.time_ns)
        .chain(facts.last_ns)
        .max()
        .unwrap_or(start)
        .max(start);
    let mut targets: BTreeMap<&RecordTarget, Tally> = BTreeMap::new();
    for record in records {
        let tally = targets.entry(&record.target).or_insert_with(|| Tally {
            since: start,
            ..Tally::default()
        });
        tally.decisions += 1;
        if record.outcome == Outcome::Error {
            tally.errors += 1;
        }
        if tally.count.is_none() {
            tally.count = record.current;
            tally.initial = record.current;
        }
        let up = match record.outcome {
            Outcome::Increased => true,
            Outcome::Decreased => false,
            Outcome::DryRun => record.desired > record.current,
            Outcome::Unchanged | Outcome::Held | Outcome::Error | Outcome::Standby => continue,
        };
        if up {
            tally.increases += 1;
        } else {
            tally.decreases += 1;
        }
        if tally.last_up.is_some_and(|last| last != up) {
            tally.reversals += 1;
        }
        tally.last_up = Some(up);
        let at = record.time_ns.clamp(start, end);
        if let Some(count) = tally.count {
            let spent = tally.time_at.entry(count).or_default();
            *spent = spent.saturating_add(at.saturating_sub(tally.since));
        }
        tally.since = at;
        tally.count = record.desired.or(tally.count);
    }
    let mut summary = Summary {
        points: Points {
            read: facts.points,
            fed: facts.fed,
            out_of_order: facts.out_of_order,
            first_out_of_order: facts.first_out_of_order.as_ref().map(ToString::to_string),
        },
        start: facts.first_ns.map(rfc3339_nanos).unwrap_or_default(),
        end: facts
            .first_ns
            .map(|_| rfc3339_nanos(end))
            .unwrap_or_default(),
        start_ns: start,
        end_ns: end,
        ticks: facts.ticks,
        decisions: records.len() as u64,
        changes: 0,
        increases: 0,
        decreases: 0,
        reversals: 0,
        errors: 0,
        influxdb_out_lines: facts.lines,
        targets: Vec::new(),
        counters: Vec::new(),
    };
    for (target, mut tally) in targets {
        if let Some(count) = tally.count {
            let spent = tally.time_at.entry(count).or_default();
            *spent = spent.saturating_add(end.saturating_sub(tally.since));
        }
        summary.increases += tally.increases;
        summary.decreases += tally.decreases;
        summary.reversals += tally.reversals;
        summary.errors += tally.errors;
        summary.targets.push(TargetSummary {
            target: target.clone(),
            initial: tally.initial,
            last: tally.count,
            decisions: tally.decisions,
            changes: tally.increases + tally.decreases,
            increases: tally.increases,
            decreases: tally.decreases,
            reversals: tally.reversals,
            errors: tally.errors,
            time_at: tally
                .time_at
                .into_iter()
                .map(|(replicas, ns)| TimeAt {
                    replicas,
                    seconds: ns as f64 / 1e9,
                })
                .collect(),
        });
    }
    summary.changes = summary.increases + summary.decreases;
    summary.counters = stats
        .iter()
        .flat_map(|node| {
            node.specific
                .iter()
                .filter(|(_, value)| *value > 0)
                .map(|(name, value)| Counter {
                    node: node.name.clone(),
                    name: (*name).to_owned(),
                    value: *value,
                })
        })
        .collect();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn record(name: &str, t: i64, outcome: Outcome, current: i64, desired: i64) -> Record {
        let mut record = Record::fixture(name, t * S, outcome, current, desired);
        record.node = "k8s_autoscale6".into();
        record.raw = None;
        record
    }

    #[test]
    fn changes_reversals_and_time_at_each_count_add_up_per_target() {
        use Outcome::*;
        let records = [
            record("app", 10, Unchanged, 1, 1),
            record("app", 20, Increased, 1, 3),
            record("other", 25, Increased, 2, 4),
            record("app", 50, Held, 3, 3),
            record("app", 60, Increased, 3, 5),
            record("app", 80, Decreased, 5, 2),
            record("app", 90, Increased, 2, 3),
        ];
        let facts = Facts {
            first_ns: Some(0),
            last_ns: Some(100 * S),
            ..Facts::default()
        };
        let summary = summarize(&records, &facts, &[]);
        assert_eq!(
            (
                summary.changes,
                summary.increases,
                summary.decreases,
                summary.reversals
            ),
            (5, 4, 1, 2)
        );
        let app = &summary.targets[0];
        assert_eq!(app.target.name, "app");
        assert_eq!(
            (app.initial, app.last, app.decisions),
            (Some(1), Some(3), 6)
        );
        let time_at: Vec<(i64, f64)> = app
            .time_at
            .iter()
            .map(|t| (t.replicas, t.seconds))
            .collect();
        // 1 from 0 to 20, 3 from 20 to 60 and 90 to 100, 5 from 60 to 80, 2 from 80 to 90.
        assert_eq!(time_at, vec![(1, 20.0), (2, 10.0), (3, 50.0), (5, 20.0)]);
        let other = &summary.targets[1];
        let time_at: Vec<(i64, f64)> = other
            .time_at
            .iter()
            .map(|t| (t.replicas, t.seconds))
            .collect();
        assert_eq!(time_at, vec![(2, 25.0), (4, 75.0)]);
        assert_eq!(other.reversals, 0);
        assert_eq!((summary.start_ns, summary.end_ns), (0, 100 * S));
    }

    #[test]
    fn nothing_fed_gives_an_empty_summary() {
        let summary = summarize(&[], &Facts::default(), &[]);
        assert_eq!((summary.decisions, summary.changes), (0, 0));
        assert!(summary.start.is_empty() && summary.targets.is_empty());
    }
}
