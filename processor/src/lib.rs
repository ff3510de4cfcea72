//! The Kapacitor-compatible stream processor: InfluxDB write API, TICKscript tasks, scaling.
//!
//! # Layout
//! - [`config`]: `kapacitor.conf`-shaped TOML, unknown keys warned about by name.
//! - [`line_protocol`]: request body -> [`point::Batch`] + InfluxDB 1.x per-line errors (pure).
//! - [`pipeline`]: a compiled task's node graph as pure state machines (time passed in).
//! - [`point`]: the batch of parsed points that subscribers read (spans into the body).
//! - [`routing`]: (db, rp, measurement) -> [`routing::Subscriber`]s, the seam tasks plug into.
//! - [`decision`]: the pure scaling decision (clamp, cooldowns on the processor clock).
//! - [`scaler`]: what a `k8sAutoscale` node asks for ([`scaler::ScaleIntent`]) and the
//!   [`scaler::Scaler`] that carries it out; `scaler::kubernetes` does it with `kube`.
//! - [`write_api`]: the InfluxDB-compatible HTTP handlers; [`server`]: the listener.
//!
//! [`run`] wires them: `config -> Router -> WriteApi -> Server`, until the shutdown future ends.

pub mod config;
pub mod decision;
pub mod line_protocol;
pub mod pipeline;
pub mod point;
pub mod routing;
pub mod scaler;
pub mod server;
pub mod tick;
pub mod write_api;

use std::future::Future;
use std::sync::Arc;

use config::Config;
use routing::Router;
use write_api::WriteApi;

/// Binds the write API per `config` and serves until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), server::Error> {
    let router = Arc::new(Router::new());
    let api = Arc::new(WriteApi::new(
        config.http.clone(),
        config.default_retention_policy.clone(),
        router,
        write_api::system_clock(),
    ));
    let server =
        server::Server::bind(&config.http.bind_address, api, config.http.shutdown_timeout).await?;
    if let Some(address) = server.local_addr() {
        tracing::info!(%address, "listening");
    }
    server.serve(shutdown).await;
    Ok(())
}
