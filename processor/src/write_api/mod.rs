//! The InfluxDB-compatible HTTP API: `/write`, `/kapacitor/v1/write`, `/api/v2/write`, `/ping`,
//! `/kapacitor/v1/ping`, `/ready` and the `/query` subset Telegraf needs.
//!
//! Answers follow InfluxDB 1.6.7 as measured in write-api.md: status codes, `{"error":"..."}`
//! bodies with 1.x's texts (never plain text, which Telegraf retries forever), the headers on
//! every response. Every failure is an [`ApiError`], turned into a response in one place
//! ([`ApiError::into_response`]). Deliberate deviations are listed on [`WriteApi`].
//!
//! # Layout
//! - this file: [`WriteApi`]: routes, `/write` (body -> [`crate::line_protocol`] -> the
//!   router), `/query`, the headers every answer carries.
//! - `auth`: credentials as 1.x checks them; `body`: reading and inflating a body up to the
//!   limit; `error`: [`ApiError`] and the one place it becomes an answer; `request_ids`.

mod auth;
mod body;
mod error;
mod request_ids;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::clock::Clock;
use crate::config::Http;
use crate::line_protocol::{self, Precision};
use crate::routing::Router;
use body::{content_length, gunzip, read_body_within};
pub use error::{ApiError, Shape};
use error::{json_response, no_content};
use request_ids::RequestIds;

/// The InfluxDB version clients are told they talk to (`X-Influxdb-Version`).
pub const INFLUXDB_VERSION: &str = "1.6.7";
/// This processor's version (`X-Kapacitor-Version`).
pub const PROCESSOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The API's state, shared by every connection.
///
/// Deliberate deviations from InfluxDB 1.6.7 (each has a test):
/// - any `db` and `rp` are accepted (a processor has no catalogue, as Kapacitor): no 404
///   `database not found`, no 500 `retention policy not found`, no field-type conflicts and no
///   retention checks;
/// - `precision=us`/`µs` are microseconds and an unknown precision is a 400 (1.x: nanoseconds);
/// - a line with 100 tags is accepted (1.x answers 500 from a parser panic);
/// - `/query` answers `CREATE DATABASE` and nothing else (501 for other statements);
/// - unknown paths are 404 `{"error":"Not Found"}` (Kapacitor's), not influxd's plain text.
/// - a body not received within `[http] body-read-timeout` is answered 408 and the connection
///   closed (influxd has no timeout); heads and idle connections are timed by the listener.
pub struct WriteApi {
    http: Http,
    default_rp: String,
    router: Arc<Router>,
    clock: Clock,
    ready: AtomicBool,
    request_ids: RequestIds,
    /// More routes (the task API, `/metrics`), set once at start.
    extra: std::sync::OnceLock<Arc<dyn ExtraRoutes>>,
    /// HA: the role `/ready` reports (standalone when unset).
    gate: std::sync::OnceLock<crate::ha::Gate>,
}

/// Routes served next to the write API (the task API, `/metrics`); answered after the
/// write API's own paths, before the 404.
pub trait ExtraRoutes: Send + Sync {
    /// True when `path` is one of these routes.
    fn handles(&self, path: &str) -> bool;
    /// True for handled paths that need no credentials when `[http] auth-enabled` is on
    /// (the others need the same credentials as `/write`).
    fn is_public(&self, _path: &str) -> bool {
        false
    }
    /// Answers a request whose body was read (at most 16 MiB). Slow work (a task define)
    /// belongs on a blocking thread, not on the server's.
    fn handle(
        self: Arc<Self>,
        method: Method,
        path: String,
        query: Option<String>,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> futures::future::BoxFuture<'static, Response<Full<Bytes>>>;
}

impl std::fmt::Debug for WriteApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteApi")
            .field("http", &self.http)
            .field("default_rp", &self.default_rp)
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

/// The parsed query string (and, for `/query`, the form body).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(query)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl WriteApi {
    /// The API over `router`, with the `[http]` settings and the default retention policy.
    pub fn new(http: Http, default_rp: String, router: Arc<Router>, clock: Clock) -> Self {
        Self {
            http,
            default_rp,
            router,
            clock,
            ready: AtomicBool::new(true),
            request_ids: RequestIds::new(),
            extra: std::sync::OnceLock::new(),
            gate: std::sync::OnceLock::new(),
        }
    }

    /// Adds routes (once; later calls are ignored).
    pub fn set_extra_routes(&self, routes: Arc<dyn ExtraRoutes>) {
        let _ = self.extra.set(routes);
    }

    /// Makes `/ready` report the HA role of `gate` (once; later calls are ignored).
    pub fn set_gate(&self, gate: crate::ha::Gate) {
        let _ = self.gate.set(gate);
    }

