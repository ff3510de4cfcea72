//! `[[outputs.influxdb]]`: InfluxDB 1.x `/write`, with Telegraf's request shape and its
//! response rules.
//!
//! Each batch goes to one URL, tried in a random order; the first that takes it ends the write
//! (the others are failover). The request is `POST <url>/write?consistency=..&db=..&rp=..`
//! (no precision: timestamps are nanoseconds), gzip by default, Basic auth when set.
//!
//! Responses ([`classify`]): 2xx is written, whatever its body (only the start of a body is
//! ever read, [`MAX_RESPONSE_BODY`]). 429 is retried, after its `Retry-After` when it has one.
//! A redirect is retried, its error naming the status and the `Location` (redirects are not
//! followed). A body that is not JSON is retried (what a plain-text error from an old Kapacitor
//! gets). JSON `{"error"}` saying the database is missing triggers `CREATE DATABASE` and a retry;
//! any other 4xx, and the messages that retrying cannot fix (partial write, unable to parse,
//! points beyond retention, ...), drop the batch with a log line; anything else (5xx) is retried,
//! after its `Retry-After` when it has one. Timeouts and connection errors are retried.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER, USER_AGENT,
};
use hyper::{HeaderMap, Method, Request, Uri};

use super::{Outcome, retry_after};
use crate::config::{ContentEncoding, InfluxdbOutput, urls};
use crate::http_client::{self, Client};

/// The most of a response body that is read, in bytes (error messages are short); the rest is
/// left unread.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// The most of a response body quoted in an error message, in characters.
const MAX_QUOTED_BODY: usize = 256;

/// Why the output cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(transparent)]
    Header(#[from] http_client::InvalidHeader),
    #[error(transparent)]
    Tls(#[from] http_client::TlsError),
}

/// What the response rules look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The start of the body, at most [`MAX_RESPONSE_BODY`] bytes.
    pub body: Bytes,
    /// The `Location` header (redirects).
    pub location: Option<String>,
    /// How long the `Retry-After` header asked to wait.
    pub retry_after: Option<Duration>,
}

/// What a response means for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted (any 2xx).
    Written,
    /// The server refused the batch for good; it is dropped.
    Dropped(String),
    /// The database does not exist: create it, then retry.
    DatabaseNotFound(String),
    /// Keep the batch and retry, after `after` when the server said so.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

/// Telegraf's rules for a write response (`http.go` `writeBatch`), with 429 retried and
/// redirects explained.
pub fn classify(reply: &Reply) -> Verdict {
    let status = reply.status;
    let retry = |reason: String| Verdict::Retry {
        reason,
        after: reply.retry_after,
    };
    if (200..300).contains(&status) {
        return Verdict::Written;
    }
    if (300..400).contains(&status) {
        let target = match &reply.location {
            Some(location) => format!("redirects to {:?}", urls::redact(location)),
            None => "is a redirect without a Location".to_owned(),
        };
        return retry(format!(
            "status {status} {target}; redirects are not followed: set the output's URL to the new address"
        ));
    }
    let body = &reply.body[..];
    let message = if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json) => json
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or_default()
                .to_owned(),
            Err(_) => {
                return retry(format!(
                    "status {status} with a body that is not JSON: {}",
                    quoted(body)
                ));
            }
        }
    };
    if status == 429 {
        return retry(format!("status 429 (too many requests): {message}"));
    }
    const DROP_MESSAGES: [&str; 5] = [
        "retention policy not found",
        "hinted handoff queue not empty",
        "points beyond retention policy",
        "partial write",
        "unable to parse",
    ];
    if message.contains("database not found") {
        Verdict::DatabaseNotFound(message)
    } else if (400..500).contains(&status) || DROP_MESSAGES.iter().any(|m| message.contains(m)) {
        Verdict::Dropped(format!("status {status}: {message}"))
    } else {
        retry(format!("status {status}: {message}"))
    }
}

