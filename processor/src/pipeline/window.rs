//! `window()`: buffers each group's points and emits them as [`Batch`]es (Kapacitor's
//! window node, `window.go`), with the same cross-series fix as the aggregates.
//!
//! Kapacitor, with `every` > 0: a group's window ends at `next`; the first point at or after
//! `next` emits the points in `[next - period, next)` as one batch stamped `next`, and the
//! next end is that point's time + `every` (floored to a multiple of `every` with `.align()`).
//! The first end is the group's first point + `every` (aligned: floored), or + `period` with
//! `.fillPeriod()` (aligned: floored, then one `every` later). With `every` = 0 every point
//! emits `(t - period, t]` stamped `t`.
//!
//! Deviation (as for aggregates, compat.md 2.6): with `every` > 0 a window that one series has
//! passed is not emitted until every live series of the group has passed its end or is no
//! longer awaited by its own cadence (two of its flush intervals after its latest new times;
//! see the aggregate module's "Cadence"), or until `lateness` (processor clock) after the first
//! point past its end arrived, or after the clock reached its end if that is later (so one
//! point stamped ahead cannot move a group's windows past the other series' points). Kapacitor
//! emits at once, so a pod whose 10-s flush comes later than another's loses its points for
//! that window. Points too old for any window still to come are counted in `late_points` and
//! dropped; a second point of a series at the same time replaces the first
//! (`duplicate_points`); series silent for four of their cadences (at most `series_expiry`)
//! stop being waited for; a group quiet for `state_expiry` is freed with its buffer.

use std::sync::Arc;

use crate::tick::nodes::WindowSpec;

use super::aggregate::{Alignment, Contributors};
use super::nodes::nanos;
use super::point::{Batch, FastMap, Group, Point};

/// Node-specific counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowStats {
    pub late_points: u64,
    pub duplicate_points: u64,
    pub expired_series: u64,
}

#[derive(Debug)]
struct GroupWindow {
    group: Arc<Group>,
    /// Measurement of the group's first point: the batches' name.
    name: Arc<str>,
    /// Buffered points, ordered by time (arrival order among equal times).
    points: Vec<Point>,
    contributors: Contributors,
    /// End of the next window to emit.
    next_end: i64,
    /// Processor time at which a point at or after `next_end` first arrived.
    due_since: Option<i64>,
    /// Processor time of the group's latest point.
    last_arrival: i64,
    /// A window was emitted: older points are late, not just before the first window.
    emitted: bool,
}

/// One window node's state.
#[derive(Debug)]
pub struct Window {
    period: i64,
    every: i64,
    align: bool,
    fill_period: bool,
    alignment: Alignment,
    groups: FastMap<Arc<Group>, GroupWindow>,
    pub stats: WindowStats,
}

/// `t` floored to a multiple of `step` (Go's `Time.Truncate` for the epoch-aligned steps that
/// windows use).
fn floor_to(t: i64, step: i64) -> i64 {
    if step <= 0 {
        t
    } else {
        t.saturating_sub(t.rem_euclid(step))
    }
}

impl Window {
    pub fn new(spec: &WindowSpec, alignment: Alignment) -> Window {
        Window {
            period: nanos(spec.period).unwrap_or(i64::MAX),
            every: i64::try_from(spec.every.as_nanos()).unwrap_or(i64::MAX),
            align: spec.align,
            fill_period: spec.fill_period,
            alignment,
            groups: FastMap::default(),
            stats: WindowStats::default(),
        }
    }

    /// Groups with state (working cardinality).
    pub fn cardinality(&self) -> usize {
        self.groups.len()
    }

    /// The end of a group's first window, from its first point's time (Kapacitor's rule).
    fn first_end(&self, t: i64) -> i64 {
        if self.fill_period {
            let first_period = t.saturating_add(self.period);
            if !self.align {
                return first_period;
            }
            let aligned = floor_to(first_period, self.every);
            if aligned <= first_period {
                aligned.saturating_add(self.every)
            } else {
                aligned
            }
        } else {
            self.next_after(t)
        }
    }

