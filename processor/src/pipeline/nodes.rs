//! The per-point nodes: from, where, groupBy, derivative, movingAverage, eval. Each is a
//! state machine over points; time ("now", the processor clock) is passed in.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::point::PointRef;
use crate::tick::FieldValue;
use crate::tick::lambda::{EvalError, Val, WithFields};
use crate::tick::nodes::{
    DerivativeSpec, EvalSpec, FromSpec, GroupBySpec, Keep, MovingAverageSpec, WhereSpec,
};

use super::point::{Batch, FNV_START, FastMap, Field, Group, Point, Series, fnv1a};

/// Why a node dropped a point (counted in the node's `errors`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Eval(#[from] EvalError),
    #[error("field {0:?} is missing or not numeric")]
    NotNumeric(String),
    #[error("expression {name:?} gave {got}, which cannot be a {what}")]
    Unrepresentable {
        name: String,
        got: &'static str,
        what: &'static str,
    },
}

struct Interned {
    /// The tags as the writer ordered them (compared in order, cheaper than a lookup).
    written: Vec<(Arc<str>, Arc<str>)>,
    series: Arc<Series>,
    group: Arc<Group>,
    field_names: Vec<Arc<str>>,
    last_seen: i64,
}

/// `from()`: filters written points, floors/rounds their time, assigns their group. Interns
/// series so every point of one series shares one `Arc<Series>`.
pub struct From {
    spec: FromSpec,
    dims: Vec<Arc<str>>,
    interned: FastMap<u64, Vec<Interned>>,
    /// Points further ahead of the processor clock than this are dropped.
    future_limit_ns: i64,
    /// Points dropped for being stamped too far ahead.
    pub future_points: u64,
}

fn intern_name(names: &mut Vec<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(found) = names.iter().find(|n| &***n == name) {
        return Arc::clone(found);
    }
    let new: Arc<str> = Arc::from(name);
    names.push(Arc::clone(&new));
    new
}

impl From {
    /// `future_limit_ns`: how far ahead of the processor clock a point may be stamped.
    pub fn new(spec: &FromSpec, future_limit_ns: i64) -> From {
        let mut dims: Vec<Arc<str>> = spec
            .group_by
            .tags
            .iter()
            .map(|t| Arc::from(t.as_str()))
            .collect();
        dims.sort();
        dims.dedup();
        From {
            spec: spec.clone(),
            dims,
            interned: FastMap::default(),
            future_limit_ns,
            future_points: 0,
        }
    }

    /// Series with state (for stats).
    pub fn cardinality(&self) -> usize {
        self.interned.values().map(Vec::len).sum()
    }

