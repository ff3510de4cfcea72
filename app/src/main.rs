//! The `app` binary: flags, logging, signals and exit codes around [`app::run`].

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use lifecycle::exit::USAGE;

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
    let cli: Cli = match lifecycle::parse_flags(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    lifecycle::init_tracing("info");
    let config = app::Config {
        listen: cli.listen,
        metrics_listen: cli.metrics_listen,
        capacity: cli.capacity,
        host: cli.host.unwrap_or_else(lifecycle::hostname),
        deployment: cli.deployment,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("app: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(config, lifecycle::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ app::Error::Capacity(_)) => {
            eprintln!("app: {error}");
            ExitCode::from(USAGE)
        }
        Err(error) => {
            eprintln!("app: {}", lifecycle::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
