//! What `processor serve` checks before it serves, so that a config that cannot work fails at
//! start with the reason instead of at the first define or the first scale:
//!
//! - [`check_data_dir`]: `data_dir` can be created and written (a probe file is written and
//!   removed), with the OS error when not;
//! - [`connect_kubernetes`]: every enabled `[[kubernetes]]` section gets its client and the API
//!   server answers `GET /version` through it;
//! - [`raise_open_files_limit`]: the soft open-files limit is raised to the hard one (as Go
//!   programs such as InfluxDB do), with a warning when it cannot hold
//!   `[http] max-connection-limit` connections.
//!
//! The values themselves (URL schemes, ranges) are checked when the config loads
//! ([`crate::config`]); these are the checks that need the file system or the network.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::scaler::cluster::{self, ClientError, Kubernetes};
use crate::scaler::kubernetes::KubernetesScaler;

/// Why the processor cannot start although its config loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `data_dir` does not exist and cannot be created.
    #[error("data_dir {path}: cannot create the directory")]
    DataDirCreate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `data_dir` exists but a file cannot be written in it.
    #[error("data_dir {path}: cannot write a file in it")]
    DataDirWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `[[kubernetes]]` section's client could not be made.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The API server did not answer `GET /version`.
    #[error("kubernetes[{id:?}]: cannot reach the Kubernetes API server ({server})")]
    Unreachable {
        id: String,
        /// Where the client points: the `api-servers` URL, `in-cluster` or `kubeconfig`.
        server: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// Whether the config is at fault (exit 64) rather than the environment (exit 69).
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Client(ClientError::Url { .. }))
    }
}

/// A `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Descriptors kept for what is not a client connection: the listener, task files, the
/// Kubernetes and influxDBOut clients.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and answers the limit now in force, or
/// `None` when it cannot be read. Warns when it is below `max_connections` (0: no limit set)
/// plus [`RESERVED_DESCRIPTORS`]: connections past it fail to be accepted (the listener waits
/// 50 ms and tries again) instead of being refused by the limit.
pub fn raise_open_files_limit(max_connections: usize) -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let wanted = u64::try_from(max_connections)
                .unwrap_or(u64::MAX)
                .saturating_add(RESERVED_DESCRIPTORS);
            if max_connections > 0 && limit < wanted {
                tracing::warn!(
                    limit,
                    max_connection_limit = max_connections,
                    "the open-files limit cannot hold http.max-connection-limit connections: \
                     raise it (ulimit -n) or lower the key"
                );
            } else {
                tracing::debug!(limit, "open-files limit");
            }
            Some(limit)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open-files limit");
            None
        }
    }
}

/// Creates `data_dir` if needed and writes and removes a probe file in it, so that an
/// unwritable directory is found at start with the OS error, not at the first define.
pub fn check_data_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::DataDirCreate {
        path: path.to_path_buf(),
        source,
    })?;
    let probe = path.join(format!(".write-probe-{}", std::process::id()));
    let written = std::fs::File::create(&probe).and_then(|mut file| {
        file.write_all(b"probe")?;
        file.sync_all()
    });
    let removed = std::fs::remove_file(&probe);
    written.and(removed).map_err(|source| Error::DataDirWrite {
        path: path.to_path_buf(),
        source,
    })
}

/// Builds the client of every enabled section and asks each API server for `/version`
/// (open to every client on a real cluster and on the stand-in), then the scaler over them.
pub async fn connect_kubernetes(
    settings: &[Kubernetes],
    clock: crate::clock::Clock,
) -> Result<KubernetesScaler> {
    let mut clusters = HashMap::new();
    for section in settings.iter().filter(|s| s.enabled) {
        let client = cluster::connect(section).await?;
        let version =
            client
                .client
                .apiserver_version()
                .await
                .map_err(|source| Error::Unreachable {
                    id: section.id.clone(),
                    server: describe_server(section),
                    source,
                })?;
        tracing::info!(
            cluster = %section.id,
            server = %describe_server(section),
            version = %version.git_version,
            namespace = %client.default_namespace,
            dry_run = section.dry_run,
            "kubernetes client ready"
        );
        clusters.insert(section.id.clone(), client);
    }
    Ok(KubernetesScaler::with_clusters(clusters, clock))
}

/// Where a section's client points, for messages (never a token).
fn describe_server(section: &Kubernetes) -> String {
    if let Some(url) = section.api_servers.first() {
        url.clone()
    } else if section.in_cluster {
        "in-cluster".to_owned()
    } else {
        match &section.kubeconfig {
            Some(path) => format!("kubeconfig {}", path.display()),
            None => "kubeconfig".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_is_created_and_left_without_the_probe() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("a/b");
        check_data_dir(&data).expect("writable");
        let left: Vec<_> = std::fs::read_dir(&data).expect("created").collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_data_dir_under_a_file_fails_with_the_os_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        for path in [file.join("data"), file.clone()] {
            let error = check_data_dir(&path).expect_err("not a directory");
            assert!(matches!(error, Error::DataDirCreate { .. }), "{error:?}");
            let source = std::error::Error::source(&error).map(ToString::to_string);
            assert!(
                source.as_deref().is_some_and(|s| s.contains("os error")),
                "{source:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreachable_api_server_is_an_error_naming_it() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let settings = Kubernetes {
            enabled: true,
            api_servers: vec![url.clone()],
            ..Kubernetes::default()
        };
        let error = connect_kubernetes(&[settings], crate::clock::system())
            .await
            .err()
            .expect("unreachable");
        assert!(
            matches!(&error, Error::Unreachable { server, .. } if *server == url),
            "{error:?}"
        );
        assert!(!error.is_config());
    }

    #[test]
    fn the_open_files_limit_is_raised_to_at_least_what_it_was() {
        let before = std::fs::read_to_string("/proc/self/limits")
            .unwrap_or_default()
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .and_then(|line| line.split_whitespace().nth(3))
            .and_then(|n| n.parse::<u64>().ok());
        let after = raise_open_files_limit(10);
        assert!(after.is_some());
        if let (Some(before), Some(after)) = (before, after) {
            assert!(after >= before, "{after} < {before}");
        }
    }
}
