//! The app pod and the processor as the manifests configure them, run as processes on
//! loopback: the app with the Deployment's flags, the agent with the ConfigMap's telegraf.conf
//! and the Secret's credentials in its environment, the processor with its ConfigMap's
//! processor.conf, its user from the Secret through its environment, and the task ConfigMap in
//! its load directory. The Secret is the one manifests/README.md's command creates. Only the cluster addresses are
//! rewritten to loopback ports (the API server is the stand-in), and the processor's data and
//! load dirs to temp dirs. The task is enabled at start without a define step; the agent's write
//! is accepted, and refused with a wrong password, so the credentials really flow from the
//! Secret to both sides.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_standin::{Config as StandinConfig, Handle, Server};
use manifests_tests::render::{self, Rendered, containers, strings};
use manifests_tests::{manifests_dir, tools};
use serde_json::Value;
use workspace_bins::peers::{free_port, http};

const STANDIN_TOKEN: &str = "processor-service-account-token";

use workspace_bins::peers::KillOnDrop as Running;

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Container `name` of the pods of workload `owner` (a Deployment or a StatefulSet).
fn container<'a>(rendered: &'a Rendered, owner: &str, name: &str) -> &'a Value {
    let object = rendered
        .get("Deployment", owner)
        .or_else(|| rendered.get("StatefulSet", owner))
        .expect("the workload");
    let spec = object.pointer("/spec/template/spec").expect("pod spec");
    containers(spec)
        .into_iter()
        .find(|container| str_at(container, "/name") == name)
        .expect("the container")
}

fn wait_for(addr: SocketAddr, path: &str, status: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() || http(addr, "GET", path, "").0 != status {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up on {addr}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Replaces the one `host:port` argument that listens on `port` with `addr`.
fn relisten(args: &[String], port: u16, addr: SocketAddr) -> Vec<String> {
    let suffix = format!(":{port}");
    let replaced: Vec<String> = args
        .iter()
        .map(|arg| {
            if arg.ends_with(&suffix) {
                addr.to_string()
            } else {
                arg.clone()
            }
        })
        .collect();
    assert_ne!(replaced, args, "no argument listens on :{port}: {args:?}");
    replaced
}

/// One HTTP/1.0 GET with Basic credentials; returns (status, body).
fn get_with_basic_auth(addr: SocketAddr, path: &str, user: &str, password: &str) -> (u16, String) {
    use base64::Engine as _;
    use std::io::{Read, Write};
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Basic {credentials}\r\n\r\n"
    );
    let mut response = String::new();
    if stream.write_all(request.as_bytes()).is_err()
        || stream.read_to_string(&mut response).is_err()
    {
        return (0, String::new());
    }
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn run_agent_once(config: &Path, env: &[(&str, &str)]) -> Output {
    let agent = workspace_bins::binary("agent", "agent");
    Command::new(agent)
        .args(["--config"])
        .arg(config)
        .arg("--once")
        .env_remove("TELEGRAF_CONFIG_PATH")
        .envs(env.iter().copied())
        .output()
        .expect("run the agent")
}

/// The environment the container gets from Secret keys (the documented Secret's values).
fn secret_env(container: &Value) -> Vec<(String, String)> {
    container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|var| {
            let reference = var.pointer("/valueFrom/secretKeyRef")?;
            let value = manifests_tests::created_secret_value(
                str_at(reference, "/name"),
                str_at(reference, "/key"),
            )?;
            Some((str_at(var, "/name").to_owned(), value.to_owned()))
        })
        .collect()
}

/// Key `key` of the Secret the pods read.
fn secret(key: &str) -> &'static str {
    manifests_tests::created_secret_value(manifests_tests::CREATED_SECRET, key).expect("a key")
}

