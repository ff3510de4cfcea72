//! The task store under concurrency and crashes: concurrent defines are all saved, changes of
//! one id never interleave, a deleted task stops, a SIGKILL loses no answered define, and
//! a task whose loop dies shows as failed.

mod tasks_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use tasks_support::{TUTORIAL, call, config, define_body, start};

fn saved_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("tasks"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_defines_are_all_answered_and_saved_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "")).await.unwrap();
    let reading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    // A reader parses every saved file while the defines run: never empty, never a part.
    let reader = {
        let tasks = dir.path().join("tasks");
        let reading = std::sync::Arc::clone(&reading);
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while reading.load(std::sync::atomic::Ordering::Relaxed) {
                for entry in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
                    let name = entry.file_name().into_string().unwrap_or_default();
                    if !name.ends_with(".json") {
                        continue;
                    }
                    if let Ok(text) = std::fs::read_to_string(entry.path()) {
                        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&text);
                        assert!(parsed.is_ok(), "{name} read as {text:?}");
                        reads += 1;
                    }
                }
            }
            reads
        })
    };
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let addr = server.addr;
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..25 {
                    let id = format!("t{client}-{i}");
                    let (status, _, text) = call(
                        addr,
                        Method::POST,
                        "/kapacitor/v1/tasks",
                        &define_body(&id, TUTORIAL, "enabled"),
                    )
                    .await;
                    statuses.push((id, status, text));
                }
                statuses
            })
        })
        .collect();
    for client in clients {
        for (id, status, text) in client.await.unwrap() {
            assert_eq!(status, StatusCode::OK, "{id}: {text}");
        }
    }
    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().unwrap();
    println!("{reads} reads of task files during the defines, all whole");
    let (_, list, _) = call(server.addr, Method::GET, "/kapacitor/v1/tasks", "").await;
    assert_eq!(list["tasks"].as_array().unwrap().len(), 200);
    assert_eq!(saved_files(dir.path()).len(), 200);
    server.stop().await;
    let server = start(config(dir.path(), "")).await.unwrap();
    let (_, list, _) = call(server.addr, Method::GET, "/kapacitor/v1/tasks", "").await;
    let tasks = list["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 200);
    assert!(tasks.iter().all(|t| t["executing"] == true));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_of_one_id_never_interleave_and_a_deleted_task_stops() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "")).await.unwrap();
    let addr = server.addr;
    let define = || async move {
        call(
            addr,
            Method::POST,
            "/kapacitor/v1/tasks",
            &define_body("same", TUTORIAL, "enabled"),
        )
        .await
        .0
    };
    let delete = || async move {
        call(addr, Method::DELETE, "/kapacitor/v1/tasks/same", "")
            .await
            .0
    };
    for round in 0..30 {
        let (a, b, c) = tokio::join!(define(), define(), delete());
        let defined = [a, b].iter().filter(|s| **s == StatusCode::OK).count();
        assert!(
            defined <= 1 || c == StatusCode::NO_CONTENT,
            "round {round}: {a} {b} {c}"
        );
        let (status, _, _) = call(addr, Method::GET, "/kapacitor/v1/tasks/same", "").await;
        let (_, vars, _) = call(addr, Method::GET, "/kapacitor/v1/debug/vars", "").await;
        let saved = saved_files(dir.path());
        if status == StatusCode::OK {
            assert_eq!(vars["num_enabled_tasks"], 1, "round {round}: {vars}");
            assert_eq!(vars["num_subscriptions"], 1, "round {round}: {vars}");
            assert_eq!(saved, vec!["same.json".to_owned()], "round {round}");
        } else {
            // Nothing runs, nothing is subscribed, nothing is saved.
            assert_eq!(vars["num_enabled_tasks"], 0, "round {round}: {vars}");
            assert_eq!(vars["num_subscriptions"], 0, "round {round}: {vars}");
            assert!(saved.is_empty(), "round {round}: {saved:?}");
        }
        delete().await;
    }
    // Two defines of one id at once: one is created, the other told it exists.
    for round in 0..30 {
        let (a, b) = tokio::join!(define(), define());
        let mut statuses = [a, b];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::BAD_REQUEST],
            "round {round}"
        );
        assert_eq!(delete().await, StatusCode::NO_CONTENT);
    }
    server.stop().await;
}

#[tokio::test]
async fn ids_that_cannot_name_a_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "")).await.unwrap();
    let long = "x".repeat(201);
    for id in [".", "..", "", "a/b", long.as_str()] {
        let (status, body, _) = call(
            server.addr,
            Method::POST,
            "/kapacitor/v1/tasks",
            &define_body(id, TUTORIAL, "disabled"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id:?}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("is invalid"),
            "{body}"
        );
    }
    assert!(saved_files(dir.path()).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_dbrp_declared_in_the_script_is_listed_with_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "")).await.unwrap();
    let body = serde_json::json!({
        "id": "in-script",
        "type": "stream",
        "script": format!("dbrp \"telegraf\".\"autogen\"\n{TUTORIAL}"),
        "status": "disabled",
    });
    let (status, task, _) = call(
        server.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(
        task["dbrps"],
        serde_json::json!([{"db": "telegraf", "rp": "autogen"}])
    );
    server.stop().await;
}

/// One exchange with the processor on `port`: (status, body), or `None` once it is killed.
fn request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    workspace_bins::peers::try_http(([127, 0, 0, 1], port).into(), method, path, body)
}

fn serve(data_dir: &std::path::Path, port: u16) -> Child {
    let child = Command::new(workspace_bins::binary("processor", "processor"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("PROCESSOR_DATA_DIR", data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the processor");
    let deadline = Instant::now() + Duration::from_secs(20);
    while request(port, "GET", "/ping", "").is_none() {
        assert!(Instant::now() < deadline, "the processor did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_sigkill_during_defines_loses_no_answered_task_and_the_processor_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut answered: Vec<String> = Vec::new();
    // The binary has no [kubernetes] section here: the tutorial's tick, deciding only.
    let dry_run = format!("{TUTORIAL}        .dryRun()\n");
    for run in 0..5 {
        let port = workspace_bins::peers::free_port();
        let mut child = serve(dir.path(), port);
        let pid = child.id();
        // Kill it at a different point of the defines each run.
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50 + 70 * run));
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        });
        for i in 0.. {
            let id = format!("r{run}-{i}");
            let body = define_body(&id, &dry_run, "enabled");
            match request(port, "POST", "/kapacitor/v1/tasks", &body) {
                Some((200, _)) => answered.push(id),
                Some((status, response)) => panic!("define {id}: {status}: {response}"),
                None => break,
            }
        }
        killer.join().unwrap();
        let _ = child.wait();
    }
    let port = workspace_bins::peers::free_port();
    let mut child = serve(dir.path(), port);
    let (status, response) = request(port, "GET", "/kapacitor/v1/tasks", "").unwrap();
    assert_eq!(status, 200);
    let listed: serde_json::Value = serde_json::from_str(&response).unwrap();
    let ids: std::collections::BTreeSet<&str> = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    println!(
        "{} defines answered before the kills, {} tasks restored",
        answered.len(),
        ids.len()
    );
    for id in &answered {
        assert!(
            ids.contains(id.as_str()),
            "{id} was answered 200 but is gone"
        );
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}
