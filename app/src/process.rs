//! The standard `process_*` metrics, read from `/proc` at scrape time, as Prometheus client
//! libraries export them (the tutorial's app showed them).
//!
//! These are a collector rather than facade instruments because `process_cpu_seconds_total` is a
//! fractional counter, which the `metrics` facade's integer counters cannot carry. Parsing is
//! pure; [`ProcessStats::read`] is the only IO.

use std::fmt::Write as _;

/// A snapshot of this process's resource use.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    /// Resident set size, in bytes.
    pub resident_memory_bytes: f64,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: f64,
    /// Start time of the process since the Unix epoch, in seconds.
    pub start_time_seconds: f64,
    /// User plus system CPU time, in seconds.
    pub cpu_seconds_total: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<f64>,
}

/// What `/proc/self/auxv` says about the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelUnits {
    /// Bytes per memory page (`AT_PAGESZ`).
    pub page_size: u64,
    /// Clock ticks per second (`AT_CLKTCK`).
    pub clock_ticks_per_second: u64,
}

impl Default for KernelUnits {
    /// The values of every mainstream Linux platform, used if auxv cannot be read.
    fn default() -> Self {
        Self {
            page_size: 4096,
            clock_ticks_per_second: 100,
        }
    }
}

const AT_PAGESZ: u64 = 6;
const AT_CLKTCK: u64 = 17;

impl KernelUnits {
    /// Reads the units from an auxiliary vector (`/proc/self/auxv`: native-endian `u64` pairs).
    pub fn from_auxv(auxv: &[u8]) -> Self {
        let mut units = Self::default();
        let mut words = auxv.chunks_exact(8).filter_map(|word| {
            let bytes: [u8; 8] = word.try_into().ok()?;
            Some(u64::from_ne_bytes(bytes))
        });
        while let (Some(key), Some(value)) = (words.next(), words.next()) {
            match key {
                AT_PAGESZ if value > 0 => units.page_size = value,
                AT_CLKTCK if value > 0 => units.clock_ticks_per_second = value,
                _ => {}
            }
        }
        units
    }
}

/// Fields of `/proc/self/stat` that the metrics need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatFields {
    /// `utime + stime`, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks.
    pub start_ticks: u64,
    /// Virtual memory size, in bytes.
    pub vsize_bytes: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and parentheses, so
/// fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<StatFields> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 (state) on; field N is at index N - 3.
    let fields: Vec<&str> = after_name.split_ascii_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(StatFields {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        start_ticks: field(22)?,
        vsize_bytes: field(23)?,
        rss_pages: field(24)?,
    })
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
pub fn parse_boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

/// The soft "Max open files" limit from `/proc/self/limits` (`None` when unlimited).
pub fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?;
    soft.parse::<u64>().ok().map(|n| n as f64)
}

impl ProcessStats {
    /// Combines the parsed pieces into the exported values.
    pub fn from_parts(
        stat: StatFields,
        boot_time_seconds: u64,
        units: KernelUnits,
        open_fds: usize,
        max_fds: Option<f64>,
    ) -> Self {
        let ticks = units.clock_ticks_per_second as f64;
        Self {
            resident_memory_bytes: (stat.rss_pages as f64) * (units.page_size as f64),
            virtual_memory_bytes: stat.vsize_bytes as f64,
            start_time_seconds: boot_time_seconds as f64 + stat.start_ticks as f64 / ticks,
            cpu_seconds_total: stat.cpu_ticks as f64 / ticks,
            open_fds: open_fds as f64,
            max_fds,
        }
    }

    /// Reads this process's figures from `/proc`; `None` off Linux or if `/proc` is unreadable.
    pub fn read() -> Option<Self> {
        let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let units = std::fs::read("/proc/self/auxv")
            .map(|auxv| KernelUnits::from_auxv(&auxv))
            .unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| parse_max_fds(&limits));
        Some(Self::from_parts(stat, boot, units, open_fds, max_fds))
    }

    /// Appends the families in Prometheus text format 0.0.4.
    pub fn render(&self, out: &mut String) {
        let mut family = |name: &str, kind: &str, help: &str, value: f64| {
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        family(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            self.virtual_memory_bytes,
        );
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            self.resident_memory_bytes,
        );
        family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds,
        );
        family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            self.cpu_seconds_total,
        );
        family(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            self.open_fds,
        );
        if let Some(max_fds) = self.max_fds {
            family(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max_fds,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
        25 5 0 0 20 0 3 0 1500 181784576 4743 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let fields = parse_stat(STAT).unwrap();
        assert_eq!(
            fields,
            StatFields {
                cpu_ticks: 30,
                start_ticks: 1500,
                vsize_bytes: 181_784_576,
                rss_pages: 4743,
            }
        );
    }

    #[test]
    fn truncated_stat_is_rejected_not_misread() {
        assert_eq!(parse_stat("4242 (app) S 1 2 3"), None);
        assert_eq!(parse_stat("no parenthesis at all"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn exported_values_use_the_kernel_units() {
        let units = KernelUnits {
            page_size: 4096,
            clock_ticks_per_second: 100,
        };
        let stats = ProcessStats::from_parts(
            parse_stat(STAT).unwrap(),
            1_484_687_734,
            units,
            8,
            Some(1024.0),
        );
        assert_eq!(stats.resident_memory_bytes, 4743.0 * 4096.0);
        assert_eq!(stats.cpu_seconds_total, 0.3);
        assert_eq!(stats.start_time_seconds, 1_484_687_749.0);
        assert_eq!(stats.open_fds, 8.0);
    }

    #[test]
    fn auxv_page_size_and_clock_ticks_are_read() {
        let mut auxv = Vec::new();
        for (key, value) in [(3u64, 77u64), (AT_PAGESZ, 16384), (AT_CLKTCK, 250), (0, 0)] {
            auxv.extend_from_slice(&key.to_ne_bytes());
            auxv.extend_from_slice(&value.to_ne_bytes());
        }
        assert_eq!(
            KernelUnits::from_auxv(&auxv),
            KernelUnits {
                page_size: 16384,
                clock_ticks_per_second: 250
            }
        );
        assert_eq!(KernelUnits::from_auxv(&[1, 2, 3]), KernelUnits::default());
    }

    #[test]
    fn boot_time_and_fd_limit_are_found() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 1048576              files\n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
        assert_eq!(
            parse_max_fds(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[test]
    fn this_process_can_be_read() {
        let stats = ProcessStats::read().expect("/proc is readable on Linux");
        assert!(stats.resident_memory_bytes > 0.0);
        assert!(stats.open_fds >= 3.0);
        let mut text = String::new();
        stats.render(&mut text);
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    }
}
