//! The processor's configuration: TOML in the shape of `kapacitor.conf`.
//!
//! Loading is two steps so later sections (`[load]`, `[kubernetes]`) and environment overrides
//! slot in without a rewrite: the text is parsed into a [`toml::Table`], then each section takes
//! the keys it knows out of its table ([`Http::from_table`]); whatever is left is an unknown key,
//! reported by its full dotted name in [`Loaded::warnings`] (a real `kapacitor.conf` has many
//! sections this processor does not implement, so unknown keys are warnings, not errors). A key
//! that is present with a wrong type or an invalid value is an [`Error`] naming that key.
//!
//! Environment overrides edit the table between the two steps ([`apply_env`]): every known key
//! can be set as `KAPACITOR_<SECTION>_<KEY>` or `PROCESSOR_<SECTION>_<KEY>` (upper case, `-` as
//! `_`, e.g. `PROCESSOR_HTTP_BIND_ADDRESS`, `KAPACITOR_DATA_DIR`); `PROCESSOR_` wins over
//! `KAPACITOR_`, and both win over the file. A later section adds its keys to [`ENV_KEYS`].
//!
//! # Layout
//! - this file: [`Config`], [`Loaded`], [`Error`], reading the file ([`Config::load`],
//!   [`Config::load_with_env`]) and the top-level keys (`data_dir`,
//!   `default-retention-policy`);
//! - [`keys`]: one key read by type, unknown keys reported, the environment overrides, value
//!   ranges, and [`parse_bind_address`];
//! - [`http`]: `[http]` with its users and tokens;
//! - [`kubernetes`]: `[kubernetes]` / `[[kubernetes]]` (the client each makes is
//!   `scaler::cluster`'s);
//! - [`tasks`]: `[pipeline]`, `[load]` and `[[influxdb]]`;
//! - [`record`]: `[record]`, recording what tasks receive for `processor replay`;
//! - [`ha`]: `[ha]`, the Lease election's keys (high availability).
//! - [`peers`]: the `[ha]` keys of task propagation between replicas (`peers`, ...).
//!
//! This module imports nothing else of the crate: the modules that read the configuration
//! import their sections from here.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

pub mod ha;
pub mod http;
pub mod keys;
pub mod kubernetes;
pub mod peers;
pub mod record;
pub mod tasks;

pub use ha::Ha;
pub use http::{ApiToken, Http, MAX_BODY_SIZE_LIMIT, SHUTDOWN_TIMEOUT_RANGE, User};
pub use keys::{
    DurationRange, ENV_KEYS, EnvKind, apply_env, apply_indexed_env, check_integer_range,
    parse_bind_address,
};
use keys::{invalid, take_string, warn_unknown};
pub use kubernetes::{Kubernetes, MAX_POINT_AGE_RANGE};
pub use peers::Peers;
pub use record::{RecordConfig, WhenFull};
pub use tasks::TasksConfig;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_FILE_SIZE`] (a symlink to `/dev/zero` would
    /// otherwise be read until memory runs out).
    #[error("config file {path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    /// The text is not TOML.
    #[error("config is not valid TOML")]
    Syntax(#[source] Box<toml::de::Error>),
    /// A key is present but its value has the wrong type or is out of range.
    #[error("config key `{key}`: {reason}")]
    InvalidValue { key: String, reason: String },
}

/// A `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The largest config file read: 16 MiB, far more than any real `kapacitor.conf`.
pub const MAX_CONFIG_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Directory for the processor's state (task definitions, in a later issue). Key `data_dir`.
    pub data_dir: PathBuf,
    /// Retention policy given to writes that name none (key `default-retention-policy`).
    /// Kapacitor's default is empty, which makes writes without `rp` miss `db.autogen` tasks
    /// (compat.md 5.2); ours is `autogen`.
    pub default_retention_policy: String,
    /// The `[http]` section.
    pub http: Http,
    /// The `[kubernetes]` / `[[kubernetes]]` sections ([`kubernetes`]).
    pub kubernetes: Vec<Kubernetes>,
    /// `[pipeline]`, `[load]` and `[[influxdb]]` ([`tasks`]).
    pub tasks: TasksConfig,
    /// `[ha]`: the Lease election ([`ha`]).
    pub ha: Ha,
    /// The `[ha]` keys of task propagation ([`peers`]).
    pub peers: Peers,
}