/// The start of a body for an error message, trimmed and cut at [`MAX_QUOTED_BODY`].
fn quoted(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

struct Target {
    write: Uri,
    query: Uri,
}

/// A configured InfluxDB output.
pub struct InfluxdbWriter {
    client: Client,
    targets: Vec<Target>,
    headers: HeaderMap,
    encoding: ContentEncoding,
    timeout: Duration,
    database: String,
    create_database: bool,
}

impl InfluxdbWriter {
    pub fn new(config: &InfluxdbOutput) -> Result<Self, SetupError> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if !config.write_consistency.is_empty() && config.write_consistency != "one" {
            query.append_pair("consistency", &config.write_consistency);
        }
        query.append_pair("db", &config.database);
        if !config.retention_policy.is_empty() {
            query.append_pair("rp", &config.retention_policy);
        }
        let write_query = query.finish();
        let targets = config
            .urls
            .iter()
            .map(|url| {
                Ok(Target {
                    write: endpoint(url, "write", Some(&write_query))?,
                    query: endpoint(url, "query", None)?,
                })
            })
            .collect::<Result<_, SetupError>>()?;
        Ok(Self {
            client: http_client::build(&config.tls, crate::scrape::uses_https(&config.urls))?,
            targets,
            headers: headers(config)?,
            encoding: config.content_encoding,
            timeout: config.timeout,
            database: config.database.clone(),
            create_database: !config.skip_database_creation,
        })
    }

    /// Sends `CREATE DATABASE` to every URL, as Telegraf does at start (unless
    /// `skip_database_creation`). Failures are logged, never fatal: a Kapacitor-style receiver
    /// has no databases to create.
    pub async fn create_database(&self) {
        if !self.create_database {
            return;
        }
        for target in &self.targets {
            if let Err(reason) = self.send_create_database(target).await {
                tracing::warn!(url = %target.query, %reason, "database creation failed");
            }
        }
    }

    async fn send_create_database(&self, target: &Target) -> Result<(), String> {
        let statement = format!(
            "CREATE DATABASE \"{}\"",
            self.database.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &statement)
            .finish();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target.query.clone());
        for (name, value) in &self.headers {
            if name != CONTENT_ENCODING && name != CONTENT_TYPE {
                request = request.header(name, value);
            }
        }
        let request = request
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let reply = self.exchange(request).await?;
        if (200..300).contains(&reply.status) {
            Ok(())
        } else {
            Err(format!("status {}: {}", reply.status, quoted(&reply.body)))
        }
    }

    /// Writes one batch (`body` is line protocol) to one of the URLs.
    pub async fn write(&self, body: &str) -> Outcome {
        let payload = match self.encoding {
            ContentEncoding::Gzip => match gzip(body.as_bytes()) {
                Ok(compressed) => Bytes::from(compressed),
                Err(error) => {
                    return Outcome::Retry {
                        reason: format!("cannot gzip the batch: {error}"),
                        after: None,
                    };
                }
            },
            ContentEncoding::Identity => Bytes::copy_from_slice(body.as_bytes()),
        };
        let mut order: Vec<usize> = (0..self.targets.len()).collect();
        fastrand::shuffle(&mut order);
        let mut failures = Vec::new();
        let mut wait: Option<Duration> = None;
        for index in order {
            let target = &self.targets[index];
            let verdict = match self.post(target, payload.clone()).await {
                Ok(reply) => classify(&reply),
                Err(reason) => Verdict::Retry {
                    reason,
                    after: None,
                },
            };
            match verdict {
                Verdict::Written => return Outcome::Written,
                Verdict::Dropped(reason) => return Outcome::Dropped(reason),
                Verdict::DatabaseNotFound(reason) => {
                    if self.create_database
                        && let Err(error) = self.send_create_database(target).await
                    {
                        tracing::warn!(url = %target.query, reason = %error, "database creation failed");
                    }
                    failures.push(format!("{}: {reason}", target.write));
                }
                Verdict::Retry { reason, after } => {
                    // The longest wait any address asked for.
                    wait = wait.max(after);
                    failures.push(format!("{}: {reason}", target.write));
                }
            }
        }
        Outcome::Retry {
            reason: format!("could not write any address: {}", failures.join("; ")),
            after: wait,
        }
    }

    async fn post(&self, target: &Target, payload: Bytes) -> Result<Reply, String> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target.write.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(payload))
            .map_err(|e| e.to_string())?;
        self.exchange(request).await
    }

    /// Sends `request` and reads the answer's status, headers and the start of its body, all
    /// within the timeout. A 2xx is a 2xx even when its body cannot be read.
    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Reply, String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let timed_out = || format!("timed out after {:?}", self.timeout);
        let response = tokio::time::timeout_at(deadline, self.client.request(request))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| http_client::describe_error(&e))?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let location = header(LOCATION);
        let retry_after =
            header(RETRY_AFTER).and_then(|value| retry_after::parse(&value, SystemTime::now()));
        let written = (200..300).contains(&status);
        let body = match tokio::time::timeout_at(
            deadline,
            read_prefix(response.into_body(), MAX_RESPONSE_BODY),
        )
        .await
        {
            Ok(Ok(body)) => body,
            _ if written => Bytes::new(),
            Ok(Err(error)) => return Err(format!("status {status}, reading the body: {error}")),
            Err(_) => return Err(format!("status {status}, reading the body {}", timed_out())),
        };
        Ok(Reply {
            status,
            body,
            location,
            retry_after,
        })
    }
}

