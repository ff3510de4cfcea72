//! What the task API reads, in Kapacitor's JSON shapes: a task with its stats and DOT graph,
//! an httpOut node's rows as a series, the counts and node stats of `/debug/vars` and
//! `/metrics`, and the RFC 3339 times Kapacitor writes.

use crate::clock;
use crate::decisions::metrics::TargetMetrics;

use crate::pipeline::{HttpRows, NodeStats};
use crate::tick::{self, DotStats, Node};

use super::{DbrpJson, Entry, Error, Result, TaskMaster, all_dbrps, executing};

/// What the task API reads.
impl TaskMaster {
    /// One task in Kapacitor's JSON shape, with stats and the DOT graph.
    pub fn get(&self, id: &str) -> Result<serde_json::Value> {
        let tasks = self.lock();
        let entry = tasks
            .get(id)
            .ok_or_else(|| Error::NotFound(id.to_owned()))?;
        Ok(task_json(entry))
    }

    /// Every task, by id.
    pub fn list(&self) -> serde_json::Value {
        let tasks = self.lock();
        serde_json::json!({ "tasks": tasks.values().map(task_json).collect::<Vec<_>>() })
    }

    /// The latest points of an httpOut node as `{"series": [...]}`.
    pub fn http_out(&self, id: &str, endpoint: &str) -> Option<serde_json::Value> {
        let tasks = self.lock();
        let data = tasks.get(id)?.running.as_ref()?.shared.http_out(endpoint)?;
        drop(tasks);
        let rows = data.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let series: Vec<serde_json::Value> = rows.values().map(rows_json).collect();
        Some(serde_json::json!({ "series": series }))
    }

    /// Up to `limit` decision records of task `id`, newest first (none while it is
    /// disabled: records live with the running task).
    pub fn decisions(&self, id: &str, limit: usize) -> Result<Vec<crate::decisions::Record>> {
        let shared = {
            let tasks = self.lock();
            let entry = tasks
                .get(id)
                .ok_or_else(|| Error::NotFound(id.to_owned()))?;
            entry
                .running
                .as_ref()
                .map(|running| std::sync::Arc::clone(&running.shared))
        };
        // Read without the task lock: a task may hold many thousand records.
        Ok(shared
            .map(|shared| shared.decisions(limit))
            .unwrap_or_default())
    }

    /// The decisions' figures per target of every running task: `(task, targets)`.
    pub fn decision_metrics(&self) -> Vec<(String, Vec<TargetMetrics>)> {
        let running: Vec<_> = self
            .lock()
            .iter()
            .filter_map(|(id, e)| {
                let running = e.running.as_ref()?;
                Some((id.clone(), std::sync::Arc::clone(&running.shared)))
            })
            .collect();
        running
            .into_iter()
            .map(|(id, shared)| (id, shared.decision_metrics()))
            .filter(|(_, targets)| !targets.is_empty())
            .collect()
    }

    /// `(tasks, enabled tasks, subscriptions)` for `/kapacitor/v1/debug/vars`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let tasks = self.lock();
        let enabled = tasks.values().filter(|e| executing(e)).count();
        let subs = tasks
            .values()
            .filter_map(|e| e.running.as_ref())
            .map(|r| r.subscriptions.len())
            .sum();
        (tasks.len(), enabled, subs)
    }

    /// Node stats of every running task: `(task, stats)`.
    pub fn node_stats(&self) -> Vec<(String, Vec<NodeStats>, u64)> {
        self.lock()
            .iter()
            .filter_map(|(id, e)| {
                let running = e.running.as_ref()?;
                Some((id.clone(), running.shared.stats(), running.shared.dropped()))
            })
            .collect()
    }
}

