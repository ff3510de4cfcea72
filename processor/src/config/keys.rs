//! The key and environment helpers every section uses: reading one key by type (the
//! `take_*` functions, errors naming the full dotted key), reporting the keys left over, the
//! `KAPACITOR_*` / `PROCESSOR_*` environment overrides ([`apply_env`], [`apply_indexed_env`]),
//! value ranges ([`DurationRange`], [`check_integer_range`]) and Go-style listen addresses
//! ([`parse_bind_address`]).

use std::time::Duration;

use toml::{Table, Value};

use super::{Error, Result};

/// The values a duration key may take, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

impl DurationRange {
    pub const fn new(min: Duration, max: Duration) -> Self {
        Self { min, max }
    }

    /// `Ok` when `value` is within the range, else the reason, naming the range.
    pub fn check(&self, value: Duration) -> std::result::Result<Duration, String> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "{} is out of range: must be from {} to {}",
                humantime::format_duration(value),
                humantime::format_duration(self.min),
                humantime::format_duration(self.max),
            ))
        }
    }
}

/// `Ok` when `value` is within `min..=max`, else the reason, naming the range.
pub fn check_integer_range(value: i64, min: i64, max: i64) -> std::result::Result<i64, String> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is out of range: must be from {min} to {max}"
        ))
    }
}

/// The type of a key's value, to read it from an environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    String,
    Integer,
    Bool,
    /// Comma-separated strings.
    List,
}

/// Keys that environment variables may set: (section, key, type).
pub const ENV_KEYS: &[(&str, &str, EnvKind)] = &[
    ("", "data_dir", EnvKind::String),
    ("", "default-retention-policy", EnvKind::String),
    ("http", "bind-address", EnvKind::String),
    ("http", "max-body-size", EnvKind::Integer),
    ("http", "auth-enabled", EnvKind::Bool),
    ("http", "shutdown-timeout", EnvKind::String),
    ("http", "header-read-timeout", EnvKind::String),
    ("http", "idle-timeout", EnvKind::String),
    ("http", "body-read-timeout", EnvKind::String),
    ("http", "max-connection-limit", EnvKind::Integer),
    ("pipeline", "lateness", EnvKind::String),
    ("pipeline", "series-expiry", EnvKind::String),
    ("pipeline", "state-expiry", EnvKind::String),
    ("pipeline", "queue-size", EnvKind::Integer),
    ("pipeline", "future-limit", EnvKind::String),
    ("pipeline", "max-series-per-task", EnvKind::Integer),
    ("load", "enabled", EnvKind::Bool),
    ("load", "dir", EnvKind::String),
    ("record", "enabled", EnvKind::Bool),
    ("record", "dir", EnvKind::String),
    ("record", "tasks", EnvKind::List),
    ("record", "max-size", EnvKind::Integer),
    ("record", "when-full", EnvKind::String),
    ("ha", "enabled", EnvKind::Bool),
    ("ha", "lease-name", EnvKind::String),
    ("ha", "lease-namespace", EnvKind::String),
    ("ha", "lease-duration", EnvKind::String),
    ("ha", "renew-deadline", EnvKind::String),
    ("ha", "retry-period", EnvKind::String),
    ("ha", "identity", EnvKind::String),
    ("ha", "peers", EnvKind::List),
    ("ha", "sync-interval", EnvKind::String),
    ("ha", "peer-timeout", EnvKind::String),
    ("ha", "tombstone-ttl", EnvKind::String),
];

/// Environment variable prefixes, weakest first.
const ENV_PREFIXES: [&str; 2] = ["KAPACITOR_", "PROCESSOR_"];

/// Array sections set by `<PREFIX><SECTION>_[<N>_]<KEY>` through [`apply_indexed_env`], which
/// reports their unknown variables itself.
const INDEXED_ENV_SECTIONS: [&str; 3] = ["KUBERNETES_", "INFLUXDB_", "HTTP_USERS_"];

/// Variables under [`ENV_PREFIXES`] that are not config keys but are read elsewhere: the
/// client commands' server URL (`KAPACITOR_URL`, `PROCESSOR_URL`; `server_url` in `cli.rs`).
const NON_CONFIG_VARIABLES: [&str; 1] = ["URL"];

