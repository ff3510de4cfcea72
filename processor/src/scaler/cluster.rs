//! The `[kubernetes]` / `[[kubernetes]]` sections (Kapacitor's keys plus ours) and the `kube`
//! client each one makes.
//!
//! Keys: `enabled`, `id` (what a node's `.cluster()` names), `in-cluster`, `api-servers`,
//! `token`, `ca-path`, `namespace`; ours: `kubeconfig`, `context`, `dry-run`, `max-point-age`.
//! Where the client comes from, strongest first: `api-servers` (with `token` and `ca-path`),
//! then `in-cluster` (the pod's service account), then a kubeconfig (`kubeconfig`, else
//! `$KUBECONFIG`, else `~/.kube/config`, with `context`). Environment variables set the keys of
//! the first section as `KAPACITOR_KUBERNETES_<KEY>` (the tutorial's manifest sets
//! `KAPACITOR_KUBERNETES_ENABLED` and `..._IN_CLUSTER`) and of section N as
//! `KAPACITOR_KUBERNETES_<N>_<KEY>`, with `PROCESSOR_` winning over `KAPACITOR_`.

use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use crate::config::{EnvKind, Error, Result};

/// Requests to the API server time out after this long (kube's own default is none for reads).
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// One `[[kubernetes]]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Kubernetes {
    /// Scaling through this cluster is possible only when enabled (default false).
    pub enabled: bool,
    /// What `.cluster()` names; the empty id is the default cluster.
    pub id: String,
    /// Use the pod's service account (`KUBERNETES_SERVICE_HOST`, the mounted token and CA).
    pub in_cluster: bool,
    /// API server URLs; the first is used.
    pub api_servers: Vec<String>,
    /// Bearer token for `api_servers`.
    pub token: String,
    /// PEM file of the CA that signed the API server's certificate, for `api_servers`.
    pub ca_path: Option<PathBuf>,
    /// Namespace for targets whose namespace is empty; empty means the processor's own (the
    /// pod's namespace in-cluster, the kubeconfig context's otherwise).
    pub namespace: String,
    /// Kubeconfig file (default `$KUBECONFIG`, then `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    pub context: Option<String>,
    /// Decide and report, never change anything.
    pub dry_run: bool,
    /// Points older than this never cause scaling (a replayed backlog after an outage).
    pub max_point_age: Duration,
}

/// The default `max-point-age`: 30 s.
pub fn default_max_point_age() -> Duration {
    Duration::from_secs(30)
}

impl Default for Kubernetes {
    fn default() -> Self {
        Self {
            enabled: false,
            id: String::new(),
            in_cluster: false,
            api_servers: Vec::new(),
            token: String::new(),
            ca_path: None,
            namespace: String::new(),
            kubeconfig: None,
            context: None,
            dry_run: false,
            max_point_age: default_max_point_age(),
        }
    }
}

/// The keys of a section, with their environment type, for the variables.
const KEYS: &[(&str, EnvKind)] = &[
    ("enabled", EnvKind::Bool),
    ("id", EnvKind::String),
    ("in-cluster", EnvKind::Bool),
    ("api-servers", EnvKind::List),
    ("token", EnvKind::String),
    ("ca-path", EnvKind::String),
    ("namespace", EnvKind::String),
    ("kubeconfig", EnvKind::String),
    ("context", EnvKind::String),
    ("dry-run", EnvKind::Bool),
    ("max-point-age", EnvKind::String),
];

/// Applies `KAPACITOR_KUBERNETES_*` / `PROCESSOR_KUBERNETES_*` to the `kubernetes` entry of the
/// config table, creating sections as needed. Returns the names of variables under those
/// prefixes that match no key, for the caller to warn about.
pub fn apply_env(table: &mut Table, vars: &[(String, String)]) -> Result<Vec<String>> {
    crate::config::apply_indexed_env(table, vars, "kubernetes", KEYS)
}

/// Reads the `kubernetes` entry (a table or an array of tables); unknown keys are pushed to
/// `warnings`.
pub fn from_value(value: Value, warnings: &mut Vec<String>) -> Result<Vec<Kubernetes>> {
    let sections = match value {
        Value::Table(table) => vec![table],
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Table(table) => Ok(table),
                _ => Err(invalid(
                    "kubernetes",
                    "must be a table or an array of tables",
                )),
            })
            .collect::<Result<_>>()?,
        _ => {
            return Err(invalid(
                "kubernetes",
                "must be a table or an array of tables",
            ));
        }
    };
    let mut clusters = Vec::new();
    for (index, mut table) in sections.into_iter().enumerate() {
        let path = format!("kubernetes[{index}]");
        let cluster = section(&mut table, &path)?;
        for key in table.keys() {
            warnings.push(format!("unknown config key `{path}.{key}` is ignored"));
        }
        if clusters.iter().any(|c: &Kubernetes| c.id == cluster.id) {
            return Err(invalid(
                &format!("{path}.id"),
                format!("{:?} is used by two sections", cluster.id),
            ));
        }
        if cluster.api_servers.len() > 1 {
            warnings.push(format!(
                "`{path}.api-servers`: only the first of {} servers is used",
                cluster.api_servers.len()
            ));
        }
        clusters.push(cluster);
    }
    Ok(clusters)
}

