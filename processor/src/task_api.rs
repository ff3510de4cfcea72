//! Kapacitor's task HTTP API (compat.md 3): `/kapacitor/v1/tasks` (list, create),
//! `/kapacitor/v1/tasks/<id>` (get, patch, delete), `/kapacitor/v1/tasks/<id>/<httpOut name>`,
//! `/kapacitor/v1/debug/vars`, the processor's `/metrics`, and its decision records:
//! `/kapacitor/v1/decisions?task=ID[&limit=N]` (a path of its own, so it cannot collide with an
//! httpOut name).
//!
//! Errors answer `{"error": "..."}`: 404 for an unknown task or route, 400 for a bad request
//! (invalid JSON, script errors with line:column), 500 (generic message) when saving failed.
//!
//! With `[ha] peers`, a change accepted here is forwarded to the peers after it is applied, and a
//! forwarded change (it carries `ha_sync::VERSION_HEADER`) is applied by the version rule and
//! not forwarded again: 200/204 when taken or already held, 409 when this replica holds a
//! newer change of the task. Peers that did not take a change are named in the answer's
//! `Warning` headers. `GET /kapacitor/v1/ha/tasks` shows the peers this replica's definitions
//! with their versions and its tombstones (`crate::ha_sync`).
//!
//! Every task request runs on a blocking thread: a define compiles a script and saves a file,
//! and neither may hold the server's threads (`/ping` and `/write` answer meanwhile).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};

use crate::ha_sync::version::Version;
use crate::ha_sync::{PeerClient, PeerFailure, SYNC_PATH, VERSION_HEADER};
use crate::tasks::{Applied, Error, Remote, TaskDef, TaskMaster, TaskRequest, Tombstone};
use crate::write_api::{ExtraRoutes, PROCESSOR_VERSION};

const TASKS: &str = "/kapacitor/v1/tasks";
const DEBUG_VARS: &str = "/kapacitor/v1/debug/vars";
const METRICS: &str = "/metrics";
const DECISIONS: &str = "/kapacitor/v1/decisions";

/// The routes, over one task master.
pub struct TaskApi {
    tasks: Arc<TaskMaster>,
    started: std::time::Instant,
    metrics: Option<Arc<crate::telemetry::Telemetry>>,
    /// The other replicas, when `[ha] peers` names any.
    peers: Option<Arc<PeerClient>>,
}

impl TaskApi {
    pub fn new(
        tasks: Arc<TaskMaster>,
        metrics: Option<Arc<crate::telemetry::Telemetry>>,
    ) -> TaskApi {
        TaskApi {
            tasks,
            started: std::time::Instant::now(),
            metrics,
            peers: None,
        }
    }

    /// Forwards the changes accepted here to `peers`.
    pub fn with_peers(mut self, peers: Arc<PeerClient>) -> TaskApi {
        self.peers = Some(peers);
        self
    }
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = "application/json; charset=utf-8".parse() {
        response.headers_mut().insert("content-type", v);
    }
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message }))
}

fn task_error(e: &Error) -> Response<Full<Bytes>> {
    match e {
        Error::NotFound(_) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Error::Persist(_) => {
            tracing::error!(error = %e, "task store failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: cannot save tasks",
            )
        }
        _ => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

fn not_allowed(allow: &str) -> Response<Full<Bytes>> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    if let Ok(v) = allow.parse() {
        response.headers_mut().insert("allow", v);
    }
    response
}

fn parse_request(body: &[u8]) -> Result<TaskRequest, Box<Response<Full<Bytes>>>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("invalid task JSON: {e}"),
        ))
    })
}