/// The first `limit` bytes of `body`; the rest is not read (the connection is then closed
/// rather than reused).
async fn read_prefix(mut body: hyper::body::Incoming, limit: usize) -> Result<Bytes, hyper::Error> {
    let mut prefix = BytesMut::new();
    while prefix.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            let wanted = (limit - prefix.len()).min(data.len());
            prefix.extend_from_slice(&data[..wanted]);
        }
    }
    Ok(prefix.freeze())
}

/// `base` (`http://host:port[/prefix]`) joined with `path` and an optional query.
fn endpoint(base: &str, path: &str, query: Option<&str>) -> Result<Uri, SetupError> {
    let error = |reason: &str| SetupError::Url {
        url: urls::redact(base).into_owned(),
        reason: reason.to_owned(),
    };
    if urls::has_userinfo(base) {
        return Err(error(
            "credentials in the URL are not supported; use username and password",
        ));
    }
    let uri: Uri = base
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| error(&e.to_string()))?;
    let scheme = uri.scheme_str().ok_or_else(|| error("no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(error("only http and https are implemented"));
    }
    let authority = uri.authority().ok_or_else(|| error("no host"))?;
    let prefix = uri.path().trim_end_matches('/');
    let full = match query {
        Some(query) => format!("{scheme}://{authority}{prefix}/{path}?{query}"),
        None => format!("{scheme}://{authority}{prefix}/{path}"),
    };
    full.parse()
        .map_err(|e: hyper::http::uri::InvalidUri| error(&e.to_string()))
}

