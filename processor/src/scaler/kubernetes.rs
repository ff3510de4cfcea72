//! The [`Scaler`] that changes workloads through the Kubernetes API with the `kube` crate.
//!
//! Per intent: resolve the cluster (by `.cluster()` id) and the namespace (empty = the
//! processor's own); refuse stale points; then, holding the target's lock (at most one API call
//! in flight per target): GET the `/scale` subresource (`apps/v1` for deployments,
//! statefulsets and replicasets, core `v1` for replicationcontrollers), say so when someone else
//! changed it since we last set it, decide ([`super::decision`]) on the processor clock, and
//! PUT the Scale back with the resourceVersion just read. A 409 (someone changed it meanwhile)
//! reads again and decides again; 5xx, 429 and transport errors retry with backoff; 401, 403 and
//! 404 fail at once. Values are absolute, so a retry can never step twice; and when a write
//! answered with an error (a proxy's timeout after the API applied it) is followed by a read
//! that finds the count it was setting, that write succeeded: it is reported, its cooldown
//! starts and its Event is posted as for any change. Every change, and
//! every failure to change, is posted as a Kubernetes Event on the target. In dry run the
//! decision is made and reported and nothing is written. Before a write (and in dry run before
//! reporting one), [`super::conflict`] refuses a target a HorizontalPodAutoscaler also scales.
//!
//! With `[ha]` enabled the scaler asks its [`Gate`] first and again immediately before every
//! write (the HPA list, the PUT, each Event): a follower, or a leader whose renew deadline
//! passed, decides without any API call (`standby`, from the count it last saw) and keeps the
//! recommendations in its history, so a takeover finds the stabilization windows warm.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cluster::{self, ClusterClient};
use super::conflict::{self, Clearance, Guards};
use super::decision::{self, History, Rule, Step, Verdict};
use super::{Decision, Kind, ScaleError, ScaleFuture, ScaleIntent, ScaleOutcome, Scaler, Target};
use crate::clock::Clock;
use crate::ha::Gate;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};

/// Attempts per intent before giving up (the next point tries again).
pub const MAX_ATTEMPTS: u32 = 4;
/// The pause before the second attempt; it doubles for each further one.
pub const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Scales through one or more clusters. Cheap to clone: clones share the clients and the
/// per-target state.
#[derive(Clone)]
pub struct KubernetesScaler {
    inner: Arc<Inner>,
}

struct Inner {
    clusters: HashMap<String, ClusterClient>,
    targets: Mutex<HashMap<Target, Arc<tokio::sync::Mutex<History>>>>,
    shutting_down: AtomicBool,
    /// The processor clock: staleness and cooldowns.
    clock: Clock,
    /// Per target: does an HPA also scale it (checked at most once a minute).
    guards: Guards,
    /// HA: asked before every API call; standalone unless [`KubernetesScaler::set_gate`].
    gate: std::sync::OnceLock<Gate>,
}

impl KubernetesScaler {
    /// A scaler over ready-made clients ([`crate::startup::connect_kubernetes`] makes them and
    /// checks each API server answers; tests build them against the stand-in).
    pub fn with_clusters(clusters: HashMap<String, ClusterClient>, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                clusters,
                targets: Mutex::default(),
                shutting_down: AtomicBool::new(false),
                clock,
                guards: Guards::default(),
                gate: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Whether `.cluster(id)` resolves (enabling a task naming an unknown one must fail).
    pub fn has_cluster(&self, id: &str) -> bool {
        self.inner.clusters.contains_key(id)
    }

    /// Makes the scaler ask `gate` before every API call (once; HA enabled). Until then, and
    /// without a call, it is standalone.
    pub fn set_gate(&self, gate: Gate) {
        let _ = self.inner.gate.set(gate);
    }

    /// The client of the default cluster (id `""`), else of the first by id: what the Lease
    /// election uses.
    pub fn default_cluster(&self) -> Option<&ClusterClient> {
        self.inner.clusters.get("").or_else(|| {
            let first = self.inner.clusters.keys().min()?;
            self.inner.clusters.get(first)
        })
    }

    /// From now on every intent fails with [`ScaleError::ShuttingDown`]: the processor never
    /// scales while it stops.
    pub fn shut_down(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }
}

impl Inner {
    fn gate(&self) -> Gate {
        self.gate.get().cloned().unwrap_or_else(Gate::standalone)
    }

