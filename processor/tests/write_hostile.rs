//! Hostile input at the write API of the real `processor` binary (a separate process), while a
//! well-formed writer posts a batch every 10 ms and times each answer.
//!
//! One run, in phases: the whole line-protocol corpus as writes; a storm of random requests
//! (random methods, paths, headers, content encodings, bodies, lying lengths) and of raw
//! random bytes; a 10 MB gzip bomb; slowloris connections trickling headers and trickling
//! bodies; 10,000 connections held open at once. Asserted (not timing): the processor stays
//! up and answers `/ping`, never answers 5xx to the storm, refuses the bomb with 413, cuts
//! every slow connection (header trickles closed, body trickles answered 408), every
//! well-formed write is answered 204 and all its points are counted in `/metrics`, its log
//! holds no panic, and its peak RSS stays under a generous bound. Printed: the writer's
//! latency (p50, p99, max; per phase), when slow connections were cut, peak and final RSS.
//! The p99 goal (under 50 ms) is printed, not asserted.
//!
//! Two smaller tests check `max-connection-limit` (connections beyond it are closed at once,
//! the open ones are still served) and the three timeouts one by one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use workspace_bins::peers::{KillOnDrop, free_port, http, try_http};

const BIN: &str = env!("CARGO_BIN_EXE_processor");

/// The processor as a process, its log in a file.
struct Processor {
    child: KillOnDrop,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Processor {
    fn start(http_keys: &str) -> Processor {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("an address");
        let config = dir.path().join("processor.conf");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n[http]\nbind-address = \"{addr}\"\n{http_keys}\n",
                data.display().to_string()
            ),
        )
        .expect("write config");
        let log = dir.path().join("processor.log");
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start processor");
        let child = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while try_http(addr, "GET", "/ping", "").map(|(s, _)| s) != Some(204) {
            assert!(Instant::now() < deadline, "the processor did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Processor {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.0.try_wait(), Ok(None))
    }

    /// (VmRSS, VmHWM) in KiB from /proc.
    fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The value of a `/metrics` sample line starting with `series`.
    fn metric(&self, series: &str) -> f64 {
        let (_, text) = http(self.addr, "GET", "/metrics", "");
        text.lines()
            .filter(|line| line.starts_with(series))
            .filter_map(|line| line.rsplit(' ').next())
            .filter_map(|value| value.parse::<f64>().ok())
            .fold(0.0, |sum, value| sum + value)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

// ---- the well-formed writer ------------------------------------------------------------------

/// What the writer saw: (time since the run's start, latency) per write, non-204 answers.
#[derive(Debug, Default)]
struct WriterReport {
    latencies: Vec<(Duration, Duration)>,
    failures: Vec<String>,
    points: usize,
    reconnects: usize,
}

const WRITER_LINES: usize = 10;

/// Posts a batch of `WRITER_LINES` points to `/kapacitor/v1/write` every 10 ms on one
/// kept-alive connection (a new one if it closes) until `stop`, on its own thread.
fn writer(addr: SocketAddr, start: Instant, stop: Arc<AtomicBool>) -> WriterReport {
    let mut report = WriterReport::default();
    let mut connection: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let mut next = Instant::now();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next = Instant::now().max(next) + Duration::from_millis(10);
        if connection.is_none() {
            let Ok(stream) = TcpStream::connect(addr) else {
                report.failures.push("cannot connect".to_owned());
                continue;
            };
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(reader) = stream.try_clone() else {
                continue;
            };
            if n > 0 {
                report.reconnects += 1;
            }
            connection = Some((stream, BufReader::new(reader)));
        }
        let Some((stream, reader)) = connection.as_mut() else {
            continue;
        };
        let mut body = String::new();
        for i in 0..WRITER_LINES {
            n += 1;
            body.push_str(&format!("wf,host=h{i},deployment=app value={n}i\n"));
        }
        let request = format!(
            "POST /kapacitor/v1/write?db=wellformed&rp=autogen HTTP/1.1\r\nHost: x\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let sent = Instant::now();
        let answer = stream
            .write_all(request.as_bytes())
            .and_then(|()| read_response(reader));
        let took = sent.elapsed();
        match answer {
            Ok((204, _)) => {
                report.latencies.push((sent - start, took));
                report.points += WRITER_LINES;
            }
            Ok((status, text)) => {
                report.failures.push(format!("{status}: {text}"));
            }
            Err(error) => {
                report.failures.push(format!("{error}"));
                connection = None;
            }
        }
    }
    report
}

/// Reads one HTTP/1.1 response (status line, headers, Content-Length body).
fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<(u16, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed before an answer",
        ));
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

// ---- raw async exchanges ---------------------------------------------------------------------

/// How one raw exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// An answer with this status.
    Status(u16),
    /// Closed (or reset) without an answer.
    Closed,
    /// Nothing within the client's patience.
    NoAnswer,
}

/// Sends `request` on a new connection and reads until the status line is complete, the
/// connection closes, or `patience` passes.
async fn exchange(addr: SocketAddr, request: &[u8], patience: Duration) -> Outcome {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return Outcome::Closed;
    };
    let _ = stream.write_all(request).await;
    read_status(&mut stream, patience).await
}

