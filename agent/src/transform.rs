//! What an input does to each metric after conversion, in Telegraf's order (`running_input.go`,
//! `makemetric.go`): the `url` tag; `namepass`/`tagpass` on the metric as scraped; the name
//! override, prefix and suffix; plugin tags and global tags (`host` among them) only where the
//! metric lacks them; field and tag removal (a metric left without fields is dropped); the time
//! rounded to the precision. Pure.

use std::borrow::Cow;
use std::time::Duration;

use crate::config::{AgentConfig, PrometheusInput};
use crate::filter::MetricFilter;
use crate::metric::Metric;

/// The per-input rules, resolved once.
#[derive(Debug, Clone)]
pub struct Transform {
    url_tag: Option<(String, String)>,
    /// A discovered target's tags (pod name, namespace, labels, ...), set over the sample's.
    target_tags: Vec<(String, String)>,
    filter: MetricFilter,
    name_override: String,
    name_prefix: String,
    name_suffix: String,
    /// Plugin tags then global tags, applied in this order, each only if absent.
    default_tags: Vec<(String, String)>,
    precision_ns: i64,
}

impl Transform {
    /// The rules of `input` scraping `url_tag_value`, with the agent's global tags (`host`
    /// included unless omitted).
    pub fn new(
        agent: &AgentConfig,
        input: &PrometheusInput,
        url_tag_value: &str,
        global_tags: &[(String, String)],
    ) -> Self {
        let url_tag =
            (!input.url_tag.is_empty()).then(|| (input.url_tag.clone(), url_tag_value.to_owned()));
        let default_tags = input
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(global_tags.iter().cloned())
            .collect();
        Self {
            url_tag,
            target_tags: Vec::new(),
            filter: input.filter.clone(),
            name_override: input.name_override.clone(),
            name_prefix: input.name_prefix.clone(),
            name_suffix: input.name_suffix.clone(),
            default_tags,
            precision_ns: precision(agent).as_nanos().min(i64::MAX as u128) as i64,
        }
    }

    /// Sets `tags` on every metric, over its own labels (a discovered pod's tags, as Telegraf
    /// sets them).
    pub fn with_target_tags(mut self, tags: Vec<(String, String)>) -> Self {
        self.target_tags = tags;
        self
    }

    /// Applies the rules; `false` means the metric is filtered out.
    pub fn apply<'a>(&'a self, metric: &mut Metric<'a>) -> bool {
        if let Some((key, value)) = &self.url_tag {
            metric.set_tag(key.as_str(), value.as_str());
        }
        for (key, value) in &self.target_tags {
            metric.set_tag(key.as_str(), value.as_str());
        }
        let tags = metric.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
        if !self.filter.select(&metric.name, tags) {
            return false;
        }
        if !self.name_override.is_empty() {
            metric.name = Cow::Borrowed(&self.name_override);
        }
        if !self.name_prefix.is_empty() || !self.name_suffix.is_empty() {
            metric.name = Cow::Owned(format!(
                "{}{}{}",
                self.name_prefix, metric.name, self.name_suffix
            ));
        }
        for (key, value) in &self.default_tags {
            metric.set_tag_if_absent(key.as_str(), value.as_str());
        }
        if !apply_removals(&self.filter, metric) {
            return false;
        }
        metric.time_ns = round_to(metric.time_ns, self.precision_ns);
        true
    }
}

/// `fieldpass`/`fielddrop`/`taginclude`/`tagexclude`; `false` when no field is left.
pub fn apply_removals(filter: &MetricFilter, metric: &mut Metric<'_>) -> bool {
    if filter.modifies() {
        metric.fields.retain(|(key, _)| filter.keep_field(key));
        metric.tags.retain(|(key, _)| filter.keep_tag(key));
    }
    !metric.fields.is_empty()
}

/// The precision metric times are rounded to: `[agent] precision`, else derived from the
/// interval as Telegraf does (1 s for intervals of a second or more, then 1 ms, 1 µs, 1 ns).
pub fn precision(agent: &AgentConfig) -> Duration {
    if let Some(precision) = agent.precision {
        return precision;
    }
    [
        Duration::from_secs(1),
        Duration::from_millis(1),
        Duration::from_micros(1),
    ]
    .into_iter()
    .find(|unit| agent.interval >= *unit)
    .unwrap_or(Duration::from_nanos(1))
}

