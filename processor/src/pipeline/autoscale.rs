//! `k8sAutoscale()`: on every point, evaluates the `replicas` lambda and asks the scaler for
//! that count (an [`Effect::Scale`] carrying a [`ScaleIntent`]); the scaler decides
//! ([`crate::scaler::decision`]) and changes the target. Its answer comes back through
//! [`Autoscale::scaled`]: a change becomes a point with `old` and `new` and the
//! namespace/kind/resource tags, as Kapacitor emits; cooldown drops and errors are counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::scaler::{Decision, Desired, Policy, ScaleIntent, ScaleOutcome, Target};
use crate::tick::lambda::Lambda;
use crate::tick::nodes::K8sAutoscaleSpec;

use super::Effect;
use super::point::{Field, Point, Series};

/// One k8sAutoscale node's state.
pub struct Autoscale {
    spec: K8sAutoscaleSpec,
    dry_run: bool,
    increase_events: u64,
    decrease_events: u64,
    cooldown_drops: u64,
    /// Last known (old, new) replicas per resource name (working cardinality).
    current: BTreeMap<String, (i64, i64)>,
    /// The `replicas` lambda when it reads `.currentField()` (shared with the scaler's calls).
    replicas_with_current: Option<Arc<Lambda>>,
}

impl Autoscale {
    /// The node for `spec`; `dry_run`: the config's dry run, on top of `.dryRun()`.
    pub fn new(spec: &K8sAutoscaleSpec, dry_run: bool) -> Autoscale {
        Autoscale {
            dry_run: spec.dry_run || dry_run,
            spec: spec.clone(),
            increase_events: 0,
            decrease_events: 0,
            cooldown_drops: 0,
            current: BTreeMap::new(),
            replicas_with_current: (!spec.current_field.is_empty())
                .then(|| Arc::new(spec.replicas.clone())),
        }
    }

    /// True when the node writes to a cluster (not a dry run): it needs a real scaler.
    pub fn needs_scaler(&self) -> bool {
        !self.dry_run
    }

    /// Targets with a known count.
    pub fn cardinality(&self) -> usize {
        self.current.len()
    }

    /// Kapacitor's node-specific counters; `errors` are the node's.
    pub fn specific(&self, errors: u64) -> Vec<(&'static str, u64)> {
        vec![
            ("cooldown_drops", self.cooldown_drops),
            ("decrease_events", self.decrease_events),
            ("errors", errors),
            ("increase_events", self.increase_events),
        ]
    }

    /// Asks the scaler for the count the `replicas` lambda gives on `point`, as node `node`
    /// (`node_name`) of `task`. An error (no resource name, a lambda error) drops the point.
    pub fn point(
        &mut self,
        task: &str,
        node_name: &str,
        node: usize,
        point: Point,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let name = resource_name(&self.spec, &point)
            .ok_or_else(|| "could not determine the name of the resource".to_string())?;
        let desired = match &self.replicas_with_current {
            None => Desired::Fixed(
                self.spec
                    .replicas
                    .eval_int(&point)
                    .map_err(|e| e.to_string())?,
            ),
            // `.currentField()`: the lambda runs once the scaler has read the current replicas,
            // as Kapacitor evaluates it after its GET of the scale.
            Some(lambda) => {
                let (lambda, field, point) = (
                    Arc::clone(lambda),
                    self.spec.current_field.clone(),
                    point.clone(),
                );
                Desired::FromCurrent(Arc::new(move |current| {
                    let extra = [(field.as_str(), crate::point::FieldValue::Integer(current))];
                    let scope = crate::tick::WithFields {
                        base: &point,
                        extra: &extra,
                    };
                    lambda.eval_int(&scope).map_err(|e| e.to_string())
                }))
            }
        };
        let intent = ScaleIntent {
            target: Target {
                cluster: self.spec.cluster.clone(),
                namespace: self.spec.namespace.clone(),
                kind: self.spec.kind,
                name,
            },
            desired,
            policy: Policy {
                min: self.spec.min,
                max: self.spec.max,
                increase_cooldown: self.spec.increase_cooldown,
                decrease_cooldown: self.spec.decrease_cooldown,
                dry_run: self.dry_run,
            },
            point_time_ns: point.time,
            task: task.to_owned(),
            node: node_name.to_owned(),
        };
        effects.push(Effect::Scale {
            node,
            intent: Box::new(intent),
            point,
        });
        Ok(())
    }

    /// Takes the scaler's answer for `point`: counts it, and for a change returns the point
    /// to emit (`old`, `new`, the group's tags and the namespace/kind/resource tags).
    pub fn scaled(&mut self, point: &Point, outcome: &ScaleOutcome) -> Option<Point> {
        let name = resource_name(&self.spec, point).unwrap_or_default();
        self.current
            .insert(name.clone(), (outcome.old, outcome.new));
        match outcome.decision {
            Decision::Increased => self.increase_events += 1,
            Decision::Decreased => self.decrease_events += 1,
            Decision::CooldownDrop => {
                self.cooldown_drops += 1;
                return None;
            }
            Decision::Unchanged | Decision::Stale => return None,
        }
        let mut tags = point.group.dims.clone();
        let namespace = if self.spec.namespace.is_empty() {
            "default".to_string()
        } else {
            self.spec.namespace.clone()
        };
        for (tag, value) in [
            (&self.spec.namespace_tag, namespace),
            (&self.spec.kind_tag, self.spec.kind.resource().to_string()),
            (&self.spec.resource_tag, name),
        ] {
            if !tag.is_empty() {
                tags.push((Arc::from(tag.as_str()), Arc::from(value.as_str())));
            }
        }
        Some(Point {
            series: Arc::new(Series::new(Arc::clone(&point.series.measurement), tags)),
            group: Arc::clone(&point.group),
            fields: vec![
                (Arc::from("old"), Field::Int(outcome.old)),
                (Arc::from("new"), Field::Int(outcome.new)),
            ],
            time: point.time,
        })
    }
}

/// The target's name: `.resourceName()`, or the point's `.resourceNameTag()` tag.
fn resource_name(spec: &K8sAutoscaleSpec, point: &Point) -> Option<String> {
    match (&spec.resource_name, &spec.resource_name_tag) {
        (Some(name), _) if !name.is_empty() => Some(name.clone()),
        (_, Some(tag)) => point
            .series
            .tag(tag)
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}
