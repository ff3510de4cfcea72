//! Aggregates over a stream (`sum`, `mean`, `count`, `min`, `max`, `median`, `spread`,
//! `stddev`), aligned by time across the series of a group. This is where we deliberately
//! differ from Kapacitor (compat.md 2.4, 2.6).
//!
//! Kapacitor aggregates "each run of consecutive points with an identical timestamp", which
//! with 10-s batched flushes from independent agents re-emits single-host values and makes a
//! total equal to total/N. Here each group keeps one bucket per aligned time; a bucket holds
//! one value per *contributor* (a series: measurement + full tag set). A bucket for time T is
//! emitted, oldest first, when
//! - every live contributor has reached T (its latest point is at T or later) or is no longer
//!   awaited (below), or
//! - `lateness` has passed (processor clock) since the bucket's first value arrived.
//!
//! # Cadence
//!
//! Each contributor's flush cadence is learned from its arrivals: the processor-clock gaps
//! between its batches that carry new times (a batch of ten points is one arrival; a repeat of
//! old times is none). Its cadence is the largest of its latest 8 gaps, so jitter and a skipped
//! flush make it more patient, never less; it is known after 3 gaps. A bucket waits for a
//! contributor that has not reached it only until two of its cadences after its latest new
//! times arrived (its next flush, plus one cadence of margin; at least 1 s), and never longer
//! than `lateness`; a contributor silent for four of its cadences is gone (at most
//! `series_expiry`). So a pod that left is no longer waited for about two of its flushes after
//! its last one, and forgotten after four: 2 s and 4 s for an agent flushing every second,
//! while an agent flushing every 10 s is still waited for (within `lateness`) and kept for
//! `series_expiry`. A contributor that arrives regularly but late (its points always some
//! seconds old) keeps arriving within its cadence and is waited for. A contributor whose
//! cadence is not known yet (fewer than 3 gaps: a new series) is waited for as every series
//! once was: up to `lateness`, and it expires after `series_expiry`.
//!
//! For a bucket ahead of the processor clock the lateness runs from when the clock reaches
//! its time, not from its first value: one point stamped ahead (a pod with a broken clock)
//! cannot move a group's emitted time past the others' and make their points late (the
//! from node drops points further ahead than `[pipeline] future-limit`).
//!
//! A new group first learns its contributors: for `warm_up` (processor clock) after its first
//! point nothing is emitted, then the times before the latest first point of its series are
//! dropped (`warm_up_times`), since some series could not have contributed to them. So the
//! first total after a task starts counts every pod, not only the one whose flush came first.
//!
//! A contributor that is gone stops being live (`expired_series`), so a pod that left stops
//! holding buckets back. A point for a time already emitted is late: counted in `late_points`
//! and dropped (never summed twice); a second value from the same series for the same time
//! replaces the first (`duplicate_points`), so a retried batch does not count twice. Groups
//! with no contributors and no buckets are freed.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use crate::tick::nodes::{AggregateFn, AggregateSpec};

use super::nodes::nanos;
use super::point::{
    Batch, FastMap, Field, Group, MAX_NAMED, Point, Provenance, RECENTLY_GONE, Series,
};

/// Timing settings of the alignment, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alignment {
    /// The longest an aligned time waits for a contributor (each waits less when its cadence
    /// says so).
    pub lateness_ns: i64,
    /// The longest a silent contributor stays live (each is gone sooner when its cadence says
    /// so).
    pub series_expiry_ns: i64,
    /// A group with no live series and nothing pending is freed this long after its last
    /// point; until then it remembers the last emitted time, so nothing is emitted twice.
    pub state_expiry_ns: i64,
    /// A new group emits nothing for this long after its first point (it learns its series).
    pub warm_up_ns: i64,
}

/// Node-specific counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregateStats {
    pub late_points: u64,
    pub duplicate_points: u64,
    pub expired_series: u64,
    /// Aligned times dropped at a group's start because not every series could contribute.
    pub warm_up_times: u64,
}

#[derive(Debug)]
struct Bucket {
    first_arrival: i64,
    values: Vec<(Arc<Series>, Field)>,
}

/// Gaps (processor clock) between a series' batches of new times that its cadence is learned
/// from: the latest few, so a series that changes pace is relearned within a few flushes.
const CADENCE_GAPS: usize = 8;
/// Gaps a series must have shown before its cadence is trusted. Until then it is waited for as
/// long as `lateness` allows and expires after `series_expiry`, as every series once did.
const LEARNED_AFTER_GAPS: u8 = 3;
/// An aligned time waits for a series with a learned cadence until this many of its cadences
/// after its latest new times arrived: its next flush, plus one more cadence of margin.
const PATIENCE_CADENCES: i64 = 2;
/// A series silent for this many of its cadences is gone (at most `series_expiry`).
const GONE_AFTER_CADENCES: i64 = 4;
const NS_PER_MS: i64 = 1_000_000;
/// The least patience, whatever the cadence (the task ticks once a second).
const MIN_PATIENCE_NS: i64 = 1_000_000_000;

