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

/// Splits a Go-style listen address into host and port: `:9092` means every interface.
/// Returns `None` when it is not `host:port` with a numeric port and a host that is an IPv4
/// address, a bracketed IPv6 address (`[::1]:9092`) or a host name: an address that could
/// never be bound (`256.1.1.1:9092`) is a config error, not a failure to listen.
pub fn parse_bind_address(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = port.parse().ok()?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        inner
    } else if host.is_empty() {
        "0.0.0.0"
    } else if host.parse::<std::net::Ipv4Addr>().is_ok() || is_host_name(host) {
        host
    } else {
        return None;
    };
    Some((host.to_owned(), port))
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, none empty or longer than
/// 63 bytes or starting or ending with `-`, the last not all digits (`256.1.1.1` is a bad IPv4
/// address, not a name); at most 253 bytes, one trailing dot allowed.
fn is_host_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    name.len() <= 253
        && name.split('.').all(label_ok)
        && name
            .rsplit('.')
            .next()
            .is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses_parse_like_go() {
        assert_eq!(parse_bind_address(":9092"), Some(("0.0.0.0".into(), 9092)));
        assert_eq!(
            parse_bind_address("127.0.0.1:0"),
            Some(("127.0.0.1".into(), 0))
        );
        assert_eq!(parse_bind_address("[::1]:80"), Some(("::1".into(), 80)));
        assert_eq!(
            parse_bind_address("localhost:9092"),
            Some(("localhost".into(), 9092))
        );
        assert_eq!(parse_bind_address("9092"), None);
        assert_eq!(parse_bind_address("host:port"), None);
        assert_eq!(
            parse_bind_address("processor.autoscale.svc:9092"),
            Some(("processor.autoscale.svc".into(), 9092))
        );
    }

    #[test]
    fn addresses_that_can_never_be_bound_are_refused() {
        for address in [
            "256.1.1.1:9092",
            "1.2.3:9092",
            "999:9092",
            "[::1:80",
            "::1:80",
            "[not-v6]:80",
            "a b:9092",
            "-host:9092",
            "host..name:9092",
            "127.0.0.1:65536",
            "127.0.0.1:+80",
            "127.0.0.1:",
        ] {
            assert_eq!(parse_bind_address(address), None, "{address}");
        }
    }
}
