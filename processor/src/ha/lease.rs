//! The election's IO: reads and writes the Lease through `kube` every `retry-period` (a
//! follower also wakes when a watch on the Lease reports a change, so a release is noticed at
//! once), feeds [`Election`] and publishes the verdict through the [`Gate`]: the role, the
//! holder, `processor_ha_*` metrics and an INFO line on every role change.
//!
//! Each attempt is bounded by `renew-deadline`. A successful write counts from when the
//! attempt started (the API may have applied it at any moment since), so the leader's deadline
//! never outlasts what the other replicas saw. On stop the leader releases the Lease
//! (ReleaseOnCancel) after the gate was closed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::election::{Action, Election, Record, Settings};
use super::{Gate, Role};
use crate::config::Ha;

/// Where the in-cluster service account's namespace is mounted.
pub const SERVICE_ACCOUNT_NAMESPACE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read lease {lease}")]
    Read {
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot write lease {lease}")]
    Write {
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error("lease {lease}: no answer within renew-deadline ({deadline:?})")]
    Timeout { lease: String, deadline: Duration },
}

/// The Lease's namespace when `[ha] lease-namespace` is unset: the service account's
/// namespace file when it exists, else `cluster_default` (the default `[kubernetes]`
/// client's namespace).
pub fn own_namespace(configured: Option<&str>, cluster_default: &str) -> String {
    if let Some(namespace) = configured {
        return namespace.to_owned();
    }
    lifecycle::files::read_text_capped(std::path::Path::new(SERVICE_ACCOUNT_NAMESPACE), 4096)
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| cluster_default.to_owned())
}

/// The election's settings from `[ha]`.
pub fn settings(ha: &Ha) -> Settings {
    Settings {
        identity: ha.identity.clone(),
        lease_duration: ha.lease_duration,
        renew_deadline: ha.renew_deadline,
        retry_period: ha.retry_period,
    }
}

/// A running election: its gate, and how to stop it (releasing the Lease when leading).
pub struct Elector {
    gate: Gate,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    watcher: JoinHandle<()>,
}

impl Elector {
    /// Starts electing on Lease `namespace/name` through `client`.
    pub fn start(client: kube::Client, namespace: &str, name: &str, settings: Settings) -> Elector {
        let lease = format!("{namespace}/{name}");
        let gate = Gate::elected(&settings.identity, &lease);
        let api: Api<Lease> = Api::namespaced(client, namespace);
        let (stop, stopped) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        let watcher = tokio::spawn(watch_lease(
            api.clone(),
            name.to_owned(),
            settings.retry_period,
            Arc::clone(&wake),
        ));
        metrics::gauge!("processor_ha_leader", "identity" => settings.identity.clone()).set(0.0);
        let looping = Loop {
            api,
            name: name.to_owned(),
            lease,
            election: Election::new(settings),
            gate: gate.clone(),
            read: None,
            role: Role::Follower,
        };
        let task = tokio::spawn(looping.run(stopped, wake));
        Elector {
            gate,
            stop,
            task,
            watcher,
        }
    }

    /// The gate writers ask.
    pub fn gate(&self) -> Gate {
        self.gate.clone()
    }

    /// Closes the gate, releases the Lease when leading and waits for the loop to end.
    pub async fn stop(self) {
        self.gate.stop();
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.watcher.abort();
    }
}

struct Loop {
    api: Api<Lease>,
    name: String,
    /// `namespace/name`, for messages.
    lease: String,
    election: Election,
    gate: Gate,
    /// The Lease as last read or written (its resourceVersion goes with the next write).
    read: Option<Lease>,
    /// The role last published.
    role: Role,
}

