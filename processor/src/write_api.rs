//! The InfluxDB-compatible HTTP API: `/write`, `/kapacitor/v1/write`, `/api/v2/write`, `/ping`,
//! `/kapacitor/v1/ping`, `/ready` and the `/query` subset Telegraf needs.
//!
//! Answers follow InfluxDB 1.6.7 as measured in write-api.md: status codes, `{"error":"..."}`
//! bodies with 1.x's texts (never plain text, which Telegraf retries forever), the headers on
//! every response. Every failure is an [`ApiError`], turned into a response in one place
//! ([`ApiError::into_response`]). Deliberate deviations are listed on [`WriteApi`].

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::clock::Clock;
use crate::config::Http;
use crate::line_protocol::{self, Precision};
use crate::routing::Router;

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
pub struct WriteApi {
    http: Http,
    default_rp: String,
    router: Arc<Router>,
    clock: Clock,
    ready: AtomicBool,
    request_ids: RequestIds,
    /// More routes (the task API, `/metrics`), set once at start.
    extra: std::sync::OnceLock<Arc<dyn ExtraRoutes>>,
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

/// Which error body shape a route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// InfluxDB 1.x: `{"error":"..."}`.
    V1,
    /// InfluxDB 2: `{"code":"...","message":"..."}`.
    V2,
}