/// A series' flush cadence, learned from the processor-clock gaps between its batches that
/// carried new times: the largest of the latest [`CADENCE_GAPS`] gaps, so jitter and an
/// occasional skipped flush make it more patient, never less.
#[derive(Debug, Clone, Default)]
struct Cadence {
    /// In milliseconds, rounded up (a cadence is never learned shorter than it is), so a
    /// series' state stays small.
    gaps: [u32; CADENCE_GAPS],
    /// Where the next gap goes.
    next: u8,
    /// Gaps seen, up to [`LEARNED_AFTER_GAPS`].
    seen: u8,
}

impl Cadence {
    fn record(&mut self, gap: i64) {
        if let Some(slot) = self.gaps.get_mut(usize::from(self.next)) {
            let ms = (gap.max(0) as u64).div_ceil(NS_PER_MS as u64);
            *slot = u32::try_from(ms).unwrap_or(u32::MAX);
        }
        self.next = (self.next + 1) % CADENCE_GAPS as u8;
        self.seen = self.seen.saturating_add(1).min(LEARNED_AFTER_GAPS);
    }

    /// The learned interval in ns, once enough gaps were seen.
    fn interval(&self) -> Option<i64> {
        (self.seen >= LEARNED_AFTER_GAPS)
            .then(|| i64::from(self.gaps.iter().copied().max().unwrap_or(0)) * NS_PER_MS)
    }
}

#[derive(Debug)]
struct Contributor {
    /// First point time seen from this series.
    first: i64,
    /// Latest point time seen from this series.
    watermark: i64,
    /// Processor time of its latest point.
    last_arrival: i64,
    /// Processor time of its latest batch that carried a new time (moved the watermark).
    last_advance: i64,
    cadence: Cadence,
}

impl Contributor {
    /// Whether an aligned time it has not reached still waits for it at `now`: always while
    /// its cadence is unknown (the aligned time's `lateness` bounds the wait), else until
    /// [`PATIENCE_CADENCES`] of its cadences after its latest new times arrived.
    fn awaited(&self, now: i64) -> bool {
        match self.cadence.interval() {
            None => true,
            Some(interval) => {
                let patience = interval
                    .saturating_mul(PATIENCE_CADENCES)
                    .max(MIN_PATIENCE_NS);
                now.saturating_sub(self.last_advance) < patience
            }
        }
    }

    /// Whether it is gone at `now`: silent for [`GONE_AFTER_CADENCES`] of its cadences, or for
    /// `expiry_ns` (the bound, and the rule while its cadence is unknown).
    fn gone(&self, now: i64, expiry_ns: i64) -> bool {
        let limit = match self.cadence.interval() {
            None => expiry_ns,
            Some(interval) => interval
                .saturating_mul(GONE_AFTER_CADENCES)
                .max(MIN_PATIENCE_NS)
                .min(expiry_ns),
        };
        now.saturating_sub(self.last_arrival) >= limit
    }
}

/// The series that feed one group, with how far each has come and how often each flushes:
/// what an aligned time (or a window's end) waits for. Shared by aggregates and windows.
#[derive(Debug, Default)]
pub(super) struct Contributors(FastMap<Arc<Series>, Contributor>);

impl Contributors {
    /// `series` sent a point at `time`, arriving at processor time `now`; returns its
    /// watermark before this point (`None` for a series not seen yet).
    pub(super) fn saw(&mut self, series: &Arc<Series>, time: i64, now: i64) -> Option<i64> {
        let (contributor, before) = match self.0.entry(Arc::clone(series)) {
            Entry::Occupied(entry) => {
                let contributor = entry.into_mut();
                let before = contributor.watermark;
                (contributor, Some(before))
            }
            Entry::Vacant(entry) => (
                entry.insert(Contributor {
                    first: time,
                    watermark: time,
                    last_arrival: now,
                    last_advance: now,
                    cadence: Cadence::default(),
                }),
                None,
            ),
        };
        contributor.last_arrival = now;
        if time > contributor.watermark {
            // A later batch with new times: one gap of its cadence. The other points of the
            // same batch arrive at the same `now` and add none.
            if now > contributor.last_advance {
                contributor.cadence.record(now - contributor.last_advance);
                contributor.last_advance = now;
            }
            contributor.watermark = time;
        }
        before
    }

    /// True when no live series is still awaited for `time` at `now`: each has sent a point at
    /// or after it, or is past its own patience (see [`Contributor::awaited`]).
    pub(super) fn complete(&self, time: i64, now: i64) -> bool {
        self.0
            .values()
            .all(|c| c.watermark >= time || !c.awaited(now))
    }

