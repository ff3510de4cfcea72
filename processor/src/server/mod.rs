//! The HTTP/1.1 listener: accepts connections up to `[http] max-connection-limit`, hands each
//! to [`connection`] (hyper, with the header-read and idle timeouts), and on shutdown stops
//! accepting and lets in-flight requests finish within the grace period.
//!
//! # Layout
//! - this file: [`Server`]: bind, the accept loop, the connection limit, the drain.
//! - [`connection`]: one connection: hyper, its timeouts, its place under the limit.
//!
//! Beyond the limit a new connection is accepted and closed at once, as InfluxDB's
//! `max-connection-limit` does, rather than left in the kernel's accept queue: a refused
//! client learns it at once (and retries, as Telegraf does at its next flush) instead of
//! waiting for a connect timeout, the accept queue never fills for the clients that come
//! after, and the connections already open (the agents' kept-alive ones) are served as before.

pub mod connection;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::parse_bind_address;
use crate::write_api::WriteApi;
use connection::Timeouts;

/// How often at most the "connection limit reached" warning is logged.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid bind address {0:?}")]
    Address(String),
    #[error("cannot listen on {address}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// A `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A bound listener, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    api: Arc<WriteApi>,
    grace: Duration,
}

impl Server {
    /// Binds `address` (`host:port` or `:port`; port 0 picks a free one).
    pub async fn bind(address: &str, api: Arc<WriteApi>, grace: Duration) -> Result<Self> {
        let (host, port) =
            parse_bind_address(address).ok_or_else(|| Error::Address(address.to_owned()))?;
        let listener = TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|source| Error::Bind {
                address: address.to_owned(),
                source,
            })?;
        Ok(Self {
            listener,
            api,
            grace,
        })
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` completes, then drains connections for at most the grace period.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let http = self.api.http();
        let timeouts = Timeouts {
            header_read: http.header_read_timeout,
            idle: http.idle_timeout,
        };
        // 0 is "no limit": as many places as the semaphore can count (and acquire at once).
        let places = match http.max_connection_limit {
            0 => Semaphore::MAX_PERMITS.min(u32::MAX as usize),
            limit => limit.min(Semaphore::MAX_PERMITS),
        };
        let limit = Arc::new(Semaphore::new(places));
        let (stop, stopping) = watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        let mut refused: u64 = 0;
        let mut last_refusal_log: Option<tokio::time::Instant> = None;
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                drop(stream);
                refused += 1;
                metrics::counter!("processor_http_connections_refused_total").increment(1);
                let now = tokio::time::Instant::now();
                if last_refusal_log.is_none_or(|at| now >= at + REFUSAL_LOG_INTERVAL) {
                    last_refusal_log = Some(now);
                    tracing::warn!(
                        limit = http.max_connection_limit,
                        refused_so_far = refused,
                        %peer,
                        "connection limit reached (http.max-connection-limit): closing new \
                         connections at once until some close"
                    );
                }
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection::serve(
                stream,
                peer,
                Arc::clone(&self.api),
                timeouts,
                stopping.clone(),
                permit,
            ));
        }
        tracing::info!(grace = ?self.grace, "shutting down: no new connections, draining");
        drop(self.listener);
        let _ = stop.send(true);
        let every_place = u32::try_from(places).unwrap_or(u32::MAX);
        tokio::select! {
            _ = limit.acquire_many(every_place) => tracing::info!("all connections closed"),
            () = tokio::time::sleep(self.grace) => {
                tracing::warn!(grace = ?self.grace, "grace period over, closing remaining connections");
            }
        }
    }
}