async fn read_status(stream: &mut tokio::net::TcpStream, patience: Duration) -> Outcome {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Outcome::NoAnswer,
            Ok(Ok(0) | Err(_)) => return status_of(&seen).map_or(Outcome::Closed, Outcome::Status),
            Ok(Ok(n)) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(2).any(|w| w == b"\r\n")
                    && let Some(status) = status_of(&seen)
                {
                    return Outcome::Status(status);
                }
            }
        }
    }
}

fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

// ---- the hostile inputs ----------------------------------------------------------------------

/// Every decode input of the line-protocol corpus, with its precision parameter.
fn corpus() -> Vec<(Vec<u8>, &'static str)> {
    let Some(dir) = workspace_bins::corpora_dir() else {
        return Vec::new();
    };
    let corpus: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("line-protocol/corpus.json")).expect("read corpus.json"),
    )
    .expect("corpus.json is JSON");
    let mut inputs = Vec::new();
    for entry in corpus["decode"]
        .as_object()
        .into_iter()
        .flat_map(|d| d.values())
    {
        let input = &entry["input"];
        let text = match &input["text"] {
            serde_json::Value::String(text) => text.as_bytes().to_vec(),
            other => other["binary"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .unwrap_or_default(),
        };
        let precision = match input["precision"].as_str().unwrap_or("1ns") {
            "1µs" => "u",
            "1ms" => "ms",
            "1s" => "s",
            "1m" => "m",
            "1h" => "h",
            _ => "ns",
        };
        inputs.push((text, precision));
    }
    inputs
}