    /// The end that follows a window triggered by a point at `t`.
    fn next_after(&self, t: i64) -> i64 {
        let next = t.saturating_add(self.every);
        if self.align {
            floor_to(next, self.every)
        } else {
            next
        }
    }

    /// Takes one point at processor time `now`; emitted batches are appended to `out`.
    pub fn point(&mut self, point: Point, now: i64, out: &mut Vec<Batch>) {
        let first_end = self.first_end(point.time);
        let state = self
            .groups
            .entry(Arc::clone(&point.group))
            .or_insert_with(|| GroupWindow {
                group: Arc::clone(&point.group),
                name: Arc::clone(&point.series.measurement),
                points: Vec::new(),
                contributors: Contributors::default(),
                next_end: first_end,
                due_since: None,
                last_arrival: now,
                emitted: false,
            });
        state.last_arrival = now;
        state.contributors.saw(&point.series, point.time, now);

        if self.every == 0 {
            every_point(state, self.period, point, &mut self.stats, out);
            return;
        }
        if point.time < state.next_end.saturating_sub(self.period) {
            if state.emitted {
                self.stats.late_points += 1;
            }
            return;
        }
        let time = point.time;
        if !insert(&mut state.points, point) {
            self.stats.duplicate_points += 1;
        }
        if time >= state.next_end && state.due_since.is_none() {
            state.due_since = Some(now);
        }
        let group = Arc::clone(&state.group);
        self.emit_due(&group, now, out);
    }

    /// Advances processor time: stops waiting for quiet series, emits windows that became
    /// due, frees quiet groups.
    pub fn tick(&mut self, now: i64, out: &mut Vec<Batch>) {
        let expiry = self.alignment.series_expiry_ns;
        let mut expired = 0;
        for state in self.groups.values_mut() {
            expired += state.contributors.expire(now, expiry);
        }
        self.stats.expired_series += expired;
        if self.every > 0 {
            let groups: Vec<Arc<Group>> = self.groups.keys().cloned().collect();
            for group in groups {
                self.emit_due(&group, now, out);
            }
        }
        let state_expiry = self.alignment.state_expiry_ns;
        self.groups
            .retain(|_, s| now.saturating_sub(s.last_arrival) < state_expiry);
        super::intern::shrink_map(&mut self.groups);
    }

    fn emit_due(&mut self, group: &Arc<Group>, now: i64, out: &mut Vec<Batch>) {
        let (period, lateness) = (self.period, self.alignment.lateness_ns);
        loop {
            let Some(state) = self.groups.get_mut(group) else {
                return;
            };
            let Some(due_since) = state.due_since else {
                return;
            };
            let end = state.next_end;
            let complete = state.contributors.complete(end, now);
            // A window ending ahead of the clock waits for the clock, however late the others.
            if !complete && now.saturating_sub(due_since.max(end)) < lateness {
                return;
            }
            let start = end.saturating_sub(period);
            out.push(Batch {
                name: Arc::clone(&state.name),
                group: Arc::clone(&state.group),
                time: end,
                points: state
                    .points
                    .iter()
                    .filter(|p| p.time >= start && p.time < end)
                    .cloned()
                    .collect(),
            });
            // The earliest buffered point past the end triggered the window (it exists: the
            // window was due).
            let trigger = state
                .points
                .iter()
                .map(|p| p.time)
                .find(|t| *t >= end)
                .unwrap_or(end);
            let next = self.next_after(trigger);
            let Some(state) = self.groups.get_mut(group) else {
                return;
            };
            state.next_end = next;
            state.emitted = true;
            let keep_from = next.saturating_sub(period);
            state.points.retain(|p| p.time >= keep_from);
            if !state.points.iter().any(|p| p.time >= next) {
                state.due_since = None;
            }
        }
    }
}

