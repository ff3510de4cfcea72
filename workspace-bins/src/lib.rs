//! Builds and locates the workspace's binaries for process-level tests.
//!
//! Cargo hands `CARGO_BIN_EXE_<name>` only to a package's own integration tests. A test that
//! starts another package's binary (the agent's tests start the app; the system tests start all
//! three) calls [`binary`] instead: it runs `cargo build -p <package> --bin <name>` once per test
//! process, with the profile of the running test, and returns the executable's path.
//! When the binary is up to date that build is a no-op that takes well under a second, so plain
//! `cargo test --workspace` is all a test run needs.
//!
//! This is test support: it panics with the build's error when the binary cannot be built.
//!
//! # Layout
//! - this file: [`binary`], [`workspace_root`], [`corpora_dir`] and [`samples_dir`] (`../shared`).
//! - [`peers`]: real programs beside ours (influxd, node_exporter, Prometheus, promtool), free
//!   ports, a plain HTTP client, [`peers::KillOnDrop`] for the processes a test starts.
//! - [`scaling`]: scale intents as the tutorial's k8sAutoscale node makes them.

pub mod peers;
pub mod scaling;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The path of `bin` from workspace package `package`, built on first use.
///
/// # Panics
/// When cargo fails to build it; the message carries cargo's error.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(String, String), PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    // Holding the lock across the build keeps two tests from building the same binary at once.
    let mut built = built
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (package.to_owned(), bin.to_owned());
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let run = escargot::CargoBuild::new()
        .manifest_path(workspace_root().join("Cargo.toml"))
        .package(package)
        .bin(bin)
        .current_release()
        .run()
        .unwrap_or_else(|error| panic!("cannot build binary {bin} of package {package}: {error}"));
    let path = run.path().to_path_buf();
    built.insert(key, path.clone());
    path
}

/// The workspace's root folder (where the top-level `Cargo.toml` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace-bins lives one level below the workspace root")
        .to_path_buf()
}

/// The shared test inputs (`../shared/corpora` beside the workspace, or `$CORPORA_DIR`).
///
/// Returns `None` when they are absent, after saying so on stderr; panics instead when
/// `REQUIRE_CORPORA=1` (as `.ci/run` sets), so CI never silently skips a conformance suite.
pub fn corpora_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CORPORA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/corpora"));
    shared_dir(dir, "CORPORA_DIR")
}

/// The shared real-world scrapes (`../shared/samples`, or `$SAMPLES_DIR`), with the same
/// absent/required rules as [`corpora_dir`].
pub fn samples_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/samples"));
    shared_dir(dir, "SAMPLES_DIR")
}

fn shared_dir(dir: PathBuf, variable: &str) -> Option<PathBuf> {
    if dir.is_dir() {
        return Some(dir);
    }
    let message = format!(
        "test inputs not found at {} (set {variable} to their location)",
        dir.display()
    );
    if std::env::var("REQUIRE_CORPORA").is_ok_and(|v| v == "1") {
        panic!("{message}; REQUIRE_CORPORA=1 makes this a failure");
    }
    eprintln!("SKIPPED: {message}");
    None
}
