//! `kubernetes-validate --strict`: every object against the official Kubernetes JSON schemas,
//! unknown fields rejected.

use std::path::Path;
use std::process::Command;

/// Why a validation did not pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kubernetes-validate --strict -k {version} failed:\n{output}")]
    Invalid { version: String, output: String },
    #[error("cannot find the default version in `kubernetes-validate --help`: {help}")]
    NoDefaultVersion { help: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Validates every document of `file` for Kubernetes `version` (e.g. `1.29.0`) in strict mode.
pub fn strict(program: &Path, version: &str, file: &Path) -> Result<()> {
    let output = Command::new(program)
        .args(["--strict", "--quiet", "-k", version])
        .arg(file)
        .output()
        .map_err(|source| spawn_error(program, source))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && !text.contains("ERROR") {
        Ok(())
    } else {
        Err(Error::Invalid {
            version: version.to_owned(),
            output: text.trim().to_owned(),
        })
    }
}

/// The newest Kubernetes version the installed schemas know: the default that `--help` names
/// ("Defaults to 1.37.0").
pub fn newest_version(program: &Path) -> Result<String> {
    let output = Command::new(program)
        .arg("--help")
        .output()
        .map_err(|source| spawn_error(program, source))?;
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    default_version(&help).ok_or(Error::NoDefaultVersion { help })
}

/// The version after "Defaults to" in the help text (argparse may wrap the line before it).
pub fn default_version(help: &str) -> Option<String> {
    let words: Vec<&str> = help.split_whitespace().collect();
    let at = words
        .windows(2)
        .position(|pair| pair == ["Defaults", "to"])?;
    let version = words.get(at + 2)?.trim_end_matches('.');
    let numeric = version
        .split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()));
    (numeric && version.contains('.')).then(|| version.to_owned())
}

fn spawn_error(program: &Path, source: std::io::Error) -> Error {
    Error::Spawn {
        program: program.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_version_is_read_across_a_wrapped_line() {
        let help = "  -k KUBERNETES_VERSION\n      version of kubernetes against which to validate.\n      Defaults to 1.37.0\n  --strict";
        assert_eq!(default_version(help).as_deref(), Some("1.37.0"));
    }

    #[test]
    fn help_without_a_version_gives_none() {
        assert_eq!(default_version("Defaults to whatever"), None);
        assert_eq!(default_version("usage: x"), None);
    }
}
