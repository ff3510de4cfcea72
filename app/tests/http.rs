//! The app over real HTTP on loopback: in-process for the counting rules, as a child process for
//! flags, environment, signals and the real `promtool`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// One HTTP/1.1 request on its own connection; returns (status, body).
async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the `requests` series in an exposition.
fn requests_value(exposition: &str) -> f64 {
    exposition
        .lines()
        .find(|line| line.starts_with("requests{"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no requests series in:\n{exposition}"))
}

struct InProcess {
    app: SocketAddr,
    metrics: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

impl InProcess {
    async fn start(capacity: Option<f64>) -> Self {
        let config = app::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            capacity,
            host: "pod-a".into(),
            deployment: "app".into(),
        };
        let app = app::App::bind(config).await.expect("bind");
        let (stop, stopped) = oneshot::channel();
        let (app_addr, metrics) = (app.app_addr(), app.metrics_addr());
        let served = tokio::spawn(app.serve(async {
            let _ = stopped.await;
        }));
        Self {
            app: app_addr,
            metrics,
            stop: Some(stop),
            served,
        }
    }

    async fn requests(&self) -> f64 {
        requests_value(&request(self.metrics, "GET", "/metrics").await.1)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        self.served.await.expect("serve task");
    }
}

#[tokio::test]
async fn every_get_of_root_is_counted_exactly_once() {
    let app = InProcess::start(None).await;
    assert_eq!(
        app.requests().await,
        0.0,
        "exported as 0 before any request"
    );
    for n in 1..=5 {
        assert_eq!(request(app.app, "GET", "/").await, (200, "ok".to_owned()));
        assert_eq!(app.requests().await, f64::from(n));
    }
    app.stop().await;
}

#[tokio::test]
async fn health_checks_unknown_paths_and_other_methods_are_not_counted() {
    let app = InProcess::start(None).await;
    assert_eq!(
        request(app.app, "GET", "/healthz").await,
        (200, "ok".into())
    );
    assert_eq!(request(app.app, "GET", "/nope").await.0, 404);
    assert_eq!(request(app.app, "GET", "/metrics").await.0, 404);
    assert_eq!(request(app.app, "POST", "/").await.0, 405);
    assert_eq!(request(app.app, "DELETE", "/healthz").await.0, 405);
    assert_eq!(app.requests().await, 0.0);
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_served_on_every_path_as_text_0_0_4() {
    let app = InProcess::start(None).await;
    let mut stream = TcpStream::connect(app.metrics).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{response}"
    );
    for path in ["/", "/metrics", "/anything/else"] {
        let (status, body) = request(app.metrics, "GET", path).await;
        assert_eq!(status, 200);
        assert!(body.contains("# TYPE requests counter\n"), "{path}: {body}");
        assert!(body.contains("# TYPE process_resident_memory_bytes gauge\n"));
    }
    app.stop().await;
}

#[tokio::test]
async fn capacity_queues_excess_requests_without_failing_any() {
    // 40 requests at once to an instance that serves 20 per second: all succeed, and the last is
    // served no earlier than 39 slots of 50 ms after the first. A slow machine can only make
    // this later, so the bound cannot flake.
    let app = InProcess::start(Some(20.0)).await;
    let started = std::time::Instant::now();
    let requests: Vec<_> = (0..40)
        .map(|_| tokio::spawn(request(app.app, "GET", "/")))
        .collect();
    for handle in requests {
        assert_eq!(handle.await.unwrap(), (200, "ok".to_owned()));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900),
        "40 requests at 20 rps took only {elapsed:?}"
    );
    assert_eq!(app.requests().await, 40.0);
    app.stop().await;
}

/// The app binary as a child process, with its bound addresses read from its log.
struct Process {
    child: Child,
    app: SocketAddr,
    metrics: SocketAddr,
}

impl Process {
    fn start(envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_app"))
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .env_remove("APP_CAPACITY")
            .env_remove("APP_DEPLOYMENT")
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start app");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut lines = stderr.lines();
        let line = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|line| line.contains("listening"))
            .expect("the app logs its addresses");
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let field = |name: &str| -> SocketAddr {
            let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
            line[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        Self {
            app: field("app"),
            metrics: field("metrics"),
            child,
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        self.child.wait().expect("wait")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn labels_come_from_hostname_and_app_deployment() {
    let app = Process::start(&[("HOSTNAME", "app-7d9f-x2"), ("APP_DEPLOYMENT", "shop")]);
    request(app.app, "GET", "/").await;
    let (_, body) = request(app.metrics, "GET", "/").await;
    assert!(
        body.contains(r#"requests{host="app-7d9f-x2",deployment="shop"} 1"#),
        "{body}"
    );
    assert!(app.terminate().success());
}

#[tokio::test]
async fn sigterm_stops_the_app_cleanly() {
    let app = Process::start(&[]);
    assert_eq!(request(app.app, "GET", "/").await.0, 200);
    let status = app.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn bad_flags_exit_64_with_a_message() {
    for args in [
        &["--capacity", "lots"][..],
        &["--capacity", "0"],
        &["--listen", "not-an-address"],
        &["--no-such-flag"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_app"))
            .args(args)
            .env_remove("APP_CAPACITY")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?} printed no message");
    }
}

/// `promtool check metrics` from the Debian package `prometheus` parses the exposition; the only
/// lint it may report is the tutorial-mandated counter name without `_total`.
#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let app = Process::start(&[("HOSTNAME", "pod"), ("APP_CAPACITY", "1000")]);
    for _ in 0..3 {
        request(app.app, "GET", "/").await;
    }
    let (_, exposition) = request(app.metrics, "GET", "/").await;
    let Some(check) = workspace_bins::peers::promtool_check_metrics(&exposition) else {
        return;
    };
    let problems =
        check.problems_except(&[r#"requests counter metrics should have "_total" suffix"#]);
    assert!(problems.is_empty(), "promtool: {problems:?}\n{exposition}");
    // 0 = clean, 3 = lint findings only; 1 would be a parse error.
    assert!(matches!(check.code, Some(0 | 3)), "{check:?}");
}
