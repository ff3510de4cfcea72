//! A task with a window, end to end: points POSTed to the write API of an in-process
//! processor, the window's sums read back from httpOut. Two pods flush in 10-s batches at
//! different phases; Kapacitor emits the first window as soon as one pod passes its end and
//! loses the other pod's points, ours waits for both (compat.md 2.6, the same fix as the
//! aggregates).

mod tasks_support;

use hyper::{Method, StatusCode};
use tasks_support::{call, config, define_body, start, write_seconds};

const SCRIPT: &str = "
stream
    |from()
        .measurement('requests')
        .groupBy('deployment')
    |window()
        .period(10s)
        .every(10s)
        .align()
    |sum('value')
        .as('total')
    |httpOut('out')
";

/// Lines of pod `pod` for whole seconds `seconds`, each with `value`.
fn flush(pod: &str, seconds: std::ops::RangeInclusive<i64>, value: i64) -> String {
    seconds
        .map(|s| format!("requests,deployment=app,pod={pod} value={value}i {s}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_sums_every_pod_even_when_their_flushes_arrive_at_different_times() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path(), "")).await.unwrap();
    let (status, _, text) = call(
        running.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &define_body("windowed", SCRIPT, "enabled"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");

    // Both pods report, then pod a flushes twice before pod b's next flush arrives. Kapacitor
    // would emit [1000 s, 1010 s) on pod a's point at 1010 s, with pod a's points only.
    write_seconds(running.addr, &flush("a", 990..=999, 1)).await;
    write_seconds(running.addr, &flush("b", 990..=999, 10)).await;
    write_seconds(running.addr, &flush("a", 1000..=1009, 1)).await;
    write_seconds(running.addr, &flush("a", 1010..=1019, 1)).await;
    let mut collected = serde_json::Value::Null;
    for _ in 0..500 {
        let (_, task, _) = call(
            running.addr,
            Method::GET,
            "/kapacitor/v1/tasks/windowed",
            "",
        )
        .await;
        collected = task["stats"]["node-stats"]["window2"]["collected"].clone();
        if collected == 40 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        collected, 40,
        "the window took the 40 points written so far"
    );
    let out = "/kapacitor/v1/tasks/windowed/out";
    let (_, json, _) = call(running.addr, Method::GET, out, "").await;
    assert_eq!(
        json["series"],
        serde_json::json!([]),
        "nothing before pod b passed 1000 s"
    );
    write_seconds(running.addr, &flush("b", 1000..=1009, 10)).await;
    write_seconds(running.addr, &flush("b", 1010..=1011, 10)).await;

    let expected = serde_json::json!(["1970-01-01T00:16:50Z", 110]);
    let mut last = serde_json::Value::Null;
    for _ in 0..500 {
        last = call(running.addr, Method::GET, out, "").await.1;
        if last["series"][0]["values"][0] == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let done = last["series"][0]["values"][0] == expected;
    assert!(done, "window [1000 s, 1010 s) of both pods: {last}");
    assert_eq!(
        last["series"][0]["tags"],
        serde_json::json!({"deployment": "app"})
    );
    assert_eq!(
        last["series"][0]["columns"],
        serde_json::json!(["time", "total"])
    );

    let (_, task, _) = call(
        running.addr,
        Method::GET,
        "/kapacitor/v1/tasks/windowed",
        "",
    )
    .await;
    let dot = task["dot"].as_str().unwrap_or_default();
    assert!(dot.contains("window2 ["), "{dot}");
    assert!(dot.contains("late_points=\"0\""), "{dot}");
    running.stop().await;
}
