//! The agent loop: inputs gather on their schedule and hand every metric to each output's
//! buffer; outputs flush on theirs. IO lives here; the decisions (schedule, transform, buffer,
//! backoff, response rules) are pure modules.
//!
//! - Gathers are aligned to multiples of `interval` on the wall clock (`round_interval`), with
//!   `collection_jitter`; a gather that overruns leaves at most one tick pending, the rest are
//!   skipped with a warning.
//! - Each output writes its buffer every `flush_interval` (+ `flush_jitter`) in batches of
//!   `metric_batch_size`, and at once when a full batch is waiting. A failed batch goes back to
//!   the front of the buffer and the output pauses with exponential backoff (Telegraf retries at
//!   every flush instead); when the receiver answers with `Retry-After`, the pause is what it
//!   asks, within the backoff's bounds.
//! - Metrics a full buffer drops are counted at once and warned about once per flush, with the
//!   number dropped since the last warning.
//! - On shutdown, gathering stops and each output makes one last flush, bounded in time.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::buffer::{Buffer, Staged};
use crate::config::{Config, Output as OutputConfig};
use crate::convert::{self, Mapping};
use crate::discovery::TargetSet;
use crate::discovery::targets::PodTarget;
use crate::filter::MetricFilter;
use crate::line_protocol::{self, Options};
use crate::metric::Metric;
use crate::output::{self, Outcome, Sink};
use crate::prom::{self, Streamed};
use crate::scrape::{ScrapeError, Scraped, Scraper, Target};
use crate::telemetry::{InputMetrics, OutputMetrics, Telemetry};
use crate::transform::{self, Transform};

/// How long the last flush at shutdown may take in all, in seconds (below Kubernetes' default
/// 30 s grace period).
pub const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("inputs.prometheus[{index}]")]
    Input {
        index: usize,
        #[source]
        source: ScrapeError,
    },
    #[error("outputs[{index}] ({name})")]
    Output {
        index: usize,
        name: &'static str,
        #[source]
        source: output::SetupError,
    },
}

/// A scrape that failed, for `--test` and `--once` reports.
#[derive(Debug)]
pub struct GatherError {
    pub input: String,
    pub url: String,
    pub error: String,
}

/// The agent, built from its config: inputs and outputs ready to run.
pub struct Agent {
    config: Config,
    inputs: Vec<Arc<Input>>,
    outputs: Vec<Arc<OutputState>>,
}

struct Input {
    name: String,
    scraper: Arc<Scraper>,
    /// The configured `urls`, each with its transform (they differ by the `url` tag).
    targets: Vec<Arc<Prepared>>,
    /// Pod discovery: its settings and the discovered targets, kept by its watcher.
    discovery: Option<Discovery>,
    mapping: Mapping,
    interval: Duration,
    metrics: InputMetrics,
}

struct OutputState {
    name: String,
    sink: tokio::sync::Mutex<Sink>,
    buffer: Mutex<Buffer>,
    batch_ready: Notify,
    batch_size: usize,
    filter: MetricFilter,
    options: Options,
    pacing: Mutex<Pacing>,
    metrics: OutputMetrics,
    /// Metrics the receiver refused for good (for `--once`'s exit code).
    rejected: std::sync::atomic::AtomicU64,
    /// Metrics dropped from the full buffer since the last warning about it.
    overflow_unwarned: std::sync::atomic::AtomicU64,
}

