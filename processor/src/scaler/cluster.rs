//! The `kube` client each `[[kubernetes]]` section makes; the sections themselves (keys,
//! defaults, environment variables, checks) are read by [`crate::config::kubernetes`] and
//! re-exported here as [`Kubernetes`].
//!
//! Where the client comes from, strongest first: `api-servers` (with `token` and `ca-path`),
//! then `in-cluster` (the pod's service account), then a kubeconfig (`kubeconfig`, else
//! `$KUBECONFIG`, else `~/.kube/config`, with `context`).

use std::path::PathBuf;
use std::time::Duration;

pub use crate::config::kubernetes::Kubernetes;

/// Requests to the API server time out after this long (kube's own default is none for reads).
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a cluster's client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kubernetes[{id:?}]: invalid api server URL {url:?}")]
    Url { id: String, url: String },
    #[error("kubernetes[{id:?}]: cannot read ca-path {path}")]
    Ca {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kubernetes[{id:?}]: in-cluster configuration unavailable: {reason}")]
    InCluster { id: String, reason: String },
    #[error("kubernetes[{id:?}]: kubeconfig unusable: {reason}")]
    Kubeconfig { id: String, reason: String },
    #[error("kubernetes[{id:?}]: cannot build the client: {reason}")]
    Client { id: String, reason: String },
}

/// A client for one cluster and the namespace that empty target namespaces mean.
pub struct ClusterClient {
    pub client: kube::Client,
    pub default_namespace: String,
    pub settings: Kubernetes,
}

/// The User-Agent on every API request.
pub fn user_agent() -> String {
    format!("autoscaler-processor/{}", env!("CARGO_PKG_VERSION"))
}

/// Builds the client of `settings` (see the module documentation for the precedence).
pub async fn connect(settings: &Kubernetes) -> std::result::Result<ClusterClient, ClientError> {
    let id = settings.id.clone();
    let mut config = if let Some(url) = settings.api_servers.first() {
        let uri = url.parse().map_err(|_| ClientError::Url {
            id: id.clone(),
            url: url.clone(),
        })?;
        let mut config = kube::Config::new(uri);
        if !settings.token.is_empty() {
            config.auth_info.token = Some(settings.token.clone().into());
        }
        if let Some(path) = &settings.ca_path {
            // A CA bundle is kilobytes; a path to `/dev/zero` must not be read forever.
            let pem =
                lifecycle::files::read_capped(path, 1 << 20).map_err(|source| ClientError::Ca {
                    id: id.clone(),
                    path: path.clone(),
                    source,
                })?;
            config.root_cert = Some(pem_to_der(&pem));
        }
        config
    } else if settings.in_cluster {
        kube::Config::incluster().map_err(|e| ClientError::InCluster {
            id: id.clone(),
            reason: e.to_string(),
        })?
    } else {
        let path = settings
            .kubeconfig
            .clone()
            .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kube/config"))
            });
        let Some(path) = path else {
            return Err(ClientError::Kubeconfig {
                id,
                reason: "no kubeconfig: set kubeconfig, $KUBECONFIG or $HOME".into(),
            });
        };
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&path).map_err(|e| ClientError::Kubeconfig {
                id: id.clone(),
                reason: format!("{}: {e}", path.display()),
            })?;
        let options = kube::config::KubeConfigOptions {
            context: settings.context.clone(),
            ..Default::default()
        };
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| ClientError::Kubeconfig {
                id: id.clone(),
                reason: e.to_string(),
            })?
    };
    // Our own retry with backoff decides; kube's would retry a 503 for minutes.
    config.default_retry = false;
    config.connect_timeout = Some(API_TIMEOUT);
    config.read_timeout = Some(API_TIMEOUT);
    config.write_timeout = Some(API_TIMEOUT);
    if let Ok(value) = user_agent().parse() {
        config.headers.push((hyper::header::USER_AGENT, value));
    }
    let default_namespace = if settings.namespace.is_empty() {
        config.default_namespace.clone()
    } else {
        settings.namespace.clone()
    };
    // kube drops the headers of an error answer: this layer keeps `Retry-After` in its Status.
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| ClientError::Client {
            id,
            reason: e.to_string(),
        })?
        .with_layer(&tower::util::AndThenLayer::new(super::retry_after::carry))
        .build();
    Ok(ClusterClient {
        client,
        default_namespace,
        settings: settings.clone(),
    })
}

/// The DER bodies of the `CERTIFICATE` blocks of a PEM file.
fn pem_to_der(pem: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(pem);
    let mut certs = Vec::new();
    let mut body = None::<String>;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b64) = body.take()
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64)
            {
                certs.push(der);
            }
        } else if let Some(b64) = body.as_mut() {
            b64.push_str(line);
        }
    }
    certs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_become_der() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_to_der(pem), vec![vec![0, 1, 2, 3]]);
    }
}
