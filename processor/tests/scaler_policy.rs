//! The HPA parity table end to end: the Kubernetes scaler, through the real `kube` client,
//! against the API stand-in, on a test clock. Each scenario's numbers are HPA's (the same
//! scenarios run on the pure decision in `scaler::decision::tests`); here they must also be
//! what lands on the Deployment, with the rules in the Events.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use k8s_standin::{Config, Handle, Server, WorkloadKind};
use processor::scaler::behavior::{Behavior, Direction, PolicyKind, RatePolicy, Select};
use processor::scaler::cluster::{self, Kubernetes};
use processor::scaler::decision::Rule;
use processor::scaler::kubernetes::KubernetesScaler;
use processor::scaler::{Decision, Desired, Kind, ScaleIntent, ScaleOutcome, Scaler};

const S: i64 = 1_000_000_000;

struct Cluster {
    server: Handle,
    scaler: KubernetesScaler,
    /// The scaler's clock, ns.
    now: Arc<AtomicI64>,
    /// The clock's value at the start of the scenario.
    start: i64,
}

async fn cluster(replicas: i64) -> Cluster {
    let server = Server::start(Config::default().with_deployment("default", "app", replicas))
        .await
        .expect("stand-in starts");
    let settings = Kubernetes {
        enabled: true,
        api_servers: vec![server.url()],
        ..Kubernetes::default()
    };
    let client = cluster::connect(&settings).await.expect("client");
    let start = processor::clock::wall_ns();
    let now = Arc::new(AtomicI64::new(start));
    let clock_now = Arc::clone(&now);
    let scaler = KubernetesScaler::with_clusters(
        HashMap::from([(String::new(), client)]),
        Arc::new(move || clock_now.load(Ordering::SeqCst)),
    );
    Cluster {
        server,
        scaler,
        now,
        start,
    }
}

impl Cluster {
    /// Asks for `raw` replicas `at` seconds after the start (the clock steps there), with
    /// `behavior` and `max`.
    async fn at(&self, at: i64, raw: f64, behavior: &Behavior, max: i64) -> ScaleOutcome {
        let now = self.start + at * S;
        self.now.store(now, Ordering::SeqCst);
        let mut intent: ScaleIntent =
            workspace_bins::scaling::intent("default", Kind::Deployments, "app", 0);
        intent.desired = Desired::Raw(raw);
        intent.policy.behavior = behavior.clone();
        intent.policy.max = max;
        intent.point_time_ns = now;
        self.scaler.scale(intent).await.expect("scaled")
    }

    fn replicas(&self) -> i64 {
        self.server
            .deployment_replicas("default", "app")
            .expect("deployment")
    }

    fn messages(&self) -> Vec<String> {
        self.server
            .events()
            .iter()
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect()
    }
}

fn rate(kind: PolicyKind, value: i64, period: u64) -> RatePolicy {
    RatePolicy {
        kind,
        value,
        period: Duration::from_secs(period),
    }
}

fn hpa_up_defaults() -> Behavior {
    Behavior {
        up: Direction {
            stabilization: Duration::ZERO,
            policies: vec![
                rate(PolicyKind::Percent, 100, 15),
                rate(PolicyKind::Pods, 4, 15),
            ],
            select: Select::Max,
        },
        ..Behavior::default()
    }
}

#[tokio::test]
async fn hpa_default_up_policies_pace_a_large_increase_on_the_deployment() {
    let c = cluster(1).await;
    let b = hpa_up_defaults();
    let first = c.at(0, 20.0, &b, 100).await;
    assert_eq!((first.decision, first.new), (Decision::Increased, 5));
    assert_eq!(c.replicas(), 5);
    let held = c.at(5, 20.0, &b, 100).await;
    assert_eq!((held.decision, held.new), (Decision::Held, 5));
    assert_eq!(held.steps[0].rule, Rule::Policy);
    assert_eq!(c.at(16, 20.0, &b, 100).await.new, 10);
    assert_eq!(c.at(32, 20.0, &b, 100).await.new, 20);
    assert_eq!(c.replicas(), 20);
    let messages = c.messages();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("New size: 5;") && m.contains("rules: policy 20→5")),
        "the Event names the rule: {messages:?}"
    );
}

