//! The `[ha]` keys of task propagation between processor replicas (issue #14): which replicas
//! a task change is forwarded to and reconciled with (`peers`), how often the replicas compare
//! their tasks (`sync-interval`), how long a request to a peer may take (`peer-timeout`) and how
//! long a deleted task is remembered (`tombstone-ttl`). The `[ha]` election keys (`enabled`,
//! `lease-name`, `identity`, ...) are another struct's; this one reads only `identity`, without
//! taking it, to find the replica's own entry in `peers`.

use std::time::Duration;

use toml::{Table, Value};

use super::keys::DurationRange;
use super::tasks::Bad;

/// `sync-interval`: from 1 s to 1 h.
pub const SYNC_INTERVAL_RANGE: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(3600));
/// `peer-timeout`: from 100 ms to 1 min.
pub const PEER_TIMEOUT_RANGE: DurationRange =
    DurationRange::new(Duration::from_millis(100), Duration::from_secs(60));
/// `tombstone-ttl`: from 1 min to 30 days.
pub const TOMBSTONE_TTL_RANGE: DurationRange =
    DurationRange::new(Duration::from_secs(60), Duration::from_secs(30 * 24 * 3600));

/// The keys of `[ha]` this module reads (the others are the election's).
pub const KEYS: [&str; 4] = ["peers", "sync-interval", "peer-timeout", "tombstone-ttl"];

/// Task propagation between replicas.
#[derive(Debug, Clone, PartialEq)]
pub struct Peers {
    /// `peers`: base URLs (`http://host:port`, no path) of the processor replicas. It may name
    /// every replica, this one included: the entry whose host, or the first label of whose
    /// host, is this replica's identity is skipped ([`Peers::others`]). Empty (the default):
    /// no propagation.
    pub peers: Vec<String>,
    /// `sync-interval`: how often (and once at start) the task lists of the peers are fetched
    /// and reconciled, a duration (default 30 s, range [`SYNC_INTERVAL_RANGE`]).
    pub sync_interval: Duration,
    /// `peer-timeout`: how long one request to a peer may take, a duration (default 5 s, range
    /// [`PEER_TIMEOUT_RANGE`]).
    pub peer_timeout: Duration,
    /// `tombstone-ttl`: how long a deleted task is remembered so that a peer that missed the
    /// delete drops its copy instead of giving it back, a duration (default 24 h, range
    /// [`TOMBSTONE_TTL_RANGE`], and longer than `sync-interval`). A peer down for longer brings
    /// the task back.
    pub tombstone_ttl: Duration,
    /// `identity` of `[ha]` as written (read, not taken: the election's key); empty when
    /// absent (the host name is used, the pod name in a StatefulSet).
    pub identity: String,
}

fn default_sync_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_peer_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_tombstone_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

impl Default for Peers {
    fn default() -> Self {
        Peers {
            peers: Vec::new(),
            sync_interval: default_sync_interval(),
            peer_timeout: default_peer_timeout(),
            tombstone_ttl: default_tombstone_ttl(),
            identity: String::new(),
        }
    }
}

impl Peers {
    /// Takes this module's keys out of `[ha]` of the top-level table; the `[ha]` table stays
    /// with its other keys. Errors name the key.
    pub fn from_table(table: &mut Table) -> Result<Peers, Bad> {
        let mut config = Peers::default();
        let ha = match table.get_mut("ha") {
            None => return Ok(config),
            Some(Value::Table(ha)) => ha,
            Some(_) => return Err(("ha".to_owned(), "must be a table ([ha])".to_owned())),
        };
        match ha.remove("peers") {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let Value::String(url) = item else {
                        return Err(bad("peers", "must be a list of URL strings"));
                    };
                    check_peer_url(&url).map_err(|reason| bad("peers", reason))?;
                    config.peers.push(url.trim_end_matches('/').to_owned());
                }
            }
            Some(_) => return Err(bad("peers", "must be a list of URL strings")),
        }
        config.sync_interval = duration(
            ha,
            "sync-interval",
            default_sync_interval(),
            SYNC_INTERVAL_RANGE,
        )?;
        config.peer_timeout = duration(
            ha,
            "peer-timeout",
            default_peer_timeout(),
            PEER_TIMEOUT_RANGE,
        )?;
        config.tombstone_ttl = duration(
            ha,
            "tombstone-ttl",
            default_tombstone_ttl(),
            TOMBSTONE_TTL_RANGE,
        )?;
        if config.tombstone_ttl <= config.sync_interval {
            return Err(bad(
                "tombstone-ttl",
                "must be longer than sync-interval (a delete must outlive a sync)",
            ));
        }
        if let Some(Value::String(identity)) = ha.get("identity") {
            config.identity = identity.clone();
        }
        Ok(config)
    }

    /// The peers other than the replica named `identity`: an entry is this replica's own when
    /// its host is `identity` or begins with `identity.` (`http://processor-0.processor-peers:9092`
    /// for `processor-0`). An empty identity skips nothing.
    pub fn others(&self, identity: &str) -> Vec<String> {
        self.peers
            .iter()
            .filter(|url| identity.is_empty() || !names_replica(url, identity))
            .cloned()
            .collect()
    }
}

