//! `movingAverage(field, n)`: per group, the mean of the last `n` values.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::tick::nodes::MovingAverageSpec;

use super::nodes::Error;
use super::point::{Batch, FastMap, Field, Group, Point, Series};

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
            provenance: point.provenance,
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
                    provenance: point.provenance.clone(),
                });
            }
        }
        (batch, errors)
    }

    pub fn expire(&mut self, now: i64, expiry_ns: i64) {
        self.windows
            .retain(|_, w| now.saturating_sub(w.last_seen) < expiry_ns);
        super::intern::shrink_map(&mut self.windows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::derivative::tests::point;

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
