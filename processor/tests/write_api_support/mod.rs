//! Test support for the write API tests: an in-process server on a loopback port with a
//! recording subscriber and a settable clock, and a tiny HTTP client.
//!
//! Included by the `write_api*.rs` tests as `mod write_api_support;`, as every crate's test
//! support lives: `tests/<subject>_support/mod.rs` (`tasks_support`, `pipeline_scenario` the
//! shared scenario), never a test target of its own.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use processor::config::Http;
use processor::point::FieldValue;
use processor::routing::{Delivery, Key, Router, Subscriber};
use processor::server::Server;
use processor::write_api::WriteApi;
use tokio::net::TcpStream;

/// A point as a subscriber received it, owned for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub db: String,
    pub rp: String,
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, Value)>,
    pub time: i64,
}

/// An owned field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    Integer(i64),
    Boolean(bool),
    String(String),
}

/// A subscriber that keeps everything it receives.
#[derive(Default)]
pub struct Recorder {
    points: Mutex<Vec<Recorded>>,
    deliveries: Mutex<usize>,
}

impl Subscriber for Recorder {
    fn deliver(&self, delivery: Delivery) {
        *self.deliveries.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        for point in delivery.points() {
            points.push(Recorded {
                db: point.db().to_owned(),
                rp: point.rp().to_owned(),
                measurement: point.measurement().to_owned(),
                tags: point
                    .tags()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                fields: point
                    .fields()
                    .map(|(k, v)| {
                        let v = match v {
                            FieldValue::Float(x) => Value::Float(x),
                            FieldValue::Integer(x) => Value::Integer(x),
                            FieldValue::Boolean(x) => Value::Boolean(x),
                            FieldValue::String(x) => Value::String(x.to_owned()),
                        };
                        (k.to_owned(), v)
                    })
                    .collect(),
                time: point.time(),
            });
        }
    }
}

impl Recorder {
    /// Everything received so far, emptying the record.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.points.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn deliveries(&self) -> usize {
        *self.deliveries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running server; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub recorder: Arc<Recorder>,
    pub api: Arc<WriteApi>,
    pub router: Arc<Router>,
    /// What the server's clock answers, in ns.
    pub now: Arc<AtomicI64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The default clock value of test servers.
pub const TEST_NOW: i64 = 1_700_000_123_456_789_012;

/// Starts a server with `http` settings; the recorder subscribes to every measurement of
/// each (db, rp) in `keys`.
pub async fn start_with(http: Http, default_rp: &str, keys: &[(&str, &str)]) -> TestServer {
    let router = Arc::new(Router::new());
    let recorder = Arc::new(Recorder::default());
    for (db, rp) in keys {
        router.subscribe(
            Key {
                db: (*db).to_owned(),
                rp: (*rp).to_owned(),
                measurement: None,
            },
            recorder.clone(),
        );
    }
    let now = Arc::new(AtomicI64::new(TEST_NOW));
    let clock_now = now.clone();
    let api = Arc::new(WriteApi::new(
        http,
        default_rp.to_owned(),
        router.clone(),
        Arc::new(move || clock_now.load(Ordering::Relaxed)),
    ));
    let server = Server::bind("127.0.0.1:0", api.clone(), Duration::from_secs(2))
        .await
        .expect("bind a loopback port");
    let addr = server.local_addr().expect("bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        recorder,
        api,
        router,
        now,
        stop: Some(stop),
    }
}

/// A server with default settings, recording `testdb.autogen`.
pub async fn start() -> TestServer {
    start_with(Http::default(), "autogen", &[("testdb", "autogen")]).await
}

/// A response, with the body as text.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub raw: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A body sent in several chunks without a length (chunked transfer encoding).
pub struct Chunked(pub VecDeque<Bytes>);

impl Body for Chunked {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

/// A body fed from a channel: frames arrive when the test sends them.
pub struct Streamed(pub tokio::sync::mpsc::Receiver<Bytes>);

impl Body for Streamed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| Ok(Frame::data(chunk))))
    }
}

impl TestServer {
    /// Asks the server to stop accepting and drain (as SIGTERM does).
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Sends one request on a fresh connection.
pub async fn send_body<B>(
    addr: SocketAddr,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: B,
) -> Reply
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body).expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let raw = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&raw).into_owned(),
        raw,
    }
}

/// Sends `body` with a Content-Length.
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    send_body(
        addr,
        method,
        path_and_query,
        headers,
        Full::new(body.into()),
    )
    .await
}

/// `POST path` with a line-protocol body.
pub async fn post(addr: SocketAddr, path_and_query: &str, body: impl Into<Bytes>) -> Reply {
    send(addr, Method::POST, path_and_query, &[], body).await
}

/// Gzips `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// The JSON error body InfluxDB sends for `message`.
pub fn error_body(message: &str) -> String {
    format!("{}\n", serde_json::json!({ "error": message }))
}
