//! One section's keys read by type (`string`, `bool`, `positive`, `duration`, `size`, globs, ...), each
//! error naming the key by its full path (`inputs.prometheus[0].timeout`); [`Section::finish`]
//! reports every key no reader took, so nothing is ignored silently.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ConfigError, Result, parse_go_duration};
use crate::filter::{GlobError, GlobSet};

/// Reads the keys of one section and remembers which were used, so the rest can be reported.
pub(super) struct Section {
    path: String,
    table: toml::Table,
}

impl Section {
    pub(super) fn new(path: String, table: toml::Table) -> Self {
        Self { path, table }
    }

    pub(super) fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    pub(super) fn take(&mut self, name: &str) -> Option<toml::Value> {
        self.table.remove(name)
    }

    pub(super) fn string(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", &other)),
        }
    }

    pub(super) fn bool(&mut self, name: &str) -> Result<Option<bool>> {
        match self.take(name) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(name, "true or false", &other)),
        }
    }

    pub(super) fn integer(&mut self, name: &str) -> Result<Option<i64>> {
        match self.take(name) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(i)),
            Some(other) => Err(self.wrong_type(name, "an integer", &other)),
        }
    }

    pub(super) fn positive(&mut self, name: &str) -> Result<Option<usize>> {
        match self.integer(name)? {
            None => Ok(None),
            Some(n) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            Some(n) => Err(invalid(
                self.key(name),
                format!("must be positive, not {n}"),
            )),
        }
    }

    pub(super) fn duration(&mut self, name: &str) -> Result<Option<Duration>> {
        let key = self.key(name);
        self.take(name).map(|v| duration_value(&key, v)).transpose()
    }

    /// A size in bytes: an integer, or a string with Telegraf's units (see [`super::size`]).
    pub(super) fn size(&mut self, name: &str) -> Result<Option<u64>> {
        let key = self.key(name);
        match self.take(name) {
            None => Ok(None),
            Some(toml::Value::Integer(bytes)) => u64::try_from(bytes)
                .map(Some)
                .map_err(|_| invalid(key, format!("must not be negative, not {bytes}"))),
            Some(toml::Value::String(text)) => super::size::parse_size(&text)
                .map(Some)
                .map_err(|e| invalid(key, e.to_string())),
            Some(other) => Err(self.wrong_type(name, "a size such as \"32MiB\"", &other)),
        }
    }

    pub(super) fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>> {
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

    pub(super) fn string_map(&mut self, name: &str) -> Result<BTreeMap<String, String>> {
        match self.take(name) {
            None => Ok(BTreeMap::new()),
            Some(toml::Value::Table(table)) => string_map(&self.key(name), table),
            Some(other) => Err(self.wrong_type(name, "a table of strings", &other)),
        }
    }

    pub(super) fn globs(&mut self, name: &str) -> Result<Option<GlobSet>> {
        let key = self.key(name);
        self.strings(name)?
            .map(|patterns| GlobSet::new(&patterns).map_err(|e| glob_error(&key, e)))
            .transpose()
    }

    pub(super) fn tag_globs(&mut self, name: &str) -> Result<Vec<(String, GlobSet)>> {
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

    pub(super) fn wrong_type(
        &self,
        name: &str,
        expected: &str,
        found: &toml::Value,
    ) -> ConfigError {
        invalid(
            self.key(name),
            format!("expected {expected}, found {}", found.type_str()),
        )
    }

    /// Reports every key that no reader took.
    pub(super) fn finish(self, warnings: &mut Vec<String>) {
        for key in self.table.keys() {
            warnings.push(format!(
                "{}.{key}: option not implemented; ignored",
                self.path
            ));
        }
    }
}

pub(super) fn duration_value(key: &str, value: toml::Value) -> Result<Duration> {
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

pub(super) fn string_map(key: &str, table: toml::Table) -> Result<BTreeMap<String, String>> {
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

pub(super) fn expect_table(key: &str, value: toml::Value) -> Result<toml::Table> {
    match value {
        toml::Value::Table(table) => Ok(table),
        other => Err(invalid(
            key.to_owned(),
            format!("expected a table, found {}", other.type_str()),
        )),
    }
}

pub(super) fn glob_error(key: &str, error: GlobError) -> ConfigError {
    invalid(key.to_owned(), error.to_string())
}

pub(super) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}
