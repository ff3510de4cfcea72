//! The task HTTP API end to end: define, enable, show, write, persist, load.

mod tasks_support;

use hyper::{Method, StatusCode};
use processor::scaler::{Decision, Desired};
use tasks_support::{TUTORIAL, call, config, define_body, eventually, start};

const K8S_LINE: &str = "k8s_autoscale6 [avg_exec_time_ns=\"0s\" conflicts=\"0\" cooldown_drops=\"0\" decrease_events=\"0\" errors=\"0\" fallbacks=\"0\" increase_events=\"0\" ];";

#[tokio::test]
async fn the_tutorial_tick_defines_enables_and_shows_with_kapacitors_node_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "")).await.unwrap();
    let (status, task, _) = call(
        server.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &define_body("autoscale", TUTORIAL, "disabled"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["status"], "disabled");
    assert_eq!(task["executing"], false);
    assert!(task["dot"].as_str().unwrap().contains("stream0 -> from1;"));

    let (status, task, _) = call(
        server.addr,
        Method::PATCH,
        "/kapacitor/v1/tasks/autoscale",
        r#"{"status":"enabled"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    let (_, task, _) = call(
        server.addr,
        Method::GET,
        "/kapacitor/v1/tasks/autoscale",
        "",
    )
    .await;
    assert_eq!(task["executing"], true);
    assert_eq!(task["dbrps"][0]["db"], "autoscale");
    let dot = task["dot"].as_str().unwrap();
    assert!(
        dot.starts_with("digraph autoscale {\ngraph [throughput=\"0.00 points/s\"];"),
        "{dot}"
    );
    for edge in [
        "stream0 -> from1 [processed=\"0\"];",
        "from1 -> derivative2 [processed=\"0\"];",
        "derivative2 -> groupby3 [processed=\"0\"];",
        "groupby3 -> sum4 [processed=\"0\"];",
        "sum4 -> movingAverage5 [processed=\"0\"];",
        "movingAverage5 -> k8s_autoscale6 [processed=\"0\"];",
        K8S_LINE,
    ] {
        assert!(dot.contains(edge), "missing {edge} in\n{dot}");
    }
    assert!(task["stats"]["node-stats"]["sum4"]["late_points"].is_u64());

    let (_, list, _) = call(server.addr, Method::GET, "/kapacitor/v1/tasks", "").await;
    assert_eq!(list["tasks"][0]["id"], "autoscale");
    let (_, vars, _) = call(server.addr, Method::GET, "/kapacitor/v1/debug/vars", "").await;
    assert_eq!(vars["num_tasks"], 1);
    assert_eq!(vars["num_enabled_tasks"], 1);
    assert_eq!(vars["num_subscriptions"], 1);
    let (status, _, _) = call(
        server.addr,
        Method::DELETE,
        "/kapacitor/v1/tasks/autoscale",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body, _) = call(
        server.addr,
        Method::GET,
        "/kapacitor/v1/tasks/autoscale",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("autoscale"));
    server.stop().await;
}