/// Every way a request can fail; `Display` is the message clients see.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("database is required")]
    DatabaseRequired,
    #[error("bucket is required")]
    BucketRequired,
    #[error("{0}")]
    Precision(#[from] line_protocol::UnknownPrecision),
    #[error("invalid consistency level")]
    InvalidConsistency,
    #[error("Request Entity Too Large")]
    BodyTooLarge,
    /// Gzip decoding failed; holds Go's text for the failure.
    #[error("{0}")]
    Gzip(&'static str),
    #[error("error reading request body: {0}")]
    BodyRead(String),
    /// Every line failed to parse; holds the joined `unable to parse` lines.
    #[error("{0}")]
    Parse(String),
    /// Some points were kept; holds the message after `partial write: `.
    #[error("partial write: {0}")]
    PartialWrite(String),
    #[error("unable to parse authentication credentials")]
    CredentialsMissing,
    #[error("authorization failed")]
    AuthorizationFailed,
    #[error("Method Not Allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("Not Found")]
    NotFound,
    #[error("missing required parameter \"q\"")]
    MissingQuery,
    #[error("this processor only implements CREATE DATABASE on /query (for Telegraf); got: {0}")]
    QueryNotImplemented(String),
    #[error("not ready: {0}")]
    NotReady(&'static str),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::CredentialsMissing | Self::AuthorizationFailed => StatusCode::UNAUTHORIZED,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::QueryNotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::DatabaseRequired
            | Self::BucketRequired
            | Self::Precision(_)
            | Self::InvalidConsistency
            | Self::Gzip(_)
            | Self::BodyRead(_)
            | Self::Parse(_)
            | Self::PartialWrite(_)
            | Self::MissingQuery => StatusCode::BAD_REQUEST,
        }
    }

    fn v2_code(status: StatusCode) -> &'static str {
        match status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::NOT_IMPLEMENTED => "not implemented",
            status if status.is_server_error() => "internal error",
            _ => "invalid",
        }
    }

    /// The response for this error: the one place errors become HTTP.
    pub fn into_response(self, shape: Shape) -> Response<Full<Bytes>> {
        let status = self.status();
        let message = self.to_string();
        if let Self::MethodNotAllowed { allow } = self {
            // As influxd: the only plain-text answer.
            let mut response =
                Response::new(Full::new(Bytes::from_static(b"Method Not Allowed\n")));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return response;
        }
        let mut body = match shape {
            Shape::V1 => serde_json::json!({ "error": message }),
            Shape::V2 => serde_json::json!({ "code": Self::v2_code(status), "message": message }),
        }
        .to_string();
        body.push('\n');
        let mut response = json_response(status, Bytes::from(body));
        let headers = response.headers_mut();
        // Newlines (and any other control character) become spaces, as influxd does. Unlike
        // influxd, the header is cut at 4 KiB: a batch of many bad lines would otherwise pass
        // Go clients' 1 MB header limit and turn a dropped batch into one retried forever.
        let flat: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .scan(0usize, |size, c| {
                *size += c.len_utf8();
                (*size <= MAX_ERROR_HEADER).then_some(c)
            })
            .collect();
        if let Ok(value) = HeaderValue::from_bytes(flat.as_bytes()) {
            headers.insert("x-influxdb-error", value);
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::UNAUTHORIZED && shape == Shape::V1 {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"InfluxDB\""),
            );
        }
        response
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn no_content() -> Response<Full<Bytes>> {
    json_response(StatusCode::NO_CONTENT, Bytes::new())
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
        }
    }

    /// Adds routes (once; later calls are ignored).
    pub fn set_extra_routes(&self, routes: Arc<dyn ExtraRoutes>) {
        let _ = self.extra.set(routes);
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
                    Ok(no_content())
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
                        self.authenticate(request.headers(), &params)?;
                    }
                    let path = path.to_owned();
                    let extra = Arc::clone(extra);
                    let body = read_body(request.into_body(), None, EXTRA_BODY_LIMIT).await?;
                    Ok(extra.handle(method, path, query, body).await)
                }
                _ => Err(ApiError::NotFound),
            },
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
        self.authenticate(&parts.headers, &params)?;
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
        let raw = read_body(body, content_length(&parts.headers), limit).await?;
        let body = if gzipped { gunzip(&raw, limit)? } else { raw };
        let bytes = body.len();
        let parsed = line_protocol::parse_body(body, db, rp, precision, (self.clock)());
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
            let raw = read_body(body, content_length(&parts.headers), self.body_limit()).await?;
            params.0.extend(Params::parse(&raw).0);
        }
        self.authenticate(&parts.headers, &params)?;
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

    fn body_limit(&self) -> usize {
        match self.http.max_body_size {
            0 => usize::MAX,
            limit => limit,
        }
    }

    fn authenticate(&self, headers: &HeaderMap, params: &Params) -> Result<(), ApiError> {
        if !self.http.auth_enabled {
            return Ok(());
        }
        let user_ok = |name: &str, password: &str| {
            self.http.users.iter().any(|user| {
                constant_time_eq(user.name.as_bytes(), name.as_bytes())
                    & constant_time_eq(user.password.as_bytes(), password.as_bytes())
            })
        };
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = value.to_str().map_err(|_| ApiError::CredentialsMissing)?;
            let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
            let credentials = credentials.trim();
            let accepted = if scheme.eq_ignore_ascii_case("basic") {
                let decoded =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, credentials)
                        .map_err(|_| ApiError::CredentialsMissing)?;
                let decoded =
                    String::from_utf8(decoded).map_err(|_| ApiError::CredentialsMissing)?;
                let (name, password) = decoded
                    .split_once(':')
                    .ok_or(ApiError::CredentialsMissing)?;
                user_ok(name, password)
            } else if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer")
            {
                let token_ok =
                    self.http.tokens.iter().any(|token| {
                        constant_time_eq(token.token.as_bytes(), credentials.as_bytes())
                    });
                // InfluxDB 1.8's v2 compatibility: `Token username:password`.
                token_ok
                    || credentials
                        .split_once(':')
                        .is_some_and(|(name, password)| user_ok(name, password))
            } else {
                return Err(ApiError::CredentialsMissing);
            };
            return if accepted {
                Ok(())
            } else {
                Err(ApiError::AuthorizationFailed)
            };
        }
        match (params.get("u"), params.get("p")) {
            (Some(name), password) if !name.is_empty() => {
                if user_ok(name, password.unwrap_or("")) {
                    Ok(())
                } else {
                    Err(ApiError::AuthorizationFailed)
                }
            }
            _ => Err(ApiError::CredentialsMissing),
        }
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// The longest `X-Influxdb-Error` header, in bytes.
const MAX_ERROR_HEADER: usize = 4096;

/// The most a request may make us allocate up front, in bytes (more grows as data arrives).
const MAX_PREALLOCATION: u64 = 64 * 1024 * 1024;

/// Reads the whole body, failing with 413 beyond `limit` bytes.
async fn read_body<B>(body: B, length: Option<u64>, limit: usize) -> Result<Vec<u8>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    if length.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::BodyTooLarge);
    }
    // Trust Content-Length for the first allocation, within reason (it may lie).
    let capacity = length.map_or(64 * 1024, |length| length.min(MAX_PREALLOCATION) as usize);
    let mut collected = Vec::with_capacity(capacity);
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| ApiError::BodyRead(error.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > limit {
                return Err(ApiError::BodyTooLarge);
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected)
}