    /// A follower's decision: no API call. The count it starts from is the one it last saw
    /// or set, else the one the raw count asks for (so it holds); the recommendation is kept
    /// in `history` so a takeover finds the stabilization windows warm.
    fn stand_by(
        &self,
        intent: &ScaleIntent,
        history: &mut History,
    ) -> Result<ScaleOutcome, ScaleError> {
        let now = (self.clock)();
        let current = history.last_set.unwrap_or_else(|| match &intent.desired {
            super::Desired::Raw(raw) => {
                decision::clamp(super::behavior::ceil(*raw), &intent.policy)
            }
            super::Desired::Fallback(Some(replicas)) => *replicas,
            _ => intent.policy.min.max(1),
        });
        let (raw, verdict) = intent
            .desired
            .decide(current, &intent.policy, history, now)?;
        history.decided(&verdict, now);
        Ok(standby(current, raw, verdict, now))
    }

    fn history(&self, target: &Target) -> Arc<tokio::sync::Mutex<History>> {
        let mut targets = self
            .targets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(targets.entry(target.clone()).or_default())
    }

    async fn run(self: Arc<Self>, intent: ScaleIntent) -> Result<ScaleOutcome, ScaleError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ScaleError::ShuttingDown);
        }
        let target = &intent.target;
        let cluster = self
            .clusters
            .get(&target.cluster)
            .ok_or_else(|| ScaleError::UnknownCluster(target.cluster.clone()))?;
        let history = self.history(target);
        let mut history = history.lock().await;
        if decision::is_stale(
            intent.point_time_ns,
            (self.clock)(),
            cluster.settings.max_point_age,
        ) {
            let last = history.last_set.unwrap_or(0);
            tracing::debug!(target = %describe(target), "point older than max-point-age; not scaling");
            let mut outcome = ScaleOutcome::plain(Decision::Stale, last, last, false);
            outcome.steps.push(Step {
                rule: Rule::Stale,
                before: last,
                after: last,
            });
            outcome.decided_at = (self.clock)();
            return Ok(outcome);
        }
        let gate = self.gate();
        if !gate.may_write() {
            return self.stand_by(&intent, &mut history);
        }
        let namespace = if target.namespace.is_empty() {
            cluster.default_namespace.as_str()
        } else {
            target.namespace.as_str()
        };
        let dry_run = intent.policy.dry_run || cluster.settings.dry_run;
        let api = ScaleApi {
            client: &cluster.client,
            namespace,
            kind: target.kind,
            name: &target.name,
            gate: &gate,
        };
        let mut pause = FIRST_RETRY_PAUSE;
        let mut last_error = String::new();
        // A write whose answer was an error that may have come after it was applied.
        let mut unconfirmed: Option<Unconfirmed> = None;
        // The last change decided and sent: (new size, reason), for a FailedRescale Event
        // that carries the rules as a SuccessfulRescale one does.
        let mut last_change: Option<(i64, String)> = None;
        for attempt in 1..=MAX_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(pause.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
                pause *= 2;
            }
            let scale = match api.get().await {
                Ok(scale) => scale,
                Err(error) => match classify(&error) {
                    Failure::Fatal(fatal) => return Err(fatal(api.describe(), error.to_string())),
                    Failure::Retry | Failure::Conflict => {
                        last_error = error.to_string();
                        continue;
                    }
                },
            };
            let current: i64 = scale
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(0)
                .into();
            if let Some(sent) = unconfirmed.take()
                && sent.verdict.new == current
            {
                history.applied(&sent.verdict, sent.old, sent.at);
                tracing::info!(target = %api.describe(), old = sent.old, new = current, reason = %sent.reason, error = %last_error, "scaled (the write was answered with an error but applied)");
                api.event(
                    sent.uid.as_deref(),
                    true,
                    &format!("New size: {current}; reason: {}", sent.reason),
                )
                .await;
                return Ok(ScaleOutcome {
                    decision: sent.verdict.decision,
                    old: sent.old,
                    new: current,
                    dry_run,
                    raw: sent.raw,
                    steps: sent.verdict.steps,
                    decided_at: sent.at,
                });
            }
            if let Some(last) = history.last_set
                && last != current
            {
                tracing::info!(target = %api.describe(), was = last, now = current, "scale changed by someone else since we set it; the rate policies start afresh");
                history.changed_elsewhere(current);
            }
            let now = (self.clock)();
            let (raw, verdict) = intent
                .desired
                .decide(current, &intent.policy, &history, now)?;
            history.decided(&verdict, now);
            let outcome = |verdict: &Verdict| ScaleOutcome {
                decision: verdict.decision,
                old: current,
                new: verdict.new,
                dry_run,
                raw,
                steps: verdict.steps.clone(),
                decided_at: now,
            };
            match verdict.decision {
                Decision::Increased | Decision::Decreased => {}
                _ => {
                    history.last_set = Some(current);
                    return Ok(outcome(&verdict));
                }
            }
            if !gate.may_write() {
                // Leadership ended since the read: decided, never written.
                return Ok(standby(current, raw, verdict, now));
            }
            let reason = reason(&intent, raw, current, &verdict);
            if let Clearance::Refused { hpa, fresh } = self
                .guards
                .check(target, &cluster.client, namespace, now)
                .await
            {
                let uid = scale.metadata.uid.as_deref();
                return Err(api
                    .refuse(hpa, fresh, dry_run, uid, (current, verdict.new))
                    .await);
            }
            if dry_run {
                tracing::info!(target = %api.describe(), old = current, new = verdict.new, %reason, "dry run: would scale");
                history.applied(&verdict, current, now);
                history.last_set = Some(current);
                return Ok(outcome(&verdict));
            }
            if !gate.may_write() {
                return Ok(standby(current, raw, verdict, now));
            }
            let uid = scale.metadata.uid.clone();
            last_change = Some((verdict.new, reason.clone()));
            match api.replace(scale, verdict.new).await {
                Ok(_) => {
                    history.applied(&verdict, current, now);
                    tracing::info!(target = %api.describe(), old = current, new = verdict.new, %reason, "scaled");
                    api.event(
                        uid.as_deref(),
                        true,
                        &format!("New size: {}; reason: {reason}", verdict.new),
                    )
                    .await;
                    return Ok(outcome(&verdict));
                }
                Err(error) => match classify(&error) {
                    Failure::Conflict => {
                        // Changed between our read and our write: read again, decide again.
                        last_error = error.to_string();
                        continue;
                    }
                    Failure::Retry => {
                        last_error = error.to_string();
                        unconfirmed = Some(Unconfirmed {
                            old: current,
                            verdict,
                            raw,
                            at: now,
                            reason,
                            uid,
                        });
                        continue;
                    }
                    Failure::Fatal(fatal) => {
                        let message = error.to_string();
                        api.event(
                            uid.as_deref(),
                            false,
                            &format!(
                                "New size: {}; reason: {reason}; error: {message}",
                                verdict.new
                            ),
                        )
                        .await;
                        return Err(fatal(api.describe(), message));
                    }
                },
            }
        }
        let gave_up = format!("giving up after {MAX_ATTEMPTS} attempts: {last_error}");
        let message = match last_change {
            Some((new, reason)) => format!("New size: {new}; reason: {reason}; error: {gave_up}"),
            None => gave_up,
        };
        api.event(None, false, &message).await;
        Err(ScaleError::Api(format!(
            "{}: {MAX_ATTEMPTS} attempts failed, last: {last_error}",
            api.describe()
        )))
    }
}

