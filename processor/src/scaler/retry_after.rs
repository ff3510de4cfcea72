//! The API server's `Retry-After`, carried to the scaler's retry loop.
//!
//! `kube` turns an error answer into a `Status` read from its body and drops the headers, yet
//! the API server asks for a pause with a `Retry-After` header: on a 429 (with
//! `details.retryAfterSeconds` in the body too) and on a 503 while it cannot serve (header
//! only, and the body may not even be a Status). A layer on the client ([`carry`]) writes the
//! header's seconds into the Status's `details.retryAfterSeconds` when the body has none, so
//! [`asked`] reads one place for both. The pure parts ([`header_seconds`], [`with_seconds`]) are
//! tested here; the layer against the stand-in.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kube::client::DynBody;

/// The longest pause a `Retry-After` can impose on one attempt (the scaler holds its target
/// meanwhile; a longer ask is cut to this, and the attempts run out sooner).
pub const MAX_ASKED: Duration = Duration::from_secs(10);

/// Error bodies larger than this are passed on untouched (a Status is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

type Response = hyper::Response<Box<DynBody>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The pause the server asked for in a failed call's Status, at most [`MAX_ASKED`].
pub fn asked(error: &kube::Error) -> Option<Duration> {
    let kube::Error::Api(status) = error else {
        return None;
    };
    let seconds = status.details.as_ref()?.retry_after_seconds;
    (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)).min(MAX_ASKED))
}

/// The seconds of a `Retry-After` header. The API server sends whole seconds; an HTTP date
/// (which it never sends) or anything else is `None`.
pub fn header_seconds(value: &str) -> Option<u32> {
    value.trim().parse().ok()
}

/// `body` with `details.retryAfterSeconds` set to `seconds` unless it has one; a body that is
/// not a JSON object becomes a `Status` carrying it as its message, as kube would have read
/// it (`code` is the answer's status).
pub fn with_seconds(body: &[u8], code: u16, seconds: u32) -> Vec<u8> {
    let mut status = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) if value.is_object() => value,
        _ => serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": String::from_utf8_lossy(body).trim(),
            "reason": "Failed to parse error data",
            "code": code,
        }),
    };
    let Some(object) = status.as_object_mut() else {
        return body.to_vec();
    };
    let details = object
        .entry("details")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(details) = details.as_object_mut() {
        let has = details
            .get("retryAfterSeconds")
            .and_then(serde_json::Value::as_u64)
            .is_some_and(|s| s > 0);
        if !has {
            details.insert("retryAfterSeconds".into(), seconds.into());
        }
    }
    serde_json::to_vec(&status).unwrap_or_else(|_| body.to_vec())
}

/// The client layer's step (`tower::util::AndThenLayer::new(carry)`): an error answer with a
/// `Retry-After` header gets its seconds into the body's Status; any other answer passes.
pub async fn carry(response: Response) -> Result<Response, BoxError> {
    let code = response.status().as_u16();
    let seconds = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(header_seconds);
    let Some(seconds) = seconds.filter(|_| code >= 400) else {
        return Ok(response);
    };
    let too_large = hyper::body::Body::size_hint(response.body())
        .upper()
        .is_none_or(|n| n > MAX_BODY as u64);
    if too_large {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await?.to_bytes();
    let rewritten = Bytes::from(with_seconds(&bytes, code, seconds));
    let body: Box<DynBody> = Box::new(Full::new(rewritten).map_err(|never| match never {}));
    let mut response = hyper::Response::from_parts(parts, body);
    response.headers_mut().remove(hyper::header::CONTENT_LENGTH);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_of_whole_seconds_is_read_and_anything_else_is_not() {
        assert_eq!(header_seconds("3"), Some(3));
        assert_eq!(header_seconds(" 10 "), Some(10));
        assert_eq!(header_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(header_seconds("-1"), None);
        assert_eq!(header_seconds(""), None);
    }

    #[test]
    fn a_status_without_a_pause_gets_the_headers_and_one_with_keeps_its_own() {
        let status = br#"{"kind":"Status","code":503,"details":{"name":"app"}}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&with_seconds(status, 503, 3)).unwrap_or_default();
        assert_eq!(out["details"]["retryAfterSeconds"], 3);
        assert_eq!(out["details"]["name"], "app");
        let own = br#"{"kind":"Status","code":429,"details":{"retryAfterSeconds":1}}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&with_seconds(own, 429, 7)).unwrap_or_default();
        assert_eq!(out["details"]["retryAfterSeconds"], 1);
    }

    #[test]
    fn a_body_that_is_not_a_status_becomes_one_carrying_the_pause() {
        let out: serde_json::Value =
            serde_json::from_slice(&with_seconds(b"service unavailable\n", 503, 5))
                .unwrap_or_default();
        assert_eq!(out["message"], "service unavailable");
        assert_eq!(out["code"], 503);
        assert_eq!(out["details"]["retryAfterSeconds"], 5);
        let status: Result<kube::core::Status, _> = serde_json::from_value(out);
        assert_eq!(
            status
                .ok()
                .and_then(|s| s.details)
                .map(|d| d.retry_after_seconds),
            Some(5)
        );
    }

    #[test]
    fn the_pause_asked_is_read_from_the_status_and_capped() {
        let error = |seconds: u32| {
            let mut status = kube::core::Status::failure("x", "ServiceUnavailable").with_code(503);
            status.details = Some(kube::core::response::StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: Vec::new(),
                retry_after_seconds: seconds,
            });
            kube::Error::Api(status.boxed())
        };
        assert_eq!(asked(&error(3)), Some(Duration::from_secs(3)));
        assert_eq!(asked(&error(0)), None);
        assert_eq!(asked(&error(3600)), Some(MAX_ASKED));
    }
}
