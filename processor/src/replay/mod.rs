//! `processor replay`: recorded line protocol through a task's pipeline and the scaling
//! decision, on a simulated clock, against a simulated target; the decision records and a
//! summary out. Pure: no wall clock, no IO, no hash-order output, so the same input always
//! gives the same output.
//!
//! # The simulated clock
//! - Points are fed in the input's order (see [`input`]); only those the task's `from` nodes
//!   subscribe to (as the router would deliver them for the given db.rp) are fed or clocked.
//! - Each point arrives at its own time: the clock is the latest time fed so far. A point
//!   older than the clock (out of order) arrives at the clock, late, as a live processor
//!   would receive it: the pipeline's rules for late points apply (`late_points`,
//!   `out_of_order_points`), and the summary counts such points and names the first one.
//! - Consecutive points that arrive at the same clock reading form one write request (one
//!   delivery to the task); a live processor batches by request instead.
//! - The pipeline is ticked at every whole second of the clock, before the points that
//!   arrive at or after it, as the task's 1-s ticker does live: lateness, expiry, warm-up and
//!   `.fallbackAfter()` behave as they would. After the last point the clock runs on for
//!   `lateness`, so the last aligned times are emitted. Once nothing has arrived for longer
//!   than `state-expiry + series-expiry + lateness` (every state is freed by then), the ticks
//!   up to the next point are skipped: nothing is due in a quiet pipeline.
//! - Scale intents are carried out as the task loop does: at most one call per
//!   (node, target) at a time, a newer intent replacing one that waits
//!   ([`crate::tasks::scale_calls`]); each call is decided at once by a [`DryRunScaler`] on the
//!   simulated clock, which applies every change to its simulated target (starting at
//!   `--replicas`, or the node's `min`). A change is recorded as `increased`/`decreased`,
//!   since the simulated target takes it.
//!
//! # Layout
//! - [`input`]: files -> points with their file and line; skipped lines; the feeding order.
//! - this file: [`run`]: the clock, ticks, the pipeline and the scale calls.
//! - [`summary`]: changes, reversals, time at each replica count, the pipeline's counters.
//! - [`render`]: the records as a table or JSON lines, and the summary.
//! - [`command`]: the `processor replay` subcommand (reads the files, prints, exit codes).

pub mod command;
pub mod input;
pub mod render;
pub mod summary;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::decisions::{Outcome, Record};
use crate::pipeline::{self, Effect, Graph, Point, Settings};
use crate::point::PointRef;
use crate::routing::Key;
use crate::scaler::ScaleIntent;
use crate::scaler::dry_run::DryRunScaler;
use crate::tasks::scale_calls::{self, ScaleCalls};
use crate::tick::{Dbrp, Pipeline};

pub use input::{Place, Recording, Skipped, Source};
pub use summary::Summary;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Pipeline(#[from] pipeline::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One second of the simulated clock, ns.
const SECOND: i64 = 1_000_000_000;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The database and retention policy the recorded points were written to.
    pub dbrp: Dbrp,
    /// Replicas every target starts at; `None`: its node's `min`.
    pub replicas: Option<i64>,
    /// The `[pipeline]` timings (lateness, expiries, future limit).
    pub settings: Settings,
    /// Skip the ticks of a quiet pipeline (see the module docs); off only to check that
    /// skipping them changes nothing.
    pub skip_quiet_ticks: bool,
}

impl Options {
    /// The defaults for points written to `dbrp`.
    pub fn new(dbrp: Dbrp) -> Options {
        Options {
            dbrp,
            replicas: None,
            settings: Settings::default(),
            skip_quiet_ticks: true,
        }
    }
}

/// What a replay gives.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Every decision record, in the order they were made (not coalesced).
    pub records: Vec<Record>,
    pub summary: Summary,
}

/// Facts of the run the summary reports besides the records.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    /// Points of the input (after skipped lines).
    pub points: usize,
    /// Points fed to the task (its subscriptions matched).
    pub fed: usize,
    pub out_of_order: usize,
    pub first_out_of_order: Option<Place>,
    /// Clock of the first and last points fed, ns.
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// Pipeline ticks run.
    pub ticks: u64,
    /// Lines influxDBOut nodes would have written.
    pub lines: u64,
}

/// Replays `recording` through `pipeline` (task `task`) with `options`.
pub fn run(
    task: &str,
    pipeline: &Pipeline,
    recording: &Recording,
    options: &Options,
) -> Result<Replay> {
    let keys = pipeline.subscription_keys(std::slice::from_ref(&options.dbrp));
    let settings = options.settings;
    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    let lateness = nanos(settings.lateness);
    let quiet = nanos(settings.state_expiry)
        .saturating_add(nanos(settings.series_expiry))
        .saturating_add(lateness)
        .saturating_add(SECOND);
    let mut sim = Sim::new(task, pipeline, options)?;
    let mut facts = Facts {
        points: recording.len(),
        ..Facts::default()
    };
    let mut clock = Clock {
        now: None,
        next_tick: 0,
        last_arrival: i64::MIN,
        quiet: options.skip_quiet_ticks.then_some(quiet),
    };
    let mut pending: Vec<PointRef<'_>> = Vec::new();
    for (index, point) in recording.points().enumerate() {
        if !keys.iter().any(|key| subscribed(key, &point)) {
            continue;
        }
        facts.fed += 1;
        let time = point.time();
        let arrival = match clock.now {
            None => {
                clock.next_tick = ceil_second(time).unwrap_or(i64::MAX);
                facts.first_ns = Some(time);
                time
            }
            Some(now) if time < now => {
                facts.out_of_order += 1;
                if facts.first_out_of_order.is_none() {
                    facts.first_out_of_order = recording.place(index);
                }
                now
            }
            Some(_) => time,
        };
        if clock.now != Some(arrival) {
            if let Some(now) = clock.now {
                sim.write(&mut pending, now);
            }
            clock.advance(&mut sim, arrival, &mut facts);
            clock.now = Some(arrival);
        }
        clock.last_arrival = arrival;
        pending.push(point);
    }
    if let Some(now) = clock.now {
        sim.write(&mut pending, now);
        facts.last_ns = Some(now);
        clock.advance(&mut sim, now.saturating_add(lateness), &mut facts);
    }
    facts.lines = sim.lines;
    let stats = sim.graph.stats();
    let summary = summary::summarize(&sim.records, &facts, &stats);
    Ok(Replay {
        records: sim.records,
        summary,
    })
}

