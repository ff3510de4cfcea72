//! Fetching an exposition: HTTP GET with timeouts, credentials and content negotiation.
//!
//! The request prefers OpenMetrics, then text 0.0.4 (never protobuf, which Telegraf prefers and
//! the agent does not parse), and the parser is picked from the response's `Content-Type`: a
//! missing type is read as text 0.0.4 (what Prometheus assumes); protobuf or any unknown type
//! is a scrape error that names it. A URL with an empty path scrapes `/metrics`.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{HeaderMap, Request, Uri};

use crate::config::{PrometheusInput, urls};
use crate::http_client;
use crate::prom::Format;

/// What the agent asks for.
pub const ACCEPT_HEADER: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
/// The largest bearer-token file read (a service-account token is a few KiB).
const MAX_BEARER_TOKEN_FILE: u64 = 64 << 10;

/// Why a scrape failed. Nothing of a failed scrape is emitted.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("invalid url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("request failed: {0}")]
    Request(String),
    #[error("no response headers within {0:?}")]
    ResponseTimeout(Duration),
    #[error("not complete within {0:?}")]
    Timeout(Duration),
    #[error("status {0}")]
    Status(u16),
    #[error("unsupported content type {0:?} (the agent reads OpenMetrics and text 0.0.4)")]
    UnsupportedContentType(String),
    #[error("reading the body: {0}")]
    Body(String),
    #[error("body larger than content_length_limit ({limit} bytes)")]
    TooLarge { limit: u64 },
    #[error("cannot read bearer token file {path}")]
    BearerToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid header: {0}")]
    Header(String),
    #[error(transparent)]
    Tls(#[from] http_client::TlsError),
}

/// One scrape target of an input.
#[derive(Debug, Clone)]
pub struct Target {
    pub uri: Uri,
    /// The `url` tag: the configured URL without credentials.
    pub tag: String,
}

/// A fetched exposition.
#[derive(Debug)]
pub struct Scraped {
    pub body: Bytes,
    pub format: Format,
}

/// Scrapes the targets of one `[[inputs.prometheus]]`.
pub struct Scraper {
    client: http_client::Client<Empty<Bytes>>,
    pub targets: Vec<Target>,
    headers: HeaderMap,
    bearer_token_file: Option<PathBuf>,
    timeout: Duration,
    response_timeout: Option<Duration>,
    /// `content_length_limit`, bytes.
    body_limit: u64,
}

impl Scraper {
    pub fn new(input: &PrometheusInput) -> Result<Self, ScrapeError> {
        let targets = input
            .urls
            .iter()
            .map(|url| Target::parse(url))
            .collect::<Result<_, _>>()?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_HEADER));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(&crate::config::default_user_agent())
                .map_err(|e| ScrapeError::Header(e.to_string()))?,
        );
        if let Some(token) = &input.bearer_token_string {
            headers.insert(AUTHORIZATION, bearer(token)?);
        } else if let Some(credentials) =
            http_client::basic_auth(input.username.as_deref(), input.password.as_deref())
                .map_err(|e| ScrapeError::Header(e.to_string()))?
        {
            headers.insert(AUTHORIZATION, credentials);
        }
        http_client::extra_headers(&mut headers, &input.http_headers)
            .map_err(|e| ScrapeError::Header(e.to_string()))?;
        Ok(Self {
            // A discovered pod may ask for https (`prometheus.io/scheme`).
            client: http_client::build(
                &input.tls,
                uses_https(&input.urls) || input.pod_discovery.is_some(),
            )?,
            targets,
            headers,
            bearer_token_file: input.bearer_token.clone(),
            timeout: input.timeout,
            response_timeout: input.response_timeout,
            body_limit: input.content_length_limit,
        })
    }

    /// Fetches one target.
    pub async fn scrape(&self, target: &Target) -> Result<Scraped, ScrapeError> {
        let mut request = Request::get(target.uri.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(path) = &self.bearer_token_file {
            // Read at every scrape: Kubernetes rotates service-account tokens.
            let token = lifecycle::files::read_text_capped(path, MAX_BEARER_TOKEN_FILE).map_err(
                |source| ScrapeError::BearerToken {
                    path: path.clone(),
                    source,
                },
            )?;
            request = request.header(AUTHORIZATION, bearer(token.trim())?);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| ScrapeError::Request(e.to_string()))?;
        let exchange = async {
            let pending = self.client.request(request);
            let response = match self.response_timeout {
                Some(limit) => tokio::time::timeout(limit, pending)
                    .await
                    .map_err(|_| ScrapeError::ResponseTimeout(limit))?,
                None => pending.await,
            }
            .map_err(|e| ScrapeError::Request(http_client::describe_error(&e)))?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(ScrapeError::Status(status));
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let format = match content_type.as_deref() {
                None | Some("") => Format::Text,
                Some(content_type) => Format::from_content_type(content_type)
                    .ok_or_else(|| ScrapeError::UnsupportedContentType(content_type.to_owned()))?,
            };
            let body = read_body(response.into_body(), self.body_limit).await?;
            Ok(Scraped { body, format })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ScrapeError::Timeout(self.timeout))?
    }
}

