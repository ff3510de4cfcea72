//! Reading a request body: the declared length checked first, the bytes read up to the limit
//! within `body-read-timeout` (408 after it), gzip inflated as a stream that stops one byte
//! past the limit (413; a gzip bomb never inflates further), with Go's error texts.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::header::{self, HeaderMap};

use super::ApiError;

pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// The longest `X-Influxdb-Error` header, in bytes.
pub(super) const MAX_ERROR_HEADER: usize = 4096;

/// The most a request may make us allocate up front, in bytes (more grows as data arrives).
const MAX_PREALLOCATION: u64 = 64 * 1024 * 1024;

/// [`read_body`] within `timeout` (`[http] body-read-timeout`), failing with 408 after it.
pub(super) async fn read_body_within<B>(
    body: B,
    length: Option<u64>,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    match tokio::time::timeout(timeout, read_body(body, length, limit)).await {
        Ok(read) => read,
        Err(_elapsed) => {
            tracing::info!(
                ?timeout,
                "request body too slow: answered 408, closing the connection"
            );
            metrics::counter!("processor_http_body_timeouts_total").increment(1);
            Err(ApiError::BodyTimeout(timeout))
        }
    }
}

/// Reads the whole body, failing with 413 beyond `limit` bytes.
pub(super) async fn read_body<B>(
    body: B,
    length: Option<u64>,
    limit: usize,
) -> Result<Vec<u8>, ApiError>
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
pub(super) fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A gzip bomb: `members` copies of one member that inflates to 1 MiB of zeros (about
    /// 1 KiB each; Go's reader and ours read concatenated members as one stream).
    fn bomb(members: usize) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, &vec![0u8; 1 << 20]).unwrap_or_default();
        let member = encoder.finish().unwrap_or_default();
        member.repeat(members)
    }

    #[test]
    fn a_ten_megabyte_gzip_bomb_is_refused_as_too_large_while_inflating() {
        let member_len = bomb(1).len();
        let body = bomb(10_000_000 / member_len);
        let inflates_to: u64 = (body.len() / member_len) as u64 * (1 << 20);
        println!(
            "bomb: {} bytes of gzip inflating to {inflates_to} bytes",
            body.len()
        );
        assert!(body.len() > 9_000_000 && inflates_to > 9_000_000_000);
        // Stopped at the limit: the 9 GB are never produced (the test would run out of memory).
        assert_eq!(gunzip(&body, 25_000_000), Err(ApiError::BodyTooLarge));
    }
}
