//! The influxdb output against a receiver that misbehaves on purpose: each answer is handled
//! as Telegraf handles it (compat.md §4.3), and nothing retried is lost or reordered.
//!
//! The scrape target is the real example app, in-process; the receiver is a scripted HTTP server
//! that records every write it gets.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use agent::Agent;
use agent::config::Config;
use agent::telemetry::Telemetry;

/// One scripted answer.
#[derive(Clone)]
enum Answer {
    Status(u16, &'static str),
    /// A status with headers and a body.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    Hang,
}

#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<Answer>>,
    /// Bodies of `/write` requests, gunzipped, in arrival order.
    writes: Mutex<Vec<String>>,
}

async fn start_receiver(script: Vec<Answer>) -> (SocketAddr, Arc<Receiver>) {
    let receiver = Arc::new(Receiver {
        script: Mutex::new(script.into()),
        writes: Mutex::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = Arc::clone(&receiver);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let receiver = Arc::clone(&shared);
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let receiver = Arc::clone(&receiver);
                    async move { Ok::<_, Infallible>(answer(&receiver, request).await) }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (addr, receiver)
}

async fn answer(
    receiver: &Receiver,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let gzip = request
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let body = request.into_body().collect().await.unwrap().to_bytes();
    if path == "/query" {
        return Response::new(Full::new(Bytes::from_static(
            br#"{"results":[{"statement_id":0}]}"#,
        )));
    }
    let text = if gzip {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
            .unwrap();
        text
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    receiver.writes.lock().unwrap().push(text);
    let next = receiver
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Status(204, ""));
    match next {
        Answer::Status(code, body) => {
            let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *response.status_mut() = StatusCode::from_u16(code).unwrap();
            response
        }
        Answer::Full {
            status,
            headers,
            body,
        } => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, hyper::header::HeaderValue::from_str(&value).unwrap());
            }
            response
        }
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::new(Full::new(Bytes::new()))
        }
    }
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

async fn agent_for(receiver: SocketAddr) -> (Agent, Telemetry) {
    let app = start_app().await;
    let text = format!(
        "[agent]\ninterval = \"1s\"\nomit_hostname = true\n\
         [[inputs.prometheus]]\nurls = [\"http://{app}/metrics\"]\nnamepass = [\"requests\"]\n\
         [[outputs.influxdb]]\nurls = [\"http://{receiver}\"]\ndatabase = \"autoscale\"\ntimeout = \"1s\"\n"
    );
    let config = Config::parse(&text, |_| None).unwrap();
    let telemetry = Telemetry::new();
    let agent = Agent::new(config, None, &telemetry).unwrap();
    (agent, telemetry)
}

/// What `tracing` writes on this thread while the guard lives.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&logs);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || Captured(Arc::clone(&sink)))
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

fn logged(logs: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&logs.lock().unwrap()).into_owned()
}

fn metric_value(telemetry: &Telemetry, series: &str) -> f64 {
    let text = telemetry.render();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test]
async fn a_json_400_drops_the_batch_with_a_count() {
    let (addr, receiver) = start_receiver(vec![Answer::Status(
        400,
        r#"{"error":"unable to parse 'x': invalid boolean"}"#,
    )])
    .await;
    let (agent, telemetry) = agent_for(addr).await;
    let (errors, delivered) = agent.once().await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        !delivered,
        "a refused batch was not delivered (so --once exits non-zero)"
    );
    assert_eq!(receiver.writes.lock().unwrap().len(), 1);
    assert_eq!(
        metric_value(
            &telemetry,
            r#"agent_dropped_metrics_total{output="influxdb[0]",reason="rejected"}"#
        ),
        1.0
    );
    // The next gather starts clean: one new write, with only the new metric.
    let _ = agent.once().await;
    let writes = receiver.writes.lock().unwrap();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[1].lines().count(), 1);
}

/// Plain text, 5xx and a hung receiver all keep the batch; the next write carries it first,
/// followed by what was gathered since.
async fn kept_and_retried_in_order(failure: Answer) {
    let (addr, receiver) = start_receiver(vec![failure]).await;
    let (agent, telemetry) = agent_for(addr).await;
    let (_, delivered) = agent.once().await;
    assert!(!delivered, "the failed batch must be kept");
    let (_, delivered) = agent.once().await;
    assert!(delivered);
    let writes = receiver.writes.lock().unwrap();
    assert_eq!(writes.len(), 2);
    let first = writes[0].clone();
    let second: Vec<&str> = writes[1].lines().collect();
    assert_eq!(
        second.len(),
        2,
        "the kept metric and the new one: {second:?}"
    );
    assert_eq!(
        format!("{}\n", second[0]),
        first,
        "the kept batch comes first, unchanged"
    );
    assert_eq!(
        metric_value(
            &telemetry,
            r#"agent_write_errors_total{output="influxdb[0]"}"#
        ),
        1.0
    );
    assert_eq!(
        metric_value(
            &telemetry,
            r#"agent_written_metrics_total{output="influxdb[0]"}"#
        ),
        2.0
    );
}

