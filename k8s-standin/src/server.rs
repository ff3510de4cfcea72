//! The HTTP edge: binds on loopback, seeds the store, accepts connections and, for each request,
//! records it, authenticates, injects faults, authorizes and reads the body, then hands it to
//! `routes` (or to `watch` for `?watch=true`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::faults::Faults;
use crate::handle::Handle;
use crate::request::{self, RequestInfo};
use crate::resources::{self, ResourceDef};
use crate::routes::{self, Call};
use crate::status::ApiError;
use crate::store::{StatusMode, Store, WorkloadChange, WriteOptions};
use crate::watch::WatchEvent;

/// Every response body: whole (JSON documents) or streamed (watches).
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// A whole answer: `code`, `bytes` of type `content_type`.
pub(crate) fn response(code: u16, bytes: Vec<u8>, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A seeded workload or object was refused by the store.
    #[error("cannot create seeded object {what}")]
    Seed {
        what: String,
        #[source]
        source: ApiError,
    },
    /// TLS could not be set up.
    #[error("cannot serve https")]
    Tls(#[source] crate::tls::TlsError),
    /// A seeded object names a resource we do not serve.
    #[error("seeded object {0} is of a kind the stand-in does not serve")]
    UnknownKind(String),
}

/// One request as the API server's audit log would see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestRecord {
    /// Arrival order, from 1.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string, empty when none.
    pub query: String,
    /// Verb, group, version, namespace, resource, subresource, name.
    #[serde(flatten)]
    pub info: RequestInfo,
    /// Authenticated user, empty when authentication failed.
    pub user: String,
    /// `User-Agent` header.
    pub user_agent: String,
    /// `Content-Type` header (tells the patch type).
    pub content_type: String,
    /// HTTP status answered; 0 while in flight.
    pub status: u16,
    /// Whether an injected fault changed the answer or delayed it.
    pub fault_injected: bool,
}

impl RequestRecord {
    /// `deployments/scale`, the resource as a Role rule names it.
    pub fn rbac_resource(&self) -> String {
        self.info.rbac_resource()
    }
}

/// What requests and the [`Handle`] share, under one lock.
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) auth: crate::auth::Auth,
    pub(crate) faults: Faults,
    /// The request log, oldest first.
    pub(crate) log: VecDeque<RequestRecord>,
    log_limit: usize,
    seq: u64,
}

/// The server's state and channels, held by every connection and the [`Handle`].
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Changes of workloads' spec.replicas.
    pub(crate) changes: broadcast::Sender<WorkloadChange>,
    /// Every stored change, for watch streams (sent by the store under the state lock).
    pub(crate) events: broadcast::Sender<Arc<WatchEvent>>,
    /// Becomes true when the server stops (ends watch streams).
    pub(crate) stopping: watch::Receiver<bool>,
    /// Bumped by `Handle::drop_watches`: every open watch stream ends there, mid-stream.
    pub(crate) drop_watches: watch::Sender<u64>,
    /// The BOOKMARK period of watches that ask for bookmarks.
    pub(crate) bookmark_every: Duration,
    pub(crate) addr: SocketAddr,
    /// The CA clients must trust when serving https.
    pub(crate) ca_pem: Option<String>,
    pub(crate) minor_version: u32,
    max_body_bytes: usize,
}