impl TaskApi {
    fn debug_vars(&self) -> Response<Full<Bytes>> {
        let (tasks, enabled, subscriptions) = self.tasks.counts();
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        let mut stats = serde_json::Map::new();
        for (task, nodes, dropped) in self.tasks.node_stats() {
            for node in nodes {
                let mut values = serde_json::Map::new();
                values.insert("avg_exec_time_ns".into(), node.avg_exec_time_ns.into());
                values.insert("collected".into(), node.collected.into());
                values.insert("emitted".into(), node.emitted.into());
                values.insert("errors".into(), node.errors.into());
                for (k, v) in &node.specific {
                    values.insert((*k).into(), (*v).into());
                }
                stats.insert(
                    format!("nodes:task={task},node={}", node.name),
                    serde_json::json!({
                        "name": "nodes",
                        "tags": {"task": task, "node": node.name, "host": host},
                        "values": values,
                    }),
                );
            }
            stats.insert(
                format!("tasks:task={task}"),
                serde_json::json!({
                    "name": "tasks",
                    "tags": {"task": task, "host": host},
                    "values": {"dropped_points": dropped},
                }),
            );
        }
        json(
            StatusCode::OK,
            &serde_json::json!({
                "cluster_id": "processor",
                "server_id": host,
                "host": host,
                "num_tasks": tasks,
                "num_enabled_tasks": enabled,
                "num_subscriptions": subscriptions,
                "version": PROCESSOR_VERSION,
                "platform": "processor",
                "uptime_s": self.started.elapsed().as_secs(),
                "kapacitor": stats,
                "cmdline": std::env::args().collect::<Vec<_>>(),
            }),
        )
    }
}

/// What a decisions request asks for: `task=ID[&limit=N]` (other parameters are ignored).
#[derive(Debug, PartialEq)]
struct DecisionsQuery {
    task: String,
    limit: usize,
}

impl DecisionsQuery {
    /// Reads the query string; the error is the 400's message.
    fn parse(query: &str) -> Result<DecisionsQuery, String> {
        let mut task = None;
        let mut limit = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "task" => task = Some(value.into_owned()),
                "limit" => limit = Some(value.into_owned()),
                _ => {}
            }
        }
        let task = task.filter(|t| !t.is_empty()).ok_or_else(|| {
            "missing task: GET /kapacitor/v1/decisions?task=ID[&limit=N]".to_owned()
        })?;
        let limit = match limit {
            None => crate::decisions::DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=crate::decisions::MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    format!(
                        "invalid limit {text:?}: a whole number from 1 to {}",
                        crate::decisions::MAX_LIMIT
                    )
                })?,
        };
        Ok(DecisionsQuery { task, limit })
    }
}

impl TaskApi {
    /// `GET /kapacitor/v1/decisions?task=ID[&limit=N]`: `{"decisions": [...]}`, newest first.
    fn decisions(&self, query: &str) -> Response<Full<Bytes>> {
        let query = match DecisionsQuery::parse(query) {
            Ok(query) => query,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        match self.tasks.decisions(&query.task, query.limit) {
            Ok(records) => match serde_json::to_value(records) {
                Ok(records) => json(StatusCode::OK, &serde_json::json!({ "decisions": records })),
                Err(e) => {
                    tracing::error!(error = %e, "decision records cannot be written as JSON");
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                }
            },
            Err(e) => task_error(&e),
        }
    }
}

impl ExtraRoutes for TaskApi {
    fn handles(&self, path: &str) -> bool {
        path == TASKS
            || path.starts_with("/kapacitor/v1/tasks/")
            || path == DEBUG_VARS
            || path == DECISIONS
            || path == SYNC_PATH
            || (path == METRICS && self.metrics.is_some())
    }

    /// `/metrics` is scraped without credentials (it holds counters only); the task API and
    /// `debug/vars` need them when auth is enabled, as Kapacitor's.
    fn is_public(&self, path: &str) -> bool {
        path == METRICS
    }

    fn handle(
        self: Arc<Self>,
        method: Method,
        path: String,
        query: Option<String>,
        headers: hyper::HeaderMap,
        body: Vec<u8>,
    ) -> futures::future::BoxFuture<'static, Response<Full<Bytes>>> {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                if let Some(version) = headers.get(VERSION_HEADER) {
                    return self.answer_forwarded(&method, &path, version.to_str().ok(), &body);
                }
                let response =
                    self.answer(&method, &path, query.as_deref().unwrap_or_default(), &body);
                self.forward(&method, &path, response)
            })
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "task API request failed");
                self::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            })
        })
    }
}

