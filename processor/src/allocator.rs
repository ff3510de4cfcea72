//! The `processor` binary's memory allocator, jemalloc, tuned to give memory back: its
//! background threads purge freed pages [`DIRTY_DECAY_MS`] after they were freed, even when
//! nothing allocates (a processor whose series went silent). Without them jemalloc purges only
//! as a side effect of allocating, and a quiet processor kept the peak of a burst of series;
//! mimalloc, used before, kept 28–42 % of the growth after the soak's silence, glibc's malloc
//! 89 % (README, "Scale and soak").
//!
//! `_RJEM_MALLOC_CONF` (jemalloc's `MALLOC_CONF`, read at start) overrides the tuning: when it
//! is set the processor changes nothing and says so. `processor serve` calls [`configure`];
//! before that (and in tests, whose allocator is the system's) [`stats`] is `None`, so
//! `/metrics` never reports the figures of an allocator that is not in use.

use std::sync::atomic::{AtomicBool, Ordering};

use tikv_jemalloc_ctl::{Access, AsName};

/// How long freed (dirty) pages are kept for reuse before they are returned to the system.
/// jemalloc's default is 10 s; at 1 s the soak's steady RSS sat closer to what was allocated
/// for the same CPU (README, "Scale and soak").
pub const DIRTY_DECAY_MS: isize = 1000;

/// The environment variable jemalloc reads its options from (this build's prefix is `_rjem_`).
pub const CONF_VARIABLE: &str = "_RJEM_MALLOC_CONF";

static IN_USE: AtomicBool = AtomicBool::new(false);

/// What [`configure`] did, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tuning {
    /// Background purging on, dirty pages kept [`DIRTY_DECAY_MS`].
    Tuned,
    /// `_RJEM_MALLOC_CONF` was set: left to it.
    FromEnvironment(String),
    /// jemalloc refused a setting (the processor runs with its defaults).
    Failed(String),
}

/// Marks jemalloc as the global allocator and tunes it (see the module documentation); call
/// once, first thing in `main`, from a binary whose `#[global_allocator]` is jemalloc.
/// `conf` is the value of [`CONF_VARIABLE`], if set.
pub fn configure(conf: Option<String>) -> Tuning {
    IN_USE.store(true, Ordering::Relaxed);
    if let Some(conf) = conf {
        return Tuning::FromEnvironment(conf);
    }
    match tune() {
        Ok(()) => Tuning::Tuned,
        Err(error) => Tuning::Failed(error.to_string()),
    }
}

fn tune() -> tikv_jemalloc_ctl::Result<()> {
    // The default for arenas made from now on (one per thread, up to 4 per CPU), then the
    // arenas that exist already (those not yet made fail; they take the default).
    b"arenas.dirty_decay_ms\0".name().write(DIRTY_DECAY_MS)?;
    let arenas = tikv_jemalloc_ctl::arenas::narenas::read()?;
    for arena in 0..arenas {
        let _ = format!("arena.{arena}.dirty_decay_ms\0")
            .as_str()
            .name()
            .write(DIRTY_DECAY_MS);
    }
    tikv_jemalloc_ctl::background_thread::write(true)?;
    Ok(())
}

/// The allocator's figures, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Held by the program.
    pub allocated: usize,
    /// In pages the allocator uses (allocated plus what is free inside them).
    pub active: usize,
    /// Physically resident in the allocator's mappings (including free pages not yet purged,
    /// and its own metadata).
    pub resident: usize,
    /// The allocator's own metadata.
    pub metadata: usize,
    /// Mapped address space already returned to the system (virtual only).
    pub retained: usize,
}

/// The allocator's figures now; `None` unless [`configure`] was called (jemalloc is not the
/// process's allocator) or jemalloc cannot report them.
pub fn stats() -> Option<Stats> {
    if !IN_USE.load(Ordering::Relaxed) {
        return None;
    }
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    Some(Stats {
        allocated: tikv_jemalloc_ctl::stats::allocated::read().ok()?,
        active: tikv_jemalloc_ctl::stats::active::read().ok()?,
        resident: tikv_jemalloc_ctl::stats::resident::read().ok()?,
        metadata: tikv_jemalloc_ctl::stats::metadata::read().ok()?,
        retained: tikv_jemalloc_ctl::stats::retained::read().ok()?,
    })
}

/// The figures in Prometheus text (gauges `processor_allocator_*_bytes`).
pub fn render(stats: &Stats, out: &mut String) {
    use std::fmt::Write;
    let families = [
        (
            "allocated",
            "Bytes the processor holds, as its allocator (jemalloc) counts them.",
            stats.allocated,
        ),
        (
            "active",
            "Bytes in the allocator's pages in use (held plus free space inside them).",
            stats.active,
        ),
        (
            "resident",
            "Bytes of the allocator's mappings in physical memory (including freed pages not yet returned).",
            stats.resident,
        ),
        (
            "metadata",
            "Bytes of the allocator's own metadata.",
            stats.metadata,
        ),
        (
            "retained",
            "Bytes of address space the allocator returned to the system and keeps mapped (not resident).",
            stats.retained,
        ),
    ];
    for (name, help, value) in families {
        let name = format!("processor_allocator_{name}_bytes");
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_writes_each_gauge_once() {
        let stats = Stats {
            allocated: 1,
            active: 2,
            resident: 3,
            metadata: 4,
            retained: 5,
        };
        let mut out = String::new();
        render(&stats, &mut out);
        for (name, value) in [
            ("allocated", 1),
            ("active", 2),
            ("resident", 3),
            ("metadata", 4),
            ("retained", 5),
        ] {
            let line = format!("processor_allocator_{name}_bytes {value}\n");
            assert_eq!(out.matches(&line).count(), 1, "{out}");
            assert!(out.contains(&format!("# TYPE processor_allocator_{name}_bytes gauge")));
        }
    }
}