/// Starts the processor on its ConfigMap's processor.conf (data dir in `dir`). With `standin`,
/// the task ConfigMap is its load directory and the stand-in its cluster (no ServiceAccount out
/// here); without, `[load]` and `[kubernetes]` are left out.
fn start_processor(
    rendered: &Rendered,
    dir: &Path,
    standin: Option<&Handle>,
) -> (Running, SocketAddr) {
    let map = rendered
        .get("ConfigMap", "processor-config")
        .expect("ConfigMap processor-config");
    let mut table: toml::Table = str_at(map, "/data/processor.conf")
        .parse()
        .expect("processor.conf is TOML");
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    table.insert(
        "data_dir".into(),
        toml::Value::String(data_dir.display().to_string()),
    );
    match standin {
        Some(standin) => use_tasks_and_standin(rendered, &mut table, dir, standin),
        None => {
            table.remove("load");
            table.remove("kubernetes");
            // Without a cluster there is no Lease to elect on: a standalone replica.
            table.remove("ha");
        }
    }
    let processor_conf = dir.join("processor.conf");
    std::fs::write(&processor_conf, toml::to_string(&table).expect("TOML")).expect("write");
    let processor_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let processor_args = strings(container(rendered, "processor", "processor"), "args");
    let config_at = processor_args
        .iter()
        .position(|arg| arg == "--config")
        .expect("--config");
    let mut args = processor_args.clone();
    args[config_at + 1] = processor_conf.display().to_string();
    args.extend(["--bind".to_owned(), processor_addr.to_string()]);
    let processor_log = dir.join("processor.log");
    let processor = Running(
        Command::new(workspace_bins::binary("processor", "processor"))
            .args(&args)
            .envs(secret_env(container(rendered, "processor", "processor")))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&processor_log).expect("log file"))
            .spawn()
            .expect("start the processor"),
    );
    wait_for(
        processor_addr,
        "/ping",
        204,
        "the processor",
        &processor_log,
    );
    (processor, processor_addr)
}

/// Puts the task ConfigMap in a load directory under `dir` and points `[kubernetes]` at the
/// stand-in.
fn use_tasks_and_standin(
    rendered: &Rendered,
    table: &mut toml::Table,
    dir: &Path,
    standin: &Handle,
) {
    let load_dir = dir.join("load");
    let tasks = rendered
        .get("ConfigMap", "processor-tasks")
        .expect("processor-tasks");
    let mut task_count = 0;
    for (file, script) in tasks
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let path = load_dir.join("tasks").join(file);
        std::fs::create_dir_all(load_dir.join("tasks")).expect("tasks dir");
        std::fs::write(path, script.as_str().unwrap_or("")).expect("write the task");
        task_count += 1;
    }
    assert_eq!(task_count, 1);
    let load = table
        .get_mut("load")
        .and_then(toml::Value::as_table_mut)
        .expect("[load]");
    load.insert(
        "dir".into(),
        toml::Value::String(load_dir.display().to_string()),
    );
    let kubernetes = table
        .get_mut("kubernetes")
        .and_then(toml::Value::as_table_mut)
        .expect("[kubernetes]");
    kubernetes.insert("in-cluster".into(), toml::Value::Boolean(false));
    kubernetes.insert(
        "api-servers".into(),
        toml::Value::Array(vec![toml::Value::String(standin.url())]),
    );
    kubernetes.insert("token".into(), toml::Value::String(STANDIN_TOKEN.into()));
}

