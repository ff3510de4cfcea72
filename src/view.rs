//! The live view: one line per second. Columns: `t` seconds since start; `offered` requests
//! sent in that second; `measured` the processor's total across pods (the sum node); `smoothed`
//! its moving average (what k8sAutoscale sees); `desired` the Deployment's replicas (what the
//! processor set); `running` replicas up; `p99(ms)` the 99th percentile latency in ms to the
//! hundredth (loopback answers take a fraction of a millisecond).

use std::io::Write;

use crate::score::Second;

/// Writes the view as plain lines (no terminal control codes), so it reads the same on a
/// terminal, in a pipe and in CI logs.
pub struct Live;

impl Live {
    pub fn header(&self, out: &mut impl Write) {
        let _ = writeln!(
            out,
            "{:>5} {:>8} {:>9} {:>9} {:>8} {:>8} {:>9}",
            "t", "offered", "measured", "smoothed", "desired", "running", "p99(ms)"
        );
    }

    pub fn line(&self, out: &mut impl Write, s: &Second) {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        let _ = writeln!(
            out,
            "{:>5} {:>8.0} {:>9} {:>9} {:>8} {:>8} {:>9}",
            s.t,
            s.offered_rps,
            opt(s.measured_rps),
            opt(s.smoothed_rps),
            s.desired,
            s.actual,
            s.p99_ms
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
        );
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_every_column() {
        let mut out = Vec::new();
        let live = Live;
        live.header(&mut out);
        live.line(
            &mut out,
            &Second {
                t: 12,
                offered_rps: 300.0,
                measured_rps: Some(298.4),
                smoothed_rps: None,
                desired: 3,
                actual: 2,
                p99_ms: Some(0.2345),
            },
        );
        let text = String::from_utf8(out).unwrap();
        let line = text.lines().nth(1).unwrap();
        let columns: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(columns, ["12", "300", "298", "-", "3", "2", "0.23"]);
    }
}
