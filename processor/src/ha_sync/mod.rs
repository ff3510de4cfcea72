//! Tasks identical on every processor replica (issue #14). The `[load]` directory is the same
//! file on every replica; what the task API changes is propagated:
//!
//! - a define, update (enable, disable, script, vars) or delete accepted by one replica is
//!   applied there, then forwarded to every peer (`[ha] peers`) with its version in the
//!   [`VERSION_HEADER`], which also marks it forwarded so the peer does not forward it again; a
//!   peer that does not take it is logged, counted (`processor_ha_forward_failures_total`) and
//!   named in the answer's `Warning` header;
//! - every `sync-interval` (and at start) each replica fetches each peer's definitions and
//!   tombstones ([`SYNC_PATH`]) and keeps, per task, the newest by [`version::newer`]: a peer
//!   that was down or missed a forward catches up within one interval.
//!
//! # Layout
//! - [`version`]: the versions and the rule (pure);
//! - `peer_client`: the HTTP edge: a forward to every peer, a peer's sync state;
//! - `anti_entropy`: the periodic sync.
//!
//! The task store keeps each definition's version and the tombstones (`tasks::versions`); the
//! task API (`crate::task_api`) forwards and answers forwarded changes.

mod anti_entropy;
mod peer_client;
pub mod version;

use std::time::Duration;

pub use anti_entropy::spawn;
pub use peer_client::{PeerClient, PeerFailure};

/// Carries a forwarded change's [`version::Version`] (`<ns> <origin>`); its presence marks
/// the request as forwarded.
pub const VERSION_HEADER: &str = "x-processor-task-version";

/// A replica's definitions and tombstones, for its peers (GET; JSON [`crate::tasks::SyncState`]).
pub const SYNC_PATH: &str = "/kapacitor/v1/ha/tasks";

/// Why a request to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("request to {peer} failed")]
    Transport {
        peer: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("no answer from {peer} within {timeout:?}")]
    Timeout { peer: String, timeout: Duration },
    #[error("{peer} answered {status}: {body}")]
    Refused {
        peer: String,
        status: u16,
        body: String,
    },
    #[error("{peer}: reading the answer failed: {reason}")]
    Body { peer: String, reason: String },
    #[error("{peer}: the sync state is not valid JSON")]
    Json {
        peer: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url:?} with path {path:?} is not a valid request URI")]
    Uri { url: String, path: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Help texts of the counters this module records.
pub fn describe() {
    metrics::describe_counter!(
        "processor_ha_forward_failures_total",
        "Task changes a peer replica did not take when forwarded, by peer."
    );
    metrics::describe_counter!(
        "processor_ha_sync_failures_total",
        "Anti-entropy syncs that could not read a peer's tasks, by peer."
    );
    metrics::describe_counter!(
        "processor_ha_sync_applied_total",
        "Task definitions and deletes taken from a peer by the anti-entropy sync."
    );
}
