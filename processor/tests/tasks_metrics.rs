//! `/metrics` is valid Prometheus text (checked by `promtool check metrics`) and carries the
//! write API's and every task node's counters.

mod tasks_support;

use std::io::Write;
use std::process::{Command, Stdio};

use hyper::{Method, StatusCode};
use tasks_support::{TUTORIAL, call, config, define_body, start};

#[tokio::test]
async fn metrics_pass_promtool_and_name_tasks_and_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "")).await.unwrap();
    let (status, _, text) = call(
        server.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &define_body("autoscale", TUTORIAL, "enabled"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    call(
        server.addr,
        Method::POST,
        "/write?db=autoscale&rp=autogen",
        "requests,host=a,deployment=app counter=1 1000000000\nrequests,host=a,deployment=app counter=5 2000000000",
    )
    .await;
    let addr = server.addr;
    assert!(
        tasks_support::eventually(|| async move {
            let (_, _, text) = call(addr, Method::GET, "/metrics", "").await;
            text.contains(
                "processor_node_points_collected_total{task=\"autoscale\",node=\"derivative2\"} 2",
            )
        })
        .await
    );
    let (status, _, text) = call(addr, Method::GET, "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("processor_write_requests_total"), "{text}");
    assert!(
        text.contains("processor_points_received_total{endpoint=\"/write\"}"),
        "{text}"
    );
    assert!(text.contains("processor_write_duration_seconds"), "{text}");
    assert!(text.contains("processor_node_events_total{task=\"autoscale\",node=\"derivative2\",event=\"counter_resets\"} 0"), "{text}");
    let promtool = std::path::Path::new("/usr/bin/promtool");
    if !promtool.exists() {
        println!("SKIPPED: /usr/bin/promtool is not installed");
        server.stop().await;
        return;
    }
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;
}
