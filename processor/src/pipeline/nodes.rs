//! The per-point nodes that keep no past values: from, where, groupBy, eval, and the error
//! every per-point node reports. Each is a state machine over points; time ("now", the
//! processor clock) is passed in.

use std::sync::Arc;

use crate::point::PointRef;
use crate::tick::FieldValue;
use crate::tick::lambda::{EvalError, Val, WithFields};
use crate::tick::nodes::{EvalSpec, FromSpec, GroupBySpec, Keep, WhereSpec};

use hashbrown::HashTable;

use super::intern::{Groups, SWEEP_EVERY_NS, Strings, shrink_map, sparse};
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

/// A tag: key and value.
type Tag = (Arc<str>, Arc<str>);

/// One series the from node has seen.
struct Interned {
    /// [`written_hash`] of the point that made it.
    hash: u64,
    /// The tags in the order they were written, kept only when that is not the series' own
    /// (sorted, one value per key) order; the common writer sorts its tags and keeps none.
    written: Option<Box<[Tag]>>,
    series: Arc<Series>,
    group: Arc<Group>,
    last_seen: i64,
}

impl Interned {
    /// Whether `p` is a point of this series, written with the same tags in the same order.
    fn matches(&self, p: &PointRef<'_>) -> bool {
        let tags = self.written.as_deref().unwrap_or(&self.series.tags);
        *self.series.measurement == *p.measurement()
            && tags.len() == p.tags().len()
            && tags
                .iter()
                .zip(p.tags())
                .all(|((k, v), (pk, pv))| **k == *pk && **v == *pv)
    }
}

/// The hash of a point's measurement and tags in their written order.
fn written_hash(p: &PointRef<'_>) -> u64 {
    let mut key = fnv1a(FNV_START, p.measurement().as_bytes());
    for (k, v) in p.tags() {
        key = fnv1a(key, &[0]);
        key = fnv1a(key, k.as_bytes());
        key = fnv1a(key, &[1]);
        key = fnv1a(key, v.as_bytes());
    }
    key
}

