//! `[ha]`: high availability, several replicas of which exactly one (the holder of a
//! `coordination.k8s.io/v1` Lease) writes to the Kubernetes API; the election is `crate::ha`'s.
//!
//! Keys: `enabled`, `lease-name`, `lease-namespace`, `lease-duration`, `renew-deadline`,
//! `retry-period`, `identity`. The durations are checked as client-go's leaderelection checks
//! them: `lease-duration` > `renew-deadline` > `retry-period` × 1.2 (its JitterFactor), each
//! within its range ([`LEASE_DURATION_RANGE`], [`RENEW_DEADLINE_RANGE`],
//! [`RETRY_PERIOD_RANGE`]). Environment: `PROCESSOR_HA_<KEY>` / `KAPACITOR_HA_<KEY>` (in
//! [`super::ENV_KEYS`]). The task-propagation keys of `[ha]` (`peers`) are read elsewhere
//! (`config/peers.rs`); this file takes only its own keys out of the table and leaves the
//! others for the loader to report.

use std::time::Duration;

use toml::{Table, Value};

use super::Result;
use super::keys::{DurationRange, invalid, take_bool, take_string};

/// client-go's `JitterFactor`: a follower waits up to `retry-period` × 1.2 between attempts,
/// so `renew-deadline` must be longer than that.
pub const JITTER_FACTOR: f64 = 1.2;

/// `lease-duration`: from 1 s to 10 min.
pub const LEASE_DURATION_RANGE: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(600));
/// `renew-deadline`: from 100 ms to 10 min (and below `lease-duration`).
pub const RENEW_DEADLINE_RANGE: DurationRange =
    DurationRange::new(Duration::from_millis(100), Duration::from_secs(600));
/// `retry-period`: from 50 ms to 5 min (and `retry-period` × 1.2 below `renew-deadline`).
pub const RETRY_PERIOD_RANGE: DurationRange =
    DurationRange::new(Duration::from_millis(50), Duration::from_secs(300));

/// `[ha]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ha {
    /// `enabled`: elect a leader through a Lease; only the leader scales (default false:
    /// one replica, scaling as before).
    pub enabled: bool,
    /// `lease-name`: the Lease's name (default `processor`).
    pub lease_name: String,
    /// `lease-namespace`: the Lease's namespace. `None` (the default): the processor's own
    /// namespace, i.e. the in-cluster service-account namespace file
    /// (`/var/run/secrets/kubernetes.io/serviceaccount/namespace`) when it exists, else the
    /// default `[kubernetes]` section's namespace (its `namespace` key, else its kubeconfig
    /// context's, else `default`).
    pub lease_namespace: Option<String>,
    /// `lease-duration`: how long a follower waits after it last saw the Lease change before
    /// it may take it over, a duration (default 15 s), range [`LEASE_DURATION_RANGE`].
    pub lease_duration: Duration,
    /// `renew-deadline`: how long a leader keeps leading without a successful renew before it
    /// stops writing, a duration (default 10 s), range [`RENEW_DEADLINE_RANGE`], below
    /// `lease-duration`.
    pub renew_deadline: Duration,
    /// `retry-period`: the pause between attempts to acquire or renew, a duration (default
    /// 2 s), range [`RETRY_PERIOD_RANGE`], × 1.2 below `renew-deadline`.
    pub retry_period: Duration,
    /// `identity`: this replica's name in the Lease's `holderIdentity`, unique per replica
    /// (default: the host name, i.e. the pod name, from `lifecycle::hostname`).
    pub identity: String,
}

/// The default `lease-name`: `processor`.
pub fn default_lease_name() -> String {
    "processor".to_owned()
}

/// The default `lease-duration`: 15 s (client-go's usual).
pub fn default_lease_duration() -> Duration {
    Duration::from_secs(15)
}

/// The default `renew-deadline`: 10 s.
pub fn default_renew_deadline() -> Duration {
    Duration::from_secs(10)
}

/// The default `retry-period`: 2 s.
pub fn default_retry_period() -> Duration {
    Duration::from_secs(2)
}

/// The default `identity`: the host name (the pod name in Kubernetes).
pub fn default_identity() -> String {
    lifecycle::hostname()
}