    /// The point as the rest of the pipeline sees it, or `None` when filtered out.
    pub fn point(&mut self, p: &PointRef<'_>, now: i64) -> Result<Option<Point>, Error> {
        if self.spec.database.as_deref().is_some_and(|d| d != p.db())
            || self
                .spec
                .retention_policy
                .as_deref()
                .is_some_and(|r| r != p.rp())
            || self
                .spec
                .measurement
                .as_deref()
                .is_some_and(|m| m != p.measurement())
        {
            return Ok(None);
        }
        if p.time() > now.saturating_add(self.future_limit_ns) {
            self.future_points += 1;
            return Ok(None);
        }
        if let Some(predicate) = &self.spec.where_
            && !predicate.eval_bool(p)?
        {
            return Ok(None);
        }
        let mut key = fnv1a(FNV_START, p.measurement().as_bytes());
        for (k, v) in p.tags() {
            key = fnv1a(key, &[0]);
            key = fnv1a(key, k.as_bytes());
            key = fnv1a(key, &[1]);
            key = fnv1a(key, v.as_bytes());
        }
        let candidates = self.interned.entry(key).or_default();
        let index = candidates.iter().position(|i| {
            &*i.series.measurement == p.measurement()
                && i.written.len() == p.tags().len()
                && i.written
                    .iter()
                    .zip(p.tags())
                    .all(|((k, v), (pk, pv))| **k == *pk && **v == *pv)
        });
        let entry = match index.and_then(|i| candidates.get_mut(i)) {
            Some(entry) => entry,
            None => {
                let written: Vec<(Arc<str>, Arc<str>)> = p
                    .tags()
                    .map(|(k, v)| (Arc::from(k), Arc::from(v)))
                    .collect();
                let series = Series::new(Arc::from(p.measurement()), written.clone());
                let group = if self.dims.is_empty() && !self.spec.group_by.all {
                    if self.spec.group_by_measurement {
                        Group::of(&series, &[], false, true)
                    } else {
                        Group::new(String::new(), Vec::new())
                    }
                } else {
                    Group::of(
                        &series,
                        &self.dims,
                        self.spec.group_by.all,
                        self.spec.group_by_measurement,
                    )
                };
                candidates.push(Interned {
                    written,
                    series: Arc::new(series),
                    group: Arc::new(group),
                    field_names: Vec::new(),
                    last_seen: now,
                });
                let last = candidates.len() - 1;
                match candidates.get_mut(last) {
                    Some(entry) => entry,
                    None => return Ok(None),
                }
            }
        };
        entry.last_seen = now;
        let fields = p
            .fields()
            .map(|(k, v)| {
                (
                    intern_name(&mut entry.field_names, k),
                    Field::from_borrowed(v),
                )
            })
            .collect();
        let mut time = p.time();
        if let Some(d) = self.spec.truncate.and_then(nanos) {
            time -= time.rem_euclid(d);
        }
        if let Some(d) = self.spec.round.and_then(nanos) {
            let rem = time.rem_euclid(d);
            time -= rem;
            if rem * 2 >= d {
                time = time.saturating_add(d);
            }
        }
        Ok(Some(Point {
            series: Arc::clone(&entry.series),
            group: Arc::clone(&entry.group),
            fields,
            time,
        }))
    }

    /// Frees series not seen for `expiry_ns`.
    pub fn expire(&mut self, now: i64, expiry_ns: i64) {
        for list in self.interned.values_mut() {
            list.retain(|i| now.saturating_sub(i.last_seen) < expiry_ns);
        }
        self.interned.retain(|_, list| !list.is_empty());
    }
}

/// A duration in nanoseconds, when positive and representable.
pub fn nanos(d: std::time::Duration) -> Option<i64> {
    i64::try_from(d.as_nanos()).ok().filter(|n| *n > 0)
}

/// `where(lambda)`: keeps points for which the predicate is true.
pub fn where_keeps(spec: &WhereSpec, point: &Point) -> Result<bool, Error> {
    Ok(spec.predicate.eval_bool(point)?)
}

/// `groupBy(...)`: re-groups points; tags are untouched.
pub struct GroupBy {
    dims: Vec<Arc<str>>,
    all: bool,
    by_measurement: bool,
    cache: FastMap<Arc<Series>, (Arc<Group>, i64)>,
}

impl GroupBy {
    pub fn new(spec: &GroupBySpec) -> GroupBy {
        let mut dims: Vec<Arc<str>> = spec
            .dimensions
            .tags
            .iter()
            .map(|t| Arc::from(t.as_str()))
            .collect();
        dims.sort();
        dims.dedup();
        GroupBy {
            dims,
            all: spec.dimensions.all,
            by_measurement: spec.by_measurement,
            cache: FastMap::default(),
        }
    }

    pub fn cardinality(&self) -> usize {
        self.cache.len()
    }

    pub fn point(&mut self, mut point: Point, now: i64) -> Point {
        let entry = self
            .cache
            .entry(Arc::clone(&point.series))
            .or_insert_with(|| {
                let group = Group::of(&point.series, &self.dims, self.all, self.by_measurement);
                (Arc::new(group), now)
            });
        entry.1 = now;
        point.group = Arc::clone(&entry.0);
        point
    }

    /// Kapacitor on a batch: its points split into one batch per new group (same time and
    /// name), in order of first appearance.
    pub fn batch(&mut self, batch: Batch, now: i64) -> Vec<Batch> {
        let mut out: Vec<Batch> = Vec::new();
        for point in batch.points {
            let point = self.point(point, now);
            match out.iter_mut().find(|b| b.group == point.group) {
                Some(b) => b.points.push(point),
                None => out.push(Batch {
                    name: Arc::clone(&batch.name),
                    group: Arc::clone(&point.group),
                    time: batch.time,
                    points: vec![point],
                }),
            }
        }
        out
    }

