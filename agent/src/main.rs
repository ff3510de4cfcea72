//! The `agent` binary: Telegraf's command line (the subset the sidecar needs), logging, signals
//! and exit codes around [`agent::Agent`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use agent::config::Config;
use agent::telemetry::Telemetry;

/// Exit code for a usage or configuration error (sysexits.h `EX_USAGE`).
const EX_USAGE: u8 = 64;
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
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => {
            let _ = error.print();
            return ExitCode::from(EX_USAGE);
        }
        Err(info) => {
            let _ = info.print();
            return ExitCode::SUCCESS;
        }
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
    if let Err(error) = init_tracing(&config) {
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
    let host = config.host_tag(machine_hostname);
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
    agent.run(shutdown_signal()).await;
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

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The kernel's hostname (the pod name in Kubernetes), as Telegraf's `os.Hostname()`.
fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `[agent] debug`/`quiet`/`logfile` pick the level and destination; `RUST_LOG` overrides the
/// level and `LOG_FORMAT=json` switches to JSON lines.
fn init_tracing(config: &Config) -> std::io::Result<()> {
    let default_level = if config.agent.debug {
        "info,agent=debug"
    } else if config.agent.quiet {
        "error"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.agent.logfile.is_empty() {
        let builder = builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr);
        if json {
            builder.json().init();
        } else {
            builder.init();
        }
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.agent.logfile)?;
        let builder = builder
            .with_ansi(false)
            .with_writer(LogFile(Arc::new(std::sync::Mutex::new(file))));
        if json {
            builder.json().init();
        } else {
            builder.init();
        }
    }
    Ok(())
}

/// A shareable file writer for the log.
#[derive(Clone)]
struct LogFile(Arc<std::sync::Mutex<std::fs::File>>);

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

/// Completes on SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => {
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the agent");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown signal received");
}
