//! The HTTP edge: `/write` and `/query` over a `[[influxdb]]` section's URLs, with failover
//! (connection error, timeout or 5xx: the next URL; the last URL that answered goes first),
//! Basic auth and the section's timeout. One [`Client`] serves every task.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{Error, Result, Target};
use crate::config::tasks::InfluxDb;

/// Longest part of an InfluxDB error body kept in a message.
const ERROR_BODY_CHARS: usize = 512;

/// One `[[influxdb]]` section, ready to send.
struct Cluster {
    config: InfluxDb,
    /// `urls` without a trailing `/`.
    bases: Vec<String>,
    /// Index of the URL tried first: the last one that answered.
    preferred: AtomicUsize,
    authorization: Option<HeaderValue>,
}

/// The HTTP edge: sends to the `[[influxdb]]` sections, shared by every task.
pub struct Client {
    clusters: Vec<Cluster>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(sections: &[InfluxDb]) -> Client {
        use base64::Engine as _;
        let clusters = sections
            .iter()
            .filter(|s| s.enabled)
            .map(|s| Cluster {
                bases: s
                    .urls
                    .iter()
                    .map(|u| u.trim_end_matches('/').to_owned())
                    .collect(),
                preferred: AtomicUsize::new(0),
                authorization: (!s.username.is_empty())
                    .then(|| {
                        let token = base64::engine::general_purpose::STANDARD
                            .encode(format!("{}:{}", s.username, s.password));
                        HeaderValue::from_str(&format!("Basic {token}")).map(|mut v| {
                            v.set_sensitive(true);
                            v
                        })
                    })
                    .and_then(|v| v.ok()),
                config: s.clone(),
            })
            .collect();
        Client {
            clusters,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The section `.cluster(name)` writes to: by name, or for an empty name the one marked
    /// `default` (else the only enabled one).
    fn cluster(&self, name: &str) -> Result<&Cluster> {
        if name.is_empty() {
            self.clusters
                .iter()
                .find(|c| c.config.default)
                .or(match self.clusters.as_slice() {
                    [only] => Some(only),
                    _ => None,
                })
                .ok_or(Error::NoDefault)
        } else {
            self.clusters
                .iter()
                .find(|c| c.config.name == name)
                .ok_or_else(|| Error::NoCluster(name.to_owned()))
        }
    }

    /// Whether `.cluster(name)` names a usable section.
    pub fn check(&self, name: &str) -> Result<()> {
        self.cluster(name).map(|_| ())
    }

    /// The longest a final flush may take: every URL of the slowest section timing out once.
    pub fn stop_limit(&self) -> Duration {
        self.clusters
            .iter()
            .map(|c| {
                c.config
                    .timeout
                    .saturating_mul(u32::try_from(c.bases.len().max(1)).unwrap_or(u32::MAX))
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// POSTs line protocol to `target`.
    pub async fn write(&self, target: &Target, body: String) -> Result<()> {
        self.post(
            &target.cluster,
            &target.write_path(),
            "text/plain; charset=utf-8",
            Bytes::from(body),
        )
        .await
        .map(|_| ())
    }

    /// POSTs `q=statement` to `/query`; a statement error in the answer is an error.
    pub async fn query(&self, cluster: &str, statement: &str) -> Result<()> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", statement)
            .finish();
        let (url, body) = self
            .post(
                cluster,
                "/query",
                "application/x-www-form-urlencoded",
                Bytes::from(form),
            )
            .await?;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = json["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|r| r["error"].as_str())
            .or_else(|| json["error"].as_str());
        match message {
            Some(message) => Err(Error::Statement {
                url,
                statement: statement.to_owned(),
                message: message.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Tries the section's URLs from the preferred one on; returns the answering URL and body.
    async fn post(
        &self,
        cluster: &str,
        path: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<(String, Bytes)> {
        let c = self.cluster(cluster)?;
        let count = c.bases.len();
        let start = c.preferred.load(Ordering::Relaxed);
        let mut last = Error::NoCluster(cluster.to_owned());
        for i in 0..count {
            let index = (start + i) % count;
            let Some(base) = c.bases.get(index) else {
                continue;
            };
            let url = format!("{base}{path}");
            match self.once(c, &url, content_type, body.clone()).await {
                Ok((status, answer)) if status.is_server_error() => {
                    last = Error::Unavailable {
                        url,
                        reason: format!("status {status}: {}", excerpt(&answer)),
                    };
                }
                Ok((status, answer)) => {
                    c.preferred.store(index, Ordering::Relaxed);
                    if status.is_success() {
                        return Ok((url, answer));
                    }
                    return Err(Error::Rejected {
                        url,
                        status: status.as_u16(),
                        body: excerpt(&answer),
                    });
                }
                Err(reason) => last = Error::Unavailable { url, reason },
            }
        }
        Err(last)
    }

    /// One request with the section's timeout over sending and reading the answer.
    async fn once(
        &self,
        c: &Cluster,
        url: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<(hyper::StatusCode, Bytes), String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
        let mut request = hyper::Request::post(uri)
            .header(CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        if let Some(auth) = &c.authorization {
            request.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| lifecycle::error_chain(&e))?;
            let status = response.status();
            let answer = response
                .into_body()
                .collect()
                .await
                .map_err(|e| lifecycle::error_chain(&e))?
                .to_bytes();
            Ok((status, answer))
        };
        tokio::time::timeout(c.config.timeout, exchange)
            .await
            .map_err(|_| format!("timed out after {:?}", c.config.timeout))?
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(ERROR_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::stand_in::{StandIn, client, dead_url};
    use super::super::tests::spec;
    use super::*;

    fn target() -> Target {
        Target::of(&spec("db", 1, 1))
    }

    #[tokio::test]
    async fn a_write_fails_over_to_the_next_url_and_then_prefers_it() {
        let broken = StandIn::start(503, "overloaded").await;
        let live = StandIn::start(204, "").await;
        let dead = dead_url().await;
        let c = client(&[&dead, &broken.url, &live.url], Duration::from_secs(5));
        c.write(&target(), "m v=1 1\n".into()).await.unwrap();
        c.write(&target(), "m v=2 2\n".into()).await.unwrap();
        assert_eq!(broken.requests().len(), 1, "the 5xx URL is not tried again");
        let seen = live.requests();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "POST /write?db=db&precision=s HTTP/1.1");
        assert_eq!(seen[1].2, "m v=2 2\n");
    }

    #[tokio::test]
    async fn requests_carry_basic_auth() {
        let live = StandIn::start(204, "").await;
        let c = client(&[&live.url], Duration::from_secs(5));
        c.write(&target(), "m v=1 1\n".into()).await.unwrap();
        // base64("kapacitor:s3cret")
        assert_eq!(live.requests()[0].1, "Basic a2FwYWNpdG9yOnMzY3JldA==");
    }

    #[tokio::test]
    async fn a_4xx_is_rejected_with_influxdbs_answer_and_no_other_url_is_tried() {
        let refusing = StandIn::start(
            400,
            r#"{"error":"unable to parse 'm v=': missing field value"}"#,
        )
        .await;
        let live = StandIn::start(204, "").await;
        let c = client(&[&refusing.url, &live.url], Duration::from_secs(5));
        let error = c.write(&target(), "m v=\n".into()).await.unwrap_err();
        assert!(!error.retryable());
        assert!(error.to_string().contains("answered 400"), "{error}");
        assert!(error.to_string().contains("missing field value"), "{error}");
        assert!(live.requests().is_empty());
    }

    #[tokio::test]
    async fn a_url_that_never_answers_times_out_as_retryable() {
        let hung = StandIn::start(0, "").await;
        let c = client(&[&hung.url], Duration::from_millis(200));
        let error = c.write(&target(), "m v=1 1\n".into()).await.unwrap_err();
        assert!(error.retryable());
        assert!(error.to_string().contains("timed out"), "{error}");
        let dead = dead_url().await;
        let error = client(&[&dead], Duration::from_secs(5))
            .write(&target(), "m v=1 1\n".into())
            .await
            .unwrap_err();
        assert!(error.retryable(), "{error}");
    }

    #[tokio::test]
    async fn create_posts_the_statement_as_a_form_and_reads_statement_errors() {
        let ok = StandIn::start(200, r#"{"results":[{"statement_id":0}]}"#).await;
        let c = client(&[&ok.url], Duration::from_secs(5));
        c.query("", r#"CREATE DATABASE "db""#).await.unwrap();
        let seen = ok.requests();
        assert_eq!(seen[0].0, "POST /query HTTP/1.1");
        assert_eq!(seen[0].2, "q=CREATE+DATABASE+%22db%22");
        let failing =
            StandIn::start(200, r#"{"results":[{"statement_id":0,"error":"boom"}]}"#).await;
        let error = client(&[&failing.url], Duration::from_secs(5))
            .query("", "CREATE DATABASE x")
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Statement { ref message, .. } if message == "boom"));
    }

    fn section(name: &str, default: bool) -> InfluxDb {
        InfluxDb {
            name: name.to_owned(),
            urls: vec!["http://127.0.0.1:1".to_owned()],
            default,
            ..InfluxDb::default()
        }
    }

    #[test]
    fn clusters_resolve_by_name_then_default_then_the_only_one() {
        let one = Client::new(&[section("a", false)]);
        assert!(one.check("").is_ok());
        assert!(one.check("a").is_ok());
        assert!(matches!(one.check("b"), Err(Error::NoCluster(_))));
        let two = Client::new(&[section("a", false), section("b", false)]);
        assert!(matches!(two.check(""), Err(Error::NoDefault)));
        let marked = Client::new(&[section("a", false), section("b", true)]);
        assert!(marked.check("").is_ok());
        let mut disabled = section("a", true);
        disabled.enabled = false;
        assert!(Client::new(&[disabled]).check("a").is_err());
    }
}