impl Scaler for KubernetesScaler {
    fn scale(&self, intent: ScaleIntent) -> ScaleFuture {
        Box::pin(Arc::clone(&self.inner).run(intent))
    }

    fn has_cluster(&self, id: &str) -> bool {
        KubernetesScaler::has_cluster(self, id)
    }
}

/// The outcome of a decision made and not carried out because this replica does not lead.
fn standby(current: i64, raw: Option<f64>, verdict: Verdict, now: i64) -> ScaleOutcome {
    ScaleOutcome {
        decision: Decision::Standby,
        old: current,
        new: verdict.new,
        dry_run: false,
        raw,
        steps: verdict.steps,
        decided_at: now,
    }
}

/// A write answered with a retryable error: the API may have applied it all the same.
struct Unconfirmed {
    old: i64,
    verdict: Verdict,
    raw: Option<f64>,
    /// When it was decided (its cooldown starts then, if it was applied), processor clock.
    at: i64,
    reason: String,
    uid: Option<String>,
}

/// What to do after a failed call.
enum Failure {
    /// 409: re-read and decide again.
    Conflict,
    /// 5xx, 429, timeouts, connection errors: try again after a pause.
    Retry,
    /// 401, 403, 404 and anything else the server refused: give up now.
    Fatal(fn(String, String) -> ScaleError),
}

