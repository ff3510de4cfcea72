//! Which scaler calls a task may start: at most one in flight per (k8sAutoscale node, target),
//! so a slow or failing Kubernetes API never stalls the task's pipeline. While a call is in
//! flight only the newest intent for the same key waits; an older waiting one is superseded
//! (it would be decided on data the newer one replaces). Pure: the task loop does the calls.

use std::collections::{HashMap, HashSet};

use crate::scaler::Target;

/// A k8sAutoscale node (its index) and the target it scales.
pub type Key = (usize, Target);

/// The calls of one task.
#[derive(Debug)]
pub struct ScaleCalls<T> {
    busy: HashSet<Key>,
    waiting: HashMap<Key, T>,
    /// Waiting calls replaced by a newer one, never made.
    pub superseded: u64,
}

impl<T> Default for ScaleCalls<T> {
    fn default() -> Self {
        ScaleCalls {
            busy: HashSet::new(),
            waiting: HashMap::new(),
            superseded: 0,
        }
    }
}

impl<T> ScaleCalls<T> {
    /// A new call for `key`: returned when it may start now, else kept as the key's next call.
    pub fn offer(&mut self, key: Key, call: T) -> Option<T> {
        if self.busy.contains(&key) {
            if self.waiting.insert(key, call).is_some() {
                self.superseded += 1;
            }
            return None;
        }
        self.busy.insert(key);
        Some(call)
    }

    /// The call for `key` finished: the waiting one, if any, to start now (the key stays busy).
    pub fn finished(&mut self, key: &Key) -> Option<T> {
        match self.waiting.remove(key) {
            Some(next) => Some(next),
            None => {
                self.busy.remove(key);
                None
            }
        }
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.busy.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaler::Kind;

    fn key(node: usize, name: &str) -> Key {
        (
            node,
            Target {
                cluster: String::new(),
                namespace: String::new(),
                kind: Kind::Deployments,
                name: name.to_owned(),
            },
        )
    }

    #[test]
    fn one_call_per_target_runs_and_only_the_newest_waits() {
        let mut calls = ScaleCalls::default();
        assert_eq!(calls.offer(key(6, "app"), 1), Some(1));
        assert_eq!(
            calls.offer(key(6, "other"), 2),
            Some(2),
            "another target runs too"
        );
        assert_eq!(calls.offer(key(6, "app"), 3), None);
        assert_eq!(calls.offer(key(6, "app"), 4), None);
        assert_eq!(calls.superseded, 1);
        assert_eq!(calls.in_flight(), 2);
        assert_eq!(calls.finished(&key(6, "app")), Some(4));
        assert_eq!(calls.finished(&key(6, "app")), None);
        assert_eq!(calls.offer(key(6, "app"), 5), Some(5), "free again");
        assert_eq!(calls.finished(&key(6, "other")), None);
        assert_eq!(calls.in_flight(), 1);
    }
}
