//! One accepted connection: hyper serves its requests while a watchdog closes it when the
//! client is too slow to send a request head (`header-read-timeout`) or stays idle between
//! requests too long (`idle-timeout`). The body's own timeout is the handler's (it answers 408).
//!
//! What the connection is doing is known from two edges: bytes read from the socket (an
//! [`Observed`] wrapper around the stream) and the service being called and finishing. A new
//! connection waits for its first head; after an answer it is idle until its next byte, which
//! starts the wait for that request's head.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;

use crate::write_api::WriteApi;

/// The timeouts a connection is held to (from `[http]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `header-read-timeout`.
    pub header_read: Duration,
    /// `idle-timeout`.
    pub idle: Duration,
}

/// The largest request head, in bytes (hyper's header size limit and read buffer; a longer
/// head is answered 431). Bounds what a client trickling headers can make us hold.
pub const MAX_HEAD_BUFFER: usize = 64 * 1024;

/// What a connection is doing, as far as its timeouts care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a request head to be complete (new connection, or bytes of the next one).
    Head,
    /// Kept alive after an answer, nothing received since.
    Idle,
    /// A request is being served (its body has its own timeout).
    Busy,
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    HeaderReadTimeout,
    IdleTimeout,
}

impl Expiry {
    fn label(self) -> &'static str {
        match self {
            Self::HeaderReadTimeout => "header-read-timeout",
            Self::IdleTimeout => "idle-timeout",
        }
    }
}

impl Timeouts {
    /// When a connection in `phase` since `since` expires (`None` while busy), and why. Pure.
    pub fn deadline(&self, phase: Phase, since: Instant) -> Option<(Instant, Expiry)> {
        match phase {
            Phase::Head => Some((since + self.header_read, Expiry::HeaderReadTimeout)),
            Phase::Idle => Some((since + self.idle, Expiry::IdleTimeout)),
            Phase::Busy => None,
        }
    }
}

/// The phase and its start, shared by the socket wrapper, the service and the watchdog.
#[derive(Debug)]
struct Activity {
    origin: Instant,
    phase: AtomicU8,
    /// Milliseconds from `origin` to the start of the phase.
    since_ms: AtomicU64,
}

impl Activity {
    fn new(now: Instant) -> Self {
        Self {
            origin: now,
            phase: AtomicU8::new(Phase::Head as u8),
            since_ms: AtomicU64::new(0),
        }
    }

    fn phase(&self) -> (Phase, Instant) {
        let phase = match self.phase.load(Ordering::Acquire) {
            0 => Phase::Head,
            1 => Phase::Idle,
            _ => Phase::Busy,
        };
        let since = self.origin + Duration::from_millis(self.since_ms.load(Ordering::Acquire));
        (phase, since)
    }

    fn enter(&self, phase: Phase, now: Instant) {
        let ms = u64::try_from(now.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX);
        self.since_ms.store(ms, Ordering::Release);
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// Bytes arrived: an idle connection starts its next request's head.
    fn received(&self) {
        if self.phase.load(Ordering::Acquire) == Phase::Idle as u8 {
            self.enter(Phase::Head, Instant::now());
        }
    }
}

/// The stream, telling [`Activity`] when bytes arrive.
struct Observed {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Observed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl AsyncWrite for Observed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `stream` until the client closes it, a timeout expires, or (after `shutdown`
/// turns true) its last request is answered. `permit` is its place under
/// `max-connection-limit`, given back when this returns.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    api: Arc<WriteApi>,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new(Instant::now()));
    let service = {
        let activity = Arc::clone(&activity);
        service_fn(move |request| {
            let api = Arc::clone(&api);
            let activity = Arc::clone(&activity);
            async move {
                activity.enter(Phase::Busy, Instant::now());
                let response = api.handle(request).await;
                activity.enter(Phase::Idle, Instant::now());
                Ok::<_, Infallible>(response)
            }
        })
    };
    let io = TokioIo::new(Observed {
        stream,
        activity: Arc::clone(&activity),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(MAX_HEAD_BUFFER)
        .max_header_size(MAX_HEAD_BUFFER);
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let watchdog = tokio::time::sleep(timeouts.header_read);
    let mut watchdog = std::pin::pin!(watchdog);
    let mut draining = *shutdown.borrow();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(error) = ended {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                break;
            }
            changed = shutdown.changed(), if !draining => {
                // A dropped sender means the server is gone: drain as on shutdown.
                let _ = changed;
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            () = &mut watchdog => {
                let (phase, since) = activity.phase();
                let now = Instant::now();
                match timeouts.deadline(phase, since) {
                    Some((deadline, expiry)) if deadline <= now => {
                        tracing::debug!(
                            %peer,
                            reason = expiry.label(),
                            after = ?now.saturating_duration_since(since),
                            "closing connection"
                        );
                        metrics::counter!(
                            "processor_http_connections_closed_total",
                            "reason" => expiry.label()
                        )
                        .increment(1);
                        break;
                    }
                    Some((deadline, _)) => watchdog.as_mut().reset(deadline),
                    // Busy: look again after the shorter timeout.
                    None => watchdog
                        .as_mut()
                        .reset(now + timeouts.header_read.min(timeouts.idle)),
                }
            }
        }
    }
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_expires_after_its_own_timeout_and_a_busy_one_never() {
        let timeouts = Timeouts {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(120),
        };
        let since = Instant::now();
        assert_eq!(
            timeouts.deadline(Phase::Head, since),
            Some((since + Duration::from_secs(10), Expiry::HeaderReadTimeout))
        );
        assert_eq!(
            timeouts.deadline(Phase::Idle, since),
            Some((since + Duration::from_secs(120), Expiry::IdleTimeout))
        );
        assert_eq!(timeouts.deadline(Phase::Busy, since), None);
    }

    #[test]
    fn bytes_on_an_idle_connection_start_a_head_but_not_while_busy() {
        let start = Instant::now();
        let activity = Activity::new(start);
        assert_eq!(activity.phase().0, Phase::Head);
        activity.enter(Phase::Busy, start);
        activity.received();
        assert_eq!(activity.phase().0, Phase::Busy);
        activity.enter(Phase::Idle, start + Duration::from_millis(5));
        assert_eq!(
            activity.phase(),
            (Phase::Idle, start + Duration::from_millis(5))
        );
        activity.received();
        assert_eq!(activity.phase().0, Phase::Head);
    }
}
