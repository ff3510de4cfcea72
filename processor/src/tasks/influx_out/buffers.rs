//! The writer's pure core, time passed in: per influxDBOut node the lines not yet sent, the
//! lines of failed writes kept for the next flush, the next interval flush and whether
//! `.create()` still has to run; due nodes with the same [`Target`] share one [`Batch`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Counters, NodeCounters, Target};
use crate::tick::nodes::InfluxDbOutSpec;

/// InfluxQL's identifier quoting (`influxql.QuoteIdent`).
fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What `.create()` sends, as Kapacitor: `CREATE DATABASE "db" [WITH NAME "rp"]`.
pub fn create_statement(spec: &InfluxDbOutSpec) -> String {
    let mut statement = format!("CREATE DATABASE {}", quote_ident(&spec.database));
    if !spec.retention_policy.is_empty() {
        statement.push_str(" WITH NAME ");
        statement.push_str(&quote_ident(&spec.retention_policy));
    }
    statement
}

struct NodeBuffer {
    target: Target,
    /// `.buffer()`.
    size: usize,
    /// Failed lines kept at most.
    retry_limit: usize,
    interval: Duration,
    /// Lines not sent yet, oldest first.
    fresh: Vec<String>,
    /// Lines of failed writes, oldest first.
    failed: VecDeque<String>,
    next_flush: Instant,
    /// `.create()` has yet to succeed: its statement.
    create: Option<String>,
}

/// Lines for one POST: every due node with this target.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub target: Target,
    /// `(node, its lines)`, each node's oldest first.
    pub parts: Vec<(usize, Vec<String>)>,
    /// `(node, statement)`: `.create()` statements to run before the write.
    pub create: Vec<(usize, String)>,
}

impl Batch {
    pub fn points(&self) -> usize {
        self.parts.iter().map(|(_, lines)| lines.len()).sum()
    }

    /// The lines, newline-separated.
    pub fn body(&self) -> String {
        let mut body = String::with_capacity(
            self.parts
                .iter()
                .flat_map(|(_, l)| l)
                .map(|l| l.len() + 1)
                .sum(),
        );
        for line in self.parts.iter().flat_map(|(_, lines)| lines) {
            body.push_str(line);
            body.push('\n');
        }
        body
    }
}

/// How a batch's write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Written,
    /// Keep the lines for the next flush.
    Retry,
    /// Drop the lines (InfluxDB refused them).
    Rejected,
}

/// The writer's pure core (see the module documentation).
pub struct Buffers {
    nodes: BTreeMap<usize, NodeBuffer>,
    counters: Arc<Counters>,
}

