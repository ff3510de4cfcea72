//! Scale and soak: the release processor binary with the tutorial's task, fed by writers on
//! loopback with `pods × metrics` live series at one point per second each, in agent-sized
//! batches, for `minutes`; then every series goes silent and the processor frees their state.
//! Prints a table: memory per live series, memory growth after warm-up, write latency,
//! CPU per million points, and the memory after the silence (whether it went back to the
//! system).
//!
//! ```sh
//! cargo build --release -p processor --bin processor --example soak
//! nice -n 10 target/release/examples/soak --pods 10000 --metrics 10 --minutes 10
//! ```
//!
//! Each series is its own `host` tag (`p<pod>-m<metric>`, in Deployment `d<pod / 100>`), so
//! every series carries state through every node of the tutorial's task (from, derivative,
//! groupBy, the cross-pod sum): the worst case for memory. k8sAutoscale scales the Deployments
//! of an in-process Kubernetes API stand-in. `state-expiry` is shortened (`--state-expiry`,
//! default 60 s) so the silent phase does not take the default 10 minutes.
//!
//! Flags: `--pods N` (10000), `--metrics N` (10), `--minutes F` (10), `--batch N` (1000 lines
//! per request), `--writers N` (4 threads), `--state-expiry SECS` (60), `--silence SECS`
//! (state-expiry + 45), `--processor PATH` (the `processor` binary beside this example).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use workspace_bins::peers::{KillOnDrop, free_port, try_http};

/// The tutorial's TICKscript, with the `dbrp` line a load-directory task needs.
const TUTORIAL: &str = include_str!("../tests/fixtures/tick/autoscale.tick");

/// Pods per Deployment.
const PODS_PER_DEPLOYMENT: usize = 100;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub pods: usize,
    pub metrics: usize,
    pub minutes: f64,
    pub batch: usize,
    pub writers: usize,
    pub state_expiry_secs: u64,
    pub silence_secs: u64,
    pub processor: PathBuf,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub series: usize,
    pub points: u64,
    pub requests: u64,
    pub failed_requests: u64,
    pub late_seconds: u64,
    pub rss_before_kib: u64,
    pub rss_steady_kib: u64,
    pub rss_peak_kib: u64,
    pub slope_kib_per_min: f64,
    pub latency_ms: [f64; 3],
    pub cpu_seconds: f64,
    pub rss_after_silence_kib: u64,
    pub cardinality_after_silence: u64,
    /// `processor_allocator_{allocated,resident}_bytes` in KiB as the writers stopped (`None`
    /// when the processor does not report them: built with `system-allocator`).
    pub allocator_at_load_end: Option<(u64, u64)>,
    /// The same after the silence.
    pub allocator_after_silence: Option<(u64, u64)>,
    /// The allocator's allocated bytes after warm-up (mean KiB, slope KiB/min): what the
    /// program holds, without the allocator's free pages (`None` when not reported).
    pub heap_steady: Option<(u64, f64)>,
    /// Seconds, RSS KiB, allocated KiB.
    pub samples: Vec<(f64, u64, Option<u64>)>,
}

impl Figures {
    /// Bytes of RSS per live series at steady state.
    pub fn bytes_per_series(&self) -> f64 {
        self.rss_steady_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0
            / self.series.max(1) as f64
    }

    /// The table.
    pub fn render(&self) -> String {
        let per_million = self.cpu_seconds / (self.points.max(1) as f64 / 1e6);
        let held = self
            .rss_after_silence_kib
            .saturating_sub(self.rss_before_kib) as f64;
        let grown = self
            .rss_steady_kib
            .saturating_sub(self.rss_before_kib)
            .max(1) as f64;
        let allocator = |figures: Option<(u64, u64)>| {
            figures.map_or("not reported".to_owned(), |(allocated, resident)| {
                format!(
                    "{:.1} / {:.1} MiB",
                    allocated as f64 / 1024.0,
                    resident as f64 / 1024.0
                )
            })
        };
        [
            format!("| live series | {} |", self.series),
            format!(
                "| points written | {} in {} requests ({} failed, {} writer-seconds late) |",
                self.points, self.requests, self.failed_requests, self.late_seconds
            ),
            format!(
                "| RSS before / steady / peak | {:.1} / {:.1} / {:.1} MiB |",
                self.rss_before_kib as f64 / 1024.0,
                self.rss_steady_kib as f64 / 1024.0,
                self.rss_peak_kib as f64 / 1024.0
            ),
            format!(
                "| memory per live series | {:.0} bytes ({:.2} KiB) |",
                self.bytes_per_series(),
                self.bytes_per_series() / 1024.0
            ),
            format!(
                "| RSS slope after warm-up | {:+.1} KiB/min ({:+.2} % of the steady growth per min) |",
                self.slope_kib_per_min,
                self.slope_kib_per_min / grown * 100.0
            ),
            format!(
                "| allocated (heap) after warm-up | {} |",
                self.heap_steady.map_or("not reported".to_owned(), |(mean, slope)| format!(
                    "mean {:.1} MiB, slope {slope:+.1} KiB/min ({:+.2} % of the steady growth per min)",
                    mean as f64 / 1024.0,
                    slope / grown * 100.0
                ))
            ),
            format!(
                "| write latency p50 / p99 / max | {:.2} / {:.2} / {:.2} ms |",
                self.latency_ms[0], self.latency_ms[1], self.latency_ms[2]
            ),
            format!(
                "| processor CPU | {:.1} s, {:.2} CPU-s per million points |",
                self.cpu_seconds, per_million
            ),
            format!(
                "| after silence: state / RSS | {} series kept / {:.1} MiB ({:.0} % of the growth still held) |",
                self.cardinality_after_silence,
                self.rss_after_silence_kib as f64 / 1024.0,
                held / grown * 100.0
            ),
            format!(
                "| allocator: allocated / resident, as the load ends; after silence | {}; {} |",
                allocator(self.allocator_at_load_end),
                allocator(self.allocator_after_silence)
            ),
        ]
        .join("\n")
    }
}

