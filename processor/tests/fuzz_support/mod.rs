//! The stable-toolchain mutation fuzzer shared by `fuzz_write_body.rs` and `fuzz_tick.rs`
//! (the approach of `agent/tests/prom_props.rs`): seeds from the shared corpora and the
//! repository's inputs, byte and token mutations, a reproducible stream from `FUZZ_SEED`.
//!
//! Each target runs twice: a short run of `FUZZ_ITERATIONS` inputs (default a few thousand)
//! that CI runs, and an `#[ignore]`d run of `FUZZ_SECONDS` (default 60) for long runs. The
//! input under test is kept in `$TMPDIR/<name>-fuzz-current` (rewritten before every input),
//! so an input that aborts the process (a stack overflow is not a panic) is left there; an
//! input that panics or breaks an invariant is written to `$TMPDIR/<name>-fuzz-crash`, one that
//! takes longer than `FUZZ_HANG_MS` (default 10,000; long runs only) to
//! `$TMPDIR/<name>-fuzz-hang`.

#![allow(dead_code)]

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// xorshift64*: a reproducible stream from `FUZZ_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// This many inputs (the CI run); no hang check (debug builds on a shared machine).
    Iterations(u64),
    /// This long (the long run), with the hang check.
    Seconds(u64),
}

impl Budget {
    /// `FUZZ_ITERATIONS`, else `default`.
    pub fn short(default: u64) -> Self {
        Self::Iterations(env_u64("FUZZ_ITERATIONS").unwrap_or(default))
    }

    /// `FUZZ_SECONDS`, else 60.
    pub fn long() -> Self {
        Self::Seconds(env_u64("FUZZ_SECONDS").unwrap_or(60))
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub runs: u64,
    /// Inputs the check called accepted (a point parsed, a script compiled).
    pub accepted: u64,
    pub elapsed: Duration,
    /// The slowest input: its time and size in bytes.
    pub slowest: (Duration, usize),
}

/// Largest input tried, in bytes (seeds are cut to it too).
pub const MAX_INPUT: usize = 16 * 1024;

/// Mutates `input` in place: 1 to 4 of bit flips, token inserts, deletions, splices from other
/// seeds, duplications, truncation, and a whole other seed appended as a new line.
pub fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], tokens: &[&[u8]], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(8) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                if let Some(byte) = input.get_mut(i) {
                    *byte ^= 1 << rng.below(8);
                }
            }
            1 | 2 if !tokens.is_empty() => {
                let token = tokens.get(rng.below(tokens.len())).copied().unwrap_or(b"");
                input.splice(at..at, token.iter().copied());
            }
            3 if !input.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            4 => {
                let other = seeds
                    .get(rng.below(seeds.len()))
                    .map_or(&[][..], Vec::as_slice);
                let from = rng.below(other.len());
                let to = (from + rng.below(200)).min(other.len());
                input.splice(
                    at..at,
                    other.get(from..to).unwrap_or_default().iter().copied(),
                );
            }
            5 if !input.is_empty() => {
                let end = (at + rng.below(80)).min(input.len());
                let chunk = input.get(at.min(end)..end).unwrap_or_default().to_vec();
                input.splice(end..end, chunk);
            }
            6 => {
                let other = seeds
                    .get(rng.below(seeds.len()))
                    .map_or(&[][..], Vec::as_slice);
                input.push(b'\n');
                input.extend_from_slice(other);
            }
            _ => input.truncate(at),
        }
    }
    input.truncate(MAX_INPUT);
}

fn temp_file(name: &str, what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{name}-fuzz-{what}"))
}

