//! A pod to its scrape target and tags, as Telegraf's `kubernetes.go` decides (pure).
//!
//! - A pod is a candidate when its phase is `Running` and its `Ready` condition is `True`
//!   (Telegraf's `podReady`), it has an IP, and in node scope with a node IP, its
//!   `status.hostIP` is that IP. Until then it waits.
//! - `annotations`: only pods annotated `prometheus.io/scrape: "true"`, at
//!   `prometheus.io/scheme` (default http), `prometheus.io/port` (default 9102) and
//!   `prometheus.io/path` (default `/metrics`). `settings`: every pod, at the configured
//!   scheme/port/path. `settings+annotations`: every pod not annotated `"false"`, annotations
//!   over settings.
//! - Tags: the annotations then `pod_name`, the namespace, then the labels (each through its
//!   include/exclude globs; later ones win, as Telegraf fills one map in this order), the owning
//!   workload's tags, and `address` = the pod IP. The `url` tag is the target URL.
//! - An annotation that cannot make a URL (a port that is not a number from 1 to 65535, a
//!   scheme other than http/https) is an error naming the pod and the annotation: that pod
//!   is not scraped, the others are.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::config::{PodDiscovery, PodScrapeMethod};
use crate::filter::GlobSet;

/// The annotations Telegraf reads.
pub const SCRAPE: &str = "prometheus.io/scrape";
pub const SCHEME: &str = "prometheus.io/scheme";
pub const PATH: &str = "prometheus.io/path";
pub const PORT: &str = "prometheus.io/port";

/// Where and with which tags a pod is scraped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    /// `<scheme>://<ip>:<port><path>`.
    pub url: String,
    /// Tags set on every metric of this pod (over the sample's own labels), sorted by name.
    pub tags: Vec<(String, String)>,
}

/// What to do with a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Scrape it.
    Scrape(PodTarget),
    /// Not (yet) a candidate: no IP, not Running and Ready, or on another node.
    Wait(&'static str),
    /// The method excludes it (not annotated for scraping).
    Skip,
    /// It asks to be scraped but its annotations make no URL; the message names the pod and
    /// the annotation.
    Invalid(String),
}

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// Decides what to do with `pod`; `workload` holds the workload tags found for its owner.
pub fn evaluate(pod: &Pod, settings: &PodDiscovery, workload: &[(String, String)]) -> Verdict {
    let empty = BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let annotation = |key: &str| annotations.get(key).map(String::as_str).unwrap_or("");
    let wanted = match settings.method {
        PodScrapeMethod::Annotations => annotation(SCRAPE) == "true",
        PodScrapeMethod::Settings => true,
        PodScrapeMethod::SettingsAndAnnotations => annotation(SCRAPE) != "false",
    };
    if !wanted {
        return Verdict::Skip;
    }
    let Some(status) = pod.status.as_ref() else {
        return Verdict::Wait("no status yet");
    };
    if status.phase.as_deref() != Some("Running") || !is_ready(pod) {
        return Verdict::Wait("not Running and Ready");
    }
    let Some(ip) = status.pod_ip.as_deref().filter(|ip| !ip.is_empty()) else {
        return Verdict::Wait("no pod IP yet");
    };
    if let Some(node_ip) = &settings.node_ip
        && status.host_ip.as_deref() != Some(node_ip.as_str())
    {
        return Verdict::Wait("on another node");
    }
    let key = pod_key(pod);
    let (scheme, port, path) = match settings.method {
        PodScrapeMethod::Settings => (
            settings.scheme.clone(),
            settings.port.to_string(),
            settings.path.clone(),
        ),
        PodScrapeMethod::Annotations => (
            non_empty(annotation(SCHEME), "http"),
            non_empty(annotation(PORT), "9102"),
            non_empty(annotation(PATH), "/metrics"),
        ),
        PodScrapeMethod::SettingsAndAnnotations => (
            non_empty(annotation(SCHEME), &settings.scheme),
            non_empty(annotation(PORT), &settings.port.to_string()),
            non_empty(annotation(PATH), &settings.path),
        ),
    };
    if scheme != "http" && scheme != "https" {
        return Verdict::Invalid(format!(
            "pod {key}: annotation {SCHEME}: {scheme:?} is not http or https; not scraped"
        ));
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            return Verdict::Invalid(format!(
                "pod {key}: annotation {PORT}: {port:?} is not a port number from 1 to 65535; not scraped"
            ));
        }
    };
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    };
    let slash = if path.starts_with('/') { "" } else { "/" };
    let url = format!("{scheme}://{host}:{port}{slash}{path}");
    if url.parse::<hyper::Uri>().is_err() {
        return Verdict::Invalid(format!(
            "pod {key}: annotation {PATH}: {path:?} does not make a valid URL; not scraped"
        ));
    }
    Verdict::Scrape(PodTarget {
        url,
        tags: tags(pod, settings, workload, ip),
    })
}

