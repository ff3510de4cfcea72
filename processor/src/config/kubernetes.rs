//! The `[kubernetes]` / `[[kubernetes]]` sections: Kapacitor's keys plus ours, one section per
//! cluster a k8sAutoscale node can name (the client each one makes is `scaler::cluster`'s).
//!
//! Keys: `enabled`, `id` (what a node's `.cluster()` names), `in-cluster`, `api-servers`,
//! `token`, `ca-path`, `namespace`; ours: `kubeconfig`, `context`, `dry-run`, `max-point-age`.
//! Environment variables set the keys of the first section as `KAPACITOR_KUBERNETES_<KEY>` (the
//! tutorial's manifest sets `KAPACITOR_KUBERNETES_ENABLED` and `..._IN_CLUSTER`) and of section
//! N as `KAPACITOR_KUBERNETES_<N>_<KEY>`, with `PROCESSOR_` winning over `KAPACITOR_`.

use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use super::Result;
use super::keys::{DurationRange, EnvKind, apply_indexed_env, invalid};

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
    apply_indexed_env(table, vars, "kubernetes", KEYS)
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

/// `[kubernetes] max-point-age`: from 1 s (0 would make every point stale, so nothing ever
/// scales) to 24 h.
pub const MAX_POINT_AGE_RANGE: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(24 * 3600));

/// The checks of `[[kubernetes]]` values that [`from_value`] leaves to the loader:
/// `max-point-age` within [`MAX_POINT_AGE_RANGE`], `api-servers` entries `http://` or
/// `https://` URLs with a host.
pub fn check(sections: &[Kubernetes]) -> Result<()> {
    for (index, section) in sections.iter().enumerate() {
        MAX_POINT_AGE_RANGE
            .check(section.max_point_age)
            .map_err(|reason| invalid(&format!("kubernetes[{index}].max-point-age"), reason))?;
        for url in &section.api_servers {
            check_api_server(url)
                .map_err(|reason| invalid(&format!("kubernetes[{index}].api-servers"), reason))?;
        }
    }
    Ok(())
}

/// An API server URL must be `http://` or `https://` with a host.
fn check_api_server(url: &str) -> std::result::Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("{url:?} must start with http:// or https://"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Error};

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

    fn error(text: &str) -> String {
        match Config::parse(text) {
            Ok(loaded) => panic!("config should be rejected, got {loaded:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_kubernetes_api_server_must_be_an_http_or_https_url() {
        for url in [
            "ftp://127.0.0.1:6443",
            "127.0.0.1:6443",
            "http://",
            "not a url",
            "",
        ] {
            let message = error(&format!("[kubernetes]\napi-servers = [{url:?}]\n"));
            assert!(
                message.contains("`kubernetes[0].api-servers`"),
                "{url}: {message}"
            );
        }
        let loaded = Config::parse(
            "[[kubernetes]]\nid = \"a\"\napi-servers = [\"https://10.0.0.1:6443\"]\n\
             [[kubernetes]]\nid = \"b\"\napi-servers = [\"http://127.0.0.1:8080/prefix\"]\n",
        )
        .expect("config");
        assert_eq!(loaded.config.kubernetes.len(), 2);
    }
}
