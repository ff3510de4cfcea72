//! `/metrics` is valid Prometheus text (checked by `promtool check metrics`) and carries the
//! write API's and every task node's counters.

mod tasks_support;

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
    if let Some(check) = workspace_bins::peers::promtool_check_metrics(&text) {
        assert!(check.passed(), "promtool: {}\n{text}", check.report);
    }
    server.stop().await;
}