    /// Sets what `/ready` answers (the task loader clears it until its tasks are up).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Answers one request. Never fails: errors become responses.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        let path = request.uri().path().to_owned();
        let shape = if path == "/api/v2/write" {
            Shape::V2
        } else {
            Shape::V1
        };
        let mut response = match self.route(&path, request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%error, path = %path, "request failed");
                error.into_response(shape)
            }
        };
        self.add_common_headers(response.headers_mut());
        response
    }

    async fn route<B>(
        &self,
        path: &str,
        request: Request<B>,
    ) -> Result<Response<Full<Bytes>>, ApiError>
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        let method = request.method().clone();
        match path {
            "/write" | "/kapacitor/v1/write" | "/api/v2/write" => match method {
                Method::POST => {
                    let started = std::time::Instant::now();
                    let result = self.write(path == "/api/v2/write", request).await;
                    metrics::histogram!("processor_write_duration_seconds", "endpoint" => path.to_owned())
                        .record(started.elapsed().as_secs_f64());
                    result
                }
                Method::OPTIONS => Ok(no_content()),
                _ => Err(ApiError::MethodNotAllowed {
                    allow: "OPTIONS, POST",
                }),
            },
            "/ping" | "/kapacitor/v1/ping" => match method {
                Method::GET | Method::HEAD => Ok(no_content()),
                _ => Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }),
            },
            "/ready" => match method {
                Method::GET | Method::HEAD if self.ready.load(Ordering::Relaxed) => {
                    Ok(self.ready_answer())
                }
                Method::GET | Method::HEAD => Err(ApiError::NotReady("tasks are loading")),
                _ => Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }),
            },
            "/query" => match method {
                Method::GET | Method::POST => self.query(request).await,
                _ => Err(ApiError::MethodNotAllowed {
                    allow: "GET, OPTIONS, POST",
                }),
            },
            _ => match self.extra.get() {
                Some(extra) if extra.handles(path) => {
                    const EXTRA_BODY_LIMIT: usize = 16 << 20;
                    let query = request.uri().query().map(str::to_owned);
                    if !extra.is_public(path) {
                        let params = Params::parse(query.as_deref().unwrap_or_default().as_bytes());
                        auth::authenticate(&self.http, request.headers(), &params)?;
                    }
                    let path = path.to_owned();
                    let extra = Arc::clone(extra);
                    let headers = request.headers().clone();
                    let body = read_body_within(
                        request.into_body(),
                        None,
                        EXTRA_BODY_LIMIT,
                        self.http.body_read_timeout,
                    )
                    .await?;
                    Ok(extra.handle(method, path, query, headers, body).await)
                }
                _ => Err(ApiError::NotFound),
            },
        }
    }

    /// `/ready` when ready: 204 standalone (as without HA); with HA 200 and the role as JSON
    /// (`{"role":"leader","identity":…,"holder":…,"lease":…}`): a follower is ready too, it
    /// must receive points.
    fn ready_answer(&self) -> Response<Full<Bytes>> {
        match self.gate.get().filter(|gate| gate.is_elected()) {
            None => no_content(),
            Some(gate) => {
                let body = serde_json::to_vec(&gate.status()).unwrap_or_default();
                error::json_response(hyper::StatusCode::OK, Bytes::from(body))
            }
        }
    }

    fn add_common_headers(&self, headers: &mut HeaderMap) {
        headers.insert(
            "x-influxdb-version",
            HeaderValue::from_static(INFLUXDB_VERSION),
        );
        headers.insert("x-influxdb-build", HeaderValue::from_static("OSS"));
        headers.insert(
            "x-kapacitor-version",
            HeaderValue::from_static(PROCESSOR_VERSION),
        );
        let id = self.request_ids.next((self.clock)());
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert("request-id", value.clone());
            headers.insert("x-request-id", value);
        }
    }

    async fn write<B>(
        &self,
        v2: bool,
        request: Request<B>,
    ) -> Result<Response<Full<Bytes>>, ApiError>
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        let (parts, body) = request.into_parts();
        let params = Params::parse(parts.uri.query().unwrap_or_default().as_bytes());
        auth::authenticate(&self.http, &parts.headers, &params)?;
        let (db, rp, precision) = if v2 {
            let bucket = params
                .get("bucket")
                .filter(|b| !b.is_empty())
                .ok_or(ApiError::BucketRequired)?;
            let (db, rp) = bucket.split_once('/').unwrap_or((bucket, ""));
            let precision = match params.get("precision").unwrap_or("ns") {
                "ns" => Precision::Nanoseconds,
                "us" => Precision::Microseconds,
                "ms" => Precision::Milliseconds,
                "s" => Precision::Seconds,
                other => return Err(line_protocol::UnknownPrecision(other.to_owned()).into()),
            };
            (db.to_owned(), rp.to_owned(), precision)
        } else {
            let db = params
                .get("db")
                .filter(|db| !db.is_empty())
                .ok_or(ApiError::DatabaseRequired)?;
            let precision = Precision::from_v1_param(params.get("precision").unwrap_or(""))?;
            if !matches!(
                params.get("consistency").unwrap_or(""),
                "" | "any" | "one" | "quorum" | "all"
            ) {
                return Err(ApiError::InvalidConsistency);
            }
            let rp = params.get("rp").unwrap_or("");
            (db.to_owned(), rp.to_owned(), precision)
        };
        let rp = if rp.is_empty() {
            self.default_rp.clone()
        } else {
            rp
        };
        let gzipped = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let limit = self.body_limit();
        let raw = read_body_within(
            body,
            content_length(&parts.headers),
            limit,
            self.http.body_read_timeout,
        )
        .await?;
        let raw_len = raw.len();
        let now = (self.clock)();
        let decode = move || -> Result<(usize, line_protocol::Parsed), ApiError> {
            let body = if gzipped { gunzip(&raw, limit)? } else { raw };
            let bytes = body.len();
            Ok((
                bytes,
                line_protocol::parse_body(body, db, rp, precision, now),
            ))
        };
        // A large body (or a gzip body that may inflate to one) is inflated and parsed on a
        // blocking thread, so that it does not hold up the other connections on this one.
        let (bytes, parsed) = if needs_a_thread(gzipped, raw_len) {
            tokio::task::spawn_blocking(decode)
                .await
                .map_err(|_| ApiError::Internal("the body's parser thread ended"))??
        } else {
            decode()?
        };
        metrics::counter!("processor_write_requests_total").increment(1);
        metrics::counter!("processor_write_bytes_total").increment(bytes as u64);
        metrics::counter!("processor_points_written_total").increment(parsed.batch.len() as u64);
        metrics::counter!("processor_lines_rejected_total").increment(parsed.errors.len() as u64);
        let endpoint = parts.uri.path().to_owned();
        metrics::counter!("processor_points_received_total", "endpoint" => endpoint.clone())
            .increment(parsed.batch.len() as u64);
        metrics::counter!("processor_points_rejected_total", "endpoint" => endpoint)
            .increment(parsed.errors.len() as u64);
        let kept = parsed.batch.len();
        if kept > 0 {
            let batch = Arc::new(parsed.batch);
            self.router.route(&batch);
        }
        if let Some(dropped) = parsed.dropped {
            return Err(ApiError::PartialWrite(format!(
                "{} dropped={}",
                dropped.reason, dropped.count
            )));
        }
        if parsed.errors.is_empty() {
            return Ok(no_content());
        }
        let mut joined = String::new();
        for (index, error) in parsed.errors.iter().enumerate() {
            if index > 0 {
                joined.push('\n');
            }
            joined.push_str(&error.to_string());
        }
        if kept == 0 {
            Err(ApiError::Parse(joined))
        } else {
            Err(ApiError::PartialWrite(format!("{joined} dropped=0")))
        }
    }

    async fn query<B>(&self, request: Request<B>) -> Result<Response<Full<Bytes>>, ApiError>
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        let (parts, body) = request.into_parts();
        let mut params = Params::parse(parts.uri.query().unwrap_or_default().as_bytes());
        let form = parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
        if form {
            let raw = read_body_within(
                body,
                content_length(&parts.headers),
                self.body_limit(),
                self.http.body_read_timeout,
            )
            .await?;
            params.0.extend(Params::parse(&raw).0);
        }
        auth::authenticate(&self.http, &parts.headers, &params)?;
        let q = params
            .get("q")
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .ok_or(ApiError::MissingQuery)?;
        let statements: Vec<&str> = q
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if statements.is_empty() {
            return Err(ApiError::MissingQuery);
        }
        let mut results = Vec::new();
        for (id, statement) in statements.iter().enumerate() {
            if !is_create_database(statement) {
                return Err(ApiError::QueryNotImplemented(
                    statement.chars().take(80).collect(),
                ));
            }
            results.push(serde_json::json!({ "statement_id": id }));
        }
        let body = serde_json::json!({ "results": results }).to_string() + "\n";
        Ok(json_response(StatusCode::OK, Bytes::from(body)))
    }

    /// The `[http]` settings this API runs with (the listener reads its limits here).
    pub fn http(&self) -> &Http {
        &self.http
    }

    fn body_limit(&self) -> usize {
        match self.http.max_body_size {
            0 => usize::MAX,
            limit => limit,
        }
    }
}

/// Bodies up to this many bytes are parsed on the server's own thread.
const INLINE_BODY: usize = 256 * 1024;
/// Gzip bodies up to this many bytes are inflated there too (at most about 4 MB out).
const INLINE_GZIP_BODY: usize = 4 * 1024;

/// True when a body of `raw_len` bytes is worth a blocking thread.
fn needs_a_thread(gzipped: bool, raw_len: usize) -> bool {
    raw_len
        > if gzipped {
            INLINE_GZIP_BODY
        } else {
            INLINE_BODY
        }
}

fn is_create_database(statement: &str) -> bool {
    let mut words = statement.split_whitespace();
    matches!(
        (words.next(), words.next(), words.next()),
        (Some(create), Some(database), Some(_name))
            if create.eq_ignore_ascii_case("create") && database.eq_ignore_ascii_case("database")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_database_is_recognised_in_any_case() {
        assert!(is_create_database("CREATE DATABASE \"telegraf\""));
        assert!(is_create_database("create database x with duration 1h"));
        assert!(!is_create_database("CREATE DATABASE"));
        assert!(!is_create_database("SELECT * FROM cpu"));
    }
}
