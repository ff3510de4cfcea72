//! Telegraf's TOML configuration, the subset the agent implements.
//!
//! The tutorial's `telegraf.conf` loads unchanged. Every key is either implemented or reported in
//! [`Config::warnings`] by its full name (`inputs.prometheus[0].kubernetes_services`): nothing is
//! silently ignored. Plugins the agent does not implement are reported the same way, with what
//! that means for the data.
//!
//! Reading is pure: [`Config::parse`] takes the text and an environment lookup; only
//! [`Config::load`] touches the file system.
//!
//! # Layout
//! - this file: the configuration's types (every field documented), defaults and limits, and
//!   reading the files;
//! - [`environment`]: `$VAR` substitution in the text, before TOML parsing;
//! - `sections`: each TOML section read into its type (`[agent]`, `[global_tags]`,
//!   `[[inputs.prometheus]]`, `[[outputs.influxdb]]`, `[[outputs.file]]`), and the checks on
//!   their values;
//! - `keys`: one section's keys read by type, the unread ones reported;
//! - [`pod_discovery`]: the `monitor_kubernetes_pods` keys of an input;
//! - [`duration`]: Go durations (`"10s"`); [`urls`]: credentials inside URLs.

pub mod duration;
pub mod environment;
mod keys;
pub mod pod_discovery;
mod sections;
pub mod size;
pub mod urls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::filter::MetricFilter;

pub use duration::{DurationError, parse_go_duration};
use sections::Builder;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file or directory could not be read (or is not UTF-8).
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `${VAR:?message}` whose variable is missing; the cause (with the variable and its
    /// message) is the source, so that it is shown once in the chain.
    #[error("{origin}")]
    Environment {
        origin: String,
        #[source]
        source: environment::MissingVariable,
    },
    /// A config file over [`MAX_CONFIG_FILE_BYTES`] (`limit`, in bytes).
    #[error("{path} is larger than {limit} bytes; a config file must be smaller")]
    TooLarge { path: PathBuf, limit: u64 },
    /// The text is not TOML (`message` has any URL credentials hidden).
    #[error("{origin}: invalid TOML: {message}")]
    Toml { origin: String, message: String },
    /// A key (full path, `inputs.prometheus[0].timeout`) has a wrong type or value.
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    /// No `[[inputs.prometheus]]`.
    #[error("no inputs configured (a [[inputs.prometheus]] section is needed)")]
    NoInputs,
    /// No `[[outputs.influxdb]]` or `[[outputs.file]]`.
    #[error(
        "no outputs configured (an [[outputs.influxdb]] or [[outputs.file]] section is needed)"
    )]
    NoOutputs,
}

/// A `Result` with this module's [`ConfigError`].
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The whole agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[agent]`: schedules, batching, buffering, precision, host tag, logging.
    pub agent: AgentConfig,
    /// `[global_tags]`: added to every metric that does not already carry the tag.
    pub global_tags: BTreeMap<String, String>,
    /// Every `[[inputs.prometheus]]`, in the order read.
    pub inputs: Vec<PrometheusInput>,
    /// Every `[[outputs.influxdb]]` and `[[outputs.file]]`, in the order read.
    pub outputs: Vec<Output>,
    /// Keys and plugins that were read but are not implemented, one sentence each.
    pub warnings: Vec<String>,
}

/// `[agent]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// How often inputs are gathered, at least [`MIN_INTERVAL`] (`interval`, default 10 s).
    pub interval: Duration,
    /// Align gathers to multiples of `interval` on the wall clock (`round_interval`, default
    /// true).
    pub round_interval: bool,
    /// Metrics per write, and the buffer length that triggers an early flush
    /// (`metric_batch_size`, default 1000).
    pub metric_batch_size: usize,
    /// Metrics each output buffers before dropping the oldest, at least `metric_batch_size`
    /// (`metric_buffer_limit`, default 10 000).
    pub metric_buffer_limit: usize,
    /// Each gather first waits a random time up to this (`collection_jitter`, default 0 s).
    pub collection_jitter: Duration,
    /// How often outputs are flushed, at least [`MIN_INTERVAL`] (`flush_interval`, default
    /// 10 s).
    pub flush_interval: Duration,
    /// Each flush waits a random time up to this more (`flush_jitter`, default 0 s).
    pub flush_jitter: Duration,
    /// Metric timestamps are rounded to this duration (`precision`); `None` derives it from
    /// `interval` as Telegraf does.
    pub precision: Option<Duration>,
    /// The `host` tag (`hostname`); empty means the machine's hostname.
    pub hostname: String,
    /// Do not add the `host` tag (`omit_hostname`, default false).
    pub omit_hostname: bool,
    /// Log at debug level (`debug`, default false).
    pub debug: bool,
    /// Log only errors (`quiet`, default false).
    pub quiet: bool,
    /// Log to this file instead of stderr (`logfile`); empty means stderr.
    pub logfile: String,
}