impl TaskApi {
    fn answer(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        if path == DECISIONS {
            return match *method {
                Method::GET => self.decisions(query),
                _ => not_allowed("GET"),
            };
        }
        if path == METRICS {
            return match (&self.metrics, method) {
                (Some(metrics), &Method::GET) => metrics.render(&self.tasks),
                _ => not_allowed("GET"),
            };
        }
        if path == SYNC_PATH {
            return match *method {
                Method::GET => match serde_json::to_value(self.tasks.sync_state()) {
                    Ok(state) => json(StatusCode::OK, &state),
                    Err(e) => {
                        tracing::error!(error = %e, "the sync state cannot be written as JSON");
                        error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                    }
                },
                _ => not_allowed("GET"),
            };
        }
        if path == DEBUG_VARS {
            return match *method {
                Method::GET => self.debug_vars(),
                _ => not_allowed("GET"),
            };
        }
        if path == TASKS {
            return match *method {
                Method::GET => json(StatusCode::OK, &self.tasks.list()),
                Method::POST => match parse_request(body) {
                    Ok(request) => match self.tasks.create(request) {
                        Ok(task) => json(StatusCode::OK, &task),
                        Err(e) => task_error(&e),
                    },
                    Err(response) => *response,
                },
                _ => not_allowed("GET, POST"),
            };
        }
        let rest = path.trim_start_matches("/kapacitor/v1/tasks/");
        let (id, endpoint) = match rest.split_once('/') {
            Some((id, endpoint)) => (id, Some(endpoint)),
            None => (rest, None),
        };
        if let Some(endpoint) = endpoint {
            return match *method {
                Method::GET => match self.tasks.http_out(id, endpoint) {
                    Some(data) => json(StatusCode::OK, &data),
                    None => error(StatusCode::NOT_FOUND, "Not Found"),
                },
                _ => not_allowed("GET"),
            };
        }
        match *method {
            Method::GET => match self.tasks.get(id) {
                Ok(task) => json(StatusCode::OK, &task),
                Err(e) => task_error(&e),
            },
            Method::PATCH => match parse_request(body) {
                Ok(request) => match self.tasks.update(id, request) {
                    Ok(task) => json(StatusCode::OK, &task),
                    Err(e) => task_error(&e),
                },
                Err(response) => *response,
            },
            Method::DELETE => match self.tasks.delete(id) {
                Ok(()) => {
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    response
                }
                Err(e) => task_error(&e),
            },
            _ => not_allowed("DELETE, GET, PATCH"),
        }
    }
}

/// The task id a change on `path` names: the created task's (from the answer) for `POST
/// /kapacitor/v1/tasks`, the path's for `PATCH`/`DELETE /kapacitor/v1/tasks/<id>`.
fn changed_task(method: &Method, path: &str, response: &Response<Full<Bytes>>) -> Option<String> {
    let status = response.status();
    match *method {
        Method::POST if path == TASKS && status == StatusCode::OK => None,
        Method::PATCH | Method::DELETE if status.is_success() => {
            let id = path.strip_prefix("/kapacitor/v1/tasks/")?;
            (!id.contains('/')).then(|| id.to_owned())
        }
        _ => None,
    }
}

/// A `Warning` header value (RFC 7234 form, code 199) naming a peer that did not take a
/// change.
fn warning(failure: &PeerFailure) -> Option<hyper::header::HeaderValue> {
    // A header value is visible ASCII: anything else in the reason becomes `?`.
    let reason: String = lifecycle::error_chain(&failure.error)
        .replace('"', "'")
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    let text = format!(
        "199 processor \"peer {} did not take the change: {reason}\"",
        failure.peer
    );
    hyper::header::HeaderValue::from_str(&text).ok()
}

impl TaskApi {
    /// After a change accepted here: forwards it to every peer (the full definition as a
    /// forwarded define, or the delete), adding a `Warning` per peer that did not take it.
    fn forward(
        &self,
        method: &Method,
        path: &str,
        mut response: Response<Full<Bytes>>,
    ) -> Response<Full<Bytes>> {
        let Some(peers) = &self.peers else {
            return response;
        };
        let id = match changed_task(method, path, &response) {
            Some(id) => Some(id),
            None if *method == Method::POST
                && path == TASKS
                && response.status() == StatusCode::OK =>
            {
                created_id(&response)
            }
            None => None,
        };
        let Some(id) = id else {
            return response;
        };
        let (forward_method, forward_path, body, version) = if *method == Method::DELETE {
            let Some(version) = self.tasks.version_of(&id) else {
                return response;
            };
            (
                Method::DELETE,
                format!("{TASKS}/{id}"),
                Bytes::new(),
                version,
            )
        } else {
            let Some(def) = self.tasks.definition(&id) else {
                return response;
            };
            let Some(version) = def.version.clone() else {
                return response;
            };
            let body = serde_json::to_vec(&def).unwrap_or_default();
            (Method::POST, TASKS.to_owned(), Bytes::from(body), version)
        };
        let failures = tokio::runtime::Handle::current().block_on(peers.forward(
            forward_method,
            &forward_path,
            body,
            &version,
        ));
        for failure in &failures {
            if let Some(value) = warning(failure) {
                response.headers_mut().append("warning", value);
            }
        }
        response
    }