/// Reads a body of at most `limit` bytes into one buffer, frame by frame (each frame is freed
/// once copied, so the peak is the body once, not the frames plus their concatenation).
async fn read_body(mut body: hyper::body::Incoming, limit: u64) -> Result<Bytes, ScrapeError> {
    use hyper::body::Body as _;
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let too_large = || ScrapeError::TooLarge { limit };
    // The announced length sizes the buffer (never past the limit); a longer announcement is
    // refused before anything is read.
    let announced = body.size_hint().exact();
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut buffer = Vec::with_capacity(announced.map_or(0, |n| {
        usize::try_from(n).unwrap_or(limit_usize).min(limit_usize)
    }));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ScrapeError::Body(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit_usize - buffer.len() {
                return Err(too_large());
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buffer))
}

/// Whether any URL needs TLS (and so the system's trusted roots).
pub fn uses_https(urls: &[String]) -> bool {
    urls.iter().any(|url| {
        url.get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    })
}

fn bearer(token: &str) -> Result<HeaderValue, ScrapeError> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ScrapeError::Header("the bearer token is not a valid header value".into()))
}

impl Target {
    /// Parses a configured or discovered URL: an empty path becomes `/metrics`. Credentials
    /// inside the URL are refused (configure `username`/`password`), so they can never leak
    /// into the `url` tag.
    pub fn parse(url: &str) -> Result<Target, ScrapeError> {
        target(url)
    }
}

fn target(url: &str) -> Result<Target, ScrapeError> {
    let error = |reason: String| ScrapeError::Url {
        url: urls::redact(url).into_owned(),
        reason,
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| error(e.to_string()))?;
    let scheme = uri.scheme_str().ok_or_else(|| error("no scheme".into()))?;
    if scheme != "http" && scheme != "https" {
        return Err(error("only http and https are implemented".into()));
    }
    let authority = uri.authority().ok_or_else(|| error("no host".into()))?;
    if urls::has_userinfo(url) || authority.as_str().contains('@') {
        return Err(error(
            "credentials in the URL are not supported; use username and password".into(),
        ));
    }
    let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("" | "/") => "/metrics",
        Some(path) => path,
    };
    let full = format!("{scheme}://{authority}{path_and_query}");
    let uri = full
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| error(e.to_string()))?;
    Ok(Target {
        uri,
        tag: url.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_path_scrapes_metrics() {
        assert_eq!(
            target("http://localhost:9100").unwrap().uri.to_string(),
            "http://localhost:9100/metrics"
        );
        assert_eq!(
            target("http://localhost:8000/metrics")
                .unwrap()
                .uri
                .to_string(),
            "http://localhost:8000/metrics"
        );
        let custom = target("https://h:1/custom?x=1").unwrap();
        assert_eq!(custom.uri.to_string(), "https://h:1/custom?x=1");
        assert_eq!(custom.tag, "https://h:1/custom?x=1");
    }

    #[test]
    fn unusable_urls_are_refused_with_the_reason() {
        for url in [
            "ftp://h/x",
            "localhost:9100",
            "http://u:p@h/metrics",
            "http://",
        ] {
            assert!(target(url).is_err(), "{url}");
        }
        let error = target("http://alice:s3cret@h/metrics").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }
}
