//! Telegraf's TOML configuration, the subset the agent implements.
//!
//! The tutorial's `telegraf.conf` loads unchanged. Every key is either implemented or reported in
//! [`Config::warnings`] by its full name (`inputs.prometheus[0].kubernetes_services`): nothing is
//! silently ignored. Plugins the agent does not implement are reported the same way, with what
//! that means for the data.
//!
//! Reading is pure: [`Config::parse`] takes the text and an environment lookup; only
//! [`Config::load`] touches the file system.

pub mod duration;
pub mod environment;
pub mod urls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::filter::{GlobError, GlobSet, MetricFilter};

pub use duration::{DurationError, parse_go_duration};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    // The cause (with the variable and its message) is the source: shown once in the chain.
    #[error("{origin}")]
    Environment {
        origin: String,
        #[source]
        source: environment::MissingVariable,
    },
    #[error("{path} is larger than {limit} bytes; a config file must be smaller")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{origin}: invalid TOML: {message}")]
    Toml { origin: String, message: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("no inputs configured (a [[inputs.prometheus]] section is needed)")]
    NoInputs,
    #[error(
        "no outputs configured (an [[outputs.influxdb]] or [[outputs.file]] section is needed)"
    )]
    NoOutputs,
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The whole agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub agent: AgentConfig,
    /// `[global_tags]`: added to every metric that does not already carry the tag.
    pub global_tags: BTreeMap<String, String>,
    pub inputs: Vec<PrometheusInput>,
    pub outputs: Vec<Output>,
    /// Keys and plugins that were read but are not implemented, one sentence each.
    pub warnings: Vec<String>,
}

/// `[agent]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// How often inputs are gathered (default 10 s).
    pub interval: Duration,
    /// Align gathers to multiples of `interval` on the wall clock (default true).
    pub round_interval: bool,
    /// Metrics per write (default 1000).
    pub metric_batch_size: usize,
    /// Metrics each output buffers before dropping the oldest (default 10000).
    pub metric_buffer_limit: usize,
    /// Each gather waits a random 0..jitter first (default 0).
    pub collection_jitter: Duration,
    /// How often outputs are flushed (default 10 s).
    pub flush_interval: Duration,
    /// Each flush waits a random 0..jitter more (default 0).
    pub flush_jitter: Duration,
    /// Metric timestamps are rounded to this; `None` derives it from `interval` as Telegraf does.
    pub precision: Option<Duration>,
    /// The `host` tag; empty means the machine's hostname.
    pub hostname: String,
    /// Do not add the `host` tag.
    pub omit_hostname: bool,
    /// Log at debug level.
    pub debug: bool,
    /// Log only errors.
    pub quiet: bool,
    /// Log to this file instead of stderr; empty means stderr.
    pub logfile: String,
}

/// `[[inputs.prometheus]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusInput {
    /// Endpoints to scrape; a URL with an empty path scrapes `/metrics`.
    pub urls: Vec<String>,
    /// 1 (one metric per family, fields `counter`/`gauge`/`value`) or 2 (measurement `prometheus`).
    pub metric_version: u8,
    /// Name of the tag that carries the scraped URL (default `url`; empty = no tag).
    pub url_tag: String,
    /// Use the scrape time even when a sample has its own timestamp.
    pub ignore_timestamp: bool,
    /// Time allowed for the whole scrape (default 5 s).
    pub timeout: Duration,
    /// Time allowed until the response headers arrive (default: `timeout`).
    pub response_timeout: Option<Duration>,
    /// File holding a bearer token, read at every scrape.
    pub bearer_token: Option<PathBuf>,
    /// A bearer token given inline.
    pub bearer_token_string: Option<String>,
    /// HTTP Basic credentials.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Extra request headers.
    pub http_headers: BTreeMap<String, String>,
    pub tls: TlsConfig,
    /// Gather interval for this input; `None` uses `[agent] interval`.
    pub interval: Option<Duration>,
    pub name_prefix: String,
    pub name_suffix: String,
    pub name_override: String,
    /// `[inputs.prometheus.tags]`: added when the metric does not carry the tag.
    pub tags: BTreeMap<String, String>,
    pub filter: MetricFilter,
}

