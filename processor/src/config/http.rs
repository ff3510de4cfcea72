//! The `[http]` section: the write API's listener, its body, connection, timeout and shutdown
//! limits, and the users and tokens it accepts (`[[http.users]]`, `[[http.tokens]]`).

use std::time::Duration;

use toml::Table;

use super::Result;
use super::keys::{
    DurationRange, EnvKind, apply_indexed_env, invalid, parse_bind_address, take_array_of_tables,
    take_bool, take_integer, take_string, warn_unknown,
};

/// The `[http]` section: the write API's listener and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    /// Listen address, `host:port`; a bare `:port` means every interface (`bind-address`).
    pub bind_address: String,
    /// Largest accepted request body in bytes, applied after gunzip too; 0 means no limit, as
    /// InfluxDB (`max-body-size`). Range 0 to [`MAX_BODY_SIZE_LIMIT`] (1 GiB).
    pub max_body_size: usize,
    /// Require credentials on the write, query and task API (`auth-enabled`, true or false).
    /// When true, a password or token from [`PLACEHOLDER_SECRETS`] is refused.
    pub auth_enabled: bool,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT (`shutdown-timeout`,
    /// a duration such as `"10s"`). Range [`SHUTDOWN_TIMEOUT_RANGE`]: `0s` (close at once) to
    /// `1h`.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send a request's head (request line and headers), from
    /// the moment the connection is accepted or, on a kept-alive connection, from the first
    /// byte of the next request; then the connection is closed without an answer, as Go's
    /// `ReadHeaderTimeout` (`header-read-timeout`, a duration). Range
    /// [`HEADER_READ_TIMEOUT_RANGE`]: `100ms` to `1h`; default `10s`.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may stay open with no request after its last answer;
    /// then it is closed, as Go's `IdleTimeout` (`idle-timeout`, a duration). Range
    /// [`IDLE_TIMEOUT_RANGE`]: `1s` to `24h`; default `2m` (longer than Go's and Telegraf's
    /// client-side 90 s, so clients close idle connections first).
    pub idle_timeout: Duration,
    /// How long reading one request body may take, from the end of its headers to its last
    /// byte; a slower body is answered `408` and the connection closed
    /// (`body-read-timeout`, a duration). Range [`BODY_READ_TIMEOUT_RANGE`]: `100ms` to `1h`;
    /// default `30s`.
    pub body_read_timeout: Duration,
    /// The most connections open at once, in connections; beyond it a new connection is
    /// accepted and closed at once, as InfluxDB's `max-connection-limit`
    /// (`max-connection-limit`). 0 means no limit; range 0 to [`MAX_CONNECTION_LIMIT`];
    /// default 10000.
    pub max_connection_limit: usize,
    /// Accepted users (`[[http.users]]`), for Basic auth, `u`/`p` and `Token name:password`.
    pub users: Vec<User>,
    /// Accepted API tokens (`[[http.tokens]]`), for `Authorization: Token|Bearer <token>`.
    pub tokens: Vec<ApiToken>,
}

/// One `[[http.users]]` entry.
#[derive(Clone, PartialEq)]
pub struct User {
    /// User name (`name`).
    pub name: String,
    /// Password, compared in constant time (`password`); required and not empty.
    pub password: String,
}

/// One `[[http.tokens]]` entry.
#[derive(Clone, PartialEq)]
pub struct ApiToken {
    /// The secret sent after `Token ` or `Bearer ` (`token`).
    pub token: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("token", &"<redacted>")
            .finish()
    }
}

fn default_bind_address() -> String {
    ":9092".to_owned()
}

/// 25 MB, InfluxDB's default `max-body-size`.
fn default_max_body_size() -> usize {
    25_000_000
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

/// 10 s: a client sends its headers in one packet; a slow one gets far more than it needs.
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}

/// 2 min: longer than the 90 s after which Go's clients (Telegraf) drop an idle connection.
fn default_idle_timeout() -> Duration {
    Duration::from_secs(120)
}

/// 30 s: a 25 MB body (the default `max-body-size`) at 1 MB/s.
fn default_body_read_timeout() -> Duration {
    Duration::from_secs(30)
}

/// 10,000 connections: every agent of a large cluster kept alive, at about 10 KB each.
fn default_max_connection_limit() -> usize {
    10_000
}

/// `header-read-timeout`: from 100 ms to one hour.
pub const HEADER_READ_TIMEOUT_RANGE: DurationRange =
    DurationRange::new(Duration::from_millis(100), Duration::from_secs(3600));