#[tokio::test]
async fn hpa_scale_down_stabilization_keeps_the_highest_recent_count_on_the_deployment() {
    let c = cluster(5).await;
    let b = Behavior {
        down: Direction {
            stabilization: Duration::from_secs(300),
            ..Direction::default()
        },
        ..Behavior::default()
    };
    assert_eq!(c.at(0, 5.0, &b, 10).await.decision, Decision::Unchanged);
    assert_eq!(c.at(60, 4.0, &b, 10).await.decision, Decision::Held);
    assert_eq!(c.at(120, 2.0, &b, 10).await.decision, Decision::Held);
    assert_eq!(c.replicas(), 5);
    let down = c.at(301, 2.0, &b, 10).await;
    assert_eq!((down.decision, down.new), (Decision::Decreased, 4));
    assert_eq!(c.replicas(), 4);
    assert_eq!(c.at(361, 2.0, &b, 10).await.new, 2);
    assert_eq!(c.replicas(), 2);
}

#[tokio::test]
async fn hpa_tolerance_select_and_bounds_on_the_deployment() {
    let c = cluster(10).await;
    let tolerant = Behavior {
        tolerance: Some(0.1),
        ..Behavior::default()
    };
    let inside = c.at(0, 10.8, &tolerant, 20).await;
    assert_eq!((inside.decision, c.replicas()), (Decision::Held, 10));
    let outside = c.at(1, 11.5, &tolerant, 20).await;
    assert_eq!((outside.decision, c.replicas()), (Decision::Increased, 12));
    let frozen = Behavior {
        down: Direction {
            policies: vec![rate(PolicyKind::Pods, 1, 60)],
            select: Select::Disabled,
            ..Direction::default()
        },
        ..Behavior::default()
    };
    let disabled = c.at(2, 3.0, &frozen, 20).await;
    assert_eq!((disabled.decision, c.replicas()), (Decision::Held, 12));
    let min_select = Behavior {
        down: Direction {
            policies: vec![
                rate(PolicyKind::Pods, 4, 60),
                rate(PolicyKind::Percent, 10, 60),
            ],
            select: Select::Min,
            ..Direction::default()
        },
        ..Behavior::default()
    };
    // At 12, 2 of them added within the period (as HPA counts, the period started at 10):
    // Pods allows 6, Percent trunc(9.0) = 9; Min: the smaller change, 9.
    assert_eq!(c.at(3, 1.0, &min_select, 20).await.new, 9);
    assert_eq!(c.replicas(), 9);
    let capped = c.at(4, 50.0, &Behavior::default(), 15).await;
    assert_eq!((capped.new, c.replicas()), (15, 15));
    assert_eq!(capped.steps.last().map(|s| s.rule), Some(Rule::Max));
}

#[tokio::test]
async fn a_change_made_by_someone_else_restarts_the_rate_policies() {
    let c = cluster(1).await;
    let b = hpa_up_defaults();
    assert_eq!(c.at(0, 20.0, &b, 100).await.new, 5);
    c.server
        .set_replicas(WorkloadKind::Deployment, "default", "app", 2)
        .unwrap();
    // Within the same 15 s: from 2 with no scale event of ours behind it, max(4, 6) = 6.
    let after = c.at(5, 20.0, &b, 100).await;
    assert_eq!((after.old, after.new), (2, 6));
    assert_eq!(c.replicas(), 6);
}

#[tokio::test]
async fn a_decrease_after_series_went_silent_says_so_in_its_event() {
    let c = cluster(3).await;
    c.now.store(c.start, Ordering::SeqCst);
    let mut intent: ScaleIntent =
        workspace_bins::scaling::intent("default", Kind::Deployments, "app", 2);
    intent.point_time_ns = c.start;
    intent.gone = vec!["requests,deployment=app,host=pod2".to_owned()];
    let outcome = c.scaler.scale(intent).await.expect("scaled");
    assert_eq!((outcome.decision, outcome.new), (Decision::Decreased, 2));
    let messages = c.messages();
    assert!(
        messages.iter().any(|m| m.starts_with("New size: 2;")
            && m.ends_with(
                "the total fell after series stopped reporting: requests,deployment=app,host=pod2"
            )),
        "{messages:?}"
    );
}
