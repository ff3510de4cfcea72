//! `kubectl kustomize` a kustomization and read the output as JSON objects.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Why a kustomization could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kubectl kustomize {dir} failed: {stderr}")]
    Kustomize { dir: String, stderr: String },
    #[error("the output of kubectl kustomize {dir} is not YAML: {message}")]
    Yaml { dir: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A rendered kustomization: its YAML text and the objects in it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub yaml: String,
    pub objects: Vec<Value>,
}

/// Runs `kubectl kustomize <dir>` and parses its documents.
pub fn kustomize(kubectl: &Path, dir: &Path) -> Result<Rendered> {
    let output = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|source| Error::Spawn {
            program: kubectl.display().to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Kustomize {
            dir: dir.display().to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let yaml = String::from_utf8_lossy(&output.stdout).into_owned();
    let objects = parse_documents(&yaml).map_err(|message| Error::Yaml {
        dir: dir.display().to_string(),
        message,
    })?;
    Ok(Rendered { yaml, objects })
}

/// The documents of a multi-document YAML stream (empty documents dropped).
pub fn parse_documents(yaml: &str) -> Result<Vec<Value>, String> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(yaml).map_err(|error| error.to_string())?;
    Ok(documents.into_iter().filter(|doc| !doc.is_null()).collect())
}

impl Rendered {
    /// The object of `kind` named `name`, if there is one.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|object| kind_of(object) == kind && name_of(object) == name)
    }

    /// Every object of `kind`.
    pub fn all<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |object| kind_of(object) == kind)
    }

    /// Every pod template (Deployments, DaemonSets, StatefulSets) with its owner's kind/name.
    pub fn pod_specs(&self) -> Vec<(String, &Value)> {
        self.objects
            .iter()
            .filter_map(|object| {
                let spec = object.pointer("/spec/template/spec")?;
                Some((format!("{}/{}", kind_of(object), name_of(object)), spec))
            })
            .collect()
    }
}

/// `kind` of an object ("" when absent).
pub fn kind_of(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// `metadata.name` of an object ("" when absent).
pub fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Every container of a pod spec, init containers (sidecars) first.
pub fn containers(pod_spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|field| pod_spec.get(*field).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// A container's `args` (or `command`) as strings.
pub fn strings(container: &Value, field: &str) -> Vec<String> {
    container
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|arg| arg.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_split_and_empty_ones_dropped() {
        let docs = parse_documents("a: 1\n---\n---\nkind: Service\nmetadata:\n  name: x\n")
            .expect("valid YAML");
        assert_eq!(docs.len(), 2);
        assert_eq!(kind_of(&docs[1]), "Service");
        assert_eq!(name_of(&docs[1]), "x");
    }

    #[test]
    fn bad_yaml_is_an_error_not_a_panic() {
        assert!(parse_documents("a: [1, 2\n").is_err());
    }
}
