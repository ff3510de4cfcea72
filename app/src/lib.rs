//! The example workload that the autoscaler scales.
//!
//! `GET /` on the app port answers `ok` and counts the request in the `requests` counter the
//! moment it arrives; the metrics port serves that counter (labels `host`, `deployment`), a
//! latency histogram and the `process_*` families in Prometheus text format 0.0.4 on every path.
//! With a capacity, one instance serves at most that many requests per second and queues the
//! rest, like a pod with a fixed CPU share, so an under-provisioned deployment shows it in
//! latency, never in errors.
//!
//! # Layout
//! - [`capacity`]: the pure pacer behind `--capacity`.
//! - [`telemetry`]: the instruments (metrics facade) and their rendering.
//! - [`process`]: the `process_*` families from `/proc`.
//! - this file: [`Config`], [`App`] (bind, then serve until shutdown) and the HTTP handlers.

pub mod capacity;
pub mod process;
pub mod telemetry;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::capacity::{CapacityError, Pacer};
use crate::telemetry::Telemetry;

/// How long in-flight requests may take to finish after a shutdown signal, in seconds. Kept
/// below Kubernetes' default `terminationGracePeriodSeconds` of 30.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How often recorded latencies are folded into histogram buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Everything an app instance needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the app port (`GET /` answers `ok`).
    pub listen: SocketAddr,
    /// Address of the metrics port (Prometheus text on every path).
    pub metrics_listen: SocketAddr,
    /// At most this many requests per second are served; `None` means unlimited.
    pub capacity: Option<f64>,
    /// The `host` label: the pod name in Kubernetes.
    pub host: String,
    /// The `deployment` label: the name of the Deployment the autoscaler changes.
    pub deployment: String,
}

/// Why the app could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--capacity` value is unusable.
    #[error(transparent)]
    Capacity(#[from] CapacityError),
    /// A port could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An app instance with both ports bound, ready to serve.
pub struct App {
    state: Arc<State>,
    app_listener: TcpListener,
    metrics_listener: TcpListener,
}

struct State {
    telemetry: Telemetry,
    pacer: Option<Mutex<Pacer>>,
}

impl App {
    /// Validates the config and binds both ports (port 0 picks a free one).
    pub async fn bind(config: Config) -> Result<Self> {
        let pacer = config.capacity.map(Pacer::new).transpose()?.map(Mutex::new);
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { addr, source })
        };
        let app_listener = bind(config.listen).await?;
        let metrics_listener = bind(config.metrics_listen).await?;
        Ok(Self {
            state: Arc::new(State {
                telemetry: Telemetry::new(&config.host, &config.deployment),
                pacer,
            }),
            app_listener,
            metrics_listener,
        })
    }

    /// The bound address of the app port.
    pub fn app_addr(&self) -> SocketAddr {
        local_addr(&self.app_listener)
    }

    /// The bound address of the metrics port.
    pub fn metrics_addr(&self) -> SocketAddr {
        local_addr(&self.metrics_listener)
    }

    /// Serves both ports until `shutdown` completes, then stops accepting and lets in-flight
    /// requests finish for up to [`DRAIN_TIMEOUT`].
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let graceful = GracefulShutdown::new();
        let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = upkeep.tick() => self.state.telemetry.run_upkeep(),
                accepted = self.app_listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let state = Arc::clone(&self.state);
                        let service = service_fn(move |req| serve_app(Arc::clone(&state), req));
                        spawn_connection(&graceful, stream, service);
                    }
                }
                accepted = self.metrics_listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let state = Arc::clone(&self.state);
                        let service = service_fn(move |req| serve_metrics(Arc::clone(&state), req));
                        spawn_connection(&graceful, stream, service);
                    }
                }
            }
        }
        drop(self.app_listener);
        drop(self.metrics_listener);
        tracing::info!("shutting down: draining in-flight requests");
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?DRAIN_TIMEOUT,
                "requests still in flight at the end of the drain"
            );
        }
    }
}

/// Binds and serves until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    let app = App::bind(config).await?;
    tracing::info!(app = %app.app_addr(), metrics = %app.metrics_addr(), "listening");
    app.serve(shutdown).await;
    Ok(())
}

fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .expect("a bound TCP listener has a local address")
}

fn spawn_connection<S>(graceful: &GracefulShutdown, stream: tokio::net::TcpStream, service: S)
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    // Small responses: send them without waiting for more to coalesce.
    let _ = stream.set_nodelay(true);
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "connection ended with an error");
        }
    });
}

async fn serve_app(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/") => {
            // Counted on arrival, before any capacity wait: the agent sees the offered rate.
            state.telemetry.requests.increment(1);
            if let Some(pacer) = &state.pacer {
                let slot = pacer
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .reserve(arrived);
                if slot > arrived {
                    tokio::time::sleep_until(slot).await;
                }
            }
            state.telemetry.record_duration(arrived.elapsed());
            text(StatusCode::OK, "ok")
        }
        (&Method::GET | &Method::HEAD, "/healthz") => text(StatusCode::OK, "ok"),
        (_, "/" | "/healthz") => method_not_allowed(),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

async fn serve_metrics(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(method_not_allowed());
    }
    let mut response = Response::new(Full::new(Bytes::from(state.telemetry.render())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(telemetry::CONTENT_TYPE),
    );
    Ok(response)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}
