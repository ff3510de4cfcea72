//! The points that flow between nodes: owned, cheap to clone (series and group are shared).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::point::FieldValue;
use crate::tick::PointScope;

/// A field value owned by a pipeline point.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(Arc<str>),
}

impl Field {
    /// The value as a float, for numbers.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Field::Float(v) => Some(*v),
            Field::Int(v) => Some(*v as f64),
            Field::Bool(_) | Field::Str(_) => None,
        }
    }

    pub(crate) fn borrow(&self) -> FieldValue<'_> {
        match self {
            Field::Float(v) => FieldValue::Float(*v),
            Field::Int(v) => FieldValue::Integer(*v),
            Field::Bool(v) => FieldValue::Boolean(*v),
            Field::Str(s) => FieldValue::String(s),
        }
    }

    pub(crate) fn from_borrowed(value: FieldValue<'_>) -> Field {
        match value {
            FieldValue::Float(v) => Field::Float(v),
            FieldValue::Integer(v) => Field::Int(v),
            FieldValue::Boolean(v) => Field::Bool(v),
            FieldValue::String(s) => Field::Str(Arc::from(s)),
        }
    }

    /// JSON for httpOut.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Field::Float(v) => serde_json::json!(v),
            Field::Int(v) => serde_json::json!(v),
            Field::Bool(v) => serde_json::json!(v),
            Field::Str(s) => serde_json::json!(&**s),
        }
    }
}

/// A measurement with its full, sorted tag set: one time series. Compared by content; the
/// hash is computed once.
#[derive(Clone)]
pub struct Series {
    pub measurement: Arc<str>,
    /// Sorted by key.
    pub tags: Vec<(Arc<str>, Arc<str>)>,
    hash: u64,
}

impl Series {
    pub fn new(measurement: Arc<str>, mut tags: Vec<(Arc<str>, Arc<str>)>) -> Series {
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        tags.dedup_by(|a, b| a.0 == b.0);
        let mut hash = fnv1a(FNV_START, measurement.as_bytes());
        for (k, v) in &tags {
            hash = fnv1a(hash, &[0]);
            hash = fnv1a(hash, k.as_bytes());
            hash = fnv1a(hash, &[1]);
            hash = fnv1a(hash, v.as_bytes());
        }
        Series {
            measurement,
            tags,
            hash,
        }
    }

    /// `measurement,tag=value,...` (unescaped: for people, not for line protocol).
    pub fn key(&self) -> String {
        let mut key = self.measurement.to_string();
        for (k, v) in &self.tags {
            key.push(',');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        key
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tag_shared(key).map(|v| &**v)
    }

    /// The value of tag `key`, shared (a group made from the series holds no copy).
    pub fn tag_shared(&self, key: &str) -> Option<&Arc<str>> {
        self.tags
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .and_then(|i| self.tags.get(i))
            .map(|(_, v)| v)
    }
}

impl PartialEq for Series {
    fn eq(&self, other: &Series) -> bool {
        std::ptr::eq(self, other)
            || self.hash == other.hash
                && self.measurement == other.measurement
                && self.tags == other.tags
    }
}

impl Eq for Series {}

impl Hash for Series {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.measurement)?;
        for (k, v) in &self.tags {
            write!(f, ",{k}={v}")?;
        }
        Ok(())
    }
}

/// The group a point belongs to: the dimension tags (and with `byMeasurement` the
/// measurement). Kapacitor's group id (`k1=v1,k2=v2`, dims sorted; with `byMeasurement` the
/// measurement and a newline first) is made from them when asked for ([`Group::id`]), not kept:
/// a task grouping by pod has a group per series. Compared by content; the hash is computed
/// once.
#[derive(Debug, Clone)]
pub struct Group {
    /// With `byMeasurement`: the measurement.
    pub measurement: Option<Arc<str>>,
    /// Dimension tags (missing tag = empty value), sorted by key.
    pub dims: Vec<(Arc<str>, Arc<str>)>,
    hash: u64,
}

