//! HPA's scaling behaviour, as k8sAutoscale extensions: the tolerance band, stabilization
//! windows, rate policies with their select rule, and burst (Knative's panic mode). Types and
//! the pure arithmetic of each rule, as Kubernetes implements it (`horizontal.go`,
//! `replica_calculator.go`, autoscaling/v2): [`super::decision`] applies them in order.
//!
//! A node that sets none of them has `Behavior::default()`, which changes nothing: the
//! tutorial's tick decides exactly as Kapacitor's `k8sAutoscale` does.

use std::time::Duration;

/// How a rate policy measures a change (HPA's `HPAScalingPolicyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// At most `value` pods per period.
    Pods,
    /// At most `value` percent of the count at the start of the period.
    Percent,
}

impl PolicyKind {
    /// Reads `pods` or `percent` (case-insensitive, as HPA's `Pods`/`Percent`).
    pub fn from_name(name: &str) -> Option<PolicyKind> {
        match name.to_ascii_lowercase().as_str() {
            "pods" => Some(PolicyKind::Pods),
            "percent" => Some(PolicyKind::Percent),
            _ => None,
        }
    }
}

/// One rate policy: `.scaleUpPolicy('pods', 4, 15s)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub kind: PolicyKind,
    /// Pods or percent, > 0.
    pub value: i64,
    /// The window the change is measured over, > 0 (HPA: 1 s to 30 min).
    pub period: Duration,
}

/// Which of several policies wins (HPA's `selectPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Select {
    /// The policy that allows the largest change (HPA's default).
    #[default]
    Max,
    /// The policy that allows the smallest change.
    Min,
    /// No change in this direction at all.
    Disabled,
}

impl Select {
    /// Reads `max`, `min` or `disabled` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Select> {
        match name.to_ascii_lowercase().as_str() {
            "max" => Some(Select::Max),
            "min" => Some(Select::Min),
            "disabled" => Some(Select::Disabled),
            _ => None,
        }
    }
}

/// The rules of one direction (HPA's `HPAScalingRules`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Direction {
    /// HPA's `stabilizationWindowSeconds`; zero: none.
    pub stabilization: Duration,
    /// Without any, there is no rate limit in this direction.
    pub policies: Vec<RatePolicy>,
    pub select: Select,
}

/// Burst: a k8sAutoscale node fed by a short window, beside the node fed by the stable one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Act when the burst node asks for at least this many times the current count (> 1).
    pub threshold: f64,
    /// How long a burst lasts after its condition last held: no decrease meanwhile.
    pub hold: Duration,
}

/// What to do when every series feeding a target has gone silent for `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// The silence budget.
    pub after: Duration,
    /// `None`: hold the current count (and say so); `Some(n)`: set `n` replicas.
    pub replicas: Option<i64>,
}

/// Every extension of one k8sAutoscale node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Behavior {
    /// No change while `|raw / current − 1| ≤ tolerance` (HPA's ratio test); `None`: no band.
    pub tolerance: Option<f64>,
    pub up: Direction,
    pub down: Direction,
    /// This node is a burst node ([`Burst`]); `None`: a regular one.
    pub burst: Option<Burst>,
}

impl Behavior {
    /// The longest time a recommendation matters (both stabilization windows).
    pub fn recommendation_horizon(&self) -> Duration {
        self.up.stabilization.max(self.down.stabilization)
    }

    /// The longest time a scale event matters (every policy period).
    pub fn event_horizon(&self) -> Duration {
        self.up
            .policies
            .iter()
            .chain(&self.down.policies)
            .map(|p| p.period)
            .max()
            .unwrap_or_default()
    }
}

/// The count `raw` asks for at `current` replicas: `current` inside the tolerance band (HPA's
/// `|ratio − 1| ≤ tolerance`, not applied from 0 replicas), `ceil(raw)` otherwise.
pub fn proposal(raw: f64, current: i64, tolerance: Option<f64>) -> i64 {
    if let Some(tolerance) = tolerance
        && current > 0
        && (raw / current as f64 - 1.0).abs() <= tolerance
    {
        return current;
    }
    ceil(raw)
}

/// `ceil(raw)` as a replica count (saturating; the caller refuses NaN and negatives).
pub fn ceil(raw: f64) -> i64 {
    raw.ceil() as i64
}

/// The most replicas the up policies allow from `current`, given the pods added and removed
/// within each policy's period (`changes(period) -> (added, removed)`): HPA's
/// `calculateScaleUpLimitWithScalingRules`. `None`: no limit (no policy).
pub fn up_limit(
    current: i64,
    rules: &Direction,
    changes: impl Fn(Duration) -> (i64, i64),
) -> Option<i64> {
    let limit = select_limit(
        current,
        rules,
        changes,
        true,
        |start, policy| match policy.kind {
            PolicyKind::Pods => start.saturating_add(policy.value),
            PolicyKind::Percent => {
                (start as f64 * (1.0 + policy.value as f64 / 100.0)).ceil() as i64
            }
        },
    )?;
    // HPA: never below the current count because of old events.
    Some(limit.max(current))
}

