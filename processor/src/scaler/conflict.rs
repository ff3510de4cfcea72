//! Refusing to fight: a target that a HorizontalPodAutoscaler in its namespace also scales
//! (KEDA makes one per ScaledObject) is never written by this processor. Two autoscalers on
//! one target undo each other's changes without end; the operator must remove one of them.
//!
//! Before the first write to a target, and then at most once per [`CHECK_INTERVAL`] on the
//! processor clock, the scaler lists the `autoscaling/v2` HPAs of the target's namespace (one
//! `list`, the only permission this needs) and looks for one whose `spec.scaleTargetRef` names
//! the target ([`names_target`]). Between checks the last answer holds, so the API sees at most
//! one list per target per interval, however often points arrive. A check that fails (a Role
//! without `list` on `horizontalpodautoscalers`, a 5xx, a timeout) is logged with what is
//! missing and changes nothing the guard knew: a target never found in conflict is scaled as
//! if there were no check; the next check is made when the interval has passed again.
//!
//! The pure part ([`Guard`], [`names_target`], [`find_conflict`]) takes the time as an argument;
//! [`Guards::check`] does the listing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::{CrossVersionObjectReference, HorizontalPodAutoscaler};
use kube::api::{Api, ListParams};

use super::{Kind, Target};

/// The least time between two checks of one target (processor clock).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// What the guard knows about one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// When the last check was made, successful or not (processor clock, ns); `None` before
    /// the first.
    pub checked_at: Option<i64>,
    /// The HPA (`namespace/name`) the last successful check found naming the target.
    pub conflict: Option<String>,
}

impl Guard {
    /// Whether a check is due at `now`: before the first, then once [`CHECK_INTERVAL`] has
    /// passed since the last (a clock that went back makes none due).
    pub fn is_due(&self, now: i64) -> bool {
        let interval = i64::try_from(CHECK_INTERVAL.as_nanos()).unwrap_or(i64::MAX);
        self.checked_at
            .is_none_or(|at| now.saturating_sub(at) >= interval)
    }

    /// Records a successful check at `now` that found `conflict` (or none).
    pub fn checked(&mut self, now: i64, conflict: Option<String>) {
        self.checked_at = Some(now);
        self.conflict = conflict;
    }

    /// Records a check at `now` that could not tell: what was known stays, the next check
    /// waits for the interval.
    pub fn failed(&mut self, now: i64) {
        self.checked_at = Some(now);
    }
}

/// The API group and kind a target's workload has (`apps`/`Deployment`, core `""`/
/// `ReplicationController`).
pub fn group_kind(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Deployments => ("apps", "Deployment"),
        Kind::StatefulSets => ("apps", "StatefulSet"),
        Kind::ReplicaSets => ("apps", "ReplicaSet"),
        Kind::ReplicationControllers => ("", "ReplicationController"),
    }
}

/// Whether an HPA's `scaleTargetRef` names the workload `kind`/`name`: the kind (as the API
/// spells it: case matters, as for the HPA controller) and the name must be equal, and when
/// an `apiVersion` is given its group must be the workload's (`apps/v1` or `apps/v1beta1` for
/// `apps`, `v1` for the core group). The HPA is assumed to be in the target's namespace.
pub fn names_target(reference: &CrossVersionObjectReference, kind: Kind, name: &str) -> bool {
    let (group, kind_name) = group_kind(kind);
    if reference.kind != kind_name || reference.name != name {
        return false;
    }
    match reference.api_version.as_deref() {
        None | Some("") => true,
        Some(api_version) => {
            let referenced_group = api_version
                .rsplit_once('/')
                .map_or("", |(group, _version)| group);
            referenced_group == group
        }
    }
}

/// The first HPA (by name) of `hpas` in `namespace` (the workload's; an HPA scales only in its
/// own) whose `scaleTargetRef` names the workload, as `namespace/name`. An HPA that does not
/// say its namespace is taken to be in `namespace` (a namespaced list's items do).
pub fn find_conflict(
    hpas: &[HorizontalPodAutoscaler],
    namespace: &str,
    kind: Kind,
    name: &str,
) -> Option<String> {
    hpas.iter()
        .filter(|hpa| {
            hpa.metadata
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == namespace)
        })
        .filter(|hpa| names_target(&hpa.spec.scale_target_ref, kind, name))
        .map(|hpa| {
            format!(
                "{}/{}",
                hpa.metadata.namespace.as_deref().unwrap_or(namespace),
                hpa.metadata.name.as_deref().unwrap_or("")
            )
        })
        .min()
}

