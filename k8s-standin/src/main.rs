//! `k8s-standin`: serve the Kubernetes API stand-in on loopback for the lab or by hand.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use k8s_standin::{Config, Server, StatusMode, WorkloadKind, WorkloadSeed};

/// A stand-in Kubernetes API server (discovery, workloads and /scale, HPAs, Leases, Events).
///
/// Prints its URL on the first line of stdout. `RUST_LOG=k8s_standin=debug` logs every request
/// (verb, resource, namespace, name, user, status); `LOG_FORMAT=json` for JSON lines.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// JSON configuration file (see `k8s_standin::Config`); flags add to it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A Deployment to create: `namespace/name=replicas` (repeatable).
    #[arg(long = "deployment", value_name = "NS/NAME=N")]
    deployments: Vec<String>,
    /// A StatefulSet to create: `namespace/name=replicas` (repeatable).
    #[arg(long = "statefulset", value_name = "NS/NAME=N")]
    statefulsets: Vec<String>,
    /// A ReplicaSet to create: `namespace/name=replicas` (repeatable).
    #[arg(long = "replicaset", value_name = "NS/NAME=N")]
    replicasets: Vec<String>,
    /// A ReplicationController to create: `namespace/name=replicas` (repeatable).
    #[arg(long = "replicationcontroller", value_name = "NS/NAME=N")]
    replicationcontrollers: Vec<String>,
    /// Require this bearer token: `TOKEN` or `TOKEN=USER` (repeatable).
    #[arg(long = "token", value_name = "TOKEN[=USER]")]
    tokens: Vec<String>,
    /// Leave workload status to the lab instead of mirroring spec.replicas.
    #[arg(long)]
    manual_status: bool,
    /// Write a kubeconfig for kubectl here (with the first token, and the CA with --tls).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Serve https with a CA generated at start (kubectl sends tokens only over TLS).
    #[arg(long)]
    tls: bool,
    /// With --tls, write the CA certificate (PEM) here.
    #[arg(long, value_name = "PATH", requires = "tls")]
    ca_file: Option<PathBuf>,
}

fn build_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    for (kind, texts) in [
        (WorkloadKind::Deployment, &cli.deployments),
        (WorkloadKind::StatefulSet, &cli.statefulsets),
        (WorkloadKind::ReplicaSet, &cli.replicasets),
        (
            WorkloadKind::ReplicationController,
            &cli.replicationcontrollers,
        ),
    ] {
        for text in texts {
            config.workloads.push(WorkloadSeed::parse(kind, text)?);
        }
    }
    for text in &cli.tokens {
        let (token, user) = text.split_once('=').unwrap_or((text, "standin-user"));
        config = config.with_token(token, user);
    }
    if cli.manual_status {
        config.status_mode = StatusMode::Manual;
    }
    if cli.tls {
        config.tls = true;
    }
    Ok(config)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = build_config(&cli)?;
    let token = config.auth.tokens.first().map(|t| t.token.clone());
    let server = Server::start(config).await?;
    if let Some(path) = &cli.kubeconfig {
        std::fs::write(path, server.kubeconfig(token.as_deref()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let (Some(path), Some(pem)) = (&cli.ca_file, server.ca_pem()) {
        std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{}", server.url());
    lifecycle::shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let cli: Cli = match lifecycle::parse_flags(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    lifecycle::init_tracing("info");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("k8s-standin: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("k8s-standin: {error:#}");
            let config_error = error.downcast_ref::<k8s_standin::ConfigError>().is_some()
                || error.downcast_ref::<serde_json::Error>().is_some();
            ExitCode::from(if config_error {
                lifecycle::exit::USAGE
            } else {
                1
            })
        }
    }
}