    /// The latest first point time among the live series.
    pub(super) fn latest_first(&self) -> Option<i64> {
        self.0.values().map(|c| c.first).max()
    }

    /// Forgets the series that are gone at `now` (silent for a few of their cadences, at most
    /// `expiry_ns`); returns how many.
    pub(super) fn expire(&mut self, now: i64, expiry_ns: i64) -> u64 {
        self.expire_with(now, expiry_ns, |_, _| {})
    }

    /// [`Contributors::expire`], handing each gone series and its latest point time to
    /// `gone`.
    pub(super) fn expire_with(
        &mut self,
        now: i64,
        expiry_ns: i64,
        mut gone: impl FnMut(&Arc<Series>, i64),
    ) -> u64 {
        let before = self.0.len();
        self.0.retain(|series, c| {
            let keep = !c.gone(now, expiry_ns);
            if !keep {
                gone(series, c.watermark);
            }
            keep
        });
        super::intern::shrink_map(&mut self.0);
        (before - self.0.len()) as u64
    }

    /// The latest point time of `series`, if it is live.
    fn watermark(&self, series: &Arc<Series>) -> Option<i64> {
        self.0.get(series).map(|c| c.watermark)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Live series.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[derive(Debug)]
struct GroupState {
    out_series: Arc<Series>,
    group: Arc<Group>,
    buckets: BTreeMap<i64, Bucket>,
    contributors: Contributors,
    emitted_through: Option<i64>,
    /// Processor time of the group's latest point.
    last_arrival: i64,
    /// Processor time until which the group learns its series and emits nothing; `None`
    /// once warm.
    warm_until: Option<i64>,
    /// Series that stopped reporting: (series, its last point time, processor time it was
    /// found gone), kept for [`RECENTLY_GONE`] and named beside the group's totals.
    gone: Vec<(Arc<Series>, i64, i64)>,
}

/// One aggregate node's state.
#[derive(Debug)]
pub struct Aggregate {
    function: AggregateFn,
    field: String,
    as_: Arc<str>,
    alignment: Alignment,
    groups: FastMap<Arc<Group>, GroupState>,
    pub stats: AggregateStats,
}

/// Why a point was not aggregated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("field {0:?} is missing or not numeric")]
    NotNumeric(String),
    #[error("field {field:?} has type {got}, the group started with {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
        got: &'static str,
    },
}

fn type_name(field: &Field) -> &'static str {
    match field {
        Field::Float(_) => "float",
        Field::Int(_) => "int",
        Field::Bool(_) => "bool",
        Field::Str(_) => "string",
    }
}

impl Aggregate {
    pub fn new(spec: &AggregateSpec, alignment: Alignment) -> Aggregate {
        Aggregate {
            function: spec.function,
            field: spec.field.clone(),
            as_: Arc::from(spec.as_.as_str()),
            alignment,
            groups: FastMap::default(),
            stats: AggregateStats::default(),
        }
    }

    /// Number of groups with state (for tests and cardinality stats).
    pub fn cardinality(&self) -> usize {
        self.groups.len()
    }

    /// Takes one point at processor time `now`; emitted points are appended to `out`.
    pub fn point(&mut self, point: Point, now: i64, out: &mut Vec<Point>) -> Result<(), Error> {
        let value = match point.field(&self.field) {
            Some(v @ (Field::Float(_) | Field::Int(_))) => v.clone(),
            _ => return Err(Error::NotNumeric(self.field.clone())),
        };
        let state = self
            .groups
            .entry(Arc::clone(&point.group))
            .or_insert_with(|| GroupState {
                out_series: Arc::new(Series::new(
                    Arc::clone(&point.series.measurement),
                    point.group.dims.clone(),
                )),
                group: Arc::clone(&point.group),
                buckets: BTreeMap::new(),
                contributors: Contributors::default(),
                emitted_through: None,
                last_arrival: now,
                warm_until: Some(now.saturating_add(self.alignment.warm_up_ns)),
                gone: Vec::new(),
            });
        state.last_arrival = now;
        if let Some((_, bucket)) = state.buckets.iter().next()
            && let Some((_, first)) = bucket.values.first()
            && type_name(first) != type_name(&value)
        {
            return Err(Error::WrongType {
                field: self.field.clone(),
                expected: type_name(first),
                got: type_name(&value),
            });
        }
        // A series can have a value in this time's bucket only if it already sent a point at
        // or after the time: in order, a point starts its time and the bucket need not be
        // searched (a linear search per point would cost the group's size).
        let maybe_repeated = state
            .contributors
            .saw(&point.series, point.time, now)
            .is_none_or(|watermark| watermark >= point.time);
        if state.emitted_through.is_some_and(|t| point.time <= t) {
            self.stats.late_points += 1;
            return Ok(());
        }
        let expected = state.contributors.len();
        let bucket = state.buckets.entry(point.time).or_insert_with(|| Bucket {
            first_arrival: now,
            // One value per live series is what a complete time holds.
            values: Vec::with_capacity(expected),
        });
        let repeated = if maybe_repeated {
            bucket
                .values
                .iter_mut()
                .find(|(series, _)| *series == point.series)
        } else {
            None
        };
        match repeated {
            Some((_, old)) => {
                *old = value;
                self.stats.duplicate_points += 1;
            }
            None => bucket.values.push((point.series, value)),
        }
        let group = Arc::clone(&point.group);
        if let Some(state) = self.groups.get_mut(&group) {
            self.stats.warm_up_times += warm_up(state, now);
            emit_due(state, self.function, &self.as_, self.alignment, now, out);
        }
        Ok(())
    }