/// The Event's and the log's words for a refusal: names the HPA and the target.
pub fn refusal_message(hpa: &str, kind: Kind, name: &str) -> String {
    format!(
        "not scaling: HorizontalPodAutoscaler {hpa} also targets {}/{name}; remove it or this task",
        kind.resource()
    )
}

/// What the guard says about writing to a target now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clearance {
    /// No HPA is known to name the target (or no check could tell yet): write.
    Clear,
    /// HPA `hpa` (`namespace/name`) names the target: do not write. `fresh` when a list made
    /// just now found it (say so: log, Event), false when the last check's answer still holds.
    Refused { hpa: String, fresh: bool },
}

/// Every target's [`Guard`]. The caller holds the target's own lock (one call at a time per
/// target), so a check's list is never made twice for one target at once.
#[derive(Debug, Default)]
pub struct Guards {
    guards: Mutex<HashMap<Target, Guard>>,
}

impl Guards {
    fn get(&self, target: &Target) -> Guard {
        self.lock().get(target).cloned().unwrap_or_default()
    }

    fn put(&self, target: &Target, guard: Guard) {
        self.lock().insert(target.clone(), guard);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Target, Guard>> {
        self.guards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `target` (its workload in `namespace`, through `client`) may be written at
    /// `now` (processor clock, ns): lists the namespace's HPAs when a check is due, else
    /// answers what the last check found. A failed list is logged as a warning and leaves the
    /// last answer standing (none before a first successful check: the target is scaled).
    pub async fn check(
        &self,
        target: &Target,
        client: &kube::Client,
        namespace: &str,
        now: i64,
    ) -> Clearance {
        let mut guard = self.get(target);
        let mut fresh = false;
        if guard.is_due(now) {
            let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
            match hpas.list(&ListParams::default()).await {
                Ok(list) => {
                    let found = find_conflict(&list.items, namespace, target.kind, &target.name);
                    fresh = found.is_some();
                    guard.checked(now, found);
                }
                Err(error) => {
                    warn_check_failed(&error, namespace, target, guard.conflict.as_deref());
                    guard.failed(now);
                }
            }
            self.put(target, guard.clone());
        }
        match guard.conflict {
            Some(hpa) => Clearance::Refused { hpa, fresh },
            None => Clearance::Clear,
        }
    }
}

/// Says why the check failed (naming the permission a 403 lacks) and what follows: the target
/// is scaled unchecked, or stays refused for the HPA an earlier check found (`known`).
fn warn_check_failed(error: &kube::Error, namespace: &str, target: &Target, known: Option<&str>) {
    let workload = format!("{namespace}/{}/{}", target.kind.resource(), target.name);
    let retry = humantime::format_duration(CHECK_INTERVAL);
    let meanwhile = match known {
        None => "scaling without the check".to_owned(),
        Some(hpa) => format!("still refusing for HorizontalPodAutoscaler {hpa}"),
    };
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            tracing::warn!(target = %workload, %error,
                "cannot check for a HorizontalPodAutoscaler on the target: the processor's Role \
                 needs `list` on `horizontalpodautoscalers` in apiGroup `autoscaling` in namespace \
                 {namespace}; {meanwhile}, trying again in {retry}");
        }
        _ => {
            tracing::warn!(target = %workload, %error,
                "cannot check for a HorizontalPodAutoscaler on the target; {meanwhile}, trying \
                 again in {retry}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const MINUTE: i64 = 60_000_000_000;

    fn reference(api_version: Option<&str>, kind: &str, name: &str) -> CrossVersionObjectReference {
        CrossVersionObjectReference {
            api_version: api_version.map(str::to_owned),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }

    fn hpa(name: &str, target: CrossVersionObjectReference) -> HorizontalPodAutoscaler {
        HorizontalPodAutoscaler {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("shop".to_owned()),
                ..ObjectMeta::default()
            },
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: target,
                max_replicas: 5,
                ..HorizontalPodAutoscalerSpec::default()
            },
            status: None,
        }
    }

    #[test]
    fn the_first_check_is_due_at_once_then_once_a_minute() {
        let start = 1_800_000_000_000_000_000;
        let mut guard = Guard::default();
        assert!(guard.is_due(start));
        guard.checked(start, None);
        assert!(!guard.is_due(start));
        assert!(!guard.is_due(start + MINUTE - 1));
        assert!(guard.is_due(start + MINUTE));
        assert!(!guard.is_due(start - 5 * MINUTE), "a clock that went back");
        guard.checked(start + MINUTE, Some("shop/web".to_owned()));
        assert!(!guard.is_due(start + 2 * MINUTE - 1));
        assert!(guard.is_due(start + 2 * MINUTE));
    }

    #[test]
    fn a_failed_check_keeps_what_was_known_and_waits_a_minute() {
        let mut guard = Guard::default();
        guard.failed(0);
        assert_eq!(guard.conflict, None);
        assert!(!guard.is_due(MINUTE / 2));
        guard.checked(MINUTE, Some("shop/web".to_owned()));
        guard.failed(2 * MINUTE);
        assert_eq!(guard.conflict.as_deref(), Some("shop/web"));
        assert_eq!(guard.checked_at, Some(2 * MINUTE));
        assert!(!guard.is_due(3 * MINUTE - 1));
    }

    #[test]
    fn a_reference_names_the_target_by_kind_name_and_group() {
        let d = Kind::Deployments;
        assert!(names_target(
            &reference(Some("apps/v1"), "Deployment", "web"),
            d,
            "web"
        ));
        assert!(names_target(
            &reference(None, "Deployment", "web"),
            d,
            "web"
        ));
        assert!(names_target(
            &reference(Some(""), "Deployment", "web"),
            d,
            "web"
        ));
        assert!(names_target(
            &reference(Some("apps/v1beta1"), "Deployment", "web"),
            d,
            "web"
        ));
        assert!(!names_target(
            &reference(Some("apps/v1"), "Deployment", "api"),
            d,
            "web"
        ));
        assert!(!names_target(
            &reference(Some("apps/v1"), "StatefulSet", "web"),
            d,
            "web"
        ));
        assert!(!names_target(
            &reference(Some("apps/v1"), "deployment", "web"),
            d,
            "web"
        ));
        assert!(!names_target(
            &reference(Some("apps/v1"), "Deployment", "Web"),
            d,
            "web"
        ));
        assert!(
            !names_target(
                &reference(Some("extensions/v1beta1"), "Deployment", "web"),
                d,
                "web"
            ),
            "another group's Deployment"
        );
        assert!(!names_target(
            &reference(Some("v1"), "Deployment", "web"),
            d,
            "web"
        ));
        assert!(names_target(
            &reference(Some("apps/v1"), "StatefulSet", "db"),
            Kind::StatefulSets,
            "db"
        ));
        assert!(names_target(
            &reference(Some("apps/v1"), "ReplicaSet", "rs"),
            Kind::ReplicaSets,
            "rs"
        ));
        let rc = Kind::ReplicationControllers;
        assert!(names_target(
            &reference(Some("v1"), "ReplicationController", "rc"),
            rc,
            "rc"
        ));
        assert!(!names_target(
            &reference(Some("apps/v1"), "ReplicationController", "rc"),
            rc,
            "rc"
        ));
    }

    #[test]
    fn the_conflict_is_the_first_hpa_by_name_that_names_the_target() {
        let web = || reference(Some("apps/v1"), "Deployment", "web");
        let hpas = [
            hpa("other", reference(Some("apps/v1"), "Deployment", "api")),
            hpa("keda-hpa-web", web()),
            hpa("b-web", web()),
        ];
        assert_eq!(
            find_conflict(&hpas, "shop", Kind::Deployments, "web").as_deref(),
            Some("shop/b-web")
        );
        assert_eq!(
            find_conflict(&hpas, "shop", Kind::Deployments, "api").as_deref(),
            Some("shop/other")
        );
        assert_eq!(find_conflict(&hpas, "shop", Kind::Deployments, "db"), None);
        assert_eq!(
            find_conflict(&hpas, "shop", Kind::StatefulSets, "web"),
            None
        );
        assert_eq!(find_conflict(&[], "shop", Kind::Deployments, "web"), None);
        assert_eq!(
            find_conflict(&hpas, "prod", Kind::Deployments, "web"),
            None,
            "an HPA in another namespace scales another workload"
        );
        let mut unnamespaced = hpa("h", web());
        unnamespaced.metadata.namespace = None;
        assert_eq!(
            find_conflict(&[unnamespaced], "prod", Kind::Deployments, "web").as_deref(),
            Some("prod/h")
        );
    }

    #[test]
    fn the_refusal_names_the_hpa_and_the_target() {
        assert_eq!(
            refusal_message("shop/keda-hpa-web", Kind::Deployments, "web"),
            "not scaling: HorizontalPodAutoscaler shop/keda-hpa-web also targets deployments/web; \
             remove it or this task"
        );
    }
}
