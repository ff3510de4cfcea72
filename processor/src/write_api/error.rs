//! How the write API fails: [`ApiError`], turned into InfluxDB's answer in one place (1.x's
//! `{"error"}` with `X-Influxdb-Error`, or 2.x's `{"code","message"}`).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::body::MAX_ERROR_HEADER;
use crate::line_protocol;

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
    /// The body did not arrive within `[http] body-read-timeout`; holds that timeout.
    #[error(
        "request body not received within {} (http.body-read-timeout): the connection is closed",
        humantime::format_duration(copied(.0))
    )]
    BodyTimeout(std::time::Duration),
    /// The request's work failed inside the server (a worker thread ended); holds what.
    #[error("internal error: {0}")]
    Internal(&'static str),
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
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::CredentialsMissing | Self::AuthorizationFailed => StatusCode::UNAUTHORIZED,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::QueryNotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            StatusCode::REQUEST_TIMEOUT => "request timeout",
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
        // The rest of the body is not read: the connection cannot carry another request.
        if matches!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
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

/// A field's value, for the error messages' format arguments (which borrow fields).
fn copied<T: Copy>(value: &T) -> T {
    *value
}

pub(super) fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(super) fn no_content() -> Response<Full<Bytes>> {
    json_response(StatusCode::NO_CONTENT, Bytes::new())
}
