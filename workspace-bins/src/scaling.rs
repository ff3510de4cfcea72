//! Scale intents as the tutorial's k8sAutoscale node makes them, for the tests that drive the
//! Kubernetes scaler directly (the processor's and the manifests' role scenario).

use std::time::Duration;

use processor::scaler::{Desired, Kind, Policy, ScaleIntent, Target};

/// An intent for `desired` replicas of the `kind` `name` in `namespace` (empty: the
/// processor's own), from a point stamped now, with `min` 1, `max` 10 and no cooldowns.
pub fn intent(namespace: &str, kind: Kind, name: &str, desired: i64) -> ScaleIntent {
    ScaleIntent {
        target: Target {
            cluster: String::new(),
            namespace: namespace.to_owned(),
            kind,
            name: name.to_owned(),
        },
        desired: Desired::Raw(desired as f64),
        policy: Policy {
            min: 1,
            max: 10,
            increase_cooldown: Duration::ZERO,
            decrease_cooldown: Duration::ZERO,
            dry_run: false,
            behavior: Default::default(),
        },
        point_time_ns: processor::clock::wall_ns(),
        task: "autoscale".to_owned(),
        node: "k8s_autoscale6".to_owned(),
        gone: Vec::new(),
    }
}