/// One task as `GET /kapacitor/v1/tasks/<id>` answers it.
pub(super) fn task_json(entry: &Entry) -> serde_json::Value {
    let def = &entry.def;
    let (stats, throughput) = match &entry.running {
        Some(r) => (r.shared.stats(), r.shared.throughput()),
        None => (Vec::new(), 0.0),
    };
    let dot = match &entry.pipeline {
        Some(p) if entry.running.is_some() => p.dot_with_stats(
            &def.id,
            &StatsView {
                stats: &stats,
                throughput,
            },
        ),
        Some(p) => p.dot(&def.id),
        None => tick::compile(&def.script, &def.vars)
            .map(|p| p.dot(&def.id))
            .unwrap_or_default(),
    };
    let node_stats: serde_json::Map<String, serde_json::Value> = stats
        .iter()
        .map(|s| {
            let mut m = serde_json::Map::new();
            m.insert("avg_exec_time_ns".into(), s.avg_exec_time_ns.into());
            m.insert("collected".into(), s.collected.into());
            m.insert("emitted".into(), s.emitted.into());
            m.insert("errors".into(), s.errors.into());
            m.insert("working_cardinality".into(), s.working_cardinality.into());
            for (k, v) in &s.specific {
                m.insert((*k).into(), (*v).into());
            }
            (s.name.clone(), serde_json::Value::Object(m))
        })
        .collect();
    serde_json::json!({
        "link": {"rel": "self", "href": format!("/kapacitor/v1/tasks/{}", def.id)},
        "id": def.id,
        "template-id": "",
        "type": def.kind,
        "dbrps": dbrps_json(entry),
        "script": def.script,
        "vars": def.vars,
        "dot": dot,
        "status": def.status,
        "executing": executing(entry),
        "error": entry
            .running
            .as_ref()
            .and_then(|r| r.shared.failure())
            .unwrap_or_else(|| entry.error.clone()),
        "stats": {
            "task-stats": {"throughput": throughput},
            "node-stats": node_stats,
        },
        "created": def.created,
        "modified": def.modified,
        "last-enabled": def.last_enabled,
    })
}

/// The task's dbrps as Kapacitor lists them: those of the define call, then the script's.
fn dbrps_json(entry: &Entry) -> Vec<DbrpJson> {
    let Some(pipeline) = &entry.pipeline else {
        return entry.def.dbrps.clone();
    };
    all_dbrps(&entry.def, pipeline)
        .into_iter()
        .map(|d| DbrpJson {
            db: d.database,
            rp: d.retention_policy,
        })
        .collect()
}

struct StatsView<'a> {
    stats: &'a [NodeStats],
    throughput: f64,
}

impl DotStats for StatsView<'_> {
    fn graph(&self) -> Vec<(String, String)> {
        vec![(
            "throughput".into(),
            format!("{:.2} points/s", self.throughput),
        )]
    }
    fn node(&self, node: &Node) -> Vec<(String, String)> {
        let Some(stats) = self.stats.get(node.id) else {
            return Vec::new();
        };
        let mut attrs = vec![(
            "avg_exec_time_ns".to_string(),
            tick::value::format_go_duration(i64::try_from(stats.avg_exec_time_ns).unwrap_or(0)),
        )];
        attrs.extend(
            stats
                .specific
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.to_string())),
        );
        attrs
    }
    fn edge(&self, _parent: &Node, child: &Node) -> Vec<(String, String)> {
        let processed = self.stats.get(child.id).map_or(0, |s| s.collected);
        vec![("processed".into(), processed.to_string())]
    }
}

/// One group of an httpOut node as a series, as Kapacitor's: `time` then the fields in order
/// of first appearance (`null` where a point lacks one), one row per point.
pub(super) fn rows_json(rows: &HttpRows) -> serde_json::Value {
    let mut names: Vec<&str> = Vec::new();
    for point in &rows.points {
        for (k, _) in &point.fields {
            if !names.contains(&&**k) {
                names.push(k);
            }
        }
    }
    let columns: Vec<serde_json::Value> = std::iter::once("time")
        .chain(names.iter().copied())
        .map(|c| serde_json::json!(c))
        .collect();
    let values: Vec<serde_json::Value> = rows
        .points
        .iter()
        .map(|p| {
            let row: Vec<serde_json::Value> =
                std::iter::once(serde_json::json!(clock::rfc3339_nanos(p.time)))
                    .chain(
                        names
                            .iter()
                            .map(|n| p.field(n).map_or(serde_json::Value::Null, |v| v.to_json())),
                    )
                    .collect();
            serde_json::Value::Array(row)
        })
        .collect();
    let mut series = serde_json::json!({
        "name": &*rows.name,
        "columns": columns,
        "values": values,
    });
    if !rows.group.dims.is_empty()
        && let Some(obj) = series.as_object_mut()
    {
        let tags: serde_json::Map<String, serde_json::Value> = rows
            .group
            .dims
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(&**v)))
            .collect();
        obj.insert("tags".into(), serde_json::Value::Object(tags));
    }
    series
}
