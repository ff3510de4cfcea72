//! Logs: `RUST_LOG` filters (each binary names its default), `LOG_FORMAT=json` switches to JSON
//! lines, and they go to stderr (colours only on a terminal) or, for the agent's `logfile`, to
//! a file appended to.

use std::path::Path;
use std::sync::{Arc, Mutex};

/// Logs to stderr; `default_filter` (`info`, `warn`, `info,agent=debug`) applies when
/// `RUST_LOG` is unset or invalid.
pub fn init_tracing(default_filter: &str) {
    // Stderr cannot fail to open.
    let _ = init_tracing_to(default_filter, None);
}

/// Logs to `file` (appended to, created if missing) or, with `None`, to stderr.
pub fn init_tracing_to(default_filter: &str, file: Option<&Path>) -> std::io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        None => {
            let builder = builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr);
            if json {
                builder.json().init();
            } else {
                builder.init();
            }
        }
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            let builder = builder
                .with_ansi(false)
                .with_writer(LogFile(Arc::new(Mutex::new(file))));
            if json {
                builder.json().init();
            } else {
                builder.init();
            }
        }
    }
    Ok(())
}

/// A shareable file writer for the log.
#[derive(Clone)]
struct LogFile(Arc<Mutex<std::fs::File>>);

impl std::io::Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LogFile;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