/// Sets the keys of [`ENV_KEYS`] named by `vars` in `table` (see the module documentation).
/// Returns the variables under the prefixes that name nothing, for the caller to warn about
/// (those of the indexed sections are [`apply_indexed_env`]'s to report).
pub fn apply_env(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>> {
    let vars: std::collections::HashMap<String, String> = vars
        .into_iter()
        .filter(|(name, _)| ENV_PREFIXES.iter().any(|p| name.starts_with(p)))
        .collect();
    let suffixes: Vec<String> = ENV_KEYS
        .iter()
        .map(|&(section, key, _)| dotted(section, key).to_uppercase().replace(['.', '-'], "_"))
        .collect();
    let mut unknown: Vec<String> = vars
        .keys()
        .filter(|name| {
            let rest = ENV_PREFIXES
                .iter()
                .find_map(|prefix| name.strip_prefix(prefix))
                .unwrap_or(name);
            !suffixes.iter().any(|suffix| suffix == rest)
                && !NON_CONFIG_VARIABLES.contains(&rest)
                && !INDEXED_ENV_SECTIONS.iter().any(|s| rest.starts_with(s))
        })
        .cloned()
        .collect();
    unknown.sort();
    for &(section, key, kind) in ENV_KEYS {
        let suffix = dotted(section, key).to_uppercase().replace(['.', '-'], "_");
        let Some((name, text)) = ENV_PREFIXES.iter().rev().find_map(|prefix| {
            let name = format!("{prefix}{suffix}");
            vars.get(&name).map(|text| (name, text))
        }) else {
            continue;
        };
        let value = env_value(&dotted(section, key), kind, &name, text)?;
        let target = if section.is_empty() {
            &mut *table
        } else {
            match table
                .entry(section)
                .or_insert_with(|| Value::Table(Table::new()))
            {
                Value::Table(inner) => inner,
                _ => return Err(invalid(section, "must be a table")),
            }
        };
        target.insert(key.to_owned(), value);
    }
    Ok(unknown)
}

/// The TOML value of variable `name` = `text` for `key` of type `kind`.
fn env_value(key: &str, kind: EnvKind, name: &str, text: &str) -> Result<Value> {
    Ok(match kind {
        EnvKind::String => Value::String(text.to_owned()),
        EnvKind::Integer => Value::Integer(
            text.trim()
                .parse()
                .map_err(|_| invalid(key, format!("{name}={text:?} is not an integer")))?,
        ),
        EnvKind::Bool => Value::Boolean(
            text.trim()
                .parse()
                .map_err(|_| invalid(key, format!("{name}={text:?} is not true or false")))?,
        ),
        EnvKind::List => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
    })
}

/// Applies `KAPACITOR_<SECTION>_[<N>_]<KEY>` and `PROCESSOR_...` variables to the `N`-th
/// (default first) table of the array section `section` (`[[influxdb]]`, `[[kubernetes]]`),
/// creating tables as needed; `PROCESSOR_` wins. Returns the variables under those prefixes
/// that name no key of `keys`, for the caller to warn about.
pub fn apply_indexed_env(
    table: &mut Table,
    vars: &[(String, String)],
    section: &str,
    keys: &[(&str, EnvKind)],
) -> Result<Vec<String>> {
    const MAX_INDEX: usize = 64;
    let mut unknown = Vec::new();
    let upper = section.to_uppercase();
    // Weakest prefix first, so PROCESSOR_ is applied last and wins.
    for prefix in ENV_PREFIXES {
        let prefix = format!("{prefix}{upper}_");
        for (name, text) in vars {
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            let (index, rest) = match rest.split_once('_') {
                Some((n, rest)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                    (n.parse::<usize>().unwrap_or(usize::MAX), rest)
                }
                _ => (0, rest),
            };
            let found = keys
                .iter()
                .find(|(key, _)| key.to_uppercase().replace('-', "_") == rest);
            let Some(&(key, kind)) = found.filter(|_| index <= MAX_INDEX) else {
                unknown.push(name.clone());
                continue;
            };
            let value = env_value(&format!("{section}[{index}].{key}"), kind, name, text)?;
            indexed_section(table, section, index)?.insert(key.to_owned(), value);
        }
    }
    Ok(unknown)
}

/// The `index`-th table of array section `section`, turning a single `[section]` table into an
/// array and appending empty tables as needed.
fn indexed_section<'t>(table: &'t mut Table, section: &str, index: usize) -> Result<&'t mut Table> {
    let entry = table
        .entry(section)
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Table(single) = entry {
        let single = std::mem::take(single);
        *entry = Value::Array(vec![Value::Table(single)]);
    }
    let Value::Array(sections) = entry else {
        return Err(invalid(section, "must be a table or an array of tables"));
    };
    while sections.len() <= index {
        sections.push(Value::Table(Table::new()));
    }
    match sections.get_mut(index) {
        Some(Value::Table(inner)) => Ok(inner),
        _ => Err(invalid(section, "must be a table or an array of tables")),
    }
}