/// Whether the router would deliver `point` (written to the recording's db.rp) under `key`.
fn subscribed(key: &Key, point: &PointRef<'_>) -> bool {
    key.db == point.db()
        && key.rp == point.rp()
        && key
            .measurement
            .as_deref()
            .is_none_or(|m| m == point.measurement())
}

/// `ns` rounded up to a whole second; `None` past the clock's range.
fn ceil_second(ns: i64) -> Option<i64> {
    let floor = ns.div_euclid(SECOND).checked_mul(SECOND)?;
    if floor == ns {
        Some(ns)
    } else {
        floor.checked_add(SECOND)
    }
}

/// The simulated clock's ticking.
struct Clock {
    /// The clock: the latest arrival; `None` before the first point.
    now: Option<i64>,
    /// The next whole second to tick at.
    next_tick: i64,
    last_arrival: i64,
    /// Ticks later than this after the last arrival are skipped (`None`: never).
    quiet: Option<i64>,
}

impl Clock {
    /// Ticks at every whole second up to `to` (included).
    fn advance(&mut self, sim: &mut Sim, to: i64, facts: &mut Facts) {
        while self.next_tick <= to {
            if let Some(quiet) = self.quiet
                && self.next_tick > self.last_arrival.saturating_add(quiet)
            {
                match ceil_second(to) {
                    Some(next) if next > self.next_tick => {
                        self.next_tick = next;
                        continue;
                    }
                    _ => {}
                }
            }
            sim.tick(self.next_tick);
            facts.ticks += 1;
            match self.next_tick.checked_add(SECOND) {
                Some(next) => self.next_tick = next,
                None => break,
            }
        }
    }
}

/// A scaler call: the k8sAutoscale node, its intent and its point.
type Call = (usize, Box<ScaleIntent>, Point);

/// The task as its loop runs it, with the simulated target as its scaler.
struct Sim {
    graph: Graph,
    scaler: DryRunScaler,
    /// What the scaler's clock reads.
    clock: Arc<AtomicI64>,
    calls: ScaleCalls<Call>,
    /// Calls started, in the order the loop would start them.
    started: VecDeque<(scale_calls::Key, Call)>,
    effects: Vec<Effect>,
    records: Vec<Record>,
    lines: u64,
}

impl Sim {
    fn new(task: &str, pipeline: &Pipeline, options: &Options) -> Result<Sim> {
        let clock = Arc::new(AtomicI64::new(0));
        let reads = Arc::clone(&clock);
        Ok(Sim {
            graph: Graph::new(task, pipeline, options.settings)?,
            scaler: DryRunScaler::starting_at(
                Arc::new(move || reads.load(Ordering::SeqCst)),
                options.replicas,
            ),
            clock,
            calls: ScaleCalls::default(),
            started: VecDeque::new(),
            effects: Vec::new(),
            records: Vec::new(),
            lines: 0,
        })
    }

    /// One write request of `points` (emptied) arriving at `now`.
    fn write(&mut self, points: &mut Vec<PointRef<'_>>, now: i64) {
        if points.is_empty() {
            return;
        }
        self.clock.store(now, Ordering::SeqCst);
        self.graph.write(points.drain(..), now, &mut self.effects);
        self.settle(now);
    }

    fn tick(&mut self, now: i64) {
        self.clock.store(now, Ordering::SeqCst);
        self.graph.tick(now, &mut self.effects);
        self.settle(now);
    }

    /// Carries out the effects, then every call started, as the task loop does: a finished
    /// call's answer goes back to its node, then the call waiting for its key starts.
    fn settle(&mut self, now: i64) {
        self.take_effects();
        while let Some((key, (node, intent, point))) = self.started.pop_front() {
            let result = self.scaler.decide(&intent);
            self.graph
                .scaled(node, point, result, now, &mut self.effects);
            if let Some(next) = self.calls.finished(&key) {
                self.started.push_back((key, next));
            }
            self.take_effects();
        }
    }

    fn take_effects(&mut self) {
        for effect in std::mem::take(&mut self.effects) {
            match effect {
                Effect::Scale {
                    node,
                    intent,
                    point,
                } => {
                    let key = (node, intent.target.clone());
                    if let Some(call) = self.calls.offer(key.clone(), (node, intent, point)) {
                        self.started.push_back((key, call));
                    }
                }
                Effect::Write { .. } => self.lines += 1,
                Effect::Decision(record) => self.records.push(applied(*record)),
            }
        }
    }
}

/// The record of a change the simulated target took: `increased` or `decreased` rather than
/// the dry run's `dry-run`.
fn applied(mut record: Record) -> Record {
    if record.outcome == Outcome::DryRun {
        record.outcome = match (record.current, record.desired) {
            (Some(current), Some(desired)) if desired < current => Outcome::Decreased,
            _ => Outcome::Increased,
        };
    }
    record
}

#[cfg(test)]
mod tests;
