//! `[[outputs.file]]` with `data_format = "influx"`: line protocol to stdout, stderr or files
//! (appended), as the tutorial's sidecar prints every metric it sends.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use super::Outcome;
use crate::config::FileOutput;

/// Why a file output cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot open {path} for appending")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

enum Target {
    Stdout,
    Stderr,
    File { path: PathBuf, file: File },
}

/// The configured destinations.
pub struct FileWriter {
    targets: Vec<Target>,
}

impl FileWriter {
    pub fn new(config: &FileOutput) -> Result<Self, SetupError> {
        let targets = config
            .files
            .iter()
            .map(|name| match name.as_str() {
                "stdout" => Ok(Target::Stdout),
                "stderr" => Ok(Target::Stderr),
                path => {
                    let path = PathBuf::from(path);
                    let file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(|source| SetupError::Open {
                            path: path.clone(),
                            source,
                        })?;
                    Ok(Target::File { path, file })
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { targets })
    }

    /// Writes the batch to every destination; a failed destination keeps the batch for retry.
    pub fn write(&mut self, body: &str) -> Outcome {
        let mut failures = Vec::new();
        for target in &mut self.targets {
            let result = match target {
                Target::Stdout => write_locked(&mut std::io::stdout().lock(), body),
                Target::Stderr => write_locked(&mut std::io::stderr().lock(), body),
                Target::File { file, .. } => write_locked(file, body),
            };
            if let Err(error) = result {
                let name = match target {
                    Target::Stdout => "stdout".to_owned(),
                    Target::Stderr => "stderr".to_owned(),
                    Target::File { path, .. } => path.display().to_string(),
                };
                failures.push(format!("{name}: {error}"));
            }
        }
        if failures.is_empty() {
            Outcome::Written
        } else {
            Outcome::Retry {
                reason: failures.join("; "),
                after: None,
            }
        }
    }
}

fn write_locked(out: &mut impl Write, body: &str) -> std::io::Result<()> {
    out.write_all(body.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_appended_to_files() {
        let dir = std::env::temp_dir().join(format!("agent-file-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.lp");
        std::fs::write(&path, "existing 1\n").unwrap();
        let config = FileOutput {
            files: vec![path.display().to_string()],
            influx_uint_support: false,
            filter: Default::default(),
        };
        let mut writer = FileWriter::new(&config).unwrap();
        assert_eq!(writer.write("m v=1 1\n"), Outcome::Written);
        assert_eq!(writer.write("m v=2 2\n"), Outcome::Written);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "existing 1\nm v=1 1\nm v=2 2\n"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn an_unopenable_file_is_named() {
        let config = FileOutput {
            files: vec!["/nonexistent/dir/out.lp".into()],
            influx_uint_support: false,
            filter: Default::default(),
        };
        let Err(error) = FileWriter::new(&config) else {
            panic!("an unopenable file must fail");
        };
        assert!(error.to_string().contains("/nonexistent/dir/out.lp"));
    }
}
