//! The `app` binary: flags, logging, signals and exit codes around [`app::run`].

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// Exit code for a command-line usage error (sysexits.h `EX_USAGE`).
const EX_USAGE: u8 = 64;

/// The example workload: GET / answers "ok" and is counted; metrics are served in Prometheus
/// text format on the metrics port.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address of the app port.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Address of the metrics port (every path serves the metrics).
    #[arg(long, default_value = "0.0.0.0:8000")]
    metrics_listen: SocketAddr,
    /// Serve at most this many requests per second; excess requests wait. Unlimited if unset.
    #[arg(long, env = "APP_CAPACITY", value_name = "RPS")]
    capacity: Option<f64>,
    /// The `host` label [default: the machine's hostname].
    #[arg(long, env = "HOSTNAME")]
    host: Option<String>,
    /// The `deployment` label: the Deployment the autoscaler scales.
    #[arg(long, env = "APP_DEPLOYMENT", default_value = "app")]
    deployment: String,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => {
            let _ = error.print();
            return ExitCode::from(EX_USAGE);
        }
        // --help and --version
        Err(info) => {
            let _ = info.print();
            return ExitCode::SUCCESS;
        }
    };
    init_tracing();
    let config = app::Config {
        listen: cli.listen,
        metrics_listen: cli.metrics_listen,
        capacity: cli.capacity,
        host: cli.host.unwrap_or_else(machine_hostname),
        deployment: cli.deployment,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("app: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ app::Error::Capacity(_)) => {
            eprintln!("app: {error}");
            ExitCode::from(EX_USAGE)
        }
        Err(error) => {
            eprintln!(
                "app: {}",
                anyhow::Error::from(error)
                    .chain()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(": ")
            );
            ExitCode::FAILURE
        }
    }
}

/// The kernel's hostname, as `socket.gethostname()` gave the tutorial's app.
fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `RUST_LOG` filters (default `info`); `LOG_FORMAT=json` switches to JSON lines.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|format| format == "json") {
        builder.json().init();
    } else {
        builder.init();
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
            tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the app");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown signal received");
}