/// `[[inputs.prometheus]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusInput {
    /// Endpoints to scrape (`urls`), without credentials; a URL with an empty path scrapes
    /// `/metrics`.
    pub urls: Vec<String>,
    /// 1 (one metric per family, fields `counter`/`gauge`/`value`) or 2 (measurement
    /// `prometheus`) (`metric_version`, default 1).
    pub metric_version: u8,
    /// Name of the tag that carries the scraped URL (`url_tag`, default `url`; empty = no tag).
    pub url_tag: String,
    /// Use the scrape time even when a sample has its own timestamp (`ignore_timestamp`,
    /// default false).
    pub ignore_timestamp: bool,
    /// Time allowed for the whole scrape (`timeout`, default 5 s).
    pub timeout: Duration,
    /// Time allowed until the response headers arrive (`response_timeout`; `None`: `timeout`).
    pub response_timeout: Option<Duration>,
    /// The largest scrape body read, in bytes; a bigger body fails that scrape
    /// (`content_length_limit`, a Telegraf size such as `"32MiB"`, default
    /// [`default_content_length_limit`]: 64 MiB; `0`, Telegraf's "no limit", is
    /// [`MAX_CONTENT_LENGTH_LIMIT`]; at most that, since a body is held whole while it is read).
    pub content_length_limit: u64,
    /// File holding a bearer token, re-read at every scrape (`bearer_token`).
    pub bearer_token: Option<PathBuf>,
    /// A bearer token given inline (`bearer_token_string`); wins over `username`/`password`.
    pub bearer_token_string: Option<String>,
    /// HTTP Basic user name (`username`); Basic auth is sent when it or `password` is set.
    pub username: Option<String>,
    /// HTTP Basic password (`password`).
    pub password: Option<String>,
    /// Extra request headers, name to value (`http_headers`).
    pub http_headers: BTreeMap<String, String>,
    /// `tls_ca`, `tls_cert`, `tls_key`, `insecure_skip_verify` (and the old `ssl_*` names).
    pub tls: TlsConfig,
    /// Gather interval for this input, at least [`MIN_INTERVAL`] (`interval`); `None` uses
    /// `[agent] interval`.
    pub interval: Option<Duration>,
    /// Prepended to every metric name (`name_prefix`).
    pub name_prefix: String,
    /// Appended to every metric name (`name_suffix`).
    pub name_suffix: String,
    /// Replaces every metric name when not empty (`name_override`).
    pub name_override: String,
    /// `[inputs.prometheus.tags]`: added when the metric does not carry the tag.
    pub tags: BTreeMap<String, String>,
    /// `namepass`, `namedrop`, `tagpass`, `tagdrop`, `fieldpass`, `fielddrop`, `taginclude`,
    /// `tagexclude`.
    pub filter: MetricFilter,
    /// Pod discovery (`monitor_kubernetes_pods = true`); `None`: only `urls` are scraped.
    pub pod_discovery: Option<PodDiscovery>,
}

/// `monitor_kubernetes_pods = true`: the pods to scrape come from the Kubernetes API (a watch),
/// as Telegraf's `kubernetes.go` finds them; see `agent/src/discovery/`.
#[derive(Debug, Clone, PartialEq)]
pub struct PodDiscovery {
    /// Which pods are scraped and where (`monitor_kubernetes_pods_method`, default
    /// `annotations`).
    pub method: PodScrapeMethod,
    /// Scheme under the `settings` methods (`monitor_kubernetes_pods_scheme`, default `http`).
    pub scheme: String,
    /// Path under the `settings` methods (`monitor_kubernetes_pods_path`, default `/metrics`).
    pub path: String,
    /// Port under the `settings` methods (`monitor_kubernetes_pods_port`, a port number,
    /// default 9102).
    pub port: u16,
    /// Every pod the API shows, or only this node's (`pod_scrape_scope`, default `cluster`).
    pub scope: PodScrapeScope,
    /// Node scope: the node's name (`node_name`, else `$NODE_NAME`), sent to the API server as
    /// the field selector `spec.nodeName=<name>`.
    pub node_name: Option<String>,
    /// Node scope: the node's IP (`node_ip`, else `$NODE_IP`); pods whose `status.hostIP`
    /// differs are not scraped.
    pub node_ip: Option<String>,
    /// Telegraf's node-scope kubelet poll period, in seconds (`pod_scrape_interval`, at least
    /// 1 s, default 60 s); read and checked, unused: the watch delivers changes at once.
    pub scrape_interval: Duration,
    /// Only pods of this namespace (`monitor_kubernetes_pods_namespace`; empty: all).
    pub namespace: String,
    /// A label selector sent to the API server (`kubernetes_label_selector`; empty: none).
    pub label_selector: String,
    /// A field selector sent to the API server (`kubernetes_field_selector`; empty: none).
    pub field_selector: String,
    /// The tag carrying the pod's namespace (`pod_namespace_label_name`, default `namespace`).
    pub namespace_tag: String,
    /// Pod annotations added as tags: those matching (`pod_annotation_include`, globs;
    /// unset: all) ...
    pub annotation_include: Option<crate::filter::GlobSet>,
    /// ... except those matching (`pod_annotation_exclude`, globs).
    pub annotation_exclude: Option<crate::filter::GlobSet>,
    /// Pod labels added as tags: those matching (`pod_label_include`, globs; unset: all) ...
    pub label_include: Option<crate::filter::GlobSet>,
    /// ... except those matching (`pod_label_exclude`, globs).
    pub label_exclude: Option<crate::filter::GlobSet>,
    /// A kubeconfig file for an agent outside the cluster (`kube_config`); unset: the in-cluster
    /// service account (or `$KUBECONFIG`, `~/.kube/config`).
    pub kube_config: Option<PathBuf>,
    /// Beyond Telegraf: the owning workload as tags, owner kind to tag name
    /// (`pod_workload_tags = { deployment = "deployment" }`; default none). A Deployment is
    /// found through its ReplicaSet.
    pub workload_tags: BTreeMap<WorkloadKind, String>,
}