/// Inserts `point` in time order; a point of the same series at the same time replaces the
/// earlier one. False when it replaced one.
fn insert(points: &mut Vec<Point>, point: Point) -> bool {
    let at = points.partition_point(|p| p.time <= point.time);
    let same = points
        .get(..at)
        .unwrap_or_default()
        .iter()
        .rposition(|p| p.time == point.time && p.series == point.series);
    match same.and_then(|i| points.get_mut(i)) {
        Some(old) => {
            *old = point;
            false
        }
        None => {
            points.insert(at, point);
            true
        }
    }
}

/// `every` = 0 (Kapacitor): each point at or after the group's last emit time emits the
/// points in `(t - period, t]`, stamped `t`; an older point is only buffered.
fn every_point(
    state: &mut GroupWindow,
    period: i64,
    point: Point,
    stats: &mut WindowStats,
    out: &mut Vec<Batch>,
) {
    let time = point.time;
    if !insert(&mut state.points, point) {
        stats.duplicate_points += 1;
        return;
    }
    if time < state.next_end {
        return;
    }
    let oldest = time.saturating_sub(period);
    state.points.retain(|p| p.time > oldest);
    state.next_end = time;
    out.push(Batch {
        name: Arc::clone(&state.name),
        group: Arc::clone(&state.group),
        time,
        points: state
            .points
            .iter()
            .filter(|p| p.time <= time)
            .cloned()
            .collect(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::point::{Field, Series};
    use std::time::Duration;

    const S: i64 = 1_000_000_000;

    fn spec(period: u64, every: u64, align: bool, fill_period: bool) -> WindowSpec {
        WindowSpec {
            period: Duration::from_secs(period),
            every: Duration::from_secs(every),
            align,
            fill_period,
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
        Point {
            series: Arc::new(Series::new(
                Arc::from("requests"),
                vec![(Arc::from("host"), Arc::from(host))],
            )),
            group: Group::all(),
            fields: vec![(Arc::from("value"), Field::Float(v))],
            time: t,
            provenance: None,
        }
    }

    /// (batch time, [(host, point time)]) of each batch.
    fn summary(batches: &[Batch]) -> Vec<(i64, Vec<(String, i64)>)> {
        batches
            .iter()
            .map(|b| {
                (
                    b.time / S,
                    b.points
                        .iter()
                        .map(|p| (p.series.tag("host").unwrap_or("").to_owned(), p.time / S))
                        .collect(),
                )
            })
            .collect()
    }

    fn hosts(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter().map(|(h, t)| ((*h).to_owned(), *t)).collect()
    }

    #[test]
    fn one_series_emits_each_aligned_window_when_a_point_passes_its_end() {
        let mut w = Window::new(&spec(10, 10, true, false), alignment());
        let mut out = Vec::new();
        for t in [3, 7, 12, 19, 21] {
            w.point(point("a", t * S, 1.0), t * S, &mut out);
        }
        assert_eq!(
            summary(&out),
            vec![
                (10, hosts(&[("a", 3), ("a", 7)])),
                (20, hosts(&[("a", 12), ("a", 19)])),
            ]
        );
    }

    #[test]
    fn unaligned_windows_start_from_the_first_point_as_kapacitor() {
        let mut w = Window::new(&spec(10, 10, false, false), alignment());
        let mut out = Vec::new();
        for t in [3, 7, 13, 14, 26] {
            w.point(point("a", t * S, 1.0), t * S, &mut out);
        }
        // First end 3 + 10 = 13; the point at 13 emits [3, 13) and sets the next end to 23.
        assert_eq!(
            summary(&out),
            vec![
                (13, hosts(&[("a", 3), ("a", 7)])),
                (23, hosts(&[("a", 13), ("a", 14)])),
            ]
        );
    }

    #[test]
    fn overlapping_windows_share_points() {
        let mut w = Window::new(&spec(20, 10, true, false), alignment());
        let mut out = Vec::new();
        for t in [5, 15, 25] {
            w.point(point("a", t * S, 1.0), t * S, &mut out);
        }
        assert_eq!(
            summary(&out),
            vec![
                (10, hosts(&[("a", 5)])),
                (20, hosts(&[("a", 5), ("a", 15)]))
            ]
        );
    }

    #[test]
    fn fill_period_waits_for_a_whole_period() {
        let mut w = Window::new(&spec(20, 10, true, true), alignment());
        let mut out = Vec::new();
        for t in [5, 15, 25, 35] {
            w.point(point("a", t * S, 1.0), t * S, &mut out);
        }
        // First period ends at 25; aligned to 20, then one `every` later: 30.
        assert_eq!(summary(&out), vec![(30, hosts(&[("a", 15), ("a", 25)]))]);
    }

    #[test]
    fn a_window_waits_for_every_live_series_of_the_group() {
        let mut w = Window::new(&spec(10, 10, true, false), alignment());
        let mut out = Vec::new();
        // Pod a flushes 0..9 then 10..19 before pod b's 0..9 batch arrives.
        for t in [1, 5] {
            w.point(point("a", t * S, 1.0), 10 * S, &mut out);
            w.point(point("b", t * S, 1.0), 10 * S, &mut out);
        }
        w.point(point("a", 11 * S, 1.0), 20 * S, &mut out);
        assert!(
            out.is_empty(),
            "b has not passed 10 s yet: {:?}",
            summary(&out)
        );
        w.point(point("b", 8 * S, 1.0), 22 * S, &mut out);
        w.point(point("b", 12 * S, 1.0), 22 * S, &mut out);
        assert_eq!(
            summary(&out),
            vec![(
                10,
                hosts(&[("a", 1), ("b", 1), ("a", 5), ("b", 5), ("b", 8)])
            )]
        );
    }

    #[test]
    fn a_silent_series_holds_a_window_only_for_the_lateness_bound() {
        let mut w = Window::new(&spec(10, 10, true, false), alignment());
        let mut out = Vec::new();
        w.point(point("a", S, 1.0), S, &mut out);
        w.point(point("b", S, 1.0), S, &mut out);
        w.point(point("a", 11 * S, 1.0), 12 * S, &mut out);
        w.tick(26 * S, &mut out);
        assert!(out.is_empty());
        w.tick(27 * S, &mut out);
        assert_eq!(summary(&out), vec![(10, hosts(&[("a", 1), ("b", 1)]))]);
    }

    #[test]
    fn late_points_are_dropped_and_duplicates_replace() {
        let mut w = Window::new(&spec(10, 10, true, false), alignment());
        let mut out = Vec::new();
        w.point(point("a", 2 * S, 1.0), 0, &mut out);
        w.point(point("a", 2 * S, 5.0), 0, &mut out);
        w.point(point("a", 12 * S, 1.0), 0, &mut out);
        w.point(point("a", 3 * S, 1.0), 0, &mut out);
        assert_eq!(w.stats.duplicate_points, 1);
        assert_eq!(w.stats.late_points, 1);
        assert_eq!(out.len(), 1);
        let values: Vec<Option<f64>> = out[0]
            .points
            .iter()
            .map(|p| p.field("value").and_then(Field::as_f64))
            .collect();
        assert_eq!(values, vec![Some(5.0)]);
    }

    #[test]
    fn every_zero_emits_on_each_point_the_trailing_period() {
        let mut w = Window::new(&spec(10, 0, false, false), alignment());
        let mut out = Vec::new();
        for t in [1, 5, 12] {
            w.point(point("a", t * S, 1.0), 0, &mut out);
        }
        assert_eq!(
            summary(&out),
            vec![
                (1, hosts(&[("a", 1)])),
                (5, hosts(&[("a", 1), ("a", 5)])),
                (12, hosts(&[("a", 5), ("a", 12)])),
            ]
        );
    }

    #[test]
    fn quiet_groups_are_freed() {
        let mut w = Window::new(&spec(10, 10, true, false), alignment());
        let mut out = Vec::new();
        w.point(point("a", S, 1.0), 0, &mut out);
        assert_eq!(w.cardinality(), 1);
        w.tick(599 * S, &mut out);
        assert_eq!(w.cardinality(), 1);
        w.tick(600 * S, &mut out);
        assert_eq!(w.cardinality(), 0);
        assert_eq!(w.stats.expired_series, 1);
    }
}