/// `idle-timeout`: from one second to a day.
pub const IDLE_TIMEOUT_RANGE: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(86_400));

/// `body-read-timeout`: from 100 ms to one hour.
pub const BODY_READ_TIMEOUT_RANGE: DurationRange =
    DurationRange::new(Duration::from_millis(100), Duration::from_secs(3600));

/// The largest `max-connection-limit`: a million connections (each takes a file descriptor
/// and some memory; 0 keeps InfluxDB's "no limit").
pub const MAX_CONNECTION_LIMIT: u64 = 1_000_000;

/// Passwords and tokens that ship in examples and manifests (compared ignoring case). With
/// `auth-enabled`, one of them is refused: a cluster applied unchanged would otherwise have a
/// known credential on its write and task API.
pub const PLACEHOLDER_SECRETS: [&str; 6] = [
    "change-me",
    "changeme",
    "change_me",
    "changeit",
    "password",
    "secret",
];

/// Where the manifests keep the credentials, named in the refusal so the operator knows what
/// to set (manifests/README.md, "Credentials").
pub const CREDENTIALS_SECRET: &str = "Secret `processor-auth` (key `password`)";

/// The keys of one `[[http.users]]` entry settable as `PROCESSOR_HTTP_USERS_<N>_<KEY>` (the
/// manifests set `NAME` and `PASSWORD` of entry 0 from Secret `processor-auth`).
const USER_ENV_KEYS: &[(&str, EnvKind)] =
    &[("name", EnvKind::String), ("password", EnvKind::String)];

/// Applies `KAPACITOR_HTTP_USERS_<N>_<KEY>` / `PROCESSOR_HTTP_USERS_<N>_<KEY>` to
/// `[[http.users]]`; returns the variables under that prefix that name no key.
pub fn apply_env(table: &mut Table, vars: &[(String, String)]) -> Result<Vec<String>> {
    if !vars.iter().any(|(name, _)| name.contains("_HTTP_USERS_")) {
        return Ok(Vec::new());
    }
    let http = match table
        .entry("http")
        .or_insert_with(|| toml::Value::Table(Table::new()))
    {
        toml::Value::Table(http) => http,
        _ => return Err(invalid("http", "must be a table ([http])")),
    };
    // `apply_indexed_env` works on a top-level array section named by its variables' prefix:
    // the users array is moved under that name (`http_users`) and back.
    let mut scratch = Table::new();
    if let Some(users) = http.remove("users") {
        scratch.insert("http_users".to_owned(), users);
    }
    let unknown = apply_indexed_env(&mut scratch, vars, "http_users", USER_ENV_KEYS)?;
    if let Some(users) = scratch.remove("http_users") {
        http.insert("users".to_owned(), users);
    }
    Ok(unknown)
}

/// Whether `secret` is one of [`PLACEHOLDER_SECRETS`].
fn is_placeholder(secret: &str) -> bool {
    PLACEHOLDER_SECRETS
        .iter()
        .any(|placeholder| placeholder.eq_ignore_ascii_case(secret.trim()))
}

/// The largest `max-body-size`: 1 GiB. A body is held in memory whole, so a larger limit only
/// lets one request take more memory than a processor pod has (0 keeps InfluxDB's "no limit").
pub const MAX_BODY_SIZE_LIMIT: u64 = 1 << 30;

/// `shutdown-timeout`: from 0 (close connections at once) to one hour, longer than any
/// `terminationGracePeriodSeconds` worth waiting for.
pub const SHUTDOWN_TIMEOUT_RANGE: DurationRange =
    DurationRange::new(Duration::ZERO, Duration::from_secs(3600));

impl Default for Http {
    fn default() -> Self {
        Self {
            bind_address: default_bind_address(),
            max_body_size: default_max_body_size(),
            auth_enabled: false,
            shutdown_timeout: default_shutdown_timeout(),
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            body_read_timeout: default_body_read_timeout(),
            max_connection_limit: default_max_connection_limit(),
            users: Vec::new(),
            tokens: Vec::new(),
        }
    }
}