    pub fn expire(&mut self, now: i64, expiry_ns: i64) {
        self.cache
            .retain(|_, (_, seen)| now.saturating_sub(*seen) < expiry_ns);
    }
}

/// Node-specific counters of `derivative`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DerivativeStats {
    /// Decreases treated as a restart from zero (only with `.nonNegative()`).
    pub counter_resets: u64,
    /// Points with the same time as the series' previous one (a retried batch).
    pub duplicate_points: u64,
    /// Points older than the series' previous one.
    pub out_of_order_points: u64,
    /// Pairs of points whose time difference or rate does not fit (times centuries apart,
    /// values near the float limits): skipped, the later point primes the next pair.
    pub overflowed_pairs: u64,
}

struct Previous {
    time: i64,
    value: f64,
    last_seen: i64,
}

/// `derivative(field)`: per group, `(cur - prev) / (elapsed / unit)`, stamped with the current
/// point's time and carrying its fields plus `as` (Kapacitor >= 1.3). The first point of a
/// group primes it. With `.nonNegative()` a decrease is a counter restart from zero
/// (Prometheus `rate`): the rate is `cur / elapsed`, so a reset loses no requests. Points at
/// or before the previous time are dropped (duplicates never count twice).
pub struct Derivative {
    field: String,
    as_: Arc<str>,
    unit_ns: f64,
    non_negative: bool,
    previous: FastMap<Arc<Group>, Previous>,
    pub stats: DerivativeStats,
}

impl Derivative {
    pub fn new(spec: &DerivativeSpec) -> Derivative {
        Derivative {
            field: spec.field.clone(),
            as_: Arc::from(spec.as_.as_str()),
            unit_ns: nanos(spec.unit).map_or(1e9, |n| n as f64),
            non_negative: spec.non_negative,
            previous: FastMap::default(),
            stats: DerivativeStats::default(),
        }
    }

    pub fn cardinality(&self) -> usize {
        self.previous.len()
    }

    pub fn point(&mut self, mut point: Point, now: i64) -> Result<Option<Point>, Error> {
        let Some(value) = point.field(&self.field).and_then(Field::as_f64) else {
            return Err(Error::NotNumeric(self.field.clone()));
        };
        let Some(prev) = self.previous.get_mut(&point.group) else {
            self.previous.insert(
                Arc::clone(&point.group),
                Previous {
                    time: point.time,
                    value,
                    last_seen: now,
                },
            );
            return Ok(None);
        };
        prev.last_seen = now;
        let Some(rate) = rate(
            &mut self.stats,
            self.non_negative,
            self.unit_ns,
            prev,
            point.time,
            value,
        ) else {
            return Ok(None);
        };
        self.set_rate(&mut point, rate);
        Ok(Some(point))
    }

    fn set_rate(&self, point: &mut Point, rate: f64) {
        match point.fields.iter_mut().find(|(k, _)| *k == self.as_) {
            Some((_, v)) => *v = Field::Float(rate),
            None => point
                .fields
                .push((Arc::clone(&self.as_), Field::Float(rate))),
        }
    }

    /// Kapacitor on a batch: the rates between the batch's consecutive points (its first point
    /// primes; nothing is carried between batches). Points without the field are dropped and
    /// returned as errors.
    pub fn batch(&mut self, mut batch: Batch) -> (Batch, Vec<Error>) {
        let mut errors = Vec::new();
        let mut prev: Option<Previous> = None;
        let points = std::mem::take(&mut batch.points);
        for mut point in points {
            let Some(value) = point.field(&self.field).and_then(Field::as_f64) else {
                errors.push(Error::NotNumeric(self.field.clone()));
                continue;
            };
            let Some(p) = prev.as_mut() else {
                prev = Some(Previous {
                    time: point.time,
                    value,
                    last_seen: 0,
                });
                continue;
            };
            if let Some(rate) = rate(
                &mut self.stats,
                self.non_negative,
                self.unit_ns,
                p,
                point.time,
                value,
            ) {
                self.set_rate(&mut point, rate);
                batch.points.push(point);
            }
        }
        (batch, errors)
    }

