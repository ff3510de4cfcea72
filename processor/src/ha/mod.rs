//! High availability: several replicas, of which only the holder of a `coordination.k8s.io/v1`
//! Lease writes to the Kubernetes API (`[ha]`, [`crate::config::Ha`]).
//!
//! - [`election`]: the pure state machine (client-go's leaderelection semantics);
//! - [`lease`]: the IO loop reading and writing the Lease with `kube`, publishing the role;
//! - this file: [`Role`], [`Status`] and the [`Gate`] every writer asks immediately before it
//!   writes. The gate answers from the leader's deadline (its last successful renew +
//!   `renew-deadline`) on the monotonic clock, so a leader whose deadline passed stops
//!   writing even if its election loop is stuck in a slow request.
//!
//! Without `[ha] enabled` the gate is [`Gate::standalone`]: it always allows writing and the
//! processor behaves as it did before this module existed.

pub mod election;
pub mod lease;

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::time::Instant;

/// This replica's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// HA disabled: the only replica, always writing.
    Standalone,
    /// Holds the Lease: writes to the Kubernetes API.
    Leader,
    /// Runs the pipeline and records its decisions (`standby`), writes nothing.
    Follower,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

/// What `/ready` and logs say about the election.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub role: Role,
    /// This replica's identity (empty when standalone).
    pub identity: String,
    /// The Lease's holder as last read (`None`: nobody, or not known yet).
    pub holder: Option<String>,
    /// `namespace/name` of the Lease (empty when standalone).
    pub lease: String,
}

/// Asked before every write to the Kubernetes API. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    inner: Option<Arc<GateInner>>,
}

struct GateInner {
    /// The leader may write until then; `None`: not leading.
    leading_until: Mutex<Option<Instant>>,
    /// Set once when the processor stops: never write again.
    stopped: std::sync::atomic::AtomicBool,
    status: watch::Sender<Status>,
}

impl Gate {
    /// HA disabled: always open.
    pub fn standalone() -> Gate {
        Gate { inner: None }
    }

    /// A gate for an elected replica, closed until the election says it leads.
    pub fn elected(identity: &str, lease: &str) -> Gate {
        let (status, _) = watch::channel(Status {
            role: Role::Follower,
            identity: identity.to_owned(),
            holder: None,
            lease: lease.to_owned(),
        });
        Gate {
            inner: Some(Arc::new(GateInner {
                leading_until: Mutex::new(None),
                stopped: std::sync::atomic::AtomicBool::new(false),
                status,
            })),
        }
    }

    /// Whether HA is enabled (the gate can close).
    pub fn is_elected(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether this replica may write to the Kubernetes API now.
    pub fn may_write(&self) -> bool {
        self.may_write_at(Instant::now())
    }

    /// Whether this replica may write at `now`: standalone, or leading and within its renew
    /// deadline, and not stopping.
    pub fn may_write_at(&self, now: Instant) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        if inner.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let until = *inner
            .leading_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        until.is_some_and(|until| now < until)
    }

    /// The role, as the election last published it (a leader past its deadline reads as a
    /// follower even before its loop notices).
    pub fn status(&self) -> Status {
        match &self.inner {
            None => Status {
                role: Role::Standalone,
                identity: String::new(),
                holder: None,
                lease: String::new(),
            },
            Some(inner) => {
                let mut status = inner.status.borrow().clone();
                if status.role == Role::Leader && !self.may_write() {
                    status.role = Role::Follower;
                }
                status
            }
        }
    }

    /// Role changes as the election publishes them (`None` when standalone).
    pub fn subscribe(&self) -> Option<watch::Receiver<Status>> {
        self.inner.as_ref().map(|inner| inner.status.subscribe())
    }

    /// Closes the gate for good: the processor is stopping and never scales again.
    pub fn stop(&self) {
        if let Some(inner) = &self.inner {
            inner
                .stopped
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The election's verdict: leading until `until` (`None`: not leading), the holder read.
    pub(crate) fn publish(&self, until: Option<Instant>, holder: Option<String>) {
        let Some(inner) = &self.inner else {
            return;
        };
        *inner
            .leading_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = until;
        let role = if until.is_some() {
            Role::Leader
        } else {
            Role::Follower
        };
        inner.status.send_if_modified(|status| {
            let changed = status.role != role || status.holder != holder;
            status.role = role;
            status.holder = holder;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_standalone_gate_is_always_open() {
        let gate = Gate::standalone();
        assert!(gate.may_write());
        gate.stop();
        assert!(gate.may_write(), "stopping is the scaler's own flag then");
        assert_eq!(gate.status().role, Role::Standalone);
    }

    #[test]
    fn an_elected_gate_opens_only_until_the_leaders_deadline() {
        let gate = Gate::elected("a", "default/processor");
        let now = Instant::now();
        assert!(!gate.may_write_at(now), "closed until elected");
        gate.publish(Some(now + Duration::from_secs(10)), Some("a".into()));
        assert!(gate.may_write_at(now + Duration::from_millis(9_999)));
        assert!(!gate.may_write_at(now + Duration::from_secs(10)));
        gate.publish(None, Some("b".into()));
        assert!(!gate.may_write_at(now));
        let status = gate.status();
        assert_eq!(
            (status.role, status.holder.as_deref()),
            (Role::Follower, Some("b"))
        );
    }

    #[test]
    fn a_stopped_gate_never_opens_again() {
        let gate = Gate::elected("a", "default/processor");
        let now = Instant::now();
        gate.publish(Some(now + Duration::from_secs(10)), Some("a".into()));
        gate.stop();
        assert!(!gate.may_write_at(now));
    }
}