impl OutputState {
    /// Counts metrics the full buffer dropped; they are warned about at the next flush.
    fn count_overflow(&self, dropped: u64) {
        if dropped > 0 {
            self.metrics.dropped_overflow.increment(dropped);
            self.overflow_unwarned
                .fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// One warning for everything the full buffer dropped since the last one (a warning per
    /// dropped metric would flood the log exactly when the agent is overloaded).
    fn warn_overflow(&self) {
        let dropped = self
            .overflow_unwarned
            .swap(0, std::sync::atomic::Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(output = %self.name, dropped, "metric buffer full; the oldest metrics were dropped since the last flush");
        }
    }
}

/// A target ready to scrape: where, and the rules its metrics go through.
pub struct Prepared {
    target: Target,
    transform: Transform,
}

/// Builds a discovered pod's [`Prepared`], or says why it cannot be scraped.
type Prepare = Arc<dyn Fn(&PodTarget) -> Result<Prepared, String> + Send + Sync>;

struct Discovery {
    settings: crate::config::PodDiscovery,
    targets: Arc<TargetSet<Prepared>>,
    /// Builds a discovered pod's [`Prepared`] (its transform carries the pod's tags).
    prepare: Prepare,
}

#[derive(Default)]
struct Pacing {
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl Agent {
    /// Sets up every input and output (`host` is the `host` tag, `None` to omit it).
    pub fn new(
        config: Config,
        host: Option<String>,
        telemetry: &Telemetry,
    ) -> Result<Self, StartError> {
        let mut global_tags: Vec<(String, String)> = config
            .global_tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(host) = host {
            global_tags.push(("host".to_owned(), host));
        }
        let inputs = config
            .inputs
            .iter()
            .enumerate()
            .map(|(index, input_config)| {
                let scraper = Scraper::new(input_config)
                    .map_err(|source| StartError::Input { index, source })?;
                let targets = scraper
                    .targets
                    .iter()
                    .map(|t| {
                        Arc::new(Prepared {
                            target: t.clone(),
                            transform: Transform::new(
                                &config.agent,
                                input_config,
                                &t.tag,
                                &global_tags,
                            ),
                        })
                    })
                    .collect();
                let discovery = input_config.pod_discovery.as_ref().map(|settings| {
                    let agent = config.agent.clone();
                    let input = input_config.clone();
                    let global_tags = global_tags.clone();
                    let prepare = move |pod: &PodTarget| -> Result<Prepared, String> {
                        let target = Target::parse(&pod.url).map_err(|e| e.to_string())?;
                        let transform = Transform::new(&agent, &input, &pod.url, &global_tags)
                            .with_target_tags(pod.tags.clone());
                        Ok(Prepared { target, transform })
                    };
                    Discovery {
                        settings: settings.clone(),
                        targets: Arc::new(TargetSet::default()),
                        prepare: Arc::new(prepare),
                    }
                });
                let name = format!("prometheus[{index}]");
                Ok(Arc::new(Input {
                    metrics: telemetry.input(&name),
                    name,
                    scraper: Arc::new(scraper),
                    targets,
                    discovery,
                    mapping: Mapping {
                        metric_version: input_config.metric_version,
                        ignore_timestamp: input_config.ignore_timestamp,
                    },
                    interval: input_config.interval.unwrap_or(config.agent.interval),
                }))
            })
            .collect::<Result<_, StartError>>()?;
        let mut counts = std::collections::HashMap::new();
        let outputs = config
            .outputs
            .iter()
            .enumerate()
            .map(|(index, output_config)| {
                let sink = Sink::new(output_config).map_err(|source| StartError::Output {
                    index,
                    name: match output_config {
                        OutputConfig::Influxdb(_) => "influxdb",
                        OutputConfig::File(_) => "file",
                    },
                    source,
                })?;
                let kind = sink.name();
                let ordinal = counts.entry(kind).or_insert(0usize);
                let name = format!("{kind}[{ordinal}]");
                *ordinal += 1;
                let (filter, uint_support) = match output_config {
                    OutputConfig::Influxdb(c) => (c.filter.clone(), c.influx_uint_support),
                    OutputConfig::File(c) => (c.filter.clone(), c.influx_uint_support),
                };
                let metrics = telemetry.output(&name);
                metrics
                    .buffer_limit
                    .set(config.agent.metric_buffer_limit as f64);
                Ok(Arc::new(OutputState {
                    name,
                    sink: tokio::sync::Mutex::new(sink),
                    buffer: Mutex::new(Buffer::new(config.agent.metric_buffer_limit)),
                    batch_ready: Notify::new(),
                    batch_size: config.agent.metric_batch_size,
                    filter,
                    options: Options { uint_support },
                    pacing: Mutex::new(Pacing::default()),
                    metrics,
                    rejected: std::sync::atomic::AtomicU64::new(0),
                    overflow_unwarned: std::sync::atomic::AtomicU64::new(0),
                }))
            })
            .collect::<Result<_, StartError>>()?;
        Ok(Self {
            config,
            inputs,
            outputs,
        })
    }

    /// Runs until `shutdown` completes, then flushes once more.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        for output in &self.outputs {
            output.sink.lock().await.connect().await;
        }
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for input in &self.inputs {
            if let Some(discovery) = &input.discovery {
                let name = input.name.clone();
                let settings = discovery.settings.clone();
                let targets = Arc::clone(&discovery.targets);
                let prepare = Arc::clone(&discovery.prepare);
                let stopped = stopped.clone();
                tasks.spawn(async move {
                    discover(name, settings, targets, prepare, stopped).await;
                });
            }
            let input = Arc::clone(input);
            let outputs = self.outputs.clone();
            let agent = self.config.agent.clone();
            let stopped = stopped.clone();
            tasks.spawn(async move { input_loop(input, outputs, agent, stopped).await });
        }
        let mut flushers = JoinSet::new();
        for output in &self.outputs {
            let output = Arc::clone(output);
            let agent = self.config.agent.clone();
            let stopped = stopped.clone();
            flushers.spawn(async move { output_loop(output, agent, stopped).await });
        }
        shutdown.await;
        tracing::info!("stopping: no more gathers, one last flush");
        let _ = stop.send(true);
        while tasks.join_next().await.is_some() {}
        while flushers.join_next().await.is_some() {}
    }

    /// `--test`: gathers once from every input and returns the metrics as line protocol,
    /// without writing anywhere, with the scrapes that failed.
    pub async fn test(&self) -> (Vec<String>, Vec<GatherError>) {
        let mut lines = TestLines::default();
        let mut errors = Vec::new();
        for input in &self.inputs {
            errors.extend(gather(input, &mut lines).await);
        }
        (lines.lines, errors)
    }

    /// `--once`: gathers once, writes everything, and reports failed scrapes and whether every
    /// output delivered its metrics (a batch the receiver refused, and so dropped, was not).
    pub async fn once(&self) -> (Vec<GatherError>, bool) {
        for output in &self.outputs {
            output.sink.lock().await.connect().await;
        }
        let mut errors = Vec::new();
        for input in &self.inputs {
            errors.extend(gather(input, &mut Staging::new(&self.outputs)).await);
        }
        let mut delivered = true;
        for output in &self.outputs {
            let refused_before = output.rejected.load(std::sync::atomic::Ordering::Relaxed);
            delivered &= flush(output, true).await;
            delivered &=
                output.rejected.load(std::sync::atomic::Ordering::Relaxed) == refused_before;
        }
        (errors, delivered)
    }
}

/// Where a gather's metrics go, a scrape at a time: a scrape's metrics count only once its whole
/// page has parsed.
trait Collector {
    /// A metric that passed the input's rules.
    fn metric(&mut self, metric: &Metric);
    /// Forgets the current scrape's metrics (its page failed, or is converted again).
    fn discard(&mut self);
    /// Hands the current scrape's metrics on.
    fn commit(&mut self);
}

/// `--test`: every metric as a line.
#[derive(Default)]
struct TestLines {
    lines: Vec<String>,
    committed: usize,
}

impl Collector for TestLines {
    fn metric(&mut self, metric: &Metric) {
        let mut line = String::new();
        if line_protocol::write_metric(&mut line, metric, Options::default()).is_ok() {
            self.lines.push(line);
        }
    }