/// TLS settings of an HTTP client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust (instead of the system's).
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Accept any server certificate (for tests only).
    pub insecure_skip_verify: bool,
}

/// One configured output.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Influxdb(Box<InfluxdbOutput>),
    File(Box<FileOutput>),
}

/// `[[outputs.influxdb]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct InfluxdbOutput {
    /// Each batch goes to one of these, chosen at random, the others being failover.
    pub urls: Vec<String>,
    /// Target database (default `telegraf`).
    pub database: String,
    /// Target retention policy; empty means the server's default.
    pub retention_policy: String,
    /// `consistency` query parameter; empty or `one` sends none.
    pub write_consistency: String,
    /// Time allowed for one write (default 5 s).
    pub timeout: Duration,
    pub username: Option<String>,
    pub password: Option<String>,
    pub user_agent: String,
    pub http_headers: BTreeMap<String, String>,
    /// `gzip` (default) or `identity`.
    pub content_encoding: ContentEncoding,
    /// Do not send `CREATE DATABASE` at start.
    pub skip_database_creation: bool,
    /// Write unsigned integers with the `u` suffix (otherwise as `i`, clamped).
    pub influx_uint_support: bool,
    pub tls: TlsConfig,
    pub filter: MetricFilter,
}

/// How a write body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    Gzip,
    Identity,
}

/// `[[outputs.file]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutput {
    /// `stdout`, `stderr` or file paths.
    pub files: Vec<String>,
    pub influx_uint_support: bool,
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
            builder.add(table)?;
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
    use std::io::Read as _;
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    String::from_utf8(bytes)
        .map_err(|error| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, error)))
}

#[derive(Default)]
struct Builder {
    agent: toml::Table,
    global_tags: BTreeMap<String, String>,
    inputs: Vec<PrometheusInput>,
    outputs: Vec<Output>,
    warnings: Vec<String>,
}

impl Builder {
    fn add(&mut self, table: toml::Table) -> Result<()> {
        for (section, value) in table {
            match section.as_str() {
                "agent" => {
                    let table = expect_table(&section, value)?;
                    self.agent.extend(table);
                }
                "global_tags" => {
                    let table = expect_table(&section, value)?;
                    self.global_tags.extend(string_map(&section, table)?);
                }
                "inputs" => self.add_plugins(&section, value, Kind::Input)?,
                "outputs" => self.add_plugins(&section, value, Kind::Output)?,
                "processors" | "aggregators" => {
                    for name in expect_table(&section, value)?.keys() {
                        self.warnings.push(format!(
                            "{section}.{name}: plugin not implemented; metrics pass through unchanged"
                        ));
                    }
                }
                _ => self
                    .warnings
                    .push(format!("{section}: section not implemented; ignored")),
            }
        }
        Ok(())
    }

