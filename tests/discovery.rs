//! End to end with pod discovery: app processes registered on the Kubernetes API stand-in as
//! pods of Deployment `web` (through ReplicaSet `web-5d9`, IP 127.0.0.1, each its own metrics
//! port in `prometheus.io/port`), ONE agent process in discovery mode (no sidecars), and the
//! processor running the tutorial's task, which groups by the `deployment` tag: the tag the
//! agent found through the pod's ReplicaSet. The apps label their samples with another
//! deployment name, so the Deployment is scaled only if the discovered tag is used. Load goes up
//! (the Deployment grows to ceil(rps/100)) and down (it shrinks); pods are deleted from the API
//! as their processes stop.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use autoscaler_lab::loadgen::{LoadGenerator, Targets};
use k8s_standin::{Handle, PodSeed};
use serde_json::json;
use workspace_bins::peers::free_port;

use workspace_bins::peers::KillOnDrop as Killed;

/// One replica: an app process, registered as a pod.
struct Pod {
    _app: Killed,
    name: String,
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

fn start_pod(api: &Handle, index: usize) -> Pod {
    let (app_port, metrics_port) = (free_port(), free_port());
    let name = format!("web-5d9-{index:05}");
    let app = Killed(
        Command::new(workspace_bins::binary("app", "app"))
            .args(["--listen", &format!("127.0.0.1:{app_port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .args(["--capacity", "150"])
            .env("HOSTNAME", &name)
            .env("APP_DEPLOYMENT", "not-the-deployment")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    wait_for_port(addr);
    wait_for_port(format!("127.0.0.1:{metrics_port}").parse().unwrap());
    api.apply_pod(
        &PodSeed::new("default", &name)
            .label("app", "web")
            .annotation("prometheus.io/scrape", "true")
            .annotation("prometheus.io/port", &metrics_port.to_string())
            .owned_by("ReplicaSet", "web-5d9", "rs-uid")
            .running("127.0.0.1", true),
    )
    .unwrap();
    Pod {
        _app: app,
        name,
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
fn one_discovering_agent_lets_the_processor_scale_the_deployment_by_the_discovered_tag() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime
        .block_on(k8s_standin::Server::start(
            k8s_standin::Config::default().with_deployment("default", "web", 1),
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

    api.create(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d9", "namespace": "default",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                "uid": "d-uid", "controller": true}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "app"}]}}},
    }))
    .unwrap();
    // The one agent: discovery through a kubeconfig, 1-s interval and flush.
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig(None)).unwrap();
    let agent_config = dir.join("agent.conf");
    std::fs::write(
        &agent_config,
        format!(
            "[agent]\ninterval = \"1s\"\nflush_interval = \"1s\"\nprecision = \"1s\"\n\
             [[outputs.influxdb]]\nurls = [\"{processor_url}\"]\ndatabase = \"autoscale\"\n\
             retention_policy = \"autogen\"\n\
             [[inputs.prometheus]]\nmonitor_kubernetes_pods = true\nkube_config = {:?}\n\
             pod_workload_tags = {{ deployment = \"deployment\" }}\n\
             pod_label_exclude = [\"*\"]\npod_annotation_exclude = [\"*\"]\n\
             namepass = [\"requests\"]\n",
            kubeconfig.display().to_string()
        ),
    )
    .unwrap();
    let _agent = Killed(
        Command::new(workspace_bins::binary("agent", "agent"))
            .args(["--config", agent_config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

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
            .deployment_replicas("default", "web")
            .unwrap_or(0)
            .max(0) as usize;
        while pods.len() < wanted {
            started += 1;
            pods.push(start_pod(&api, started));
        }
        while pods.len() > wanted {
            if let Some(pod) = pods.pop() {
                api.delete_pod("default", &pod.name).unwrap();
            }
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
            replicas = api.deployment_replicas("default", "web").unwrap_or(0);
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
    let dir = std::env::temp_dir().join(format!("lab-discovery-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
