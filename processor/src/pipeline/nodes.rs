//! The per-point nodes that keep no past values: from, where, groupBy, eval, and the error
//! every per-point node reports. Each is a state machine over points; time ("now", the
//! processor clock) is passed in.

use std::sync::Arc;

use crate::point::PointRef;
use crate::tick::FieldValue;
use crate::tick::lambda::{EvalError, Val, WithFields};
use crate::tick::nodes::{EvalSpec, FromSpec, GroupBySpec, Keep, WhereSpec};

use super::point::{Batch, FNV_START, FastMap, Field, Group, Point, Series, fnv1a};
use super::series_limit::SeriesLimit;

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
    /// Points of new series dropped because the task was at its series limit.
    pub series_over_limit: u64,
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
            series_over_limit: 0,
        }
    }

    /// Series with state (for stats).
    pub fn cardinality(&self) -> usize {
        self.interned.values().map(Vec::len).sum()
    }

    /// The point as the rest of the pipeline sees it, or `None` when filtered out or when it
    /// starts a series beyond the task's `limit` (counted in `series_over_limit`).
    pub fn point(
        &mut self,
        p: &PointRef<'_>,
        now: i64,
        limit: &mut SeriesLimit,
    ) -> Result<Option<Point>, Error> {
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
                if !limit.admit() {
                    self.series_over_limit += 1;
                    limit.refused(|| series_key(p));
                    if candidates.is_empty() {
                        self.interned.remove(&key);
                    }
                    return Ok(None);
                }
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
            provenance: None,
        }))
    }

    /// Frees series not seen for `expiry_ns`; returns how many.
    pub fn expire(&mut self, now: i64, expiry_ns: i64) -> usize {
        let mut freed = 0;
        for list in self.interned.values_mut() {
            let before = list.len();
            list.retain(|i| now.saturating_sub(i.last_seen) < expiry_ns);
            freed += before.saturating_sub(list.len());
        }
        self.interned.retain(|_, list| !list.is_empty());
        freed
    }
}

/// `measurement,tag=value,...` of a point, as it was written (for the limit's log line).
fn series_key(p: &PointRef<'_>) -> String {
    let mut key = p.measurement().to_owned();
    for (k, v) in p.tags() {
        key.push(',');
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
    key
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
        provenance: point.provenance,
    })
}
