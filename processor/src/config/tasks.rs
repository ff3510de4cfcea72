//! The config sections tasks read: `[pipeline]`, `[load]`, `[[influxdb]]` (where
//! influxDBOut writes; its writer is `tasks::influx_out`) and `[record]` ([`super::record`]).
//! The tasks module re-exports them.

use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use super::keys::{DurationRange, EnvKind, apply_indexed_env, check_integer_range};

/// `[pipeline]`: timing of the aggregates' alignment and state expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// `lateness`: an aggregate emits an aligned time at the latest this long after its first
    /// value arrived (default 15 s: the tutorial's agents flush every 10 s, plus jitter). An
    /// upper bound: each series is waited for only two of its own flush intervals, learned from
    /// its arrivals, after its latest new times. Range [`LATENESS_RANGE`]: `0s` (never wait for
    /// other series) to `1h`.
    pub lateness: Duration,
    /// `series-expiry`: a series silent this long stops being waited for (default 30 s). An
    /// upper bound: a series whose flush interval is learned is gone after four of them. Range
    /// [`SERIES_EXPIRY_RANGE`]: `1s` to `24h`.
    pub series_expiry: Duration,
    /// `state-expiry`: per-series state unused this long is freed (default 10 m). Range
    /// [`STATE_EXPIRY_RANGE`]: `1s` to `7d`.
    pub state_expiry: Duration,
    /// `queue-size`: write requests queued per task before points are dropped (default 1024).
    /// Range 1 to [`MAX_QUEUE_SIZE`] (65,536).
    pub queue_size: usize,
    /// `future-limit`: points stamped further ahead of the processor clock are dropped and
    /// counted (`future_points` of the from node); default 1 m. Range [`FUTURE_LIMIT_RANGE`]:
    /// `1s` to `24h`.
    pub future_limit: Duration,
    /// `max-series-per-task`: series (distinct measurement + tag sets) one task keeps state for
    /// at once, a count; a point of a new series beyond it is dropped, counted
    /// (`series_over_limit` of the from node) and logged at most every 10 s with an example
    /// series. A series freed after `state-expiry` makes room. Default
    /// [`default_max_series_per_task`] (100,000); 0 = no limit. Range 0 to
    /// [`MAX_SERIES_PER_TASK_LIMIT`].
    pub max_series_per_task: usize,
}

/// The largest `max-series-per-task`: 100 million series, about 100-200 GB of state per task
/// at the measured 1-2 KB per series; a larger number is a typo, not a plan (0 = no limit).
pub const MAX_SERIES_PER_TASK_LIMIT: usize = 100_000_000;

/// `lateness`: from 0 (emit at once, never wait for other series) to one hour. Above about
/// 292 years it would not fit the pipeline's nanosecond clock and would turn into 0.
pub const LATENESS_RANGE: DurationRange =
    DurationRange::new(Duration::ZERO, Duration::from_secs(3600));
/// `series-expiry`: from 1 s to 24 h. The pipeline reads 0 as "never", which would make a
/// vanished pod hold every aggregate for `lateness` forever.
pub const SERIES_EXPIRY_RANGE: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(24 * 3600));
/// `state-expiry`: from 1 s to 7 days. The pipeline reads 0 as "never", which would keep the
/// state of every series that ever existed.
pub const STATE_EXPIRY_RANGE: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600));
/// `future-limit`: from 1 s (agents' clocks differ by a second or two) to 24 h (a point a day
/// ahead holds its group's state that long).
pub const FUTURE_LIMIT_RANGE: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(24 * 3600));
/// The largest `queue-size`: 65,536 write requests per task (64 times the default). It is the
/// capacity of a tokio channel, which panics above `Semaphore::MAX_PERMITS`, and every queued
/// request holds its batch in memory.
pub const MAX_QUEUE_SIZE: usize = 65_536;
/// `[[influxdb]] timeout`: from 1 ms to one hour (a shorter timeout fails every write, a longer
/// one holds a task's points and its last flush at shutdown).
pub const INFLUXDB_TIMEOUT_RANGE: DurationRange =
    DurationRange::new(Duration::from_millis(1), Duration::from_secs(3600));

