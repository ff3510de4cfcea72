//! The leader election as a pure state machine, with client-go's leaderelection semantics
//! (`tryAcquireOrRenew`): (the Lease record just read, this replica's monotonic now, the wall
//! clock for the record's times) -> what to write, and after each write's answer, whether this
//! replica leads.
//!
//! - Expiry is judged by the local time at which this replica last saw the record CHANGE, plus
//!   the record's `leaseDurationSeconds`: never by the holder's `renewTime`, so the clocks of
//!   the replicas need not agree.
//! - A replica acquires when the record has no holder, is held by itself, or has not changed
//!   for its lease duration; it creates the Lease when there is none (a 409 on create: someone
//!   else won: the caller then simply does not call [`Election::written`]). Every write carries the resourceVersion read, so of two replicas that both
//!   judged the Lease expired, one gets a 409 and stays a follower.
//! - A holder change increments `leaseTransitions`; a renew keeps `acquireTime`.
//! - A leader leads until `renew-deadline` after its last successful write
//!   ([`Election::leading_until`]): since `renew-deadline` < `lease-duration`, it stops before
//!   any other replica may judge the Lease expired.
//! - [`Election::release`] is client-go's ReleaseOnCancel: no holder, `leaseDurationSeconds`
//!   1, so the next replica takes over at its next attempt.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

/// What the election is configured with (`[ha]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// This replica's `holderIdentity`.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// The fields of a Lease's spec the election reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// `holderIdentity`; `None` (or empty) when nobody holds it.
    pub holder: Option<String>,
    /// `leaseDurationSeconds`.
    pub lease_duration_seconds: i32,
    /// `acquireTime` (MicroTime).
    pub acquire_time: Option<Timestamp>,
    /// `renewTime` (MicroTime).
    pub renew_time: Option<Timestamp>,
    /// `leaseTransitions`.
    pub transitions: i32,
}

impl Record {
    /// The holder, `None` when empty.
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }
}

/// What to do after reading the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// There is no Lease: create it with this record.
    Create(Record),
    /// Acquire or renew: replace the record with this one, with the resourceVersion read.
    Update(Record),
    /// Another replica holds an unexpired Lease: stay a follower.
    StandBy,
}

/// The election's state for one replica.
#[derive(Debug, Clone)]
pub struct Election {
    settings: Settings,
    /// The record as last read or written.
    observed: Option<Record>,
    /// When (local, monotonic) the observed record last changed.
    observed_at: Option<Instant>,
    /// When this replica's last write of the record (as holder) succeeded; `None` when it
    /// does not lead.
    renewed_at: Option<Instant>,
    /// Whether this process has written the record as holder: a record naming this identity
    /// that it never wrote is a previous life's (a StatefulSet pod restarted under the same
    /// name), held as anyone else's until it expires.
    wrote: bool,
}

/// Whole seconds of `duration`, at least 1 (`leaseDurationSeconds`).
fn whole_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX).max(1)
}