/// Why a soak could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("cannot start {what}")]
    Start {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the processor did not become ready: {0}")]
    NotReady(String),
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

impl Options {
    /// Reads the flags (see the module documentation).
    pub fn from_args(args: impl Iterator<Item = String>) -> Result<Options, Error> {
        let mut options = Options {
            pods: 10_000,
            metrics: 10,
            minutes: 10.0,
            batch: 1000,
            writers: 4,
            state_expiry_secs: 60,
            silence_secs: 0,
            processor: std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.parent()?.join("processor")))
                .unwrap_or_else(|| PathBuf::from("processor")),
        };
        let mut args = args.peekable();
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .ok_or_else(|| usage(format!("{flag} needs a value")))?;
            let number = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| usage(format!("{flag} {value:?}: not a number")))
            };
            match flag.as_str() {
                "--pods" => options.pods = number()? as usize,
                "--metrics" => options.metrics = number()? as usize,
                "--minutes" => options.minutes = number()?,
                "--batch" => options.batch = number()? as usize,
                "--writers" => options.writers = number()? as usize,
                "--state-expiry" => options.state_expiry_secs = number()? as u64,
                "--silence" => options.silence_secs = number()? as u64,
                "--processor" => options.processor = PathBuf::from(&value),
                _ => return Err(usage(format!("unknown flag {flag}"))),
            }
        }
        if options.pods == 0 || options.metrics == 0 || options.batch == 0 || options.writers == 0 {
            return Err(usage(
                "--pods, --metrics, --batch and --writers must be > 0",
            ));
        }
        if options.state_expiry_secs == 0 {
            return Err(usage("--state-expiry must be at least 1 s"));
        }
        if options.silence_secs == 0 {
            options.silence_secs = options.state_expiry_secs + 45;
        }
        Ok(options)
    }
}