fn default_lateness() -> Duration {
    Duration::from_secs(15)
}
fn default_series_expiry() -> Duration {
    Duration::from_secs(30)
}
fn default_state_expiry() -> Duration {
    Duration::from_secs(600)
}
fn default_queue_size() -> usize {
    1024
}
fn default_future_limit() -> Duration {
    Duration::from_secs(60)
}
/// 100,000 series per task: the scale this processor is measured at (10,000 pods × 10
/// metrics, README "Scale and soak"), 1,000 times the tutorial's 10 deployments × 10 pods, and
/// at about 1-2 KB of state per series a bound of roughly 100-200 MB per task. A label explosion
/// (a request id or a timestamp as a tag) reaches it within seconds and is stopped there instead
/// of growing until the pod is OOM-killed.
pub fn default_max_series_per_task() -> usize {
    100_000
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            lateness: default_lateness(),
            series_expiry: default_series_expiry(),
            state_expiry: default_state_expiry(),
            queue_size: default_queue_size(),
            future_limit: default_future_limit(),
            max_series_per_task: default_max_series_per_task(),
        }
    }
}

/// `[load]`: tasks defined by files at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// `enabled` (default false).
    pub enabled: bool,
    /// `dir`: holds `tasks/*.tick` (default `/etc/kapacitor/load`, as Kapacitor).
    pub dir: PathBuf,
}

fn default_load_dir() -> PathBuf {
    PathBuf::from("/etc/kapacitor/load")
}

impl Default for Load {
    fn default() -> Self {
        Load {
            enabled: false,
            dir: default_load_dir(),
        }
    }
}

/// One `[[influxdb]]` section (influxDBOut's `.cluster(name)`), Kapacitor's keys.
#[derive(Clone, PartialEq)]
pub struct InfluxDb {
    /// `name` (default `default`).
    pub name: String,
    /// `urls`: base URLs, `http://host:port[/path]`. All are used: a write that fails with a
    /// connection error, a timeout or a 5xx is tried on the next one, and the last one that
    /// answered is tried first. At least one is required when the section is enabled.
    pub urls: Vec<String>,
    /// `default`: used by influxDBOut nodes without `.cluster()`.
    pub default: bool,
    /// `enabled` (default true).
    pub enabled: bool,
    /// `username`: sent with `password` as HTTP Basic auth when not empty.
    pub username: String,
    /// `password`.
    pub password: String,
    /// `timeout`: how long one request to one URL may take (duration string, default 5 s).
    /// Range [`INFLUXDB_TIMEOUT_RANGE`]: `1ms` to `1h`.
    pub timeout: Duration,
}

impl std::fmt::Debug for InfluxDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxDb")
            .field("name", &self.name)
            .field("urls", &self.urls)
            .field("default", &self.default)
            .field("enabled", &self.enabled)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `[[influxdb]] timeout` default. Kapacitor's is 0 (wait forever); a hung InfluxDB would then
/// hold a task's influxDBOut buffer forever, so ours is 5 s (Telegraf's output default), well
/// under influxDBOut's default 10-s flush interval.
pub fn default_influxdb_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Default for InfluxDb {
    fn default() -> Self {
        InfluxDb {
            name: "default".to_string(),
            urls: Vec::new(),
            default: false,
            enabled: true,
            username: String::new(),
            password: String::new(),
            timeout: default_influxdb_timeout(),
        }
    }
}

/// Kapacitor `[[influxdb]]` keys this processor reads but does not act on: TLS (plain HTTP
/// only) and InfluxDB subscriptions (agents write to the processor directly).
const UNSUPPORTED_INFLUXDB_KEYS: [&str; 17] = [
    "ssl-ca",
    "ssl-cert",
    "ssl-key",
    "insecure-skip-verify",
    "disable-subscriptions",
    "subscription-protocol",
    "subscription-mode",
    "subscription-path",
    "subscriptions",
    "excluded-subscriptions",
    "subscriptions-sync-interval",
    "kapacitor-hostname",
    "http-port",
    "udp-bind",
    "udp-buffer",
    "udp-read-buffer",
    "startup-timeout",
];

