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
    // This server runs on the test's allocator (the system's), not the binary's jemalloc:
    // no allocator figures (soak_short checks the binary reports them).
    assert!(!text.contains("processor_allocator_"), "{text}");
    assert!(text.contains("processor_node_events_total{task=\"autoscale\",node=\"derivative2\",event=\"counter_resets\"} 0"), "{text}");
    if let Some(check) = workspace_bins::peers::promtool_check_metrics(&text) {
        assert!(check.passed(), "promtool: {}\n{text}", check.report);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_task_at_its_series_limit_drops_new_series_and_counts_them_in_metrics_and_task_stats() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "[pipeline]\nmax-series-per-task = 3\n"))
        .await
        .unwrap();
    let (status, _, text) = call(
        server.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &define_body("autoscale", TUTORIAL, "enabled"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // Five pods, two points each: the first three series are kept, the last two dropped.
    let body: Vec<String> = (1..=5)
        .flat_map(|pod| {
            [1, 2].map(|second| {
                format!("requests,host=pod{pod},deployment=app counter={second} {second}000000000")
            })
        })
        .collect();
    let (status, _, text) = call(
        server.addr,
        Method::POST,
        "/write?db=autoscale&rp=autogen",
        &body.join("\n"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let addr = server.addr;
    assert!(
        tasks_support::eventually(|| async move {
            let (_, _, text) = call(addr, Method::GET, "/metrics", "").await;
            text.contains(
                "processor_node_events_total{task=\"autoscale\",node=\"from1\",event=\"series_over_limit\"} 4",
            )
        })
        .await
    );
    let (_, _, text) = call(addr, Method::GET, "/metrics", "").await;
    assert!(
        text.contains("processor_node_working_cardinality{task=\"autoscale\",node=\"from1\"} 3"),
        "{text}"
    );
    // The kept series went on through the pipeline.
    assert!(
        text.contains(
            "processor_node_points_collected_total{task=\"autoscale\",node=\"derivative2\"} 6"
        ),
        "{text}"
    );
    let (_, _, task) = call(addr, Method::GET, "/kapacitor/v1/tasks/autoscale", "").await;
    assert!(task.contains("series_over_limit=\\\"4\\\""), "{task}");
    server.stop().await;
}