/// RSS (KiB) and utime + stime (clock ticks) of process `pid`, from /proc.
fn proc_figures(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((rss, utime + stime))
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Slope of `samples` (seconds, KiB) by least squares, in KiB per minute.
fn slope_per_minute(samples: &[(f64, u64)]) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_r = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (t, r) in samples {
        num += (t - mean_t) * (*r as f64 - mean_r);
        den += (t - mean_t) * (t - mean_t);
    }
    if den == 0.0 { 0.0 } else { num / den * 60.0 }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The processor's `/metrics` text; `None` when the scrape fails.
fn scrape(addr: SocketAddr) -> Option<String> {
    try_http(addr, "GET", "/metrics", "").and_then(|(status, text)| (status == 200).then_some(text))
}

/// The sum of the samples of a metric family in `text` (`prefix` ends the name, e.g.
/// `"name{"` or `"name "`); `None` when there are none.
fn metric_sum(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .fold(None, |sum, value| Some(sum.unwrap_or(0) + value))
}

/// The sum of the task's working cardinality over its nodes, from `/metrics`.
fn working_cardinality(addr: SocketAddr) -> Option<u64> {
    metric_sum(&scrape(addr)?, "processor_node_working_cardinality{")
}

/// The allocator's bytes held by the program and resident, KiB (`processor_allocator_*`),
/// from one scrape.
fn allocator_kib(addr: SocketAddr) -> Option<(u64, u64)> {
    let text = scrape(addr)?;
    Some((
        metric_sum(&text, "processor_allocator_allocated_bytes ")? / 1024,
        metric_sum(&text, "processor_allocator_resident_bytes ")? / 1024,
    ))
}

/// Stops the processor with SIGTERM, as Kubernetes does, so that it exits through its own
/// shutdown (and an allocator's exit statistics, e.g. `_RJEM_MALLOC_CONF=stats_print:true`,
/// are printed); SIGKILL after 15 s.
fn stop_gracefully(mut processor: KillOnDrop) {
    let pid = processor.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        if let Ok(Some(_)) = processor.0.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("soak: the processor did not stop within 15 s of SIGTERM; killed");
}

/// Runs the soak and returns its figures; progress goes to stderr.
pub fn run(options: &Options) -> Result<Figures, Error> {
    let series = options.pods * options.metrics;
    let deployments = options.pods.div_ceil(PODS_PER_DEPLOYMENT);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|source| Error::Start {
            what: "a runtime",
            source,
        })?;
    let mut standin_config = k8s_standin::Config::default();
    for d in 0..deployments {
        standin_config = standin_config.with_deployment("default", &format!("d{d}"), 1);
    }
    let standin = runtime
        .block_on(k8s_standin::Server::start(standin_config))
        .map_err(|error| Error::NotReady(format!("the API stand-in: {error}")))?;

    let dir = tempfile::tempdir().map_err(|source| Error::Start {
        what: "a temp dir",
        source,
    })?;
    let tasks = dir.path().join("load/tasks");
    std::fs::create_dir_all(&tasks).map_err(|source| Error::Start {
        what: "the load dir",
        source,
    })?;
    std::fs::write(
        tasks.join("autoscale.tick"),
        format!("dbrp \"autoscale\".\"autogen\"\n{TUTORIAL}"),
    )
    .map_err(|source| Error::Start {
        what: "the task file",
        source,
    })?;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .map_err(|_| usage("no loopback address"))?;
    let config = dir.path().join("processor.conf");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[http]\nbind-address = \"{addr}\"\n[pipeline]\nstate-expiry = \
             \"{}s\"\nmax-series-per-task = 0\n[load]\nenabled = true\ndir = {:?}\n\
             [kubernetes]\nenabled = true\napi-servers = [\"{}\"]\nnamespace = \"default\"\n",
            dir.path().join("data").display().to_string(),
            options.state_expiry_secs,
            dir.path().join("load").display().to_string(),
            standin.url()
        ),
    )
    .map_err(|source| Error::Start {
        what: "the config file",
        source,
    })?;
    let processor = KillOnDrop(
        Command::new(&options.processor)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| Error::Start {
                what: "the processor (build it: cargo build --release -p processor)",
                source,
            })?,
    );
    let pid = processor.0.id();
    let ready_by = Instant::now() + Duration::from_secs(30);
    while try_http(addr, "GET", "/ready", "").map(|r| r.0) != Some(204) {
        if Instant::now() > ready_by {
            return Err(Error::NotReady(format!(
                "{addr} /ready is not 204 after 30 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let ticks = clock_ticks_per_second();
    let (rss_before, _) = proc_figures(pid).unwrap_or_default();
    eprintln!(
        "soak: {series} series ({} pods x {} metrics, {deployments} deployments), {} min, \
         batches of {}, {} writers; processor pid {pid}, RSS before {rss_before} KiB",
        options.pods, options.metrics, options.minutes, options.batch, options.writers
    );

    // The series' line prefixes, split into batches, the batches dealt to the writers.
    let prefixes: Vec<String> = (0..series)
        .map(|s| {
            let (pod, metric) = (s / options.metrics, s % options.metrics);
            format!(
                "requests,deployment=d{},host=p{pod}-m{metric} counter=",
                pod / PODS_PER_DEPLOYMENT
            )
        })
        .collect();
    let batches: Vec<Vec<String>> = prefixes.chunks(options.batch).map(<[_]>::to_vec).collect();
    let mut shares: Vec<Vec<Vec<String>>> = vec![Vec::new(); options.writers];
    for (i, batch) in batches.into_iter().enumerate() {
        shares[i % options.writers].push(batch);
    }

    let load = Duration::from_secs_f64(options.minutes * 60.0);
    let start = Instant::now();
    let first_second = unix_seconds();
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop_sampling);
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some((rss, cpu)) = proc_figures(pid) {
                    let heap = allocator_kib(addr).map(|(allocated, _)| allocated);
                    samples.push((start.elapsed().as_secs_f64(), rss, cpu, heap));
                }
                std::thread::sleep(Duration::from_secs(2));
            }
            samples
        })
    };
    let (_, cpu_start) = proc_figures(pid).unwrap_or_default();
    let writers: Vec<_> = shares
        .into_iter()
        .map(|share| {
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let (mut requests, mut failed, mut points, mut late) = (0u64, 0u64, 0u64, 0u64);
                let mut second = 0u64;
                let mut body = String::new();
                while start.elapsed() < load {
                    let due = start + Duration::from_secs(second);
                    let now = Instant::now();
                    if now < due {
                        std::thread::sleep(due - now);
                    } else if now > due + Duration::from_secs(1) {
                        late += 1;
                    }
                    let stamp = first_second + second;
                    for batch in &share {
                        body.clear();
                        for prefix in batch {
                            body.push_str(prefix);
                            body.push_str(&format!("{}i {stamp}\n", second + 1));
                        }
                        let sent = Instant::now();
                        let answer = try_http(
                            addr,
                            "POST",
                            "/write?db=autoscale&rp=autogen&precision=s",
                            &body,
                        );
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        requests += 1;
                        if answer.map(|a| a.0) == Some(204) {
                            points += batch.len() as u64;
                        } else {
                            failed += 1;
                        }
                    }
                    second += 1;
                }
                (latencies, requests, failed, points, late)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut requests, mut failed, mut points, mut late) = (0, 0, 0, 0);
    for writer in writers {
        let (l, r, f, p, t) = writer.join().unwrap_or_default();
        latencies.extend(l);
        requests += r;
        failed += f;
        points += p;
        late += t;
    }
    let load_end = start.elapsed().as_secs_f64();
    let (_, cpu_end) = proc_figures(pid).unwrap_or_default();
    let allocator_at_load_end = allocator_kib(addr);
    eprintln!(
        "soak: load done after {load_end:.0} s; silent for {} s",
        options.silence_secs
    );
    std::thread::sleep(Duration::from_secs(options.silence_secs));
    let (rss_after, _) = proc_figures(pid).unwrap_or_default();
    let cardinality_after = working_cardinality(addr).unwrap_or(u64::MAX);
    let allocator_after = allocator_kib(addr);
    stop_sampling.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap_or_default();
    stop_gracefully(processor);
    runtime.block_on(standin.shutdown());

    latencies.sort_by(f64::total_cmp);
    let during: Vec<(f64, u64)> = samples
        .iter()
        .filter(|s| s.0 <= load_end)
        .map(|s| (s.0, s.1))
        .collect();
    // Warm-up: the first third of the load (or at least the first 30 s).
    let warm = (load_end / 3.0).max(30.0_f64.min(load_end / 2.0));
    let steady: Vec<(f64, u64)> = during.iter().copied().filter(|s| s.0 >= warm).collect();
    let heap_steady: Vec<(f64, u64)> = samples
        .iter()
        .filter(|s| s.0 >= warm && s.0 <= load_end)
        .filter_map(|s| Some((s.0, s.3?)))
        .collect();
    let rss_steady = if steady.is_empty() {
        during.last().map_or(rss_before, |s| s.1)
    } else {
        steady.iter().map(|s| s.1).sum::<u64>() / steady.len() as u64
    };
    Ok(Figures {
        series,
        points,
        requests,
        failed_requests: failed,
        late_seconds: late,
        rss_before_kib: rss_before,
        rss_steady_kib: rss_steady,
        rss_peak_kib: samples.iter().map(|s| s.1).max().unwrap_or(0),
        slope_kib_per_min: slope_per_minute(&steady),
        heap_steady: (!heap_steady.is_empty()).then(|| {
            (
                heap_steady.iter().map(|s| s.1).sum::<u64>() / heap_steady.len() as u64,
                slope_per_minute(&heap_steady),
            )
        }),
        latency_ms: [
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or(0.0),
        ],
        cpu_seconds: cpu_end.saturating_sub(cpu_start) as f64 / ticks,
        rss_after_silence_kib: rss_after,
        cardinality_after_silence: cardinality_after,
        allocator_at_load_end,
        allocator_after_silence: allocator_after,
        samples: samples.iter().map(|s| (s.0, s.1, s.3)).collect(),
    })
}

fn main() -> std::process::ExitCode {
    let options = match Options::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("soak: {error}");
            return std::process::ExitCode::from(64);
        }
    };
    match run(&options) {
        Ok(figures) => {
            println!("RSS and allocated over time (s, MiB, MiB):");
            for (t, rss, heap) in &figures.samples {
                let heap = heap.map_or("-".to_owned(), |h| format!("{:.1}", h as f64 / 1024.0));
                println!("  {t:7.1}  {:8.1}  {heap:>8}", *rss as f64 / 1024.0);
            }
            println!("| figure | value |\n|---|---|\n{}", figures.render());
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("soak: {error}");
            std::process::ExitCode::from(69)
        }
    }
}