fn classify(error: &kube::Error) -> Failure {
    match error {
        kube::Error::Api(status) => match status.code {
            409 => Failure::Conflict,
            429 | 500..=599 => Failure::Retry,
            404 => Failure::Fatal(|target, _| ScaleError::NotFound { target }),
            401 | 403 => Failure::Fatal(|target, message| {
                ScaleError::Forbidden(format!("{target}: {message}"))
            }),
            _ => Failure::Fatal(|target, message| ScaleError::Api(format!("{target}: {message}"))),
        },
        _ => Failure::Retry,
    }
}

/// The `/scale` calls for one target.
struct ScaleApi<'a> {
    client: &'a kube::Client,
    namespace: &'a str,
    kind: Kind,
    name: &'a str,
    /// HA: Events are posted only while this replica may write.
    gate: &'a Gate,
}

macro_rules! per_kind {
    ($self:expr, $api:ident => $body:expr) => {
        match $self.kind {
            Kind::Deployments => {
                let $api: Api<Deployment> = Api::namespaced($self.client.clone(), $self.namespace);
                $body
            }
            Kind::StatefulSets => {
                let $api: Api<StatefulSet> = Api::namespaced($self.client.clone(), $self.namespace);
                $body
            }
            Kind::ReplicaSets => {
                let $api: Api<ReplicaSet> = Api::namespaced($self.client.clone(), $self.namespace);
                $body
            }
            Kind::ReplicationControllers => {
                let $api: Api<ReplicationController> =
                    Api::namespaced($self.client.clone(), $self.namespace);
                $body
            }
        }
    };
}

