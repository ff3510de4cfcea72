//! Injectable faults: the next N matching requests answer an error status, are delayed, or both;
//! or they are carried out and answer an error status anyway (a write applied behind a proxy that
//! timed out). A fault can be narrowed to one client (its authenticated user or a part of its
//! `User-Agent`), so a test can partition one replica from the API, and can last for a time
//! instead of a number of requests.

use std::time::Duration;

use tokio::time::Instant;

use crate::request::RequestInfo;

/// Which requests a fault applies to; unset fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FaultMatch {
    /// Verb (`get`, `patch`, `update`, `list`, `create`, …).
    pub verb: Option<String>,
    /// Resource (`deployments`).
    pub resource: Option<String>,
    /// Subresource (`scale`); `Some("")` matches only requests without one.
    pub subresource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// A substring of the path.
    pub path_contains: Option<String>,
    /// The authenticated user (from the bearer token), exactly.
    pub user: Option<String>,
    /// A substring of the `User-Agent` header.
    pub user_agent_contains: Option<String>,
}

/// Who sent a request: what a [`FaultMatch`] can tell clients apart by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Client<'a> {
    /// The authenticated user, empty when authentication is off.
    pub user: &'a str,
    /// The `User-Agent` header.
    pub user_agent: &'a str,
}

impl FaultMatch {
    fn matches(&self, path: &str, info: &RequestInfo, client: Client<'_>) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.verb, &info.verb)
            && eq(&self.resource, &info.resource)
            && eq(&self.subresource, &info.subresource)
            && eq(&self.namespace, &info.namespace)
            && eq(&self.name, &info.name)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
            && eq(&self.user, client.user)
            && self
                .user_agent_contains
                .as_deref()
                .is_none_or(|p| client.user_agent.contains(p))
    }
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fault {
    /// HTTP status to answer with (401, 403, 404, 409, 429, 500, 503 give the API server's
    /// Status objects; other codes answer 500); `None` to answer normally (after the delay).
    #[serde(default)]
    pub status: Option<u16>,
    /// How long to wait before answering, in milliseconds on the wire format.
    #[serde(default, with = "millis")]
    pub delay: Duration,
    /// How many matching requests this fault affects; `None` for every one until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    /// Which requests.
    #[serde(default)]
    pub matching: FaultMatch,
    /// Carry the request out (authorization, the write, change notifications, watch events),
    /// then answer `status` anyway, after `delay`: what a client sees when a proxy in front of
    /// the API times out after the write was applied. Without `status` the request is answered
    /// normally after `delay`, as without `apply`. Absent from the JSON means `false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub apply: bool,
    /// A `Retry-After` header (seconds) on the error answer, as the API server sends with a
    /// 503 while it cannot serve (`WithRetryAfter`) or a 429; absent from the JSON means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
    /// How long the fault lasts from when it is injected, in milliseconds on the wire format
    /// (`None`: until its `times` are used up or it is cleared).
    #[serde(
        default,
        with = "optional_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub lasts: Option<Duration>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms: u64 = serde::Deserialize::deserialize(d)?;
        Ok(Duration::from_millis(ms))
    }
}

mod optional_millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let ms: Option<u64> = serde::Deserialize::deserialize(d)?;
        Ok(ms.map(Duration::from_millis))
    }
}

impl Fault {
    /// Answer `code` (once unless `.times(n)` or `.always()`).
    pub fn status(code: u16) -> Fault {
        Fault {
            status: Some(code),
            delay: Duration::ZERO,
            times: Some(1),
            matching: FaultMatch::default(),
            apply: false,
            retry_after: None,
            lasts: None,
        }
    }

    /// Delay the answer by `delay` (once unless `.times(n)` or `.always()`).
    pub fn delay(delay: Duration) -> Fault {
        Fault {
            status: None,
            delay,
            times: Some(1),
            matching: FaultMatch::default(),
            apply: false,
            retry_after: None,
            lasts: None,
        }
    }

    /// Carry the request out first, then answer the error status anyway (see [`Fault::apply`]):
    /// `Fault::status(500).after_applying()` is a write that was applied but answered 500.
    pub fn after_applying(mut self) -> Fault {
        self.apply = true;
        self
    }

    /// Answer with a `Retry-After: seconds` header.
    pub fn retry_after(mut self, seconds: u32) -> Fault {
        self.retry_after = Some(seconds);
        self
    }

    /// Also delay an error answer.
    pub fn after(mut self, delay: Duration) -> Fault {
        self.delay = delay;
        self
    }

    /// Affect the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }

    /// Affect every matching request until cleared.
    pub fn always(mut self) -> Fault {
        self.times = None;
        self
    }

    /// Only requests with this verb.
    pub fn verb(mut self, verb: &str) -> Fault {
        self.matching.verb = Some(verb.to_string());
        self
    }

