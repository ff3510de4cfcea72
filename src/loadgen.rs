//! An open-loop load generator, like `hey -q`: it sends the offered rate whatever the answers
//! do (a slow server does not slow the load down), spread evenly over each second and over the
//! live replicas like a Kubernetes Service, and records answers and latencies per second.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// Where requests go: a fixed URL, or the live replicas of the lab (round robin).
#[derive(Clone)]
pub enum Targets {
    Url(hyper::Uri),
    Endpoints(Arc<RwLock<Vec<SocketAddr>>>),
}

/// Answers of one second (by the second the request was sent in).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecondStats {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    /// Latencies of the answered requests, in milliseconds.
    pub latencies_ms: Vec<f64>,
}

impl SecondStats {
    /// The 99th percentile latency (nearest rank), if anything was answered.
    pub fn p99_ms(&self) -> Option<f64> {
        percentile(&self.latencies_ms, 0.99)
    }
}

/// The nearest-rank percentile `q` of `values`.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The generator; [`LoadGenerator::run_second`] sends one second's worth.
pub struct LoadGenerator {
    client: Client<HttpConnector, Empty<Bytes>>,
    targets: Targets,
    next_endpoint: Mutex<usize>,
    stats: Arc<Mutex<Vec<SecondStats>>>,
    /// Fraction of a request carried to the next second (so 450.5 rps averages right).
    carry: Mutex<f64>,
    timeout: Duration,
}

impl LoadGenerator {
    pub fn new(targets: Targets) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(connector);
        Self {
            client,
            targets,
            next_endpoint: Mutex::new(0),
            stats: Arc::default(),
            carry: Mutex::new(0.0),
            timeout: Duration::from_secs(30),
        }
    }

    /// Sends `rps` requests spread evenly over the second starting at `start`, numbered `second`.
    /// Returns when the last one is sent (answers are awaited in the background).
    pub async fn run_second(self: &Arc<Self>, second: u64, start: Instant, rps: f64) {
        let count = {
            let mut carry = self.carry.lock().unwrap_or_else(|p| p.into_inner());
            let exact = rps.max(0.0) + *carry;
            let count = exact.floor();
            *carry = exact - count;
            count as u64
        };
        {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            let index = second as usize;
            if stats.len() <= index {
                stats.resize(index + 1, SecondStats::default());
            }
        }
        if count == 0 {
            return;
        }
        let spacing = Duration::from_secs(1) / count as u32;
        for i in 0..count {
            tokio::time::sleep_until(start + spacing * i as u32).await;
            let Some(uri) = self.next_uri() else {
                self.record(second, |s| {
                    s.sent += 1;
                    s.failed += 1;
                });
                continue;
            };
            self.record(second, |s| s.sent += 1);
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let sent = Instant::now();
                let request = hyper::Request::get(uri).body(Empty::new());
                let answer = match request {
                    Ok(request) => tokio::time::timeout(this.timeout, async {
                        let response = this.client.request(request).await.ok()?;
                        let ok = response.status().is_success();
                        response.into_body().collect().await.ok()?;
                        Some(ok)
                    })
                    .await
                    .ok()
                    .flatten(),
                    Err(_) => None,
                };
                let elapsed_ms = sent.elapsed().as_secs_f64() * 1000.0;
                this.record(second, |s| match answer {
                    Some(true) => {
                        s.ok += 1;
                        s.latencies_ms.push(elapsed_ms);
                    }
                    _ => s.failed += 1,
                });
            });
        }
    }

    fn next_uri(&self) -> Option<hyper::Uri> {
        match &self.targets {
            Targets::Url(uri) => Some(uri.clone()),
            Targets::Endpoints(endpoints) => {
                let endpoints = endpoints.read().unwrap_or_else(|p| p.into_inner());
                if endpoints.is_empty() {
                    return None;
                }
                let mut next = self.next_endpoint.lock().unwrap_or_else(|p| p.into_inner());
                let addr = endpoints[*next % endpoints.len()];
                *next = next.wrapping_add(1);
                format!("http://{addr}/").parse().ok()
            }
        }
    }

    fn record(&self, second: u64, update: impl FnOnce(&mut SecondStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let index = second as usize;
        if stats.len() <= index {
            stats.resize(index + 1, SecondStats::default());
        }
        update(&mut stats[index]);
    }

    /// What happened in second `second` so far.
    pub fn stats(&self, second: u64) -> SecondStats {
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.get(second as usize).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.99), None);
    }

    #[tokio::test]
    async fn the_offered_rate_is_sent_whatever_the_server_does() {
        // A real app instance that serves only 20 rps: 50 requests in a second are all sent
        // within that second (open loop) and all answered, later.
        let config = app::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            capacity: Some(20.0),
            host: "pod".into(),
            deployment: "app".into(),
        };
        let app = app::App::bind(config).await.unwrap();
        let addr = app.app_addr();
        tokio::spawn(app.serve(std::future::pending()));
        let endpoints = Arc::new(RwLock::new(vec![addr]));
        let generator = Arc::new(LoadGenerator::new(Targets::Endpoints(endpoints)));
        let start = Instant::now();
        generator.run_second(0, start, 50.0).await;
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "sending does not wait for answers"
        );
        assert_eq!(generator.stats(0).sent, 50);
        let deadline = Instant::now() + Duration::from_secs(10);
        while generator.stats(0).ok < 50 {
            assert!(Instant::now() < deadline, "{:?}", generator.stats(0));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(generator.stats(0).failed, 0);
        // 50 requests queued at a 20-rps instance: the slowest waits well over a second.
        assert!(generator.stats(0).p99_ms().unwrap() > 1000.0);
    }

    #[tokio::test]
    async fn fractional_rates_average_out_and_no_endpoint_means_failures() {
        let endpoints = Arc::new(RwLock::new(Vec::new()));
        let generator = Arc::new(LoadGenerator::new(Targets::Endpoints(endpoints)));
        let start = Instant::now();
        for second in 0..4 {
            generator.run_second(second, start, 2.5).await;
        }
        let sent: u64 = (0..4).map(|s| generator.stats(s).sent).sum();
        assert_eq!(sent, 10);
        assert_eq!(generator.stats(0).failed, generator.stats(0).sent);
    }
}