/// Decompresses a gzip body (several members allowed, as Go's reader), failing with 413 when
/// the output passes `limit`, and with Go's messages for broken input.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    // Go reads the 10-byte header first, then checks the magic number.
    match compressed.len() {
        0 => return Err(ApiError::Gzip("EOF")),
        1..10 => return Err(ApiError::Gzip("unexpected EOF")),
        _ if !compressed.starts_with(&[0x1f, 0x8b]) => {
            return Err(ApiError::Gzip("gzip: invalid header"));
        }
        _ => {}
    }
    let guess = compressed.len().saturating_mul(4).min(limit);
    let mut out = Vec::with_capacity(guess.min(MAX_PREALLOCATION as usize));
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut capped = decoder.take((limit as u64).saturating_add(1));
    match capped.read_to_end(&mut out) {
        Ok(_) if out.len() > limit => Err(ApiError::BodyTooLarge),
        Ok(_) => Ok(out),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ApiError::Gzip("unexpected EOF"))
        }
        Err(error) => {
            let text = error.to_string();
            Err(ApiError::Gzip(if text.contains("header") {
                "gzip: invalid header"
            } else if text.contains("CRC") || text.contains("checksum") || text.contains("trailer")
            {
                "gzip: invalid checksum"
            } else {
                "flate: corrupt input"
            }))
        }
    }
}

/// Request ids shaped like InfluxDB's (a version-1 UUID: time, clock sequence, node).
struct RequestIds {
    node: u64,
    sequence: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let pid = u64::from(std::process::id());
        let seed = crate::clock::wall_ns().unsigned_abs();
        // A locally administered, multicast-flagged node id, as RFC 4122 asks of random nodes.
        let node = ((seed ^ (pid << 17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFFFF_FFFF_FFFF)
            | 0x0100_0000_0000;
        Self {
            node,
            sequence: AtomicU64::new(seed),
        }
    }

    fn next(&self, now_ns: i64) -> String {
        // 100-ns intervals since 1582-10-15, plus a sequence so ids in one tick differ.
        const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let ticks = (now_ns.max(0) as u64 / 100)
            .wrapping_add(GREGORIAN_OFFSET)
            .wrapping_add(sequence & 0xFF);
        let time_low = ticks & 0xFFFF_FFFF;
        let time_mid = (ticks >> 32) & 0xFFFF;
        let time_high = ((ticks >> 48) & 0x0FFF) | 0x1000;
        let clock_seq = ((sequence >> 8) & 0x3FFF) | 0x8000;
        format!(
            "{time_low:08x}-{time_mid:04x}-{time_high:04x}-{clock_seq:04x}-{:012x}",
            self.node
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_1_uuids_and_differ() {
        let ids = RequestIds::new();
        let (a, b) = (
            ids.next(1_700_000_000_000_000_000),
            ids.next(1_700_000_000_000_000_000),
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'1', "{a}");
    }

    #[test]
    fn create_database_is_recognised_in_any_case() {
        assert!(is_create_database("CREATE DATABASE \"telegraf\""));
        assert!(is_create_database("create database x with duration 1h"));
        assert!(!is_create_database("CREATE DATABASE"));
        assert!(!is_create_database("SELECT * FROM cpu"));
    }

    #[test]
    fn gzip_errors_use_go_texts() {
        assert_eq!(
            gunzip(b"plain text", 100),
            Err(ApiError::Gzip("gzip: invalid header"))
        );
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, b"cpu value=1\n".repeat(100).as_slice())
            .unwrap_or_default();
        let full = encoder.finish().unwrap_or_default();
        let truncated = full.get(..full.len() / 2).unwrap_or_default();
        assert_eq!(
            gunzip(truncated, 100_000),
            Err(ApiError::Gzip("unexpected EOF"))
        );
        assert_eq!(gunzip(&full, 100), Err(ApiError::BodyTooLarge));
        assert_eq!(gunzip(&full, 100_000).map(|b| b.len()), Ok(1200));
    }

    #[test]
    fn constant_time_eq_compares_contents() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