    /// Only requests on this resource (`deployments`).
    pub fn resource(mut self, resource: &str) -> Fault {
        self.matching.resource = Some(resource.to_string());
        self
    }

    /// Only requests on this subresource (`scale`).
    pub fn subresource(mut self, subresource: &str) -> Fault {
        self.matching.subresource = Some(subresource.to_string());
        self
    }

    /// Only requests for this object name.
    pub fn name(mut self, name: &str) -> Fault {
        self.matching.name = Some(name.to_string());
        self
    }

    /// Only requests whose path contains `part`.
    pub fn path_contains(mut self, part: &str) -> Fault {
        self.matching.path_contains = Some(part.to_string());
        self
    }

    /// Only requests of this authenticated user (one client's bearer token).
    pub fn user(mut self, user: &str) -> Fault {
        self.matching.user = Some(user.to_string());
        self
    }

    /// Only requests whose `User-Agent` contains `part`.
    pub fn user_agent_contains(mut self, part: &str) -> Fault {
        self.matching.user_agent_contains = Some(part.to_string());
        self
    }

    /// Affect every matching request for `duration` from its injection (then it is gone).
    pub fn lasting(mut self, duration: Duration) -> Fault {
        self.times = None;
        self.lasts = Some(duration);
        self
    }
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    /// Status to answer with instead of handling.
    pub status: Option<u16>,
    /// Wait before answering.
    pub delay: Duration,
    /// Carry the request out before answering `status` (after `delay`).
    pub apply: bool,
    /// The `Retry-After` header of the error answer, seconds.
    pub retry_after: Option<u32>,
}

/// The active faults, in injection order.
#[derive(Debug, Default)]
pub struct Faults {
    /// Each fault with when it ends (for a lasting one).
    active: Vec<(Fault, Option<Instant>)>,
}

impl Faults {
    /// Adds a fault; earlier faults take precedence.
    pub fn push(&mut self, fault: Fault) {
        if fault.times != Some(0) {
            let ends = fault.lasts.map(|d| Instant::now() + d);
            self.active.push((fault, ends));
        }
    }

    /// Removes every fault.
    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// Removes the faults whose matcher is `matching` (e.g. every fault on one client).
    pub fn clear_matching(&mut self, matching: &FaultMatch) {
        self.active.retain(|(f, _)| f.matching != *matching);
    }

    /// How many faults are still active.
    pub fn len(&mut self) -> usize {
        self.forget_ended();
        self.active.len()
    }

    fn forget_ended(&mut self) {
        let now = Instant::now();
        self.active
            .retain(|(_, ends)| ends.is_none_or(|ends| now < ends));
    }

