//! The writer task of one running task ([`spawn`]) and the task loop's side of it
//! ([`Handle`]), which never waits: when the writer's queue is full the lines are dropped,
//! counted in the node's `points_dropped` and warned about at most every
//! [`DROP_WARN_INTERVAL`] ([`DropWarning`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{
    Batch, Buffers, Client, Counters, DROP_WARN_INTERVAL, NodeCounters, Outcome, QUEUE_MESSAGES,
    RETRY_LINES, merge_stats,
};
use crate::pipeline::NodeStats;
use crate::tick::nodes::InfluxDbOutSpec;

/// Rate-limits the "queue full" warning: counts drops and says when to warn, with how many.
#[derive(Debug, Default)]
pub struct DropWarning {
    last: Option<Instant>,
    pending: u64,
}

impl DropWarning {
    /// Records `n` dropped lines at `now`; `Some(total since the last warning)` when a warning
    /// is due (the first drop, then at most once per [`DROP_WARN_INTERVAL`]).
    pub fn record(&mut self, n: usize, now: Instant) -> Option<u64> {
        self.pending += n as u64;
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < DROP_WARN_INTERVAL)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// The task loop's side of its writer: hands lines over without waiting.
pub struct Handle {
    task: String,
    tx: mpsc::Sender<Vec<(usize, String)>>,
    counters: Arc<Counters>,
    warning: DropWarning,
}

impl Handle {
    /// Queues one turn's lines (`(node id, line)`); when the queue is full they are dropped
    /// and counted.
    pub fn send(&mut self, lines: Vec<(usize, String)>, now: Instant) {
        if lines.is_empty() {
            return;
        }
        let Err(error) = self.tx.try_send(lines) else {
            return;
        };
        let lines = match error {
            mpsc::error::TrySendError::Full(l) | mpsc::error::TrySendError::Closed(l) => l,
        };
        for (node, _) in &lines {
            if let Some(c) = self.counters.get(node) {
                NodeCounters::add(&c.points_dropped, 1);
            }
        }
        if let Some(dropped) = self.warning.record(lines.len(), now) {
            tracing::warn!(
                task = %self.task,
                points = dropped,
                "influxDBOut writer queue full (InfluxDB slow or down): points dropped"
            );
        }
    }