    fn discard(&mut self) {
        self.lines.truncate(self.committed);
    }

    fn commit(&mut self) {
        self.committed = self.lines.len();
    }
}

/// The outputs' buffers: a scrape's lines are staged per output (at most a buffer's worth,
/// the older ones counted as dropped) and appended to the buffers when the page has parsed.
struct Staging<'o> {
    outputs: &'o [Arc<OutputState>],
    staged: Vec<Staged>,
    line: String,
}

impl<'o> Staging<'o> {
    fn new(outputs: &'o [Arc<OutputState>]) -> Self {
        Self {
            outputs,
            staged: outputs
                .iter()
                .map(|output| Staged::new(lock(&output.buffer).limit()))
                .collect(),
            line: String::new(),
        }
    }
}

impl Collector for Staging<'_> {
    fn metric(&mut self, metric: &Metric) {
        for (output, staged) in self.outputs.iter().zip(&mut self.staged) {
            if serialise(output, metric, &mut self.line) {
                staged.push(self.line.as_str().into());
            }
        }
    }

    fn discard(&mut self) {
        self.staged.iter_mut().for_each(Staged::discard);
    }

    fn commit(&mut self) {
        for (output, staged) in self.outputs.iter().zip(&mut self.staged) {
            if staged.is_empty() {
                continue;
            }
            let (len, dropped) = {
                let mut buffer = lock(&output.buffer);
                buffer.commit(staged);
                (buffer.len(), buffer.take_unreported_drops())
            };
            output.count_overflow(dropped);
            output.metrics.buffer_size.set(len as f64);
            if len >= output.batch_size {
                output.batch_ready.notify_one();
            }
        }
    }
}

