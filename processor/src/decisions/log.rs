//! The decision records of one task: a bounded ring per target, newest last; records that
//! changed nothing coalesce into the newest equal one (its `repeated` counts them), records
//! of a change never do.

use std::collections::{BTreeMap, VecDeque};

use super::record::{Record, RecordTarget};

/// Records kept per target.
pub const DEFAULT_PER_TARGET: usize = 256;
/// Targets kept per task; past it, the target updated longest ago is forgotten.
pub const MAX_TARGETS: usize = 1024;

/// See the module docs.
#[derive(Debug)]
pub struct DecisionLog {
    per_target: usize,
    /// By (node, target).
    rings: BTreeMap<(String, RecordTarget), VecDeque<Record>>,
}

impl Default for DecisionLog {
    fn default() -> Self {
        DecisionLog::new(DEFAULT_PER_TARGET)
    }
}

impl DecisionLog {
    /// A log keeping `per_target` records per target (at least 1).
    pub fn new(per_target: usize) -> DecisionLog {
        DecisionLog {
            per_target: per_target.max(1),
            rings: BTreeMap::new(),
        }
    }

    /// Adds `record`, coalescing it into the newest one of its target when both say the same
    /// and neither changed anything.
    pub fn push(&mut self, record: Record) {
        let key = (record.node.clone(), record.target.clone());
        if !self.rings.contains_key(&key) && self.rings.len() >= MAX_TARGETS {
            let oldest = self
                .rings
                .iter()
                .min_by_key(|(_, ring)| ring.back().map_or(i64::MIN, |r| r.time_ns))
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.rings.remove(&oldest);
            }
        }
        let ring = self.rings.entry(key).or_default();
        if let Some(newest) = ring.back_mut()
            && newest.same_as(&record)
        {
            let repeated = newest.repeated.saturating_add(record.repeated);
            *newest = record;
            newest.repeated = repeated;
            return;
        }
        if ring.len() >= self.per_target {
            ring.pop_front();
        }
        ring.push_back(record);
    }

    /// Up to `limit` records over every target, newest first.
    pub fn latest(&self, limit: usize) -> Vec<Record> {
        let mut all: Vec<&Record> = self.rings.values().flatten().collect();
        let newest_first = |r: &&Record| std::cmp::Reverse(r.time_ns);
        if limit == 0 {
            return Vec::new();
        }
        if limit < all.len() {
            // Only the newest `limit` need sorting (a task may keep many thousand records).
            all.select_nth_unstable_by_key(limit - 1, newest_first);
            all.truncate(limit);
        }
        all.sort_by_key(newest_first);
        all.into_iter().cloned().collect()
    }

    /// How many records are kept (all targets).
    pub fn len(&self) -> usize {
        self.rings.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decisions::Outcome;

    fn record(name: &str, time_ns: i64, outcome: Outcome, desired: i64) -> Record {
        Record::fixture(name, time_ns, outcome, 3, desired)
    }

    #[test]
    fn unchanged_records_coalesce_and_changes_never_do() {
        let mut log = DecisionLog::new(10);
        for t in 0..5 {
            log.push(record("app", t, Outcome::Unchanged, 3));
        }
        assert_eq!(log.len(), 1);
        let newest = &log.latest(10)[0];
        assert_eq!((newest.time_ns, newest.repeated), (4, 5));
        log.push(record("app", 5, Outcome::Increased, 4));
        log.push(record("app", 6, Outcome::Increased, 4));
        assert_eq!(log.len(), 3, "two changes, kept apart");
        log.push(record("app", 7, Outcome::Unchanged, 3));
        assert_eq!(log.len(), 4, "an unchanged after a change is a new record");
    }

    #[test]
    fn each_ring_is_bounded_and_the_newest_come_first() {
        let mut log = DecisionLog::new(4);
        for t in 0..100 {
            log.push(record("a", 2 * t, Outcome::Increased, t));
            log.push(record("b", 2 * t + 1, Outcome::Decreased, t));
        }
        assert_eq!(log.len(), 8);
        let times: Vec<i64> = log.latest(3).iter().map(|r| r.time_ns).collect();
        assert_eq!(times, vec![199, 198, 197]);
        let all: Vec<i64> = log.latest(100).iter().map(|r| r.time_ns).collect();
        assert_eq!(all, vec![199, 198, 197, 196, 195, 194, 193, 192]);
        assert!(log.latest(0).is_empty());
    }

    #[test]
    fn the_number_of_targets_is_bounded() {
        let mut log = DecisionLog::new(2);
        for t in 0..(MAX_TARGETS as i64 + 10) {
            log.push(record(&format!("app{t}"), t, Outcome::Unchanged, 1));
        }
        assert_eq!(log.rings.len(), MAX_TARGETS);
        assert!(
            log.latest(usize::MAX).iter().all(|r| r.time_ns >= 10),
            "the ten oldest targets went first"
        );
    }
}
