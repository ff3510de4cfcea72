//! The resource types the stand-in serves: the static table behind discovery, routing and storage.

/// Verbs of a full read/write resource, as the API server lists them in discovery.
const FULL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of the `/scale` and `/status` subresources.
const SUBRESOURCE_VERBS: &[&str] = &["get", "patch", "update"];

/// One served resource type (a row of an `APIResourceList`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group, empty for the core (legacy) group.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Plural lower-case name used in URLs.
    pub plural: &'static str,
    /// Singular lower-case name.
    pub singular: &'static str,
    /// Kind of one object.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`deploy`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Whether the resource has a `/scale` subresource (workloads).
    pub scalable: bool,
    /// Whether the resource has a `/status` subresource.
    pub has_status: bool,
    /// Whether `metadata.generation` is maintained (bumped on spec changes).
    pub tracks_generation: bool,
}

impl ResourceDef {
    /// `apps/v1`, or `v1` for the core group.
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group-qualified resource as the API server prints it in messages: `deployments.apps`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Full verbs for the main resource.
    pub fn verbs(&self) -> &'static [&'static str] {
        FULL_VERBS
    }

    /// Verbs for subresources.
    pub fn subresource_verbs(&self) -> &'static [&'static str] {
        SUBRESOURCE_VERBS
    }

    /// The workload kind for scalable resources.
    pub fn workload_kind(&self) -> Option<WorkloadKind> {
        WorkloadKind::ALL.into_iter().find(|k| k.def() == self)
    }
}

pub const DEPLOYMENTS: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    plural: "deployments",
    singular: "deployment",
    kind: "Deployment",
    namespaced: true,
    short_names: &["deploy"],
    categories: &["all"],
    scalable: true,
    has_status: true,
    tracks_generation: true,
};

pub const STATEFULSETS: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    plural: "statefulsets",
    singular: "statefulset",
    kind: "StatefulSet",
    namespaced: true,
    short_names: &["sts"],
    categories: &["all"],
    scalable: true,
    has_status: true,
    tracks_generation: true,
};

pub const REPLICASETS: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    plural: "replicasets",
    singular: "replicaset",
    kind: "ReplicaSet",
    namespaced: true,
    short_names: &["rs"],
    categories: &["all"],
    scalable: true,
    has_status: true,
    tracks_generation: true,
};

pub const REPLICATIONCONTROLLERS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "replicationcontrollers",
    singular: "replicationcontroller",
    kind: "ReplicationController",
    namespaced: true,
    short_names: &["rc"],
    categories: &["all"],
    scalable: true,
    has_status: true,
    tracks_generation: true,
};

pub const CORE_EVENTS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    scalable: false,
    has_status: false,
    tracks_generation: false,
};

/// Core v1 Pods: stored, listed, watched and printed; nothing runs them (tests and the lab
/// write their IP and Ready condition, see `Handle::apply_pod`).
pub const PODS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    namespaced: true,
    short_names: &["po"],
    categories: &["all"],
    scalable: false,
    has_status: true,
    tracks_generation: false,
};

pub const LEASES: ResourceDef = ResourceDef {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    singular: "lease",
    kind: "Lease",
    namespaced: true,
    short_names: &[],
    categories: &[],
    scalable: false,
    has_status: false,
    tracks_generation: false,
};

/// `autoscaling/v2` HorizontalPodAutoscalers: stored, listed and printed, never acted on (no
/// controller scales their targets); the processor refuses to scale a target one of them names.
pub const HORIZONTALPODAUTOSCALERS: ResourceDef = ResourceDef {
    group: "autoscaling",
    version: "v2",
    plural: "horizontalpodautoscalers",
    singular: "horizontalpodautoscaler",
    kind: "HorizontalPodAutoscaler",
    namespaced: true,
    short_names: &["hpa"],
    categories: &["all"],
    scalable: false,
    has_status: true,
    tracks_generation: false,
};

