//! The config sections tasks read: `[pipeline]`, `[load]`, `[[influxdb]]`, and the HTTP
//! writer influxDBOut nodes use.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use toml::{Table, Value};

use crate::pipeline::Settings;

/// `[pipeline]`: timing of the aggregates' alignment and state expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// `lateness`: an aggregate emits an aligned time at the latest this long after its first
    /// value arrived (default 15 s: agents flush every 10 s, plus jitter).
    pub lateness: Duration,
    /// `series-expiry`: a series silent this long stops being waited for (default 30 s).
    pub series_expiry: Duration,
    /// `state-expiry`: per-series state unused this long is freed (default 10 m).
    pub state_expiry: Duration,
    /// `queue-size`: write requests queued per task before points are dropped (default 1024).
    pub queue_size: usize,
}

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

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            lateness: default_lateness(),
            series_expiry: default_series_expiry(),
            state_expiry: default_state_expiry(),
            queue_size: default_queue_size(),
        }
    }
}

impl PipelineConfig {
    pub fn settings(&self) -> Settings {
        Settings {
            lateness: self.lateness,
            series_expiry: self.series_expiry,
            state_expiry: self.state_expiry,
            dry_run: false,
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

/// One `[[influxdb]]` section (influxDBOut's `.cluster(name)`).
#[derive(Debug, Clone, PartialEq)]
pub struct InfluxDb {
    /// `name` (default `default`).
    pub name: String,
    /// `urls`: base URLs, `http://host:port`; the first is used.
    pub urls: Vec<String>,
    /// `default`: used by influxDBOut nodes without `.cluster()`.
    pub default: bool,
    /// `enabled` (default true).
    pub enabled: bool,
}

/// The sections above.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TasksConfig {
    pub pipeline: PipelineConfig,
    pub load: Load,
    pub influxdb: Vec<InfluxDb>,
}

/// A bad value: (key, reason).
pub type Bad = (String, String);

fn bad(key: &str, reason: impl std::fmt::Display) -> Bad {
    (key.to_owned(), reason.to_string())
}

fn duration(
    table: &mut Table,
    section: &str,
    key: &str,
    default: Duration,
) -> Result<Duration, Bad> {
    match table.remove(key) {
        None => Ok(default),
        Some(Value::String(text)) => humantime::parse_duration(&text)
            .map_err(|e| bad(&format!("{section}.{key}"), format!("{text:?}: {e}"))),
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
        let mut config = TasksConfig::default();
        match table.remove("pipeline") {
            None => {}
            Some(Value::Table(mut t)) => {
                let p = &mut config.pipeline;
                p.lateness = duration(&mut t, "pipeline", "lateness", default_lateness())?;
                p.series_expiry =
                    duration(&mut t, "pipeline", "series-expiry", default_series_expiry())?;
                p.state_expiry =
                    duration(&mut t, "pipeline", "state-expiry", default_state_expiry())?;
                match t.remove("queue-size") {
                    None => {}
                    Some(Value::Integer(n)) if n > 0 => {
                        p.queue_size = usize::try_from(n).unwrap_or(default_queue_size());
                    }
                    Some(_) => {
                        return Err(bad("pipeline.queue-size", "must be a positive integer"));
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
            unknown(&t, &path, warnings);
            config.influxdb.push(InfluxDb {
                name,
                urls,
                default,
                enabled,
            });
        }
        Ok(config)
    }
}

/// Why an influxDBOut write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("no enabled [[influxdb]] section named {0:?} (or marked default)")]
    NoCluster(String),
    #[error("bad url {0:?}")]
    Url(String),
    #[error("write to {url} failed: {reason}")]
    Http { url: String, reason: String },
}

/// Posts line protocol to the configured InfluxDBs.
pub struct InfluxWriter {
    clusters: Vec<InfluxDb>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl InfluxWriter {
    pub fn new(clusters: Vec<InfluxDb>) -> InfluxWriter {
        InfluxWriter {
            clusters,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn cluster(&self, name: &str) -> Option<&InfluxDb> {
        let enabled = self.clusters.iter().filter(|c| c.enabled);
        if name.is_empty() {
            let mut enabled = enabled.clone();
            enabled
                .clone()
                .find(|c| c.default)
                .or_else(|| enabled.next())
        } else {
            enabled.clone().find(|c| c.name == name)
        }
    }

    /// POSTs `body` to `<url>/write?db=..&rp=..&precision=..` (`precision` as influxDBOut's
    /// `.precision()`: empty for nanoseconds).
    pub async fn write(
        &self,
        cluster: &str,
        db: &str,
        rp: &str,
        precision: &str,
        body: String,
    ) -> Result<(), WriteError> {
        let target = self
            .cluster(cluster)
            .ok_or_else(|| WriteError::NoCluster(cluster.to_owned()))?;
        let base = target
            .urls
            .first()
            .ok_or_else(|| WriteError::NoCluster(cluster.to_owned()))?;
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("db", db).append_pair("rp", rp);
            // InfluxDB 1.x reads `us` as nanoseconds: microseconds are sent as `u`.
            match precision {
                "" | "n" | "ns" => {}
                "u" | "us" | "µ" | "µs" => {
                    query.append_pair("precision", "u");
                }
                other => {
                    query.append_pair("precision", other);
                }
            }
            query.finish()
        };
        let url = format!("{}/write?{query}", base.trim_end_matches('/'));
        let uri: hyper::Uri = url.parse().map_err(|_| WriteError::Url(url.clone()))?;
        let request = hyper::Request::post(uri)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| WriteError::Http {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let response = tokio::time::timeout(Duration::from_secs(5), self.client.request(request))
            .await
            .map_err(|_| WriteError::Http {
                url: url.clone(),
                reason: "timed out after 5s".into(),
            })?
            .map_err(|e| WriteError::Http {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(WriteError::Http {
                url,
                reason: format!("status {}", response.status()),
            })
        }
    }
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
    fn a_bad_duration_names_its_key() {
        let mut table: Table = "[pipeline]\nseries-expiry = \"soon\"".parse().unwrap();
        let (key, reason) = TasksConfig::from_table(&mut table, &mut Vec::new()).unwrap_err();
        assert_eq!(key, "pipeline.series-expiry");
        assert!(reason.contains("soon"), "{reason}");
    }
}
