//! What every binary of the workspace (app, agent, processor, the stand-in, the lab) does around
//! its work, done one way: reading flags, setting up logs, waiting for the stop signal, naming
//! exit codes, reading the files it is pointed at, the hostname, and an error with its causes
//! on one line.
//!
//! # Layout
//! - [`exit`]: the exit codes (sysexits.h) and [`parse_flags`], clap's opening of `main`.
//! - [`logging`]: `RUST_LOG`, `LOG_FORMAT=json`, stderr or a log file.
//! - [`shutdown_signal`]: SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
//! - [`files`]: reading the files a binary is pointed at, with a bound.
//! - [`hostname`], [`error_chain`].

pub mod exit;
pub mod files;
pub mod logging;

pub use exit::parse_flags;
pub use logging::init_tracing;

/// Completes on SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C), saying which. Where
/// SIGTERM cannot be watched it says so and waits for SIGINT alone.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM; only SIGINT stops this process");
                let _ = interrupt.await;
                tracing::info!("SIGINT received");
                return;
            }
        };
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
        tracing::info!("interrupt received");
    }
}

/// The kernel's hostname (the pod name in Kubernetes), as Go's `os.Hostname()`; `localhost`
/// when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `error: cause: cause's cause …`, every `source()` on one line (for logs and stderr).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1
                .as_deref()
                .map(|e| e as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn an_error_chain_names_every_cause_in_order() {
        let error = Layer(
            "cannot save task",
            Some(Box::new(Layer(
                "disk full",
                Some(Box::new(Layer("ENOSPC", None))),
            ))),
        );
        assert_eq!(error_chain(&error), "cannot save task: disk full: ENOSPC");
        assert_eq!(error_chain(&Layer("alone", None)), "alone");
    }
}