impl Election {
    pub fn new(settings: Settings) -> Election {
        Election {
            settings,
            observed: None,
            observed_at: None,
            renewed_at: None,
            wrote: false,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The record as last seen.
    pub fn observed(&self) -> Option<&Record> {
        self.observed.as_ref()
    }

    /// Whether the observed record's lease is still valid at `now`: it has a holder and
    /// changed less than its `leaseDurationSeconds` ago (local observation time).
    fn lease_valid(&self, now: Instant) -> bool {
        match (&self.observed, self.observed_at) {
            (Some(record), Some(at)) if record.holder().is_some() => {
                let seconds = u64::try_from(record.lease_duration_seconds.max(0)).unwrap_or(0);
                now < at + Duration::from_secs(seconds)
            }
            _ => false,
        }
    }

    /// Takes the record just read (`None`: there is no Lease) at local time `now` and wall
    /// time `wall`, and says what to write.
    pub fn observe(&mut self, read: Option<&Record>, now: Instant, wall: Timestamp) -> Action {
        let Some(read) = read else {
            self.observed = None;
            self.observed_at = None;
            self.renewed_at = None;
            return Action::Create(self.record_for(None, wall));
        };
        if self.observed.as_ref() != Some(read) {
            self.observed = Some(read.clone());
            self.observed_at = Some(now);
        }
        // Unlike client-go, whose identities are unique per process (host name + UUID), ours is
        // the pod name, which a restarted pod keeps: a record naming it that this process never
        // wrote is another life's. Taking it back at once would hand the lease to a replica
        // whose windows are cold while a warm follower waits; it is judged as anyone else's.
        let mine = self.wrote && read.holder() == Some(self.settings.identity.as_str());
        if !mine {
            // Someone else holds it (or nobody): this replica does not lead.
            self.renewed_at = None;
            if self.lease_valid(now) {
                return Action::StandBy;
            }
        }
        Action::Update(self.record_for(Some(read), wall))
    }

    /// The record this replica writes to acquire or renew, over `old`.
    fn record_for(&self, old: Option<&Record>, wall: Timestamp) -> Record {
        let identity = self.settings.identity.clone();
        let mine = old.and_then(Record::holder) == Some(identity.as_str());
        let (acquire_time, transitions) = match old {
            Some(old) if mine => (old.acquire_time.or(Some(wall)), old.transitions),
            // A new holder (also of a released Lease, as client-go counts it).
            Some(old) => (Some(wall), old.transitions.saturating_add(1)),
            None => (Some(wall), 0),
        };
        Record {
            holder: Some(identity),
            lease_duration_seconds: whole_seconds(self.settings.lease_duration),
            acquire_time,
            renew_time: Some(wall),
            transitions,
        }
    }

    /// The write of `record` (create or update) succeeded at `now`: this replica leads until
    /// `now + renew-deadline`.
    pub fn written(&mut self, record: Record, now: Instant) {
        self.wrote = true;
        self.observed = Some(record);
        self.observed_at = Some(now);
        self.renewed_at = Some(now);
    }

    /// Until when (local) this replica may write, `None` when it does not lead.
    pub fn leading_until(&self) -> Option<Instant> {
        self.renewed_at.map(|at| at + self.settings.renew_deadline)
    }

    /// Whether this replica leads at `now`: its last successful write is less than
    /// `renew-deadline` old.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.leading_until().is_some_and(|until| now < until)
    }

    /// Forgets leadership whose deadline has passed (the loop calls it after failures);
    /// answers whether leadership was lost now.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self.renewed_at.is_some() && !self.is_leader(now) {
            self.renewed_at = None;
            return true;
        }
        false
    }

    /// The record that releases the Lease (client-go's ReleaseOnCancel), when this replica
    /// leads at `now`: no holder, `leaseDurationSeconds` 1, `renewTime` now. The caller stops
    /// writing before it sends it.
    pub fn release(&mut self, now: Instant, wall: Timestamp) -> Option<Record> {
        if !self.is_leader(now) {
            return None;
        }
        self.renewed_at = None;
        let old = self.observed.clone().unwrap_or_default();
        Some(Record {
            holder: None,
            lease_duration_seconds: 1,
            acquire_time: Some(wall),
            renew_time: Some(wall),
            transitions: old.transitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(identity: &str) -> Settings {
        Settings {
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn wall(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn held_by(holder: &str, renewed: i64) -> Record {
        Record {
            holder: Some(holder.to_owned()),
            lease_duration_seconds: 15,
            acquire_time: Some(wall(0)),
            renew_time: Some(wall(renewed)),
            transitions: 3,
        }
    }

    /// A replica that wrote `record` (acquired the lease) at `at`.
    fn leading(identity: &str, record: &Record, at: Instant) -> Election {
        let mut election = Election::new(settings(identity));
        election.written(record.clone(), at);
        election
    }

    fn update(action: Action) -> Record {
        match action {
            Action::Update(record) => record,
            other => panic!("expected an update, got {other:?}"),
        }
    }

    #[test]
    fn an_absent_lease_is_created_with_this_replica_as_holder() {
        let mut election = Election::new(settings("a"));
        let start = Instant::now();
        let Action::Create(record) = election.observe(None, start, wall(0)) else {
            panic!("expected a create");
        };
        assert_eq!(record.holder.as_deref(), Some("a"));
        assert_eq!(record.lease_duration_seconds, 15);
        assert_eq!(record.transitions, 0);
        assert_eq!(record.acquire_time, Some(wall(0)));
        assert!(!election.is_leader(start), "not before the create succeeds");
        election.written(record, start);
        assert!(election.is_leader(start));
    }

    #[test]
    fn a_lease_held_by_another_is_expired_only_lease_duration_after_it_was_seen_to_change() {
        let mut election = Election::new(settings("b"));
        let start = Instant::now();
        let record = held_by("a", 0);
        assert_eq!(
            election.observe(Some(&record), start, wall(0)),
            Action::StandBy
        );
        // Unchanged for 14.9 s: still valid.
        let almost = start + Duration::from_millis(14_900);
        assert_eq!(
            election.observe(Some(&record), almost, wall(15)),
            Action::StandBy
        );
        // The holder renews at 14.9 s: the clock starts again.
        let renewed = held_by("a", 15);
        assert_eq!(
            election.observe(Some(&renewed), almost, wall(15)),
            Action::StandBy
        );
        let later = start + Duration::from_secs(20);
        assert_eq!(
            election.observe(Some(&renewed), later, wall(20)),
            Action::StandBy
        );
        // 15 s after the last change it may be taken over, with one more transition.
        let expired = almost + Duration::from_secs(15);
        let taken = update(election.observe(Some(&renewed), expired, wall(30)));
        assert_eq!(taken.holder.as_deref(), Some("b"));
        assert_eq!(taken.transitions, 4);
        assert_eq!(taken.acquire_time, Some(wall(30)));
        assert!(
            !election.is_leader(expired),
            "leads only once the update succeeds"
        );
    }

    #[test]
    fn the_holders_renew_time_plays_no_part_so_clock_skew_is_irrelevant() {
        let start = Instant::now();
        // The holder's clock is an hour behind: its renewTime looks long expired.
        let behind = held_by("a", -3600);
        let mut election = Election::new(settings("b"));
        assert_eq!(
            election.observe(Some(&behind), start, wall(0)),
            Action::StandBy
        );
        // An hour ahead: it looks renewed far in the future; still expires on local time.
        let ahead = held_by("a", 3600);
        let seen = start + Duration::from_secs(1);
        assert_eq!(
            election.observe(Some(&ahead), seen, wall(1)),
            Action::StandBy
        );
        assert_eq!(
            update(election.observe(Some(&ahead), seen + Duration::from_secs(15), wall(16)))
                .holder
                .as_deref(),
            Some("b")
        );
    }

    #[test]
    fn a_leader_renews_keeping_acquire_time_and_transitions() {
        let start = Instant::now();
        let mine = held_by("a", 0);
        let mut election = leading("a", &mine, start);
        let renew = update(election.observe(Some(&mine), start, wall(2)));
        assert_eq!(renew.acquire_time, Some(wall(0)));
        assert_eq!(renew.renew_time, Some(wall(2)));
        assert_eq!(renew.transitions, 3);
        election.written(renew, start);
        assert!(election.is_leader(start));
    }

    #[test]
    fn a_leader_that_cannot_renew_steps_down_at_its_renew_deadline() {
        let start = Instant::now();
        let mine = held_by("a", 0);
        let mut election = leading("a", &mine, start);
        let renew = update(election.observe(Some(&mine), start, wall(0)));
        election.written(renew, start);
        // Every later attempt fails (no write succeeds).
        let before = start + Duration::from_millis(9_999);
        assert!(election.is_leader(before));
        assert!(!election.expire(before));
        let deadline = start + Duration::from_secs(10);
        assert!(!election.is_leader(deadline));
        assert!(
            election.expire(deadline),
            "leadership is lost at the deadline"
        );
        assert!(!election.expire(deadline), "and reported once");
        // The deadline comes before any other replica may take the lease over.
        assert!(
            election.settings().renew_deadline < election.settings().lease_duration,
            "renew-deadline < lease-duration"
        );
    }

    #[test]
    fn a_conflict_on_acquire_leaves_the_replica_a_follower() {
        let mut election = Election::new(settings("b"));
        let start = Instant::now();
        let _ = election.observe(None, start, wall(0));
        // The create answered 409 (someone else created it first): nothing was written, so
        // nothing is recorded.
        assert!(!election.is_leader(start));
        // Reading it shows the winner's fresh record: stand by.
        let winner = Record {
            holder: Some("a".into()),
            lease_duration_seconds: 15,
            acquire_time: Some(wall(0)),
            renew_time: Some(wall(0)),
            transitions: 0,
        };
        assert_eq!(
            election.observe(Some(&winner), start, wall(0)),
            Action::StandBy
        );
    }

    #[test]
    fn a_leader_that_sees_another_holder_stops_leading_at_once() {
        let start = Instant::now();
        let mut election = leading("a", &held_by("a", 0), start);
        let renew = update(election.observe(Some(&held_by("a", 0)), start, wall(0)));
        election.written(renew, start);
        assert!(election.is_leader(start));
        let stolen = held_by("b", 1);
        let later = start + Duration::from_secs(1);
        assert_eq!(
            election.observe(Some(&stolen), later, wall(1)),
            Action::StandBy
        );
        assert!(!election.is_leader(later));
    }

    #[test]
    fn a_released_lease_is_taken_over_at_the_next_attempt() {
        let start = Instant::now();
        let mut leader = leading("a", &held_by("a", 0), start);
        let renew = update(leader.observe(Some(&held_by("a", 0)), start, wall(0)));
        leader.written(renew, start);
        let released = leader.release(start, wall(1)).expect("a leader releases");
        assert_eq!(released.holder(), None);
        assert_eq!(released.lease_duration_seconds, 1);
        assert_eq!(released.renew_time, Some(wall(1)));
        assert!(
            !leader.is_leader(start),
            "it stops writing before it releases"
        );
        assert_eq!(
            leader.release(start, wall(1)),
            None,
            "a follower has nothing to release"
        );

        let mut follower = Election::new(settings("b"));
        assert_eq!(
            follower.observe(Some(&held_by("a", 0)), start, wall(0)),
            Action::StandBy
        );
        let taken = update(follower.observe(Some(&released), start, wall(1)));
        assert_eq!(taken.holder.as_deref(), Some("b"));
        assert_eq!(
            taken.transitions, 4,
            "a new holder after a release is a transition"
        );
    }

    #[test]
    fn a_restarted_replica_waits_out_the_lease_its_previous_life_held() {
        // processor-0 led, was SIGKILLed and restarted under the same name: the Lease still
        // names it. Taking it back at once would hand scaling to cold windows; it waits for
        // the expiry as any follower does, by which time a warm follower has taken over.
        let start = Instant::now();
        let mut restarted = Election::new(settings("a"));
        let previous_life = held_by("a", 0);
        assert_eq!(
            restarted.observe(Some(&previous_life), start, wall(0)),
            Action::StandBy
        );
        let almost = start + Duration::from_millis(14_999);
        assert_eq!(
            restarted.observe(Some(&previous_life), almost, wall(15)),
            Action::StandBy
        );
        // Nobody took it over: after its duration it is taken like anyone's.
        let expired = start + Duration::from_secs(15);
        let taken = update(restarted.observe(Some(&previous_life), expired, wall(15)));
        assert_eq!(taken.holder.as_deref(), Some("a"));
        restarted.written(taken.clone(), expired);
        // From then on it renews its own record at every attempt.
        let later = expired + Duration::from_secs(2);
        assert!(matches!(
            restarted.observe(Some(&taken), later, wall(17)),
            Action::Update(_)
        ));
    }
}
