//! The DOT graph of a pipeline, as `kapacitor show` prints it.
//!
//! Without stats (a task that is not running): one `parent -> child;` line per edge. With stats:
//! a `graph [...]` line, then per node `name [key="value" ...];` (keys sorted, each followed by a
//! space, as Kapacitor) and its edges `name -> child [processed="N"];`.

use std::fmt::Write;

use super::compiled::{Node, Pipeline};

/// Supplies the attributes of a running pipeline; values are already formatted
/// (e.g. `avg_exec_time_ns` as a Go duration string, see
/// [`format_go_duration`](super::value::format_go_duration)).
pub trait DotStats {
    /// Graph attributes, e.g. `throughput` = `0.00 points/s`.
    fn graph(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Node attributes (any order; rendered sorted by key).
    fn node(&self, node: &Node) -> Vec<(String, String)>;
    /// Edge attributes, e.g. `processed` = the count of points sent from `parent` to `child`.
    fn edge(&self, parent: &Node, child: &Node) -> Vec<(String, String)>;
}

/// Renders the graph without stats.
pub struct NoStats;

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Pipeline {
    /// `digraph <task_id> { stream0 -> from1; ... }`, as shown for a task without stats.
    pub fn dot(&self, task_id: &str) -> String {
        let mut out = format!("digraph {task_id} {{\n");
        for (parent, child) in self.edges() {
            let _ = writeln!(out, "{} -> {};", parent.name, child.name);
        }
        out.push('}');
        out
    }

    /// The graph with stats, as `kapacitor show` prints a running task.
    pub fn dot_with_stats(&self, task_id: &str, stats: &dyn DotStats) -> String {
        let mut out = format!("digraph {task_id} {{\n");
        let graph = stats.graph();
        if !graph.is_empty() {
            let attrs: Vec<String> = graph
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "graph [{}];", attrs.join(" "));
        }
        for node in &self.nodes {
            let mut attrs = stats.node(node);
            attrs.sort_by(|a, b| a.0.cmp(&b.0));
            let _ = write!(out, "\n{} [", node.name);
            for (k, v) in &attrs {
                let _ = write!(out, "{k}=\"{}\" ", escape(v));
            }
            out.push_str("];");
            for child in node.children.iter().filter_map(|c| self.nodes.get(*c)) {
                let edge: Vec<String> = stats
                    .edge(node, child)
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                if edge.is_empty() {
                    let _ = write!(out, "\n{} -> {};", node.name, child.name);
                } else {
                    let _ = write!(
                        out,
                        "\n{} -> {} [{}];",
                        node.name,
                        child.name,
                        edge.join(" ")
                    );
                }
            }
        }
        out.push_str("\n}");
        out
    }
}

impl DotStats for NoStats {
    fn node(&self, _: &Node) -> Vec<(String, String)> {
        Vec::new()
    }
    fn edge(&self, _: &Node, _: &Node) -> Vec<(String, String)> {
        Vec::new()
    }
}