fn headers(config: &InfluxdbOutput) -> Result<HeaderMap, SetupError> {
    let mut headers = HeaderMap::new();
    let value = |text: &str, name: &str| {
        HeaderValue::from_str(text).map_err(|_| http_client::InvalidHeader(name.to_owned()))
    };
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(USER_AGENT, value(&config.user_agent, "User-Agent")?);
    if config.content_encoding == ContentEncoding::Gzip {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Some(credentials) =
        http_client::basic_auth(config.username.as_deref(), config.password.as_deref())?
    {
        headers.insert(AUTHORIZATION, credentials);
    }
    http_client::extra_headers(&mut headers, &config.http_headers)?;
    Ok(headers)
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    encoder.write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn reply(status: u16, body: &'static [u8]) -> Reply {
        Reply {
            status,
            body: Bytes::from_static(body),
            ..Reply::default()
        }
    }

    #[test]
    fn responses_are_classified_as_telegraf_does() {
        assert_eq!(classify(&reply(204, b"")), Verdict::Written);
        assert_eq!(classify(&reply(200, b"{}")), Verdict::Written);
        assert!(matches!(
            classify(&reply(
                400,
                br#"{"error":"unable to parse 'x': invalid boolean"}"#
            )),
            Verdict::Dropped(_)
        ));
        assert!(matches!(
            classify(&reply(401, br#"{"error":"authorization failed"}"#)),
            Verdict::Dropped(_)
        ));
        assert!(matches!(classify(&reply(400, b"")), Verdict::Dropped(_)));
        // Plain text, even with a 4xx, is retried: Telegraf cannot tell what it means.
        assert!(matches!(
            classify(&reply(400, b"bad request\n")),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            classify(&reply(500, br#"{"error":"engine is down"}"#)),
            Verdict::Retry { .. }
        ));
        assert!(matches!(classify(&reply(503, b"")), Verdict::Retry { .. }));
        assert!(matches!(
            classify(&reply(
                500,
                br#"{"error":"partial write: field type conflict"}"#
            )),
            Verdict::Dropped(_)
        ));
        assert!(matches!(
            classify(&reply(
                404,
                br#"{"error":"database not found: \"autoscale\""}"#
            )),
            Verdict::DatabaseNotFound(_)
        ));
    }

    #[test]
    fn too_many_requests_is_retried_after_its_retry_after() {
        let throttled = Reply {
            retry_after: Some(Duration::from_secs(7)),
            ..reply(429, b"")
        };
        assert_eq!(
            classify(&throttled),
            Verdict::Retry {
                reason: "status 429 (too many requests): ".into(),
                after: Some(Duration::from_secs(7)),
            }
        );
        assert!(matches!(
            classify(&reply(429, br#"{"error":"slow down"}"#)),
            Verdict::Retry { after: None, .. }
        ));
        let unavailable = Reply {
            retry_after: Some(Duration::from_secs(3)),
            ..reply(503, b"")
        };
        assert!(matches!(
            classify(&unavailable),
            Verdict::Retry { after: Some(after), .. } if after == Duration::from_secs(3)
        ));
    }

    #[test]
    fn a_redirect_names_its_status_and_location() {
        let moved = Reply {
            location: Some("http://alice:s3cret@new-processor:9092/write".into()),
            ..reply(301, b"")
        };
        let Verdict::Retry { reason, .. } = classify(&moved) else {
            panic!("a redirect is retried");
        };
        assert!(reason.contains("status 301"), "{reason}");
        assert!(
            reason.contains("http://***@new-processor:9092/write"),
            "{reason}"
        );
        let Verdict::Retry { reason, .. } = classify(&reply(307, b"")) else {
            panic!("a redirect is retried");
        };
        assert!(
            reason.contains("status 307 is a redirect without a Location"),
            "{reason}"
        );
    }

    #[test]
    fn long_bodies_are_quoted_short() {
        let long = "x".repeat(10_000);
        let Verdict::Retry { reason, .. } = classify(&Reply {
            status: 500,
            body: Bytes::from(long),
            ..Reply::default()
        }) else {
            panic!("plain text is retried");
        };
        assert!(reason.len() < MAX_QUOTED_BODY + 100, "{}", reason.len());
    }

    #[test]
    fn the_write_url_carries_sorted_parameters_and_keeps_a_path_prefix() {
        let uri = endpoint(
            "http://kapacitor:9092",
            "write",
            Some("consistency=any&db=autoscale&rp=autogen"),
        )
        .unwrap();
        assert_eq!(
            uri.to_string(),
            "http://kapacitor:9092/write?consistency=any&db=autoscale&rp=autogen"
        );
        let uri = endpoint("https://h/influx/", "query", None).unwrap();
        assert_eq!(uri.to_string(), "https://h/influx/query");
        assert!(endpoint("udp://h:8089", "write", None).is_err());
        assert!(endpoint("not a url", "write", None).is_err());
        let Err(error) = endpoint("http://alice:s3cret@h:9092", "write", None) else {
            panic!("credentials in the URL are refused");
        };
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn consistency_one_is_not_sent_and_names_are_encoded() {
        let config = InfluxdbOutput {
            urls: vec!["http://a:1".into()],
            database: "my db".into(),
            retention_policy: String::new(),
            write_consistency: "one".into(),
            timeout: Duration::from_secs(1),
            username: Some("user".into()),
            password: Some("pa:ss".into()),
            user_agent: "agent/1".into(),
            http_headers: BTreeMap::from([("X-Team".into(), "ops".into())]),
            content_encoding: ContentEncoding::Gzip,
            skip_database_creation: true,
            influx_uint_support: false,
            tls: Default::default(),
            filter: Default::default(),
        };
        let writer = InfluxdbWriter::new(&config).unwrap();
        assert_eq!(
            writer.targets[0].write.to_string(),
            "http://a:1/write?db=my+db"
        );
        assert_eq!(writer.headers["authorization"], "Basic dXNlcjpwYTpzcw==");
        assert_eq!(writer.headers["content-encoding"], "gzip");
        assert_eq!(writer.headers["x-team"], "ops");
    }

    #[test]
    fn gzip_round_trips() {
        let compressed = gzip(b"m v=1 1\n").unwrap();
        let mut decoder = flate2::read::GzDecoder::new(&compressed[..]);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut decoder, &mut text).unwrap();
        assert_eq!(text, "m v=1 1\n");
    }
}
