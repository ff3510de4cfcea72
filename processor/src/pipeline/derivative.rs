//! `derivative(field)`: the rate of change per group between consecutive points.

use std::sync::Arc;

use crate::tick::nodes::DerivativeSpec;

use super::nodes::{Error, nanos};
use super::point::{Batch, FastMap, Field, Group, Point};

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
        super::intern::shrink_map(&mut self.previous);
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::pipeline::point::Series;
    use std::time::Duration;

    const S: i64 = 1_000_000_000;

    /// A `requests` point of `host` (its own group) at second `t` with field `counter`.
    pub(in crate::pipeline) fn point(host: &str, t: i64, counter: f64) -> Point {
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
            provenance: None,
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
}