impl Http {
    /// Takes the `[http]` keys out of `table`; unknown ones are pushed to `warnings`.
    pub fn from_table(mut table: Table, warnings: &mut Vec<String>) -> Result<Self> {
        const SECTION: &str = "http";
        let bind_address =
            take_string(&mut table, SECTION, "bind-address")?.unwrap_or_else(default_bind_address);
        if parse_bind_address(&bind_address).is_none() {
            return Err(invalid(
                "http.bind-address",
                format!(
                    "{bind_address:?} is not host:port or :port (host: an IPv4 address, \
                     [IPv6] or a host name; port: 0 to 65535)"
                ),
            ));
        }
        let max_body_size = match take_integer(&mut table, SECTION, "max-body-size")? {
            None => default_max_body_size(),
            Some(n) => u64::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_BODY_SIZE_LIMIT)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(
                        "http.max-body-size",
                        format!(
                            "{n} is out of range: must be 0 (no limit) or a byte count up to \
                             {MAX_BODY_SIZE_LIMIT}"
                        ),
                    )
                })?,
        };
        let auth_enabled = take_bool(&mut table, SECTION, "auth-enabled")?.unwrap_or(false);
        let shutdown_timeout = take_duration(
            &mut table,
            "shutdown-timeout",
            SHUTDOWN_TIMEOUT_RANGE,
            default_shutdown_timeout,
        )?;
        let header_read_timeout = take_duration(
            &mut table,
            "header-read-timeout",
            HEADER_READ_TIMEOUT_RANGE,
            default_header_read_timeout,
        )?;
        let idle_timeout = take_duration(
            &mut table,
            "idle-timeout",
            IDLE_TIMEOUT_RANGE,
            default_idle_timeout,
        )?;
        let body_read_timeout = take_duration(
            &mut table,
            "body-read-timeout",
            BODY_READ_TIMEOUT_RANGE,
            default_body_read_timeout,
        )?;
        let max_connection_limit = match take_integer(&mut table, SECTION, "max-connection-limit")?
        {
            None => default_max_connection_limit(),
            Some(n) => u64::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_CONNECTION_LIMIT)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(
                        "http.max-connection-limit",
                        format!(
                            "{n} is out of range: must be 0 (no limit) or a number of \
                             connections up to {MAX_CONNECTION_LIMIT}"
                        ),
                    )
                })?,
        };
        let mut users = Vec::new();
        for (index, mut entry) in take_array_of_tables(&mut table, SECTION, "users")?
            .into_iter()
            .enumerate()
        {
            let path = format!("http.users[{index}]");
            let name = take_string(&mut entry, &path, "name")?
                .filter(|name| !name.is_empty())
                .ok_or_else(|| invalid(&format!("{path}.name"), "is required"))?;
            // A user without a password would let `?u=name` alone in.
            let password = take_string(&mut entry, &path, "password")?
                .filter(|password| !password.is_empty())
                .ok_or_else(|| {
                    invalid(
                        &format!("{path}.password"),
                        format!("user {name:?} has no password (an empty one is refused too)"),
                    )
                })?;
            warn_unknown(&entry, &path, warnings);
            users.push(User { name, password });
        }
        let mut tokens = Vec::new();
        for (index, mut entry) in take_array_of_tables(&mut table, SECTION, "tokens")?
            .into_iter()
            .enumerate()
        {
            let path = format!("http.tokens[{index}]");
            let token = take_string(&mut entry, &path, "token")?
                .filter(|token| !token.is_empty())
                .ok_or_else(|| invalid(&format!("{path}.token"), "is required"))?;
            warn_unknown(&entry, &path, warnings);
            tokens.push(ApiToken { token });
        }
        if auth_enabled {
            let placeholder_user = users
                .iter()
                .position(|user| is_placeholder(&user.password))
                .map(|index| format!("http.users[{index}].password"));
            let placeholder_token = tokens
                .iter()
                .position(|token| is_placeholder(&token.token))
                .map(|index| format!("http.tokens[{index}].token"));
            if let Some(key) = placeholder_user.or(placeholder_token) {
                return Err(invalid(
                    &key,
                    format!(
                        "is a placeholder (one of {PLACEHOLDER_SECRETS:?}) while auth-enabled is \
                         true: anyone who read the manifests could write points and define \
                         tasks; set a real secret (in the manifests: {CREDENTIALS_SECRET}, see \
                         manifests/README.md, \"Credentials\")"
                    ),
                ));
            }
        }
        if auth_enabled && users.is_empty() && tokens.is_empty() {
            return Err(invalid(
                "http.auth-enabled",
                "is true but no [[http.users]] or [[http.tokens]] are configured",
            ));
        }
        warn_unknown(&table, SECTION, warnings);
        Ok(Self {
            bind_address,
            max_body_size,
            auth_enabled,
            shutdown_timeout,
            header_read_timeout,
            idle_timeout,
            body_read_timeout,
            max_connection_limit,
            users,
            tokens,
        })
    }
}