/// The `[[influxdb]]` keys that environment variables may set
/// (`KAPACITOR_INFLUXDB_0_ENABLED=false`, as in the tutorial's manifest).
const ENV_KEYS: &[(&str, EnvKind)] = &[
    ("enabled", EnvKind::Bool),
    ("name", EnvKind::String),
    ("default", EnvKind::Bool),
    ("urls", EnvKind::List),
    ("username", EnvKind::String),
    ("password", EnvKind::String),
    ("timeout", EnvKind::String),
];

/// Applies `KAPACITOR_INFLUXDB_[<N>_]<KEY>` / `PROCESSOR_INFLUXDB_...` to the `influxdb`
/// sections of the config table; returns the variables that name no key.
pub fn apply_env(table: &mut Table, vars: &[(String, String)]) -> super::Result<Vec<String>> {
    apply_indexed_env(table, vars, "influxdb", ENV_KEYS)
}

/// The sections above.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TasksConfig {
    pub pipeline: PipelineConfig,
    pub load: Load,
    pub influxdb: Vec<InfluxDb>,
    /// `[record]`: what tasks receive, written for `processor replay`.
    pub record: super::record::RecordConfig,
}

/// A bad value: (key, reason).
pub type Bad = (String, String);

fn bad(key: &str, reason: impl std::fmt::Display) -> Bad {
    (key.to_owned(), reason.to_string())
}

/// The duration at `key` (`default` when absent), which must be within `range`.
fn duration(
    table: &mut Table,
    section: &str,
    key: &str,
    default: Duration,
    range: DurationRange,
) -> Result<Duration, Bad> {
    match table.remove(key) {
        None => Ok(default),
        Some(Value::String(text)) => humantime::parse_duration(&text)
            .map_err(|e| format!("{text:?}: {e}"))
            .and_then(|d| range.check(d))
            .map_err(|reason| bad(&format!("{section}.{key}"), reason)),
        Some(_) => Err(bad(
            &format!("{section}.{key}"),
            "must be a duration string like \"15s\"",
        )),
    }
}

fn unknown(table: &Table, section: &str, warnings: &mut Vec<String>) {
    for key in table.keys() {
        warnings.push(format!("unknown config key {section}.{key} ignored"));
    }
}

