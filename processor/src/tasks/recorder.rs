//! `[record]`: what a task receives, written as line protocol (ns timestamps, one point per
//! line, tags and fields as written) to `<dir>/<task id>.lp`, a file `processor replay
//! --input` reads as it is.
//!
//! The task loop hands each delivery to its [`Recorder`] once the graph has taken it (a move,
//! no copy) without waiting: a bounded queue of [`QUEUE`] deliveries; when it is full the
//! delivery is left out of the recording, counted and warned about at most every 10 s. A
//! thread of the [`Recording`]'s own turns points into lines and writes them through a buffer
//! flushed whenever its queue is empty, so neither the write path nor the task loop waits for
//! the disk. The task master keeps one recording per task across its restarts (a redefined
//! task's new loop gets a new handle on it): one writer per file. The file is appended to (a restart continues it); a new file starts with a `#`
//! comment naming the task, its dbrps and how to replay it. A line is written whole or not
//! at all: the file never passes `max-size`. When it would, `when-full = "stop"` keeps the
//! file and records nothing more (one warning), `"rotate"` moves it to `<task id>.1.lp`
//! (replacing the one there) and starts a new one.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use crate::point::{FieldValue, PointRef};
use crate::routing::Delivery;

use super::WhenFull;
use super::influx_out::DropWarning;

/// Deliveries waiting for the recording's thread before new ones are left out.
pub const QUEUE: usize = 1024;

/// Where and how one task is recorded.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<dir>/<task id>.lp`.
    pub path: PathBuf,
    /// Bytes per file.
    pub max_size: u64,
    pub when_full: WhenFull,
    /// The comment a new file starts with (lines starting with `#`).
    pub header: String,
}

impl Settings {
    /// The file of task `id` in `dir`.
    pub fn path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.lp"))
    }

    /// Where a rotated file goes: `<task id>.1.lp`.
    pub fn rotated_path(&self) -> PathBuf {
        self.path.with_extension("1.lp")
    }
}

/// One task's recording: its file's thread, and the handle its runs are given.
pub struct Recording {
    recorder: Recorder,
    thread: std::thread::JoinHandle<()>,
}

impl Recording {
    /// Opens (creating it and its folder if needed) the recording of task `task` and starts
    /// its thread, which ends, its buffer flushed, once this and every handle are dropped.
    pub fn start(task: &str, settings: Settings) -> io::Result<Recording> {
        let file = RecordFile::open(task, settings)?;
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name(format!("record {task}"))
            .spawn(move || file.run(rx))?;
        Ok(Recording {
            recorder: Recorder {
                task: task.to_owned(),
                tx,
                warning: DropWarning::default(),
            },
            thread,
        })
    }

    /// A handle for one run of the task's loop.
    pub fn handle(&self) -> Recorder {
        Recorder {
            task: self.recorder.task.clone(),
            tx: self.recorder.tx.clone(),
            warning: DropWarning::default(),
        }
    }

    /// Waits until the file is flushed and closed: once every handle is dropped (blocks).
    pub fn finish(self) {
        drop(self.recorder);
        let _ = self.thread.join();
    }
}

/// A task loop's side of its recording.
pub struct Recorder {
    task: String,
    tx: SyncSender<Delivery>,
    warning: DropWarning,
}

impl Recorder {
    /// Queues `delivery` for the file without waiting; left out and counted when the queue
    /// is full.
    pub fn record(&mut self, delivery: Delivery) {
        let points = delivery.len();
        if let Err(error) = self.tx.try_send(delivery) {
            let due = self.warning.record(points, tokio::time::Instant::now());
            if let Some(points) = due {
                match error {
                    TrySendError::Full(_) => {
                        tracing::warn!(task = %self.task, points, "recording queue full: points left out of the recording (logged at most every 10 s)")
                    }
                    TrySendError::Disconnected(_) => {
                        tracing::warn!(task = %self.task, points, "recording stopped: points left out of the recording (logged at most every 10 s)")
                    }
                }
            }
        }
    }
}

/// The recording's thread: the open file and its size.
struct RecordFile {
    task: String,
    settings: Settings,
    file: BufWriter<File>,
    size: u64,
    /// Full (`stop`) or failed: nothing more is written.
    done: bool,
    line: String,
}