/// Runs an input's pod discovery until `stopped`: a client, then the watcher; a client that
/// cannot be built is an error logged, tried again every 10 s.
async fn discover(
    input: String,
    settings: crate::config::PodDiscovery,
    targets: Arc<TargetSet<Prepared>>,
    prepare: Prepare,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        match crate::discovery::watch::client(&settings).await {
            Ok(client) => {
                let prepare = move |pod: &PodTarget| prepare(pod);
                crate::discovery::watch::run(input, settings, client, targets, prepare, stopped)
                    .await;
                return;
            }
            Err(error) => {
                let error = lifecycle::error_chain(&error);
                tracing::error!(input = %input, %error, "pod discovery cannot start; retrying in 10s");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Scrapes every target of `input` concurrently, then converts each body and hands every metric
/// that passes the input's rules to `collector`.
async fn gather(input: &Input, collector: &mut impl Collector) -> Vec<GatherError> {
    let started = std::time::Instant::now();
    let mut targets = input.targets.clone();
    if let Some(discovery) = &input.discovery {
        targets.extend(discovery.targets.snapshot());
    }
    let mut scrapes = JoinSet::new();
    for (index, prepared) in targets.iter().enumerate() {
        let scraper = Arc::clone(&input.scraper);
        let prepared = Arc::clone(prepared);
        scrapes.spawn(async move {
            let result = scraper.scrape(&prepared.target).await;
            (index, unix_nanos(SystemTime::now()), result)
        });
    }
    let mut results = Vec::with_capacity(targets.len());
    while let Some(joined) = scrapes.join_next().await {
        if let Ok(result) = joined {
            results.push(result);
        }
    }
    results.sort_by_key(|(index, _, _)| *index);
    let mut errors = Vec::new();
    let mut gathered = 0u64;
    for (index, scrape_time_ns, result) in results {
        let url = targets[index].target.tag.clone();
        let scraped = match result {
            Ok(scraped) => scraped,
            Err(error) => {
                errors.push(GatherError {
                    input: input.name.clone(),
                    url,
                    error: error.to_string(),
                });
                continue;
            }
        };
        let transform = &targets[index].transform;
        match convert_scrape(input, transform, &url, &scraped, scrape_time_ns, collector) {
            Ok(count) => {
                collector.commit();
                gathered += count;
            }
            Err(error) => {
                collector.discard();
                errors.push(GatherError {
                    input: input.name.clone(),
                    url,
                    error: format!("cannot parse the exposition: {error}"),
                });
            }
        }
    }
    input.metrics.gathered.increment(gathered);
    input.metrics.errors.increment(errors.len() as u64);
    input
        .metrics
        .gather_seconds
        .set(started.elapsed().as_secs_f64());
    for error in &errors {
        tracing::warn!(input = %error.input, url = %error.url, error = %error.error, "scrape failed");
    }
    errors
}

/// Converts one scraped page, streaming ([`convert::convert_streaming`]): the page's parsed
/// samples are never all held at once. A text page whose families or groups are split
/// (rare) is converted again whole, so the result is always [`convert::convert`]'s. Returns how
/// many metrics passed the input's rules.
fn convert_scrape(
    input: &Input,
    transform: &Transform,
    url: &str,
    scraped: &Scraped,
    scrape_time_ns: i64,
    collector: &mut impl Collector,
) -> prom::Result<u64> {
    let mut gathered = 0u64;
    let streamed = convert::convert_streaming(
        &scraped.body,
        scraped.format,
        input.mapping,
        scrape_time_ns,
        |metric| {
            if transform.apply(metric) {
                gathered += 1;
                collector.metric(metric);
            }
        },
    )?;
    if streamed == Streamed::Complete {
        return Ok(gathered);
    }
    collector.discard();
    tracing::debug!(input = %input.name, %url, "families or groups split across the page; converted whole");
    let families = prom::parse_bytes(&scraped.body, scraped.format)?;
    let mut gathered = 0u64;
    convert::convert(
        &families,
        scraped.format,
        input.mapping,
        scrape_time_ns,
        |metric| {
            if transform.apply(metric) {
                gathered += 1;
                collector.metric(metric);
            }
        },
    );
    Ok(gathered)
}

/// Serialises `metric` into `line` for `output`, if its filters take it.
fn serialise(output: &OutputState, metric: &Metric, line: &mut String) -> bool {
    let tags = metric.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
    if !output.filter.select(&metric.name, tags) {
        return false;
    }
    line.clear();
    if output.filter.modifies() {
        let mut modified = metric.clone();
        transform::apply_removals(&output.filter, &mut modified)
            && line_protocol::write_metric(line, &modified, output.options).is_ok()
    } else {
        line_protocol::write_metric(line, metric, output.options).is_ok()
    }
}

/// Serialises `metric` for every output whose filters take it and appends it to its buffer.
#[cfg(test)]
fn deliver(outputs: &[Arc<OutputState>], metric: &Metric) {
    let mut line = String::new();
    for output in outputs {
        if !serialise(output, metric, &mut line) {
            continue;
        }
        let (len, dropped) = {
            let mut buffer = lock(&output.buffer);
            buffer.push(line.as_str().into());
            (buffer.len(), buffer.take_unreported_drops())
        };
        output.count_overflow(dropped);
        output.metrics.buffer_size.set(len as f64);
        if len >= output.batch_size {
            output.batch_ready.notify_one();
        }
    }
}

async fn input_loop(
    input: Arc<Input>,
    outputs: Vec<Arc<OutputState>>,
    agent: crate::config::AgentConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let mut schedule = Schedule::new(
        unix_nanos(SystemTime::now()),
        Instant::now(),
        input.interval,
        agent.round_interval,
    );
    loop {
        let (at, skipped) = schedule.next_tick(Instant::now());
        if skipped > 0 {
            tracing::warn!(input = %input.name, skipped, interval = ?input.interval, "collection took longer than expected; ticks skipped");
        }
        let jitter = random_up_to(agent.collection_jitter);
        tokio::select! {
            () = tokio::time::sleep_until(at + jitter) => {}
            _ = stopped.changed() => return,
        }
        gather(&input, &mut Staging::new(&outputs)).await;
    }
}

async fn output_loop(
    output: Arc<OutputState>,
    agent: crate::config::AgentConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let mut next_flush = Instant::now() + agent.flush_interval + random_up_to(agent.flush_jitter);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_flush) => {
                flush(&output, false).await;
                next_flush = Instant::now() + agent.flush_interval + random_up_to(agent.flush_jitter);
            }
            () = output.batch_ready.notified() => {
                write_full_batches(&output).await;
            }
            _ = stopped.changed() => break,
        }
    }
    if tokio::time::timeout(FINAL_FLUSH_TIMEOUT, flush(&output, true))
        .await
        .is_err()
    {
        let left = lock(&output.buffer).len();
        tracing::error!(output = %output.name, left, "final flush did not finish in time; metrics lost");
    }
    output.warn_overflow();
}