pub const EVENTS_V1: ResourceDef = ResourceDef {
    group: "events.k8s.io",
    version: "v1",
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    scalable: false,
    has_status: false,
    tracks_generation: false,
};

/// Every served resource, in discovery order.
pub const ALL: &[ResourceDef] = &[
    CORE_EVENTS,
    PODS,
    REPLICATIONCONTROLLERS,
    DEPLOYMENTS,
    REPLICASETS,
    STATEFULSETS,
    HORIZONTALPODAUTOSCALERS,
    LEASES,
    EVENTS_V1,
];

/// Finds a resource by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    ALL.iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
}

/// The API groups other than core, each with its single served version, in discovery order.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for d in ALL {
        if !d.group.is_empty() && !out.iter().any(|(g, _)| *g == d.group) {
            out.push((d.group, d.version));
        }
    }
    out
}

/// The workload kinds that have a `/scale` subresource.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` ReplicaSet.
    ReplicaSet,
    /// core `v1` ReplicationController.
    ReplicationController,
}

impl WorkloadKind {
    /// All kinds.
    pub const ALL: [WorkloadKind; 4] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::ReplicationController,
    ];

    /// The resource type of this kind.
    pub fn def(self) -> &'static ResourceDef {
        match self {
            WorkloadKind::Deployment => &DEPLOYMENTS,
            WorkloadKind::StatefulSet => &STATEFULSETS,
            WorkloadKind::ReplicaSet => &REPLICASETS,
            WorkloadKind::ReplicationController => &REPLICATIONCONTROLLERS,
        }
    }

    /// Parses a kind as kubectl would accept it: kind, plural, singular or short name, any case.
    pub fn parse(text: &str) -> Option<WorkloadKind> {
        let lower = text.to_ascii_lowercase();
        WorkloadKind::ALL.into_iter().find(|k| {
            let d = k.def();
            lower == d.plural || lower == d.singular || d.short_names.contains(&lower.as_str())
        })
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.def().kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_carry_the_group_except_for_core() {
        assert_eq!(DEPLOYMENTS.qualified(), "deployments.apps");
        assert_eq!(REPLICATIONCONTROLLERS.qualified(), "replicationcontrollers");
        assert_eq!(LEASES.group_version(), "coordination.k8s.io/v1");
        assert_eq!(CORE_EVENTS.group_version(), "v1");
    }

    #[test]
    fn workload_kinds_parse_from_every_kubectl_spelling() {
        assert_eq!(
            WorkloadKind::parse("deploy"),
            Some(WorkloadKind::Deployment)
        );
        assert_eq!(
            WorkloadKind::parse("Deployment"),
            Some(WorkloadKind::Deployment)
        );
        assert_eq!(
            WorkloadKind::parse("statefulsets"),
            Some(WorkloadKind::StatefulSet)
        );
        assert_eq!(WorkloadKind::parse("rs"), Some(WorkloadKind::ReplicaSet));
        assert_eq!(
            WorkloadKind::parse("rc"),
            Some(WorkloadKind::ReplicationController)
        );
        assert_eq!(WorkloadKind::parse("pods"), None);
    }

    #[test]
    fn groups_are_listed_once_each() {
        assert_eq!(
            groups(),
            vec![
                ("apps", "v1"),
                ("autoscaling", "v2"),
                ("coordination.k8s.io", "v1"),
                ("events.k8s.io", "v1")
            ]
        );
    }

    #[test]
    fn find_matches_group_version_and_plural() {
        assert_eq!(find("apps", "v1", "deployments"), Some(&DEPLOYMENTS));
        assert_eq!(find("", "v1", "events"), Some(&CORE_EVENTS));
        assert_eq!(find("extensions", "v1beta1", "deployments"), None);
        assert_eq!(
            find("autoscaling", "v2", "horizontalpodautoscalers"),
            Some(&HORIZONTALPODAUTOSCALERS)
        );
        assert_eq!(find("autoscaling", "v1", "horizontalpodautoscalers"), None);
    }
}