impl Default for Ha {
    fn default() -> Self {
        Ha {
            enabled: false,
            lease_name: default_lease_name(),
            lease_namespace: None,
            lease_duration: default_lease_duration(),
            renew_deadline: default_renew_deadline(),
            retry_period: default_retry_period(),
            identity: default_identity(),
        }
    }
}

impl Ha {
    /// Takes this section's keys out of the `[ha]` table (other keys stay, for the loader to
    /// read or report) and checks them.
    pub fn from_table(table: &mut Table) -> Result<Ha> {
        let defaults = Ha::default();
        let duration = |table: &mut Table, key: &str, range: DurationRange, default: Duration| {
            let dotted = format!("ha.{key}");
            match take_string(table, "ha", key)? {
                None => Ok(default),
                Some(text) => humantime::parse_duration(text.trim())
                    .map_err(|e| invalid(&dotted, format!("{text:?}: {e}")))
                    .and_then(|d| range.check(d).map_err(|reason| invalid(&dotted, reason))),
            }
        };
        let name = |value: Option<String>, key: &str| -> Result<Option<String>> {
            match value {
                Some(text) if !is_dns_subdomain(&text) => Err(invalid(
                    &format!("ha.{key}"),
                    format!(
                        "{text:?} is not a Kubernetes object name (lower-case letters, digits, \
                         '-' and '.', at most 253)"
                    ),
                )),
                other => Ok(other),
            }
        };
        let ha = Ha {
            enabled: take_bool(table, "ha", "enabled")?.unwrap_or(defaults.enabled),
            lease_name: name(take_string(table, "ha", "lease-name")?, "lease-name")?
                .unwrap_or(defaults.lease_name),
            lease_namespace: name(
                take_string(table, "ha", "lease-namespace")?.filter(|s| !s.is_empty()),
                "lease-namespace",
            )?,
            lease_duration: duration(
                table,
                "lease-duration",
                LEASE_DURATION_RANGE,
                defaults.lease_duration,
            )?,
            renew_deadline: duration(
                table,
                "renew-deadline",
                RENEW_DEADLINE_RANGE,
                defaults.renew_deadline,
            )?,
            retry_period: duration(
                table,
                "retry-period",
                RETRY_PERIOD_RANGE,
                defaults.retry_period,
            )?,
            identity: match take_string(table, "ha", "identity")? {
                None => defaults.identity,
                Some(text) if text.trim().is_empty() || text.len() > 128 => {
                    return Err(invalid(
                        "ha.identity",
                        "must be a non-empty name of at most 128 bytes",
                    ));
                }
                Some(text) => text,
            },
        };
        ha.check()?;
        Ok(ha)
    }

    /// client-go's checks: `lease-duration` > `renew-deadline` > `retry-period` × 1.2.
    pub fn check(&self) -> Result<()> {
        if self.lease_duration <= self.renew_deadline {
            return Err(invalid(
                "ha.lease-duration",
                format!(
                    "{} must be longer than renew-deadline ({})",
                    humantime::format_duration(self.lease_duration),
                    humantime::format_duration(self.renew_deadline)
                ),
            ));
        }
        if self.renew_deadline.as_secs_f64() <= self.retry_period.as_secs_f64() * JITTER_FACTOR {
            return Err(invalid(
                "ha.renew-deadline",
                format!(
                    "{} must be longer than retry-period × {JITTER_FACTOR} ({} × {JITTER_FACTOR})",
                    humantime::format_duration(self.renew_deadline),
                    humantime::format_duration(self.retry_period)
                ),
            ));
        }
        Ok(())
    }
}

/// Reads `[ha]` out of the top-level table: this section's keys are taken; a table left with
/// other keys is put back for the loader (`peers` is read by another section; anything else is
/// reported as unknown by its full name).
pub fn from_top(table: &mut Table) -> Result<Ha> {
    match table.remove("ha") {
        None => Ok(Ha::default()),
        Some(Value::Table(mut section)) => {
            let ha = Ha::from_table(&mut section)?;
            if !section.is_empty() {
                table.insert("ha".to_owned(), Value::Table(section));
            }
            Ok(ha)
        }
        Some(_) => Err(invalid("ha", "must be a table ([ha])")),
    }
}