    pub fn expire(&mut self, now: i64, expiry_ns: i64) {
        self.previous
            .retain(|_, p| now.saturating_sub(p.last_seen) < expiry_ns);
    }
}

/// The rate from `prev` to (`time`, `value`), advancing `prev`; `None` for a duplicate or
/// older point (counted). With `non_negative` a decrease is a restart from zero.
fn rate(
    stats: &mut DerivativeStats,
    non_negative: bool,
    unit_ns: f64,
    prev: &mut Previous,
    time: i64,
    value: f64,
) -> Option<f64> {
    if time == prev.time {
        stats.duplicate_points += 1;
        return None;
    }
    if time < prev.time {
        stats.out_of_order_points += 1;
        return None;
    }
    let elapsed = time.checked_sub(prev.time);
    let mut diff = value - prev.value;
    prev.time = time;
    prev.value = value;
    let Some(elapsed) = elapsed else {
        stats.overflowed_pairs += 1;
        return None;
    };
    if diff < 0.0 && non_negative {
        stats.counter_resets += 1;
        diff = value.max(0.0);
    }
    let rate = diff / (elapsed as f64 / unit_ns);
    if !rate.is_finite() {
        stats.overflowed_pairs += 1;
        return None;
    }
    Some(rate)
}

struct Window {
    values: VecDeque<f64>,
    sum: f64,
    out_series: Arc<Series>,
    last_seen: i64,
}

/// `movingAverage(field, n)`: per group the mean of the last `n` values, from the n-th point
/// on, stamped with the latest point's time; output tags are the group's dimensions.
pub struct MovingAverage {
    field: String,
    count: usize,
    as_: Arc<str>,
    windows: FastMap<Arc<Group>, Window>,
}

impl MovingAverage {
    pub fn new(spec: &MovingAverageSpec) -> MovingAverage {
        MovingAverage {
            field: spec.field.clone(),
            count: spec.count.max(1),
            as_: Arc::from(spec.as_.as_str()),
            windows: FastMap::default(),
        }
    }

    pub fn cardinality(&self) -> usize {
        self.windows.len()
    }

    pub fn point(&mut self, point: Point, now: i64) -> Result<Option<Point>, Error> {
        let Some(value) = point.field(&self.field).and_then(Field::as_f64) else {
            return Err(Error::NotNumeric(self.field.clone()));
        };
        let count = self.count;
        let window = self
            .windows
            .entry(Arc::clone(&point.group))
            .or_insert_with(|| Window {
                // Grows with the points that arrive, not with the count asked for.
                values: VecDeque::new(),
                sum: 0.0,
                out_series: Arc::new(Series::new(
                    Arc::clone(&point.series.measurement),
                    point.group.dims.clone(),
                )),
                last_seen: now,
            });
        window.last_seen = now;
        window.values.push_back(value);
        window.sum += value;
        if window.values.len() > count
            && let Some(old) = window.values.pop_front()
        {
            window.sum -= old;
        }
        if window.values.len() < count {
            return Ok(None);
        }
        // Recompute now and then so float drift does not accumulate.
        if window.values.len() == count && point.time % 64 == 0 {
            window.sum = window.values.iter().sum();
        }
        Ok(Some(Point {
            series: Arc::clone(&window.out_series),
            group: point.group,
            fields: vec![(
                Arc::clone(&self.as_),
                Field::Float(window.sum / count as f64),
            )],
            time: point.time,
        }))
    }

    /// Kapacitor on a batch: the mean of the last `n` values at each of the batch's points from
    /// the n-th on (nothing carried between batches); tags are the group's dimensions.
    pub fn batch(&mut self, mut batch: Batch) -> (Batch, Vec<Error>) {
        let mut errors = Vec::new();
        let series = Arc::new(Series::new(
            Arc::clone(&batch.name),
            batch.group.dims.clone(),
        ));
        let mut values: VecDeque<f64> = VecDeque::new();
        let points = std::mem::take(&mut batch.points);
        for point in points {
            let Some(value) = point.field(&self.field).and_then(Field::as_f64) else {
                errors.push(Error::NotNumeric(self.field.clone()));
                continue;
            };
            values.push_back(value);
            if values.len() > self.count {
                values.pop_front();
            }
            if values.len() == self.count {
                let mean = values.iter().sum::<f64>() / self.count as f64;
                batch.points.push(Point {
                    series: Arc::clone(&series),
                    group: Arc::clone(&point.group),
                    fields: vec![(Arc::clone(&self.as_), Field::Float(mean))],
                    time: point.time,
                });
            }
        }
        (batch, errors)
    }

