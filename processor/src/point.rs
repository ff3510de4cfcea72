//! Parsed points as subscribers see them: one [`Batch`] per write request, shared by every
//! subscriber through an `Arc`, its points read through [`PointRef`].
//!
//! A batch keeps the request body and stores each point as spans into it, so building a batch
//! allocates nothing per point: names, tag values and string fields borrow the body, and only
//! escaped text (rare) is copied once into a side buffer. The vectors of spans grow amortised.

use std::ops::Range;

/// Where a string lives: in the body, or in the batch's buffer of unescaped text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Span {
    Body { start: usize, end: usize },
    Unescaped { start: usize, end: usize },
}

/// A field value as stored in a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StoredValue {
    Float(f64),
    Integer(i64),
    Boolean(bool),
    String(Span),
}

#[derive(Debug, Clone)]
pub(crate) struct StoredPoint {
    pub(crate) measurement: Span,
    pub(crate) tags: Range<usize>,
    pub(crate) fields: Range<usize>,
    pub(crate) time: i64,
}

/// A field value, borrowed from its batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// A number without suffix (`1`, `1.5`, `-3e5`).
    Float(f64),
    /// A number with the `i` suffix.
    Integer(i64),
    /// `t`, `true`, `F`, ...
    Boolean(bool),
    /// A double-quoted string, unescaped.
    String(&'a str),
}

/// The points of one write request, for one database and retention policy.
#[derive(Debug, Default)]
pub struct Batch {
    db: String,
    rp: String,
    body: String,
    unescaped: String,
    points: Vec<StoredPoint>,
    tags: Vec<(Span, Span)>,
    fields: Vec<(Span, StoredValue)>,
}

impl Batch {
    /// An empty batch; the body it borrows from is set once parsing is done ([`Self::set_body`]).
    pub(crate) fn new(db: String, rp: String) -> Self {
        Self {
            db,
            rp,
            ..Self::default()
        }
    }

    /// Attaches the text that the `Span::Body` spans index.
    pub(crate) fn set_body(&mut self, body: String) {
        self.body = body;
    }

    /// The database written to (`db`, or the v2 bucket's first part).
    pub fn db(&self) -> &str {
        &self.db
    }

    /// The retention policy written to (`rp`, or the configured default when the request named none).
    pub fn rp(&self) -> &str {
        &self.rp
    }