impl Buffers {
    /// Buffers for `nodes` (`(node id, spec)`); the first interval flush is one
    /// `.flushInterval()` after `now`. Failed lines kept per node: `retry_lines` or its
    /// `.buffer()`, whichever is larger.
    pub fn new(
        nodes: impl IntoIterator<Item = (usize, Arc<InfluxDbOutSpec>)>,
        now: Instant,
        retry_lines: usize,
    ) -> Buffers {
        let mut counters = Counters::new();
        let nodes = nodes
            .into_iter()
            .map(|(id, spec)| {
                counters.insert(id, NodeCounters::default());
                let buffer = NodeBuffer {
                    target: Target::of(&spec),
                    size: spec.buffer.max(1),
                    retry_limit: retry_lines.max(spec.buffer),
                    interval: spec.flush_interval.max(Duration::from_millis(1)),
                    fresh: Vec::new(),
                    failed: VecDeque::new(),
                    next_flush: now + spec.flush_interval.max(Duration::from_millis(1)),
                    create: spec.create.then(|| create_statement(&spec)),
                };
                (id, buffer)
            })
            .collect();
        Buffers {
            nodes,
            counters: Arc::new(counters),
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Adds a line of node `node`; false if there is no such influxDBOut node.
    pub fn push(&mut self, node: usize, line: String) -> bool {
        match self.nodes.get_mut(&node) {
            Some(n) => {
                n.fresh.push(line);
                true
            }
            None => false,
        }
    }

    /// Lines waiting (new and failed) for `node`.
    pub fn held(&self, node: usize) -> usize {
        self.nodes
            .get(&node)
            .map_or(0, |n| n.fresh.len() + n.failed.len())
    }

    /// The earliest interval flush.
    pub fn next_flush(&self) -> Option<Instant> {
        self.nodes.values().map(|n| n.next_flush).min()
    }

    /// Takes the lines of every node that is due at `now`: `.buffer()` new lines waiting, or
    /// its `.flushInterval()` passed (then its next one is scheduled). Failed lines go with
    /// the node's next flush, before its new ones.
    pub fn due(&mut self, now: Instant) -> Vec<Batch> {
        self.take(|n| {
            let timer = now >= n.next_flush;
            if timer {
                n.next_flush += n.interval;
                if n.next_flush <= now {
                    n.next_flush = now + n.interval;
                }
            }
            timer || n.fresh.len() >= n.size
        })
    }

    /// Takes every line (the task stopped).
    pub fn drain(&mut self) -> Vec<Batch> {
        self.take(|_| true)
    }

    fn take(&mut self, mut due: impl FnMut(&mut NodeBuffer) -> bool) -> Vec<Batch> {
        let mut batches: BTreeMap<Target, Batch> = BTreeMap::new();
        for (id, n) in &mut self.nodes {
            if !due(n) || (n.fresh.is_empty() && n.failed.is_empty()) {
                continue;
            }
            let mut lines: Vec<String> = n.failed.drain(..).collect();
            lines.append(&mut n.fresh);
            let batch = batches.entry(n.target.clone()).or_insert_with(|| Batch {
                target: n.target.clone(),
                parts: Vec::new(),
                create: Vec::new(),
            });
            batch.parts.push((*id, lines));
            if let Some(statement) = &n.create {
                batch.create.push((*id, statement.clone()));
            }
        }
        batches.into_values().collect()
    }

    /// `.create()` of `node` succeeded: not sent again.
    pub fn created(&mut self, node: usize) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.create = None;
        }
    }

