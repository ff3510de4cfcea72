//! `k8sAutoscale()`: on every point, evaluates the `replicas` lambda and asks the scaler for
//! that count (an [`Effect::Scale`] carrying a [`ScaleIntent`]); the scaler decides
//! ([`crate::scaler::decision`]) and changes the target. Its answer comes back through
//! [`Autoscale::scaled`]: a change becomes a point with `old` and `new` and the
//! namespace/kind/resource tags, as Kapacitor emits; cooldown drops and errors are counted;
//! every answer, and every failure, becomes a decision [`Record`] ([`Effect::Decision`]).
//!
//! `.fallbackAfter()`: a target whose points stop for that long gets one fallback intent
//! (hold, or `.fallbackReplicas()`), from [`Autoscale::tick`]; its next point ends the silence.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::rfc3339_nanos;
use crate::decisions::{Inputs, Outcome, Record, RecordTarget};
use crate::scaler::{Decision, Desired, Policy, ScaleError, ScaleIntent, ScaleOutcome, Target};
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
    /// Intents refused because another autoscaler (an HPA) targets the same workload.
    conflicts: u64,
    /// Fallback intents sent for silent targets.
    fallbacks: u64,
    /// Last known (old, new) replicas per resource name and when the answer came (processor
    /// clock): the working cardinality, freed with the target's silence in [`Self::expire`].
    current: BTreeMap<String, (i64, i64, i64)>,
    /// Per resource name: the last point and when it arrived (processor clock), and whether
    /// the fallback for its silence was sent (`.fallbackAfter()` only).
    last_seen: BTreeMap<String, (Point, i64, bool)>,
    /// The `replicas` lambda when it reads `.currentField()` (shared with the scaler's calls).
    replicas_with_current: Option<Arc<Lambda>>,
}

