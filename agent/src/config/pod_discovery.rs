//! `[[inputs.prometheus]]` pod discovery: Telegraf's `monitor_kubernetes_pods` keys (and
//! `kube_config`), read into [`PodDiscovery`], with the workload tags the agent adds beyond
//! Telegraf (`pod_workload_tags`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::keys::{Section, glob_error, invalid};
use super::{PodDiscovery, PodScrapeMethod, PodScrapeScope, Result, WorkloadKind};
use crate::filter::GlobSet;

/// Telegraf's default port of a discovered pod (`prometheus.io/port` unset).
pub fn default_pod_port() -> u16 {
    9102
}
/// Telegraf's default scheme of a discovered pod.
pub fn default_pod_scheme() -> String {
    "http".to_owned()
}
/// Telegraf's default path of a discovered pod.
pub fn default_pod_path() -> String {
    "/metrics".to_owned()
}
/// Telegraf's default `pod_scrape_interval` (its node-scope kubelet poll).
pub fn default_pod_scrape_interval() -> Duration {
    Duration::from_secs(60)
}
/// The tag carrying a pod's namespace (`pod_namespace_label_name`).
pub fn default_pod_namespace_label_name() -> String {
    "namespace".to_owned()
}

/// Reads the discovery keys of one input; `None` unless `monitor_kubernetes_pods = true`.
/// `node_name`/`node_ip` fall back to `$NODE_NAME`/`$NODE_IP` through `env` in node scope.
pub(super) fn read(
    s: &mut Section,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<PodDiscovery>> {
    let enabled = s.bool("monitor_kubernetes_pods")?.unwrap_or(false);
    let method = match s.string("monitor_kubernetes_pods_method")?.as_deref() {
        None | Some("" | "annotations") => PodScrapeMethod::Annotations,
        Some("settings") => PodScrapeMethod::Settings,
        Some("settings+annotations") => PodScrapeMethod::SettingsAndAnnotations,
        Some(other) => {
            return Err(invalid(
                s.key("monitor_kubernetes_pods_method"),
                format!("must be annotations, settings or settings+annotations, not {other:?}"),
            ));
        }
    };
    let scheme = s
        .string("monitor_kubernetes_pods_scheme")?
        .filter(|v| !v.is_empty())
        .unwrap_or_else(default_pod_scheme);
    if scheme != "http" && scheme != "https" {
        return Err(invalid(
            s.key("monitor_kubernetes_pods_scheme"),
            format!("must be http or https, not {scheme:?}"),
        ));
    }
    let path = s
        .string("monitor_kubernetes_pods_path")?
        .filter(|v| !v.is_empty())
        .unwrap_or_else(default_pod_path);
    let port = match s.integer("monitor_kubernetes_pods_port")? {
        None | Some(0) => default_pod_port(),
        Some(p) => u16::try_from(p).map_err(|_| {
            invalid(
                s.key("monitor_kubernetes_pods_port"),
                format!("must be a port number from 1 to 65535, not {p}"),
            )
        })?,
    };
    let scope = match s.string("pod_scrape_scope")?.as_deref() {
        None | Some("" | "cluster") => PodScrapeScope::Cluster,
        Some("node") => PodScrapeScope::Node,
        Some(other) => {
            return Err(invalid(
                s.key("pod_scrape_scope"),
                format!("must be cluster or node, not {other:?}"),
            ));
        }
    };
    let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
    let mut node_name = non_empty(s.string("node_name")?);
    let mut node_ip = non_empty(s.string("node_ip")?);
    let scrape_interval = s.duration("pod_scrape_interval")?;
    if let Some(interval) = scrape_interval
        && interval < Duration::from_secs(1)
    {
        return Err(invalid(
            s.key("pod_scrape_interval"),
            format!("{interval:?} is shorter than the minimum of 1s"),
        ));
    }
    let namespace = s
        .string("monitor_kubernetes_pods_namespace")?
        .unwrap_or_default();
    let label_selector = s.string("kubernetes_label_selector")?.unwrap_or_default();
    let field_selector = s.string("kubernetes_field_selector")?.unwrap_or_default();
    let namespace_tag = s
        .string("pod_namespace_label_name")?
        .filter(|v| !v.is_empty())
        .unwrap_or_else(default_pod_namespace_label_name);
    let annotation_include = globs(s, "pod_annotation_include")?;
    let annotation_exclude = globs(s, "pod_annotation_exclude")?;
    let label_include = globs(s, "pod_label_include")?;
    let label_exclude = globs(s, "pod_label_exclude")?;
    let kube_config = non_empty(s.string("kube_config")?).map(PathBuf::from);
    let workload_tags = workload_tags(s)?;
    if !enabled {
        return Ok(None);
    }
    if scope == PodScrapeScope::Node {
        node_name = node_name.or_else(|| non_empty(env("NODE_NAME")));
        node_ip = node_ip.or_else(|| non_empty(env("NODE_IP")));
        if node_name.is_none() && node_ip.is_none() {
            return Err(invalid(
                s.key("pod_scrape_scope"),
                "node scope needs the node: set node_name (or $NODE_NAME) or node_ip (or $NODE_IP)",
            ));
        }
    }
    if scrape_interval.is_some() {
        warnings.push(format!(
            "{}: discovery watches the API server, so pod changes arrive at once; pods are scraped on the input's interval",
            s.key("pod_scrape_interval")
        ));
    }
    Ok(Some(PodDiscovery {
        method,
        scheme,
        path,
        port,
        scope,
        node_name,
        node_ip,
        scrape_interval: scrape_interval.unwrap_or_else(default_pod_scrape_interval),
        namespace,
        label_selector,
        field_selector,
        namespace_tag,
        annotation_include,
        annotation_exclude,
        label_include,
        label_exclude,
        kube_config,
        workload_tags,
    }))
}

/// A glob list where an empty list is no filter, as Telegraf's include/exclude filters read it
/// (an empty `pod_label_include` copies every label).
fn globs(s: &mut Section, name: &str) -> Result<Option<GlobSet>> {
    let key = s.key(name);
    match s.strings(name)? {
        None => Ok(None),
        Some(patterns) if patterns.is_empty() => Ok(None),
        Some(patterns) => GlobSet::new(&patterns)
            .map(Some)
            .map_err(|e| glob_error(&key, e)),
    }
}

/// `pod_workload_tags = { deployment = "deployment", ... }`: owner kind to tag name.
fn workload_tags(s: &mut Section) -> Result<BTreeMap<WorkloadKind, String>> {
    let key = s.key("pod_workload_tags");
    let mut tags = BTreeMap::new();
    for (kind, tag) in s.string_map("pod_workload_tags")? {
        let parsed = match kind.as_str() {
            "deployment" => WorkloadKind::Deployment,
            "statefulset" => WorkloadKind::StatefulSet,
            "daemonset" => WorkloadKind::DaemonSet,
            "replicaset" => WorkloadKind::ReplicaSet,
            other => {
                return Err(invalid(
                    format!("{key}.{other}"),
                    "must be deployment, statefulset, daemonset or replicaset",
                ));
            }
        };
        if tag.is_empty() {
            return Err(invalid(format!("{key}.{kind}"), "the tag name is empty"));
        }
        tags.insert(parsed, tag);
    }
    Ok(tags)
}
