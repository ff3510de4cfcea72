//! A Kubernetes API that takes its time must not stall a task: points keep flowing through the
//! pipeline while a scale call is in flight, and once it returns only the newest intent for the
//! target is sent (the ones it replaced would be decided on stale data).

mod tasks_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::{Method, StatusCode};
use processor::scaler::{Decision, ScaleFuture, ScaleIntent, ScaleOutcome, Scaler};
use processor::{Options, Processor};
use tasks_support::{call, config, define_body};
use tokio::sync::Semaphore;

/// A scaler whose calls wait for a permit; it records what each call asked for.
struct Gated {
    asked: Mutex<Vec<i64>>,
    permits: Semaphore,
}

#[derive(Clone)]
struct GatedScaler(Arc<Gated>);

impl GatedScaler {
    fn closed() -> GatedScaler {
        GatedScaler(Arc::new(Gated {
            asked: Mutex::new(Vec::new()),
            permits: Semaphore::new(0),
        }))
    }
}

impl Scaler for GatedScaler {
    fn scale(&self, intent: ScaleIntent) -> ScaleFuture {
        let gated = Arc::clone(&self.0);
        Box::pin(async move {
            let desired = intent.desired.resolve(1)?.unwrap_or_default() as i64;
            gated.asked.lock().unwrap().push(desired);
            if let Ok(permit) = gated.permits.acquire().await {
                permit.forget();
            }
            Ok(ScaleOutcome::plain(
                Decision::Unchanged,
                desired,
                desired,
                false,
            ))
        })
    }
}

const SCRIPT: &str = "
stream
    |from()
        .measurement('m')
        .groupBy('deployment')
    |k8sAutoscale()
        .resourceNameTag('deployment')
        .replicas(lambda: int(\"v\"))
";

async fn collected(addr: std::net::SocketAddr) -> u64 {
    let (_, task, _) = call(addr, Method::GET, "/kapacitor/v1/tasks/slow", "").await;
    task["stats"]["node-stats"]["k8s_autoscale2"]["collected"]
        .as_u64()
        .unwrap_or(0)
}

async fn until(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..500 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_scale_call_does_not_stall_the_task_and_only_the_newest_intent_waits() {
    let dir = tempfile::tempdir().unwrap();
    let scaler = GatedScaler::closed();
    let processor = Processor::bind(
        config(dir.path(), ""),
        Options {
            scaler: Some(Arc::new(scaler.clone())),
            metrics: false,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let addr = processor.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(processor.serve(async {
        let _ = stopped.await;
    }));
    let (status, _, text) = call(
        addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &define_body("slow", SCRIPT, "enabled"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (i, v) in [2, 3, 4].into_iter().enumerate() {
        let body = format!("m,deployment=app v={v} {}", now + i as u64);
        let (status, _, text) =
            call(addr, Method::POST, "/write?db=autoscale&precision=s", &body).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    }
    // The first call is stuck, yet the node took all three points.
    assert!(
        until(async || collected(addr).await == 3).await,
        "the task loop is stalled"
    );
    assert_eq!(*scaler.0.asked.lock().unwrap(), [2]);

    scaler.0.permits.add_permits(10);
    let asked = || scaler.0.asked.lock().unwrap().clone();
    assert!(until(async || asked() == [2, 4]).await, "{:?}", asked());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        asked(),
        [2, 4],
        "the intent for 3 was superseded, never sent"
    );

    let _ = stop.send(());
    let _ = server.await;
}
