//! The external programs the tests run: `kubectl` (for `kubectl kustomize`) and
//! `kubernetes-validate` (PyPI). A missing one makes [`find`] return `None` after printing
//! `SKIPPED`, or panic when `REQUIRE_PEERS=1` (set by `.ci/run`, which installs them).

use std::path::{Path, PathBuf};

/// `kubectl`, the Debian package's path first, then `$PATH`.
pub fn kubectl() -> Option<PathBuf> {
    find("kubectl", "apt-get install kubectl")
}

/// `kubernetes-validate` on `$PATH`.
pub fn kubernetes_validate() -> Option<PathBuf> {
    find("kubernetes-validate", "pip install kubernetes-validate")
}

/// The program `name` in `/usr/bin` or on `$PATH`; `install` says how to get it.
///
/// # Panics
/// When it is missing and `REQUIRE_PEERS=1`.
pub fn find(name: &str, install: &str) -> Option<PathBuf> {
    if let Some(path) = search(name) {
        return Some(path);
    }
    let message = format!("{name} is not installed ({install})");
    if std::env::var("REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("{message}; REQUIRE_PEERS=1 makes this a failure");
    }
    eprintln!("SKIPPED: {message}");
    None
}

fn search(name: &str) -> Option<PathBuf> {
    let usr_bin = Path::new("/usr/bin").join(name);
    if usr_bin.is_file() {
        return Some(usr_bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
