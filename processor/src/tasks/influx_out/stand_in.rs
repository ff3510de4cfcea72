//! Test support: a loopback stand-in for InfluxDB and clients pointed at it.

use std::sync::Arc;
use std::time::Duration;

use super::Client;
use crate::config::tasks::InfluxDb;

/// A loopback stand-in for InfluxDB: answers every request with `status` and `body` (or
/// never, for `status` 0) and records `(request line, authorization, body)`.
pub(super) struct StandIn {
    pub(super) url: String,
    seen: Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
}

impl StandIn {
    pub(super) async fn start(status: u16, body: &'static str) -> StandIn {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, request_body) = loop {
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        data.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&data).into_owned();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap())
                                })
                                .unwrap_or(0);
                            if body.len() >= length {
                                break (head.to_owned(), body.to_owned());
                            }
                        }
                    };
                    let authorization = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("authorization: ")
                                .or_else(|| l.strip_prefix("Authorization: "))
                        })
                        .unwrap_or_default()
                        .to_owned();
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    record
                        .lock()
                        .unwrap()
                        .push((line, authorization, request_body));
                    if status == 0 {
                        std::future::pending::<()>().await;
                    }
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        StandIn { url, seen }
    }

    pub(super) fn requests(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// A client of one section over `urls`, with Basic auth `kapacitor:s3cret`.
pub(super) fn client(urls: &[&str], timeout: Duration) -> Client {
    Client::new(&[InfluxDb {
        urls: urls.iter().map(|u| (*u).to_owned()).collect(),
        username: "kapacitor".into(),
        password: "s3cret".into(),
        timeout,
        ..InfluxDb::default()
    }])
}

/// A URL nothing listens on.
pub(super) async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}
