//! The HTTP/1.1 listener: accepts connections, hands requests to [`WriteApi`], and on shutdown
//! stops accepting and lets in-flight requests finish within the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::config::parse_bind_address;
use crate::write_api::WriteApi;

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
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let builder = hyper::server::conn::http1::Builder::new();
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
            let _ = stream.set_nodelay(true);
            let api = Arc::clone(&self.api);
            let service = service_fn(move |request| {
                let api = Arc::clone(&api);
                async move { Ok::<_, std::convert::Infallible>(api.handle(request).await) }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
            });
        }
        tracing::info!(grace = ?self.grace, "shutting down: no new connections, draining");
        drop(self.listener);
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(self.grace) => {
                tracing::warn!(grace = ?self.grace, "grace period over, closing remaining connections");
            }
        }
    }
}