    fn add_plugins(&mut self, section: &str, value: toml::Value, kind: Kind) -> Result<()> {
        for (name, instances) in expect_table(section, value)? {
            let instances = match instances {
                toml::Value::Array(items) => items,
                table @ toml::Value::Table(_) => vec![table],
                other => {
                    return Err(invalid(
                        format!("{section}.{name}"),
                        format!("expected a table, found {}", other.type_str()),
                    ));
                }
            };
            for (index, instance) in instances.into_iter().enumerate() {
                let key = format!("{section}.{name}[{index}]");
                let table = expect_table(&key, instance)?;
                let mut reader = Section::new(key, table);
                match (kind, name.as_str()) {
                    (Kind::Input, "prometheus") => {
                        self.inputs.push(prometheus_input(&mut reader)?);
                    }
                    (Kind::Output, "influxdb") => {
                        self.outputs
                            .push(Output::Influxdb(Box::new(influxdb_output(&mut reader)?)));
                    }
                    (Kind::Output, "file") => {
                        self.outputs
                            .push(Output::File(Box::new(file_output(&mut reader)?)));
                    }
                    (Kind::Input, _) => {
                        self.warnings.push(format!(
                            "{section}.{name}: input plugin not implemented; it collects nothing"
                        ));
                        continue;
                    }
                    (Kind::Output, _) => {
                        self.warnings.push(format!(
                            "{section}.{name}: output plugin not implemented; nothing is written to it"
                        ));
                        continue;
                    }
                }
                reader.finish(&mut self.warnings);
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Config> {
        let mut reader = Section::new("agent".to_owned(), self.agent);
        let agent = agent_config(&mut reader, &mut self.warnings)?;
        reader.finish(&mut self.warnings);
        if self.inputs.is_empty() {
            return Err(ConfigError::NoInputs);
        }
        if self.outputs.is_empty() {
            return Err(ConfigError::NoOutputs);
        }
        Ok(Config {
            agent,
            global_tags: self.global_tags,
            inputs: self.inputs,
            outputs: self.outputs,
            warnings: self.warnings,
        })
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Input,
    Output,
}

fn agent_config(s: &mut Section, warnings: &mut Vec<String>) -> Result<AgentConfig> {
    let interval = s.duration("interval")?.unwrap_or_else(default_interval);
    at_least_min_interval("agent.interval", interval)?;
    let precision = match s.take("precision") {
        None => None,
        Some(toml::Value::String(text)) => Some(precision(&text, warnings)?),
        Some(other) => Some(duration_value("agent.precision", other)?),
    }
    .filter(|p| !p.is_zero());
    let flush_interval = s
        .duration("flush_interval")?
        .unwrap_or_else(default_interval);
    at_least_min_interval("agent.flush_interval", flush_interval)?;
    let metric_batch_size = s
        .positive("metric_batch_size")?
        .unwrap_or_else(default_metric_batch_size);
    let metric_buffer_limit = s
        .positive("metric_buffer_limit")?
        .unwrap_or_else(default_metric_buffer_limit);
    Ok(AgentConfig {
        interval,
        round_interval: s.bool("round_interval")?.unwrap_or(true),
        metric_batch_size,
        // Telegraf raises a buffer smaller than a batch to the batch size.
        metric_buffer_limit: metric_buffer_limit.max(metric_batch_size),
        collection_jitter: s.duration("collection_jitter")?.unwrap_or_default(),
        flush_interval,
        flush_jitter: s.duration("flush_jitter")?.unwrap_or_default(),
        precision,
        hostname: s.string("hostname")?.unwrap_or_default(),
        omit_hostname: s.bool("omit_hostname")?.unwrap_or(false),
        debug: s.bool("debug")?.unwrap_or(false),
        quiet: s.bool("quiet")?.unwrap_or(false),
        logfile: s.string("logfile")?.unwrap_or_default(),
    })
}

/// Refuses a loop period below [`MIN_INTERVAL`] (zero included).
fn at_least_min_interval(key: &str, interval: Duration) -> Result<()> {
    if interval < MIN_INTERVAL {
        return Err(invalid(
            key,
            format!("{interval:?} is shorter than the minimum of {MIN_INTERVAL:?}"),
        ));
    }
    Ok(())
}

/// Refuses URLs with credentials inside (`http://user:password@host`): they would not be sent,
/// and would show in tags and logs. The error shows the URL with them hidden.
fn without_credentials(key: String, urls: &[String]) -> Result<()> {
    match urls.iter().find(|url| urls::has_userinfo(url)) {
        None => Ok(()),
        Some(url) => Err(invalid(
            key,
            format!(
                "{} has credentials in the URL, which are not supported; use username and password",
                urls::redact(url)
            ),
        )),
    }
}

/// `[agent] precision`: a Go duration, or (old Telegraf configs such as the tutorial's) a bare
/// unit like `"s"`, accepted with a warning since modern Telegraf refuses it.
fn precision(text: &str, warnings: &mut Vec<String>) -> Result<Duration> {
    let bare_unit = match text {
        "ns" => Some(Duration::from_nanos(1)),
        "us" | "µs" | "u" => Some(Duration::from_micros(1)),
        "ms" => Some(Duration::from_millis(1)),
        "s" => Some(Duration::from_secs(1)),
        "m" => Some(Duration::from_secs(60)),
        "h" => Some(Duration::from_secs(3600)),
        _ => None,
    };
    if let Some(duration) = bare_unit {
        warnings.push(format!(
            "agent.precision: {text:?} is the old unit-only form (modern Telegraf refuses it); read as \"1{}\"",
            if text == "u" { "us" } else { text }
        ));
        return Ok(duration);
    }
    parse_go_duration(text).map_err(|e| invalid("agent.precision", e.to_string()))
}

fn prometheus_input(s: &mut Section) -> Result<PrometheusInput> {
    let urls = s.strings("urls")?.unwrap_or_default();
    if urls.is_empty() {
        return Err(invalid(s.key("urls"), "at least one URL is required"));
    }
    without_credentials(s.key("urls"), &urls)?;
    let metric_version = match s.integer("metric_version")?.unwrap_or(1) {
        0 | 1 => 1,
        2 => 2,
        other => {
            return Err(invalid(
                s.key("metric_version"),
                format!("must be 1 or 2, not {other}"),
            ));
        }
    };
    Ok(PrometheusInput {
        urls,
        metric_version,
        url_tag: s.string("url_tag")?.unwrap_or_else(|| "url".to_owned()),
        ignore_timestamp: s.bool("ignore_timestamp")?.unwrap_or(false),
        timeout: s.duration("timeout")?.unwrap_or_else(default_timeout),
        response_timeout: s.duration("response_timeout")?.filter(|d| !d.is_zero()),
        bearer_token: s.string("bearer_token")?.map(PathBuf::from),
        bearer_token_string: s.string("bearer_token_string")?,
        username: s.string("username")?,
        password: s.string("password")?,
        http_headers: s.string_map("http_headers")?,
        tls: tls_config(s)?,
        interval: match s.duration("interval")?.filter(|d| !d.is_zero()) {
            Some(interval) => {
                at_least_min_interval(&s.key("interval"), interval)?;
                Some(interval)
            }
            None => None,
        },
        name_prefix: s.string("name_prefix")?.unwrap_or_default(),
        name_suffix: s.string("name_suffix")?.unwrap_or_default(),
        name_override: s.string("name_override")?.unwrap_or_default(),
        tags: s.string_map("tags")?,
        filter: metric_filter(s)?,
    })
}

fn influxdb_output(s: &mut Section) -> Result<InfluxdbOutput> {
    let mut urls = s.strings("urls")?.unwrap_or_default();
    without_credentials(s.key("urls"), &urls)?;
    if let Some(url) = s.string("url")? {
        without_credentials(s.key("url"), std::slice::from_ref(&url))?;
        urls.push(url);
    }
    if urls.is_empty() {
        urls.push("http://localhost:8086".to_owned());
    }
    let content_encoding = match s.string("content_encoding")?.as_deref() {
        None | Some("gzip") => ContentEncoding::Gzip,
        Some("identity" | "") => ContentEncoding::Identity,
        Some(other) => {
            return Err(invalid(
                s.key("content_encoding"),
                format!("must be \"gzip\" or \"identity\", not {other:?}"),
            ));
        }
    };
    let write_consistency = s.string("write_consistency")?.unwrap_or_default();
    if !matches!(
        write_consistency.as_str(),
        "" | "any" | "one" | "quorum" | "all"
    ) {
        return Err(invalid(
            s.key("write_consistency"),
            format!("must be any, one, quorum or all, not {write_consistency:?}"),
        ));
    }
    Ok(InfluxdbOutput {
        urls,
        database: s
            .string("database")?
            .unwrap_or_else(|| "telegraf".to_owned()),
        retention_policy: s.string("retention_policy")?.unwrap_or_default(),
        write_consistency,
        timeout: s.duration("timeout")?.unwrap_or_else(default_timeout),
        username: s.string("username")?,
        password: s.string("password")?,
        user_agent: s.string("user_agent")?.unwrap_or_else(default_user_agent),
        http_headers: s.string_map("http_headers")?,
        content_encoding,
        skip_database_creation: s.bool("skip_database_creation")?.unwrap_or(false),
        influx_uint_support: s.bool("influx_uint_support")?.unwrap_or(false),
        tls: tls_config(s)?,
        filter: metric_filter(s)?,
    })
}

fn file_output(s: &mut Section) -> Result<FileOutput> {
    let data_format = s
        .string("data_format")?
        .unwrap_or_else(|| "influx".to_owned());
    if data_format != "influx" {
        return Err(invalid(
            s.key("data_format"),
            format!("only \"influx\" is implemented, not {data_format:?}"),
        ));
    }
    Ok(FileOutput {
        files: s
            .strings("files")?
            .unwrap_or_else(|| vec!["stdout".to_owned()]),
        influx_uint_support: s.bool("influx_uint_support")?.unwrap_or(false),
        filter: metric_filter(s)?,
    })
}

fn tls_config(s: &mut Section) -> Result<TlsConfig> {
    // Telegraf's 2017 names (ssl_*) are still accepted by it as aliases.
    let mut path = |new: &str, old: &str| -> Result<Option<PathBuf>> {
        Ok(s.string(new)?.or(s.string(old)?).map(PathBuf::from))
    };
    let ca = path("tls_ca", "ssl_ca")?;
    let cert = path("tls_cert", "ssl_cert")?;
    let key = path("tls_key", "ssl_key")?;
    Ok(TlsConfig {
        ca,
        cert,
        key,
        insecure_skip_verify: s.bool("insecure_skip_verify")?.unwrap_or(false),
    })
}

fn metric_filter(s: &mut Section) -> Result<MetricFilter> {
    Ok(MetricFilter {
        namepass: s.globs("namepass")?,
        namedrop: s.globs("namedrop")?,
        tagpass: s.tag_globs("tagpass")?,
        tagdrop: s.tag_globs("tagdrop")?,
        fieldpass: s.globs("fieldpass")?.or(s.globs("pass")?),
        fielddrop: s.globs("fielddrop")?.or(s.globs("drop")?),
        taginclude: s.globs("taginclude")?,
        tagexclude: s.globs("tagexclude")?,
    })
}

/// Reads the keys of one section and remembers which were used, so the rest can be reported.
struct Section {
    path: String,
    table: toml::Table,
}

impl Section {
    fn new(path: String, table: toml::Table) -> Self {
        Self { path, table }
    }

    fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn take(&mut self, name: &str) -> Option<toml::Value> {
        self.table.remove(name)
    }

    fn string(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", &other)),
        }
    }

    fn bool(&mut self, name: &str) -> Result<Option<bool>> {
        match self.take(name) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(name, "true or false", &other)),
        }
    }

    fn integer(&mut self, name: &str) -> Result<Option<i64>> {
        match self.take(name) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(i)),
            Some(other) => Err(self.wrong_type(name, "an integer", &other)),
        }
    }

    fn positive(&mut self, name: &str) -> Result<Option<usize>> {
        match self.integer(name)? {
            None => Ok(None),
            Some(n) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            Some(n) => Err(invalid(
                self.key(name),
                format!("must be positive, not {n}"),
            )),
        }
    }

    fn duration(&mut self, name: &str) -> Result<Option<Duration>> {
        let key = self.key(name);
        self.take(name).map(|v| duration_value(&key, v)).transpose()
    }

    fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        match self.take(name) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    other => Err(self.wrong_type(name, "a list of strings", &other)),
                })
                .collect::<Result<_>>()
                .map(Some),
            Some(other) => Err(self.wrong_type(name, "a list of strings", &other)),
        }
    }

    fn string_map(&mut self, name: &str) -> Result<BTreeMap<String, String>> {
        match self.take(name) {
            None => Ok(BTreeMap::new()),
            Some(toml::Value::Table(table)) => string_map(&self.key(name), table),
            Some(other) => Err(self.wrong_type(name, "a table of strings", &other)),
        }
    }

    fn globs(&mut self, name: &str) -> Result<Option<GlobSet>> {
        let key = self.key(name);
        self.strings(name)?
            .map(|patterns| GlobSet::new(&patterns).map_err(|e| glob_error(&key, e)))
            .transpose()
    }

    fn tag_globs(&mut self, name: &str) -> Result<Vec<(String, GlobSet)>> {
        let key = self.key(name);
        let table = match self.take(name) {
            None => return Ok(Vec::new()),
            Some(toml::Value::Table(table)) => table,
            Some(other) => return Err(self.wrong_type(name, "a table of lists", &other)),
        };
        table
            .into_iter()
            .map(|(tag, patterns)| {
                let key = format!("{key}.{tag}");
                let patterns: Vec<String> = match patterns {
                    toml::Value::Array(items) => items
                        .into_iter()
                        .map(|p| match p {
                            toml::Value::String(s) => Ok(s),
                            other => Err(invalid(
                                key.clone(),
                                format!("expected strings, found {}", other.type_str()),
                            )),
                        })
                        .collect::<Result<_>>()?,
                    other => {
                        return Err(invalid(
                            key,
                            format!("expected a list of strings, found {}", other.type_str()),
                        ));
                    }
                };
                let globs = GlobSet::new(&patterns).map_err(|e| glob_error(&key, e))?;
                Ok((tag, globs))
            })
            .collect()
    }

    fn wrong_type(&self, name: &str, expected: &str, found: &toml::Value) -> ConfigError {
        invalid(
            self.key(name),
            format!("expected {expected}, found {}", found.type_str()),
        )
    }

    /// Reports every key that no reader took.
    fn finish(self, warnings: &mut Vec<String>) {
        for key in self.table.keys() {
            warnings.push(format!(
                "{}.{key}: option not implemented; ignored",
                self.path
            ));
        }
    }
}

