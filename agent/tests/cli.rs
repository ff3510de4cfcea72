//! The `agent` binary as an operator uses it: Telegraf's flags, exit codes, `--test` output,
//! the default config location, and the self-metrics endpoint checked by the real promtool.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use workspace_bins::peers::{free_port, http};

/// The real Prometheus linter (Debian package `prometheus`).
fn agent() -> Command {
    let mut command = Command::new(workspace_bins::binary("agent", "agent"));
    command
        .env_remove("TELEGRAF_CONFIG_PATH")
        .env_remove("RUST_LOG");
    command
}

/// The example app as a child process with free ports; returns (child, metrics address).
fn start_app() -> (std::process::Child, String) {
    let (app_port, metrics_port) = (free_port(), free_port());
    let child = Command::new(workspace_bins::binary("app", "app"))
        .args([
            "--listen",
            &format!("127.0.0.1:{app_port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
            "--host",
            "pod-1",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&metrics).is_err() {
        assert!(Instant::now() < deadline, "app did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, metrics)
}

fn tutorial_config_for(dir: &std::path::Path, metrics: &str) -> std::path::PathBuf {
    let text = include_str!("../examples/tutorial-telegraf.conf").replace(
        "http://localhost:8000/metrics",
        &format!("http://{metrics}/metrics"),
    );
    let path = dir.join("telegraf.conf");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn test_mode_prints_the_tutorial_line_and_writes_nothing() {
    let (mut app, metrics) = start_app();
    let dir = tempfile::tempdir().unwrap();
    let config = tutorial_config_for(dir.path(), &metrics);
    // Telegraf's single-dash spelling, as the tutorial's users type it.
    let output = agent()
        .args(["-config", config.to_str().unwrap(), "-test"])
        .output()
        .unwrap();
    let _ = app.kill();
    let _ = app.wait();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout.lines().next().expect("one metric");
    let expected_prefix =
        format!("> requests,deployment=app,host=pod-1,url=http://{metrics}/metrics counter=0 ");
    assert!(line.starts_with(&expected_prefix), "{line}");
    assert_eq!(stdout.lines().count(), 1, "namepass keeps only requests");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("agent.precision"),
        "the old precision form is warned about: {stderr}"
    );
}

#[test]
fn test_mode_exits_1_when_an_input_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = tutorial_config_for(dir.path(), &format!("127.0.0.1:{}", free_port()));
    let output = agent()
        .args(["--config", config.to_str().unwrap(), "--test"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Connection refused"));
}

#[test]
fn the_config_comes_from_telegraf_config_path_when_no_flag_names_one() {
    let (mut app, metrics) = start_app();
    let dir = tempfile::tempdir().unwrap();
    let config = tutorial_config_for(dir.path(), &metrics);
    let output = agent()
        .arg("--test")
        .env("TELEGRAF_CONFIG_PATH", &config)
        .output()
        .unwrap();
    let _ = app.kill();
    let _ = app.wait();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("> requests,"));
}

#[test]
fn bad_configs_and_flags_exit_64_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.conf");
    std::fs::write(&broken, "[agent]\ninterval = \"often\"\n[[inputs.prometheus]]\nurls=[\"http://a\"]\n[[outputs.file]]\n").unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--config", broken.to_str().unwrap(), "--test"],
            "agent.interval",
        ),
        (
            &["--config", "/nonexistent/telegraf.conf"],
            "/nonexistent/telegraf.conf",
        ),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, named) in cases {
        let output = agent().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
    let version = agent().arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("agent "));
}

#[test]
fn self_metrics_are_served_and_pass_promtool() {
    let (mut app, metrics) = start_app();
    let dir = tempfile::tempdir().unwrap();
    let config = tutorial_config_for(dir.path(), &metrics);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = agent()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--metrics-listen",
            &listen,
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until one gather happened (the interval is 1 s).
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines();
    lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("agent started"))
        .expect("the agent starts");
    std::thread::spawn(move || lines.for_each(drop));
    let deadline = Instant::now() + Duration::from_secs(15);
    let exposition = loop {
        let (status, body) = http(listen.parse().unwrap(), "GET", "/metrics", "");
        if status == 200
            && body.contains(r#"agent_gathered_metrics_total{input="prometheus[0]"} 1"#)
        {
            break body;
        }
        assert!(Instant::now() < deadline, "no gather counted: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().unwrap();
    let _ = app.kill();
    let _ = app.wait();
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
    assert!(exposition.contains(r#"agent_buffer_limit_metrics{output="influxdb[0]"} 10000"#));

    if let Some(check) = workspace_bins::peers::promtool_check_metrics(&exposition) {
        assert!(check.passed(), "{}", check.report);
    }
}

#[test]
fn a_required_environment_variable_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("telegraf.conf");
    std::fs::write(
        &config,
        "[[inputs.prometheus]]\nurls = [\"${SCRAPE_URL:?set SCRAPE_URL to the app's metrics}\"]\n\
         [[outputs.file]]\n",
    )
    .unwrap();
    let output = agent()
        .args(["--config", config.to_str().unwrap(), "--test"])
        .env_remove("SCRAPE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .matches("set SCRAPE_URL to the app's metrics")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("telegraf.conf"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
}
