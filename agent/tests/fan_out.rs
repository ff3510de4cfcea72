//! Fan-out to processor replicas (issue #14): one `[[outputs.influxdb]]` per replica, each with
//! its own buffer and retries, as the manifests configure the agent. A replica that is down
//! for a while delays nothing of the other's and loses nothing of its own: once it is back it
//! gets every point the other got, once.
//!
//! The scrape target is the real example app, in-process; the replicas are two recording HTTP
//! servers on loopback, the second not listening at first.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use agent::Agent;
use agent::config::{Config, Output};
use agent::telemetry::Telemetry;

/// The lines of every `/write` a replica answered 204, in arrival order.
type Lines = Arc<Mutex<Vec<String>>>;

/// A replica that accepts every write on `listener`.
fn serve_replica(listener: TcpListener) -> Lines {
    let lines: Lines = Arc::default();
    let shared = Arc::clone(&lines);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let lines = Arc::clone(&shared);
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let lines = Arc::clone(&lines);
                    async move { Ok::<_, Infallible>(accept(&lines, request).await) }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    lines
}

async fn accept(lines: &Lines, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let gzip = request
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let body = request.into_body().collect().await.unwrap().to_bytes();
    if path == "/write" {
        let mut text = String::new();
        if gzip {
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
                .unwrap();
        } else {
            text = String::from_utf8(body.to_vec()).unwrap();
        }
        lines
            .lock()
            .unwrap()
            .extend(text.lines().map(str::to_owned));
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        return response;
    }
    Response::new(Full::new(Bytes::from_static(
        br#"{"results":[{"statement_id":0}]}"#,
    )))
}

async fn start_app() -> SocketAddr {
    let config = app::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        capacity: None,
        host: "pod-1".into(),
        deployment: "app".into(),
    };
    let app = app::App::bind(config).await.unwrap();
    let metrics = app.metrics_addr();
    tokio::spawn(app.serve(std::future::pending()));
    metrics
}

fn count(lines: &Lines) -> usize {
    lines.lock().unwrap().len()
}

/// Waits (at most 60 s, generous for a loaded machine) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sorted(lines: &Lines) -> Vec<String> {
    let mut lines = lines.lock().unwrap().clone();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_down_for_a_while_delays_nothing_of_the_other_and_then_gets_every_point_once() {
    let app = start_app().await;
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    let up_lines = serve_replica(up);
    // The second replica's port, with nothing listening on it yet: connections are refused.
    let down_addr: SocketAddr = format!("127.0.0.1:{}", workspace_bins::peers::free_port())
        .parse()
        .unwrap();
    let text = format!(
        "[agent]\ninterval = \"1s\"\nflush_interval = \"1s\"\nomit_hostname = true\n\
         [[inputs.prometheus]]\nurls = [\"http://{app}/metrics\"]\nnamepass = [\"requests\"]\n\
         [[outputs.influxdb]]\nurls = [\"http://{up_addr}\"]\ndatabase = \"autoscale\"\ntimeout = \"1s\"\n\
         [[outputs.influxdb]]\nurls = [\"http://{down_addr}\"]\ndatabase = \"autoscale\"\ntimeout = \"1s\"\n"
    );
    let config = Config::parse(&text, |_| None).unwrap();
    let influx_outputs = config
        .outputs
        .iter()
        .filter(|output| matches!(output, Output::Influxdb(_)))
        .count();
    assert_eq!(influx_outputs, 2);
    let telemetry = Telemetry::new();
    let agent = Agent::new(config, None, &telemetry).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));

    // While the second replica is down, the first keeps getting each flush: five gathers of
    // the one `requests` series, five lines.
    wait_until("5 points at the replica that is up", || {
        count(&up_lines) >= 5
    })
    .await;
    let errors = telemetry.render();
    assert!(
        errors.contains(r#"agent_write_errors_total{output="influxdb[1]"}"#),
        "the down replica's output failed its writes:\n{errors}"
    );

    // The second replica comes up on its port; its output's buffer still holds every point.
    let down = TcpListener::bind(down_addr).await.unwrap();
    let late_lines = serve_replica(down);
    let seen_while_down = sorted(&up_lines);
    wait_until("the late replica to get what the other got", || {
        let late = sorted(&late_lines);
        seen_while_down.iter().all(|line| late.contains(line))
    })
    .await;

    // Stop (one last flush to both); then both replicas hold the same points, each once.
    let _ = stop.send(());
    running.await.unwrap();
    let up = sorted(&up_lines);
    let late = sorted(&late_lines);
    assert!(up.len() >= 5, "{up:?}");
    assert_eq!(up, late, "every point reaches both replicas, once");
    let mut unique = up.clone();
    unique.dedup();
    assert_eq!(unique, up, "no point is written twice to one replica");
}