    /// Counts a batch's outcome; on [`Outcome::Retry`] its lines wait for the node's next
    /// flush, the oldest beyond the retry bound dropped.
    pub fn finish(&mut self, batch: Batch, outcome: Outcome) {
        for (id, lines) in batch.parts {
            let Some(counters) = self.counters.get(&id) else {
                continue;
            };
            match outcome {
                Outcome::Written => NodeCounters::add(&counters.points_written, lines.len()),
                Outcome::Rejected => NodeCounters::add(&counters.write_errors, 1),
                Outcome::Retry => {
                    NodeCounters::add(&counters.write_errors, 1);
                    let Some(n) = self.nodes.get_mut(&id) else {
                        continue;
                    };
                    let mut kept: VecDeque<String> = lines.into();
                    kept.append(&mut n.failed);
                    let excess = kept.len().saturating_sub(n.retry_limit);
                    kept.drain(..excess);
                    NodeCounters::add(&counters.points_dropped, excess);
                    n.failed = kept;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::RETRY_LINES;
    use super::super::tests::spec;
    use super::*;

    fn lines(batch: &Batch) -> Vec<&str> {
        batch
            .parts
            .iter()
            .flat_map(|(_, l)| l)
            .map(String::as_str)
            .collect()
    }

    fn counter(buffers: &Buffers, node: usize) -> [(&'static str, u64); 3] {
        buffers.counters()[&node].specific()
    }

    #[test]
    fn a_node_flushes_when_its_buffer_fills_and_not_before() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(3, spec("db", 3, 10))], t0, RETRY_LINES);
        b.push(3, "m v=1 1".into());
        b.push(3, "m v=2 2".into());
        assert!(b.due(t0 + Duration::from_secs(1)).is_empty());
        b.push(3, "m v=3 3".into());
        let due = b.due(t0 + Duration::from_secs(1));
        assert_eq!(due.len(), 1);
        assert_eq!(lines(&due[0]), ["m v=1 1", "m v=2 2", "m v=3 3"]);
        assert_eq!(due[0].body(), "m v=1 1\nm v=2 2\nm v=3 3\n");
        assert_eq!(b.held(3), 0);
    }

    #[test]
    fn a_node_flushes_every_interval_whatever_it_holds() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 1000, 10))], t0, RETRY_LINES);
        assert_eq!(b.next_flush(), Some(t0 + Duration::from_secs(10)));
        b.push(1, "m v=1 1".into());
        assert!(b.due(t0 + Duration::from_secs(9)).is_empty());
        let due = b.due(t0 + Duration::from_secs(10));
        assert_eq!(lines(&due[0]), ["m v=1 1"]);
        assert_eq!(b.next_flush(), Some(t0 + Duration::from_secs(20)));
        // an empty interval sends nothing; a long stall does not replay missed ticks
        assert!(b.due(t0 + Duration::from_secs(75)).is_empty());
        assert_eq!(b.next_flush(), Some(t0 + Duration::from_secs(85)));
    }

    #[test]
    fn due_nodes_with_the_same_target_share_one_post_and_others_get_their_own() {
        let t0 = Instant::now();
        let mut b = Buffers::new(
            [
                (1, spec("a", 1, 10)),
                (2, spec("a", 1, 10)),
                (3, spec("b", 1, 10)),
            ],
            t0,
            RETRY_LINES,
        );
        b.push(1, "x v=1 1".into());
        b.push(2, "y v=1 1".into());
        b.push(3, "z v=1 1".into());
        let due = b.due(t0);
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].target.database, "a");
        assert_eq!(lines(&due[0]), ["x v=1 1", "y v=1 1"]);
        assert_eq!(due[1].target.database, "b");
    }

    #[test]
    fn a_failed_write_is_sent_again_first_at_the_next_flush_and_counted() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 2, 10))], t0, RETRY_LINES);
        b.push(1, "m v=1 1".into());
        b.push(1, "m v=2 2".into());
        let batch = b.due(t0).remove(0);
        b.finish(batch, Outcome::Retry);
        assert_eq!(b.held(1), 2);
        // one new line neither fills the buffer nor is the interval over: the retry waits
        b.push(1, "m v=3 3".into());
        assert!(b.due(t0 + Duration::from_secs(1)).is_empty());
        let batch = b.due(t0 + Duration::from_secs(10)).remove(0);
        assert_eq!(lines(&batch), ["m v=1 1", "m v=2 2", "m v=3 3"]);
        b.finish(batch, Outcome::Written);
        assert_eq!(
            counter(&b, 1),
            [
                ("points_dropped", 0),
                ("points_written", 3),
                ("write_errors", 1)
            ]
        );
    }

    #[test]
    fn retried_lines_beyond_the_bound_drop_the_oldest_and_count_them() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 2, 10))], t0, 3);
        for i in 0..2 {
            b.push(1, format!("m v={i} {i}"));
        }
        let batch = b.due(t0).remove(0);
        b.finish(batch, Outcome::Retry);
        for i in 2..4 {
            b.push(1, format!("m v={i} {i}"));
        }
        let batch = b.due(t0).remove(0);
        assert_eq!(batch.points(), 4);
        b.finish(batch, Outcome::Retry);
        assert_eq!(b.held(1), 3);
        let batch = b.due(t0 + Duration::from_secs(10)).remove(0);
        assert_eq!(lines(&batch), ["m v=1 1", "m v=2 2", "m v=3 3"]);
        assert_eq!(counter(&b, 1)[0], ("points_dropped", 1));
        assert_eq!(counter(&b, 1)[2], ("write_errors", 2));
    }

    #[test]
    fn the_retry_bound_is_never_below_one_buffer() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 5, 10))], t0, 2);
        for i in 0..5 {
            b.push(1, format!("m v={i} {i}"));
        }
        let batch = b.due(t0).remove(0);
        b.finish(batch, Outcome::Retry);
        assert_eq!(b.held(1), 5);
        assert_eq!(counter(&b, 1)[0], ("points_dropped", 0));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(usize),
        Due(u64),
        Finish(usize, u8),
        Drain,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0usize..3).prop_map(Op::Push),
            2 => (0u64..15).prop_map(Op::Due),
            2 => (0usize..4, 0u8..3).prop_map(|(i, o)| Op::Finish(i, o)),
            1 => Just(Op::Drain),
        ]
    }

    proptest::proptest! {
        /// Every line pushed is written, rejected, dropped and counted, in flight or held:
        /// never lost silently, never duplicated.
        #[test]
        fn every_line_is_accounted_for(ops in proptest::collection::vec(op(), 0..200)) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut b = Buffers::new(
                [(0, spec("a", 3, 5)), (1, spec("a", 2, 7)), (2, spec("b", 4, 3))],
                t0,
                6,
            );
            let (mut pushed, mut rejected) = (0u64, 0u64);
            let mut in_flight: Vec<Batch> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(node) => {
                        let line = format!("m v={pushed} {pushed}");
                        proptest::prop_assert!(b.push(node, line));
                        pushed += 1;
                    }
                    Op::Due(secs) => {
                        now += Duration::from_secs(secs);
                        in_flight.extend(b.due(now));
                    }
                    Op::Drain => in_flight.extend(b.drain()),
                    Op::Finish(i, outcome) => {
                        if i < in_flight.len() {
                            let batch = in_flight.remove(i);
                            let outcome = match outcome {
                                0 => Outcome::Written,
                                1 => Outcome::Retry,
                                _ => {
                                    rejected += batch.points() as u64;
                                    Outcome::Rejected
                                }
                            };
                            b.finish(batch, outcome);
                        }
                    }
                }
                let counters = b.counters();
                let written: u64 = counters.values().map(|c| c.specific()[1].1).sum();
                let dropped: u64 = counters.values().map(|c| c.specific()[0].1).sum();
                let held: usize = (0..3).map(|n| b.held(n)).sum();
                let flying: usize = in_flight.iter().map(Batch::points).sum();
                proptest::prop_assert_eq!(
                    pushed,
                    written + dropped + rejected + held as u64 + flying as u64
                );
            }
        }
    }

    #[test]
    fn a_rejected_write_is_counted_and_not_retried() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 1, 10))], t0, RETRY_LINES);
        b.push(1, "m v=1 1".into());
        let batch = b.due(t0).remove(0);
        b.finish(batch, Outcome::Rejected);
        assert_eq!(b.held(1), 0);
        assert!(b.due(t0 + Duration::from_secs(10)).is_empty());
        assert_eq!(counter(&b, 1)[2], ("write_errors", 1));
    }

    #[test]
    fn create_is_asked_for_until_it_succeeds() {
        let t0 = Instant::now();
        let mut create = (*spec("my \"db\"", 1, 10)).clone();
        create.create = true;
        create.retention_policy = "rp".into();
        let mut b = Buffers::new([(1, Arc::new(create))], t0, RETRY_LINES);
        b.push(1, "m v=1 1".into());
        let batch = b.due(t0).remove(0);
        assert_eq!(
            batch.create,
            [(
                1,
                r#"CREATE DATABASE "my \"db\"" WITH NAME "rp""#.to_owned()
            )]
        );
        b.finish(batch, Outcome::Retry);
        let batch = b.due(t0 + Duration::from_secs(10)).remove(0);
        assert_eq!(batch.create.len(), 1);
        b.created(1);
        b.finish(batch, Outcome::Written);
        b.push(1, "m v=2 2".into());
        assert!(
            b.due(t0 + Duration::from_secs(11))
                .remove(0)
                .create
                .is_empty()
        );
    }

    #[test]
    fn drain_takes_everything_held() {
        let t0 = Instant::now();
        let mut b = Buffers::new([(1, spec("db", 100, 10))], t0, RETRY_LINES);
        b.push(1, "m v=1 1".into());
        assert!(b.due(t0).is_empty());
        assert_eq!(b.drain()[0].points(), 1);
        assert!(b.drain().is_empty());
    }

    #[test]
    fn lines_of_an_unknown_node_are_refused() {
        let mut b = Buffers::new([(1, spec("db", 1, 10))], Instant::now(), RETRY_LINES);
        assert!(!b.push(2, "m v=1 1".into()));
    }
}
