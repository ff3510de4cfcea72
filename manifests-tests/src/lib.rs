//! Test support for `manifests/` and the Dockerfiles; the tests are in `tests/`.
//!
//! # Layout
//! - [`render`]: `kubectl kustomize` a kustomization into JSON objects, and look objects up.
//! - [`validate`]: `kubernetes-validate --strict` against the official JSON schemas.
//! - [`dockerfile`]: a Dockerfile's stages and instructions, for the static image checks.
//! - [`tools`]: where the external programs are, and what to do when one is missing.
//! - this file: where the manifests are, and [`created_secret_value`], Secret `processor-auth`
//!   as the command documented in manifests/README.md creates it (it is not in the manifests).

pub mod dockerfile;
pub mod render;
pub mod tools;
pub mod validate;

use std::path::PathBuf;

/// `manifests/` in the workspace.
pub fn manifests_dir() -> PathBuf {
    workspace_bins::workspace_root().join("manifests")
}

/// Every kustomization to test: `base` and each folder of `overlays/`, sorted, as paths
/// relative to `manifests/` (so a new overlay is tested without editing a list).
pub fn kustomizations() -> std::io::Result<Vec<String>> {
    let mut found = vec!["base".to_owned()];
    let mut overlays: Vec<String> = std::fs::read_dir(manifests_dir().join("overlays"))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("kustomization.yaml").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .map(|name| format!("overlays/{name}"))
        .collect();
    overlays.sort();
    found.extend(overlays);
    Ok(found)
}

/// The Secret the manifests read but do not ship: the operator creates it with
/// `kubectl create secret generic processor-auth --from-literal=username=telegraf
/// --from-literal=password=…` (manifests/README.md, "Credentials").
pub const CREATED_SECRET: &str = "processor-auth";

/// The keys of [`CREATED_SECRET`] as the tests create it: the documented user name and a
/// generated-looking password (never a placeholder the processor refuses).
pub const CREATED_SECRET_KEYS: [(&str, &str); 2] = [
    ("username", "telegraf"),
    ("password", "t3st-Generated-9fQ2xLw"),
];

/// Key `key` of Secret `name` when it is [`CREATED_SECRET`]; `None` for any other Secret or key.
pub fn created_secret_value(name: &str, key: &str) -> Option<&'static str> {
    (name == CREATED_SECRET)
        .then(|| CREATED_SECRET_KEYS.iter().find(|(k, _)| *k == key))
        .flatten()
        .map(|(_, value)| *value)
}