#[tokio::test]
async fn a_plain_text_400_is_kept_and_retried() {
    kept_and_retried_in_order(Answer::Status(400, "bad request\n")).await;
}

#[tokio::test]
async fn a_500_is_kept_and_retried() {
    kept_and_retried_in_order(Answer::Status(500, r#"{"error":"timeout"}"#)).await;
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_the_batch_is_retried() {
    kept_and_retried_in_order(Answer::Hang).await;
}

#[tokio::test]
async fn the_write_request_has_telegrafs_shape() {
    let (addr, receiver) = start_receiver(vec![]).await;
    let (agent, _) = agent_for(addr).await;
    let _ = agent.once().await;
    let writes = receiver.writes.lock().unwrap();
    let line = writes[0].trim_end();
    assert!(
        line.starts_with("requests,deployment=app,host=pod-1,url=http://127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("/metrics counter=0 "), "{line}");
    let time: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(
        time % 1_000_000_000,
        0,
        "rounded to the 1 s precision of a 1 s interval"
    );
}

#[tokio::test]
async fn a_2xx_with_a_body_beyond_the_cap_is_written_once() {
    let (addr, receiver) = start_receiver(vec![Answer::Full {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        // Four times the 64 KiB of a response body that is read.
        body: vec![b' '; 256 * 1024],
    }])
    .await;
    let (agent, telemetry) = agent_for(addr).await;
    let (errors, delivered) = agent.once().await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(delivered, "a 2xx is written, whatever its body");
    assert_eq!(receiver.writes.lock().unwrap().len(), 1, "sent once");
    assert_eq!(
        metric_value(
            &telemetry,
            r#"agent_written_metrics_total{output="influxdb[0]"}"#
        ),
        1.0
    );
    // The next write goes through as usual.
    let (_, delivered) = agent.once().await;
    assert!(delivered);
    let writes = receiver.writes.lock().unwrap();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[1].lines().count(), 1, "nothing was sent twice");
}

/// A 429 keeps the batch, and the pause before the next attempt is what `Retry-After` asked,
/// within the backoff's bounds (0.5 s to 30 s); `pause` is how the warning shows it.
async fn throttled_and_retried(retry_after: &str, pause: &str) {
    let (addr, receiver) = start_receiver(vec![Answer::Full {
        status: 429,
        headers: vec![("retry-after", retry_after.to_owned())],
        body: Vec::new(),
    }])
    .await;
    let (agent, telemetry) = agent_for(addr).await;
    let (logs, _guard) = capture_logs();
    let (_, delivered) = agent.once().await;
    assert!(!delivered, "the throttled batch is kept, not yet delivered");
    let logs = logged(&logs);
    let warning = logs
        .lines()
        .find(|line| line.contains("write failed; batch kept for retry"))
        .unwrap_or_else(|| panic!("no retry warning in {logs}"));
    assert!(warning.contains("status 429"), "{warning}");
    assert!(
        warning.ends_with(&format!(" retry_in={pause}")),
        "{warning}"
    );

    let (_, delivered) = agent.once().await;
    assert!(delivered);
    let writes = receiver.writes.lock().unwrap();
    assert_eq!(writes.len(), 2);
    assert_eq!(
        writes[1].lines().count(),
        2,
        "the kept metric and the new one"
    );
    assert!(
        writes[1].starts_with(writes[0].as_str()),
        "the kept batch comes first"
    );
    assert!(
        !telemetry.render().contains(r#"reason="rejected"} 1"#),
        "nothing was dropped as rejected"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_in_seconds() {
    throttled_and_retried("2", "2s").await;
}

#[tokio::test]
async fn a_429_retry_after_beyond_the_backoff_cap_waits_the_cap() {
    throttled_and_retried("3600", "30s").await;
}

#[tokio::test]
async fn a_429_retry_after_date_in_the_past_waits_the_shortest_pause() {
    throttled_and_retried("Thu, 01 Jan 1970 00:00:00 GMT", "500ms").await;
}

#[tokio::test]
async fn a_redirect_is_retried_naming_its_status_and_location() {
    let (addr, _receiver) = start_receiver(vec![Answer::Full {
        status: 307,
        headers: vec![("location", "http://processor-2:9092/write".to_owned())],
        body: Vec::new(),
    }])
    .await;
    let (agent, _) = agent_for(addr).await;
    let (logs, _guard) = capture_logs();
    let (_, delivered) = agent.once().await;
    assert!(!delivered);
    let logs = logged(&logs);
    let warning = logs
        .lines()
        .find(|line| line.contains("write failed; batch kept for retry"))
        .unwrap_or_else(|| panic!("no retry warning in {logs}"));
    assert!(warning.contains("status 307"), "{warning}");
    assert!(
        warning.contains("http://processor-2:9092/write"),
        "{warning}"
    );
}