fn section(table: &mut Table, path: &str) -> Result<Kubernetes> {
    let defaults = Kubernetes::default();
    let key = |k: &str| format!("{path}.{k}");
    let string = |table: &mut Table, k: &str| -> Result<Option<String>> {
        match table.remove(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(
                &key(k),
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    };
    let boolean = |table: &mut Table, k: &str| -> Result<Option<bool>> {
        match table.remove(k) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(invalid(
                &key(k),
                format!("expected true or false, found {}", other.type_str()),
            )),
        }
    };
    let api_servers = match table.remove("api-servers") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(invalid(
                    &key("api-servers"),
                    format!("expected strings, found {}", other.type_str()),
                )),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(invalid(
                &key("api-servers"),
                format!("expected a list of URLs, found {}", other.type_str()),
            ));
        }
    };
    let max_point_age = match string(table, "max-point-age")? {
        None => defaults.max_point_age,
        Some(text) => humantime::parse_duration(&text)
            .map_err(|e| invalid(&key("max-point-age"), format!("{text:?}: {e}")))?,
    };
    Ok(Kubernetes {
        enabled: boolean(table, "enabled")?.unwrap_or(defaults.enabled),
        id: string(table, "id")?.unwrap_or_default(),
        in_cluster: boolean(table, "in-cluster")?.unwrap_or(defaults.in_cluster),
        api_servers,
        token: string(table, "token")?.unwrap_or_default(),
        ca_path: string(table, "ca-path")?
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        namespace: string(table, "namespace")?.unwrap_or_default(),
        kubeconfig: string(table, "kubeconfig")?
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        context: string(table, "context")?.filter(|s| !s.is_empty()),
        dry_run: boolean(table, "dry-run")?.unwrap_or(defaults.dry_run),
        max_point_age,
    })
}

fn invalid(key: &str, reason: impl Into<String>) -> Error {
    Error::InvalidValue {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

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
            let pem = std::fs::read(path).map_err(|source| ClientError::Ca {
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
    let client = kube::Client::try_from(config).map_err(|e| ClientError::Client {
        id,
        reason: e.to_string(),
    })?;
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

    fn parse(text: &str) -> (Vec<Kubernetes>, Vec<String>) {
        let mut table: Table = text.parse().unwrap();
        let mut warnings = Vec::new();
        let clusters = from_value(table.remove("kubernetes").unwrap(), &mut warnings).unwrap();
        (clusters, warnings)
    }

    #[test]
    fn one_section_or_several_are_read() {
        let (one, warnings) = parse("[kubernetes]\nenabled = true\nin-cluster = true\n");
        assert_eq!(one.len(), 1);
        assert!(one[0].enabled && one[0].in_cluster);
        assert_eq!(one[0].max_point_age, Duration::from_secs(30));
        assert!(warnings.is_empty());

        let (many, warnings) = parse(
            "[[kubernetes]]\nenabled = true\nid = \"a\"\napi-servers = [\"https://a:6443\", \"https://b:6443\"]\n\
             token = \"t\"\ndry-run = true\nmax-point-age = \"1m\"\nextra = 1\n\
             [[kubernetes]]\nid = \"b\"\nkubeconfig = \"/k\"\ncontext = \"lab\"\n",
        );
        assert_eq!(many.len(), 2);
        assert_eq!(many[0].api_servers.len(), 2);
        assert!(many[0].dry_run);
        assert_eq!(many[0].max_point_age, Duration::from_secs(60));
        assert_eq!(many[1].context.as_deref(), Some("lab"));
        assert_eq!(
            warnings,
            [
                "unknown config key `kubernetes[0].extra` is ignored",
                "`kubernetes[0].api-servers`: only the first of 2 servers is used",
            ]
        );
    }

    #[test]
    fn bad_values_and_duplicate_ids_name_the_key() {
        for (text, key) in [
            ("[kubernetes]\nenabled = \"yes\"\n", "kubernetes[0].enabled"),
            (
                "[kubernetes]\nmax-point-age = \"soon\"\n",
                "kubernetes[0].max-point-age",
            ),
            (
                "[[kubernetes]]\nid = \"x\"\n[[kubernetes]]\nid = \"x\"\n",
                "kubernetes[1].id",
            ),
        ] {
            let mut table: Table = text.parse().unwrap();
            let error =
                from_value(table.remove("kubernetes").unwrap(), &mut Vec::new()).unwrap_err();
            assert!(
                matches!(&error, Error::InvalidValue { key: k, .. } if k == key),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn environment_variables_set_the_tutorials_keys_and_indexed_sections() {
        let mut table = Table::new();
        let vars = vec![
            ("KAPACITOR_KUBERNETES_ENABLED".to_owned(), "true".to_owned()),
            (
                "KAPACITOR_KUBERNETES_IN_CLUSTER".to_owned(),
                "true".to_owned(),
            ),
            (
                "PROCESSOR_KUBERNETES_IN_CLUSTER".to_owned(),
                "false".to_owned(),
            ),
            (
                "KAPACITOR_KUBERNETES_1_API_SERVERS".to_owned(),
                "http://a:1, http://b:2".to_owned(),
            ),
            ("KAPACITOR_KUBERNETES_1_ID".to_owned(), "b".to_owned()),
            ("KAPACITOR_KUBERNETES_NONSENSE".to_owned(), "1".to_owned()),
        ];
        let unknown = apply_env(&mut table, &vars).unwrap();
        assert_eq!(unknown, ["KAPACITOR_KUBERNETES_NONSENSE"]);
        let (clusters, _) = {
            let mut warnings = Vec::new();
            (
                from_value(table.remove("kubernetes").unwrap(), &mut warnings).unwrap(),
                warnings,
            )
        };
        assert!(clusters[0].enabled);
        assert!(!clusters[0].in_cluster, "PROCESSOR_ wins over KAPACITOR_");
        assert_eq!(clusters[1].api_servers, ["http://a:1", "http://b:2"]);
    }

    #[test]
    fn pem_blocks_become_der() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_to_der(pem), vec![vec![0, 1, 2, 3]]);
    }
}