fn duration_value(key: &str, value: toml::Value) -> Result<Duration> {
    match value {
        toml::Value::String(text) => {
            parse_go_duration(&text).map_err(|e| invalid(key.to_owned(), e.to_string()))
        }
        // Telegraf reads bare numbers as seconds.
        toml::Value::Integer(secs) if secs >= 0 => Ok(Duration::from_secs(secs.unsigned_abs())),
        toml::Value::Float(secs) if secs >= 0.0 && secs.is_finite() && secs < 1e12 => {
            Ok(Duration::from_secs_f64(secs))
        }
        other => Err(invalid(
            key.to_owned(),
            format!("expected a duration such as \"10s\", found {other}"),
        )),
    }
}

fn string_map(key: &str, table: toml::Table) -> Result<BTreeMap<String, String>> {
    table
        .into_iter()
        .map(|(name, value)| match value {
            toml::Value::String(s) => Ok((name, s)),
            other => Err(invalid(
                format!("{key}.{name}"),
                format!("expected a string, found {}", other.type_str()),
            )),
        })
        .collect()
}

fn expect_table(key: &str, value: toml::Value) -> Result<toml::Table> {
    match value {
        toml::Value::Table(table) => Ok(table),
        other => Err(invalid(
            key.to_owned(),
            format!("expected a table, found {}", other.type_str()),
        )),
    }
}

fn glob_error(key: &str, error: GlobError) -> ConfigError {
    invalid(key.to_owned(), error.to_string())
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests;
