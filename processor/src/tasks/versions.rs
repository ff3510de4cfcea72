//! Versions of task changes and tombstones of deletes, for the replicas' sync
//! (`crate::ha_sync`): which version a change gets ([`Stamp`]), what a replica shows its peers
//! ([`SyncState`]) and how a peer's definition or delete is applied ([`TaskMaster::apply_remote`],
//! by `ha_sync::version::newer`'s rule).

use serde::{Deserialize, Serialize};

use super::{Result, TaskDef, TaskMaster, TaskRequest, Version};
use crate::ha_sync::version::{self, Held};

/// Where a change's version comes from.
#[derive(Debug, Clone)]
pub(super) enum Stamp {
    /// Accepted here through the task API: now on this replica's clock, with its identity.
    Local,
    /// The `[load]` directory: [`Version::LOAD`].
    Load,
    /// A peer's change, with the version it carries.
    Given(Version),
}

/// A deleted task's id and the version of its delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tombstone {
    pub id: String,
    pub version: Version,
}

/// What a replica shows its peers: every definition (with its version) and every tombstone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    pub tasks: Vec<TaskDef>,
    pub tombstones: Vec<Tombstone>,
}

/// A peer's change to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Remote {
    /// A definition, its `version` set.
    Defined(TaskDef),
    /// A delete.
    Deleted(Tombstone),
}

/// What applying a peer's change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The change is newer: it was applied.
    Taken,
    /// This replica already holds it.
    Same,
    /// This replica holds a newer change of the task: nothing was done.
    Stale,
}

/// What a definition's version is compared with on a tie: its canonical JSON (type, dbrps,
/// script, vars, status).
fn fingerprint(def: &TaskDef) -> String {
    serde_json::to_string(&(&def.kind, &def.dbrps, &def.script, &def.vars, &def.status))
        .unwrap_or_default()
}

/// A definition's version; one saved before versions existed counts as the load directory's.
fn version_of(def: &TaskDef) -> Version {
    def.version.clone().unwrap_or(Version::LOAD)
}

impl TaskMaster {
    /// This replica's identity (the origin of its changes' versions; empty until set).
    pub fn identity(&self) -> &str {
        self.identity.get().map_or("", String::as_str)
    }

    /// Sets this replica's identity, once (later calls change nothing).
    pub fn set_identity(&self, identity: String) {
        let _ = self.identity.set(identity);
    }

    pub(super) fn stamp(&self, stamp: Stamp, previous: Option<&Version>) -> Version {
        match stamp {
            Stamp::Local => Version::next(previous, (self.clock)(), self.identity()),
            Stamp::Load => Version::LOAD,
            Stamp::Given(version) => version,
        }
    }

    fn tombstones(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Version>> {
        self.tombstones.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn tombstone(&self, id: &str) -> Option<Version> {
        self.tombstones().get(id).cloned()
    }

    pub(super) fn forget_tombstone(&self, id: &str) {
        self.tombstones().remove(id);
    }

    pub(super) fn remember_tombstone(&self, id: &str, version: Version) {
        self.tombstones().insert(id.to_owned(), version);
    }

    /// Forgets the tombstones older than `ttl` at `now` (ns since the epoch).
    pub fn prune_tombstones(&self, now: i64, ttl: std::time::Duration) {
        let ttl = i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX);
        self.tombstones()
            .retain(|_, version| !version::expired(version, now, ttl));
    }

    /// Every definition with its version and every tombstone.
    pub fn sync_state(&self) -> SyncState {
        let tasks = self.lock().values().map(|e| e.def.clone()).collect();
        let tombstones = self
            .tombstones()
            .iter()
            .map(|(id, version)| Tombstone {
                id: id.clone(),
                version: version.clone(),
            })
            .collect();
        SyncState { tasks, tombstones }
    }

    /// Task `id`'s definition as held here.
    pub fn definition(&self, id: &str) -> Option<TaskDef> {
        self.lock().get(id).map(|e| e.def.clone())
    }

    /// The version of task `id` as held here (a definition's or a tombstone's).
    pub fn version_of(&self, id: &str) -> Option<Version> {
        let held = self.lock().get(id).map(|e| version_of(&e.def));
        held.or_else(|| self.tombstone(id))
    }

    /// Applies a peer's change when it is newer than what this replica holds of the task
    /// (`ha_sync::version::newer`).
    pub fn apply_remote(&self, remote: Remote) -> Result<Applied> {
        let (id, remote_version, remote_print) = match &remote {
            Remote::Defined(def) => (def.id.clone(), version_of(def), Some(fingerprint(def))),
            Remote::Deleted(tombstone) => (tombstone.id.clone(), tombstone.version.clone(), None),
        };
        let local_def = self.lock().get(&id).map(|e| e.def.clone());
        let local_version = local_def
            .as_ref()
            .map(version_of)
            .or_else(|| self.tombstone(&id));
        let local_print = local_def.as_ref().map(fingerprint);
        let local = local_version.as_ref().map(|version| Held {
            version,
            fingerprint: local_print.as_deref(),
        });
        let incoming = Held {
            version: &remote_version,
            fingerprint: remote_print.as_deref(),
        };
        if !version::newer(local.as_ref(), &incoming) {
            let same = local
                .as_ref()
                .is_some_and(|held| held.version == &remote_version)
                && local_print == remote_print;
            return Ok(if same { Applied::Same } else { Applied::Stale });
        }
        let stamp = Stamp::Given(remote_version.clone());
        match remote {
            Remote::Defined(def) => {
                let request = TaskRequest {
                    id: Some(def.id.clone()),
                    kind: Some(def.kind),
                    dbrps: Some(def.dbrps),
                    script: Some(def.script),
                    vars: Some(def.vars),
                    status: Some(def.status),
                };
                if local_def.is_some() {
                    self.update_as(&id, request, stamp)?;
                } else {
                    self.create_as(request, stamp)?;
                }
            }
            Remote::Deleted(tombstone) => {
                if local_def.is_some() {
                    self.delete_as(&id, stamp)?;
                } else {
                    self.remember_tombstone(&id, tombstone.version);
                }
            }
        }
        Ok(Applied::Taken)
    }
}
