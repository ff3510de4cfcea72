//! The HTTP edge of the replicas' sync: a task change forwarded to every peer at once, and a
//! peer's sync state read. Each request carries the processor's own `[http]` credentials (the
//! first `[[http.users]]` entry, as Basic auth, when `auth-enabled`) and is bounded by
//! `[ha] peer-timeout` from sending to the last byte of the answer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::version::Version;
use super::{Error, Result, SYNC_PATH, VERSION_HEADER};
use crate::config::{Http, Peers};
use crate::tasks::SyncState;

/// The largest answer read from a peer: 64 MiB (a sync state holds every task's script).
const MAX_ANSWER: usize = 64 << 20;

/// A peer that did not take a forwarded change, and why.
#[derive(Debug)]
pub struct PeerFailure {
    pub peer: String,
    pub error: Error,
}

/// Requests to the other replicas.
pub struct PeerClient {
    peers: Vec<String>,
    timeout: Duration,
    authorization: Option<HeaderValue>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl PeerClient {
    /// A client for `peers` (the other replicas' base URLs) with the processor's credentials.
    pub fn new(peers: Vec<String>, config: &Peers, http: &Http) -> PeerClient {
        use base64::Engine as _;
        let authorization = http
            .auth_enabled
            .then(|| http.users.first())
            .flatten()
            .and_then(|user| {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", user.name, user.password));
                HeaderValue::from_str(&format!("Basic {token}")).ok()
            })
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        PeerClient {
            peers,
            timeout: config.peer_timeout,
            authorization,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The peers' base URLs.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    /// Sends one change (`method` on `path`, JSON `body`) with its `version` to every peer at
    /// once; returns the peers that did not take it (a 409, "holds a newer change", is taken:
    /// the peer has converged past it). Each failure is logged and counted.
    pub async fn forward(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        version: &Version,
    ) -> Vec<PeerFailure> {
        let header = version.to_header();
        let sends = self.peers.iter().map(|peer| {
            let method = method.clone();
            let body = body.clone();
            let header = header.clone();
            async move {
                let outcome = self.send(peer, method, path, body, Some(&header)).await;
                match outcome {
                    Ok((status, _)) if status.is_success() || status == StatusCode::CONFLICT => {
                        None
                    }
                    Ok((status, answer)) => Some(Error::Refused {
                        peer: peer.clone(),
                        status: status.as_u16(),
                        body: excerpt(&answer),
                    }),
                    Err(error) => Some(error),
                }
                .map(|error| PeerFailure {
                    peer: peer.clone(),
                    error,
                })
            }
        });
        let failures: Vec<PeerFailure> = futures::future::join_all(sends)
            .await
            .into_iter()
            .flatten()
            .collect();
        for failure in &failures {
            tracing::warn!(peer = %failure.peer, error = %lifecycle::error_chain(&failure.error), path, "peer did not take a task change: the sync will bring it");
            metrics::counter!("processor_ha_forward_failures_total", "peer" => failure.peer.clone())
                .increment(1);
        }
        failures
    }

    /// The definitions and tombstones `peer` holds.
    pub async fn sync_state(&self, peer: &str) -> Result<SyncState> {
        let (status, answer) = self
            .send(peer, Method::GET, SYNC_PATH, Bytes::new(), None)
            .await?;
        if !status.is_success() {
            return Err(Error::Refused {
                peer: peer.to_owned(),
                status: status.as_u16(),
                body: excerpt(&answer),
            });
        }
        serde_json::from_slice(&answer).map_err(|source| Error::Json {
            peer: peer.to_owned(),
            source,
        })
    }

    async fn send(
        &self,
        peer: &str,
        method: Method,
        path: &str,
        body: Bytes,
        version: Option<&str>,
    ) -> Result<(StatusCode, Bytes)> {
        let url = format!("{peer}{path}");
        let uri: hyper::Uri = url.parse().map_err(|_| Error::Uri {
            url: peer.to_owned(),
            path: path.to_owned(),
        })?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|_| Error::Uri {
                url: peer.to_owned(),
                path: path.to_owned(),
            })?;
        if let Some(auth) = &self.authorization {
            request.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        if let Some(version) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
            request.headers_mut().insert(VERSION_HEADER, version);
        }
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|source| Error::Transport {
                    peer: peer.to_owned(),
                    source,
                })?;
            let status = response.status();
            let answer = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| Error::Body {
                    peer: peer.to_owned(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            Ok((status, answer))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                peer: peer.to_owned(),
                timeout: self.timeout,
            })?
    }
}

/// At most 200 characters of an answer, for errors.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