    /// How many points the batch holds.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when no line of the request produced a point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The point at `index`, if any.
    pub fn point(&self, index: usize) -> Option<PointRef<'_>> {
        self.points.get(index).map(|stored| PointRef {
            batch: self,
            stored,
        })
    }

    /// Every point, in the order of the request's lines.
    pub fn points(&self) -> impl ExactSizeIterator<Item = PointRef<'_>> {
        self.points.iter().map(move |stored| PointRef {
            batch: self,
            stored,
        })
    }

    pub(crate) fn text(&self, span: Span) -> &str {
        let found = match span {
            Span::Body { start, end } => self.body.get(start..end),
            Span::Unescaped { start, end } => self.unescaped.get(start..end),
        };
        found.unwrap_or_default()
    }

    /// Copies unescaped text into the side buffer and returns its span.
    pub(crate) fn push_unescaped(&mut self, text: &str) -> Span {
        let start = self.unescaped.len();
        self.unescaped.push_str(text);
        Span::Unescaped {
            start,
            end: self.unescaped.len(),
        }
    }

    /// Bytes copied because they needed unescaping (0 for a body without escapes).
    #[cfg(test)]
    pub(crate) fn unescaped_len(&self) -> usize {
        self.unescaped.len()
    }

    #[inline]
    pub(crate) fn tag_count(&self) -> usize {
        self.tags.len()
    }

    #[inline]
    pub(crate) fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The tags pushed since the count was `mark`.
    #[inline]
    pub(crate) fn tags_from(&self, mark: usize) -> &[(Span, Span)] {
        self.tags.get(mark..).unwrap_or_default()
    }

    /// The fields pushed since the count was `mark`.
    #[inline]
    pub(crate) fn fields_from(&self, mark: usize) -> &[(Span, StoredValue)] {
        self.fields.get(mark..).unwrap_or_default()
    }

    #[inline]
    pub(crate) fn push_tag(&mut self, key: Span, value: Span) {
        self.tags.push((key, value));
    }

    #[inline]
    pub(crate) fn push_field(&mut self, key: Span, value: StoredValue) {
        self.fields.push((key, value));
    }

    /// Forgets tags and fields pushed after the given counts (a line that turned out invalid).
    #[inline]
    pub(crate) fn truncate_to(&mut self, tags: usize, fields: usize) {
        self.tags.truncate(tags);
        self.fields.truncate(fields);
    }

    #[inline]
    pub(crate) fn push_point(&mut self, point: StoredPoint) {
        self.points.push(point);
    }

    /// Makes room for the rest of a body at once (instead of growing and copying the vectors
    /// several times), judging by what its first `done` of `total` bytes gave.
    pub(crate) fn reserve_for_rest(&mut self, done: usize, total: usize) {
        if done == 0 {
            return;
        }
        let rest = total.saturating_sub(done);
        // Extrapolated, but never more than the rest could hold at a point per 32 bytes and a
        // tag or field per 8 (Telegraf's lines are longer), so that a dense head and a long
        // comment do not make a body reserve much more than it uses; past that, plain growth.
        let more = |count: usize, bytes_each: usize| {
            (count.saturating_mul(rest) / done + count / 8).min(rest / bytes_each)
        };
        self.points.reserve(more(self.points.len(), 32));
        self.tags.reserve(more(self.tags.len(), 8));
        self.fields.reserve(more(self.fields.len(), 8));
    }

    /// Room in the vectors of points, tags and fields.
    #[cfg(test)]
    pub(crate) fn capacities(&self) -> (usize, usize, usize) {
        (
            self.points.capacity(),
            self.tags.capacity(),
            self.fields.capacity(),
        )
    }
}

/// One point of a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct PointRef<'a> {
    batch: &'a Batch,
    stored: &'a StoredPoint,
}

impl<'a> PointRef<'a> {
    /// The database the point was written to.
    pub fn db(&self) -> &'a str {
        &self.batch.db
    }

    /// The retention policy the point was written to.
    pub fn rp(&self) -> &'a str {
        &self.batch.rp
    }

    /// The measurement name, unescaped.
    pub fn measurement(&self) -> &'a str {
        self.batch.text(self.stored.measurement)
    }

    /// The tags as written (InfluxDB sorts them when storing; a subscriber that needs order sorts).
    pub fn tags(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        let batch = self.batch;
        batch
            .tags
            .get(self.stored.tags.clone())
            .unwrap_or_default()
            .iter()
            .map(move |(key, value)| (batch.text(*key), batch.text(*value)))
    }

    /// The value of tag `key`, if present.
    pub fn tag(&self, key: &str) -> Option<&'a str> {
        self.tags().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The fields, one per key (when a line repeats a key the last value wins, as InfluxDB).
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&'a str, FieldValue<'a>)> + 'a {
        let batch = self.batch;
        batch
            .fields
            .get(self.stored.fields.clone())
            .unwrap_or_default()
            .iter()
            .map(move |(key, value)| {
                let value = match *value {
                    StoredValue::Float(v) => FieldValue::Float(v),
                    StoredValue::Integer(v) => FieldValue::Integer(v),
                    StoredValue::Boolean(v) => FieldValue::Boolean(v),
                    StoredValue::String(span) => FieldValue::String(batch.text(span)),
                };
                (batch.text(*key), value)
            })
    }

    /// The value of field `key`, if present.
    pub fn field(&self, key: &str) -> Option<FieldValue<'a>> {
        self.fields().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The timestamp in nanoseconds since the Unix epoch.
    pub fn time(&self) -> i64 {
        self.stored.time
    }
}
