//! The `processor` binary: flags, logging, exit codes; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use processor::config::Config;

/// Exit code for a bad configuration or bad flags (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// Exit code when the listener cannot start (sysexits' EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;

#[derive(Debug, Parser)]
#[command(
    name = "processor",
    version,
    about = "Kapacitor-compatible stream processor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the InfluxDB-compatible write API.
    Serve {
        /// A kapacitor.conf-shaped TOML file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Listen address, overriding `[http] bind-address` (e.g. `:9092`, `127.0.0.1:0`).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing();
    match cli.command {
        Command::Serve { config, bind } => serve(config, bind),
    }
}

fn serve(config_path: Option<PathBuf>, bind: Option<String>) -> ExitCode {
    let mut config = match load_config(config_path.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("processor: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(bind) = bind {
        if processor::server::parse_bind_address(&bind).is_none() {
            eprintln!("processor: --bind {bind:?} is not host:port or :port");
            return ExitCode::from(EXIT_USAGE);
        }
        config.http.bind_address = bind;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("processor: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    match runtime.block_on(processor::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("processor: {:#}", anyhow::Error::from(error));
            ExitCode::from(EXIT_UNAVAILABLE)
        }
    }
}

/// The file (if any) with `KAPACITOR_*`/`PROCESSOR_*` environment overrides applied.
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    // `vars_os`: a variable that is not Unicode is skipped, not a panic.
    let vars = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
    let loaded = Config::load_with_env(path, vars)?;
    for warning in &loaded.warnings {
        tracing::warn!(file = ?path, "{warning}");
    }
    Ok(loaded.config)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|format| format == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot watch SIGTERM; only SIGINT stops the server");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
