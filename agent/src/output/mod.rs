//! Where metrics go: `[[outputs.influxdb]]` and `[[outputs.file]]`.

pub mod file;
pub mod influxdb;
pub mod retry_after;

use std::time::Duration;

use crate::config::Output as OutputConfig;

/// What became of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the receiver.
    Written,
    /// Refused for good (a 4xx with a JSON error, as Telegraf): the batch is dropped, logged.
    Dropped(String),
    /// Not delivered (5xx, 429, timeout, connection error, unreadable answer): keep it and
    /// retry, after `after` when the receiver said how long to wait (`Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

/// Why an output could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Influxdb(#[from] influxdb::SetupError),
    #[error(transparent)]
    File(#[from] file::SetupError),
}

/// A configured output, ready to write.
pub enum Sink {
    Influxdb(Box<influxdb::InfluxdbWriter>),
    File(file::FileWriter),
}

impl Sink {
    pub fn new(config: &OutputConfig) -> Result<Self, SetupError> {
        Ok(match config {
            OutputConfig::Influxdb(config) => {
                Sink::Influxdb(Box::new(influxdb::InfluxdbWriter::new(config)?))
            }
            OutputConfig::File(config) => Sink::File(file::FileWriter::new(config)?),
        })
    }

    /// The plugin name, for logs and self-metrics (`influxdb`, `file`).
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Influxdb(_) => "influxdb",
            Sink::File(_) => "file",
        }
    }

    /// What the output does once at start (InfluxDB: `CREATE DATABASE`).
    pub async fn connect(&self) {
        if let Sink::Influxdb(writer) = self {
            writer.create_database().await;
        }
    }

    /// Writes one batch of line protocol.
    pub async fn write(&mut self, body: &str) -> Outcome {
        match self {
            Sink::Influxdb(writer) => writer.write(body).await,
            Sink::File(writer) => writer.write(body),
        }
    }
}
