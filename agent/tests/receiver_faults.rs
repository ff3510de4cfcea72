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
