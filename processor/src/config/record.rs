//! `[record]`: what tasks receive, written as line protocol (ns timestamps) to one file per
//! task, `<dir>/<task id>.lp`, that `processor replay --input` reads as it is. The writer is
//! `tasks::recorder`'s.

use std::path::PathBuf;

use toml::{Table, Value};

use super::keys::check_integer_range;
use super::tasks::Bad;

/// `max-size`: from 64 KiB (a few seconds of one busy Deployment) to 1 TiB.
pub const MAX_SIZE_RANGE: (u64, u64) = (64 << 10, 1 << 40);

/// What a full recording does (`when-full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Keep what was recorded, record nothing more, warn once (`stop`, the default).
    #[default]
    Stop,
    /// Move the file to `<task id>.1.lp` (replacing the one there) and start a new one
    /// (`rotate`): at most two files, `2 × max-size` bytes per task, the newest points kept.
    Rotate,
}

/// `[record]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordConfig {
    /// `enabled`: record the tasks named by `tasks` (default false).
    pub enabled: bool,
    /// `dir`: where the files go (default: `<data_dir>/recordings`); created if missing.
    pub dir: Option<PathBuf>,
    /// `tasks`: ids of the tasks to record; empty (the default): every task.
    pub tasks: Vec<String>,
    /// `max-size`: bytes per file (default 100 MiB, 104857600), range [`MAX_SIZE_RANGE`].
    /// A line is written whole or not at all, so a file never passes it.
    pub max_size: u64,
    /// `when-full`: `"stop"` (default) or `"rotate"`.
    pub when_full: WhenFull,
}

fn default_max_size() -> u64 {
    100 << 20
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            enabled: false,
            dir: None,
            tasks: Vec::new(),
            max_size: default_max_size(),
            when_full: WhenFull::default(),
        }
    }
}

impl RecordConfig {
    /// Whether task `id` is recorded.
    pub fn records(&self, id: &str) -> bool {
        self.enabled && (self.tasks.is_empty() || self.tasks.iter().any(|t| t == id))
    }

    /// Takes `[record]` out of the top-level table; unknown keys become warnings.
    pub fn from_table(table: &mut Table, warnings: &mut Vec<String>) -> Result<RecordConfig, Bad> {
        let bad = |key: &str, reason: &str| (format!("record.{key}"), reason.to_owned());
        let mut config = RecordConfig::default();
        let mut t = match table.remove("record") {
            None => return Ok(config),
            Some(Value::Table(t)) => t,
            Some(_) => return Err(("record".to_owned(), "must be a table ([record])".into())),
        };
        match t.remove("enabled") {
            None => {}
            Some(Value::Boolean(b)) => config.enabled = b,
            Some(_) => return Err(bad("enabled", "must be true or false")),
        }
        match t.remove("dir") {
            None => {}
            Some(Value::String(s)) if !s.is_empty() => config.dir = Some(PathBuf::from(s)),
            Some(_) => return Err(bad("dir", "must be a path (a non-empty string)")),
        }
        match t.remove("tasks") {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(id) => config.tasks.push(id),
                        _ => return Err(bad("tasks", "must be task ids (strings)")),
                    }
                }
            }
            Some(_) => return Err(bad("tasks", "must be an array of task ids")),
        }
        match t.remove("max-size") {
            None => {}
            Some(Value::Integer(n)) => {
                let (min, max) = MAX_SIZE_RANGE;
                let n = check_integer_range(
                    n,
                    i64::try_from(min).unwrap_or(i64::MAX),
                    i64::try_from(max).unwrap_or(i64::MAX),
                )
                .map_err(|reason| bad("max-size", &reason))?;
                config.max_size = u64::try_from(n).unwrap_or(min);
            }
            Some(_) => return Err(bad("max-size", "must be an integer (bytes)")),
        }
        match t.remove("when-full") {
            None => {}
            Some(Value::String(s)) if s == "stop" => config.when_full = WhenFull::Stop,
            Some(Value::String(s)) if s == "rotate" => config.when_full = WhenFull::Rotate,
            Some(_) => return Err(bad("when-full", "must be \"stop\" or \"rotate\"")),
        }
        for key in t.keys() {
            warnings.push(format!("unknown config key record.{key} ignored"));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Result<RecordConfig, Bad>, Vec<String>) {
        let mut table: Table = text.parse().unwrap();
        let mut warnings = Vec::new();
        let config = RecordConfig::from_table(&mut table, &mut warnings);
        (config, warnings)
    }

    #[test]
    fn every_key_is_read_and_unknown_ones_are_warned() {
        let (config, warnings) = parse(
            "[record]\nenabled = true\ndir = \"/tmp/rec\"\ntasks = [\"autoscale\"]\n\
             max-size = 65536\nwhen-full = \"rotate\"\nbogus = 1\n",
        );
        let config = config.unwrap();
        assert!(config.enabled);
        assert_eq!(config.dir, Some(PathBuf::from("/tmp/rec")));
        assert_eq!(config.max_size, 65_536);
        assert_eq!(config.when_full, WhenFull::Rotate);
        assert!(config.records("autoscale") && !config.records("other"));
        assert_eq!(warnings, ["unknown config key record.bogus ignored"]);
        let (config, _) = parse("");
        let config = config.unwrap();
        assert_eq!(config, RecordConfig::default());
        assert_eq!(config.max_size, 104_857_600);
        assert!(!config.records("autoscale"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key, reason) in [
            ("enabled = 1", "record.enabled", "true or false"),
            ("dir = \"\"", "record.dir", "non-empty"),
            ("tasks = [1]", "record.tasks", "strings"),
            ("tasks = \"a\"", "record.tasks", "array"),
            ("max-size = 65535", "record.max-size", "out of range"),
            (
                "max-size = 1099511627777",
                "record.max-size",
                "out of range",
            ),
            ("max-size = \"1MB\"", "record.max-size", "bytes"),
            ("when-full = \"drop\"", "record.when-full", "rotate"),
        ] {
            let (config, _) = parse(&format!("[record]\n{text}\n"));
            let (bad_key, bad_reason) = config.unwrap_err();
            assert_eq!(bad_key, key, "{text}");
            assert!(bad_reason.contains(reason), "{text}: {bad_reason}");
        }
        let (config, _) = parse("[record]\nmax-size = 1099511627776\n");
        assert_eq!(config.unwrap().max_size, 1 << 40);
    }
}