/// The fewest replicas the down policies allow from `current`: HPA's
/// `calculateScaleDownLimitWithBehaviors` (percent truncates). `None`: no limit.
pub fn down_limit(
    current: i64,
    rules: &Direction,
    changes: impl Fn(Duration) -> (i64, i64),
) -> Option<i64> {
    let limit = select_limit(
        current,
        rules,
        changes,
        false,
        |start, policy| match policy.kind {
            PolicyKind::Pods => start.saturating_sub(policy.value),
            PolicyKind::Percent => (start as f64 * (1.0 - policy.value as f64 / 100.0)) as i64,
        },
    )?;
    Some(limit.min(current))
}

/// Each policy's limit from the count at the start of its period (`current` minus what was
/// added plus what was removed within it), and the one `select` picks: `Max` the largest
/// change, `Min` the smallest (for a decrease: the highest floor), `Disabled` none at all.
fn select_limit(
    current: i64,
    rules: &Direction,
    changes: impl Fn(Duration) -> (i64, i64),
    up: bool,
    limit: impl Fn(i64, &RatePolicy) -> i64,
) -> Option<i64> {
    let limits = rules.policies.iter().map(|policy| {
        let (added, removed) = changes(policy.period);
        limit(current - added + removed, policy)
    });
    match (rules.select, up) {
        (Select::Disabled, _) => Some(current),
        (Select::Max, true) | (Select::Min, false) => limits.max(),
        (Select::Max, false) | (Select::Min, true) => limits.min(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(policies: &[(PolicyKind, i64, u64)], select: Select) -> Direction {
        Direction {
            stabilization: Duration::ZERO,
            policies: policies
                .iter()
                .map(|&(kind, value, period)| RatePolicy {
                    kind,
                    value,
                    period: Duration::from_secs(period),
                })
                .collect(),
            select,
        }
    }

    #[test]
    fn the_tolerance_band_is_hpas_ratio_test() {
        // HPA: ratio 1.05 with tolerance 0.1 keeps the count; 1.2 scales.
        assert_eq!(proposal(10.5, 10, Some(0.1)), 10);
        assert_eq!(proposal(10.99, 10, Some(0.1)), 10);
        assert_eq!(
            proposal(20.0, 20, Some(0.0)),
            20,
            "a ratio of exactly 1 is inside"
        );
        assert_eq!(proposal(11.01, 10, Some(0.1)), 12);
        assert_eq!(proposal(9.0, 10, Some(0.1)), 10);
        assert_eq!(proposal(8.9, 10, Some(0.1)), 9);
        assert_eq!(proposal(10.5, 10, None), 11, "no band: ceil");
        assert_eq!(proposal(0.4, 0, Some(0.1)), 1, "no band from zero replicas");
    }

    #[test]
    fn hpa_default_up_policies_allow_the_larger_of_100_percent_and_4_pods() {
        let hpa = rules(
            &[(PolicyKind::Percent, 100, 15), (PolicyKind::Pods, 4, 15)],
            Select::Max,
        );
        let none = |_| (0, 0);
        assert_eq!(up_limit(1, &hpa, none), Some(5), "4 pods beat 100 % of 1");
        assert_eq!(
            up_limit(10, &hpa, none),
            Some(20),
            "100 % of 10 beats 4 pods"
        );
        let min = Direction {
            select: Select::Min,
            ..hpa.clone()
        };
        assert_eq!(up_limit(10, &min, none), Some(14));
        // 6 pods added within the period: the period started at 4.
        assert_eq!(up_limit(10, &hpa, |_| (6, 0)), Some(10));
        let disabled = Direction {
            select: Select::Disabled,
            ..hpa
        };
        assert_eq!(up_limit(10, &disabled, none), Some(10));
        assert_eq!(up_limit(10, &Direction::default(), none), None);
    }

    #[test]
    fn percent_rounds_up_going_up_and_truncates_going_down() {
        let up = rules(&[(PolicyKind::Percent, 10, 60)], Select::Max);
        assert_eq!(up_limit(3, &up, |_| (0, 0)), Some(4), "ceil(3.3)");
        let down = rules(&[(PolicyKind::Percent, 10, 60)], Select::Max);
        assert_eq!(down_limit(3, &down, |_| (0, 0)), Some(2), "trunc(2.7)");
        let pods = rules(&[(PolicyKind::Pods, 2, 60)], Select::Max);
        assert_eq!(down_limit(10, &pods, |_| (0, 0)), Some(8));
        assert_eq!(
            down_limit(10, &pods, |_| (0, 3)),
            Some(10),
            "3 removed within the period: started at 13, floor 11, never above current"
        );
    }

    #[test]
    fn select_min_going_down_is_the_highest_floor() {
        let both = |select| {
            rules(
                &[(PolicyKind::Pods, 1, 60), (PolicyKind::Percent, 50, 60)],
                select,
            )
        };
        assert_eq!(down_limit(10, &both(Select::Max), |_| (0, 0)), Some(5));
        assert_eq!(down_limit(10, &both(Select::Min), |_| (0, 0)), Some(9));
    }

    #[test]
    fn names_read_as_hpa_writes_them() {
        assert_eq!(PolicyKind::from_name("Pods"), Some(PolicyKind::Pods));
        assert_eq!(PolicyKind::from_name("percent"), Some(PolicyKind::Percent));
        assert_eq!(PolicyKind::from_name("replicas"), None);
        assert_eq!(Select::from_name("Disabled"), Some(Select::Disabled));
        assert_eq!(Select::from_name("avg"), None);
    }
}