impl TasksConfig {
    /// Takes `pipeline`, `load` and `influxdb` out of the top-level table. Errors name the key.
    pub fn from_table(table: &mut Table, warnings: &mut Vec<String>) -> Result<TasksConfig, Bad> {
        let mut config = TasksConfig {
            record: super::record::RecordConfig::from_table(table, warnings)?,
            ..TasksConfig::default()
        };
        match table.remove("pipeline") {
            None => {}
            Some(Value::Table(mut t)) => {
                let p = &mut config.pipeline;
                p.lateness = duration(
                    &mut t,
                    "pipeline",
                    "lateness",
                    default_lateness(),
                    LATENESS_RANGE,
                )?;
                p.series_expiry = duration(
                    &mut t,
                    "pipeline",
                    "series-expiry",
                    default_series_expiry(),
                    SERIES_EXPIRY_RANGE,
                )?;
                p.state_expiry = duration(
                    &mut t,
                    "pipeline",
                    "state-expiry",
                    default_state_expiry(),
                    STATE_EXPIRY_RANGE,
                )?;
                p.future_limit = duration(
                    &mut t,
                    "pipeline",
                    "future-limit",
                    default_future_limit(),
                    FUTURE_LIMIT_RANGE,
                )?;
                match t.remove("queue-size") {
                    None => {}
                    Some(Value::Integer(n)) => {
                        let max = i64::try_from(MAX_QUEUE_SIZE).unwrap_or(i64::MAX);
                        let n = check_integer_range(n, 1, max)
                            .map_err(|reason| bad("pipeline.queue-size", reason))?;
                        p.queue_size = usize::try_from(n).unwrap_or(MAX_QUEUE_SIZE);
                    }
                    Some(_) => {
                        return Err(bad("pipeline.queue-size", "must be an integer"));
                    }
                }
                match t.remove("max-series-per-task") {
                    None => {}
                    Some(Value::Integer(n)) => {
                        let max = i64::try_from(MAX_SERIES_PER_TASK_LIMIT).unwrap_or(i64::MAX);
                        let n = check_integer_range(n, 0, max)
                            .map_err(|reason| bad("pipeline.max-series-per-task", reason))?;
                        p.max_series_per_task =
                            usize::try_from(n).unwrap_or(MAX_SERIES_PER_TASK_LIMIT);
                    }
                    Some(_) => {
                        return Err(bad("pipeline.max-series-per-task", "must be an integer"));
                    }
                }
                unknown(&t, "pipeline", warnings);
            }
            Some(_) => return Err(bad("pipeline", "must be a table ([pipeline])")),
        }
        match table.remove("load") {
            None => {}
            Some(Value::Table(mut t)) => {
                match t.remove("enabled") {
                    None => {}
                    Some(Value::Boolean(b)) => config.load.enabled = b,
                    Some(_) => return Err(bad("load.enabled", "must be true or false")),
                }
                match t.remove("dir") {
                    None => {}
                    Some(Value::String(s)) => config.load.dir = PathBuf::from(s),
                    Some(_) => return Err(bad("load.dir", "must be a string")),
                }
                unknown(&t, "load", warnings);
            }
            Some(_) => return Err(bad("load", "must be a table ([load])")),
        }
        let sections = match table.remove("influxdb") {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(Value::Table(t)) => vec![Value::Table(t)],
            Some(_) => return Err(bad("influxdb", "must be [[influxdb]] sections")),
        };
        for (i, item) in sections.into_iter().enumerate() {
            let path = format!("influxdb[{i}]");
            let Value::Table(mut t) = item else {
                return Err(bad(&path, "must be a table"));
            };
            let name = match t.remove("name") {
                None => "default".to_string(),
                Some(Value::String(s)) => s,
                Some(_) => return Err(bad(&format!("{path}.name"), "must be a string")),
            };
            let urls = match t.remove("urls") {
                None => Vec::new(),
                Some(Value::Array(a)) => a
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(bad(&format!("{path}.urls"), "must be strings")),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad(&format!("{path}.urls"), "must be an array")),
            };
            let flag = |t: &mut Table, key: &str, default: bool| match t.remove(key) {
                None => Ok(default),
                Some(Value::Boolean(b)) => Ok(b),
                Some(_) => Err(bad(&format!("{path}.{key}"), "must be true or false")),
            };
            let default = flag(&mut t, "default", false)?;
            let enabled = flag(&mut t, "enabled", true)?;
            let text = |t: &mut Table, key: &str| match t.remove(key) {
                None => Ok(String::new()),
                Some(Value::String(s)) => Ok(s),
                Some(_) => Err(bad(&format!("{path}.{key}"), "must be a string")),
            };
            let username = text(&mut t, "username")?;
            let password = text(&mut t, "password")?;
            let timeout = duration(
                &mut t,
                &path,
                "timeout",
                default_influxdb_timeout(),
                INFLUXDB_TIMEOUT_RANGE,
            )?;
            if enabled && urls.is_empty() {
                return Err(bad(&format!("{path}.urls"), "must name at least one URL"));
            }
            for url in &urls {
                check_url(url).map_err(|reason| bad(&format!("{path}.urls"), reason))?;
            }
            for key in UNSUPPORTED_INFLUXDB_KEYS {
                if t.remove(key).is_some() {
                    warnings.push(format!("config key {path}.{key} is not supported: ignored"));
                }
            }
            unknown(&t, &path, warnings);
            config.influxdb.push(InfluxDb {
                name,
                urls,
                default,
                enabled,
                username,
                password,
                timeout,
            });
        }
        check_influxdb_sections(&config.influxdb)?;
        Ok(config)
    }
}

/// Kapacitor's rules across the enabled sections: names are unique, at most one is
/// `default`, and with more than one, one must be.
fn check_influxdb_sections(sections: &[InfluxDb]) -> Result<(), Bad> {
    let enabled: Vec<(usize, &InfluxDb)> = sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.enabled)
        .collect();
    for (n, (i, section)) in enabled.iter().enumerate() {
        if enabled[..n].iter().any(|(_, s)| s.name == section.name) {
            return Err(bad(
                &format!("influxdb[{i}].name"),
                format!("{:?} names another enabled section too", section.name),
            ));
        }
        if section.default && enabled[..n].iter().any(|(_, s)| s.default) {
            return Err(bad(
                &format!("influxdb[{i}].default"),
                "only one enabled section may be the default",
            ));
        }
    }
    if enabled.len() > 1 && !enabled.iter().any(|(_, s)| s.default) {
        return Err(bad(
            "influxdb",
            "with more than one enabled section, one must have default = true",
        ));
    }
    Ok(())
}