/// `from()`: filters written points, floors/rounds their time, assigns their group. Interns
/// series so every point of one series shares one `Arc<Series>`, and interns their strings
/// and groups so series share what they have in common (a tag key, a Deployment's name).
pub struct From {
    spec: FromSpec,
    dims: Vec<Arc<str>>,
    interned: HashTable<Interned>,
    strings: Strings,
    groups: Groups,
    /// The group of every point when the node groups by nothing.
    ungrouped: Arc<Group>,
    /// Processor time of the next sweep of `strings` and `groups`.
    next_sweep: i64,
    /// Points further ahead of the processor clock than this are dropped.
    future_limit_ns: i64,
    /// Points dropped for being stamped too far ahead.
    pub future_points: u64,
    /// Points of new series dropped because the task was at its series limit.
    pub series_over_limit: u64,
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
            interned: HashTable::new(),
            strings: Strings::default(),
            groups: Groups::default(),
            ungrouped: Group::all(),
            next_sweep: i64::MIN,
            future_limit_ns,
            future_points: 0,
            series_over_limit: 0,
        }
    }

    /// Series with state (for stats).
    pub fn cardinality(&self) -> usize {
        self.interned.len()
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
        let hash = written_hash(p);
        let entry = match self
            .interned
            .find_mut(hash, |i| i.hash == hash && i.matches(p))
        {
            Some(entry) => entry,
            None => {
                if !limit.admit() {
                    self.series_over_limit += 1;
                    limit.refused(|| series_key(p));
                    return Ok(None);
                }
                let interned = self.intern(p, hash, now);
                self.interned
                    .insert_unique(hash, interned, |i| i.hash)
                    .into_mut()
            }
        };
        entry.last_seen = now;
        let (series, group) = (Arc::clone(&entry.series), Arc::clone(&entry.group));
        let strings = &mut self.strings;
        let fields = p
            .fields()
            .map(|(k, v)| (strings.get(k), Field::from_borrowed(v)))
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
            series,
            group,
            fields,
            time,
            provenance: None,
        }))
    }

    /// The state of a new series: its strings and group shared with the series before it.
    fn intern(&mut self, p: &PointRef<'_>, hash: u64, now: i64) -> Interned {
        let written: Vec<(Arc<str>, Arc<str>)> = p
            .tags()
            .map(|(k, v)| (self.strings.get(k), self.strings.get(v)))
            .collect();
        let series = Series::new(self.strings.get(p.measurement()), written.clone());
        let written = (series.tags != written).then(|| written.into_boxed_slice());
        let group = if self.dims.is_empty() && !self.spec.group_by.all {
            if self.spec.group_by_measurement {
                self.groups.get(Group::of(&series, &[], false, true))
            } else {
                Arc::clone(&self.ungrouped)
            }
        } else {
            self.groups.get(Group::of(
                &series,
                &self.dims,
                self.spec.group_by.all,
                self.spec.group_by_measurement,
            ))
        };
        Interned {
            hash,
            written,
            series: Arc::new(series),
            group,
            last_seen: now,
        }
    }

    /// Frees series not seen for `expiry_ns`; returns how many.
    pub fn expire(&mut self, now: i64, expiry_ns: i64) -> usize {
        let before = self.interned.len();
        self.interned
            .retain(|i| now.saturating_sub(i.last_seen) < expiry_ns);
        let freed = before - self.interned.len();
        if sparse(self.interned.len(), self.interned.capacity()) {
            self.interned
                .shrink_to(self.interned.len().saturating_mul(2), |i| i.hash);
        }
        if now >= self.next_sweep {
            self.next_sweep = now.saturating_add(SWEEP_EVERY_NS);
            self.groups.sweep();
            self.strings.sweep();
        }
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
    /// The series of one new group share its `Arc<Group>`.
    groups: Groups,
    /// Processor time of the next sweep of `groups`.
    next_sweep: i64,
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
            groups: Groups::default(),
            next_sweep: i64::MIN,
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
                (self.groups.get(group), now)
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
        shrink_map(&mut self.cache);
        if now >= self.next_sweep {
            self.next_sweep = now.saturating_add(SWEEP_EVERY_NS);
            self.groups.sweep();
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::{Precision, parse_body};
    use crate::tick::nodes::Dimensions;

    const S: i64 = 1_000_000_000;

    fn from(group_by: &[&str]) -> From {
        From::new(
            &FromSpec {
                database: None,
                retention_policy: None,
                measurement: Some("m".into()),
                where_: None,
                group_by: Dimensions {
                    all: false,
                    tags: group_by.iter().map(|t| (*t).to_owned()).collect(),
                },
                group_by_measurement: false,
                truncate: None,
                round: None,
            },
            60 * S,
        )
    }

    /// The points of `body` through `node` at processor time `now`.
    fn feed(node: &mut From, body: &str, now: i64) -> Vec<Point> {
        let parsed = parse_body(
            body.as_bytes().to_vec(),
            "db".into(),
            "rp".into(),
            Precision::Nanoseconds,
            0,
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let mut limit = SeriesLimit::new(0);
        parsed
            .batch
            .points()
            .filter_map(|p| node.point(&p, now, &mut limit).ok().flatten())
            .collect()
    }

    #[test]
    fn series_share_their_group_and_strings_and_unsorted_writers_keep_their_order() {
        let mut node = from(&["deployment"]);
        let points = feed(
            &mut node,
            "m,deployment=web,host=a v=1 1\nm,host=b,deployment=web v=1 1\nm,deployment=web,host=a v=2 2\nm,host=b,deployment=web v=2 2",
            0,
        );
        assert_eq!(points.len(), 4);
        assert_eq!(
            node.cardinality(),
            2,
            "an unsorted writer's later points find its series"
        );
        let (a, b) = (&points[0], &points[1]);
        assert!(Arc::ptr_eq(&a.group, &b.group), "one group, shared");
        assert_eq!(a.group.id(), "deployment=web");
        assert!(Arc::ptr_eq(&a.series, &points[2].series));
        assert!(Arc::ptr_eq(&b.series, &points[3].series));
        assert_eq!(
            b.series.key(),
            "m,deployment=web,host=b",
            "the series is sorted"
        );
        assert!(
            Arc::ptr_eq(&a.series.tags[0].1, &b.series.tags[0].1)
                && Arc::ptr_eq(&a.group.dims[0].1, &a.series.tags[0].1),
            "the Deployment's name is one string"
        );
        assert!(
            Arc::ptr_eq(&a.fields[0].0, &b.fields[0].0),
            "field names too"
        );
    }

    #[test]
    fn expired_series_give_back_their_strings_groups_and_table() {
        let mut node = from(&["host"]);
        let body: String = (0..1000)
            .map(|i| format!("m,deployment=web,host=h{i} v=1 1\n"))
            .collect();
        drop(feed(&mut node, &body, 0));
        assert_eq!(node.cardinality(), 1000);
        let (strings, groups) = (node.strings.len(), node.groups.len());
        assert!(
            strings > 1000 && groups == 1000,
            "{strings} strings, {groups} groups"
        );
        let kept = feed(&mut node, "m,deployment=web,host=h0 v=2 2", 50 * S);
        assert_eq!(node.expire(70 * S, 60 * S), 999);
        assert_eq!(node.cardinality(), 1);
        assert_eq!(node.groups.len(), 1, "only the live series' group is left");
        assert!(
            node.strings.len() <= 6,
            "{} strings left",
            node.strings.len()
        );
        assert!(
            node.interned.capacity() < 64,
            "the table shrank: {}",
            node.interned.capacity()
        );
        drop(kept);
    }
}