impl Loop {
    async fn run(mut self, mut stopped: watch::Receiver<bool>, wake: Arc<Notify>) {
        let settings = self.election.settings().clone();
        loop {
            let started = Instant::now();
            let attempt = tokio::time::timeout(settings.renew_deadline, self.attempt(started));
            let result = tokio::select! {
                result = attempt => result.unwrap_or_else(|_| Err(Error::Timeout {
                    lease: self.lease.clone(),
                    deadline: settings.renew_deadline,
                })),
                _ = stopped.changed() => break,
            };
            if let Err(error) = result {
                if self.election.leading_until().is_some() {
                    metrics::counter!("processor_ha_lease_renew_failures_total", "identity" => settings.identity.clone()).increment(1);
                    tracing::warn!(error = %lifecycle::error_chain(&error), "lease renew failed");
                } else {
                    tracing::debug!(error = %lifecycle::error_chain(&error), "lease attempt failed");
                }
            }
            self.election.expire(Instant::now());
            self.publish();
            let pause = if self.election.is_leader(Instant::now()) {
                settings.retry_period
            } else {
                // client-go's JitterUntil: up to retry-period × 1.2.
                settings
                    .retry_period
                    .mul_f64(1.0 + fastrand::f64() * (crate::config::ha::JITTER_FACTOR - 1.0))
            };
            let leading = self.election.is_leader(Instant::now());
            let until = self.election.leading_until();
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                // A leader wakes at its deadline to publish that it no longer leads.
                _ = sleep_until_opt(until) => {}
                _ = wake.notified(), if !leading => {}
                _ = stopped.changed() => break,
            }
        }
        self.release().await;
    }

    /// One read and, when the election says so, one write.
    async fn attempt(&mut self, started: Instant) -> Result<(), Error> {
        let read = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| Error::Read {
                lease: self.lease.clone(),
                source,
            })?;
        let record = read.as_ref().map(record_of);
        self.read = read;
        let action = self
            .election
            .observe(record.as_ref(), Instant::now(), Timestamp::now());
        match action {
            Action::StandBy => Ok(()),
            Action::Create(record) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec_of(&record, None)),
                };
                let answer = self.api.create(&PostParams::default(), &lease).await;
                self.wrote(answer, record, started)
            }
            Action::Update(record) => {
                let mut lease = self.read.clone().unwrap_or_default();
                lease.spec = Some(spec_of(&record, lease.spec.take()));
                let answer = self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await;
                self.wrote(answer, record, started)
            }
        }
    }

    /// Takes a write's answer: success makes this replica the leader (from `started`); a 409
    /// means another replica wrote first.
    fn wrote(
        &mut self,
        answer: kube::Result<Lease>,
        record: Record,
        started: Instant,
    ) -> Result<(), Error> {
        match answer {
            Ok(written) => {
                self.read = Some(written);
                self.election.written(record, started);
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // Another replica wrote first: the next read says who holds it.
                tracing::debug!(lease = %self.lease, "lease write lost a race (409)");
                Ok(())
            }
            Err(source) => Err(Error::Write {
                lease: self.lease.clone(),
                source,
            }),
        }
    }

    /// Publishes the verdict to the gate; logs and counts a role change.
    fn publish(&mut self) {
        let until = self
            .election
            .leading_until()
            .filter(|until| Instant::now() < *until);
        let observed = self.election.observed().cloned().unwrap_or_default();
        let holder = observed.holder().map(str::to_owned);
        self.gate.publish(until, holder.clone());
        let role = if until.is_some() {
            Role::Leader
        } else {
            Role::Follower
        };
        if role == self.role {
            return;
        }
        self.role = role;
        let identity = self.election.settings().identity.clone();
        let change = if role == Role::Leader {
            "gained"
        } else {
            "lost"
        };
        metrics::gauge!("processor_ha_leader", "identity" => identity.clone())
            .set(if role == Role::Leader { 1.0 } else { 0.0 });
        metrics::counter!("processor_ha_transitions_total", "identity" => identity.clone(), "change" => change)
            .increment(1);
        tracing::info!(
            role = role.name(),
            %identity,
            lease = %self.lease,
            holder = holder.as_deref().unwrap_or(""),
            transitions = observed.transitions,
            lease_duration_seconds = observed.lease_duration_seconds,
            renew_time = ?observed.renew_time.map(|t| t.to_string()),
            "leadership {change}"
        );
    }

    /// ReleaseOnCancel: when leading, clear the holder so the next replica starts at once.
    async fn release(&mut self) {
        let released = self.election.release(Instant::now(), Timestamp::now());
        self.gate.publish(None, None);
        if self.role == Role::Leader {
            self.role = Role::Follower;
            let identity = self.election.settings().identity.clone();
            metrics::gauge!("processor_ha_leader", "identity" => identity.clone()).set(0.0);
            metrics::counter!("processor_ha_transitions_total", "identity" => identity, "change" => "lost")
                .increment(1);
        }
        let Some(record) = released else {
            return;
        };
        let mut lease = self.read.clone().unwrap_or_default();
        lease.spec = Some(spec_of(&record, lease.spec.take()));
        let deadline = self.election.settings().renew_deadline;
        let params = PostParams::default();
        let call = self.api.replace(&self.name, &params, &lease);
        match tokio::time::timeout(deadline, call).await {
            Ok(Ok(_)) => {
                tracing::info!(lease = %self.lease, identity = %self.election.settings().identity, "lease released")
            }
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.lease, %error, "cannot release the lease; the others take it over when it expires")
            }
            Err(_) => {
                tracing::warn!(lease = %self.lease, "releasing the lease timed out; the others take it over when it expires")
            }
        }
    }
}

async fn sleep_until_opt(until: Option<Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}

/// Wakes the loop whenever the Lease changes (a release is noticed at once); on any error it
/// tries again after `retry`.
async fn watch_lease(api: Api<Lease>, name: String, retry: Duration, wake: Arc<Notify>) {
    let params = WatchParams::default().fields(&format!("metadata.name={name}"));
    loop {
        match api.watch(&params, "0").await {
            Ok(stream) => {
                let mut stream = std::pin::pin!(stream);
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(
                            WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_),
                        ) => {
                            wake.notify_one();
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "cannot watch the lease"),
        }
        tokio::time::sleep(retry).await;
    }
}

/// The election's view of a Lease.
pub fn record_of(lease: &Lease) -> Record {
    let spec = lease.spec.clone().unwrap_or_default();
    Record {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
        acquire_time: spec.acquire_time.map(|t| t.0),
        renew_time: spec.renew_time.map(|t| t.0),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

/// `record` written over `old` (fields the election does not own are kept).
fn spec_of(record: &Record, old: Option<LeaseSpec>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: record.holder.clone(),
        lease_duration_seconds: Some(record.lease_duration_seconds),
        acquire_time: record.acquire_time.map(MicroTime),
        renew_time: record.renew_time.map(MicroTime),
        lease_transitions: Some(record.transitions),
        ..old.unwrap_or_default()
    }
}