/// `monitor_kubernetes_pods_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodScrapeMethod {
    /// Pods annotated `prometheus.io/scrape: "true"`, at their annotated scheme/port/path.
    Annotations,
    /// Every pod, at the configured scheme/port/path.
    Settings,
    /// Every pod not annotated `prometheus.io/scrape: "false"`, annotations over settings.
    SettingsAndAnnotations,
}

/// `pod_scrape_scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodScrapeScope {
    /// Every pod the API server shows the agent.
    Cluster,
    /// Only the pods of the agent's node (a DaemonSet).
    Node,
}

/// A workload kind that can own a pod, for `pod_workload_tags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    /// A Deployment (the pod's ReplicaSet's owner).
    Deployment,
    /// A StatefulSet.
    StatefulSet,
    /// A DaemonSet.
    DaemonSet,
    /// A ReplicaSet (whether a Deployment owns it or not).
    ReplicaSet,
}

/// TLS settings of an HTTP client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust instead of the system's (`tls_ca`).
    pub ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS, given with `key` (`tls_cert`).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (`tls_key`).
    pub key: Option<PathBuf>,
    /// Accept any server certificate, for tests only (`insecure_skip_verify`, default false).
    pub insecure_skip_verify: bool,
}

/// One configured output.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// `[[outputs.influxdb]]`.
    Influxdb(Box<InfluxdbOutput>),
    /// `[[outputs.file]]`.
    File(Box<FileOutput>),
}

/// `[[outputs.influxdb]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct InfluxdbOutput {
    /// Where batches go (`urls`, and `url`), without credentials: each batch goes to one of
    /// them, chosen at random, the others being failover (default `http://localhost:8086`).
    pub urls: Vec<String>,
    /// Target database (`database`, default `telegraf`).
    pub database: String,
    /// Target retention policy (`retention_policy`); empty means the server's default.
    pub retention_policy: String,
    /// `consistency` query parameter (`write_consistency`: any, one, quorum, all); empty or
    /// `one` sends none.
    pub write_consistency: String,
    /// Time allowed for one write, answer included (`timeout`, default 5 s).
    pub timeout: Duration,
    /// HTTP Basic user name (`username`); Basic auth is sent when it or `password` is set.
    pub username: Option<String>,
    /// HTTP Basic password (`password`).
    pub password: Option<String>,
    /// The `User-Agent` header (`user_agent`, default [`default_user_agent`]).
    pub user_agent: String,
    /// Extra request headers, name to value (`http_headers`); they may replace the defaults.
    pub http_headers: BTreeMap<String, String>,
    /// How write bodies are encoded (`content_encoding`: `gzip`, the default, or `identity`).
    pub content_encoding: ContentEncoding,
    /// Do not send `CREATE DATABASE` at start (`skip_database_creation`, default false).
    pub skip_database_creation: bool,
    /// Write unsigned integers with the `u` suffix, otherwise as `i`, clamped
    /// (`influx_uint_support`, default false).
    pub influx_uint_support: bool,
    /// `tls_ca`, `tls_cert`, `tls_key`, `insecure_skip_verify` (and the old `ssl_*` names).
    pub tls: TlsConfig,
    /// The metric filters (`namepass`, `tagdrop`, ...), applied before the buffer.
    pub filter: MetricFilter,
}