/// A configuration and the warnings produced while loading it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// One line per unknown (ignored) key, naming it.
    pub warnings: Vec<String>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/processor")
}

fn default_retention_policy() -> String {
    "autogen".to_owned()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            default_retention_policy: default_retention_policy(),
            http: Http::default(),
            kubernetes: Vec::new(),
            tasks: TasksConfig::default(),
            ha: Ha::default(),
            peers: Peers::default(),
        }
    }
}

impl Config {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Loaded> {
        Self::parse(&read_config_file(path)?)
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Loaded> {
        Self::from_table(parse_table(text)?)
    }

    /// Reads the file at `path` (or starts from the defaults when `None`), applies the
    /// environment overrides found in `vars`, and parses the result.
    pub fn load_with_env(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded> {
        let mut table = match path {
            None => Table::new(),
            Some(path) => parse_table(&read_config_file(path)?)?,
        };
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let mut unknown = apply_env(&mut table, vars.iter().cloned())?;
        unknown.extend(http::apply_env(&mut table, &vars)?);
        unknown.extend(kubernetes::apply_env(&mut table, &vars)?);
        unknown.extend(tasks::apply_env(&mut table, &vars)?);
        let mut loaded = Self::from_table(table)?;
        loaded.warnings.extend(
            unknown
                .into_iter()
                .map(|name| format!("environment variable {name} matches no config key")),
        );
        Ok(loaded)
    }

    /// Takes the known keys out of a parsed table; the rest become warnings.
    pub fn from_table(mut table: Table) -> Result<Loaded> {
        let mut warnings = Vec::new();
        let data_dir = take_string(&mut table, "", "data_dir")?
            .map(PathBuf::from)
            .unwrap_or_else(default_data_dir);
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let default_retention_policy = take_string(&mut table, "", "default-retention-policy")?
            .unwrap_or_else(default_retention_policy);
        let http = match table.remove("http") {
            None => Http::default(),
            Some(Value::Table(section)) => Http::from_table(section, &mut warnings)?,
            Some(_) => return Err(invalid("http", "must be a table ([http])")),
        };
        let kubernetes = match table.remove("kubernetes") {
            None => Vec::new(),
            Some(value) => kubernetes::from_value(value, &mut warnings)?,
        };
        kubernetes::check(&kubernetes)?;
        let tasks = TasksConfig::from_table(&mut table, &mut warnings)
            .map_err(|(key, reason)| invalid(&key, reason))?;
        // `[ha]`: the task propagation keys read first (`identity` is read, not taken), then
        // the election's keys; what neither took is reported key by key.
        let peers = Peers::from_table(&mut table).map_err(|(key, reason)| invalid(&key, reason))?;
        let ha = ha::from_top(&mut table)?;
        if ha.enabled && !kubernetes.iter().any(|k| k.enabled) {
            return Err(invalid(
                "ha.enabled",
                "needs an enabled [kubernetes] section (the Lease is reached through its client)",
            ));
        }
        if let Some(Value::Table(rest)) = table.remove("ha") {
            warn_unknown(&rest, "ha", &mut warnings);
        }
        warn_unknown(&table, "", &mut warnings);
        Ok(Loaded {
            config: Config {
                data_dir,
                default_retention_policy,
                http,
                kubernetes,
                tasks,
                ha,
                peers,
            },
            warnings,
        })
    }
}

/// The text of the file at `path`, at most [`MAX_CONFIG_FILE_SIZE`] bytes of UTF-8.
fn read_config_file(path: &Path) -> Result<String> {
    lifecycle::files::read_text_capped(path, MAX_CONFIG_FILE_SIZE).map_err(|source| {
        if source.kind() == std::io::ErrorKind::FileTooLarge {
            Error::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_CONFIG_FILE_SIZE,
            }
        } else {
            Error::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn parse_table(text: &str) -> Result<Table> {
    text.parse().map_err(|error| Error::Syntax(Box::new(error)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Parses `text`, which must load (shared with the section files' tests).
    pub(super) fn parse(text: &str) -> Loaded {
        match Config::parse(text) {
            Ok(loaded) => loaded,
            Err(error) => panic!("config should parse: {error}"),
        }
    }

    /// The error `text` loads with.
    pub(super) fn error(text: &str) -> String {
        match Config::parse(text) {
            Ok(loaded) => panic!("config should be rejected, got {loaded:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn kubernetes_sections_and_their_environment_are_read() {
        let loaded = Config::load_with_env(
            None,
            [
                ("KAPACITOR_KUBERNETES_ENABLED".to_owned(), "true".to_owned()),
                (
                    "KAPACITOR_KUBERNETES_IN_CLUSTER".to_owned(),
                    "true".to_owned(),
                ),
                ("PROCESSOR_KUBERNETES_BOGUS".to_owned(), "1".to_owned()),
            ],
        )
        .unwrap();
        let kubernetes = &loaded.config.kubernetes;
        assert_eq!(kubernetes.len(), 1);
        assert!(kubernetes[0].enabled && kubernetes[0].in_cluster);
        assert!(
            loaded.warnings.contains(
                &"environment variable PROCESSOR_KUBERNETES_BOGUS matches no config key".to_owned()
            ),
            "{:?}",
            loaded.warnings
        );
        let file = parse("[kubernetes]\nenabled = true\ndry-run = true\n");
        assert!(file.config.kubernetes[0].dry_run);
    }

    #[test]
    fn influxdb_sections_take_the_tutorials_indexed_environment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.conf");
        std::fs::write(
            &path,
            "[[influxdb]]\nname = \"main\"\nurls = [\"http://a:8086\"]\n",
        )
        .expect("write");
        let loaded = Config::load_with_env(
            Some(&path),
            [
                (
                    "KAPACITOR_INFLUXDB_0_ENABLED".to_owned(),
                    "false".to_owned(),
                ),
                (
                    "PROCESSOR_INFLUXDB_1_URLS".to_owned(),
                    "http://b:8086, http://c:8086".to_owned(),
                ),
                ("PROCESSOR_INFLUXDB_1_NAME".to_owned(), "backup".to_owned()),
                ("KAPACITOR_INFLUXDB_0_BOGUS".to_owned(), "1".to_owned()),
            ],
        )
        .unwrap();
        let sections = &loaded.config.tasks.influxdb;
        assert_eq!(sections.len(), 2, "{sections:?}");
        assert_eq!(
            (sections[0].name.as_str(), sections[0].enabled),
            ("main", false)
        );
        assert_eq!(sections[1].name, "backup");
        assert_eq!(sections[1].urls, ["http://b:8086", "http://c:8086"]);
        assert!(
            loaded.warnings.contains(
                &"environment variable KAPACITOR_INFLUXDB_0_BOGUS matches no config key".to_owned()
            ),
            "{:?}",
            loaded.warnings
        );
        let bad = Config::load_with_env(
            None,
            [("KAPACITOR_INFLUXDB_0_ENABLED".to_owned(), "no".to_owned())],
        )
        .unwrap_err();
        assert!(bad.to_string().contains("influxdb[0].enabled"), "{bad}");
    }

    #[test]
    fn empty_config_takes_every_default() {
        let loaded = parse("");
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.config.http.bind_address, ":9092");
        assert_eq!(loaded.config.http.max_body_size, 25_000_000);
        assert_eq!(loaded.config.default_retention_policy, "autogen");
        assert!(!loaded.config.http.auth_enabled);
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn every_known_key_is_read() {
        let loaded = parse(
            r#"
            data_dir = "/tmp/proc"
            default-retention-policy = "raw"
            [http]
            bind-address = "127.0.0.1:9999"
            max-body-size = 1000
            auth-enabled = true
            shutdown-timeout = "3s"
            [[http.users]]
            name = "telegraf"
            password = "s3cr3t-pass"
            [[http.tokens]]
            token = "abc"
            "#,
        );
        let config = loaded.config;
        assert_eq!(config.data_dir, PathBuf::from("/tmp/proc"));
        assert_eq!(config.default_retention_policy, "raw");
        assert_eq!(config.http.bind_address, "127.0.0.1:9999");
        assert_eq!(config.http.max_body_size, 1000);
        assert!(config.http.auth_enabled);
        assert_eq!(config.http.shutdown_timeout, Duration::from_secs(3));
        assert_eq!(config.http.users.len(), 1);
        assert_eq!(config.http.users[0].name, "telegraf");
        assert_eq!(config.http.users[0].password, "s3cr3t-pass");
        assert_eq!(config.http.tokens[0].token, "abc");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn unknown_keys_are_warned_about_by_full_name() {
        let loaded = parse(
            r#"
            hostname = "x"
            [http]
            log-enabled = true
            [[http.users]]
            name = "a"
            password = "b"
            admin = true
            [replay]
            dir = "/x"
            "#,
        );
        let mut warnings = loaded.warnings;
        warnings.sort();
        assert_eq!(
            warnings,
            [
                "unknown config key `hostname` is ignored",
                "unknown config key `http.log-enabled` is ignored",
                "unknown config key `http.users[0].admin` is ignored",
                "unknown config key `replay` is ignored",
            ]
        );
    }

    #[test]
    fn http_and_kubernetes_values_must_be_within_their_ranges() {
        for (text, key) in [
            ("[http]\nmax-body-size = 1073741825", "http.max-body-size"),
            (
                "[http]\nmax-body-size = 9223372036854775807",
                "http.max-body-size",
            ),
            (
                "[http]\nshutdown-timeout = \"1h 1s\"",
                "http.shutdown-timeout",
            ),
            (
                "[http]\nshutdown-timeout = \"100000000000000000s\"",
                "http.shutdown-timeout",
            ),
            (
                "[kubernetes]\nmax-point-age = \"0s\"",
                "kubernetes[0].max-point-age",
            ),
            (
                "[kubernetes]\nmax-point-age = \"25h\"",
                "kubernetes[0].max-point-age",
            ),
        ] {
            let message = error(text);
            assert!(message.contains(&format!("`{key}`")), "{text}: {message}");
            assert!(message.contains("out of range"), "{text}: {message}");
        }
        let loaded = parse(
            "[http]\nmax-body-size = 1073741824\nshutdown-timeout = \"0s\"\n\
             [kubernetes]\nmax-point-age = \"24h\"\n",
        );
        assert_eq!(loaded.config.http.max_body_size, 1 << 30);
        assert_eq!(loaded.config.http.shutdown_timeout, Duration::ZERO);
        assert_eq!(
            loaded.config.kubernetes[0].max_point_age,
            Duration::from_secs(24 * 3600)
        );
        let limits = parse("[http]\nmax-body-size = 0\nshutdown-timeout = \"1h\"\n");
        assert_eq!(limits.config.http.max_body_size, 0);
    }

    #[test]
    fn an_out_of_range_environment_value_names_the_key() {
        let error = Config::load_with_env(
            None,
            env(&[("PROCESSOR_PIPELINE_QUEUE_SIZE", "2305843009213693952")]),
        )
        .expect_err("rejected");
        assert!(
            error.to_string().contains("`pipeline.queue-size`"),
            "{error}"
        );
    }

    #[test]
    fn a_config_file_larger_than_16_mib_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.conf");
        let mut text = "#".repeat(usize::try_from(MAX_CONFIG_FILE_SIZE).unwrap_or(usize::MAX));
        text.push('\n');
        std::fs::write(&path, &text).expect("write");
        for loaded in [Config::load(&path), Config::load_with_env(Some(&path), [])] {
            let error = loaded.expect_err("too large");
            assert!(matches!(error, Error::TooLarge { .. }), "{error}");
        }
        text.pop();
        std::fs::write(&path, &text).expect("write");
        assert!(Config::load(&path).is_ok(), "16 MiB exactly is read");
    }

    #[cfg(unix)]
    #[test]
    fn a_config_path_linked_to_dev_zero_is_refused_not_read_forever() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.conf");
        std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink");
        let error = Config::load_with_env(Some(&path), []).expect_err("too large");
        assert!(
            error.to_string().contains("larger than 16777216 bytes"),
            "{error}"
        );
    }

    #[test]
    fn a_config_file_that_is_not_utf8_is_a_read_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.conf");
        std::fs::write(&path, b"data_dir = \"\xff\"\n").expect("write");
        let error = Config::load(&path).expect_err("not UTF-8");
        assert!(matches!(error, Error::Read { .. }), "{error}");
        assert!(error.to_string().contains("c.conf"), "{error}");
    }

    #[test]
    fn invalid_toml_is_a_syntax_error() {
        assert_eq!(error("[http"), "config is not valid TOML");
    }

    #[test]
    fn the_example_config_parses_without_warnings() {
        let text = include_str!("../../examples/processor.conf");
        let loaded = parse(text);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.config.http.bind_address, ":9092");
        assert_eq!(loaded.config.http.users.len(), 1);
        assert_eq!(loaded.config.http.tokens.len(), 1);
        let record = &loaded.config.tasks.record;
        assert!(!record.enabled);
        assert_eq!(record.tasks, ["autoscale"]);
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file_and_processor_wins_over_kapacitor() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.conf");
        std::fs::write(&path, "[http]\nbind-address = \":1\"\nmax-body-size = 5\n").expect("write");
        let loaded = Config::load_with_env(
            Some(&path),
            env(&[
                ("KAPACITOR_HTTP_BIND_ADDRESS", ":2"),
                ("PROCESSOR_HTTP_BIND_ADDRESS", ":3"),
                ("KAPACITOR_HTTP_MAX_BODY_SIZE", "77"),
                ("KAPACITOR_HTTP_AUTH_ENABLED", "false"),
                ("PROCESSOR_DATA_DIR", "/data"),
                ("KAPACITOR_DEFAULT_RETENTION_POLICY", "raw"),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("config");
        assert_eq!(loaded.config.http.bind_address, ":3");
        assert_eq!(loaded.config.http.max_body_size, 77);
        assert_eq!(loaded.config.data_dir, PathBuf::from("/data"));
        assert_eq!(loaded.config.default_retention_policy, "raw");
    }

    #[test]
    fn every_unknown_variable_under_either_prefix_is_warned_about_by_name() {
        let loaded = Config::load_with_env(
            None,
            env(&[
                ("PROCESSOR_HTTP_BOGUS", "1"),
                ("KAPACITOR_PIPELINE_NOPE", "1"),
                ("KAPACITOR_NOPE", "1"),
                ("PROCESSOR_KUBERNETES_BOGUS", "1"),
                ("KAPACITOR_INFLUXDB", "1"),
                ("PROCESSOR_HTTP_BIND_ADDRESS", ":1"),
                ("KAPACITOR_PIPELINE_QUEUE_SIZE", "5"),
                ("PROCESSOR_URL", "http://p:1"),
                ("KAPACITOR_URL", "http://k:1"),
                ("HOME", "/root"),
            ]),
        )
        .expect("config");
        let mut warned: Vec<&str> = loaded
            .warnings
            .iter()
            .filter_map(|w| w.strip_prefix("environment variable "))
            .filter_map(|w| w.strip_suffix(" matches no config key"))
            .collect();
        warned.sort_unstable();
        assert_eq!(
            warned,
            [
                "KAPACITOR_INFLUXDB",
                "KAPACITOR_NOPE",
                "KAPACITOR_PIPELINE_NOPE",
                "PROCESSOR_HTTP_BOGUS",
                "PROCESSOR_KUBERNETES_BOGUS",
            ],
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn environment_works_without_a_file_and_bad_values_name_the_key() {
        let loaded = Config::load_with_env(None, env(&[("PROCESSOR_HTTP_SHUTDOWN_TIMEOUT", "2s")]))
            .expect("config");
        assert_eq!(loaded.config.http.shutdown_timeout, Duration::from_secs(2));
        let error = Config::load_with_env(None, env(&[("KAPACITOR_HTTP_MAX_BODY_SIZE", "big")]))
            .expect_err("rejected");
        assert!(
            error.to_string().contains("`http.max-body-size`"),
            "{error}"
        );
        assert!(
            error.to_string().contains("KAPACITOR_HTTP_MAX_BODY_SIZE"),
            "{error}"
        );
    }

    #[test]
    fn the_record_section_takes_its_environment() {
        let loaded = Config::load_with_env(
            None,
            env(&[
                ("PROCESSOR_RECORD_ENABLED", "true"),
                ("PROCESSOR_RECORD_TASKS", "autoscale, other"),
                ("KAPACITOR_RECORD_MAX_SIZE", "1048576"),
                ("PROCESSOR_RECORD_WHEN_FULL", "rotate"),
                ("PROCESSOR_RECORD_DIR", "/tmp/recordings"),
            ]),
        )
        .expect("config");
        let record = &loaded.config.tasks.record;
        assert!(record.enabled);
        assert_eq!(record.tasks, ["autoscale", "other"]);
        assert_eq!(record.max_size, 1 << 20);
        assert_eq!(record.when_full, WhenFull::Rotate);
        assert_eq!(record.dir, Some(PathBuf::from("/tmp/recordings")));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let error = Config::load_with_env(None, env(&[("PROCESSOR_RECORD_MAX_SIZE", "1")]))
            .expect_err("rejected");
        assert!(error.to_string().contains("`record.max-size`"), "{error}");
    }
}