impl PartialEq for Group {
    fn eq(&self, other: &Group) -> bool {
        std::ptr::eq(self, other)
            || (self.hash == other.hash
                && self.measurement == other.measurement
                && self.dims == other.dims)
    }
}

impl Eq for Group {}

impl Hash for Group {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// FNV-1a over bytes: a fast hash for short keys (series and group ids).
pub fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    let mut hash = hash;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The FNV offset basis, to start [`fnv1a`].
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// A hasher for keys that hash themselves to one `u64` ([`Series`], [`Group`], `u64`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Prehashed;

/// The hasher [`Prehashed`] builds.
#[derive(Debug, Default)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv1a(self.0 ^ FNV_START, bytes);
    }
    fn write_u64(&mut self, n: u64) {
        // mix, so maps that use the low bits spread well
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

impl std::hash::BuildHasher for Prehashed {
    type Hasher = PrehashedHasher;
    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

/// A map keyed by prehashed keys.
pub type FastMap<K, V> = std::collections::HashMap<K, V, Prehashed>;

impl Group {
    /// A group from its (optional) measurement and dimensions sorted by key.
    pub fn new(measurement: Option<Arc<str>>, dims: Vec<(Arc<str>, Arc<str>)>) -> Group {
        let mut hash = FNV_START;
        if let Some(m) = &measurement {
            hash = fnv1a(hash, m.as_bytes());
            hash = fnv1a(hash, b"\n");
        }
        for (k, v) in &dims {
            hash = fnv1a(hash, k.as_bytes());
            hash = fnv1a(hash, b"=");
            hash = fnv1a(hash, v.as_bytes());
            hash = fnv1a(hash, b",");
        }
        Group {
            measurement,
            dims,
            hash,
        }
    }

    /// The group of everything (no dimensions).
    pub fn all() -> Arc<Group> {
        Arc::new(Group::new(None, Vec::new()))
    }

    /// The group of `series` for sorted dimension names (`all`: every tag).
    pub fn of(series: &Series, dims: &[Arc<str>], all: bool, by_measurement: bool) -> Group {
        let mut pairs: Vec<(Arc<str>, Arc<str>)> = if all {
            series.tags.clone()
        } else {
            dims.iter()
                .map(|d| {
                    let value = series
                        .tag_shared(d)
                        .map_or_else(|| Arc::from(""), Arc::clone);
                    (Arc::clone(d), value)
                })
                .collect()
        };
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let measurement = by_measurement.then(|| Arc::clone(&series.measurement));
        Group::new(measurement, pairs)
    }

    /// Kapacitor's group id: `k1=v1,k2=v2` (dims sorted), after the measurement and a newline
    /// with `byMeasurement`.
    pub fn id(&self) -> String {
        let mut id = String::new();
        if let Some(m) = &self.measurement {
            id.push_str(m);
            id.push('\n');
        }
        for (i, (k, v)) in self.dims.iter().enumerate() {
            if i > 0 {
                id.push(',');
            }
            id.push_str(k);
            id.push('=');
            id.push_str(v);
        }
        id
    }
}

/// One point between nodes.
#[derive(Debug, Clone)]
pub struct Point {
    pub series: Arc<Series>,
    pub group: Arc<Group>,
    pub fields: Vec<(Arc<str>, Field)>,
    /// Nanoseconds since the Unix epoch.
    pub time: i64,
    /// For a total across series (an aggregate's output, and what is computed from it):
    /// which series made it; `None` for points of one series.
    pub provenance: Option<Arc<Provenance>>,
}

/// The series behind an aggregate's total, for decision records: a total that fell because a
/// pod went silent must read as such.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    /// How many series made the total.
    pub count: usize,
    /// Series in the total, with their latest point time (ns): at most [`MAX_NAMED`], the
    /// newest first.
    pub series: Vec<(Arc<Series>, i64)>,
    /// Series of the group that stopped reporting shortly before (gone within
    /// [`RECENTLY_GONE`]), with their last point time (ns).
    pub gone: Vec<(Arc<Series>, i64)>,
}

/// The most series a [`Provenance`] names (a group of 10,000 pods is counted, not listed).
pub const MAX_NAMED: usize = 64;

/// How long a series that stopped reporting is named beside its group's totals: about what a
/// moving average of a minute of points and a scale-down need to show the drop.
pub const RECENTLY_GONE: std::time::Duration = std::time::Duration::from_secs(120);

impl Provenance {
    /// From the series of a total (each once) and their latest point times, and the recently
    /// gone ones. Linear in the series: only the [`MAX_NAMED`] newest are sorted.
    pub fn new(
        mut series: Vec<(Arc<Series>, i64)>,
        gone: impl IntoIterator<Item = (Arc<Series>, i64)>,
    ) -> Provenance {
        let newest_first = |a: &(Arc<Series>, i64), b: &(Arc<Series>, i64)| {
            b.1.cmp(&a.1).then_with(|| a.0.tags.cmp(&b.0.tags))
        };
        let count = series.len();
        if count > MAX_NAMED {
            series.select_nth_unstable_by(MAX_NAMED, newest_first);
            series.truncate(MAX_NAMED);
            // The total is kept (by k8sAutoscale, in records): not the group's whole list.
            series.shrink_to_fit();
        }
        series.sort_unstable_by(newest_first);
        Provenance {
            count,
            series,
            gone: gone.into_iter().take(MAX_NAMED).collect(),
        }
    }

    /// The newest point time among the series in the total.
    pub fn newest(&self) -> Option<i64> {
        self.series.first().map(|(_, t)| *t)
    }
}

impl Point {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| v)
    }

    /// The point as one line of line protocol (tags sorted), nanosecond timestamp.
    pub fn to_line(&self, measurement: &str, extra_tags: &[(String, String)]) -> String {
        self.to_line_in(measurement, extra_tags, 1)
    }

    /// [`Point::to_line`] with the timestamp in units of `unit_ns` nanoseconds (truncated
    /// toward zero, as Kapacitor's `PrecisionString`); `unit_ns` below 1 means nanoseconds.
    pub fn to_line_in(
        &self,
        measurement: &str,
        extra_tags: &[(String, String)],
        unit_ns: i64,
    ) -> String {
        use std::fmt::Write;
        let mut out = escape(measurement, &[',', ' ']);
        let mut tags: Vec<(&str, &str)> = self
            .series
            .tags
            .iter()
            .map(|(k, v)| (&**k, &**v))
            .chain(extra_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        tags.sort_by(|a, b| a.0.cmp(b.0));
        tags.dedup_by(|a, b| a.0 == b.0);
        for (k, v) in tags {
            let _ = write!(
                out,
                ",{}={}",
                escape(k, &[',', '=', ' ']),
                escape(v, &[',', '=', ' '])
            );
        }
        for (i, (k, v)) in self.fields.iter().enumerate() {
            out.push(if i == 0 { ' ' } else { ',' });
            out.push_str(&escape(k, &[',', '=', ' ']));
            out.push('=');
            match v {
                Field::Float(x) if x.is_finite() => {
                    let _ = write!(out, "{x}");
                }
                Field::Float(_) => out.push('0'),
                Field::Int(x) => {
                    let _ = write!(out, "{x}i");
                }
                Field::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                Field::Str(s) => {
                    out.push('"');
                    out.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
                    out.push('"');
                }
            }
        }
        let _ = write!(out, " {}", self.time / unit_ns.max(1));
        out
    }
}