impl RecordFile {
    fn open(task: &str, settings: Settings) -> io::Result<RecordFile> {
        if let Some(dir) = settings.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&settings.path)?;
        let size = file.metadata()?.len();
        let mut record = RecordFile {
            task: task.to_owned(),
            settings,
            file: BufWriter::with_capacity(64 << 10, file),
            size,
            done: false,
            line: String::new(),
        };
        if size == 0 {
            record.header()?;
        }
        Ok(record)
    }

    fn header(&mut self) -> io::Result<()> {
        let header = &self.settings.header;
        if !header.is_empty() && (header.len() as u64) < self.settings.max_size {
            self.file.write_all(header.as_bytes())?;
            self.size += header.len() as u64;
        }
        Ok(())
    }

    fn run(mut self, rx: Receiver<Delivery>) {
        while let Ok(delivery) = rx.recv() {
            self.take(&delivery);
            while let Ok(delivery) = rx.try_recv() {
                self.take(&delivery);
            }
            if !self.done
                && let Err(error) = self.file.flush()
            {
                self.failed(&error);
            }
        }
        if let Err(error) = self.file.flush() {
            self.failed(&error);
        }
    }

    fn take(&mut self, delivery: &Delivery) {
        if self.done {
            return;
        }
        if let Err(error) = self.write(delivery) {
            self.failed(&error);
        }
    }

    fn failed(&mut self, error: &io::Error) {
        if !self.done {
            tracing::error!(task = %self.task, file = %self.settings.path.display(), %error, "recording failed: nothing more is recorded");
        }
        self.done = true;
    }

    fn write(&mut self, delivery: &Delivery) -> io::Result<()> {
        for point in delivery.points() {
            self.line.clear();
            write_line(&point, &mut self.line);
            self.line.push('\n');
            let len = self.line.len() as u64;
            if self.size.saturating_add(len) > self.settings.max_size {
                match self.settings.when_full {
                    WhenFull::Stop => {
                        tracing::warn!(task = %self.task, file = %self.settings.path.display(), max_size = self.settings.max_size, "recording full: nothing more is recorded (when-full = \"stop\")");
                        self.done = true;
                        return self.file.flush();
                    }
                    WhenFull::Rotate => {
                        if len > self.settings.max_size {
                            continue;
                        }
                        self.rotate()?;
                        if self.size.saturating_add(len) > self.settings.max_size {
                            continue;
                        }
                    }
                }
            }
            self.file.write_all(self.line.as_bytes())?;
            self.size += len;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let rotated = self.settings.rotated_path();
        std::fs::rename(&self.settings.path, &rotated)?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.settings.path)?;
        self.file = BufWriter::with_capacity(64 << 10, file);
        self.size = 0;
        tracing::info!(task = %self.task, file = %self.settings.path.display(), rotated = %rotated.display(), "recording rotated");
        self.header()
    }
}

/// `point` as one line of line protocol (no newline), nanosecond timestamp: what InfluxDB
/// 1.x and this processor's parser read back as the same point.
pub fn write_line(point: &PointRef<'_>, out: &mut String) {
    escape(out, point.measurement(), &[',', ' ']);
    for (key, value) in point.tags() {
        out.push(',');
        escape(out, key, &[',', '=', ' ']);
        out.push('=');
        escape(out, value, &[',', '=', ' ']);
    }
    for (i, (key, value)) in point.fields().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape(out, key, &[',', '=', ' ']);
        out.push('=');
        match value {
            FieldValue::Float(x) => {
                let _ = write!(out, "{x}");
            }
            FieldValue::Integer(n) => {
                let _ = write!(out, "{n}i");
            }
            FieldValue::Boolean(b) => out.push_str(if b { "true" } else { "false" }),
            FieldValue::String(s) => {
                out.push('"');
                escape(out, s, &['"', '\\']);
                out.push('"');
            }
        }
    }
    let _ = write!(out, " {}", point.time());
}