/// Writes while a full batch is waiting (Telegraf's early flush), unless backing off.
async fn write_full_batches(output: &OutputState) {
    while lock(&output.buffer).len() >= output.batch_size {
        if !may_write(output) || !write_batch(output).await {
            return;
        }
    }
}

/// Writes the whole buffer in batches; stops at the first failure. `force` ignores the backoff
/// (the final flush and `--once`). Returns whether the buffer was emptied.
async fn flush(output: &OutputState, force: bool) -> bool {
    output.warn_overflow();
    if !force && !may_write(output) {
        return false;
    }
    loop {
        if lock(&output.buffer).is_empty() {
            return true;
        }
        if !write_batch(output).await {
            return false;
        }
    }
}

fn may_write(output: &OutputState) -> bool {
    let pacing = lock(&output.pacing);
    pacing.retry_at.is_none_or(|at| Instant::now() >= at)
}

/// Writes one batch; `false` if it must be retried later.
async fn write_batch(output: &OutputState) -> bool {
    let batch = lock(&output.buffer).take_batch(output.batch_size);
    if batch.is_empty() {
        return true;
    }
    let body = batch.body();
    let outcome = output.sink.lock().await.write(&body).await;
    let count = batch.len() as u64;
    let delivered = match outcome {
        Outcome::Written => {
            output.metrics.written.increment(count);
            tracing::debug!(output = %output.name, metrics = count, "wrote batch");
            true
        }
        Outcome::Dropped(reason) => {
            output.metrics.dropped_rejected.increment(count);
            output
                .rejected
                .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(output = %output.name, metrics = count, %reason, "receiver refused the batch; dropped");
            true
        }
        Outcome::Retry { reason, after } => {
            output.metrics.write_errors.increment(1);
            let mut buffer = lock(&output.buffer);
            buffer.restore(batch);
            let dropped = buffer.take_unreported_drops();
            drop(buffer);
            output.count_overflow(dropped);
            let pause = {
                let mut pacing = lock(&output.pacing);
                let pause = pacing.backoff.failed_asking(fastrand::f64(), after);
                pacing.retry_at = Some(Instant::now() + pause);
                pause
            };
            tracing::warn!(output = %output.name, metrics = count, %reason, retry_in = ?pause, "write failed; batch kept for retry");
            false
        }
    };
    if delivered {
        let mut pacing = lock(&output.pacing);
        pacing.backoff.succeeded();
        pacing.retry_at = None;
    }
    output
        .metrics
        .buffer_size
        .set(lock(&output.buffer).len() as f64);
    delivered
}