    /// Kapacitor on a batch (after a window): the function over the batch's points, one point
    /// stamped with the batch's time, tagged with the group's dimensions. Points without a
    /// numeric field make the batch an error; an empty batch gives nothing.
    pub fn batch(&self, batch: &Batch) -> Result<Option<Point>, Error> {
        let mut values = Vec::with_capacity(batch.points.len());
        for point in &batch.points {
            match point.field(&self.field) {
                Some(v @ (Field::Float(_) | Field::Int(_))) => {
                    values.push((Arc::clone(&point.series), v.clone()));
                }
                _ => return Err(Error::NotNumeric(self.field.clone())),
            }
        }
        Ok(reduce(self.function, &values).map(|result| Point {
            series: Arc::new(Series::new(
                Arc::clone(&batch.name),
                batch.group.dims.clone(),
            )),
            group: Arc::clone(&batch.group),
            fields: vec![(Arc::clone(&self.as_), result)],
            time: batch.time,
            provenance: Some(Arc::new(Provenance::new(newest_per_series(batch), []))),
        }))
    }

    /// Advances processor time: expires quiet contributors, emits buckets that became due,
    /// frees empty groups.
    pub fn tick(&mut self, now: i64, out: &mut Vec<Point>) {
        let expiry = self.alignment.series_expiry_ns;
        let recent = nanos(RECENTLY_GONE).unwrap_or(i64::MAX);
        for state in self.groups.values_mut() {
            let gone = &mut state.gone;
            self.stats.expired_series +=
                state.contributors.expire_with(now, expiry, |series, last| {
                    if gone.len() < MAX_NAMED {
                        gone.push((Arc::clone(series), last, now));
                    }
                });
            gone.retain(|(_, _, at)| now.saturating_sub(*at) < recent);
            self.stats.warm_up_times += warm_up(state, now);
            emit_due(state, self.function, &self.as_, self.alignment, now, out);
        }
        let state_expiry = self.alignment.state_expiry_ns;
        self.groups.retain(|_, s| {
            !s.contributors.is_empty()
                || !s.buckets.is_empty()
                || now.saturating_sub(s.last_arrival) < state_expiry
        });
        super::intern::shrink_map(&mut self.groups);
    }
}

/// Each series of a window's batch once, with its newest point time.
fn newest_per_series(batch: &Batch) -> Vec<(Arc<Series>, i64)> {
    let mut newest: FastMap<Arc<Series>, i64> = FastMap::default();
    for point in &batch.points {
        let time = newest
            .entry(Arc::clone(&point.series))
            .or_insert(point.time);
        *time = (*time).max(point.time);
    }
    newest.into_iter().collect()
}

/// Ends a group's warm-up once its time is over: drops the buckets older than the latest
/// first point of its series (returns how many). Nothing is emitted before.
fn warm_up(state: &mut GroupState, now: i64) -> u64 {
    match state.warm_until {
        Some(until) if now >= until => state.warm_until = None,
        _ => return 0,
    }
    let Some(first) = state.contributors.latest_first() else {
        return 0;
    };
    let kept = state.buckets.split_off(&first);
    let dropped = std::mem::replace(&mut state.buckets, kept);
    if let Some((&time, _)) = dropped.last_key_value() {
        state.emitted_through = Some(time);
    }
    dropped.len() as u64
}