/// Reads the duration key `http.<key>` (Go-style text such as `"10s"`) within `range`.
fn take_duration(
    table: &mut Table,
    key: &str,
    range: DurationRange,
    default: fn() -> Duration,
) -> Result<Duration> {
    match take_string(table, "http", key)? {
        None => Ok(default()),
        Some(text) => humantime::parse_duration(&text)
            .map_err(|error| format!("{text:?}: {error}"))
            .and_then(|duration| range.check(duration))
            .map_err(|reason| invalid(&format!("http.{key}"), reason)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{error, parse};

    #[test]
    fn wrong_type_names_the_key() {
        assert_eq!(
            error("[http]\nmax-body-size = \"big\""),
            "config key `http.max-body-size`: expected an integer, found string"
        );
        assert_eq!(
            error("[http]\nauth-enabled = \"yes\""),
            "config key `http.auth-enabled`: expected true or false, found string"
        );
    }

    #[test]
    fn negative_body_size_is_rejected() {
        assert!(error("[http]\nmax-body-size = -1").contains("`http.max-body-size`"));
    }

    #[test]
    fn bad_bind_address_is_rejected() {
        assert!(error("[http]\nbind-address = \"nope\"").contains("`http.bind-address`"));
    }

    #[test]
    fn bad_duration_names_the_key() {
        assert!(error("[http]\nshutdown-timeout = \"soon\"").contains("`http.shutdown-timeout`"));
    }

    #[test]
    fn connection_limits_and_timeouts_are_read_and_default_when_absent() {
        let loaded = parse(
            "[http]\nheader-read-timeout = \"2s\"\nidle-timeout = \"1m\"\n\
             body-read-timeout = \"500ms\"\nmax-connection-limit = 0",
        );
        let http = &loaded.config.http;
        assert_eq!(http.header_read_timeout, Duration::from_secs(2));
        assert_eq!(http.idle_timeout, Duration::from_secs(60));
        assert_eq!(http.body_read_timeout, Duration::from_millis(500));
        assert_eq!(http.max_connection_limit, 0);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let defaults = parse("").config.http;
        assert_eq!(
            (
                defaults.header_read_timeout,
                defaults.idle_timeout,
                defaults.body_read_timeout,
                defaults.max_connection_limit
            ),
            (
                Duration::from_secs(10),
                Duration::from_secs(120),
                Duration::from_secs(30),
                10_000
            )
        );
    }

    #[test]
    fn connection_limits_and_timeouts_take_their_environment_variables() {
        let vars = [
            ("PROCESSOR_HTTP_HEADER_READ_TIMEOUT", "3s"),
            ("KAPACITOR_HTTP_IDLE_TIMEOUT", "5m"),
            ("PROCESSOR_HTTP_BODY_READ_TIMEOUT", "45s"),
            ("PROCESSOR_HTTP_MAX_CONNECTION_LIMIT", "7"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let loaded = super::super::Config::load_with_env(None, vars).expect("loads");
        let http = &loaded.config.http;
        assert_eq!(
            (
                http.header_read_timeout,
                http.idle_timeout,
                http.body_read_timeout,
                http.max_connection_limit
            ),
            (
                Duration::from_secs(3),
                Duration::from_secs(300),
                Duration::from_secs(45),
                7
            )
        );
        let error = super::super::Config::load_with_env(
            None,
            [(
                "PROCESSOR_HTTP_MAX_CONNECTION_LIMIT".to_owned(),
                "-3".to_owned(),
            )],
        )
        .expect_err("out of range");
        assert!(
            error.to_string().contains("http.max-connection-limit"),
            "{error}"
        );
    }

    #[test]
    fn out_of_range_timeouts_and_limits_name_their_key() {
        for (config, key) in [
            ("header-read-timeout = \"0s\"", "`http.header-read-timeout`"),
            ("header-read-timeout = \"2h\"", "`http.header-read-timeout`"),
            ("idle-timeout = \"10ms\"", "`http.idle-timeout`"),
            ("idle-timeout = \"soon\"", "`http.idle-timeout`"),
            ("body-read-timeout = \"99ms\"", "`http.body-read-timeout`"),
            ("max-connection-limit = -1", "`http.max-connection-limit`"),
            (
                "max-connection-limit = 1000001",
                "`http.max-connection-limit`",
            ),
            (
                "max-connection-limit = \"many\"",
                "`http.max-connection-limit`",
            ),
        ] {
            let message = error(&format!("[http]\n{config}"));
            assert!(message.contains(key), "{config}: {message}");
        }
    }

    #[test]
    fn auth_without_credentials_is_rejected() {
        assert!(error("[http]\nauth-enabled = true").contains("`http.auth-enabled`"));
    }

    #[test]
    fn user_without_name_is_rejected() {
        assert!(error("[[http.users]]\npassword = \"x\"").contains("`http.users[0].name`"));
    }

    #[test]
    fn a_user_without_a_password_is_refused_naming_the_user() {
        for entry in [
            "name = \"telegraf\"",
            "name = \"telegraf\"\npassword = \"\"",
        ] {
            for auth in ["true", "false"] {
                let message = error(&format!(
                    "[http]\nauth-enabled = {auth}\n[[http.users]]\nname = \"ok\"\n\
                     password = \"pw\"\n[[http.users]]\n{entry}"
                ));
                assert!(
                    message.contains("`http.users[1].password`")
                        && message.contains("\"telegraf\""),
                    "{entry}: {message}"
                );
            }
        }
    }

    #[test]
    fn a_placeholder_password_or_token_is_refused_with_auth_enabled_naming_key_and_secret() {
        for (entry, key) in [
            (
                "[[http.users]]\nname = \"telegraf\"\npassword = \"change-me\"",
                "`http.users[0].password`",
            ),
            (
                "[[http.users]]\nname = \"telegraf\"\npassword = \"ChangeMe\"",
                "`http.users[0].password`",
            ),
            (
                "[[http.tokens]]\ntoken = \"password\"",
                "`http.tokens[0].token`",
            ),
        ] {
            let message = error(&format!("[http]\nauth-enabled = true\n{entry}"));
            assert!(
                message.contains(key) && message.contains("Secret `processor-auth`"),
                "{entry}: {message}"
            );
        }
    }

    #[test]
    fn a_placeholder_is_allowed_while_auth_is_off_and_a_real_password_always() {
        let off = parse("[[http.users]]\nname = \"u\"\npassword = \"change-me\"");
        assert!(!off.config.http.auth_enabled);
        let on = parse(
            "[http]\nauth-enabled = true\n[[http.users]]\nname = \"u\"\npassword = \"x7Qe-2pVt\"",
        );
        assert_eq!(on.config.http.users.len(), 1);
    }

    #[test]
    fn users_come_from_indexed_environment_variables_over_the_file() {
        use super::super::Config;
        let vars = [
            ("PROCESSOR_HTTP_USERS_0_NAME", "telegraf"),
            ("PROCESSOR_HTTP_USERS_0_PASSWORD", "from-the-secret"),
            ("PROCESSOR_HTTP_USERS_1_NAME", "second"),
            ("KAPACITOR_HTTP_USERS_1_PASSWORD", "kapacitor-spelling"),
            ("PROCESSOR_HTTP_USERS_0_BOGUS", "x"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("processor.conf");
        std::fs::write(
            &path,
            "[http]\nauth-enabled = true\n[[http.users]]\nname = \"telegraf\"\n",
        )
        .expect("write");
        let loaded = Config::load_with_env(Some(&path), vars).expect("loads");
        let users: Vec<(&str, &str)> = loaded
            .config
            .http
            .users
            .iter()
            .map(|user| (user.name.as_str(), user.password.as_str()))
            .collect();
        assert_eq!(
            users,
            [
                ("telegraf", "from-the-secret"),
                ("second", "kapacitor-spelling")
            ]
        );
        assert_eq!(
            loaded.warnings,
            ["environment variable PROCESSOR_HTTP_USERS_0_BOGUS matches no config key"]
        );
        let placeholder = Config::load_with_env(
            Some(&path),
            [(
                "PROCESSOR_HTTP_USERS_0_PASSWORD".to_owned(),
                "change-me".to_owned(),
            )],
        )
        .expect_err("a placeholder from the environment is refused too");
        assert!(placeholder.to_string().contains("`http.users[0].password`"));
    }

    #[test]
    fn secrets_are_not_printed_by_debug() {
        let loaded = parse(
            "[[http.users]]\nname = \"u\"\npassword = \"hunter2\"\n[[http.tokens]]\ntoken = \"tok3n\"",
        );
        let printed = format!("{:?}", loaded.config);
        assert!(
            !printed.contains("hunter2") && !printed.contains("tok3n"),
            "{printed}"
        );
    }
}
