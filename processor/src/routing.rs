//! Routing written points to the tasks that asked for them, by (database, retention policy,
//! measurement), as Kapacitor's task master forks them (compat.md 2.1).
//!
//! A task registers a [`Subscriber`] for each key it reads; a key with no measurement takes every
//! measurement of its database and retention policy (a `from()` without `.measurement()`). Each
//! write request becomes one `Arc<Batch>`; every subscriber that matches any of its points gets
//! one [`Delivery`]: the shared batch and the indices of its points, so the body is never copied
//! per task. A subscriber registered under several matching keys gets each point once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::point::{Batch, PointRef};

/// Receives the points of the keys it subscribed to.
pub trait Subscriber: Send + Sync {
    /// Called from the write handler, once per request with matching points, in request order.
    /// It must not block: a task queues the delivery and processes it on its own.
    fn deliver(&self, delivery: Delivery);
}

/// Points of one write request for one subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    batch: Arc<Batch>,
    indices: Vec<usize>,
}

impl Delivery {
    /// The request's batch (database, retention policy, all of its points).
    pub fn batch(&self) -> &Arc<Batch> {
        &self.batch
    }

    /// The points for this subscriber, in request order.
    pub fn points(&self) -> impl Iterator<Item = PointRef<'_>> {
        self.indices
            .iter()
            .filter_map(|&index| self.batch.point(index))
    }

    /// How many points are for this subscriber.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when no point is for this subscriber (never the case for a delivered one).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// What a subscriber reads: one database and retention policy, one measurement or all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub db: String,
    pub rp: String,
    /// `None`: every measurement.
    pub measurement: Option<String>,
}

/// Identifies one registration, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

/// The subscription table; cheap to read on every write (a snapshot behind an `Arc`).
#[derive(Default)]
pub struct Router {
    table: RwLock<Arc<Table>>,
}

#[derive(Default, Clone)]
struct Table {
    next_id: u64,
    /// Registrations, in subscription order.
    slots: Vec<Slot>,
    /// Distinct subscribers (a task registered under several keys is here once); routes hold
    /// indices into this.
    receivers: Vec<Arc<dyn Subscriber>>,
    /// db -> rp -> routes.
    routes: HashMap<String, HashMap<String, Routes>>,
}

#[derive(Clone)]
struct Slot {
    id: SubscriptionId,
    key: Key,
    subscriber: Arc<dyn Subscriber>,
}

#[derive(Default, Clone)]
struct Routes {
    by_measurement: HashMap<String, Vec<usize>>,
    every_measurement: Vec<usize>,
}

/// Counts from routing one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Routed {
    /// Points that matched at least one subscriber.
    pub points: usize,
    /// Deliveries made (one per matching subscriber).
    pub deliveries: usize,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `key`'s points to `subscriber` from the next write on.
    pub fn subscribe(&self, key: Key, subscriber: Arc<dyn Subscriber>) -> SubscriptionId {
        self.update(|table| {
            let id = SubscriptionId(table.next_id);
            table.next_id += 1;
            table.slots.push(Slot {
                id,
                key,
                subscriber,
            });
            id
        })
    }

    /// Stops a registration; unknown ids are ignored. Returns whether it existed.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.update(|table| {
            let before = table.slots.len();
            table.slots.retain(|slot| slot.id != id);
            before != table.slots.len()
        })
    }

    /// Delivers the batch's points to their subscribers.
    pub fn route(&self, batch: &Arc<Batch>) -> Routed {
        let table = Arc::clone(&self.read());
        let Some(routes) = table
            .routes
            .get(batch.db())
            .and_then(|by_rp| by_rp.get(batch.rp()))
        else {
            return Routed::default();
        };
        let mut per_receiver: Vec<Vec<usize>> = vec![Vec::new(); table.receivers.len()];
        let mut routed = Routed::default();
        let mut last_measurement: Option<&str> = None;
        let mut matching: &[usize] = &[];
        for (index, point) in batch.points().enumerate() {
            let measurement = point.measurement();
            if last_measurement != Some(measurement) {
                matching = routes
                    .by_measurement
                    .get(measurement)
                    .map_or(&[], Vec::as_slice);
                last_measurement = Some(measurement);
            }
            let mut matched = false;
            for &receiver in matching.iter().chain(&routes.every_measurement) {
                if let Some(indices) = per_receiver.get_mut(receiver)
                    && indices.last() != Some(&index)
                {
                    indices.push(index);
                    matched = true;
                }
            }
            routed.points += usize::from(matched);
        }
        for (receiver, indices) in table.receivers.iter().zip(per_receiver) {
            if !indices.is_empty() {
                routed.deliveries += 1;
                receiver.deliver(Delivery {
                    batch: Arc::clone(batch),
                    indices,
                });
            }
        }
        routed
    }

    fn read(&self) -> Arc<Table> {
        let guard = self
            .table
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        Arc::clone(&guard)
    }

    fn update<T>(&self, change: impl FnOnce(&mut Table) -> T) -> T {
        let mut guard = self
            .table
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut table = Table::clone(&guard);
        let result = change(&mut table);
        table.rebuild_routes();
        *guard = Arc::new(table);
        result
    }
}