fn emit_due(
    state: &mut GroupState,
    function: AggregateFn,
    as_: &Arc<str>,
    alignment: Alignment,
    now: i64,
    out: &mut Vec<Point>,
) {
    if state.warm_until.is_some() {
        return;
    }
    while let Some(entry) = state.buckets.first_entry() {
        let time = *entry.key();
        let bucket = entry.get();
        let complete = state.contributors.complete(time, now);
        // A bucket's lateness runs from its first value or, for a time ahead of the clock,
        // from when the clock reaches it: the other series cannot have sent it before.
        let waiting_since = bucket.first_arrival.max(time);
        let timed_out = now.saturating_sub(waiting_since) >= alignment.lateness_ns;
        if !(complete || timed_out) {
            break;
        }
        let bucket = entry.remove();
        state.emitted_through = Some(time);
        if let Some(result) = reduce(function, &bucket.values) {
            let series = bucket
                .values
                .iter()
                .map(|(series, _)| {
                    let last = state.contributors.watermark(series).unwrap_or(time);
                    (Arc::clone(series), last)
                })
                .collect();
            let gone = state.gone.iter().map(|(s, last, _)| (Arc::clone(s), *last));
            out.push(Point {
                series: Arc::clone(&state.out_series),
                group: Arc::clone(&state.group),
                fields: vec![(Arc::clone(as_), result)],
                time,
                provenance: Some(Arc::new(Provenance::new(series, gone))),
            });
        }
    }
}