/// Runs `check` on mutated seeds until `budget` is spent. `check` answers whether the input
/// was accepted, or a broken invariant; a panic, a broken invariant or (long runs) a hang
/// writes the input to a file and fails the test naming it and the seed.
pub fn run(
    name: &str,
    seeds: &[Vec<u8>],
    tokens: &[&[u8]],
    budget: Budget,
    check: impl Fn(&[u8]) -> Result<bool, String>,
) -> Report {
    assert!(!seeds.is_empty(), "no seeds");
    let seed = env_u64("FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let hang = Duration::from_millis(env_u64("FUZZ_HANG_MS").unwrap_or(10_000));
    println!(
        "{name}: FUZZ_SEED={seed}, {} seeds, {budget:?}",
        seeds.len()
    );
    let mut rng = Rng::new(seed);
    let current_path = temp_file(name, "current");
    let current = File::create(&current_path).ok();
    let started = Instant::now();
    let (mut runs, mut accepted) = (0u64, 0u64);
    let mut slowest = (Duration::ZERO, 0);
    // Long runs print their progress every ten minutes.
    let mut next_progress = started + Duration::from_secs(600);
    loop {
        let done = match budget {
            Budget::Iterations(n) => runs >= n,
            Budget::Seconds(s) => started.elapsed() >= Duration::from_secs(s),
        };
        if done {
            break;
        }
        if matches!(budget, Budget::Seconds(_))
            && runs % 1024 == 0
            && Instant::now() >= next_progress
        {
            next_progress += Duration::from_secs(600);
            println!(
                "{name}: {runs} inputs after {:.0} s, {accepted} accepted, slowest {:?}",
                started.elapsed().as_secs_f64(),
                slowest.0
            );
        }
        let mut input = seeds
            .get(rng.below(seeds.len()))
            .cloned()
            .unwrap_or_default();
        // One input in eight is a seed as it is, so every seed is tried unmutated too.
        if rng.below(8) != 0 {
            mutate(&mut rng, seeds, tokens, &mut input);
        }
        if let Some(file) = &current {
            let _ = file.set_len(0);
            let _ = file.write_all_at(&input, 0);
        }
        let one = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        let took = one.elapsed();
        runs += 1;
        if took > slowest.0 {
            slowest = (took, input.len());
        }
        let failure = match outcome {
            Ok(Ok(ok)) => {
                accepted += u64::from(ok);
                None
            }
            Ok(Err(broken)) => Some(("crash", broken)),
            Err(panic) => Some((
                "crash",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a panic".to_owned()),
            )),
        };
        let failure = failure.or_else(|| {
            (matches!(budget, Budget::Seconds(_)) && took > hang).then(|| {
                (
                    "hang",
                    format!("took {took:?} (FUZZ_HANG_MS {})", hang.as_millis()),
                )
            })
        });
        if let Some((kind, why)) = failure {
            let path = temp_file(name, kind);
            let written = File::create(&path).and_then(|mut f| f.write_all(&input));
            panic!(
                "{name}: FUZZ_SEED={seed}, input {runs}: {why}; the input ({} bytes) {} {}",
                input.len(),
                if written.is_ok() {
                    "is in"
                } else {
                    "could not be written to"
                },
                path.display()
            );
        }
    }
    let report = Report {
        seed,
        runs,
        accepted,
        elapsed: started.elapsed(),
        slowest,
    };
    println!(
        "{name}: FUZZ_SEED={seed}: {runs} inputs in {:.1} s ({:.0}/s), {accepted} accepted, \
         slowest {:?} ({} bytes); no panic, no broken invariant",
        report.elapsed.as_secs_f64(),
        runs as f64 / report.elapsed.as_secs_f64().max(1e-9),
        slowest.0,
        slowest.1
    );
    let _ = std::fs::remove_file(&current_path);
    report
}

/// The first `MAX_INPUT` bytes of every file in `dir` whose name ends with `suffix`.
pub fn files_in(dir: &std::path::Path, suffix: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|mut bytes| {
            bytes.truncate(MAX_INPUT);
            bytes
        })
        .collect()
}

/// The string literals of a Rust source file (`"..."` with the common escapes, and `r"..."`
/// / `r#"..."#`), for seeds taken from the repository's tests.
pub fn string_literals(source: &str) -> Vec<String> {
    let bytes = source.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        // Skip char literals such as '"' so they do not open a string.
        if b == b'\'' && bytes.get(i + 2) == Some(&b'\'') {
            i += 3;
            continue;
        }
        if b == b'\'' && bytes.get(i + 1) == Some(&b'\\') && bytes.get(i + 3) == Some(&b'\'') {
            i += 4;
            continue;
        }
        if b == b'r' && matches!(bytes.get(i + 1), Some(b'"' | b'#')) {
            let hashes = bytes
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .take_while(|&&c| c == b'#')
                .count();
            if bytes.get(i + 1 + hashes) == Some(&b'"') {
                let start = i + 2 + hashes;
                let closing = format!("\"{}", "#".repeat(hashes));
                if let Some(len) = source.get(start..).and_then(|rest| rest.find(&closing)) {
                    found.push(
                        source
                            .get(start..start + len)
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    i = start + len + closing.len();
                    continue;
                }
            }
        }
        if b == b'"' {
            let mut text = String::new();
            let mut j = i + 1;
            let mut chars = source.get(j..).unwrap_or_default().char_indices();
            let mut closed = false;
            while let Some((k, c)) = chars.next() {
                match c {
                    '"' => {
                        j += k + 1;
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => text.push('\n'),
                        Some((_, 't')) => text.push('\t'),
                        Some((_, '\\')) => text.push('\\'),
                        Some((_, '"')) => text.push('"'),
                        Some((_, '\'')) => text.push('\''),
                        Some((_, '0')) => text.push('\0'),
                        Some((_, '\n')) => {
                            // A continuation: skip the next line's indentation.
                            while let Some((_, ' ' | '\t')) = chars.clone().next() {
                                chars.next();
                            }
                        }
                        Some((_, other)) => {
                            text.push('\\');
                            text.push(other);
                        }
                        None => break,
                    },
                    other => text.push(other),
                }
            }
            if closed {
                found.push(text);
                i = j;
                continue;
            }
            break;
        }
        i += 1;
    }
    found
}