    /// A change forwarded by a peer: applied when newer (the version rule), never forwarded.
    fn answer_forwarded(
        &self,
        method: &Method,
        path: &str,
        version: Option<&str>,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let Some(version) = version.and_then(Version::from_header) else {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("invalid {VERSION_HEADER}: expected `<ns since the epoch> <origin>`"),
            );
        };
        let remote = match *method {
            Method::POST if path == TASKS => match serde_json::from_slice::<TaskDef>(body) {
                Ok(mut def) => {
                    def.version = Some(version);
                    Remote::Defined(def)
                }
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("invalid forwarded task JSON: {e}"),
                    );
                }
            },
            Method::DELETE => match path.strip_prefix("/kapacitor/v1/tasks/") {
                Some(id) if !id.is_empty() && !id.contains('/') => Remote::Deleted(Tombstone {
                    id: id.to_owned(),
                    version,
                }),
                _ => return error(StatusCode::NOT_FOUND, "Not Found"),
            },
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a forwarded change is a POST of a task or a DELETE",
                );
            }
        };
        let id = match &remote {
            Remote::Defined(def) => def.id.clone(),
            Remote::Deleted(tombstone) => tombstone.id.clone(),
        };
        let deleted = matches!(remote, Remote::Deleted(_));
        match self.tasks.apply_remote(remote) {
            Ok(Applied::Taken | Applied::Same) if deleted => {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            }
            Ok(Applied::Taken | Applied::Same) => match self.tasks.get(&id) {
                Ok(task) => json(StatusCode::OK, &task),
                Err(e) => task_error(&e),
            },
            Ok(Applied::Stale) => error(
                StatusCode::CONFLICT,
                &format!("task {id:?} has a newer change on this replica"),
            ),
            Err(e) => task_error(&e),
        }
    }
}

/// The `id` of the task JSON a define answered with.
fn created_id(response: &Response<Full<Bytes>>) -> Option<String> {
    use http_body_util::BodyExt as _;
    let body = response.body().clone();
    let bytes = tokio::runtime::Handle::current()
        .block_on(body.collect())
        .ok()?
        .to_bytes();
    let task: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    task.get("id")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_failure_is_a_valid_warning_header_whatever_its_reason_holds() {
        let failure = PeerFailure {
            peer: "http://processor-1.processor-peers:9092".into(),
            error: crate::ha_sync::Error::Refused {
                peer: "http://processor-1.processor-peers:9092".into(),
                status: 500,
                body: "\"bad\"\nthing… é".into(),
            },
        };
        let value = warning(&failure).expect("a header value");
        let text = value.to_str().expect("visible ASCII");
        assert!(text.starts_with("199 processor \"peer http://processor-1.processor-peers:9092 did not take the change: "), "{text}");
        assert!(text.ends_with("'bad'?thing? ?\""), "{text}");
    }

    #[test]
    fn a_decisions_query_needs_a_task_and_a_limit_within_bounds() {
        assert_eq!(
            DecisionsQuery::parse("task=scale"),
            Ok(DecisionsQuery {
                task: "scale".into(),
                limit: crate::decisions::DEFAULT_LIMIT
            })
        );
        assert_eq!(
            DecisionsQuery::parse("limit=3&other=x&task=a%20b"),
            Ok(DecisionsQuery {
                task: "a b".into(),
                limit: 3
            })
        );
        assert_eq!(
            DecisionsQuery::parse("task=t&limit=10000").map(|q| q.limit),
            Ok(10_000)
        );
        for bad in ["", "task=", "limit=3"] {
            let error = DecisionsQuery::parse(bad).unwrap_err();
            assert!(error.starts_with("missing task"), "{bad}: {error}");
        }
        for bad in ["0", "-1", "x", "10001", "1.5", "99999999999999999999999"] {
            let error = DecisionsQuery::parse(&format!("task=t&limit={bad}")).unwrap_err();
            assert!(error.starts_with("invalid limit"), "{bad}: {error}");
        }
    }
}