/// True when the host of `url` is `identity` or a DNS name whose first label is `identity`.
fn names_replica(url: &str, identity: &str) -> bool {
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return false;
    };
    let host = uri.host().unwrap_or_default();
    host.eq_ignore_ascii_case(identity)
        || host
            .split_once('.')
            .is_some_and(|(first, _)| first.eq_ignore_ascii_case(identity))
}

fn bad(key: &str, reason: impl std::fmt::Display) -> Bad {
    (format!("ha.{key}"), reason.to_string())
}

fn duration(
    table: &mut Table,
    key: &str,
    default: Duration,
    range: DurationRange,
) -> Result<Duration, Bad> {
    match table.remove(key) {
        None => Ok(default),
        Some(Value::String(text)) => humantime::parse_duration(&text)
            .map_err(|e| format!("{text:?}: {e}"))
            .and_then(|d| range.check(d))
            .map_err(|reason| bad(key, reason)),
        Some(_) => Err(bad(key, "must be a duration string like \"30s\"")),
    }
}

/// A peer is a plain `http://host[:port]` base URL: no path, query or credentials (the
/// processor's own `[http]` credentials are sent).
fn check_peer_url(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{url:?} must start with http:// (TLS is not supported)"
        ));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!(
            "{url:?} must not carry credentials (the [http] users are sent)"
        ));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{url:?} must be a base URL without a path or query"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Peers, Table), Bad> {
        let mut table: Table = text.parse().expect("TOML");
        let peers = Peers::from_table(&mut table)?;
        Ok((peers, table))
    }

    #[test]
    fn no_ha_section_means_no_peers_and_the_defaults() {
        let (peers, _) = parse("").expect("loads");
        assert_eq!(peers, Peers::default());
        assert!(peers.peers.is_empty());
        assert_eq!(peers.sync_interval, Duration::from_secs(30));
    }

    #[test]
    fn the_keys_are_taken_and_the_election_keys_left_in_the_ha_table() {
        let (peers, table) = parse(
            "[ha]\nenabled = true\nidentity = \"processor-0\"\n\
             peers = [\"http://processor-0.processor-peers:9092/\", \"http://processor-1.processor-peers:9092\"]\n\
             sync-interval = \"10s\"\npeer-timeout = \"2s\"\ntombstone-ttl = \"1h\"\n",
        )
        .expect("loads");
        assert_eq!(
            peers.peers,
            [
                "http://processor-0.processor-peers:9092",
                "http://processor-1.processor-peers:9092"
            ]
        );
        assert_eq!(peers.sync_interval, Duration::from_secs(10));
        assert_eq!(peers.peer_timeout, Duration::from_secs(2));
        assert_eq!(peers.tombstone_ttl, Duration::from_secs(3600));
        assert_eq!(peers.identity, "processor-0");
        let left: Vec<&String> = table["ha"].as_table().expect("[ha]").keys().collect();
        assert_eq!(left, ["enabled", "identity"]);
    }

    #[test]
    fn a_replica_finds_itself_in_peers_by_its_identity_as_the_first_host_label() {
        let (peers, _) = parse(
            "[ha]\npeers = [\"http://processor-0.processor-peers:9092\", \
             \"http://processor-1.processor-peers:9092\", \"http://processor-10:9092\"]\n",
        )
        .expect("loads");
        assert_eq!(
            peers.others("processor-1"),
            [
                "http://processor-0.processor-peers:9092",
                "http://processor-10:9092"
            ]
        );
        assert_eq!(peers.others("processor-10").len(), 2);
        assert_eq!(peers.others("").len(), 3);
        assert_eq!(
            peers.others("processor").len(),
            3,
            "a prefix is not a label"
        );
    }

    #[test]
    fn a_bad_peer_or_an_out_of_range_duration_is_an_error_naming_the_key() {
        for (text, key) in [
            ("[ha]\npeers = \"http://a:1\"", "ha.peers"),
            ("[ha]\npeers = [1]", "ha.peers"),
            ("[ha]\npeers = [\"https://a:1\"]", "ha.peers"),
            ("[ha]\npeers = [\"http://u:p@a:1\"]", "ha.peers"),
            ("[ha]\npeers = [\"http://a:1/x\"]", "ha.peers"),
            ("[ha]\npeers = [\"a:1\"]", "ha.peers"),
            ("[ha]\nsync-interval = \"0s\"", "ha.sync-interval"),
            ("[ha]\nsync-interval = 5", "ha.sync-interval"),
            ("[ha]\npeer-timeout = \"2m\"", "ha.peer-timeout"),
            ("[ha]\ntombstone-ttl = \"1s\"", "ha.tombstone-ttl"),
            (
                "[ha]\nsync-interval = \"1h\"\ntombstone-ttl = \"30m\"",
                "ha.tombstone-ttl",
            ),
            ("ha = 1", "ha"),
        ] {
            let (got, reason) = parse(text).expect_err(text);
            assert_eq!(got, key, "{text}: {reason}");
        }
    }
}