/// `text` with a backslash before each of `special` (names keep other backslashes as they
/// are, as 1.x reads them).
fn escape(out: &mut String, text: &str, special: &[char]) {
    if !text.contains(special) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::{Precision, parse_body};

    fn parse(text: &str) -> crate::point::Batch {
        let parsed = parse_body(
            text.as_bytes().to_vec(),
            "db".into(),
            "rp".into(),
            Precision::Nanoseconds,
            0,
        );
        assert!(parsed.errors.is_empty(), "{text}: {:?}", parsed.errors);
        parsed.batch
    }

    type Owned = (String, Vec<(String, String)>, Vec<(String, String)>, i64);

    fn owned(batch: &crate::point::Batch) -> Vec<Owned> {
        batch
            .points()
            .map(|p| {
                (
                    p.measurement().to_owned(),
                    p.tags()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                    p.fields()
                        .map(|(k, v)| (k.to_owned(), format!("{v:?}")))
                        .collect(),
                    p.time(),
                )
            })
            .collect()
    }

    #[test]
    fn written_lines_parse_back_to_the_same_points() {
        let corpus = [
            "requests,deployment=app,host=pod-1,url=http://localhost:8000/metrics counter=42 1795889517000000000",
            "m v=1.5,i=-3i,b=true,f=F,s=\"text\" 1",
            r#"my\ measurement,tag\,key=tag\=value\ x field\ key="a \"quoted\" \\ string",n=0.1 2"#,
            "m,a=b\\c v=1e21,w=-0.000001 -5",
            "m s=\"two\nlines\" 3",
            "m v=.5 4",
        ];
        for text in corpus {
            let batch = parse(text);
            let mut written = String::new();
            for p in batch.points() {
                write_line(&p, &mut written);
                written.push('\n');
            }
            let again = parse(&written);
            assert_eq!(owned(&again), owned(&batch), "{text} -> {written}");
        }
    }

    fn settings(dir: &Path, max_size: u64, when_full: WhenFull) -> Settings {
        Settings {
            path: Settings::path(dir, "t"),
            max_size,
            when_full,
            header: "# recording of t\n".to_owned(),
        }
    }

    /// One delivery per line of `text`.
    fn deliveries(text: &str) -> Vec<Delivery> {
        let router = crate::routing::Router::new();
        struct Keep(std::sync::Mutex<Vec<Delivery>>);
        impl crate::routing::Subscriber for Keep {
            fn deliver(&self, delivery: Delivery) {
                self.0.lock().unwrap().push(delivery);
            }
        }
        let keep = std::sync::Arc::new(Keep(std::sync::Mutex::new(Vec::new())));
        router.subscribe(
            crate::routing::Key {
                db: "db".into(),
                rp: "rp".into(),
                measurement: None,
            },
            keep.clone(),
        );
        for line in text.lines() {
            router.route(&std::sync::Arc::new(parse(line)));
        }
        let mut kept = keep.0.lock().unwrap();
        std::mem::take(&mut *kept)
    }

    fn line(i: i64) -> String {
        format!("m,host=h v={i}i {i}")
    }

    fn record_all(settings: Settings, lines: &[String]) {
        let recording = Recording::start("t", settings).unwrap();
        let mut recorder = recording.handle();
        for delivery in deliveries(&lines.join("\n")) {
            recorder.record(delivery);
        }
        drop(recorder);
        recording.finish();
    }

    #[test]
    fn a_recording_holds_what_was_received_and_stops_at_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..100).map(line).collect();
        // The header (17 bytes) and lines 0 to 4 (16 bytes each) fill 97 of 100 bytes.
        record_all(settings(dir.path(), 100, WhenFull::Stop), &lines);
        let text = std::fs::read_to_string(dir.path().join("t.lp")).unwrap();
        assert_eq!(
            text,
            format!("# recording of t\n{}\n", lines[..5].join("\n"))
        );
        // Started again (a restart) with a larger bound: appended to, no second header.
        record_all(settings(dir.path(), 200, WhenFull::Stop), &lines[5..]);
        let text = std::fs::read_to_string(dir.path().join("t.lp")).unwrap();
        assert!(text.len() <= 200, "{}", text.len());
        assert_eq!(text.matches('#').count(), 1);
        let recorded: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            recorded,
            lines[..recorded.len()]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            recorded.len(),
            11,
            "lines 5 to 10 fit in the next 103 bytes"
        );
    }

    #[test]
    fn a_full_recording_rotates_and_keeps_the_newest_points() {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..100).map(line).collect();
        record_all(settings(dir.path(), 100, WhenFull::Rotate), &lines);
        let newest = std::fs::read_to_string(dir.path().join("t.lp")).unwrap();
        let previous = std::fs::read_to_string(dir.path().join("t.1.lp")).unwrap();
        assert!(newest.len() <= 100 && previous.len() <= 100);
        assert!(
            newest.starts_with("# recording of t\n") && previous.starts_with("# recording of t\n")
        );
        let tail: Vec<&str> = previous
            .lines()
            .chain(newest.lines())
            .filter(|l| !l.starts_with('#'))
            .collect();
        let expected: Vec<&str> = lines[lines.len() - tail.len()..]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail, expected,
            "the two files hold the last points, in order"
        );
        assert_eq!(newest.lines().last(), Some("m,host=h v=99i 99"));
    }
}
