//! The three real binaries as separate processes, set up the way the tutorial does it: app and
//! agent processes per replica, the processor serving, the task defined and enabled with the
//! processor's kapacitor-style CLI, and the processor scaling a Deployment on the Kubernetes API
//! stand-in. Load goes up (the Deployment grows to ceil(rps/100)) and down (it shrinks).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use autoscaler_lab::loadgen::{LoadGenerator, Targets};
use workspace_bins::peers::free_port;

use workspace_bins::peers::KillOnDrop as Killed;

/// One replica: an app process and its agent process.
struct Pod {
    _app: Killed,
    _agent: Killed,
    addr: SocketAddr,
}

fn wait_for_port(addr: SocketAddr) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on {addr}");
}

fn start_pod(dir: &Path, index: usize, processor: &str) -> Pod {
    let (app_port, metrics_port) = (free_port(), free_port());
    let name = format!("app-{index:05}");
    let app = Killed(
        Command::new(workspace_bins::binary("app", "app"))
            .args(["--listen", &format!("127.0.0.1:{app_port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .args(["--capacity", "150"])
            .env("HOSTNAME", &name)
            .env("APP_DEPLOYMENT", "app")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    wait_for_port(addr);
    // The tutorial's telegraf.conf with the processor's URL and the lab's 1-s flush.
    let config = include_str!("../agent/examples/tutorial-telegraf.conf")
        .replace("http://kapacitor:9092", processor)
        .replace(
            "http://localhost:8000/metrics",
            &format!("http://127.0.0.1:{metrics_port}/metrics"),
        )
        .replace("flush_interval = \"10s\"", "flush_interval = \"1s\"")
        .replace(
            "[[outputs.file]]\n  files = [\"stdout\"]\n  data_format = \"influx\"\n",
            "",
        );
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, config).unwrap();
    let agent = Killed(
        Command::new(workspace_bins::binary("agent", "agent"))
            .args(["--config", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    Pod {
        _app: app,
        _agent: agent,
        addr,
    }
}

fn processor_cli(url: &str, args: &[&str]) {
    let output = Command::new(workspace_bins::binary("processor", "processor"))
        .args(args)
        .env("PROCESSOR_URL", url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "processor {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn separate_processes_scale_up_and_back_down() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime
        .block_on(k8s_standin::Server::start(
            k8s_standin::Config::default().with_deployment("default", "app", 1),
        ))
        .unwrap();
    let dir = tempfile_dir();
    let port = free_port();
    let processor_url = format!("http://127.0.0.1:{port}");
    let config = dir.join("processor.conf");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[http]\nbind-address = \"127.0.0.1:{port}\"\n\
             [kubernetes]\nenabled = true\napi-servers = [\"{}\"]\nnamespace = \"default\"\n",
            dir.join("data").display().to_string(),
            api.url()
        ),
    )
    .unwrap();
    let _processor = Killed(
        Command::new(workspace_bins::binary("processor", "processor"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(format!("127.0.0.1:{port}").parse().unwrap());

    // The tutorial's commands, with vars that shorten its one-minute windows.
    let tick = dir.join("autoscale.tick");
    std::fs::write(
        &tick,
        include_str!("../processor/tests/fixtures/tick/autoscale.tick"),
    )
    .unwrap();
    let vars = dir.join("vars.json");
    std::fs::write(
        &vars,
        r#"{"moving_avg_count": {"type": "int", "value": 5},
            "increase_cooldown": {"type": "duration", "value": "3s"},
            "decrease_cooldown": {"type": "duration", "value": "6s"}}"#,
    )
    .unwrap();
    processor_cli(
        &processor_url,
        &[
            "define",
            "autoscale",
            "-tick",
            tick.to_str().unwrap(),
            "-type",
            "stream",
            "-dbrp",
            "autoscale.autogen",
            "-vars",
            vars.to_str().unwrap(),
        ],
    );
    processor_cli(&processor_url, &["enable", "autoscale"]);

    // A kubelet: pods follow the Deployment's replicas.
    let endpoints = Arc::new(RwLock::new(Vec::<SocketAddr>::new()));
    let mut pods: Vec<Pod> = Vec::new();
    let mut started = 0;
    let mut reconcile = |pods: &mut Vec<Pod>| {
        let wanted = api
            .deployment_replicas("default", "app")
            .unwrap_or(0)
            .max(0) as usize;
        while pods.len() < wanted {
            started += 1;
            pods.push(start_pod(&dir, started, &processor_url));
        }
        while pods.len() > wanted {
            pods.pop();
        }
        *endpoints.write().unwrap() = pods.iter().map(|p| p.addr).collect();
    };
    reconcile(&mut pods);

    let generator = Arc::new(LoadGenerator::new(Targets::Endpoints(Arc::clone(
        &endpoints,
    ))));
    let mut replicas_seen = Vec::new();
    let mut second = 0u64;
    let start = tokio::time::Instant::now();
    let mut drive = |rps: f64, seconds: u64, pods: &mut Vec<Pod>, until: &dyn Fn(i64) -> bool| {
        let mut replicas = 0;
        for _ in 0..seconds {
            let at = start + Duration::from_secs(second);
            let generator = Arc::clone(&generator);
            let s = second;
            runtime.spawn(async move { generator.run_second(s, at, rps).await });
            runtime.block_on(async { tokio::time::sleep_until(at + Duration::from_secs(1)).await });
            second += 1;
            reconcile(pods);
            replicas = api.deployment_replicas("default", "app").unwrap_or(0);
            replicas_seen.push(replicas);
            if until(replicas) {
                break;
            }
        }
        replicas
    };
    // 250 rps wants ceil(250 / 100) = 3 replicas.
    let up = drive(250.0, 90, &mut pods, &|replicas| replicas == 3);
    // 50 rps wants 1.
    let down = drive(50.0, 90, &mut pods, &|replicas| replicas == 1);
    let peak = replicas_seen.iter().copied().max().unwrap();
    drop(pods);
    runtime.block_on(api.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(up, 3, "scaled up to ceil(250/100): {replicas_seen:?}");
    assert!(
        peak <= 4,
        "no overshoot beyond one replica: {replicas_seen:?}"
    );
    assert_eq!(
        down, 1,
        "scaled back down to ceil(50/100): {replicas_seen:?}"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lab-processes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