    /// Puts the writer's counters into the task's node stats.
    pub fn merge_stats(&self, stats: &mut [NodeStats]) {
        merge_stats(&self.counters, stats);
    }
}

/// Starts the writer of task `task` for its influxDBOut `nodes`. It runs until the returned
/// [`Handle`] is dropped, then flushes what it holds (bounded by [`Client::stop_limit`]).
pub fn spawn(
    task: &str,
    nodes: Vec<(usize, Arc<InfluxDbOutSpec>)>,
    client: Arc<Client>,
) -> (Handle, tokio::task::JoinHandle<()>) {
    let buffers = Buffers::new(nodes, Instant::now(), RETRY_LINES);
    let (tx, rx) = mpsc::channel(QUEUE_MESSAGES);
    let handle = Handle {
        task: task.to_owned(),
        tx,
        counters: buffers.counters(),
        warning: DropWarning::default(),
    };
    let writer = tokio::spawn(run(task.to_owned(), buffers, rx, client));
    (handle, writer)
}

async fn run(
    task: String,
    mut buffers: Buffers,
    mut rx: mpsc::Receiver<Vec<(usize, String)>>,
    client: Arc<Client>,
) {
    loop {
        let next = buffers
            .next_flush()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            message = rx.recv() => match message {
                Some(lines) => {
                    for (node, line) in lines {
                        if !buffers.push(node, line) {
                            tracing::debug!(task = %task, node, "line of an unknown influxDBOut node dropped");
                        }
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(next) => {}
        }
        for batch in buffers.due(Instant::now()) {
            flush(&task, &mut buffers, &client, batch).await;
        }
    }
    let limit = client.stop_limit();
    let batches = buffers.drain();
    let points: usize = batches.iter().map(Batch::points).sum();
    let final_flush = async {
        for batch in batches {
            flush(&task, &mut buffers, &client, batch).await;
        }
    };
    if tokio::time::timeout(limit, final_flush).await.is_err() {
        tracing::error!(task = %task, points, ?limit, "influxDBOut final flush timed out: points lost");
    }
}

async fn flush(task: &str, buffers: &mut Buffers, client: &Client, batch: Batch) {
    for (node, statement) in &batch.create {
        match client.query(&batch.target.cluster, statement).await {
            Ok(()) => {
                buffers.created(*node);
                tracing::info!(task = %task, node, statement = %statement, "influxDBOut created its database");
            }
            Err(error) => {
                tracing::warn!(
                    task = %task,
                    %error,
                    statement = %statement,
                    points = batch.points(),
                    "influxDBOut .create() failed: points kept, both retried at the next flush"
                );
                buffers.finish(batch, Outcome::Retry);
                return;
            }
        }
    }
    let points = batch.points();
    let outcome = match client.write(&batch.target, batch.body()).await {
        Ok(()) => {
            tracing::debug!(task = %task, points, db = %batch.target.database, "influxDBOut wrote");
            Outcome::Written
        }
        Err(error) if error.retryable() => {
            tracing::warn!(task = %task, %error, points, "influxDBOut write failed: points kept for the next flush");
            Outcome::Retry
        }
        Err(error) => {
            tracing::error!(task = %task, %error, points, "influxDBOut write rejected: points dropped");
            Outcome::Rejected
        }
    };
    buffers.finish(batch, outcome);
}

#[cfg(test)]
mod tests {
    use super::super::stand_in::{StandIn, client};
    use super::super::tests::spec;
    use super::*;

    #[test]
    fn queue_full_warnings_come_at_most_once_per_interval_with_the_total() {
        let t0 = Instant::now();
        let mut w = DropWarning::default();
        assert_eq!(w.record(5, t0), Some(5));
        assert_eq!(w.record(2, t0 + Duration::from_secs(1)), None);
        assert_eq!(w.record(3, t0 + Duration::from_secs(9)), None);
        assert_eq!(w.record(1, t0 + DROP_WARN_INTERVAL), Some(6));
    }

    async fn eventually(mut check: impl FnMut() -> bool) -> bool {
        for _ in 0..500 {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn the_writer_flushes_what_it_holds_when_its_task_stops() {
        let live = StandIn::start(204, "").await;
        let c = Arc::new(client(&[&live.url], Duration::from_secs(5)));
        let (mut handle, _writer) = spawn("t", vec![(4, spec("db", 1000, 3600))], c);
        handle.send(
            vec![(4, "m v=1 1".into()), (4, "m v=2 2".into())],
            Instant::now(),
        );
        let counters = Arc::clone(&handle.counters);
        drop(handle);
        assert!(eventually(|| live.requests().len() == 1).await);
        assert_eq!(live.requests()[0].2, "m v=1 1\nm v=2 2\n");
        assert!(eventually(|| counters[&4].specific()[1] == ("points_written", 2)).await);
    }

    #[tokio::test]
    async fn a_stuck_writer_makes_the_task_drop_and_count_lines_without_waiting() {
        let hung = StandIn::start(0, "").await;
        let c = Arc::new(client(&[&hung.url], Duration::from_secs(3600)));
        let (mut handle, _writer) = spawn("t", vec![(1, spec("db", 1, 3600))], c);
        handle.send(vec![(1, "m v=0 0".into())], Instant::now());
        assert!(eventually(|| hung.requests().len() == 1).await);
        for i in 0..QUEUE_MESSAGES + 10 {
            handle.send(vec![(1, format!("m v={i} {i}"))], Instant::now());
        }
        assert_eq!(handle.counters[&1].specific()[0], ("points_dropped", 10));
    }
}