impl Shared {
    /// Tells subscribers about a change of spec.replicas, if any.
    pub(crate) fn notify(&self, change: Option<WorkloadChange>) {
        if let Some(change) = change {
            let _ = self.changes.send(change);
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the store half-written (writes are single
        // inserts), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The stand-in API server.
pub struct Server;

impl Server {
    /// Binds, seeds the configured objects and serves until the handle shuts it down.
    pub async fn start(config: Config) -> Result<Handle, Error> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(addr.port());
        let mut store = Store::new(seed, config.status_mode);
        store.keep_history(config.watch_history);
        let opts = WriteOptions::at(now_secs());
        for w in &config.workloads {
            let manifest =
                crate::store::workload_manifest(w.kind, &w.namespace, &w.name, w.replicas);
            store
                .create(w.kind.def(), &w.namespace, manifest, opts)
                .map_err(|source| Error::Seed {
                    what: format!("{} {}/{}", w.kind, w.namespace, w.name),
                    source,
                })?;
            // Seeded workloads are already running: their pods exist and are ready.
            if config.status_mode == StatusMode::Manual {
                store
                    .set_status(
                        w.kind,
                        &w.namespace,
                        &w.name,
                        w.replicas,
                        w.replicas,
                        opts.now,
                    )
                    .map_err(|source| Error::Seed {
                        what: format!("status of {} {}/{}", w.kind, w.namespace, w.name),
                        source,
                    })?;
            }
        }
        for obj in &config.objects {
            let what = describe(obj);
            let def = def_of(obj).ok_or_else(|| Error::UnknownKind(what.clone()))?;
            store
                .create(def, namespace_of(obj), obj.clone(), opts)
                .map_err(|source| Error::Seed { what, source })?;
        }
        let mut faults = Faults::default();
        for f in &config.faults {
            faults.push(f.clone());
        }
        let tls = if config.tls {
            Some(crate::tls::generate().map_err(Error::Tls)?)
        } else {
            None
        };
        let (changes, _) = broadcast::channel(1024);
        let (events, _) = broadcast::channel(4096);
        store.publish_to(events.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store,
                auth: config.auth.clone(),
                faults,
                log: VecDeque::new(),
                log_limit: config.request_log_limit.max(1),
                seq: 0,
            }),
            changes,
            events,
            stopping: stop_rx.clone(),
            drop_watches: watch::channel(0).0,
            bookmark_every: Duration::from_millis(config.watch_bookmark_ms.max(1)),
            addr,
            ca_pem: tls.as_ref().map(|t| t.ca_pem.clone()),
            minor_version: config.minor_version,
            max_body_bytes: config.max_body_bytes,
        });
        let grace = Duration::from_millis(config.shutdown_grace_ms);
        let acceptor = tls.map(|t| t.acceptor);
        let task = tokio::spawn(accept_loop(
            listener,
            shared.clone(),
            acceptor,
            stop_rx,
            grace,
        ));
        info!(%addr, "kubernetes api stand-in listening");
        Ok(Handle::new(shared, stop_tx, task))
    }
}

/// `Kind namespace/name` of a manifest, for errors.
pub(crate) fn describe(obj: &Value) -> String {
    format!(
        "{} {}/{}",
        obj.get("kind").and_then(Value::as_str).unwrap_or("?"),
        namespace_of(obj),
        obj.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
    )
}

/// The namespace of a manifest, `default` when unset.
pub(crate) fn namespace_of(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
}

/// The served resource a manifest is of.
pub(crate) fn def_of(obj: &Value) -> Option<&'static ResourceDef> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str)?;
    let kind = obj.get("kind").and_then(Value::as_str)?;
    resources::ALL
        .iter()
        .find(|d| d.group_version() == api_version && d.kind == kind)
}

