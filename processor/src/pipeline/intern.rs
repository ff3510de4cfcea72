//! Shared strings and groups for the per-series state of a node: a thousand series of one
//! Deployment share one `deployment` tag key, one value and one group, not a thousand copies.
//! Entries nobody else holds any more are dropped by [`Strings::sweep`] / [`Groups::sweep`]
//! (called when the node frees expired series), and the tables shrink once mostly empty, so
//! a burst of series leaves no table behind.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use super::point::{Group, Prehashed};

/// Shared values: each distinct value once, handed out as clones of one `Arc`.
#[derive(Debug)]
pub struct Interned<T: ?Sized>(HashSet<Arc<T>, Prehashed>);

/// Interned strings (tag keys and values, measurements, field names).
pub type Strings = Interned<str>;

/// Interned groups: every series of one group shares one `Arc<Group>`.
pub type Groups = Interned<Group>;

impl<T: ?Sized> Default for Interned<T> {
    fn default() -> Self {
        Interned(HashSet::default())
    }
}

impl<T: ?Sized + Eq + Hash> Interned<T> {
    /// The shared copy of `value` (a `&str` for strings, a [`Group`] for groups).
    pub fn get<Q>(&mut self, value: Q) -> Arc<T>
    where
        Q: Borrow<T>,
        Arc<T>: From<Q>,
    {
        if let Some(found) = self.0.get(value.borrow()) {
            return Arc::clone(found);
        }
        let new = Arc::from(value);
        self.0.insert(Arc::clone(&new));
        new
    }

    /// Drops the values only this table holds.
    pub fn sweep(&mut self) {
        self.0.retain(|v| Arc::strong_count(v) > 1);
        shrink_set(&mut self.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How often a node sweeps its interned strings and groups: what it drops was let go of by
/// its last holder (often a later node, which frees its state after this one) up to this long
/// before. Sweeping walks the table, so it is not done on every tick.
pub const SWEEP_EVERY_NS: i64 = 10_000_000_000;

/// Whether a table of `capacity` holding `len` entries should give memory back: it is large
/// and under a quarter full (hysteresis, so a table that breathes is not rebuilt each tick).
pub fn sparse(len: usize, capacity: usize) -> bool {
    capacity > 64 && len.saturating_mul(4) < capacity
}

/// Shrinks a map that [`sparse`] says holds mostly nothing.
pub fn shrink_map<K: Eq + Hash, V, S: std::hash::BuildHasher>(
    map: &mut std::collections::HashMap<K, V, S>,
) {
    if sparse(map.len(), map.capacity()) {
        map.shrink_to(map.len().saturating_mul(2));
    }
}

/// Shrinks a set that [`sparse`] says holds mostly nothing.
pub fn shrink_set<K: Eq + Hash, S: std::hash::BuildHasher>(set: &mut HashSet<K, S>) {
    if sparse(set.len(), set.capacity()) {
        set.shrink_to(set.len().saturating_mul(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_shared_and_swept_when_unused() {
        let mut strings = Strings::default();
        let a = strings.get("deployment");
        let b = strings.get("deployment");
        assert!(Arc::ptr_eq(&a, &b));
        let c = strings.get("host");
        assert_eq!(strings.len(), 2);
        drop(c);
        strings.sweep();
        assert_eq!(strings.len(), 1, "only the unused string is dropped");
        drop((a, b));
        strings.sweep();
        assert!(strings.is_empty());
    }

    #[test]
    fn groups_are_shared_by_id() {
        let mut groups = Groups::default();
        let dims = || vec![(Arc::from("deployment"), Arc::from("a"))];
        let a = groups.get(Group::new(None, dims()));
        let b = groups.get(Group::new(None, dims()));
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        groups.sweep();
        assert!(groups.is_empty());
    }

    #[test]
    fn tables_shrink_once_mostly_empty() {
        let mut strings = Strings::default();
        let held: Vec<Arc<str>> = (0..10_000)
            .map(|i| strings.get(i.to_string().as_str()))
            .collect();
        let full = strings.0.capacity();
        drop(held);
        let kept = strings.get("kept");
        strings.sweep();
        assert_eq!(strings.len(), 1);
        assert!(
            strings.0.capacity() < full / 100,
            "{} of {full}",
            strings.0.capacity()
        );
        drop(kept);
        assert!(!sparse(10, 64) && !sparse(25, 100) && sparse(24, 100));
    }
}