/// A DNS subdomain name (RFC 1123), as Kubernetes names Leases and namespaces.
fn is_dns_subdomain(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=253).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn ha(text: &str) -> Result<Ha> {
        Config::parse(text).map(|loaded| loaded.config.ha)
    }

    #[test]
    fn an_absent_section_takes_every_default() {
        let ha = ha("").expect("config");
        assert!(!ha.enabled);
        assert_eq!(ha.lease_name, "processor");
        assert_eq!(ha.lease_namespace, None);
        assert_eq!(ha.lease_duration, Duration::from_secs(15));
        assert_eq!(ha.renew_deadline, Duration::from_secs(10));
        assert_eq!(ha.retry_period, Duration::from_secs(2));
        assert_eq!(ha.identity, lifecycle::hostname());
    }

    #[test]
    fn every_key_is_read_and_short_test_durations_are_allowed() {
        let ha = ha("[kubernetes]\nenabled = true\n[ha]\nenabled = true\nlease-name = \"p\"\nlease-namespace = \"ops\"\n\
             lease-duration = \"3s\"\nrenew-deadline = \"2s\"\nretry-period = \"500ms\"\n\
             identity = \"replica-a\"\n")
        .expect("config");
        assert!(ha.enabled);
        assert_eq!(
            (ha.lease_name.as_str(), ha.lease_namespace.as_deref()),
            ("p", Some("ops"))
        );
        assert_eq!(ha.lease_duration, Duration::from_secs(3));
        assert_eq!(ha.renew_deadline, Duration::from_secs(2));
        assert_eq!(ha.retry_period, Duration::from_millis(500));
        assert_eq!(ha.identity, "replica-a");
    }

    #[test]
    fn durations_out_of_order_or_range_are_errors_naming_the_key() {
        for (keys, key) in [
            ("lease-duration = \"10s\"", "ha.lease-duration"),
            ("renew-deadline = \"15s\"", "ha.lease-duration"),
            ("retry-period = \"9s\"", "ha.renew-deadline"),
            (
                "renew-deadline = \"1200ms\"\nretry-period = \"1s\"",
                "ha.renew-deadline",
            ),
            ("lease-duration = \"0s\"", "ha.lease-duration"),
            ("retry-period = \"1ms\"", "ha.retry-period"),
            ("lease-duration = \"11m\"", "ha.lease-duration"),
            ("lease-duration = \"soon\"", "ha.lease-duration"),
            ("enabled = \"yes\"", "ha.enabled"),
            ("lease-name = \"Not_A_Name\"", "ha.lease-name"),
            ("identity = \"\"", "ha.identity"),
        ] {
            let error = ha(&format!("[ha]\n{keys}\n")).expect_err(keys);
            assert!(
                error.to_string().contains(&format!("`{key}`")),
                "{keys}: {error}"
            );
        }
    }

    #[test]
    fn ha_without_an_enabled_kubernetes_section_is_an_error_naming_the_key() {
        let error = ha("[ha]\nenabled = true\n").expect_err("no client for the lease");
        assert!(error.to_string().contains("`ha.enabled`"), "{error}");
    }

    #[test]
    fn other_keys_of_the_section_are_left_for_the_loader_to_report() {
        let loaded =
            Config::parse("[kubernetes]\nenabled = true\n[ha]\nenabled = true\nbogus = 1\n")
                .expect("config");
        assert!(loaded.config.ha.enabled);
        assert_eq!(
            loaded.warnings,
            ["unknown config key `ha.bogus` is ignored"]
        );
    }

    #[test]
    fn environment_variables_set_the_keys() {
        let loaded = Config::load_with_env(
            None,
            [
                ("PROCESSOR_HA_ENABLED".to_owned(), "true".to_owned()),
                ("PROCESSOR_KUBERNETES_ENABLED".to_owned(), "true".to_owned()),
                ("KAPACITOR_HA_IDENTITY".to_owned(), "k".to_owned()),
                ("PROCESSOR_HA_IDENTITY".to_owned(), "p".to_owned()),
                ("PROCESSOR_HA_LEASE_DURATION".to_owned(), "20s".to_owned()),
                ("PROCESSOR_HA_RETRY_PERIOD".to_owned(), "1s".to_owned()),
            ],
        )
        .expect("config");
        let ha = loaded.config.ha;
        assert!(ha.enabled);
        assert_eq!(ha.identity, "p", "PROCESSOR_ wins over KAPACITOR_");
        assert_eq!(ha.lease_duration, Duration::from_secs(20));
        assert_eq!(ha.retry_period, Duration::from_secs(1));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }
}