#[tokio::test]
async fn written_points_flow_through_the_tutorial_pipeline_to_the_scaler() {
    let dir = tempfile::tempdir().unwrap();
    // The sum's group learns its series for one lateness before its first total.
    let server = start(config(dir.path(), "[pipeline]\nlateness = \"1s\"\n"))
        .await
        .unwrap();
    let body = serde_json::json!({
        "id": "autoscale",
        "type": "stream",
        "dbrps": [{"db": "autoscale", "rp": "autogen"}],
        "script": TUTORIAL,
        "status": "enabled",
        "vars": {"moving_avg_count": {"type": "int", "value": 3}},
    });
    let (status, task, _) = call(
        server.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    // one host at 450 requests/s: after 1 priming point and 3 rates, ceil(450/100) = 5.
    let lines: Vec<String> = (0..6i64)
        .map(|i| {
            format!(
                "requests,deployment=app,host=h1 counter={} {}",
                i * 450,
                (1_700_000_000 + i) * 1_000_000_000
            )
        })
        .collect();
    let (status, _, text) = call(
        server.addr,
        Method::POST,
        "/write?db=autoscale&rp=autogen",
        &lines.join("\n"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let scaler = server.scaler.clone();
    assert!(
        eventually(|| {
            let s = scaler.clone();
            async move { !s.decisions().is_empty() }
        })
        .await
    );
    let (intent, outcome) = scaler.decisions()[0].clone();
    assert_eq!(intent.target.name, "app");
    assert_eq!(intent.desired, Desired::Raw(5.0));
    assert_eq!(
        (outcome.decision, outcome.old, outcome.new),
        (Decision::Increased, 1, 5)
    );
    let addr = server.addr;
    assert!(
        eventually(|| async move {
            let (_, task, _) = call(addr, Method::GET, "/kapacitor/v1/tasks/autoscale", "").await;
            task["stats"]["node-stats"]["k8s_autoscale6"]["increase_events"] == 1
        })
        .await
    );
    server.stop().await;
}

#[tokio::test]
async fn tasks_survive_a_restart() {
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
    server.stop().await;
    assert!(dir.path().join("tasks").join("autoscale.json").exists());
    let server = start(config(dir.path(), "")).await.unwrap();
    let (status, task, _) = call(
        server.addr,
        Method::GET,
        "/kapacitor/v1/tasks/autoscale",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["status"], "enabled");
    assert_eq!(task["executing"], true);
    assert_eq!(task["script"], TUTORIAL);
    server.stop().await;
}

#[tokio::test]
async fn the_load_dir_defines_enabled_tasks_named_after_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let load = dir.path().join("load");
    std::fs::create_dir_all(load.join("tasks")).unwrap();
    std::fs::write(
        load.join("tasks/scale.tick"),
        format!("dbrp \"autoscale\".\"autogen\"\n{TUTORIAL}"),
    )
    .unwrap();
    let extra = format!(
        "[load]\nenabled = true\ndir = {:?}\n",
        load.display().to_string()
    );
    let server = start(config(&dir.path().join("data"), &extra))
        .await
        .unwrap();
    let (status, task, _) = call(server.addr, Method::GET, "/kapacitor/v1/tasks/scale", "").await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["executing"], true);
    server.stop().await;

    std::fs::write(load.join("tasks/nodbrp.tick"), TUTORIAL).unwrap();
    let Err(error) = start(config(&dir.path().join("data"), &extra)).await else {
        panic!("a load file without dbrp must stop the start");
    };
    assert!(error.to_string().contains("nodbrp.tick"), "{error}");
}

#[tokio::test]
async fn bad_scripts_and_requests_are_400_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "")).await.unwrap();
    let (status, body, _) = call(
        server.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &define_body("bad", "stream\n    |alert()\n", "enabled"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("line 2:"),
        "{body}"
    );
    let (status, body, _) = call(server.addr, Method::POST, "/kapacitor/v1/tasks", "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let no_dbrp = serde_json::json!({"id": "x", "type": "stream", "script": TUTORIAL});
    let (status, body, _) = call(
        server.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &no_dbrp.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("dbrp"), "{body}");
    let (status, _, _) = call(server.addr, Method::PATCH, "/kapacitor/v1/tasks/none", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn http_out_serves_the_latest_point_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "")).await.unwrap();
    let script = "stream\n    |from()\n        .measurement('cpu')\n        .groupBy('host')\n    |eval(lambda: \"v\" * 2.0)\n        .as('double')\n    |httpOut('out')\n";
    let (status, _, text) = call(
        server.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &define_body("double", script, "enabled"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    call(
        server.addr,
        Method::POST,
        "/write?db=autoscale&rp=autogen",
        "cpu,host=a v=1 1000000000\ncpu,host=a v=2 2000000000\ncpu,host=b v=5 2000000000",
    )
    .await;
    let addr = server.addr;
    assert!(
        eventually(|| async move {
            let (_, out, _) = call(addr, Method::GET, "/kapacitor/v1/tasks/double/out", "").await;
            out["series"].as_array().is_some_and(|s| s.len() == 2)
        })
        .await
    );
    let (_, out, _) = call(addr, Method::GET, "/kapacitor/v1/tasks/double/out", "").await;
    assert_eq!(out["series"][0]["tags"]["host"], "a");
    assert_eq!(
        out["series"][0]["columns"],
        serde_json::json!(["time", "double"])
    );
    assert_eq!(out["series"][0]["values"][0][1], 4.0);
    assert_eq!(out["series"][1]["values"][0][1], 10.0);
    server.stop().await;
}