/// A `urls` entry must be a plain `http://` URL with a host (TLS is not supported).
fn check_url(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!("{url:?}: https is not supported (plain http only)"));
        }
        _ => return Err(format!("{url:?} must start with http://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{url:?} must not have a query"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_parse_with_defaults_and_unknown_keys_are_warned() {
        let mut table: Table = r#"
            [pipeline]
            lateness = "20s"
            bogus = 1
            [load]
            enabled = true
            dir = "/tmp/load"
            [[influxdb]]
            name = "main"
            urls = ["http://127.0.0.1:8086"]
            default = true
        "#
        .parse()
        .unwrap();
        let mut warnings = Vec::new();
        let config = TasksConfig::from_table(&mut table, &mut warnings).unwrap();
        assert_eq!(config.pipeline.lateness, Duration::from_secs(20));
        assert_eq!(config.pipeline.series_expiry, Duration::from_secs(30));
        assert!(config.load.enabled);
        assert_eq!(config.influxdb[0].name, "main");
        assert_eq!(warnings, vec!["unknown config key pipeline.bogus ignored"]);
        assert!(table.is_empty());
    }

    #[test]
    fn influxdb_sections_take_kapacitor_keys_and_warn_about_unsupported_ones_by_name() {
        let mut table: Table = r#"
            [[influxdb]]
            name = "main"
            urls = ["http://127.0.0.1:8086", "http://127.0.0.2:8086/"]
            username = "kapacitor"
            password = "secret"
            timeout = "2s"
            ssl-ca = "/etc/ca.pem"
            startup-timeout = "5m"
            subscriptions = { db = ["rp"] }
            bogus = 1
            [[influxdb]]
            name = "other"
            enabled = false
        "#
        .parse()
        .unwrap();
        let mut warnings = Vec::new();
        let config = TasksConfig::from_table(&mut table, &mut warnings).unwrap();
        let main = &config.influxdb[0];
        assert_eq!(main.urls.len(), 2);
        assert_eq!(main.username, "kapacitor");
        assert_eq!(main.password, "secret");
        assert_eq!(main.timeout, Duration::from_secs(2));
        assert!(!format!("{main:?}").contains("secret"));
        assert!(main.enabled && !main.default);
        assert!(!config.influxdb[1].enabled);
        assert_eq!(config.influxdb[1].timeout, default_influxdb_timeout());
        assert_eq!(
            warnings,
            vec![
                "config key influxdb[0].ssl-ca is not supported: ignored",
                "config key influxdb[0].subscriptions is not supported: ignored",
                "config key influxdb[0].startup-timeout is not supported: ignored",
                "unknown config key influxdb[0].bogus ignored",
            ]
        );
    }

    #[test]
    fn bad_influxdb_values_name_their_key() {
        for (text, key, reason) in [
            ("timeout = \"soon\"", "influxdb[0].timeout", "soon"),
            ("timeout = 5", "influxdb[0].timeout", "duration"),
            ("timeout = \"0s\"", "influxdb[0].timeout", "out of range"),
            ("username = 1", "influxdb[0].username", "string"),
            ("urls = []", "influxdb[0].urls", "at least one"),
            ("urls = [\"https://h:8086\"]", "influxdb[0].urls", "https"),
            ("urls = [\"h:8086\"]", "influxdb[0].urls", "http://"),
            (
                "urls = [\"http://h:8086?db=x\"]",
                "influxdb[0].urls",
                "query",
            ),
        ] {
            let mut table: Table = format!("[[influxdb]]\n{text}").parse().unwrap();
            let (bad_key, bad_reason) =
                TasksConfig::from_table(&mut table, &mut Vec::new()).unwrap_err();
            assert_eq!(bad_key, key, "{text}");
            assert!(bad_reason.contains(reason), "{text}: {bad_reason}");
        }
    }

    #[test]
    fn enabled_sections_need_unique_names_and_one_default_as_in_kapacitor() {
        let section = |name: &str, default: bool| {
            format!(
                "[[influxdb]]\nname = {name:?}\ndefault = {default}\nurls = [\"http://h:8086\"]\n"
            )
        };
        for (text, key) in [
            (
                section("a", true) + &section("a", false),
                "influxdb[1].name",
            ),
            (
                section("a", true) + &section("b", true),
                "influxdb[1].default",
            ),
            (section("a", false) + &section("b", false), "influxdb"),
        ] {
            let mut table: Table = text.parse().unwrap();
            let (bad_key, _) = TasksConfig::from_table(&mut table, &mut Vec::new()).unwrap_err();
            assert_eq!(bad_key, key, "{text}");
        }
        let mut table: Table = (section("a", false) + &section("b", true)).parse().unwrap();
        assert!(TasksConfig::from_table(&mut table, &mut Vec::new()).is_ok());
        let mut table: Table = (section("a", true)
            + "[[influxdb]]\nname = \"a\"\nenabled = false\n")
            .parse()
            .unwrap();
        assert!(TasksConfig::from_table(&mut table, &mut Vec::new()).is_ok());
    }

    /// Every numeric and duration key of `[pipeline]` and `[[influxdb]]`: just outside its
    /// range is refused naming the key, both ends are accepted.
    #[test]
    fn every_pipeline_and_influxdb_value_must_be_within_its_range() {
        let influx = "[[influxdb]]\nurls = [\"http://h:8086\"]\n";
        let cases: [(&str, &str, &str, &str, &str); 7] = [
            ("[pipeline]\n", "lateness", "\"0s\"", "\"1h\"", "\"1h 1ns\""),
            (
                "[pipeline]\n",
                "series-expiry",
                "\"1s\"",
                "\"24h\"",
                "\"999ms\"",
            ),
            ("[pipeline]\n", "state-expiry", "\"1s\"", "\"7d\"", "\"0s\""),
            ("[pipeline]\n", "queue-size", "1", "65536", "65537"),
            (
                "[pipeline]\n",
                "max-series-per-task",
                "0",
                "100000000",
                "100000001",
            ),
            ("[pipeline]\n", "max-series-per-task", "0", "1", "-1"),
            (influx, "timeout", "\"1ms\"", "\"1h\"", "\"999us\""),
        ];
        for (section, key, min, max, outside) in cases {
            for good in [min, max] {
                let mut table: Table = format!("{section}{key} = {good}\n").parse().unwrap();
                let parsed = TasksConfig::from_table(&mut table, &mut Vec::new());
                assert!(parsed.is_ok(), "{key} = {good}: {parsed:?}");
            }
            let mut table: Table = format!("{section}{key} = {outside}\n").parse().unwrap();
            let (bad_key, reason) =
                TasksConfig::from_table(&mut table, &mut Vec::new()).unwrap_err();
            assert!(bad_key.ends_with(key), "{key} = {outside}: {bad_key}");
            assert!(
                reason.contains("out of range"),
                "{key} = {outside}: {reason}"
            );
        }
    }

    #[test]
    fn a_queue_size_beyond_what_a_channel_can_hold_is_refused() {
        for n in ["2305843009213693952", "9223372036854775807", "0", "-1"] {
            let mut table: Table = format!("[pipeline]\nqueue-size = {n}").parse().unwrap();
            let (key, reason) = TasksConfig::from_table(&mut table, &mut Vec::new()).unwrap_err();
            assert_eq!(key, "pipeline.queue-size");
            assert!(reason.contains("from 1 to 65536"), "{n}: {reason}");
        }
    }

    #[test]
    fn a_duration_too_long_for_the_pipeline_clock_is_refused_not_turned_into_zero() {
        let mut table: Table = "[pipeline]\nlateness = \"300years\"".parse().unwrap();
        let (key, reason) = TasksConfig::from_table(&mut table, &mut Vec::new()).unwrap_err();
        assert_eq!(key, "pipeline.lateness");
        assert!(reason.contains("out of range"), "{reason}");
    }

    #[test]
    fn a_bad_duration_names_its_key() {
        let mut table: Table = "[pipeline]\nseries-expiry = \"soon\"".parse().unwrap();
        let (key, reason) = TasksConfig::from_table(&mut table, &mut Vec::new()).unwrap_err();
        assert_eq!(key, "pipeline.series-expiry");
        assert!(reason.contains("soon"), "{reason}");
    }
}
