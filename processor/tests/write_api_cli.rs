//! `processor serve` as a process: config errors exit 64 naming the key, unknown keys are
//! warned about, the server answers on `--bind`, and SIGTERM stops it cleanly.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_processor");

/// `processor.conf` in `dir`: `text` after a `data_dir` inside `dir`.
fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("processor.conf");
    let data = dir.path().join("data");
    let text = format!("data_dir = {:?}\n{text}", data.display().to_string());
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn a_bad_config_value_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(&dir, "[http]\nmax-body-size = \"lots\"\n");
    let output = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("run processor");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("http.max-body-size"), "{stderr}");
}

#[test]
fn a_missing_config_file_or_bad_flag_exits_64() {
    let output = Command::new(BIN)
        .args(["serve", "--config", "/nonexistent/processor.conf"])
        .output()
        .expect("run processor");
    assert_eq!(output.status.code(), Some(64));
    let output = Command::new(BIN)
        .args(["serve", "--no-such-flag"])
        .output()
        .expect("run processor");
    assert_eq!(output.status.code(), Some(64));
    let output = Command::new(BIN)
        .args(["serve", "--bind", "nowhere"])
        .output()
        .expect("run processor");
    assert_eq!(output.status.code(), Some(64));
}

#[test]
fn a_bad_environment_override_exits_64_naming_the_key_and_variable() {
    let output = Command::new(BIN)
        .arg("serve")
        .env("PROCESSOR_HTTP_MAX_BODY_SIZE", "big")
        .output()
        .expect("run processor");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("http.max-body-size") && stderr.contains("PROCESSOR_HTTP_MAX_BODY_SIZE"),
        "{stderr}"
    );
}

#[test]
fn serve_answers_on_bind_warns_about_unknown_keys_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(&dir, "[http]\nlog-enabled = true\nbind-address = \":1\"\n");
    let port = workspace_bins::peers::free_port();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start processor");
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = ([127, 0, 0, 1], port).into();
    let status = loop {
        if let Some((status, _)) = workspace_bins::peers::try_http(addr, "GET", "/ping", "") {
            break status;
        }
        assert!(Instant::now() < deadline, "processor did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 204);
    let (status, body) = workspace_bins::peers::http(addr, "POST", "/write?db=x", "m v=1 1");
    assert_eq!(status, 204, "{body}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "processor did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("stderr");
    }
    assert!(stderr.contains("http.log-enabled"), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
}