/// A POST of `body` to `path`, kept alive.
fn post(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// About `size` bytes of gzip that inflate about a thousand times: copies of one member of
/// 1 MiB of zeros (Go's reader and the processor's read concatenated members as one stream).
fn gzip_bomb(size: usize) -> (Vec<u8>, u64) {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = encoder.write_all(&vec![0u8; 1 << 20]);
    let member = encoder.finish().unwrap_or_default();
    let copies = size / member.len().max(1);
    (member.repeat(copies), copies as u64 * (1 << 20))
}

/// One random request: method, path, headers, content encoding, body and declared length all
/// drawn from `rng`, mostly plausible and often broken.
fn random_request(rng: &mut fastrand::Rng, corpus: &[(Vec<u8>, &str)]) -> Vec<u8> {
    let method = [
        "POST", "POST", "POST", "GET", "PUT", "OPTIONS", "HEAD", "P\0ST", "",
    ][rng.usize(..9)];
    let path = [
        "/write?db=storm",
        "/write?db=storm&precision=s",
        "/write?db=storm&precision=xyz",
        "/write",
        "/api/v2/write?bucket=storm",
        "/query?q=CREATE+DATABASE+storm",
        "/query",
        "/ping",
        "/kapacitor/v1/tasks",
        "/%ff%fe",
        "*",
        "/write?db=storm&u=x&p=y",
    ][rng.usize(..12)];
    let mut body: Vec<u8> = match rng.u8(..4) {
        0 => (0..rng.usize(..4096)).map(|_| rng.u8(..)).collect(),
        1 if !corpus.is_empty() => {
            let mut b = Vec::new();
            for _ in 0..rng.usize(1..20) {
                b.extend_from_slice(&corpus[rng.usize(..corpus.len())].0);
                b.push(b'\n');
            }
            b
        }
        2 => b"storm,host=a value=1i\nstorm value=\"unterminated\n".to_vec(),
        _ => Vec::new(),
    };
    let mut headers = String::new();
    match rng.u8(..6) {
        0 => {
            headers.push_str("Content-Encoding: gzip\r\n");
            body = gzip(&body);
        }
        1 => {
            headers.push_str("Content-Encoding: gzip\r\n");
            let mut zipped = gzip(&body);
            zipped.truncate(rng.usize(..=zipped.len()));
            body = zipped;
        }
        2 => headers.push_str("Content-Encoding: gzip\r\n"),
        3 => headers
            .push_str(["Content-Encoding: br\r\n", "Content-Encoding: \u{7f}\r\n"][rng.usize(..2)]),
        _ => {}
    }
    for _ in 0..rng.usize(..4) {
        let name: String = (0..rng.usize(1..12))
            .map(|_| char::from(rng.u8(b'A'..=b'z')))
            .collect();
        let value: String = (0..rng.usize(..40))
            .map(|_| char::from(rng.u8(32..127)))
            .collect();
        headers.push_str(&format!("{name}: {value}\r\n"));
    }
    if rng.u8(..10) == 0 {
        headers.push_str("Authorization: Token \u{0}\u{1}\r\n");
    }
    if rng.u8(..10) == 0 {
        headers.push_str("Transfer-Encoding: chunked\r\n");
    }
    // A declared length that lies: shorter (the rest reads as the next request) or longer
    // (the body never completes: cut by body-read-timeout).
    let declared = match rng.u8(..10) {
        0 => body.len() / 2,
        1 => body.len() + 1 + rng.usize(..100),
        _ => body.len(),
    };
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\
         Connection: close\r\n{headers}\r\n"
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// What a phase saw, printed at the end.
#[derive(Debug, Default)]
struct Phase {
    name: &'static str,
    start: Duration,
    end: Duration,
    outcomes: BTreeMap<Outcome, usize>,
    notes: Vec<String>,
}

fn summary(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort();
    format!(
        "min {} / median {} / max {} s",
        sorted.first().map_or(0.0, Duration::as_secs_f64),
        percentile(&sorted, 0.5).as_secs_f64(),
        sorted.last().map_or(0.0, Duration::as_secs_f64)
    )
}

/// The file-descriptor budget of this process (soft `RLIMIT_NOFILE`), from /proc.
fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024)
}

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(2);
const IDLE_TIMEOUT: Duration = Duration::from_secs(6);
/// Connections held open at once in the last phase.
const HELD: usize = 10_000;
/// A generous bound on the processor's peak RSS; the real figure is printed.
const RSS_BOUND_KIB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_writers_neither_stop_the_processor_nor_starve_a_well_formed_writer() {
    // 10,000 connections need more descriptors than a default soft limit of 1,024; the
    // processor inherits the raised limit.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let fd_limit = open_files_limit();
    // Each held connection takes a descriptor here and one in the processor (same limit).
    let held = HELD.min(usize::try_from(fd_limit.saturating_sub(500)).unwrap_or(HELD));
    println!("open files limit {fd_limit}: holding {held} connections at once");
    let mut processor = Processor::start(&format!(
        "header-read-timeout = \"{}ms\"\nbody-read-timeout = \"{}ms\"\n\
         idle-timeout = \"{}ms\"\nmax-connection-limit = {}",
        HEADER_READ_TIMEOUT.as_millis(),
        BODY_READ_TIMEOUT.as_millis(),
        IDLE_TIMEOUT.as_millis(),
        held + 100
    ));
    let addr = processor.addr;
    let (rss_start, _) = processor.memory_kib();
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer_thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || writer(addr, start, stop))
    };
    // RSS sampled every 50 ms: (time, KiB).
    let rss_samples = {
        let stop = Arc::clone(&stop);
        let pid = processor.pid();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    samples.push((start.elapsed(), kib));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut phases: Vec<Phase> = Vec::new();

    // 1. The whole line-protocol corpus, over 4 connections at a time.
    let inputs = Arc::new(corpus());
    let mut phase = Phase {
        name: "corpus",
        start: start.elapsed(),
        ..Phase::default()
    };
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let inputs = Arc::clone(&inputs);
        let next = Arc::clone(&next);
        workers.push(tokio::spawn(async move {
            let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((text, precision)) = inputs.get(i) else {
                    break;
                };
                let request = post(
                    &format!("/write?db=corpus&precision={precision}"),
                    "Connection: close\r\n",
                    text,
                );
                let outcome = exchange(addr, &request, Duration::from_secs(10)).await;
                *outcomes.entry(outcome).or_default() += 1;
            }
            outcomes
        }));
    }
    for worker in workers {
        for (outcome, n) in worker.await.expect("corpus worker") {
            *phase.outcomes.entry(outcome).or_default() += n;
        }
    }
    phase.notes.push(format!("{} corpus inputs", inputs.len()));
    phase.end = start.elapsed();
    let corpus_outcomes = phase.outcomes.clone();
    phases.push(phase);

    // 2. The storm: 1,500 random requests and 500 connections of raw random bytes, 32 at a time.
    let mut phase = Phase {
        name: "random storm",
        start: start.elapsed(),
        ..Phase::default()
    };
    let seed = std::env::var("STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    phase.notes.push(format!("STORM_SEED={seed}"));
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..32u64 {
        let inputs = Arc::clone(&inputs);
        let next = Arc::clone(&next);
        workers.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(worker));
            let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
            while next.fetch_add(1, Ordering::Relaxed) < 2_000 {
                let request = if rng.u8(..4) == 0 {
                    (0..rng.usize(1..8192)).map(|_| rng.u8(..)).collect()
                } else {
                    random_request(&mut rng, &inputs)
                };
                let outcome = exchange(addr, &request, Duration::from_secs(10)).await;
                *outcomes.entry(outcome).or_default() += 1;
            }
            outcomes
        }));
    }
    for worker in workers {
        for (outcome, n) in worker.await.expect("storm worker") {
            *phase.outcomes.entry(outcome).or_default() += n;
        }
    }
    phase.end = start.elapsed();
    let storm_outcomes = phase.outcomes.clone();
    phases.push(phase);

    // 3. The gzip bomb: 10 MB that inflate to about 10 GB.
    let mut phase = Phase {
        name: "gzip bomb",
        start: start.elapsed(),
        ..Phase::default()
    };
    let (bomb, inflated) = gzip_bomb(10_000_000);
    let sent = Instant::now();
    let bomb_outcome = exchange(
        addr,
        &post("/write?db=bomb", "Content-Encoding: gzip\r\n", &bomb),
        Duration::from_secs(30),
    )
    .await;
    phase.notes.push(format!(
        "{} bytes inflating to {inflated}: {bomb_outcome:?} after {} ms",
        bomb.len(),
        ms(sent.elapsed())
    ));
    *phase.outcomes.entry(bomb_outcome).or_default() += 1;
    phase.end = start.elapsed();
    phases.push(phase);

    // 4. Slowloris: 200 connections trickling a head, 200 trickling a body, a byte every 200 ms.
    let mut phase = Phase {
        name: "slowloris",
        start: start.elapsed(),
        ..Phase::default()
    };
    let mut heads = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..400 {
        let trickle_body = i % 2 == 1;
        let task = tokio::spawn(async move {
            let opened = Instant::now();
            let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
                return (Outcome::Closed, Duration::ZERO);
            };
            let (head, body): (&[u8], &[u8]) = if trickle_body {
                (
                    b"POST /write?db=slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
                    b"slow value=1i\n",
                )
            } else {
                (b"", b"POST /write?db=slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            };
            let _ = stream.write_all(head).await;
            let mut read = [0u8; 1024];
            let mut seen = Vec::new();
            // Trickle one byte at a time (repeating the body) until the server answers or closes.
            for byte in body.iter().cycle().take(1000) {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut read)).await
                {
                    Err(_) => continue,
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(n)) => {
                        seen.extend_from_slice(&read[..n]);
                        break;
                    }
                }
            }
            let outcome = match status_of(&seen) {
                Some(status) => Outcome::Status(status),
                // Wait for the close after an answer or a cut.
                None => read_status(&mut stream, Duration::from_secs(1)).await,
            };
            (outcome, opened.elapsed())
        });
        if trickle_body {
            bodies.push(task);
        } else {
            heads.push(task);
        }
    }
    let mut head_times = Vec::new();
    let mut head_outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    for task in heads {
        let (outcome, took) = task.await.expect("slow head");
        *head_outcomes.entry(outcome).or_default() += 1;
        head_times.push(took);
    }
    let mut body_times = Vec::new();
    let mut body_outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    for task in bodies {
        let (outcome, took) = task.await.expect("slow body");
        *body_outcomes.entry(outcome).or_default() += 1;
        body_times.push(took);
    }
    phase.notes.push(format!(
        "200 heads trickled: {head_outcomes:?}, cut after {} (header-read-timeout {} s)",
        summary(&head_times),
        HEADER_READ_TIMEOUT.as_secs_f64()
    ));
    phase.notes.push(format!(
        "200 bodies trickled: {body_outcomes:?}, answered after {} (body-read-timeout {} s)",
        summary(&body_times),
        BODY_READ_TIMEOUT.as_secs_f64()
    ));
    phase.end = start.elapsed();
    phases.push(phase);

    // 5. `held` connections open at once: each asks /ping, then idles until the server closes
    //    it (idle-timeout).
    let mut phase = Phase {
        name: "10,000 connections",
        start: start.elapsed(),
        ..Phase::default()
    };
    let open_now = Arc::new(AtomicUsize::new(0));
    let open_max = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let opening = Instant::now();
    for batch in 0..held.div_ceil(250) {
        for _ in 0..250.min(held - batch * 250) {
            let open_now = Arc::clone(&open_now);
            let open_max = Arc::clone(&open_max);
            tasks.push(tokio::spawn(async move {
                let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
                    return (Outcome::Closed, None);
                };
                let _ = stream
                    .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await;
                let outcome = read_status(&mut stream, Duration::from_secs(20)).await;
                if outcome != Outcome::Status(204) {
                    return (outcome, None);
                }
                let answered = Instant::now();
                let now = open_now.fetch_add(1, Ordering::SeqCst) + 1;
                open_max.fetch_max(now, Ordering::SeqCst);
                // Idle: the next thing is the server's close.
                let mut rest = [0u8; 64];
                let closed = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut rest))
                    .await
                    .map(|_| answered.elapsed())
                    .ok();
                open_now.fetch_sub(1, Ordering::SeqCst);
                (outcome, closed)
            }));
        }
        // Let the server accept this batch before the next (its accept queue holds 1,024).
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let opened_in = opening.elapsed();
    let mut idle_times = Vec::new();
    let mut not_closed = 0;
    for task in tasks {
        let (outcome, closed) = task.await.expect("held connection");
        *phase.outcomes.entry(outcome).or_default() += 1;
        match closed {
            Some(after) => idle_times.push(after),
            None if outcome == Outcome::Status(204) => not_closed += 1,
            None => {}
        }
    }
    let held_at_once = open_max.load(Ordering::SeqCst);
    phase.notes.push(format!(
        "opened in {:.1} s; {held_at_once} open at once; closed when idle after {} \
         (idle-timeout {} s); {not_closed} not closed within 60 s",
        opened_in.as_secs_f64(),
        summary(&idle_times),
        IDLE_TIMEOUT.as_secs_f64()
    ));
    phase.end = start.elapsed();
    let held_outcomes = phase.outcomes.clone();
    phases.push(phase);

    // The end: stop the writer, read what the processor counted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let report = writer_thread.join().expect("writer");
    let samples = rss_samples.join().expect("rss sampler");
    let alive = processor.alive();
    let ping = try_http(addr, "GET", "/ping", "").map(|(status, _)| status);
    let counted =
        processor.metric("processor_points_received_total{endpoint=\"/kapacitor/v1/write\"}");
    let refused = processor.metric("processor_http_connections_refused_total");
    let closed_by_timeout = processor.metric("processor_http_connections_closed_total");
    let body_timeouts = processor.metric("processor_http_body_timeouts_total");
    let (rss_end, hwm) = processor.memory_kib();
    let log = processor.log_text();

    // Print everything before asserting.
    let mut all: Vec<Duration> = report.latencies.iter().map(|(_, l)| *l).collect();
    all.sort();
    println!(
        "well-formed writer: {} writes of {WRITER_LINES} points, {} failures, {} reconnects; \
         latency p50 {} ms, p99 {} ms, max {} ms (goal: p99 under 50 ms)",
        all.len(),
        report.failures.len(),
        report.reconnects,
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(all.last().copied().unwrap_or_default())
    );
    for phase in &phases {
        let mut during: Vec<Duration> = report
            .latencies
            .iter()
            .filter(|(at, _)| *at >= phase.start && *at < phase.end)
            .map(|(_, l)| *l)
            .collect();
        during.sort();
        let peak = samples
            .iter()
            .filter(|(at, _)| *at >= phase.start && *at <= phase.end)
            .map(|(_, kib)| *kib)
            .max()
            .unwrap_or(0);
        println!(
            "{:<20} {:5.1} s: writer p50 {} ms, p99 {} ms, max {} ms ({} writes); RSS up to \
             {:.1} MiB; answers {:?}",
            phase.name,
            (phase.end - phase.start).as_secs_f64(),
            ms(percentile(&during, 0.5)),
            ms(percentile(&during, 0.99)),
            ms(during.last().copied().unwrap_or_default()),
            during.len(),
            peak as f64 / 1024.0,
            phase.outcomes
        );
        for note in &phase.notes {
            println!("{:<20} {note}", "");
        }
    }
    println!(
        "processor RSS: {:.1} MiB at start, peak {:.1} MiB (VmHWM), {:.1} MiB at the end; \
         connections refused {refused}, closed by timeouts {closed_by_timeout}, body \
         timeouts {body_timeouts}; the run took {:.1} s",
        rss_start as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        start.elapsed().as_secs_f64()
    );
    if !report.failures.is_empty() {
        println!(
            "writer failures (first 5): {:?}",
            &report.failures[..report.failures.len().min(5)]
        );
    }

    assert!(alive, "the processor exited; its log:\n{log}");
    assert_eq!(ping, Some(204), "/ping after the run");
    assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
    assert!(
        report.failures.is_empty(),
        "well-formed writes failed: {:?}",
        report.failures
    );
    assert!(all.len() > 100, "the writer wrote {} times", all.len());
    assert_eq!(
        counted as usize, report.points,
        "points counted by /metrics"
    );
    for (name, outcomes) in [("corpus", &corpus_outcomes), ("storm", &storm_outcomes)] {
        let server_errors: usize = outcomes
            .iter()
            .filter(|(o, _)| matches!(o, Outcome::Status(s) if *s >= 500))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(server_errors, 0, "{name}: {outcomes:?}");
        assert_eq!(
            outcomes.get(&Outcome::NoAnswer),
            None,
            "{name} hung: {outcomes:?}"
        );
    }
    if !inputs.is_empty() {
        let answered: usize = corpus_outcomes
            .iter()
            .filter(|(o, _)| matches!(o, Outcome::Status(204 | 400)))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(answered, inputs.len(), "corpus: {corpus_outcomes:?}");
    }
    assert_eq!(bomb_outcome, Outcome::Status(413));
    assert_eq!(
        head_outcomes.get(&Outcome::NoAnswer),
        None,
        "{head_outcomes:?}"
    );
    assert_eq!(body_outcomes, BTreeMap::from([(Outcome::Status(408), 200)]));
    assert_eq!(
        held_outcomes,
        BTreeMap::from([(Outcome::Status(204), held)])
    );
    assert_eq!(not_closed, 0, "idle connections left open past 60 s");
    assert!(hwm < RSS_BOUND_KIB, "peak RSS {hwm} KiB");
}