    /// Whether no fault is active.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// The injection for this request, consuming one use of the first matching fault.
    pub fn take(
        &mut self,
        path: &str,
        info: &RequestInfo,
        client: Client<'_>,
    ) -> Option<Injection> {
        self.forget_ended();
        let index = self
            .active
            .iter()
            .position(|(f, _)| f.matching.matches(path, info, client))?;
        let (fault, _) = self.active.get_mut(index)?;
        let injection = Injection {
            status: fault.status,
            delay: fault.delay,
            apply: fault.apply,
            retry_after: fault.retry_after,
        };
        if let Some(n) = fault.times.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.active.remove(index);
            }
        }
        Some(injection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse;

    const SCALE: &str = "/apis/apps/v1/namespaces/default/deployments/app/scale";
    const ANY: Client<'static> = Client {
        user: "",
        user_agent: "",
    };

    #[test]
    fn a_fault_on_one_client_leaves_the_others_alone() {
        let mut faults = Faults::default();
        faults.push(Fault::status(503).always().user("replica-a"));
        faults.push(Fault::status(500).always().user_agent_contains("(b)"));
        let get = parse("GET", SCALE, false);
        let a = Client {
            user: "replica-a",
            user_agent: "x",
        };
        let b = Client {
            user: "replica-b",
            user_agent: "autoscaler-processor/1 (b)",
        };
        let c = Client {
            user: "replica-c",
            user_agent: "autoscaler-processor/1 (c)",
        };
        assert_eq!(
            faults.take(SCALE, &get, a).and_then(|i| i.status),
            Some(503)
        );
        assert_eq!(
            faults.take(SCALE, &get, b).and_then(|i| i.status),
            Some(500)
        );
        assert_eq!(faults.take(SCALE, &get, c), None);
        faults.clear_matching(&Fault::status(503).user("replica-a").matching);
        assert_eq!(faults.take(SCALE, &get, a), None);
        assert_eq!(faults.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_fault_ends_by_itself() {
        let mut faults = Faults::default();
        faults.push(Fault::status(503).lasting(Duration::from_secs(2)));
        let get = parse("GET", SCALE, false);
        assert_eq!(
            faults.take(SCALE, &get, ANY).and_then(|i| i.status),
            Some(503)
        );
        assert_eq!(
            faults.take(SCALE, &get, ANY).and_then(|i| i.status),
            Some(503)
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(faults.take(SCALE, &get, ANY), None);
        assert!(faults.is_empty());
    }

    #[test]
    fn a_fault_affects_exactly_n_matching_requests() {
        let mut faults = Faults::default();
        faults.push(
            Fault::status(503)
                .times(2)
                .verb("patch")
                .subresource("scale"),
        );
        let get = parse("GET", SCALE, false);
        let patch = parse("PATCH", SCALE, false);
        assert_eq!(faults.take(SCALE, &get, ANY), None);
        assert_eq!(
            faults.take(SCALE, &patch, ANY).and_then(|i| i.status),
            Some(503)
        );
        assert_eq!(
            faults.take(SCALE, &patch, ANY).and_then(|i| i.status),
            Some(503)
        );
        assert_eq!(faults.take(SCALE, &patch, ANY), None);
        assert!(faults.is_empty());
    }

    #[test]
    fn earlier_faults_win_and_always_faults_stay() {
        let mut faults = Faults::default();
        faults.push(Fault::status(409).times(1));
        faults.push(Fault::delay(Duration::from_millis(5)).always());
        let info = parse("PUT", SCALE, false);
        assert_eq!(
            faults.take(SCALE, &info, ANY).and_then(|i| i.status),
            Some(409)
        );
        for _ in 0..3 {
            let i = faults.take(SCALE, &info, ANY);
            assert_eq!(
                i.map(|i| (i.status, i.delay)),
                Some((None, Duration::from_millis(5)))
            );
        }
        assert_eq!(faults.len(), 1);
        faults.clear();
        assert_eq!(faults.take(SCALE, &info, ANY), None);
    }

    #[test]
    fn path_and_name_matchers_narrow_the_fault() {
        let mut faults = Faults::default();
        faults.push(Fault::status(500).name("web").always());
        faults.push(Fault::status(403).path_contains("/leases/").always());
        let app = parse("GET", SCALE, false);
        assert_eq!(faults.take(SCALE, &app, ANY), None);
        let lease = "/apis/coordination.k8s.io/v1/namespaces/default/leases/x";
        assert_eq!(
            faults
                .take(lease, &parse("GET", lease, false), ANY)
                .and_then(|i| i.status),
            Some(403)
        );
    }

    #[test]
    fn faults_round_trip_through_json_config() {
        let text = r#"{"status": 500, "delay": 250, "times": 3, "matching": {"verb": "patch"}}"#;
        let fault: Result<Fault, _> = serde_json::from_str(text);
        let expected = Fault::status(500)
            .after(Duration::from_millis(250))
            .times(3)
            .verb("patch");
        assert_eq!(fault.ok(), Some(expected));
    }

    #[test]
    fn apply_is_false_when_absent_and_written_only_when_set() {
        let old: Result<Fault, _> = serde_json::from_str(r#"{"status": 500}"#);
        assert_eq!(old.ok().map(|f| f.apply), Some(false));
        let plain = serde_json::to_value(Fault::status(500)).unwrap_or_default();
        assert_eq!(plain.get("apply"), None);

        let text =
            r#"{"status": 500, "times": 1, "apply": true, "matching": {"subresource": "scale"}}"#;
        let fault: Result<Fault, _> = serde_json::from_str(text);
        let expected = Fault::status(500).after_applying().subresource("scale");
        assert_eq!(fault.as_ref().ok(), Some(&expected));
        let written = serde_json::to_value(&expected).unwrap_or_default();
        assert_eq!(written.get("apply"), Some(&serde_json::Value::Bool(true)));
    }

    #[test]
    fn a_retry_after_reaches_the_injection_and_round_trips() {
        let mut faults = Faults::default();
        faults.push(Fault::status(503).retry_after(3).verb("get"));
        let get = parse("GET", SCALE, false);
        let injection = faults.take(SCALE, &get, ANY);
        assert_eq!(
            injection.map(|i| (i.status, i.retry_after)),
            Some((Some(503), Some(3)))
        );
        let text = r#"{"status": 503, "times": 2, "retry_after": 3}"#;
        let fault: Result<Fault, _> = serde_json::from_str(text);
        assert_eq!(fault.ok(), Some(Fault::status(503).times(2).retry_after(3)));
        let plain = serde_json::to_value(Fault::status(503)).unwrap_or_default();
        assert_eq!(plain.get("retry_after"), None);
    }

    #[test]
    fn an_applying_fault_tells_the_server_to_apply() {
        let mut faults = Faults::default();
        faults.push(Fault::status(500).after_applying().verb("patch"));
        let patch = parse("PATCH", SCALE, false);
        let injection = faults.take(SCALE, &patch, ANY);
        assert_eq!(
            injection.map(|i| (i.status, i.apply)),
            Some((Some(500), true))
        );
    }
}
