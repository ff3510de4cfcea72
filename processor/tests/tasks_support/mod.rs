//! Starting an in-process processor on loopback and talking to its task API.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use processor::config::Config;
use processor::scaler::dry_run::DryRunScaler;
use processor::{Options, Processor};
use tokio::sync::oneshot;

pub const TUTORIAL: &str = include_str!("../fixtures/tick/autoscale.tick");

pub struct Running {
    pub addr: SocketAddr,
    pub scaler: Arc<DryRunScaler>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

pub fn config(data_dir: &Path, extra: &str) -> Config {
    let text = format!(
        "data_dir = {:?}\n[http]\nbind-address = \"127.0.0.1:0\"\n{extra}",
        data_dir.display().to_string()
    );
    let loaded = Config::parse(&text).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.config
}

pub async fn start(config: Config) -> Result<Running, processor::Error> {
    let scaler = Arc::new(DryRunScaler::new(processor::clock::system()));
    let processor = Processor::bind(
        config,
        Options {
            scaler: Some(scaler.clone()),
            ..Options::default()
        },
    )
    .await?;
    let addr = processor.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(processor.serve(async {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        scaler,
        stop: Some(tx),
        handle: Some(handle),
    })
}

pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, json, text)
}

/// POSTs line protocol with second timestamps to `autoscale.autogen`; asserts the 204.
pub async fn write_seconds(addr: SocketAddr, body: &str) {
    let (status, _, text) = call(
        addr,
        Method::POST,
        "/write?db=autoscale&rp=autogen&precision=s",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
}

/// Runs the processor binary's client command `args` against `url` (as `PROCESSOR_URL`):
/// (success, stdout, stderr).
pub fn cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(workspace_bins::binary("processor", "processor"))
        .args(args)
        .env("PROCESSOR_URL", url)
        .env_remove("KAPACITOR_URL")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn define_body(id: &str, script: &str, status: &str) -> String {
    serde_json::json!({
        "id": id,
        "type": "stream",
        "dbrps": [{"db": "autoscale", "rp": "autogen"}],
        "script": script,
        "status": status,
    })
    .to_string()
}

/// Polls `check` every 20 ms for up to 10 s.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
