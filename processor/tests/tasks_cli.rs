//! The client commands of the processor binary, as the tutorial types them.

mod tasks_support;

use tasks_support::{cli, config, start};

#[tokio::test(flavor = "multi_thread")]
async fn the_tutorials_commands_define_enable_and_show_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(&dir.path().join("data"), "")).await.unwrap();
    let url = format!("http://{}", server.addr);
    let tick =
        workspace_bins::workspace_root().join("processor/tests/fixtures/tick/autoscale.tick");
    let tick = tick.to_str().unwrap().to_owned();
    let vars = dir.path().join("vars.json");
    std::fs::write(
        &vars,
        r#"{"moving_avg_count": {"type": "int", "value": 5}}"#,
    )
    .unwrap();
    let vars = vars.to_str().unwrap().to_owned();
    let url2 = url.clone();
    let run = move |args: Vec<String>| {
        let url = url2.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                cli(&url, &args)
            })
            .await
            .unwrap()
        }
    };
    let s = |a: &[&str]| a.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();

    let (ok, _, err) = run(s(&[
        "define",
        "autoscale",
        "-tick",
        &tick,
        "-type",
        "stream",
        "-dbrp",
        "autoscale.autogen",
        "-vars",
        &vars,
    ]))
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = run(s(&["enable", "autoscale"])).await;
    assert!(ok, "{err}");
    let (ok, show, err) = run(s(&["show", "autoscale"])).await;
    assert!(ok, "{err}");
    for expected in [
        "ID: autoscale\n",
        "Type: stream\n",
        "Status: enabled\n",
        "Executing: true\n",
        "Databases Retention Policies: [\"autoscale\".\"autogen\"]\n",
        "TICKscript:\n// Target is the desired number",
        "moving_avg_count    int       5",
        "DOT:\ndigraph autoscale {",
        "stream0 -> from1 [processed=\"0\"];",
        "k8s_autoscale6 [avg_exec_time_ns=\"0s\" conflicts=\"0\" cooldown_drops=\"0\" decrease_events=\"0\" errors=\"0\" fallbacks=\"0\" increase_events=\"0\" ];",
    ] {
        assert!(show.contains(expected), "missing {expected:?} in\n{show}");
    }
    let (ok, list, _) = run(s(&["list", "tasks"])).await;
    assert!(ok);
    assert!(list.starts_with("ID                            Type      Status    Executing Databases and Retention Policies\n"), "{list}");
    assert!(list.contains("autoscale                     stream    enabled   true      [\"autoscale\".\"autogen\"]"), "{list}");
    let (ok, stats, _) = run(s(&["stats", "general"])).await;
    assert!(ok);
    assert!(
        stats.contains("Tasks:                        1\n"),
        "{stats}"
    );
    assert!(
        stats.contains("Enabled Tasks:                1\n"),
        "{stats}"
    );
    let (ok, _, _) = run(s(&["disable", "autoscale"])).await;
    assert!(ok);
    let (_, show, _) = run(s(&["show", "autoscale"])).await;
    assert!(show.contains("Status: disabled\n"), "{show}");
    let (ok, _, _) = run(s(&["delete", "tasks", "autoscale"])).await;
    assert!(ok);
    let (ok, _, err) = run(s(&["show", "autoscale"])).await;
    assert!(!ok);
    assert!(
        err.contains("no task exists with id \"autoscale\""),
        "{err}"
    );
    // --url beats PROCESSOR_URL
    let (ok, _, err) = run(s(&["--url", "http://127.0.0.1:1", "list", "tasks"])).await;
    assert!(!ok);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    server.stop().await;
}

#[cfg(unix)]
#[test]
fn a_tick_file_that_never_ends_is_refused_before_anything_is_sent() {
    // No server needed: the file is read (and refused) before the request.
    let (ok, _, err) = cli(
        "http://127.0.0.1:9",
        &["define", "t", "-tick", "/dev/zero", "-dbrp", "db.rp"],
    );
    assert!(!ok);
    assert!(
        err.contains("/dev/zero") && err.contains("larger than"),
        "{err}"
    );
}