/// The Ready condition is `True`.
fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn non_empty(value: &str, default: &str) -> String {
    if value.is_empty() { default } else { value }.to_owned()
}

/// Telegraf's include/exclude filter: included (or no include list) and not excluded.
fn selected(key: &str, include: Option<&GlobSet>, exclude: Option<&GlobSet>) -> bool {
    include.is_none_or(|g| g.is_match(key)) && !exclude.is_some_and(|g| g.is_match(key))
}

fn tags(
    pod: &Pod,
    settings: &PodDiscovery,
    workload: &[(String, String)],
    ip: &str,
) -> Vec<(String, String)> {
    let mut tags = BTreeMap::new();
    let metadata = &pod.metadata;
    for (k, v) in metadata.annotations.iter().flatten() {
        let (include, exclude) = (
            settings.annotation_include.as_ref(),
            settings.annotation_exclude.as_ref(),
        );
        if selected(k, include, exclude) {
            tags.insert(k.clone(), v.clone());
        }
    }
    tags.insert(
        "pod_name".to_owned(),
        metadata.name.clone().unwrap_or_default(),
    );
    tags.insert(
        settings.namespace_tag.clone(),
        metadata.namespace.clone().unwrap_or_default(),
    );
    for (k, v) in metadata.labels.iter().flatten() {
        let (include, exclude) = (
            settings.label_include.as_ref(),
            settings.label_exclude.as_ref(),
        );
        if selected(k, include, exclude) {
            tags.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in workload {
        tags.insert(k.clone(), v.clone());
    }
    tags.insert("address".to_owned(), ip.to_owned());
    // Line protocol has no empty tag values: Telegraf drops them too.
    tags.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, PodScrapeScope};

    pub(crate) fn settings(extra: &str) -> PodDiscovery {
        let text = format!(
            "[[inputs.prometheus]]\nmonitor_kubernetes_pods = true\n{extra}\n[[outputs.file]]\n"
        );
        let config = Config::parse(&text, |_| None).unwrap_or_else(|e| panic!("{e}"));
        config.inputs[0]
            .pod_discovery
            .clone()
            .expect("discovery on")
    }

    fn pod(annotations: &[(&str, &str)], ip: Option<&str>, ready: bool) -> Pod {
        let object = serde_json::json!({
            "metadata": {
                "name": "app-1", "namespace": "shop",
                "labels": {"app": "web", "pod-template-hash": "5d9"},
                "annotations": annotations.iter().cloned().collect::<BTreeMap<_, _>>(),
            },
            "status": {
                "phase": if ip.is_some() { "Running" } else { "Pending" },
                "podIP": ip, "hostIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            },
        });
        serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"))
    }

    fn scraped(verdict: Verdict) -> PodTarget {
        match verdict {
            Verdict::Scrape(target) => target,
            other => panic!("expected a target, got {other:?}"),
        }
    }

    #[test]
    fn an_annotated_ready_pod_is_scraped_at_its_annotated_port_with_telegrafs_tags() {
        let pod = pod(&[(SCRAPE, "true"), (PORT, "8000")], Some("10.1.2.3"), true);
        let target = scraped(evaluate(&pod, &settings(""), &[]));
        assert_eq!(target.url, "http://10.1.2.3:8000/metrics");
        let tags: BTreeMap<_, _> = target.tags.into_iter().collect();
        assert_eq!(tags["pod_name"], "app-1");
        assert_eq!(tags["namespace"], "shop");
        assert_eq!(tags["app"], "web");
        assert_eq!(tags[SCRAPE], "true", "annotations are tags, as in Telegraf");
        assert_eq!(tags["address"], "10.1.2.3");
    }

    #[test]
    fn annotations_default_to_http_port_9102_and_metrics() {
        let pod = pod(&[(SCRAPE, "true")], Some("10.1.2.3"), true);
        let target = scraped(evaluate(&pod, &settings(""), &[]));
        assert_eq!(target.url, "http://10.1.2.3:9102/metrics");
        let custom = pod_with(&[(SCRAPE, "true"), (SCHEME, "https"), (PATH, "stats")]);
        assert_eq!(
            scraped(evaluate(&custom, &settings(""), &[])).url,
            "https://10.1.2.3:9102/stats"
        );
    }

    fn pod_with(annotations: &[(&str, &str)]) -> Pod {
        pod(annotations, Some("10.1.2.3"), true)
    }

    #[test]
    fn the_annotations_method_skips_pods_not_annotated_true() {
        assert_eq!(evaluate(&pod_with(&[]), &settings(""), &[]), Verdict::Skip);
        assert_eq!(
            evaluate(&pod_with(&[(SCRAPE, "yes")]), &settings(""), &[]),
            Verdict::Skip
        );
    }

    #[test]
    fn settings_scrape_every_pod_at_the_configured_place_ignoring_annotations() {
        let s = settings(
            "monitor_kubernetes_pods_method = \"settings\"\nmonitor_kubernetes_pods_port = 8000\nmonitor_kubernetes_pods_path = \"/m\"",
        );
        let target = scraped(evaluate(&pod_with(&[(PORT, "1")]), &s, &[]));
        assert_eq!(target.url, "http://10.1.2.3:8000/m");
    }

    #[test]
    fn settings_and_annotations_scrape_unless_false_and_annotations_win() {
        let s = settings(
            "monitor_kubernetes_pods_method = \"settings+annotations\"\nmonitor_kubernetes_pods_port = 8000",
        );
        assert_eq!(
            scraped(evaluate(&pod_with(&[]), &s, &[])).url,
            "http://10.1.2.3:8000/metrics"
        );
        assert_eq!(
            scraped(evaluate(&pod_with(&[(PORT, "9000")]), &s, &[])).url,
            "http://10.1.2.3:9000/metrics"
        );
        assert_eq!(
            evaluate(&pod_with(&[(SCRAPE, "false")]), &s, &[]),
            Verdict::Skip
        );
    }

    #[test]
    fn pods_without_an_ip_or_not_ready_wait() {
        let s = settings("");
        let no_ip = pod(&[(SCRAPE, "true")], None, false);
        assert!(matches!(evaluate(&no_ip, &s, &[]), Verdict::Wait(_)));
        let not_ready = pod(&[(SCRAPE, "true")], Some("10.1.2.3"), false);
        assert!(matches!(evaluate(&not_ready, &s, &[]), Verdict::Wait(_)));
        let mut no_status = not_ready.clone();
        no_status.status = None;
        assert!(matches!(evaluate(&no_status, &s, &[]), Verdict::Wait(_)));
    }

    #[test]
    fn an_invalid_port_or_scheme_annotation_is_an_error_naming_the_pod_and_annotation() {
        let s = settings("");
        for (annotation, value) in [
            (PORT, "http"),
            (PORT, "70000"),
            (PORT, "0"),
            (SCHEME, "ftp"),
        ] {
            let verdict = evaluate(&pod_with(&[(SCRAPE, "true"), (annotation, value)]), &s, &[]);
            let Verdict::Invalid(message) = verdict else {
                panic!("{annotation}={value}: expected an error, got {verdict:?}")
            };
            assert!(message.contains("pod shop/app-1"), "{message}");
            assert!(message.contains(annotation), "{message}");
            assert!(message.contains(value), "{message}");
        }
    }

    #[test]
    fn include_and_exclude_globs_choose_the_label_and_annotation_tags() {
        let s = settings(
            "pod_annotation_include = [\"team*\"]\npod_label_exclude = [\"pod-template-hash\"]\npod_namespace_label_name = \"pod_namespace\"",
        );
        let pod = pod_with(&[(SCRAPE, "true"), ("team", "ops")]);
        let tags: BTreeMap<_, _> = scraped(evaluate(&pod, &s, &[])).tags.into_iter().collect();
        assert_eq!(tags.get("team").map(String::as_str), Some("ops"));
        assert!(!tags.contains_key(SCRAPE));
        assert!(!tags.contains_key("pod-template-hash"));
        assert_eq!(tags.get("app").map(String::as_str), Some("web"));
        assert_eq!(tags.get("pod_namespace").map(String::as_str), Some("shop"));
        assert!(!tags.contains_key("namespace"));

        let empty = settings("pod_label_include = []\npod_annotation_include = []");
        let tags: BTreeMap<_, _> = scraped(evaluate(&pod, &empty, &[]))
            .tags
            .into_iter()
            .collect();
        assert!(
            tags.contains_key("app") && tags.contains_key("team"),
            "an empty include list copies everything, as in Telegraf: {tags:?}"
        );
    }

    #[test]
    fn workload_tags_are_added_and_a_node_ip_keeps_other_nodes_pods_waiting() {
        let s = settings("");
        let workload = [("deployment".to_owned(), "web".to_owned())];
        let tags = scraped(evaluate(&pod_with(&[(SCRAPE, "true")]), &s, &workload)).tags;
        assert!(tags.contains(&("deployment".to_owned(), "web".to_owned())));

        let mut node = settings("pod_scrape_scope = \"node\"\nnode_ip = \"10.0.0.2\"");
        assert_eq!(node.scope, PodScrapeScope::Node);
        assert!(matches!(
            evaluate(&pod_with(&[(SCRAPE, "true")]), &node, &[]),
            Verdict::Wait(_)
        ));
        node.node_ip = Some("10.0.0.1".to_owned());
        assert!(matches!(
            evaluate(&pod_with(&[(SCRAPE, "true")]), &node, &[]),
            Verdict::Scrape(_)
        ));
    }
}