impl ScaleApi<'_> {
    fn describe(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.kind.resource(), self.name)
    }

    async fn get(&self) -> kube::Result<Scale> {
        per_kind!(self, api => api.get_scale(self.name).await)
    }

    /// PUTs `scale` (with the resourceVersion it was read with) set to `replicas`.
    async fn replace(&self, mut scale: Scale, replicas: i64) -> kube::Result<Scale> {
        let replicas = i32::try_from(replicas).unwrap_or(i32::MAX);
        scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        scale.status = None;
        per_kind!(self, api => api.replace_scale(self.name, &PostParams::default(), &scale).await)
    }

    /// The error for a write refused because HPA `hpa` also scales the target; when a check
    /// just found it (`fresh`, at most once a minute) it is logged as a warning and, unless in
    /// dry run, posted as a `FailedRescale` Event on the target.
    async fn refuse(
        &self,
        hpa: String,
        fresh: bool,
        dry_run: bool,
        uid: Option<&str>,
        (current, wanted): (i64, i64),
    ) -> ScaleError {
        let message = conflict::refusal_message(&hpa, self.kind, self.name);
        if !fresh {
            tracing::debug!(target = %self.describe(), %hpa, dry_run, "{message}");
        } else if dry_run {
            tracing::warn!(target = %self.describe(), %hpa, "dry run: {message}");
        } else {
            tracing::warn!(target = %self.describe(), %hpa, "{message}");
            self.event(uid, false, &message).await;
        }
        ScaleError::Conflict {
            target: self.describe(),
            hpa,
            current,
            wanted,
        }
    }

    /// Posts a `SuccessfulRescale` or `FailedRescale` Event on the target (with its uid when
    /// known, so `kubectl describe` lists it); failures to post are logged, never fatal.
    async fn event(&self, uid: Option<&str>, success: bool, message: &str) {
        if !self.gate.may_write() {
            tracing::debug!(target = %self.describe(), %message, "not the leader: no event posted");
            return;
        }
        let (api_version, kind) = match self.kind {
            Kind::Deployments => ("apps/v1", "Deployment"),
            Kind::StatefulSets => ("apps/v1", "StatefulSet"),
            Kind::ReplicaSets => ("apps/v1", "ReplicaSet"),
            Kind::ReplicationControllers => ("v1", "ReplicationController"),
        };
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", self.name)),
                namespace: Some(self.namespace.to_owned()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(api_version.to_owned()),
                kind: Some(kind.to_owned()),
                name: Some(self.name.to_owned()),
                namespace: Some(self.namespace.to_owned()),
                uid: uid.map(str::to_owned),
                ..Default::default()
            },
            reason: Some(
                if success {
                    "SuccessfulRescale"
                } else {
                    "FailedRescale"
                }
                .to_owned(),
            ),
            message: Some(message.to_owned()),
            type_: Some(if success { "Normal" } else { "Warning" }.to_owned()),
            source: Some(EventSource {
                component: Some("autoscaler-processor".to_owned()),
                host: None,
            }),
            reporting_component: Some("autoscaler-processor".to_owned()),
            reporting_instance: Some(cluster::user_agent()),
            action: Some("Scale".to_owned()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Default::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), self.namespace);
        if let Err(error) = events.create(&PostParams::default(), &event).await {
            tracing::warn!(target = %self.describe(), %error, "cannot post the rescale event");
        }
    }
}

/// Why a change is made, for its log line and its Event (`SuccessfulRescale`, or
/// `FailedRescale` when the write failed, as HPA's `New size: N; reason: …; error: …`): who
/// asked, the raw count, the rules.
fn reason(intent: &ScaleIntent, raw: Option<f64>, current: i64, verdict: &Verdict) -> String {
    let asked = match raw {
        Some(raw) => format!("asked for {raw} replicas"),
        None => "fell back (no data)".to_owned(),
    };
    let mut reason = format!(
        "task {} node {} {asked}, current {current}, new {}; rules: {}",
        intent.task,
        intent.node,
        verdict.new,
        decision::describe_steps(&verdict.steps)
    );
    if verdict.new < current && !intent.gone.is_empty() {
        reason.push_str(&format!(
            "; the total fell after series stopped reporting: {}",
            intent.gone.join(" ")
        ));
    }
    reason
}

fn describe(target: &Target) -> String {
    format!(
        "{}/{}/{}",
        if target.namespace.is_empty() {
            "<own>"
        } else {
            &target.namespace
        },
        target.kind.resource(),
        target.name
    )
}
