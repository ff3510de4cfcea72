//! The `processor` binary: flags, logging, exit codes; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use processor::config::Config;

// 64: bad flags or config; 69: a valid config cannot be served (the address cannot be bound,
// data_dir cannot be written, the Kubernetes API cannot be reached).
use lifecycle::exit::{UNAVAILABLE as EXIT_UNAVAILABLE, USAGE as EXIT_USAGE};

/// jemalloc, tuned to give freed memory back to the system (`processor::allocator`). The
/// feature `system-allocator` keeps glibc's, for heap profilers that hook malloc (heaptrack).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "processor",
    version,
    about = "Kapacitor-compatible stream processor"
)]
struct Cli {
    /// Server for the client commands (default: PROCESSOR_URL, KAPACITOR_URL, http://localhost:9092);
    /// credentials as in Kapacitor's CLI: http://user:password@host:9092.
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
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
    /// Replay recorded line protocol through a TICKscript's pipeline and scaling decision, on
    /// a clock taken from the points' times, against a simulated target (no server needed).
    Replay(processor::replay::command::Args),
    /// A client command (`define`, `enable`, `show`, ... as `kapacitor`'s).
    #[command(flatten)]
    Client(processor::cli::Command),
}

fn main() -> ExitCode {
    let args = processor::cli::rewrite_flags(std::env::args());
    let cli: Cli = match lifecycle::parse_flags(args.into_iter().map(Into::into)) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // A replay's output is its records: only errors are logged beside them.
    let default_filter = match cli.command {
        Command::Replay(_) => "error",
        _ => "info",
    };
    lifecycle::init_tracing(default_filter);
    let url = processor::cli::server_url(cli.url, |name| std::env::var(name).ok());
    match cli.command {
        Command::Serve { config, bind } => serve(config, bind),
        Command::Replay(args) => processor::replay::command::run(args),
        Command::Client(command) => processor::cli::run(url, command),
    }
}

/// Tunes the allocator for a long-running server (before its threads start) and says how;
/// the short client commands and replay leave jemalloc as it starts.
#[cfg(not(feature = "system-allocator"))]
fn tune_allocator() {
    use processor::allocator::{CONF_VARIABLE, DIRTY_DECAY_MS, Tuning, configure};
    match configure(std::env::var(CONF_VARIABLE).ok()) {
        Tuning::Tuned => tracing::info!(
            dirty_decay_ms = DIRTY_DECAY_MS,
            "allocator: jemalloc, background purging"
        ),
        Tuning::FromEnvironment(conf) => {
            tracing::info!(%conf, "allocator: jemalloc as {CONF_VARIABLE} sets it")
        }
        Tuning::Failed(error) => tracing::warn!(
            %error,
            "allocator: cannot turn on jemalloc's background purging; freed memory is returned only while the processor allocates"
        ),
    }
}

fn serve(config_path: Option<PathBuf>, bind: Option<String>) -> ExitCode {
    #[cfg(not(feature = "system-allocator"))]
    tune_allocator();
    let mut config = match load_config(config_path.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("processor: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(bind) = bind {
        if processor::config::parse_bind_address(&bind).is_none() {
            eprintln!(
                "processor: --bind {bind:?} is not host:port or :port (host: an IPv4 address, \
                 [IPv6] or a host name; port: 0 to 65535)"
            );
            return ExitCode::from(EXIT_USAGE);
        }
        config.http.bind_address = bind;
    }
    if let Err(error) = processor::startup::check_data_dir(&config.data_dir) {
        return startup_failed(error);
    }
    processor::startup::raise_open_files_limit(config.http.max_connection_limit);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("processor: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    runtime.block_on(async {
        // One processor clock for the tasks and the scaler.
        let clock = processor::clock::system();
        // Scaling needs a Kubernetes client when a [kubernetes] section is enabled; each API
        // server must answer before anything is served.
        let scaler = if config.kubernetes.iter().any(|k| k.enabled) {
            match processor::startup::connect_kubernetes(&config.kubernetes, Arc::clone(&clock))
                .await
            {
                Ok(scaler) => Some(scaler),
                Err(error) => return startup_failed(error),
            }
        } else {
            None
        };
        // HA: only the holder of the Lease scales (the config loader made sure a
        // [kubernetes] section is enabled, so the scaler exists).
        let elector = match (&scaler, config.ha.enabled) {
            (Some(scaler), true) => scaler.default_cluster().map(|cluster| {
                let namespace = processor::ha::lease::own_namespace(
                    config.ha.lease_namespace.as_deref(),
                    &cluster.default_namespace,
                );
                tracing::info!(identity = %config.ha.identity, lease = %format!("{namespace}/{}", config.ha.lease_name), "high availability: electing a leader");
                let elector = processor::ha::lease::Elector::start(
                    cluster.client.clone(),
                    &namespace,
                    &config.ha.lease_name,
                    processor::ha::lease::settings(&config.ha),
                );
                scaler.set_gate(elector.gate());
                elector
            }),
            _ => None,
        };
        let options = processor::Options {
            scaler: scaler
                .clone()
                .map(|s| Arc::new(s) as Arc<dyn processor::scaler::Scaler>),
            clock,
            gate: elector
                .as_ref()
                .map_or_else(processor::ha::Gate::standalone, |e| e.gate()),
            ..processor::Options::default()
        };
        // The processor never scales while it stops; a leader releases the Lease.
        let shutdown = async {
            lifecycle::shutdown_signal().await;
            if let Some(scaler) = &scaler {
                scaler.shut_down();
            }
            if let Some(elector) = elector {
                elector.stop().await;
            }
        };
        match processor::run_with(config, options, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("processor: {:#}", anyhow::Error::from(error));
                ExitCode::from(EXIT_UNAVAILABLE)
            }
        }
    })
}

/// Reports a failed start check: 64 when the config is at fault, else 69.
fn startup_failed(error: processor::startup::Error) -> ExitCode {
    let code = if error.is_config() {
        EXIT_USAGE
    } else {
        EXIT_UNAVAILABLE
    };
    eprintln!("processor: {:#}", anyhow::Error::from(error));
    ExitCode::from(code)
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