impl Table {
    /// Rebuilds the routes from the slots: linear in the slots (a define at 6,000 tasks must
    /// not scan every receiver for every slot).
    fn rebuild_routes(&mut self) {
        self.routes.clear();
        self.receivers.clear();
        // Receivers by the address of their subscriber, and the (key, receiver) pairs routed.
        let mut indices: HashMap<*const (), usize> = HashMap::with_capacity(self.slots.len());
        let mut routed: HashSet<(&Key, usize)> = HashSet::with_capacity(self.slots.len());
        for slot in &self.slots {
            let address = Arc::as_ptr(&slot.subscriber).cast::<()>();
            let receiver = *indices.entry(address).or_insert_with(|| {
                self.receivers.push(Arc::clone(&slot.subscriber));
                self.receivers.len() - 1
            });
            if !routed.insert((&slot.key, receiver)) {
                continue;
            }
            let routes = self
                .routes
                .entry(slot.key.db.clone())
                .or_default()
                .entry(slot.key.rp.clone())
                .or_default();
            let list = match &slot.key.measurement {
                Some(measurement) => routes
                    .by_measurement
                    .entry(measurement.clone())
                    .or_default(),
                None => &mut routes.every_measurement,
            };
            list.push(receiver);
        }
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = self.read();
        f.debug_struct("Router")
            .field(
                "keys",
                &table.slots.iter().map(|slot| &slot.key).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::{Precision, parse_body};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<(String, String, String, i64)>>,
        deliveries: Mutex<usize>,
    }

    impl Subscriber for Recorder {
        fn deliver(&self, delivery: Delivery) {
            *self.deliveries.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            for point in delivery.points() {
                seen.push((
                    point.db().to_owned(),
                    point.rp().to_owned(),
                    point.measurement().to_owned(),
                    point.time(),
                ));
            }
        }
    }

    impl Recorder {
        fn measurements(&self) -> Vec<String> {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.iter().map(|(_, _, m, _)| m.clone()).collect()
        }
    }

    fn batch(db: &str, rp: &str, body: &str) -> Arc<Batch> {
        let parsed = parse_body(
            body.as_bytes().to_vec(),
            db.to_owned(),
            rp.to_owned(),
            Precision::Nanoseconds,
            0,
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        Arc::new(parsed.batch)
    }

    fn key(db: &str, rp: &str, measurement: Option<&str>) -> Key {
        Key {
            db: db.to_owned(),
            rp: rp.to_owned(),
            measurement: measurement.map(str::to_owned),
        }
    }

    #[test]
    fn points_reach_only_subscribers_of_their_db_rp_and_measurement() {
        let router = Router::new();
        let cpu = Arc::new(Recorder::default());
        let mem = Arc::new(Recorder::default());
        let other_rp = Arc::new(Recorder::default());
        router.subscribe(key("db", "autogen", Some("cpu")), cpu.clone());
        router.subscribe(key("db", "autogen", Some("mem")), mem.clone());
        router.subscribe(key("db", "raw", Some("cpu")), other_rp.clone());
        let routed = router.route(&batch(
            "db",
            "autogen",
            "cpu v=1 1\nmem v=2 2\ncpu v=3 3\ndisk v=4 4\n",
        ));
        assert_eq!(cpu.measurements(), ["cpu", "cpu"]);
        assert_eq!(mem.measurements(), ["mem"]);
        assert!(other_rp.measurements().is_empty());
        assert_eq!(
            routed,
            Routed {
                points: 3,
                deliveries: 2
            }
        );
    }

    #[test]
    fn a_key_without_measurement_takes_every_measurement_once() {
        let router = Router::new();
        let all = Arc::new(Recorder::default());
        router.subscribe(key("db", "autogen", None), all.clone());
        router.subscribe(key("db", "autogen", Some("cpu")), all.clone());
        router.route(&batch("db", "autogen", "cpu v=1 1\nmem v=2 2\n"));
        assert_eq!(all.measurements(), ["cpu", "mem"]);
        assert_eq!(*all.deliveries.lock().unwrap_or_else(|p| p.into_inner()), 1);
    }

    #[test]
    fn unsubscribed_tasks_get_nothing() {
        let router = Router::new();
        let cpu = Arc::new(Recorder::default());
        let id = router.subscribe(key("db", "autogen", Some("cpu")), cpu.clone());
        assert!(router.unsubscribe(id));
        assert!(!router.unsubscribe(id));
        assert_eq!(
            router.route(&batch("db", "autogen", "cpu v=1 1\n")),
            Routed::default()
        );
        assert!(cpu.measurements().is_empty());
    }

    #[test]
    fn deliveries_share_the_batch_instead_of_copying_it() {
        struct Keep(Mutex<Vec<Delivery>>);
        impl Subscriber for Keep {
            fn deliver(&self, delivery: Delivery) {
                self.0
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(delivery);
            }
        }
        let router = Router::new();
        let first = Arc::new(Keep(Mutex::new(Vec::new())));
        let second = Arc::new(Keep(Mutex::new(Vec::new())));
        router.subscribe(key("db", "autogen", Some("cpu")), first.clone());
        router.subscribe(key("db", "autogen", None), second.clone());
        let shared = batch("db", "autogen", "cpu v=1 1\n");
        router.route(&shared);
        let a = first.0.lock().unwrap_or_else(|p| p.into_inner());
        let b = second.0.lock().unwrap_or_else(|p| p.into_inner());
        assert!(Arc::ptr_eq(a[0].batch(), &shared) && Arc::ptr_eq(b[0].batch(), &shared));
    }
}
