//! The `processor` binary: flags, logging, exit codes; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use processor::config::Config;

/// Exit code for a bad configuration or bad flags (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// Exit code when a valid config cannot be served: the address cannot be bound, data_dir
/// cannot be written, the Kubernetes API cannot be reached (sysexits' EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;

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
    /// Create or update a task (as `kapacitor define`).
    Define {
        /// Task id.
        name: String,
        /// The TICKscript file.
        #[arg(long, value_name = "FILE")]
        tick: Option<PathBuf>,
        /// Task type (only `stream`).
        #[arg(long = "type", default_value = "stream")]
        kind: String,
        /// Database and retention policy, `db.rp` (repeatable).
        #[arg(long)]
        dbrp: Vec<String>,
        /// A JSON file of task vars overriding the script's `var`s.
        #[arg(long, value_name = "FILE")]
        vars: Option<PathBuf>,
    },
    /// Enable tasks.
    Enable { ids: Vec<String> },
    /// Disable tasks.
    Disable { ids: Vec<String> },
    /// Show a task: definition, status and DOT graph with stats.
    Show { id: String },
    /// List tasks (`list tasks [ID...]`).
    List { what: String, ids: Vec<String> },
    /// Delete tasks (`delete tasks ID...`).
    Delete { what: String, ids: Vec<String> },
    /// Server statistics (`stats general`).
    Stats { what: String },
}

fn main() -> ExitCode {
    let args = processor::cli::rewrite_flags(std::env::args());
    let cli = match Cli::try_parse_from(args) {
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
    let url = processor::cli::server_url(cli.url, |name| std::env::var(name).ok());
    match cli.command {
        Command::Serve { config, bind } => serve(config, bind),
        command => client(url, command),
    }
}

/// Runs a client command against the server at `url`.
fn client(url: String, command: Command) -> ExitCode {
    use processor::cli::TaskClient;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("processor: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    let client = TaskClient::new(url);
    let usage = |message: &str| {
        eprintln!("processor: {message}");
        Err(None)
    };
    let result: Result<Option<String>, Option<processor::cli::Error>> = runtime.block_on(async {
        match command {
            Command::Serve { .. } => Ok(None),
            Command::Define {
                name,
                tick,
                kind,
                dbrp,
                vars,
            } => client
                .define(&name, tick.as_deref(), &kind, &dbrp, vars.as_deref())
                .await
                .map(|()| None)
                .map_err(Some),
            Command::Enable { ids } => client
                .set_status(&ids, true)
                .await
                .map(|()| None)
                .map_err(Some),
            Command::Disable { ids } => client
                .set_status(&ids, false)
                .await
                .map(|()| None)
                .map_err(Some),
            Command::Show { id } => client.show(&id).await.map(Some).map_err(Some),
            Command::List { what, ids } if what == "tasks" => {
                client.list(&ids).await.map(Some).map_err(Some)
            }
            Command::Delete { what, ids } if what == "tasks" => {
                client.delete(&ids).await.map(|()| None).map_err(Some)
            }
            Command::Stats { what } if what == "general" => {
                client.stats_general().await.map(Some).map_err(Some)
            }
            Command::List { what, .. } | Command::Delete { what, .. } => {
                usage(&format!("unsupported kind {what:?}: only `tasks`"))
            }
            Command::Stats { what } => {
                usage(&format!("unsupported stats {what:?}: only `general`"))
            }
        }
    });
    match result {
        Ok(output) => {
            if let Some(output) = output {
                print!("{output}");
            }
            ExitCode::SUCCESS
        }
        Err(Some(error)) => {
            eprintln!("processor: {error}");
            ExitCode::FAILURE
        }
        Err(None) => ExitCode::from(EXIT_USAGE),
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
        let options = processor::Options {
            scaler: scaler
                .clone()
                .map(|s| Arc::new(s) as Arc<dyn processor::scaler::Scaler>),
            clock,
            ..processor::Options::default()
        };
        // The processor never scales while it stops.
        let shutdown = async {
            shutdown_signal().await;
            if let Some(scaler) = &scaler {
                scaler.shut_down();
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a pod's log (a pipe) gets plain text.
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
