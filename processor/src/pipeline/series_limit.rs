//! The per-task cardinality limit (`[pipeline] max-series-per-task`): how many series a task's
//! from nodes may keep state for at once. A point of a new series beyond it is dropped where
//! its state would be created, counted, and reported at most once per [`REPORT_EVERY_NS`] with
//! an example series; a series freed by silence (`state-expiry`) makes room again. Pure: time
//! is passed in, the caller logs the [`Report`].

/// How often dropped series are reported (logged) at most: 10 s of processor time.
pub const REPORT_EVERY_NS: i64 = 10_000_000_000;

/// The series budget of one task.
#[derive(Debug, Clone, Default)]
pub struct SeriesLimit {
    /// Series allowed at once; 0 = no limit.
    max: usize,
    /// Series the task's from nodes keep state for.
    live: usize,
    /// Points dropped for the limit since the last report.
    pending: u64,
    /// One series dropped since the last report (`measurement,tag=value,...`).
    example: Option<String>,
    /// When the last report was made.
    last_report: Option<i64>,
}

/// What to log about the series dropped since the last report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub limit: usize,
    pub live: usize,
    /// Points dropped since the last report.
    pub dropped_points: u64,
    pub example: String,
}

impl SeriesLimit {
    /// A budget of `max` series (0 = no limit).
    pub fn new(max: usize) -> SeriesLimit {
        SeriesLimit {
            max,
            ..SeriesLimit::default()
        }
    }

    /// Series kept now.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Takes a place for a new series; false when the task is at its limit.
    pub fn admit(&mut self) -> bool {
        if self.max != 0 && self.live >= self.max {
            return false;
        }
        self.live += 1;
        true
    }

    /// Counts a point of a new series that was not admitted; `key` names the series (called
    /// only when no example is held yet, so a flood of refusals formats one key per report).
    pub fn refused(&mut self, key: impl FnOnce() -> String) {
        self.pending += 1;
        if self.example.is_none() {
            self.example = Some(key());
        }
    }

    /// Gives back the places of `count` freed series.
    pub fn freed(&mut self, count: usize) {
        self.live = self.live.saturating_sub(count);
    }

    /// The report due at `now`: something was dropped and the last report is at least
    /// [`REPORT_EVERY_NS`] old (or there was none).
    pub fn report(&mut self, now: i64) -> Option<Report> {
        if self.pending == 0
            || self
                .last_report
                .is_some_and(|last| now.saturating_sub(last) < REPORT_EVERY_NS)
        {
            return None;
        }
        self.last_report = Some(now);
        Some(Report {
            limit: self.max,
            live: self.live,
            dropped_points: std::mem::take(&mut self.pending),
            example: self.example.take().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_beyond_the_limit_are_refused_until_one_is_freed() {
        let mut limit = SeriesLimit::new(2);
        assert!(limit.admit() && limit.admit());
        assert!(!limit.admit());
        limit.freed(1);
        assert!(limit.admit());
        assert_eq!(limit.live(), 2);
    }

    #[test]
    fn zero_means_no_limit() {
        let mut limit = SeriesLimit::new(0);
        assert!((0..10_000).all(|_| limit.admit()));
    }

    #[test]
    fn refusals_are_reported_at_most_once_per_interval_with_the_first_example() {
        let mut limit = SeriesLimit::new(1);
        assert!(limit.admit());
        assert_eq!(limit.report(0), None, "nothing dropped, nothing to report");
        limit.refused(|| "m,host=a".to_owned());
        limit.refused(|| "m,host=b".to_owned());
        let report = limit.report(5).expect("a report");
        assert_eq!(
            (report.dropped_points, report.example.as_str(), report.limit),
            (2, "m,host=a", 1)
        );
        limit.refused(|| "m,host=c".to_owned());
        assert_eq!(limit.report(5 + REPORT_EVERY_NS - 1), None, "too soon");
        let report = limit.report(5 + REPORT_EVERY_NS).expect("due");
        assert_eq!(
            (report.dropped_points, report.example.as_str()),
            (1, "m,host=c")
        );
    }
}
