//! The rule that keeps the replicas' tasks identical (pure): every definition and every delete
//! carries a [`Version`], `(time, origin)`: the processor clock of the replica that accepted the
//! change through its task API, and that replica's identity. Forwarded requests and the
//! anti-entropy sync carry the version with the change, and each replica keeps, for each task
//! id, the entry with the greatest version ([`newer`]): last change wins, ties in time go to the
//! greater identity, and two different definitions with one version (only the load directory's
//! can have one) go to the greater fingerprint. The order is total, so every replica picks the
//! same entry whatever order changes reach it in.
//!
//! Tasks of the `[load]` directory are defined at start with [`Version::LOAD`], older than any
//! change made through the API: an API change to such a task wins on every replica (and over a
//! restarted replica's fresh load), and two replicas' load-directory versions never replace one
//! another ([`newer`] keeps the local one).
//!
//! A delete leaves a tombstone with its version, kept for `tombstone-ttl` ([`expired`]), so a
//! replica that missed the delete drops its copy instead of giving it back.

use serde::{Deserialize, Serialize};

/// The version of a task change: the processor clock of the replica that accepted it (ns since
/// the epoch) and that replica's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// ns since the epoch on the accepting replica's processor clock (0: the load directory).
    pub time: i64,
    /// The identity of the replica that accepted it ("" for the load directory).
    pub origin: String,
}

impl Version {
    /// The version of a task defined by the `[load]` directory.
    pub const LOAD: Version = Version {
        time: 0,
        origin: String::new(),
    };

    /// The version of a change accepted now by replica `origin`, after `previous` (the task's
    /// current version or tombstone): `now`, or one nanosecond past `previous` when the clock
    /// has not moved past it (two changes in one tick still order).
    pub fn next(previous: Option<&Version>, now: i64, origin: &str) -> Version {
        let after = previous.map_or(i64::MIN, |v| v.time.saturating_add(1));
        Version {
            time: now.max(after).max(1),
            origin: origin.to_owned(),
        }
    }

    /// True for [`Version::LOAD`].
    pub fn is_load(&self) -> bool {
        self.time == 0
    }

    /// As the forwarding header carries it: `<time> <origin>`.
    pub fn to_header(&self) -> String {
        format!("{} {}", self.time, self.origin)
    }

    /// Reads [`Version::to_header`]'s form; `None` when it is not one.
    pub fn from_header(text: &str) -> Option<Version> {
        let (time, origin) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
        let time: i64 = time.parse().ok()?;
        if time < 0 || origin.chars().any(char::is_control) {
            return None;
        }
        Some(Version {
            time,
            origin: origin.to_owned(),
        })
    }
}

/// One task id as a replica holds it, for the sync: a definition's version and fingerprint, or
/// a tombstone's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held<'a> {
    pub version: &'a Version,
    /// The definition's fingerprint (its canonical JSON); `None` for a tombstone.
    pub fingerprint: Option<&'a str>,
}

/// True when `remote` must replace `local` (the rule in the module documentation). `local` is
/// `None` when the replica has neither the task nor a tombstone of it.
pub fn newer(local: Option<&Held<'_>>, remote: &Held<'_>) -> bool {
    let Some(local) = local else {
        // Nothing here: take a definition, and remember a delete (a tombstone is harmless).
        return true;
    };
    if local.version.is_load() && remote.version.is_load() {
        return false;
    }
    match remote.version.cmp(local.version) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        // One version, two contents: a definition beats a tombstone, then the greater
        // fingerprint wins. Equal contents: nothing to do.
        std::cmp::Ordering::Equal => match (local.fingerprint, remote.fingerprint) {
            (None, Some(_)) => true,
            (Some(_), None) | (None, None) => false,
            (Some(local), Some(remote)) => remote > local,
        },
    }
}