#[test]
fn the_agent_delivers_the_apps_requests_to_the_processor_with_the_secrets_credentials() {
    let Some(kubectl) = tools::kubectl() else {
        return;
    };
    let rendered = render::kustomize(&kubectl, &manifests_dir().join("base")).expect("renders");
    let (username, password) = (secret("username"), secret("password"));
    let dir = tempfile::tempdir().expect("temp dir");
    // Both replicas of the StatefulSet, each with its own data dir.
    let mut replicas = Vec::new();
    for n in 0..2 {
        let replica_dir = dir.path().join(format!("processor-{n}"));
        std::fs::create_dir_all(&replica_dir).expect("replica dir");
        replicas.push(start_processor(&rendered, &replica_dir, None));
    }

    // The app, with the Deployment's flags on loopback ports.
    let app_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let app_args = strings(container(&rendered, "app", "app"), "args");
    let app_args = relisten(&relisten(&app_args, 8080, app_addr), 8000, metrics_addr);
    let app_log = dir.path().join("app.log");
    let _app = Running(
        Command::new(workspace_bins::binary("app", "app"))
            .args(&app_args)
            .env("APP_DEPLOYMENT", "app")
            .env("HOSTNAME", "app-pod-1")
            .env_remove("APP_CAPACITY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&app_log).expect("log file"))
            .spawn()
            .expect("start the app"),
    );
    wait_for(app_addr, "/healthz", 200, "the app", &app_log);
    for _ in 0..3 {
        assert_eq!(http(app_addr, "GET", "/", "").0, 200);
    }

    // The agent, on the ConfigMap's telegraf.conf with the cluster addresses on loopback.
    let map = rendered
        .get("ConfigMap", "agent-config")
        .expect("agent-config");
    let telegraf_conf = str_at(map, "/data/telegraf.conf");
    let mut telegraf_conf = telegraf_conf.to_owned();
    for (n, (_, addr)) in replicas.iter().enumerate() {
        let url = format!("http://processor-{n}.processor-peers:9092");
        assert!(telegraf_conf.contains(&url), "no output to {url}");
        telegraf_conf = telegraf_conf.replace(&url, &format!("http://{addr}"));
    }
    assert!(telegraf_conf.contains("http://localhost:8000/metrics"));
    let telegraf_conf = telegraf_conf.replace(
        "http://localhost:8000/metrics",
        &format!("http://{metrics_addr}/metrics"),
    );
    let config_file = dir.path().join("telegraf.conf");
    std::fs::write(&config_file, telegraf_conf).expect("write");

    let accepted = run_agent_once(
        &config_file,
        &[
            ("PROCESSOR_USERNAME", username),
            ("PROCESSOR_PASSWORD", password),
        ],
    );
    let accepted_log = String::from_utf8_lossy(&accepted.stderr);
    assert!(
        accepted.status.success()
            && !accepted_log.contains("401")
            && !accepted_log.contains("ERROR"),
        "the agent's write with the Secret's credentials failed: {accepted_log}"
    );
    // Every replica accepted the points (each output writes to its own replica).
    for (n, (_, addr)) in replicas.iter().enumerate() {
        let (_, metrics) = http(*addr, "GET", "/metrics", "");
        let written: f64 = metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix("processor_points_written_total ")?
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0);
        assert!(written >= 1.0, "processor-{n} got no points: {metrics}");
    }
    let refused = run_agent_once(
        &config_file,
        &[
            ("PROCESSOR_USERNAME", username),
            ("PROCESSOR_PASSWORD", "wrong"),
        ],
    );
    // `agent --once` exits 0 when a batch is refused for good (a JSON 4xx is dropped, as
    // Telegraf does), so the refusal is read from its log.
    let refused_log = String::from_utf8_lossy(&refused.stderr);
    assert!(
        refused_log.contains("status 401"),
        "a wrong password must be refused with 401: {refused_log}"
    );
}

#[test]
fn the_processor_starts_with_the_configmaps_task_enabled_and_its_cluster_configured() {
    let Some(kubectl) = tools::kubectl() else {
        return;
    };
    let rendered = render::kustomize(&kubectl, &manifests_dir().join("base")).expect("renders");
    let (username, password) = (secret("username"), secret("password"));
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let standin = runtime
        .block_on(Server::start(
            StandinConfig::default()
                .with_deployment("default", "app", 1)
                .with_token(STANDIN_TOKEN, "system:serviceaccount:default:processor"),
        ))
        .expect("the stand-in starts");
    let (_processor, processor_addr) = start_processor(&rendered, dir.path(), Some(&standin));
    // The task from the ConfigMap is loaded and enabled at start, with no define step.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get_with_basic_auth(
            processor_addr,
            "/kapacitor/v1/tasks/autoscale",
            username,
            password,
        );
        let enabled = serde_json::from_str::<serde_json::Value>(&body)
            .is_ok_and(|task| task["status"] == "enabled");
        if status == 200 && enabled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "task autoscale is not enabled: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // With `[ha]` (as shipped) readiness is 200 with the replica's role; this one leads the
    // stand-in's Lease alone.
    wait_for(
        processor_addr,
        "/ready",
        200,
        "the processor's readiness",
        &dir.path().join("processor.log"),
    );
}
