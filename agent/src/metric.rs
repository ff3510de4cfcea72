//! A metric as the agent handles it between conversion and serialisation: names, tags and string
//! values borrow from the scraped text wherever they can.

use std::borrow::Cow;

/// A field value, with InfluxDB's types.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(Cow<'a, str>),
}

/// One metric: a measurement with tags, fields and a time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metric<'a> {
    pub name: Cow<'a, str>,
    /// Tags, kept sorted by key with unique keys (see [`Metric::set_tag_if_absent`]).
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Fields in insertion order, as Telegraf writes them.
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
}

impl<'a> Metric<'a> {
    /// Adds or replaces a tag, keeping the tags sorted.
    pub fn set_tag(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let key = key.into();
        match self.tags.binary_search_by(|(k, _)| k.as_ref().cmp(&key)) {
            Ok(index) => self.tags[index].1 = value.into(),
            Err(index) => self.tags.insert(index, (key, value.into())),
        }
    }

    /// Adds a tag only when the metric does not carry that key (how Telegraf applies plugin
    /// tags and global tags such as `host`).
    pub fn set_tag_if_absent(
        &mut self,
        key: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) {
        let key = key.into();
        if let Err(index) = self.tags.binary_search_by(|(k, _)| k.as_ref().cmp(&key)) {
            self.tags.insert(index, (key, value.into()));
        }
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|index| self.tags[index].1.as_ref())
    }

    /// Adds a field (a later field with the same key replaces it, as in Telegraf).
    pub fn add_field(&mut self, key: impl Into<Cow<'a, str>>, value: FieldValue<'a>) {
        let key = key.into();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(field) => field.1 = value,
            None => self.fields.push((key, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_stay_sorted_and_unique() {
        let mut metric = Metric::default();
        metric.set_tag("url", "http://a");
        metric.set_tag("host", "pod-1");
        metric.set_tag("deployment", "app");
        metric.set_tag("host", "pod-2");
        let keys: Vec<&str> = metric.tags.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["deployment", "host", "url"]);
        assert_eq!(metric.tag("host"), Some("pod-2"));
    }

    #[test]
    fn tags_added_if_absent_never_replace() {
        let mut metric = Metric::default();
        metric.set_tag("host", "from-label");
        metric.set_tag_if_absent("host", "agent-host");
        metric.set_tag_if_absent("region", "eu");
        assert_eq!(metric.tag("host"), Some("from-label"));
        assert_eq!(metric.tag("region"), Some("eu"));
    }

    #[test]
    fn a_repeated_field_keeps_its_place_and_takes_the_new_value() {
        let mut metric = Metric::default();
        metric.add_field("sum", FieldValue::Float(1.0));
        metric.add_field("count", FieldValue::Float(2.0));
        metric.add_field("sum", FieldValue::Float(3.0));
        assert_eq!(
            metric.fields,
            [
                ("sum".into(), FieldValue::Float(3.0)),
                ("count".into(), FieldValue::Float(2.0))
            ]
        );
    }
}