/// True when a tombstone of `version` is older than `ttl_ns` at `now`.
pub fn expired(version: &Version, now: i64, ttl_ns: i64) -> bool {
    now.saturating_sub(version.time) > ttl_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(time: i64, origin: &str) -> Version {
        Version {
            time,
            origin: origin.into(),
        }
    }

    fn def<'a>(version: &'a Version, fingerprint: &'a str) -> Held<'a> {
        Held {
            version,
            fingerprint: Some(fingerprint),
        }
    }

    fn tombstone(version: &Version) -> Held<'_> {
        Held {
            version,
            fingerprint: None,
        }
    }

    #[test]
    fn the_later_change_wins_whichever_replica_compares() {
        let (a, b) = (v(10, "processor-0"), v(20, "processor-1"));
        assert!(newer(Some(&def(&a, "x")), &def(&b, "y")));
        assert!(!newer(Some(&def(&b, "y")), &def(&a, "x")));
    }

    #[test]
    fn a_tie_in_time_goes_to_the_greater_identity_on_both_replicas() {
        let (a, b) = (v(10, "processor-0"), v(10, "processor-1"));
        assert!(newer(Some(&def(&a, "x")), &def(&b, "y")));
        assert!(!newer(Some(&def(&b, "y")), &def(&a, "x")));
    }

    #[test]
    fn a_later_delete_beats_a_definition_and_an_earlier_one_does_not() {
        let (defined, deleted) = (v(10, "a"), v(11, "b"));
        assert!(newer(Some(&def(&defined, "x")), &tombstone(&deleted)));
        assert!(!newer(Some(&tombstone(&deleted)), &def(&defined, "x")));
        let redefined = v(12, "a");
        assert!(newer(Some(&tombstone(&deleted)), &def(&redefined, "x")));
    }

    #[test]
    fn one_version_with_two_contents_resolves_the_same_way_on_both_sides() {
        let version = v(10, "a");
        assert!(newer(Some(&def(&version, "a")), &def(&version, "b")));
        assert!(!newer(Some(&def(&version, "b")), &def(&version, "a")));
        assert!(!newer(Some(&def(&version, "a")), &def(&version, "a")));
        assert!(newer(Some(&tombstone(&version)), &def(&version, "a")));
        assert!(!newer(Some(&def(&version, "a")), &tombstone(&version)));
    }

    #[test]
    fn load_directory_versions_never_replace_each_other_and_lose_to_any_api_change() {
        let load = Version::LOAD;
        assert!(!newer(Some(&def(&load, "a")), &def(&load, "b")));
        assert!(!newer(Some(&def(&load, "b")), &def(&load, "a")));
        let changed = v(1, "processor-1");
        assert!(newer(Some(&def(&load, "a")), &def(&changed, "a2")));
        assert!(!newer(Some(&def(&changed, "a2")), &def(&load, "a")));
    }

    #[test]
    fn nothing_held_takes_whatever_comes() {
        let version = v(5, "a");
        assert!(newer(None, &def(&version, "x")));
        assert!(newer(None, &tombstone(&version)));
    }

    #[test]
    fn the_next_version_moves_past_the_previous_one_even_when_the_clock_does_not() {
        assert_eq!(Version::next(None, 100, "a"), v(100, "a"));
        assert_eq!(Version::next(Some(&v(100, "b")), 100, "a"), v(101, "a"));
        assert_eq!(Version::next(Some(&v(500, "b")), 100, "a"), v(501, "a"));
        assert_eq!(
            Version::next(None, 0, "a"),
            v(1, "a"),
            "never the load version"
        );
    }

    #[test]
    fn a_version_round_trips_through_its_header_and_junk_is_refused() {
        let version = v(1_764_000_000_123_456_789, "processor-0");
        assert_eq!(Version::from_header(&version.to_header()), Some(version));
        assert_eq!(Version::from_header("7"), Some(v(7, "")));
        for junk in ["", "x a", "-1 a", "1.5 a", "1 a\u{7}"] {
            assert_eq!(Version::from_header(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_tombstone_expires_after_its_ttl() {
        let version = v(1_000, "a");
        assert!(!expired(&version, 1_500, 500));
        assert!(expired(&version, 1_501, 500));
    }
}