async fn serve_connection<IO>(
    io: IO,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(serve_request(shared, req).await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                debug!(%error, %peer, "connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = shared.clone();
                let stop = stop.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    match tls {
                        None => serve_connection(stream, shared, stop, peer).await,
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls_stream) => serve_connection(tls_stream, shared, stop, peer).await,
                            Err(error) => debug!(%error, %peer, "tls handshake failed"),
                        },
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    info!("kubernetes api stand-in stopped");
}

fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = response(err.code(), err.to_status_bytes(), "application/json");
    if err.code() == 429 {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    resp
}

fn header(req: &Request<Incoming>, name: hyper::header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// One request, from arrival to the answer recorded in the log.
async fn serve_request(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let params = request::query_params(&query);
    let watch = params
        .iter()
        .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    let info = request::parse(method.as_str(), &path, watch);
    let authorization = header(&req, AUTHORIZATION);
    let accept = header(&req, ACCEPT);
    let content_type = header(&req, CONTENT_TYPE);
    let user_agent = header(&req, USER_AGENT);

    let seq = {
        let mut state = shared.lock();
        state.seq += 1;
        let seq = state.seq;
        if state.log.len() >= state.log_limit {
            state.log.pop_front();
        }
        state.log.push_back(RequestRecord {
            seq,
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            info: info.clone(),
            user: String::new(),
            user_agent: user_agent.clone(),
            content_type: content_type.clone(),
            status: 0,
            fault_injected: false,
        });
        seq
    };
    let finish = |resp: Response<Body>, user: &str, fault: bool| {
        let mut state = shared.lock();
        if let Some(rec) = state.log.iter_mut().rev().find(|r| r.seq == seq) {
            rec.status = resp.status().as_u16();
            rec.user = user.to_string();
            rec.fault_injected = fault;
        }
        debug!(
            seq,
            method = %method,
            path = %path,
            verb = %info.verb,
            resource = %info.rbac_resource(),
            namespace = %info.namespace,
            name = %info.name,
            user,
            status = resp.status().as_u16(),
            "request"
        );
        resp
    };

    let auth = shared
        .lock()
        .auth
        .authenticate(Some(authorization.as_str()).filter(|a| !a.is_empty()));
    let user = match auth {
        Ok(user) => user,
        Err(err) => return finish(error_response(&err), "", false),
    };

    let client = crate::faults::Client {
        user: &user,
        user_agent: &user_agent,
    };
    let injection = shared.lock().faults.take(&path, &info, client);
    // A fault that applies the request answers its status after the request was carried out.
    let mut answer_after = None;
    if let Some(inj) = injection {
        match inj.status {
            Some(code) if inj.apply => answer_after = Some((code, inj.delay, inj.retry_after)),
            status => {
                if !inj.delay.is_zero() {
                    tokio::time::sleep(inj.delay).await;
                }
                if let Some(code) = status {
                    let resp = injected_response(code, &info, inj.retry_after);
                    return finish(resp, &user, true);
                }
            }
        }
    }
    let fault = injection.is_some();

    let resp = carry_out(&shared, req, &user, &info, params, accept, content_type).await;
    match answer_after {
        // The request's own answer is dropped (a watch stream ends with it).
        Some((code, delay, retry_after)) => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            finish(injected_response(code, &info, retry_after), &user, true)
        }
        None => finish(resp, &user, fault),
    }
}

/// The answer to an injected status, with its `Retry-After` header when the fault asks for one.
fn injected_response(code: u16, info: &RequestInfo, retry_after: Option<u32>) -> Response<Body> {
    let mut resp = error_response(&injected_error(code, info));
    if let Some(seconds) = retry_after {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(seconds));
    }
    resp
}

/// The API server's error for an injected status.
fn injected_error(code: u16, info: &RequestInfo) -> ApiError {
    ApiError::injected(code, &info.api_group, &info.resource, &info.name).unwrap_or_else(|| {
        ApiError::Internal(format!("injected fault with unmodelled code {code}"))
    })
}

/// Authorizes, reads the body and answers an authenticated request.
async fn carry_out(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    user: &str,
    info: &RequestInfo,
    params: Vec<(String, String)>,
    accept: String,
    content_type: String,
) -> Response<Body> {
    // As the API server's RequestInfo resolver: a list or watch narrowed to one object by
    // `fieldSelector=metadata.name=X` is authorized as a request for X, so a rule with
    // `resourceNames` allows it (a follower's watch of its Lease).
    let named = request::named_by_field_selector(info, &params);
    let authorized = shared
        .lock()
        .auth
        .authorize(user, named.as_ref().unwrap_or(info));
    if let Err(err) = authorized {
        return error_response(&err);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = match Limited::new(req.into_body(), shared.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error_response(&ApiError::TooLarge(shared.max_body_bytes)),
    };
    let call = Call {
        method,
        path,
        params,
        info: info.clone(),
        accept,
        content_type,
        body,
    };
    let answered = if call.info.is_resource_request && call.info.verb == "watch" {
        crate::watch::start(shared, &call)
    } else {
        routes::answer(shared, &call)
    };
    answered.unwrap_or_else(|err| error_response(&err))
}