/// How a write body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// `Content-Encoding: gzip` (the default).
    Gzip,
    /// No compression.
    Identity,
}

/// `[[outputs.file]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutput {
    /// `stdout`, `stderr` or file paths, appended to (`files`, default `stdout`).
    pub files: Vec<String>,
    /// Write unsigned integers with the `u` suffix, otherwise as `i`, clamped
    /// (`influx_uint_support`, default false).
    pub influx_uint_support: bool,
    /// The metric filters (`namepass`, `tagdrop`, ...), applied before the buffer.
    pub filter: MetricFilter,
}

/// The largest config file read (`--config` and each file of `--config-directory`), in bytes:
/// a path that leads to an endless stream (`/dev/zero`) is refused instead of filling memory.
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The shortest `interval` and `flush_interval` accepted: shorter ones would spin the gather and
/// flush loops (and the receiver) for no use.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The default gather and flush interval.
pub fn default_interval() -> Duration {
    Duration::from_secs(10)
}
/// The default number of metrics per write.
pub fn default_metric_batch_size() -> usize {
    1000
}
/// The default buffer size per output, in metrics.
pub fn default_metric_buffer_limit() -> usize {
    10_000
}
/// The default scrape and write timeout.
pub fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
/// The default `content_length_limit` of `[[inputs.prometheus]]`, bytes: 64 MiB (Telegraf has
/// none; a body is held whole while it is parsed, so the agent needs one).
pub fn default_content_length_limit() -> u64 {
    64 << 20
}
/// The largest `content_length_limit`, bytes: 1 GiB.
pub const MAX_CONTENT_LENGTH_LIMIT: u64 = 1 << 30;
/// The User-Agent the agent sends.
pub fn default_user_agent() -> String {
    format!("telegraf-compatible-agent/{}", env!("CARGO_PKG_VERSION"))
}

impl Config {
    /// Reads `file` (or every `*.conf` in `directory`, sorted, after it) from disk, with the
    /// process environment for `$VAR` substitution.
    pub fn load(file: Option<&Path>, directory: Option<&Path>) -> Result<Self> {
        let mut sources = Vec::new();
        let read = |path: &Path| read_capped(path, MAX_CONFIG_FILE_BYTES);
        if let Some(file) = file {
            sources.push((file.display().to_string(), read(file)?));
        }
        if let Some(directory) = directory {
            let entries = std::fs::read_dir(directory).map_err(|source| ConfigError::Read {
                path: directory.to_owned(),
                source,
            })?;
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "conf"))
                .collect();
            paths.sort();
            for path in paths {
                sources.push((path.display().to_string(), read(&path)?));
            }
        }
        let sources: Vec<(&str, &str)> = sources
            .iter()
            .map(|(origin, text)| (origin.as_str(), text.as_str()))
            .collect();
        Self::parse_many(&sources, |name| std::env::var(name).ok())
    }

    /// Parses one config text.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Self::parse_many(&[("config", text)], env)
    }

    /// Parses several config texts as Telegraf does with `--config` and `--config-directory`:
    /// plugin sections accumulate; `[agent]` and `[global_tags]` keys from later texts win.
    pub fn parse_many(
        sources: &[(&str, &str)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let mut builder = Builder::default();
        for &(origin, text) in sources {
            let text =
                environment::substitute(text, &env).map_err(|source| ConfigError::Environment {
                    origin: origin.to_owned(),
                    source,
                })?;
            let table: toml::Table =
                text.parse()
                    .map_err(|error: toml::de::Error| ConfigError::Toml {
                        origin: origin.to_owned(),
                        // The message quotes the line: hide any credentials in a URL on it.
                        message: urls::redact(&error.to_string())
                            .trim_end()
                            .replace('\n', " "),
                    })?;
            builder.add(table, &env)?;
        }
        builder.finish()
    }

    /// The `host` tag value, or `None` with `omit_hostname`.
    pub fn host_tag(&self, machine_hostname: impl FnOnce() -> String) -> Option<String> {
        if self.agent.omit_hostname {
            None
        } else if self.agent.hostname.is_empty() {
            Some(machine_hostname())
        } else {
            Some(self.agent.hostname.clone())
        }
    }
}

/// Reads a text file of at most `limit` bytes.
fn read_capped(path: &Path, limit: u64) -> Result<String> {
    lifecycle::files::read_text_capped(path, limit).map_err(|source| {
        if source.kind() == std::io::ErrorKind::FileTooLarge {
            ConfigError::TooLarge {
                path: path.to_owned(),
                limit,
            }
        } else {
            ConfigError::Read {
                path: path.to_owned(),
                source,
            }
        }
    })
}

#[cfg(test)]
mod tests;
