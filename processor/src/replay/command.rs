//! `processor replay --tick FILE [--vars FILE] [--dbrp db.rp] --input FILE.lp... [--replicas N]
//! [--json] [--sort] [--strict] [--precision P] [--config FILE]`: reads the files, replays
//! ([`super::run`]) and prints. Everything is checked and computed before anything is printed:
//! a failure prints its message on stderr and nothing on stdout.
//!
//! Exit codes: 0 replayed (lines that could not be used are skipped and reported on stderr as
//! `FILE:LINE: reason`, as InfluxDB skips them); 64 bad flags, a TICKscript or vars error
//! (with its line:column), no dbrp, a bad config; 65 with `--strict`, any line that cannot be
//! replayed; 66 an input file that cannot be read.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::line_protocol::{Precision, UnknownPrecision};
use crate::tick::{self, Dbrp};

use super::input::{MAX_INPUT_FILE, Recording, Source};
use super::{Options, render};

/// `EX_DATAERR`: the input is not what it must be (`--strict`).
pub const EXIT_DATA: u8 = 65;
/// `EX_NOINPUT`: an input file cannot be read.
pub const EXIT_NO_INPUT: u8 = 66;
/// Skipped lines reported one by one; the rest are counted.
const SKIPPED_SHOWN: usize = 20;

/// The flags of `processor replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The TICKscript file (records name the task by the file's stem).
    #[arg(long, value_name = "FILE")]
    pub tick: PathBuf,
    /// A JSON file of task vars overriding the script's `var`s, as `define -vars` reads.
    #[arg(long, value_name = "FILE")]
    pub vars: Option<PathBuf>,
    /// Database and retention policy the points were written to, `db.rp` (default: the
    /// script's first `dbrp` statement).
    #[arg(long, value_name = "DB.RP")]
    pub dbrp: Option<String>,
    /// Recorded line protocol: the agent's `outputs.file`, a `[record]` file (repeatable, read
    /// in the order given).
    #[arg(long, value_name = "FILE", required = true)]
    pub input: Vec<PathBuf>,
    /// Replicas every target starts at (default: its node's `.min()`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    pub replicas: Option<i64>,
    /// Print the records and the summary as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Feed the points by time (a stable sort) instead of in file order: for files recorded
    /// one per pod.
    #[arg(long)]
    pub sort: bool,
    /// Fail (exit 65, nothing printed) on a line that cannot be replayed instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Unit of the timestamps: n/ns (default), u/us, ms, s, m, h.
    #[arg(long, value_name = "UNIT", default_value = "ns")]
    pub precision: String,
    /// A processor config file whose `[pipeline]` timings to replay with (default: the
    /// defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Why a replay printed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    ReadInput {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Script {
        path: String,
        #[source]
        source: tick::Error,
    },
    #[error("invalid vars file {path}: {reason}")]
    Vars { path: String, reason: String },
    #[error(transparent)]
    Dbrp(#[from] crate::cli::Error),
    #[error(
        "no dbrp: give --dbrp db.rp (where the points were written) or a dbrp statement in the script"
    )]
    NoDbrp,
    #[error("--precision: {0}")]
    Precision(#[from] UnknownPrecision),
    #[error("config {path}: {source}")]
    Config {
        path: String,
        #[source]
        source: crate::config::Error,
    },
    #[error("{path}: {source}")]
    Pipeline {
        path: String,
        #[source]
        source: super::Error,
    },
    #[error("{count} lines cannot be replayed (--strict):\n{lines}")]
    Strict { count: usize, lines: String },
}

impl Error {
    /// The exit code (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::ReadInput { .. } => EXIT_NO_INPUT,
            Error::Strict { .. } => EXIT_DATA,
            _ => lifecycle::exit::USAGE,
        }
    }
}

/// What a successful replay prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The records and the summary.
    pub stdout: String,
    /// One line per report (skipped lines, config warnings), without a trailing newline.
    pub stderr: Vec<String>,
}

/// Runs `processor replay` and prints its output.
pub fn run(args: Args) -> ExitCode {
    match execute(&args) {
        Ok(output) => {
            let mut stderr = std::io::stderr().lock();
            for line in &output.stderr {
                let _ = writeln!(stderr, "processor: {line}");
            }
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().lock().write_all(output.stdout.as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("processor: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Reads, replays and renders, printing nothing.
pub fn execute(args: &Args) -> Result<Output, Error> {
    let mut stderr = Vec::new();
    let read_text = |path: &Path| {
        lifecycle::files::read_text_capped(path, tick::MAX_SCRIPT_FILE).map_err(|source| {
            Error::Read {
                path: path.display().to_string(),
                source,
            }
        })
    };
    let script = read_text(&args.tick)?;
    let vars = match &args.vars {
        None => tick::VarOverrides::new(),
        Some(path) => tick::value::parse_vars_json(&read_text(path)?).map_err(|e| Error::Vars {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?,
    };
    let tick_path = args.tick.display().to_string();
    let pipeline = tick::compile(&script, &vars).map_err(|source| Error::Script {
        path: tick_path.clone(),
        source,
    })?;
    let dbrp = match &args.dbrp {
        Some(text) => {
            let (database, retention_policy) = crate::cli::parse_dbrp(text)?;
            Dbrp {
                database,
                retention_policy,
            }
        }
        None => pipeline.dbrps.first().cloned().ok_or(Error::NoDbrp)?,
    };
    let precision = Precision::from_v1_param(&args.precision)?;
    let mut options = Options::new(dbrp);
    options.replicas = args.replicas;
    if let Some(path) = &args.config {
        let loaded = crate::config::Config::load(path).map_err(|source| Error::Config {
            path: path.display().to_string(),
            source,
        })?;
        stderr.extend(
            loaded
                .warnings
                .iter()
                .map(|w| format!("{}: {w}", path.display())),
        );
        options.settings = crate::tasks::pipeline_settings(&loaded.config.tasks.pipeline);
    }
    let mut sources = Vec::with_capacity(args.input.len());
    for path in &args.input {
        let text = lifecycle::files::read_capped(path, MAX_INPUT_FILE).map_err(|source| {
            Error::ReadInput {
                path: path.display().to_string(),
                source,
            }
        })?;
        sources.push(Source {
            name: path.display().to_string(),
            text,
        });
    }
    let recording = Recording::parse(
        sources,
        &options.dbrp.database,
        &options.dbrp.retention_policy,
        precision,
        args.sort,
    );
    let skipped = recording.skipped();
    let shown: Vec<String> = skipped
        .iter()
        .take(SKIPPED_SHOWN)
        .map(ToString::to_string)
        .collect();
    let more = skipped.len().saturating_sub(SKIPPED_SHOWN);
    if args.strict && !skipped.is_empty() {
        let mut lines = shown.join("\n");
        if more > 0 {
            lines.push_str(&format!("\n... and {more} more"));
        }
        return Err(Error::Strict {
            count: skipped.len(),
            lines,
        });
    }
    stderr.extend(shown.into_iter().map(|line| format!("{line} (skipped)")));
    if more > 0 {
        stderr.push(format!("... and {more} more lines skipped"));
    }
    let task = args
        .tick
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("replay");
    let replay =
        super::run(task, &pipeline, &recording, &options).map_err(|source| Error::Pipeline {
            path: tick_path,
            source,
        })?;
    let stdout = if args.json {
        render::json_lines(&replay)
    } else {
        render::table(&replay)
    };
    Ok(Output { stdout, stderr })
}