pub(super) fn dotted(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_owned()
    } else {
        format!("{section}.{key}")
    }
}

pub(super) fn invalid(key: &str, reason: impl Into<String>) -> Error {
    Error::InvalidValue {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

pub(super) fn wrong_type(section: &str, key: &str, expected: &str, found: &Value) -> Error {
    invalid(
        &dotted(section, key),
        format!("expected {expected}, found {}", found.type_str()),
    )
}

pub(super) fn take_string(table: &mut Table, section: &str, key: &str) -> Result<Option<String>> {
    match table.remove(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(wrong_type(section, key, "a string", &other)),
    }
}

pub(super) fn take_integer(table: &mut Table, section: &str, key: &str) -> Result<Option<i64>> {
    match table.remove(key) {
        None => Ok(None),
        Some(Value::Integer(n)) => Ok(Some(n)),
        Some(other) => Err(wrong_type(section, key, "an integer", &other)),
    }
}

pub(super) fn take_bool(table: &mut Table, section: &str, key: &str) -> Result<Option<bool>> {
    match table.remove(key) {
        None => Ok(None),
        Some(Value::Boolean(flag)) => Ok(Some(flag)),
        Some(other) => Err(wrong_type(section, key, "true or false", &other)),
    }
}

pub(super) fn take_array_of_tables(
    table: &mut Table,
    section: &str,
    key: &str,
) -> Result<Vec<Table>> {
    match table.remove(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::Table(entry) => Ok(entry),
                other => Err(wrong_type(section, key, "an array of tables", &other)),
            })
            .collect(),
        Some(other) => Err(wrong_type(section, key, "an array of tables", &other)),
    }
}

pub(super) fn warn_unknown(table: &Table, section: &str, warnings: &mut Vec<String>) {
    for key in table.keys() {
        warnings.push(format!(
            "unknown config key `{}` is ignored",
            dotted(section, key)
        ));
    }
}

/// Splits a Go-style listen address into host and port: `:9092` means every interface.
/// Returns `None` when it is not `host:port` with a numeric port and a host that is an IPv4
/// address, a bracketed IPv6 address (`[::1]:9092`) or a host name: an address that could
/// never be bound (`256.1.1.1:9092`) is a config error, not a failure to listen.
pub fn parse_bind_address(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = port.parse().ok()?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        inner
    } else if host.is_empty() {
        "0.0.0.0"
    } else if host.parse::<std::net::Ipv4Addr>().is_ok() || is_host_name(host) {
        host
    } else {
        return None;
    };
    Some((host.to_owned(), port))
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, none empty or longer than
/// 63 bytes or starting or ending with `-`, the last not all digits (`256.1.1.1` is a bad IPv4
/// address, not a name); at most 253 bytes, one trailing dot allowed.
fn is_host_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    name.len() <= 253
        && name.split('.').all(label_ok)
        && name
            .rsplit('.')
            .next()
            .is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn bind_addresses_parse_like_go() {
        assert_eq!(parse_bind_address(":9092"), Some(("0.0.0.0".into(), 9092)));
        assert_eq!(
            parse_bind_address("127.0.0.1:0"),
            Some(("127.0.0.1".into(), 0))
        );
        assert_eq!(parse_bind_address("[::1]:80"), Some(("::1".into(), 80)));
        assert_eq!(
            parse_bind_address("localhost:9092"),
            Some(("localhost".into(), 9092))
        );
        assert_eq!(parse_bind_address("9092"), None);
        assert_eq!(parse_bind_address("host:port"), None);
        assert_eq!(
            parse_bind_address("processor.autoscale.svc:9092"),
            Some(("processor.autoscale.svc".into(), 9092))
        );
    }

    #[test]
    fn addresses_that_can_never_be_bound_are_refused() {
        for address in [
            "256.1.1.1:9092",
            "1.2.3:9092",
            "999:9092",
            "[::1:80",
            "::1:80",
            "[not-v6]:80",
            "a b:9092",
            "-host:9092",
            "host..name:9092",
            "127.0.0.1:65536",
            "127.0.0.1:+80",
            "127.0.0.1:",
        ] {
            assert_eq!(parse_bind_address(address), None, "{address}");
        }
    }
}