/// A processor with `max-connection-limit = 20`: 20 idle connections fill it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_at_once_and_the_open_ones_are_still_served() {
    let processor = Processor::start("max-connection-limit = 20\nidle-timeout = \"30s\"");
    let addr = processor.addr;
    let mut open = Vec::new();
    for _ in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        assert_eq!(
            read_status(&mut stream, Duration::from_secs(10)).await,
            Outcome::Status(204)
        );
        open.push(stream);
    }
    for _ in 0..5 {
        let outcome = exchange(
            addr,
            b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n",
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(outcome, Outcome::Closed, "a connection beyond the limit");
    }
    let body = b"m value=1i\n";
    for stream in &mut open {
        stream
            .write_all(&post("/write?db=limit", "", body))
            .await
            .expect("write");
        assert_eq!(
            read_status(stream, Duration::from_secs(10)).await,
            Outcome::Status(204)
        );
    }
    drop(open);
    // Places are given back when connections close.
    let deadline = Instant::now() + Duration::from_secs(10);
    while try_http(addr, "GET", "/ping", "").map(|(s, _)| s) != Some(204) {
        assert!(Instant::now() < deadline, "places were not given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        processor.metric("processor_http_connections_refused_total"),
        5.0
    );
    assert!(processor.log_text().contains("connection limit reached"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_longer_than_64_kib_is_refused_with_431_and_the_server_serves_on() {
    let processor = Processor::start("");
    let request = format!(
        "POST /write?db=x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_eq!(
        exchange(processor.addr, request.as_bytes(), Duration::from_secs(10)).await,
        Outcome::Status(431)
    );
    let request = format!(
        "POST /write?db=x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(60 * 1024)
    );
    assert_eq!(
        exchange(processor.addr, request.as_bytes(), Duration::from_secs(10)).await,
        Outcome::Status(204)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_timeout_cuts_its_own_kind_of_slow_connection() {
    let processor = Processor::start(
        "header-read-timeout = \"500ms\"\nidle-timeout = \"1500ms\"\nbody-read-timeout = \"1s\"",
    );
    let addr = processor.addr;

    // Nothing sent: closed after the header-read timeout, without an answer.
    let opened = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    assert_eq!(
        read_status(&mut silent, Duration::from_secs(10)).await,
        Outcome::Closed
    );
    let silent_after = opened.elapsed();

    // Half a head: the same.
    let opened = Instant::now();
    let mut half = tokio::net::TcpStream::connect(addr).await.expect("connect");
    half.write_all(b"POST /write?db=x HTTP/1.1\r\nHo")
        .await
        .expect("write");
    assert_eq!(
        read_status(&mut half, Duration::from_secs(10)).await,
        Outcome::Closed
    );
    let half_after = opened.elapsed();

    // A body that never completes: 408 with a JSON error naming the key, then closed.
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nm v=1")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("http.body-read-timeout"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );

    // Kept alive after an answer: open past the header-read timeout, closed at the idle one.
    let mut idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(
        read_status(&mut idle, Duration::from_secs(10)).await,
        Outcome::Status(204)
    );
    let answered = Instant::now();
    tokio::time::sleep(Duration::from_millis(800)).await;
    idle.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(
        read_status(&mut idle, Duration::from_secs(10)).await,
        Outcome::Status(204),
        "a kept-alive connection idle for longer than header-read-timeout is still open"
    );
    let mut rest = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "closed when idle: {read:?}"
    );
    println!(
        "silent connection closed after {} ms, half a head after {} ms (header-read-timeout \
         500 ms); idle connection closed {} ms after its first answer (idle-timeout 1500 ms, \
         a second request at 800 ms)",
        ms(silent_after),
        ms(half_after),
        ms(answered.elapsed())
    );
    assert!(
        processor.metric("processor_http_connections_closed_total{reason=\"header-read-timeout\"}")
            >= 2.0
    );
    assert_eq!(
        processor.metric("processor_http_connections_closed_total{reason=\"idle-timeout\"}"),
        1.0
    );
    assert_eq!(processor.metric("processor_http_body_timeouts_total"), 1.0);
}