/// When gathers happen: aligned to the wall clock (or to the start), and never more than one
/// tick behind. Pure: the clock readings are passed in.
#[derive(Debug, Clone)]
pub struct Schedule {
    next: Instant,
    interval: Duration,
}

impl Schedule {
    /// A schedule starting now (`now_unix_ns` and `now` are the same moment on the wall clock
    /// and the monotonic clock). With `round`, ticks fall on multiples of `interval` since the
    /// epoch; otherwise the first tick is one interval from now.
    pub fn new(now_unix_ns: i64, now: Instant, interval: Duration, round: bool) -> Self {
        let interval = interval.max(Duration::from_millis(1));
        let first = if round {
            let interval_ns = interval.as_nanos().min(i64::MAX as u128) as i64;
            let into = now_unix_ns.rem_euclid(interval_ns);
            now + Duration::from_nanos((interval_ns - into) as u64)
        } else {
            now + interval
        };
        Self {
            next: first,
            interval,
        }
    }

    /// The time of the next gather and how many ticks were skipped because the previous gather
    /// ran past them. An overdue tick runs at once (the one that was pending).
    pub fn next_tick(&mut self, now: Instant) -> (Instant, u32) {
        let due = self.next;
        if due > now {
            self.next = due + self.interval;
            return (due, 0);
        }
        let behind = now.duration_since(due);
        let missed = (behind.as_nanos() / self.interval.as_nanos()).min(u32::MAX as u128) as u32;
        self.next = due + self.interval * (missed + 1);
        (now, missed)
    }
}