/// Applies the function to one bucket. Ints stay ints for sum, min, max and spread (as
/// InfluxQL); count is an int; mean, median and stddev are floats.
pub fn reduce(function: AggregateFn, values: &[(Arc<Series>, Field)]) -> Option<Field> {
    let all_int = values.iter().all(|(_, v)| matches!(v, Field::Int(_)));
    let ints = || {
        values.iter().filter_map(|(_, v)| match v {
            Field::Int(i) => Some(*i),
            _ => None,
        })
    };
    let floats: Vec<f64> = values.iter().filter_map(|(_, v)| v.as_f64()).collect();
    if floats.is_empty() {
        return None;
    }
    let n = floats.len() as f64;
    Some(match function {
        AggregateFn::Count => Field::Int(i64::try_from(floats.len()).unwrap_or(i64::MAX)),
        AggregateFn::Sum if all_int => Field::Int(ints().fold(0i64, i64::saturating_add)),
        AggregateFn::Sum => Field::Float(floats.iter().sum()),
        AggregateFn::Min if all_int => Field::Int(ints().min()?),
        AggregateFn::Min => Field::Float(floats.iter().copied().fold(f64::INFINITY, f64::min)),
        AggregateFn::Max if all_int => Field::Int(ints().max()?),
        AggregateFn::Max => Field::Float(floats.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        AggregateFn::Spread if all_int => Field::Int(ints().max()?.saturating_sub(ints().min()?)),
        AggregateFn::Spread => {
            let max = floats.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min = floats.iter().copied().fold(f64::INFINITY, f64::min);
            Field::Float(max - min)
        }
        AggregateFn::Mean => Field::Float(floats.iter().sum::<f64>() / n),
        AggregateFn::Median => {
            let mut sorted = floats;
            sorted.sort_by(f64::total_cmp);
            let mid = sorted.len() / 2;
            if sorted.len() % 2 == 1 {
                Field::Float(*sorted.get(mid)?)
            } else {
                Field::Float((sorted.get(mid - 1)? + sorted.get(mid)?) / 2.0)
            }
        }
        AggregateFn::Stddev => {
            // Sample standard deviation, as InfluxQL (one value: no output).
            if floats.len() < 2 {
                return None;
            }
            let mean = floats.iter().sum::<f64>() / n;
            let var = floats.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
            Field::Float(var.sqrt())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn spec(function: AggregateFn) -> AggregateSpec {
        AggregateSpec {
            function,
            field: "v".into(),
            as_: "out".into(),
            use_point_times: false,
        }
    }

    fn alignment() -> Alignment {
        Alignment {
            lateness_ns: 15 * S,
            series_expiry_ns: 30 * S,
            state_expiry_ns: 600 * S,
            warm_up_ns: 0,
        }
    }

    fn point(host: &str, t: i64, v: f64) -> Point {
        let series = Series::new(
            Arc::from("m"),
            vec![
                (Arc::from("host"), Arc::from(host)),
                (Arc::from("deployment"), Arc::from("app")),
            ],
        );
        let group = Group::of(&series, &[Arc::from("deployment")], false, false);
        Point {
            series: Arc::new(series),
            group: Arc::new(group),
            fields: vec![(Arc::from("v"), Field::Float(v))],
            time: t * S,
            provenance: None,
        }
    }

    fn values(points: &[Point]) -> Vec<(i64, f64)> {
        points
            .iter()
            .map(|p| {
                (
                    p.time / S,
                    p.field("out").and_then(Field::as_f64).unwrap_or(f64::NAN),
                )
            })
            .collect()
    }

    #[test]
    fn a_time_is_emitted_once_every_live_series_has_passed_it() {
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), alignment());
        let mut out = Vec::new();
        // host a flushes 1..=3, then b flushes 1..=3 later.
        for t in 1..=3 {
            agg.point(point("a", t, 1.0), 100 * S, &mut out).unwrap();
        }
        assert_eq!(values(&out), vec![(1, 1.0), (2, 1.0), (3, 1.0)]);
        out.clear();
        // once b is known, a's next burst waits for b.
        for t in 4..=6 {
            agg.point(point("b", t, 2.0), 101 * S, &mut out).unwrap();
        }
        for t in 4..=6 {
            agg.point(point("a", t, 1.0), 102 * S, &mut out).unwrap();
        }
        assert_eq!(values(&out), vec![(4, 3.0), (5, 3.0), (6, 3.0)]);
    }

    #[test]
    fn a_bucket_missing_a_series_is_emitted_after_the_lateness_bound() {
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), alignment());
        let mut out = Vec::new();
        agg.point(point("a", 1, 1.0), 0, &mut out).unwrap();
        agg.point(point("b", 2, 2.0), 0, &mut out).unwrap();
        agg.point(point("a", 2, 1.0), 0, &mut out).unwrap();
        assert_eq!(values(&out), vec![(1, 1.0), (2, 3.0)]);
        out.clear();
        agg.point(point("a", 3, 1.0), 3 * S, &mut out).unwrap();
        agg.tick(17 * S, &mut out);
        assert!(out.is_empty(), "b is live and has not reached 3 yet");
        agg.tick(18 * S, &mut out);
        assert_eq!(values(&out), vec![(3, 1.0)]);
    }

    #[test]
    fn late_and_duplicate_points_are_not_summed_twice() {
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), alignment());
        let mut out = Vec::new();
        agg.point(point("a", 1, 1.0), 0, &mut out).unwrap();
        agg.point(point("b", 2, 5.0), 0, &mut out).unwrap();
        agg.point(point("a", 2, 1.0), 0, &mut out).unwrap();
        assert_eq!(values(&out), vec![(1, 1.0), (2, 6.0)]);
        out.clear();
        agg.point(point("b", 1, 9.0), 0, &mut out).unwrap();
        assert_eq!(agg.stats.late_points, 1);
        agg.point(point("a", 3, 1.0), 0, &mut out).unwrap();
        agg.point(point("a", 3, 1.0), 0, &mut out).unwrap();
        agg.point(point("b", 3, 2.0), 0, &mut out).unwrap();
        assert_eq!(values(&out), vec![(3, 3.0)]);
        assert_eq!(agg.stats.duplicate_points, 1);
    }

    #[test]
    fn a_series_that_stops_reporting_expires_and_its_group_is_freed() {
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), alignment());
        let mut out = Vec::new();
        agg.point(point("a", 1, 1.0), 0, &mut out).unwrap();
        agg.point(point("b", 1, 1.0), 0, &mut out).unwrap();
        agg.tick(31 * S, &mut out);
        assert_eq!(agg.stats.expired_series, 2);
        // the group still remembers what it emitted (b's point at 1 was already late) ...
        agg.point(point("a", 1, 1.0), 32 * S, &mut out).unwrap();
        assert_eq!(agg.stats.late_points, 2);
        // ... until the state expiry
        agg.tick(32 * S + 30 * S, &mut out);
        assert_eq!(agg.cardinality(), 1);
        agg.tick(32 * S + 600 * S, &mut out);
        assert_eq!(agg.cardinality(), 0);
    }

    #[test]
    fn a_point_stamped_ahead_of_the_clock_does_not_stall_the_group() {
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), alignment());
        let mut out = Vec::new();
        let year = 365 * 86_400;
        let now = |t: i64| (1000 + t) * S;
        agg.point(point("a", 1000, 1.0), now(0), &mut out).unwrap();
        agg.point(point("b", 1000, 2.0), now(0), &mut out).unwrap();
        out.clear();
        let late_before = agg.stats.late_points;
        // c's clock is a year ahead; its bucket is far past a's and b's.
        agg.point(point("c", 1000 + year, 50.0), now(0), &mut out)
            .unwrap();
        for t in 1..=60 {
            agg.point(point("a", 1000 + t, 1.0), now(t), &mut out)
                .unwrap();
            agg.point(point("b", 1000 + t, 2.0), now(t), &mut out)
                .unwrap();
            agg.tick(now(t), &mut out);
        }
        // c's bucket waits for the clock to reach it; a's and b's times are summed as they
        // complete, never dropped as late.
        assert_eq!(agg.stats.late_points, late_before);
        let sums = values(&out);
        assert_eq!(sums.len(), 60, "{sums:?}");
        assert!(sums.iter().all(|(_, v)| *v == 3.0), "{sums:?}");
        assert!(sums.windows(2).all(|w| w[1].0 == w[0].0 + 1), "{sums:?}");
    }

    #[test]
    fn a_new_group_waits_to_learn_its_series_before_its_first_total() {
        let alignment = Alignment {
            warm_up_ns: 3 * S,
            ..alignment()
        };
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), alignment);
        let mut out = Vec::new();
        // Three pods flush every second; c's first rate comes a second after a's and b's.
        for t in 1..=6 {
            let now = (100 + t) * S;
            agg.point(point("a", 100 + t, 1.0), now, &mut out).unwrap();
            agg.point(point("b", 100 + t, 2.0), now, &mut out).unwrap();
            if t >= 2 {
                agg.point(point("c", 100 + t, 4.0), now, &mut out).unwrap();
            }
            agg.tick(now, &mut out);
        }
        // Nothing before the warm-up ended (at 104); time 101, which c could not have sent,
        // is dropped; every total counts all three pods.
        let sums = values(&out);
        assert_eq!(sums.first(), Some(&(102, 7.0)), "{sums:?}");
        assert!(sums.iter().all(|(_, v)| *v == 7.0), "{sums:?}");
        assert_eq!(agg.stats.warm_up_times, 1);
        // The dropped time stays emitted: a straggler for it is late, not a new total.
        agg.point(point("c", 101, 4.0), 107 * S, &mut out).unwrap();
        assert_eq!(agg.stats.late_points, 1);
    }

    /// The settings as a task has them: a new group learns its series for one lateness.
    fn learning() -> Alignment {
        Alignment {
            warm_up_ns: 15 * S,
            ..alignment()
        }
    }

    /// Feeds `host`'s points at `times` (seconds) as one batch arriving at `now_ns`, after a
    /// tick at that time.
    fn batch(
        agg: &mut Aggregate,
        host: &str,
        times: &[i64],
        v: f64,
        now_ns: i64,
        out: &mut Vec<Point>,
    ) {
        agg.tick(now_ns, out);
        for &t in times {
            agg.point(point(host, t, v), now_ns, out).unwrap();
        }
    }

    #[test]
    fn a_one_second_series_that_stops_is_waited_for_two_of_its_cadences_not_the_lateness() {
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), learning());
        let mut out = Vec::new();
        // a and b flush their point for t at t + 0.3 s and t + 0.5 s; b stops after 10.
        for t in 1..=20 {
            batch(&mut agg, "a", &[t], 1.0, t * S + 3 * S / 10, &mut out);
            if t <= 10 {
                batch(&mut agg, "b", &[t], 2.0, t * S + S / 2, &mut out);
            }
        }
        agg.tick(21 * S, &mut out);
        let sums = values(&out);
        let expected: Vec<(i64, f64)> = (1..=20)
            .map(|t| (t, if t <= 10 { 3.0 } else { 1.0 }))
            .collect();
        assert_eq!(sums, expected);
        // Once b stops after 20, whose last point arrived at 20.5 s with a cadence of 1 s, 21
        // is held until 22.5 s (the next arrival after that is a's at 23.3 s), not for the
        // 15-s lateness ...
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), learning());
        let mut out = Vec::new();
        for t in 1..=23 {
            batch(&mut agg, "a", &[t], 1.0, t * S + 3 * S / 10, &mut out);
            if t <= 20 {
                batch(&mut agg, "b", &[t], 2.0, t * S + S / 2, &mut out);
            }
            if t == 22 {
                assert_eq!(values(&out).last(), Some(&(20, 3.0)), "21 waits for b");
            }
        }
        assert_eq!(values(&out).last(), Some(&(23, 1.0)));
        // ... and b is forgotten four cadences after its last point, not after 30 s.
        agg.tick(24 * S + S / 2 - 1, &mut out);
        assert_eq!(agg.stats.expired_series, 0);
        agg.tick(24 * S + S / 2, &mut out);
        assert_eq!(agg.stats.expired_series, 1);
    }

    #[test]
    fn a_ten_second_series_is_waited_for_beside_one_second_series() {
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), learning());
        let mut out = Vec::new();
        // a flushes every second; b flushes ten points every 10 s, at 10.2, 20.2, ...
        for t in 1..=60 {
            let now = t * S + S / 5;
            batch(&mut agg, "a", &[t], 1.0, now, &mut out);
            if t % 10 == 0 {
                let times: Vec<i64> = (t - 9..=t).collect();
                batch(&mut agg, "b", &times, 10.0, now, &mut out);
            }
            // Nothing is emitted that b has not sent yet.
            let last = values(&out).last().map_or(0, |(time, _)| *time);
            assert!(last <= t - t % 10, "at {t} s: {:?}", values(&out));
        }
        let sums = values(&out);
        assert_eq!(sums.len(), 60, "{sums:?}");
        assert!(sums.iter().all(|(_, v)| *v == 11.0), "{sums:?}");
        assert_eq!(agg.stats.late_points, 0);
        // b stops: each next time waits for it the lateness (its patience, two cadences, is
        // longer) ...
        for t in 61..=79 {
            batch(&mut agg, "a", &[t], 1.0, t * S + S / 5, &mut out);
        }
        assert_eq!(
            values(&out).last(),
            Some(&(64, 1.0)),
            "64 waited from 64.2 s"
        );
        // ... until two of b's cadences after its last flush (at 60.2 s) it is not awaited.
        batch(&mut agg, "a", &[80], 1.0, 80 * S + S / 5, &mut out);
        assert_eq!(values(&out).last(), Some(&(80, 1.0)));
        assert_eq!(agg.stats.late_points, 0);
    }

    #[test]
    fn a_series_late_but_regular_holds_each_time_until_its_point_arrives() {
        let mut agg = Aggregate::new(&spec(AggregateFn::Sum), learning());
        let mut out = Vec::new();
        // c's point for t always comes 3 s after a's.
        for t in 1..=40 {
            let now = t * S + S / 5;
            batch(&mut agg, "a", &[t], 1.0, now, &mut out);
            if t > 3 {
                batch(&mut agg, "c", &[t - 3], 4.0, now + S / 10, &mut out);
            }
            if t > 16 {
                assert_eq!(
                    values(&out).last(),
                    Some(&(t - 3, 5.0)),
                    "at {t} s every time up to {} is complete, later ones wait for c",
                    t - 3
                );
            }
        }
        assert_eq!(agg.stats.late_points, 0);
    }

    #[test]
    fn a_batch_of_many_times_is_one_arrival_and_repeats_do_not_make_a_series_on_time() {
        let mut contributors = Contributors::default();
        let series = point("b", 0, 0.0).series;
        // Ten points per batch, every 10 s: a 10-s cadence.
        for flush in 1..=4 {
            for t in (flush - 1) * 10..flush * 10 {
                contributors.saw(&series, t * S, flush * 10 * S);
            }
        }
        assert_eq!(
            contributors
                .0
                .get(&series)
                .and_then(|c| c.cadence.interval()),
            Some(10 * S)
        );
        // Waited for until two cadences after its latest new times (40 s).
        assert!(!contributors.complete(40 * S, 59 * S));
        assert!(contributors.complete(40 * S, 60 * S));
        // A repeat of old times keeps it live but does not make it awaited again.
        contributors.saw(&series, 39 * S, 61 * S);
        assert!(contributors.complete(40 * S, 61 * S));
        assert_eq!(contributors.expire(61 * S, 30 * S), 0);
        assert_eq!(contributors.expire(91 * S, 30 * S), 1);
    }

    #[test]
    fn a_windowed_total_names_each_series_once_with_its_newest_time() {
        let points: Vec<Point> = [("a", 1), ("b", 2), ("a", 3), ("b", 1)]
            .into_iter()
            .map(|(host, t)| point(host, t, 1.0))
            .collect();
        let batch = Batch {
            name: Arc::from("m"),
            group: Arc::clone(&points[0].group),
            time: 4 * S,
            points,
        };
        let agg = Aggregate::new(&spec(AggregateFn::Sum), alignment());
        let total = agg.batch(&batch).unwrap().unwrap();
        let provenance = total.provenance.unwrap();
        assert_eq!(provenance.count, 2);
        let named: Vec<(Option<&str>, i64)> = provenance
            .series
            .iter()
            .map(|(s, t)| (s.tag("host"), *t / S))
            .collect();
        assert_eq!(named, [(Some("a"), 3), (Some("b"), 2)]);
    }

    #[test]
    fn reducers_follow_influxql_types() {
        let v = |xs: &[f64]| -> Vec<(Arc<Series>, Field)> {
            xs.iter()
                .map(|x| {
                    (
                        Arc::new(Series::new(Arc::from("m"), vec![])),
                        Field::Float(*x),
                    )
                })
                .collect()
        };
        let xs = v(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(reduce(AggregateFn::Sum, &xs), Some(Field::Float(10.0)));
        assert_eq!(reduce(AggregateFn::Mean, &xs), Some(Field::Float(2.5)));
        assert_eq!(reduce(AggregateFn::Count, &xs), Some(Field::Int(4)));
        assert_eq!(reduce(AggregateFn::Median, &xs), Some(Field::Float(2.5)));
        assert_eq!(reduce(AggregateFn::Spread, &xs), Some(Field::Float(3.0)));
        assert_eq!(reduce(AggregateFn::Min, &xs), Some(Field::Float(1.0)));
        assert_eq!(reduce(AggregateFn::Max, &xs), Some(Field::Float(4.0)));
        let Some(Field::Float(sd)) = reduce(AggregateFn::Stddev, &xs) else {
            panic!("stddev of four values is a float")
        };
        assert!((sd - 1.290_994).abs() < 1e-6);
        let ints = vec![(Arc::new(Series::new(Arc::from("m"), vec![])), Field::Int(3))];
        assert_eq!(reduce(AggregateFn::Sum, &ints), Some(Field::Int(3)));
        assert_eq!(reduce(AggregateFn::Stddev, &ints), None);
    }
}