/// Rounds `ns` to the nearest multiple of `unit`, halves away from zero (Go's `Time.Round`).
pub fn round_to(ns: i64, unit: i64) -> i64 {
    if unit <= 1 {
        return ns;
    }
    let remainder = ns.rem_euclid(unit);
    let down = ns - remainder;
    let round_up = if ns >= 0 {
        remainder >= unit - remainder
    } else {
        remainder > unit - remainder
    };
    if round_up {
        // Past the last representable multiple, stay on the one below.
        down.checked_add(unit).unwrap_or(down)
    } else {
        down
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::filter::GlobSet;
    use crate::metric::FieldValue;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[agent]\ninterval = \"1s\"\nprecision = \"1s\"\n\
             [[inputs.prometheus]]\nurls = [\"http://localhost:8000/metrics\"]\n{extra}\n\
             [[outputs.file]]\n"
        );
        Config::parse(&text, |_| None).unwrap()
    }

    fn requests(host_label: Option<&'static str>) -> Metric<'static> {
        let mut metric = Metric {
            name: "requests".into(),
            time_ns: 1_484_687_749_400_000_000,
            ..Metric::default()
        };
        metric.set_tag("deployment", "app");
        if let Some(host) = host_label {
            metric.set_tag("host", host);
        }
        metric.add_field("counter", FieldValue::Float(42.0));
        metric
    }

    fn global(host: &str) -> Vec<(String, String)> {
        vec![("host".to_owned(), host.to_owned())]
    }

    #[test]
    fn the_tutorial_pipeline_adds_url_keeps_the_label_host_and_rounds_time() {
        let config = config("namepass = [\"requests\"]");
        let transform = Transform::new(
            &config.agent,
            &config.inputs[0],
            "http://localhost:8000/metrics",
            &global("agent-host"),
        );
        let mut metric = requests(Some("app-3850222329-gmxln"));
        assert!(transform.apply(&mut metric));
        assert_eq!(metric.tag("host"), Some("app-3850222329-gmxln"));
        assert_eq!(metric.tag("url"), Some("http://localhost:8000/metrics"));
        assert_eq!(metric.time_ns, 1_484_687_749_000_000_000);

        let mut unlabelled = requests(None);
        assert!(transform.apply(&mut unlabelled));
        assert_eq!(unlabelled.tag("host"), Some("agent-host"));

        let mut other = requests(None);
        other.name = "process_open_fds".into();
        assert!(!transform.apply(&mut other), "namepass keeps only requests");
    }

    #[test]
    fn filters_see_the_metric_before_renaming_and_global_tags() {
        let config = config(
            "namepass = [\"requests\"]\nname_override = \"hits\"\ntagpass = { host = [\"agent-*\"] }",
        );
        let transform = Transform::new(&config.agent, &config.inputs[0], "u", &global("agent-1"));
        // The host tag is only added after tagpass ran, so the metric is not selected.
        let mut metric = requests(None);
        assert!(!transform.apply(&mut metric));
        let mut labelled = requests(Some("agent-7"));
        assert!(transform.apply(&mut labelled));
        assert_eq!(labelled.name, "hits");
    }

    #[test]
    fn prefix_suffix_plugin_tags_and_field_removal() {
        let config = config(
            "name_prefix = \"k8s_\"\nname_suffix = \"_x\"\nfielddrop = [\"counter\"]\nurl_tag = \"\"\n\
             [inputs.prometheus.tags]\nteam = \"ops\"\ndeployment = \"ignored\"",
        );
        let transform = Transform::new(&config.agent, &config.inputs[0], "u", &[]);
        let mut metric = requests(None);
        metric.add_field("gauge", FieldValue::Float(1.0));
        assert!(transform.apply(&mut metric));
        assert_eq!(metric.name, "k8s_requests_x");
        assert_eq!(metric.tag("team"), Some("ops"));
        assert_eq!(
            metric.tag("deployment"),
            Some("app"),
            "plugin tags never replace"
        );
        assert_eq!(metric.tag("url"), None, "an empty url_tag adds none");
        assert_eq!(metric.fields.len(), 1);

        let mut only_counter = requests(None);
        assert!(!transform.apply(&mut only_counter), "no field left");
    }

    #[test]
    fn rounding_is_to_the_nearest_with_halves_away_from_zero() {
        let s = 1_000_000_000;
        assert_eq!(round_to(1_499_999_999, s), s);
        assert_eq!(round_to(1_500_000_000, s), 2 * s);
        assert_eq!(round_to(-1_500_000_000, s), -2 * s);
        assert_eq!(round_to(-1_400_000_000, s), -s);
        assert_eq!(round_to(i64::MAX, s), i64::MAX - i64::MAX.rem_euclid(s));
        assert_eq!(round_to(123, 1), 123);
    }

    #[test]
    fn precision_defaults_follow_the_interval() {
        let mut agent = config("").agent;
        agent.precision = None;
        agent.interval = Duration::from_secs(10);
        assert_eq!(precision(&agent), Duration::from_secs(1));
        agent.interval = Duration::from_millis(250);
        assert_eq!(precision(&agent), Duration::from_millis(1));
        agent.interval = Duration::from_nanos(500);
        assert_eq!(precision(&agent), Duration::from_nanos(1));
    }

    #[test]
    fn glob_removal_keeps_the_rest() {
        let filter = MetricFilter {
            tagexclude: Some(GlobSet::new(&["url"]).unwrap()),
            ..MetricFilter::default()
        };
        let mut metric = requests(Some("h"));
        metric.set_tag("url", "u");
        assert!(apply_removals(&filter, &mut metric));
        assert_eq!(metric.tag("url"), None);
        assert_eq!(metric.tag("host"), Some("h"));
    }
}