    pub fn expire(&mut self, now: i64, expiry_ns: i64) {
        self.windows
            .retain(|_, w| now.saturating_sub(w.last_seen) < expiry_ns);
    }
}

/// `eval(lambdas...).as(names...)`.
pub fn eval(spec: &EvalSpec, point: Point) -> Result<Point, Error> {
    let mut results: Vec<(Arc<str>, Field)> = Vec::with_capacity(spec.expressions.len());
    for (lambda, name) in spec.expressions.iter().zip(&spec.as_) {
        let borrowed: Vec<(&str, FieldValue<'_>)> =
            results.iter().map(|(k, v)| (&**k, v.borrow())).collect();
        let scope = WithFields {
            base: &point,
            extra: &borrowed,
        };
        let value = match lambda.eval(&scope)? {
            Val::Bool(b) => Field::Bool(b),
            Val::Int(i) | Val::Duration(i) | Val::Time(i) => Field::Int(i),
            Val::Float(x) => Field::Float(x),
            Val::Str(s) => Field::Str(Arc::from(&*s)),
            Val::Regex(_) => {
                return Err(Error::Unrepresentable {
                    name: name.clone(),
                    got: "regex",
                    what: "field",
                });
            }
        };
        results.push((Arc::from(name.as_str()), value));
    }
    let mut new_tags: Vec<(Arc<str>, Arc<str>)> = Vec::new();
    let mut result_fields = Vec::new();
    for (name, value) in results {
        if spec.tags.iter().any(|t| **t == *name) {
            match value {
                Field::Str(s) => new_tags.push((name, s)),
                other => {
                    return Err(Error::Unrepresentable {
                        name: name.to_string(),
                        got: match other {
                            Field::Float(_) => "float",
                            Field::Int(_) => "int",
                            _ => "bool",
                        },
                        what: "tag",
                    });
                }
            }
        } else {
            result_fields.push((name, value));
        }
    }
    let mut fields = match &spec.keep {
        Keep::None => Vec::new(),
        Keep::All => point
            .fields
            .iter()
            .filter(|(k, _)| !result_fields.iter().any(|(r, _)| r == k))
            .cloned()
            .collect(),
        Keep::Only(list) => point
            .fields
            .iter()
            .filter(|(k, _)| list.iter().any(|l| **l == **k))
            .filter(|(k, _)| !result_fields.iter().any(|(r, _)| r == k))
            .cloned()
            .collect(),
    };
    match &spec.keep {
        Keep::Only(list) => fields.extend(
            result_fields
                .into_iter()
                .filter(|(k, _)| list.iter().any(|l| **l == **k)),
        ),
        _ => fields.extend(result_fields),
    }
    let series = if new_tags.is_empty() {
        point.series
    } else {
        let mut tags = point.series.tags.clone();
        tags.retain(|(k, _)| !new_tags.iter().any(|(n, _)| n == k));
        tags.extend(new_tags);
        Arc::new(Series::new(Arc::clone(&point.series.measurement), tags))
    };
    Ok(Point {
        series,
        group: point.group,
        fields,
        time: point.time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: i64 = 1_000_000_000;

    fn point(host: &str, t: i64, counter: f64) -> Point {
        let series = Series::new(
            Arc::from("requests"),
            vec![(Arc::from("host"), Arc::from(host))],
        );
        let group = Group::of(&series, &[Arc::from("host")], false, false);
        Point {
            series: Arc::new(series),
            group: Arc::new(group),
            fields: vec![(Arc::from("counter"), Field::Float(counter))],
            time: t * S,
        }
    }

    fn derivative() -> Derivative {
        Derivative::new(&DerivativeSpec {
            field: "counter".into(),
            unit: Duration::from_secs(1),
            non_negative: true,
            as_: "rate".into(),
        })
    }

    fn rate(p: Option<Point>) -> Option<(i64, f64)> {
        p.map(|p| {
            (
                p.time / S,
                p.field("rate").and_then(Field::as_f64).unwrap_or(f64::NAN),
            )
        })
    }

    #[test]
    fn the_first_point_primes_and_later_ones_carry_the_current_time() {
        let mut d = derivative();
        assert_eq!(rate(d.point(point("a", 10, 100.0), 0).unwrap()), None);
        assert_eq!(
            rate(d.point(point("a", 12, 120.0), 0).unwrap()),
            Some((12, 10.0))
        );
    }

    #[test]
    fn counter_reset_loses_no_interval() {
        let mut d = derivative();
        d.point(point("a", 1, 500.0), 0).unwrap();
        // restarted: counted from zero, so 30 requests in that second.
        assert_eq!(
            rate(d.point(point("a", 2, 30.0), 0).unwrap()),
            Some((2, 30.0))
        );
        assert_eq!(
            rate(d.point(point("a", 3, 50.0), 0).unwrap()),
            Some((3, 20.0))
        );
        assert_eq!(d.stats.counter_resets, 1);
    }

    #[test]
    fn duplicate_and_older_points_do_not_count_twice() {
        let mut d = derivative();
        d.point(point("a", 1, 10.0), 0).unwrap();
        d.point(point("a", 2, 20.0), 0).unwrap();
        assert_eq!(rate(d.point(point("a", 2, 20.0), 0).unwrap()), None);
        assert_eq!(rate(d.point(point("a", 1, 10.0), 0).unwrap()), None);
        assert_eq!(
            rate(d.point(point("a", 3, 25.0), 0).unwrap()),
            Some((3, 5.0))
        );
        assert_eq!(d.stats.duplicate_points, 1);
        assert_eq!(d.stats.out_of_order_points, 1);
    }

    #[test]
    fn pairs_at_extreme_times_are_counted_and_skipped_not_overflowed() {
        let mut d = derivative();
        let mut early = point("a", 0, 10.0);
        early.time = i64::MIN + 1;
        let mut late = point("a", 0, 20.0);
        late.time = i64::MAX - 1;
        d.point(early, 0).unwrap();
        assert!(d.point(late, 0).unwrap().is_none());
        assert_eq!(d.stats.overflowed_pairs, 1);
        // The later point primes the next pair.
        let mut next = point("a", 0, 30.0);
        next.time = i64::MAX;
        let rate = d
            .point(next, 0)
            .unwrap()
            .and_then(|p| p.field("rate").and_then(Field::as_f64));
        assert_eq!(rate, Some(10.0 * 1e9));
    }

    #[test]
    fn a_rate_beyond_the_float_range_is_skipped() {
        let mut d = derivative();
        d.point(point("a", 1, -f64::MAX), 0).unwrap();
        assert!(d.point(point("a", 2, f64::MAX), 0).unwrap().is_none());
        assert_eq!(d.stats.overflowed_pairs, 1);
    }

    #[test]
    fn vanished_series_state_is_freed() {
        let mut d = derivative();
        d.point(point("a", 1, 10.0), 0).unwrap();
        d.point(point("b", 1, 10.0), 5 * S).unwrap();
        d.expire(10 * S, 6 * S);
        assert_eq!(d.cardinality(), 1);
    }

    #[test]
    fn moving_average_waits_for_n_points_then_averages_the_last_n() {
        let mut m = MovingAverage::new(&MovingAverageSpec {
            field: "counter".into(),
            count: 2,
            as_: "avg".into(),
        });
        assert!(m.point(point("a", 1, 1.0), 0).unwrap().is_none());
        let p = m.point(point("a", 2, 3.0), 0).unwrap().unwrap();
        assert_eq!(p.field("avg"), Some(&Field::Float(2.0)));
        let p = m.point(point("a", 3, 5.0), 0).unwrap().unwrap();
        assert_eq!(p.field("avg"), Some(&Field::Float(4.0)));
        assert_eq!(p.series.tags.len(), 1, "output carries the group's tags");
    }
}