fn random_up_to(max: Duration) -> Duration {
    if max.is_zero() {
        Duration::ZERO
    } else {
        max.mul_f64(fastrand::f64())
    }
}

fn unix_nanos(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::FieldValue;

    /// What `tracing` writes on this thread while the guard lives.
    fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                lock(&self.0).extend_from_slice(bytes);
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

    #[tokio::test]
    async fn a_full_buffer_warns_once_per_flush_with_the_count() {
        let text = "[agent]\nmetric_batch_size = 10\nmetric_buffer_limit = 10\n\
            [[inputs.prometheus]]\nurls = [\"http://127.0.0.1:9/metrics\"]\n\
            [[outputs.file]]\nfiles = [\"/dev/null\"]\n";
        let config = Config::parse(text, |_| None).unwrap();
        let telemetry = Telemetry::new();
        let agent = Agent::new(config, None, &telemetry).unwrap();
        let (logs, _guard) = capture_logs();
        let metric = Metric {
            name: "m".into(),
            fields: vec![("v".into(), FieldValue::Float(1.0))],
            time_ns: 1,
            ..Metric::default()
        };
        for _ in 0..1000 {
            deliver(&agent.outputs, &metric);
        }
        assert!(flush(&agent.outputs[0], true).await);
        for _ in 0..15 {
            deliver(&agent.outputs, &metric);
        }
        assert!(flush(&agent.outputs[0], true).await);
        let logs = String::from_utf8(lock(&logs).clone()).unwrap();
        let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 2, "{logs}");
        assert!(warnings[0].contains("dropped=990"), "{logs}");
        assert!(warnings[1].contains("dropped=5"), "{logs}");
        assert!(
            telemetry
                .render()
                .contains(r#"agent_dropped_metrics_total{output="file[0]",reason="overflow"} 995"#),
            "every drop is counted at once"
        );
    }

    #[test]
    fn rounded_ticks_fall_on_wall_clock_multiples() {
        let now = Instant::now();
        // 10.3 s past a whole 10 s: the first tick is 9.7 s away.
        let mut schedule = Schedule::new(
            1_700_000_010_300_000_000,
            now,
            Duration::from_secs(10),
            true,
        );
        assert_eq!(
            schedule.next_tick(now),
            (now + Duration::from_millis(9700), 0)
        );
        assert_eq!(
            schedule.next_tick(now),
            (now + Duration::from_millis(19_700), 0)
        );
    }

    #[test]
    fn unrounded_ticks_start_one_interval_after_start() {
        let now = Instant::now();
        let mut schedule = Schedule::new(
            1_700_000_010_300_000_000,
            now,
            Duration::from_secs(1),
            false,
        );
        assert_eq!(schedule.next_tick(now), (now + Duration::from_secs(1), 0));
    }

    #[test]
    fn an_overrunning_gather_leaves_one_pending_tick_and_skips_the_rest() {
        let start = Instant::now();
        let mut schedule = Schedule::new(0, start, Duration::from_secs(1), true);
        let (first, _) = schedule.next_tick(start);
        assert_eq!(first, start + Duration::from_secs(1));
        // The gather at 1 s took 3.5 s: the tick at 2 s runs at once, those at 3 and 4 s are
        // skipped, the next is at 5 s.
        let late = start + Duration::from_millis(4500);
        assert_eq!(schedule.next_tick(late), (late, 2));
        assert_eq!(
            schedule.next_tick(late),
            (start + Duration::from_secs(5), 0)
        );
    }
}
