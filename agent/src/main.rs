//! The `agent` binary: Telegraf's command line (the subset the sidecar needs), logging, signals
//! and exit codes around [`agent::Agent`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use lifecycle::error_chain;
use lifecycle::exit::USAGE as EX_USAGE;

use agent::config::Config;
use agent::telemetry::Telemetry;
/// Where Telegraf looks for its config when neither a flag nor the environment names one.
const DEFAULT_CONFIG: &str = "/etc/telegraf/telegraf.conf";

/// A Telegraf-compatible sidecar: scrapes Prometheus endpoints, pushes InfluxDB line protocol.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Configuration file [default: $TELEGRAF_CONFIG_PATH, else /etc/telegraf/telegraf.conf].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also load every *.conf file in this directory (sorted by name).
    #[arg(long)]
    config_directory: Option<PathBuf>,
    /// Gather once, print the metrics as "> " + line protocol, write nothing, exit.
    #[arg(long)]
    test: bool,
    /// Gather once, write to the outputs, exit (non-zero if a write failed).
    #[arg(long, conflicts_with = "test")]
    once: bool,
    /// Serve the agent's own metrics (Prometheus text) on this address.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    // Telegraf spells its flags with one dash (`-config`, `-test`); accept both spellings.
    let args = std::env::args().map(|arg| match arg.strip_prefix('-') {
        Some(rest) if !rest.starts_with('-') && rest.len() > 1 => format!("--{rest}"),
        _ => arg,
    });
    let cli: Cli = match lifecycle::parse_flags(args.map(Into::into)) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let config_path = cli.config.clone().or_else(|| {
        if cli.config_directory.is_some() {
            None
        } else {
            Some(
                std::env::var_os("TELEGRAF_CONFIG_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
            )
        }
    });
    let config = match Config::load(config_path.as_deref(), cli.config_directory.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("agent: {}", error_chain(&error));
            return ExitCode::from(EX_USAGE);
        }
    };
    // `[agent] debug`/`quiet`/`logfile` pick the level and destination.
    let default_filter = if config.agent.debug {
        "info,agent=debug"
    } else if config.agent.quiet {
        "error"
    } else {
        "info"
    };
    let logfile = (!config.agent.logfile.is_empty()).then(|| PathBuf::from(&config.agent.logfile));
    if let Err(error) = lifecycle::logging::init_tracing_to(default_filter, logfile.as_deref()) {
        eprintln!(
            "agent: cannot open logfile {:?}: {error}",
            config.agent.logfile
        );
        return ExitCode::from(EX_USAGE);
    }
    for warning in &config.warnings {
        tracing::warn!("config: {warning}");
    }
    // One thread is plenty for a sidecar that scrapes once a second, and keeps its memory small.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("agent: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli, config))
}

async fn run(cli: Cli, config: Config) -> ExitCode {
    let telemetry = Arc::new(Telemetry::new());
    let host = config.host_tag(lifecycle::hostname);
    let agent = match agent::Agent::new(config, host, &telemetry) {
        Ok(agent) => agent,
        Err(error) => {
            eprintln!("agent: {}", error_chain(&error));
            return ExitCode::from(EX_USAGE);
        }
    };
    if cli.test {
        let (lines, errors) = agent.test().await;
        for line in lines {
            print!("> {line}");
        }
        return report_gather_errors(&errors);
    }
    if cli.once {
        let (errors, delivered) = agent.once().await;
        let gathered = report_gather_errors(&errors);
        if !delivered {
            eprintln!("agent: some metrics could not be written or were refused");
            return ExitCode::FAILURE;
        }
        return gathered;
    }
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(addr) = cli.metrics_listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "serving the agent's metrics");
                tokio::spawn(agent::telemetry::serve(
                    listener,
                    Arc::clone(&telemetry),
                    async {
                        let _ = metrics_stopped.await;
                    },
                ));
            }
            Err(error) => {
                eprintln!("agent: cannot listen on {addr}: {error}");
                return ExitCode::from(EX_USAGE);
            }
        }
    }
    tracing::info!("agent started");
    agent.run(lifecycle::shutdown_signal()).await;
    let _ = stop_metrics.send(());
    tracing::info!("agent stopped");
    ExitCode::SUCCESS
}

fn report_gather_errors(errors: &[agent::runtime::GatherError]) -> ExitCode {
    for error in errors {
        eprintln!("agent: {} {}: {}", error.input, error.url, error.error);
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