/// Which node asks: for intents and records.
pub struct Asker<'a> {
    pub task: &'a str,
    pub node_name: &'a str,
    pub node: usize,
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
            conflicts: 0,
            fallbacks: 0,
            current: BTreeMap::new(),
            last_seen: BTreeMap::new(),
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

    /// Kapacitor's node-specific counters (`errors` are the node's), and ours: `conflicts`
    /// (refused because an HPA targets the workload) and `fallbacks` (silent targets).
    pub fn specific(&self, errors: u64) -> Vec<(&'static str, u64)> {
        vec![
            ("conflicts", self.conflicts),
            ("cooldown_drops", self.cooldown_drops),
            ("decrease_events", self.decrease_events),
            ("errors", errors),
            ("fallbacks", self.fallbacks),
            ("increase_events", self.increase_events),
        ]
    }

    /// The policy every intent of this node carries.
    fn policy(&self) -> Policy {
        Policy {
            min: self.spec.min,
            max: self.spec.max,
            increase_cooldown: self.spec.increase_cooldown,
            decrease_cooldown: self.spec.decrease_cooldown,
            dry_run: self.dry_run,
            behavior: self.spec.behavior.clone(),
        }
    }

    /// The request to the scaler for target `name`, from a point of `point_time_ns`.
    fn intent(
        &self,
        asker: &Asker<'_>,
        name: String,
        desired: Desired,
        point: &Point,
        point_time_ns: i64,
    ) -> ScaleIntent {
        let gone = point.provenance.as_ref().map_or_else(Vec::new, |p| {
            p.gone.iter().map(|(series, _)| series.key()).collect()
        });
        ScaleIntent {
            target: self.target(name),
            desired,
            policy: self.policy(),
            point_time_ns,
            task: asker.task.to_owned(),
            node: asker.node_name.to_owned(),
            gone,
        }
    }

    fn target(&self, name: String) -> Target {
        Target {
            cluster: self.spec.cluster.clone(),
            namespace: self.spec.namespace.clone(),
            kind: self.spec.kind,
            name,
        }
    }

    /// Sends the fallback for each target silent for `.fallbackAfter()` at `now` (once per
    /// silence), as node `asker`.
    pub fn tick(&mut self, asker: &Asker<'_>, now: i64, effects: &mut Vec<Effect>) {
        let Some(fallback) = self.spec.fallback else {
            return;
        };
        let after = i64::try_from(fallback.after.as_nanos()).unwrap_or(i64::MAX);
        let mut due = Vec::new();
        for (name, (point, arrived, sent)) in &mut self.last_seen {
            if !*sent && now.saturating_sub(*arrived) >= after {
                *sent = true;
                due.push((name.clone(), point.clone(), *arrived));
            }
        }
        for (name, point, arrived) in due {
            self.fallbacks += 1;
            let silent = std::time::Duration::from_nanos(u64::try_from(now - arrived).unwrap_or(0));
            match fallback.replicas {
                Some(n) => {
                    tracing::warn!(task = %asker.task, node = %asker.node_name, target = %name, ?silent, replicas = n, "no data for the target: falling back")
                }
                None => {
                    tracing::warn!(task = %asker.task, node = %asker.node_name, target = %name, ?silent, "no data for the target: holding its replicas")
                }
            }
            // The fallback is decided now: its point is as old as the silence, so the
            // staleness check must not drop it.
            let intent = self.intent(
                asker,
                name,
                Desired::Fallback(fallback.replicas),
                &point,
                now,
            );
            effects.push(Effect::Scale {
                node: asker.node,
                intent: Box::new(intent),
                point,
            });
        }
    }

    /// Asks the scaler for the count the `replicas` lambda gives on `point`, arrived at `now`
    /// (processor clock). An error (no resource name, a lambda error, a NaN or negative count)
    /// drops the point.
    pub fn point(
        &mut self,
        asker: &Asker<'_>,
        point: Point,
        now: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let name = resource_name(&self.spec, &point)
            .ok_or_else(|| "could not determine the name of the resource".to_string())?;
        let desired = match &self.replicas_with_current {
            None => Desired::Raw(
                self.spec
                    .replicas
                    .eval_number(&point)
                    .map_err(|e| e.to_string())
                    .and_then(crate::scaler::decision::check_raw)?,
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
                    lambda.eval_number(&scope).map_err(|e| e.to_string())
                }))
            }
        };
        if self.spec.fallback.is_some() {
            self.last_seen
                .insert(name.clone(), (point.clone(), now, false));
        }
        let intent = self.intent(asker, name, desired, &point, point.time);
        effects.push(Effect::Scale {
            node: asker.node,
            intent: Box::new(intent),
            point,
        });
        Ok(())
    }

    /// Frees what is kept for targets silent for `expiry` ns at `now`.
    pub fn expire(&mut self, now: i64, expiry: i64) {
        self.last_seen
            .retain(|_, (_, arrived, _)| now.saturating_sub(*arrived) < expiry);
        self.current
            .retain(|_, (_, _, answered)| now.saturating_sub(*answered) < expiry);
    }

    /// The record of an evaluation of `point` for `target`, before the scaler's part.
    fn record(&self, asker: &Asker<'_>, target: &Target, point: &Point, now: i64) -> Record {
        let fields = point
            .fields
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Field::Float(x) => serde_json::Number::from_f64(*x)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number),
                    Field::Int(i) => serde_json::Value::from(*i),
                    Field::Bool(b) => serde_json::Value::Bool(*b),
                    Field::Str(s) => serde_json::Value::from(&**s),
                };
                (name.to_string(), value)
            })
            .collect();
        Record {
            time: rfc3339_nanos(now),
            time_ns: now,
            task: asker.task.to_owned(),
            node: asker.node_name.to_owned(),
            target: RecordTarget::from(target),
            inputs: Inputs {
                fields,
                time: rfc3339_nanos(point.time),
                age_seconds: now.saturating_sub(point.time) as f64 / 1e9,
                series_count: point.provenance.as_ref().map_or(0, |p| p.count),
                series: contributors(point.provenance.as_deref().map(|p| &p.series[..])),
                expired: contributors(point.provenance.as_deref().map(|p| &p.gone[..])),
            },
            current: None,
            raw: None,
            desired: None,
            rules: Vec::new(),
            outcome: Outcome::Error,
            delay_seconds: None,
            error: None,
            repeated: 1,
        }
    }

    /// Takes the scaler's failure for `point`: counted, and recorded.
    pub fn failed(
        &mut self,
        asker: &Asker<'_>,
        point: &Point,
        error: &ScaleError,
        now: i64,
        effects: &mut Vec<Effect>,
    ) {
        if matches!(error, ScaleError::Conflict { .. }) {
            self.conflicts += 1;
        }
        let name = resource_name(&self.spec, point).unwrap_or_default();
        let mut record = self.record(asker, &self.target(name), point, now);
        record.failed(error);
        effects.push(Effect::Decision(Box::new(record)));
    }

    /// Takes the scaler's answer for `point`: counts and records it (an [`Effect::Decision`]),
    /// and for a change returns the point to emit (`old`, `new`, the group's tags and the
    /// namespace/kind/resource tags).
    /// `now`: the processor clock when the answer is taken.
    pub fn scaled(
        &mut self,
        asker: &Asker<'_>,
        point: &Point,
        outcome: &ScaleOutcome,
        now: i64,
        effects: &mut Vec<Effect>,
    ) -> Option<Point> {
        let name = resource_name(&self.spec, point).unwrap_or_default();
        let mut record = self.record(asker, &self.target(name.clone()), point, outcome.decided_at);
        record.decided(outcome);
        // From the newest contributing sample (the point's own time for a single series).
        let newest = point
            .provenance
            .as_ref()
            .and_then(|p| p.newest())
            .unwrap_or(point.time);
        record.delay_seconds = (outcome.decision != Decision::Stale)
            .then(|| outcome.decided_at.saturating_sub(newest) as f64 / 1e9);
        effects.push(Effect::Decision(Box::new(record)));
        if !matches!(outcome.decision, Decision::Stale | Decision::Standby) {
            self.current
                .insert(name.clone(), (outcome.old, outcome.new, now));
        }
        match outcome.decision {
            Decision::Increased => self.increase_events += 1,
            Decision::Decreased => self.decrease_events += 1,
            Decision::CooldownDrop => {
                self.cooldown_drops += 1;
                return None;
            }
            Decision::Unchanged | Decision::Stale | Decision::Held | Decision::Standby => {
                return None;
            }
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
            provenance: None,
        })
    }
}

/// Series and their last times, as records name them.
fn contributors(series: Option<&[(Arc<Series>, i64)]>) -> Vec<crate::decisions::Contributor> {
    series
        .unwrap_or_default()
        .iter()
        .map(|(series, last)| crate::decisions::Contributor {
            series: series.key(),
            last: rfc3339_nanos(*last),
        })
        .collect()
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