/// The points of one group over one window (Kapacitor's batch): what `window()` emits.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Measurement of the batch (the group's first point's).
    pub name: Arc<str>,
    pub group: Arc<Group>,
    /// End of the window (Kapacitor's `TMax`), ns: the time of a point reduced from it.
    pub time: i64,
    /// In time order.
    pub points: Vec<Point>,
}

/// What flows along an edge: single points (a stream edge) or batches (after a window).
#[derive(Debug, Clone)]
pub enum Message {
    Point(Point),
    Batch(Batch),
}

fn escape(text: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if special.contains(&c) || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl PointScope for Point {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Point::field(self, name).map(Field::borrow)
    }
    fn tag(&self, name: &str) -> Option<&str> {
        self.series.tag(name)
    }
    fn time(&self) -> i64 {
        self.time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_names_the_newest_series_and_counts_them_all() {
        let all: Vec<(Arc<Series>, i64)> = (0..100)
            .map(|i| (Arc::new(series(&[("host", &format!("pod{i:03}"))])), i % 10))
            .collect();
        let p = Provenance::new(all, []);
        assert_eq!(p.count, 100);
        assert_eq!(p.series.len(), MAX_NAMED);
        let times: Vec<i64> = p.series.iter().map(|(_, t)| *t).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
        assert_eq!(p.newest(), Some(9));
        // Ties in time go by tags: the ten series at time 9 are pod009, pod019, ...
        assert_eq!(p.series[0].0.tag("host"), Some("pod009"));
        assert_eq!(p.series[9].0.tag("host"), Some("pod099"));
        // At time 3 (after 6 x 10 newer ones) only four of ten are named.
        assert_eq!(times.iter().filter(|&&t| t == 3).count(), 4);
    }

    fn series(tags: &[(&str, &str)]) -> Series {
        Series::new(
            Arc::from("m"),
            tags.iter()
                .map(|(k, v)| (Arc::from(*k), Arc::from(*v)))
                .collect(),
        )
    }

    #[test]
    fn series_with_the_same_tags_in_any_order_are_equal() {
        assert_eq!(
            series(&[("a", "1"), ("b", "2")]),
            series(&[("b", "2"), ("a", "1")])
        );
        assert_ne!(series(&[("a", "1")]), series(&[("a", "2")]));
    }

    #[test]
    fn group_id_sorts_dimensions_and_fills_missing_tags_with_empty() {
        let s = series(&[("host", "h1"), ("deployment", "app")]);
        let dims: Vec<Arc<str>> = vec![Arc::from("host"), Arc::from("deployment"), Arc::from("x")];
        let g = Group::of(&s, &dims, false, false);
        assert_eq!(g.id(), "deployment=app,host=h1,x=");
        let g = Group::of(&s, &[], true, true);
        assert_eq!(g.id(), "m\ndeployment=app,host=h1");
        assert_ne!(
            g,
            Group::of(&s, &[], true, false),
            "the measurement is part of it"
        );
    }

    #[test]
    fn points_render_as_line_protocol_with_escapes() {
        let p = Point {
            series: Arc::new(series(&[("host", "a b")])),
            group: Group::all(),
            fields: vec![
                (Arc::from("v"), Field::Float(1.5)),
                (Arc::from("n"), Field::Int(2)),
                (Arc::from("s"), Field::Str(Arc::from("q\""))),
            ],
            time: 7,
            provenance: None,
        };
        assert_eq!(
            p.to_line("m x", &[("k".into(), "v".into())]),
            "m\\ x,host=a\\ b,k=v v=1.5,n=2i,s=\"q\\\"\" 7"
        );
    }

    #[test]
    fn timestamps_are_written_in_the_requested_unit_truncated() {
        let p = Point {
            series: Arc::new(series(&[])),
            group: Group::all(),
            fields: vec![(Arc::from("v"), Field::Int(1))],
            time: 1_700_000_001_999_999_999,
            provenance: None,
        };
        assert_eq!(p.to_line_in("m", &[], 1_000_000_000), "m v=1i 1700000001");
        assert_eq!(p.to_line_in("m", &[], 1_000), "m v=1i 1700000001999999");
        assert_eq!(p.to_line_in("m", &[], 0), "m v=1i 1700000001999999999");
    }
}
