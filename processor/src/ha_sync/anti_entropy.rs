//! The periodic sync: at start and then every `[ha] sync-interval`, each peer's definitions
//! and tombstones are read and every one newer than what this replica holds is applied (the
//! rule of [`super::version`]); tombstones older than `tombstone-ttl` are forgotten. A peer that
//! cannot be read is logged and counted (`processor_ha_sync_failures_total`) and tried again at
//! the next interval.

use std::sync::Arc;
use std::time::Duration;

use super::PeerClient;
use crate::clock::Clock;
use crate::tasks::{Applied, Remote, SyncState, TaskMaster};

/// Starts the sync loop; it runs until the returned handle is aborted.
pub fn spawn(
    client: Arc<PeerClient>,
    tasks: Arc<TaskMaster>,
    clock: Clock,
    interval: Duration,
    tombstone_ttl: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            tasks.prune_tombstones(clock(), tombstone_ttl);
            for peer in client.peers() {
                match client.sync_state(peer).await {
                    Ok(state) => apply(peer, state, &tasks).await,
                    Err(error) => {
                        tracing::warn!(%peer, error = %lifecycle::error_chain(&error), "task sync: peer not read; next try in one sync-interval");
                        metrics::counter!("processor_ha_sync_failures_total", "peer" => peer.clone())
                            .increment(1);
                    }
                }
            }
        }
    })
}

/// Applies a peer's state, off the runtime's threads (a define compiles and saves).
async fn apply(peer: &str, state: SyncState, tasks: &Arc<TaskMaster>) {
    let tasks = Arc::clone(tasks);
    let peer = peer.to_owned();
    let applied = tokio::task::spawn_blocking(move || {
        let remotes = state
            .tasks
            .into_iter()
            .filter(|def| def.version.is_some())
            .map(Remote::Defined)
            .chain(state.tombstones.into_iter().map(Remote::Deleted));
        let mut taken = 0_u64;
        for remote in remotes {
            let id = match &remote {
                Remote::Defined(def) => def.id.clone(),
                Remote::Deleted(tombstone) => tombstone.id.clone(),
            };
            match tasks.apply_remote(remote) {
                Ok(Applied::Taken) => {
                    tracing::info!(%peer, task = %id, "task sync: took the peer's newer change");
                    taken += 1;
                }
                Ok(Applied::Same | Applied::Stale) => {}
                Err(error) => {
                    tracing::error!(%peer, task = %id, error = %lifecycle::error_chain(&error), "task sync: the peer's change cannot be applied here");
                }
            }
        }
        taken
    })
    .await;
    if let Ok(taken) = applied {
        metrics::counter!("processor_ha_sync_applied_total").increment(taken);
    }
}
