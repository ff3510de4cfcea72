//! A replay as text: the decision records (a table, or one JSON object per line) then the
//! summary. Records that changed nothing coalesce as the decision log does ([`coalesce`]), so
//! a day of one decision per second prints as its changes and the runs between them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::decisions::{Record, RecordTarget};
use crate::scaler::decision::describe_steps;

use super::Replay;
use super::summary::Summary;

/// The records with every run of equal records of one target that changed nothing (the
/// decision log's [`Record::same_as`]) folded into its first, `repeated` counting the run.
pub fn coalesce(records: &[Record]) -> Vec<Record> {
    let mut rows: Vec<Record> = Vec::new();
    // The row of each target's latest record.
    let mut latest: BTreeMap<(&str, &RecordTarget), usize> = BTreeMap::new();
    for record in records {
        let key = (record.node.as_str(), &record.target);
        if let Some(row) = latest.get(&key).and_then(|&i| rows.get_mut(i))
            && row.same_as(record)
        {
            row.repeated = row.repeated.saturating_add(record.repeated);
            continue;
        }
        latest.insert(key, rows.len());
        rows.push(record.clone());
    }
    rows
}

/// `namespace/kind/name` (`kind/name` for the processor's own namespace).
fn target(target: &RecordTarget) -> String {
    let mut text = String::new();
    if !target.cluster.is_empty() {
        let _ = write!(text, "{}:", target.cluster);
    }
    if !target.namespace.is_empty() {
        let _ = write!(text, "{}/", target.namespace);
    }
    let _ = write!(text, "{}/{}", target.kind, target.name);
    text
}

/// The records as a table, then the summary.
pub fn table(replay: &Replay) -> String {
    let rows: Vec<[String; 7]> = coalesce(&replay.records)
        .iter()
        .map(|r| {
            let replicas = match (r.current, r.desired) {
                (Some(c), Some(d)) if c != d => format!("{c} -> {d}"),
                (Some(c), _) => c.to_string(),
                (None, _) => "-".to_owned(),
            };
            let raw = r
                .raw
                .map_or_else(|| "-".to_owned(), |raw| format!("{raw:.2}"));
            let rules = match &r.error {
                Some(error) => format!("error: {error}"),
                None => describe_steps(&r.rules),
            };
            let repeated = if r.repeated > 1 {
                format!("x{}", r.repeated)
            } else {
                String::new()
            };
            [
                r.time.clone(),
                target(&r.target),
                r.outcome.name().to_owned(),
                replicas,
                raw,
                rules,
                repeated,
            ]
        })
        .collect();
    let header = [
        "TIME", "TARGET", "OUTCOME", "REPLICAS", "RAW", "RULES", "REPEATED",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out.push('\n');
    out.push_str(&summary_text(&replay.summary));
    out
}

/// The records as JSON lines, then `{"summary": ...}` on the last line.
pub fn json_lines(replay: &Replay) -> String {
    let mut out = String::new();
    for record in coalesce(&replay.records) {
        out.push_str(&serde_json::to_string(&record).unwrap_or_default());
        out.push('\n');
    }
    let summary = serde_json::json!({ "summary": &replay.summary });
    out.push_str(&summary.to_string());
    out.push('\n');
    out
}

fn duration(seconds: f64) -> String {
    let whole = Duration::from_secs(seconds.max(0.0).round() as u64);
    if whole.is_zero() {
        return "0s".to_owned();
    }
    humantime::format_duration(whole).to_string()
}

/// The summary as text.
pub fn summary_text(summary: &Summary) -> String {
    let mut out = String::from("Summary\n");
    let points = &summary.points;
    let _ = write!(
        out,
        "  points     {} read, {} fed to the task, {} out of order",
        points.read, points.fed, points.out_of_order
    );
    if let Some(first) = &points.first_out_of_order {
        let _ = write!(out, " (first at {first})");
    }
    out.push('\n');
    if !summary.start.is_empty() {
        let span = summary.end_ns.saturating_sub(summary.start_ns) as f64 / 1e9;
        let _ = writeln!(
            out,
            "  span       {} to {} ({})",
            summary.start,
            summary.end,
            duration(span)
        );
    }
    let _ = writeln!(
        out,
        "  decisions  {}: {} changes ({} increases, {} decreases), {} reversals, {} errors",
        summary.decisions,
        summary.changes,
        summary.increases,
        summary.decreases,
        summary.reversals,
        summary.errors
    );
    if summary.influxdb_out_lines > 0 {
        let _ = writeln!(
            out,
            "  influxDBOut {} lines (not written)",
            summary.influxdb_out_lines
        );
    }
    if !summary.counters.is_empty() {
        let counters: Vec<String> = summary
            .counters
            .iter()
            .map(|c| format!("{} {}={}", c.node, c.name, c.value))
            .collect();
        let _ = writeln!(out, "  pipeline   {}", counters.join(", "));
    }
    let span_ns = summary.end_ns.saturating_sub(summary.start_ns).max(0);
    for t in &summary.targets {
        let count = |n: Option<i64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
        let _ = writeln!(
            out,
            "  {}: {} -> {} replicas, {} changes ({} up, {} down), {} reversals, {} errors",
            target(&t.target),
            count(t.initial),
            count(t.last),
            t.changes,
            t.increases,
            t.decreases,
            t.reversals,
            t.errors
        );
        if !t.time_at.is_empty() {
            let _ = writeln!(out, "    {:<9} {:<16} share", "replicas", "time");
        }
        for at in &t.time_at {
            let share = if span_ns > 0 {
                at.seconds * 1e9 / span_ns as f64 * 100.0
            } else {
                0.0
            };
            let _ = writeln!(
                out,
                "    {:<9} {:<16} {share:.1}%",
                at.replicas,
                duration(at.seconds)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decisions::Outcome;

    fn record(t: i64, outcome: Outcome, current: i64, desired: i64) -> Record {
        let mut record = Record::fixture("app", t, outcome, current, desired);
        record.time = format!("t{t}");
        record.node = "k8s_autoscale6".into();
        record
    }

    #[test]
    fn runs_that_change_nothing_fold_into_their_first_record_and_changes_never_do() {
        use Outcome::*;
        let rows = coalesce(&[
            record(1, Unchanged, 1, 1),
            record(2, Unchanged, 1, 1),
            record(3, Increased, 1, 2),
            record(4, Increased, 2, 3),
            record(5, Unchanged, 3, 3),
            record(6, Unchanged, 3, 3),
            record(7, Unchanged, 3, 3),
        ]);
        let shown: Vec<(i64, Outcome, u64)> = rows
            .iter()
            .map(|r| (r.time_ns, r.outcome, r.repeated))
            .collect();
        assert_eq!(
            shown,
            vec![
                (1, Unchanged, 2),
                (3, Increased, 1),
                (4, Increased, 1),
                (5, Unchanged, 3)
            ]
        );
    }
}
