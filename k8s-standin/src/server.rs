//! The HTTP edge: accepts connections on loopback, records every request, authenticates,
//! injects faults, authorizes, routes to discovery or the store, and answers JSON.

use std::collections::BTreeSet;
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
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use crate::auth::Rule;
use crate::config::Config;
use crate::discovery;
use crate::faults::{Fault, Faults};
use crate::patch::PatchType;
use crate::request::{self, RequestInfo};
use crate::resources::{self, ResourceDef, WorkloadKind};
use crate::selector::{FieldSelector, Selector};
use crate::status::{ApiError, Result as ApiResult};
use crate::store::{Part, StatusMode, Store, WorkloadChange, WorkloadView, WriteOptions};
use crate::table::{self, IncludeObject};
use crate::watch::{self as watching, EventType, WatchEvent, WatchFilter};

/// Every response body: whole (JSON documents) or streamed (watches).
type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes)).boxed()
}

/// A watch stream's body: the lines a watch task sends, until it drops its sender.
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|line| line.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
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

struct State {
    store: Store,
    auth: crate::auth::Auth,
    faults: Faults,
    log: std::collections::VecDeque<RequestRecord>,
    log_limit: usize,
    seq: u64,
}

struct Shared {
    state: Mutex<State>,
    changes: broadcast::Sender<WorkloadChange>,
    /// Every stored change, for watch streams (sent by the store under the state lock).
    events: broadcast::Sender<Arc<WatchEvent>>,
    /// Becomes true when the server stops (ends watch streams).
    stopping: watch::Receiver<bool>,
    addr: SocketAddr,
    /// The CA clients must trust when serving https.
    ca_pem: Option<String>,
    minor_version: u32,
    max_body_bytes: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the store half-written (writes are single
        // inserts), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn now_secs() -> u64 {
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
        let opts = WriteOptions {
            dry_run: false,
            now: now_secs(),
        };
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
            let ns = obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string();
            store
                .create(def, &ns, obj.clone(), opts)
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
                log: std::collections::VecDeque::new(),
                log_limit: config.request_log_limit.max(1),
                seq: 0,
            }),
            changes,
            events,
            stopping: stop_rx.clone(),
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
        Ok(Handle {
            shared,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

fn describe(obj: &Value) -> String {
    format!(
        "{} {}/{}",
        obj.get("kind").and_then(Value::as_str).unwrap_or("?"),
        obj.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default"),
        obj.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
    )
}

fn def_of(obj: &Value) -> Option<&'static ResourceDef> {
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
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
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

/// A running stand-in; dropping it stops the server.
pub struct Handle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Handle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://…` when serving TLS.
    pub fn url(&self) -> String {
        let scheme = if self.shared.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.shared.addr)
    }

    /// The CA certificate (PEM) clients must trust, when serving TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.shared.ca_pem.clone()
    }

    /// A kubeconfig for kubectl or kube (`Kubeconfig::from_yaml`): one cluster, context and user
    /// named `standin`, namespace `default`, with the bearer token when given and the CA when
    /// serving TLS.
    pub fn kubeconfig(&self, token: Option<&str>) -> String {
        kubeconfig_yaml(&self.url(), token, self.shared.ca_pem.as_deref())
    }

    /// Every request so far (the last `Config::request_log_limit`), in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.iter().cloned().collect()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// The distinct (api group, resource incl. subresource, verb) triples of resource requests
    /// that were allowed, to compare with a Role.
    pub fn permissions_used(&self) -> BTreeSet<(String, String, String)> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.info.is_resource_request && r.status != 401 && r.status != 403)
            .map(|r| {
                (
                    r.info.api_group.clone(),
                    r.rbac_resource(),
                    r.info.verb.clone(),
                )
            })
            .collect()
    }

    /// Adds a fault (earlier faults take precedence).
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// How many faults are still armed.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// Replaces the authorization rules (`None` allows everything).
    pub fn set_rules(&self, rules: Option<Vec<Rule>>) {
        self.shared.lock().auth.rules = rules;
    }

    /// Accepts another bearer token (turns authentication on if it was off).
    pub fn add_token(&self, token: &str, user: &str) {
        self.shared.lock().auth.tokens.push(crate::auth::TokenUser {
            token: token.to_string(),
            user: user.to_string(),
        });
    }

    /// A workload's replicas, status, generation and resourceVersion.
    pub fn workload(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Option<WorkloadView> {
        self.shared.lock().store.workload(kind, namespace, name)
    }

    /// Shorthand for a Deployment's spec.replicas.
    pub fn deployment_replicas(&self, namespace: &str, name: &str) -> Option<i64> {
        self.workload(WorkloadKind::Deployment, namespace, name)
            .map(|w| w.replicas)
    }

    /// Changes spec.replicas as another actor would (bumps resourceVersion and generation).
    pub fn set_replicas(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i64,
    ) -> ApiResult<()> {
        let written =
            self.shared
                .lock()
                .store
                .set_replicas(kind, namespace, name, replicas, now_secs())?;
        if let Some(change) = written.change {
            let _ = self.shared.changes.send(change);
        }
        Ok(())
    }

    /// Sets status as the lab's kubelet: `replicas` pods, `ready` of them ready.
    pub fn set_status(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i64,
        ready: i64,
    ) -> ApiResult<()> {
        self.shared
            .lock()
            .store
            .set_status(kind, namespace, name, replicas, ready, now_secs())
            .map(|_| ())
    }

    /// Changes of workloads' spec.replicas from now on (API writes and `set_replicas`).
    pub fn subscribe(&self) -> broadcast::Receiver<WorkloadChange> {
        self.shared.changes.subscribe()
    }

    /// Every stored object of a resource, e.g. `resources::CORE_EVENTS`, with kind.
    pub fn objects(&self, def: &ResourceDef) -> Vec<Value> {
        self.shared.lock().store.objects_of(def)
    }

    /// One stored object, with kind and apiVersion.
    pub fn object(&self, def: &ResourceDef, namespace: &str, name: &str) -> Option<Value> {
        self.shared.lock().store.get(def, namespace, name).ok()
    }

    /// Core v1 and events.k8s.io/v1 Events, in that order.
    pub fn events(&self) -> Vec<Value> {
        let state = self.shared.lock();
        let mut out = state.store.objects_of(&resources::CORE_EVENTS);
        out.extend(state.store.objects_of(&resources::EVENTS_V1));
        out
    }

    /// Creates an object (full manifest; namespace `default` when unset).
    pub fn create(&self, object: Value) -> ApiResult<Value> {
        let def = def_of(&object).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{} is of a kind the stand-in does not serve",
                describe(&object)
            ))
        })?;
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let written = self.shared.lock().store.create(
            def,
            &ns,
            object,
            WriteOptions {
                dry_run: false,
                now: now_secs(),
            },
        )?;
        if let Some(change) = written.change {
            let _ = self.shared.changes.send(change);
        }
        Ok(written.object)
    }

    /// Stops accepting, lets open connections finish within the grace period, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The kubeconfig text for a server URL, optional token and optional CA (PEM).
pub fn kubeconfig_yaml(url: &str, token: Option<&str>, ca_pem: Option<&str>) -> String {
    use base64::Engine as _;
    let ca = match ca_pem {
        Some(pem) => format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => String::new(),
    };
    let user = match token {
        Some(t) => format!("  user:\n    token: {t:?}\n"),
        None => "  user: {}\n".to_string(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {url}\n{ca}contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n    namespace: default\ncurrent-context: standin\npreferences: {{}}\nusers:\n- name: standin\n{user}"
    )
}

/// A successful answer: status code, JSON body and its media type.
struct Reply {
    code: u16,
    body: Value,
    content_type: &'static str,
}

impl Reply {
    fn json(code: u16, body: Value) -> Reply {
        Reply {
            code,
            body,
            content_type: "application/json",
        }
    }
}

fn json_response(reply: &Reply) -> Response<Body> {
    let bytes = serde_json::to_vec(&reply.body).unwrap_or_default();
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() =
        StatusCode::from_u16(reply.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = Response::new(full(err.to_status_bytes()));
    *resp.status_mut() =
        StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
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

/// Query parameters, percent-decoded.
fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything the router needs from one request.
struct Call {
    method: Method,
    path: String,
    params: Vec<(String, String)>,
    info: RequestInfo,
    accept: String,
    content_type: String,
    body: Bytes,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let params = query_params(&query);
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
            user_agent,
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

    let injection = shared.lock().faults.take(&path, &info);
    // A fault that applies the request answers its status after the request was carried out.
    let mut answer_after = None;
    if let Some(inj) = injection {
        match inj.status {
            Some(code) if inj.apply => answer_after = Some((code, inj.delay)),
            status => {
                if !inj.delay.is_zero() {
                    tokio::time::sleep(inj.delay).await;
                }
                if let Some(code) = status {
                    return finish(error_response(&injected_error(code, &info)), &user, true);
                }
            }
        }
    }
    let fault = injection.is_some();

    let resp = carry_out(&shared, req, &user, &info, params, accept, content_type).await;
    match answer_after {
        // The request's own answer is dropped (a watch stream ends with it).
        Some((code, delay)) => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            finish(error_response(&injected_error(code, &info)), &user, true)
        }
        None => finish(resp, &user, fault),
    }
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
    let authorized = shared.lock().auth.authorize(user, info);
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
    if call.info.is_resource_request && call.info.verb == "watch" {
        return match start_watch(shared, &call) {
            Ok(resp) => resp,
            Err(err) => error_response(&err),
        };
    }
    match route(shared, &call) {
        Ok(reply) => json_response(&reply),
        Err(err) => error_response(&err),
    }
}

fn route(shared: &Shared, call: &Call) -> ApiResult<Reply> {
    if !call.info.is_resource_request {
        return discovery_route(shared, call);
    }
    let info = &call.info;
    let def = resources::find(&info.api_group, &info.api_version, &info.resource)
        .ok_or(ApiError::NoRoute)?;
    if def.namespaced && info.namespace.is_empty() && !info.name.is_empty() {
        return Err(ApiError::NoRoute);
    }
    let now = now_secs();
    let opts = WriteOptions {
        dry_run: call.param("dryRun") == Some("All"),
        now,
    };
    let sub = info.subresource.as_str();
    let part = match sub {
        "" => Part::Main,
        "status" if def.has_status => Part::Status,
        "scale" if def.scalable => Part::Main,
        _ => return Err(ApiError::NoRoute),
    };
    let wants_table = call.accept.contains("as=Table");
    let include = IncludeObject::from_query(call.param("includeObject"));
    let ns = info.namespace.as_str();
    let name = info.name.as_str();
    let mut state = shared.lock();
    let store = &mut state.store;
    let written = match (info.verb.as_str(), sub) {
        ("get", "scale") => return Ok(Reply::json(200, store.get_scale(def, ns, name)?)),
        ("get", _) => {
            let obj = store.get(def, ns, name)?;
            if wants_table {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                return Ok(Reply::json(
                    200,
                    table::render(def, &[obj], &rv, include, now),
                ));
            }
            return Ok(Reply::json(200, obj));
        }
        ("list", "") => {
            let labels = Selector::parse(call.param("labelSelector").unwrap_or(""))
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let fields = FieldSelector::parse(call.param("fieldSelector").unwrap_or(""))
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let list = store.list(def, ns, &labels, &fields);
            if wants_table {
                let items = list
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let rv = store.revision().to_string();
                return Ok(Reply::json(
                    200,
                    table::render(def, &items, &rv, include, now),
                ));
            }
            return Ok(Reply::json(200, list));
        }
        ("create", "") => {
            if ns.is_empty() && def.namespaced {
                return Err(ApiError::NoRoute);
            }
            store.create(def, ns, decode_body(call)?, opts)?
        }
        ("update", "scale") => store.update_scale(def, ns, name, &decode_body(call)?, opts)?,
        ("update", _) => store.update(def, ns, name, decode_body(call)?, part, opts)?,
        ("patch", _) => {
            let kind = PatchType::from_content_type(&call.content_type)
                .ok_or(ApiError::UnsupportedMediaType)?;
            if kind == PatchType::Apply && call.param("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::invalid(crate::status::FieldError {
                    group: "meta.k8s.io".into(),
                    kind: "PatchOptions".into(),
                    name: String::new(),
                    field: "fieldManager".into(),
                    value: None,
                    detail: "is required for apply patch".into(),
                }));
            }
            if sub == "scale" {
                store.patch_scale(def, ns, name, kind, &call.body, opts)?
            } else {
                store.patch(def, ns, name, kind, &call.body, part, opts)?
            }
        }
        ("delete", "") => return Ok(Reply::json(200, store.delete(def, ns, name)?)),
        _ => return Err(ApiError::MethodNotAllowed),
    };
    drop(state);
    if let Some(change) = &written.change {
        info!(kind = %change.kind, namespace = %change.namespace, name = %change.name,
            previous = ?change.previous, replicas = change.replicas, "workload replicas changed");
        let _ = shared.changes.send(change.clone());
    }
    Ok(Reply::json(
        if written.created { 201 } else { 200 },
        written.object,
    ))
}

/// The longest a watch stays open (the API server picks 30 to 60 minutes).
const MAX_WATCH: Duration = Duration::from_secs(1800);

/// Starts a watch stream: the initial or resumed events, then live ones, as JSON lines.
fn start_watch(shared: &Arc<Shared>, call: &Call) -> ApiResult<Response<Body>> {
    let info = &call.info;
    let def = resources::find(&info.api_group, &info.api_version, &info.resource)
        .ok_or(ApiError::NoRoute)?;
    if !info.subresource.is_empty() {
        return Err(ApiError::NoRoute);
    }
    let labels = Selector::parse(call.param("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let fields = FieldSelector::parse(call.param("fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let name = if info.name.is_empty() {
        fields.name().map(str::to_string)
    } else {
        Some(info.name.clone())
    };
    let timeout = call
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(MAX_WATCH)
        .min(MAX_WATCH);
    let rv = call.param("resourceVersion").unwrap_or("");
    let start_rv: Option<u64> = match rv {
        "" | "0" => None,
        text => Some(
            text.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {text:?}")))?,
        ),
    };
    let send_initial = call.param("sendInitialEvents") == Some("true");
    let table = call
        .accept
        .contains("as=Table")
        .then(|| IncludeObject::from_query(call.param("includeObject")));
    let filter = WatchFilter::new(def, &info.namespace, name, labels, fields);
    let render = move |object: &Value| -> Value {
        match table {
            Some(include) => {
                let rv = object
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                table::render(def, std::slice::from_ref(object), &rv, include, now_secs())
            }
            None => object.clone(),
        }
    };

    let mut initial: Vec<Vec<u8>> = Vec::new();
    let mut expired = false;
    let (live, from_rv) = {
        let state = shared.lock();
        let live = shared.events.subscribe();
        let current = state.store.revision();
        match start_rv {
            None => {
                for obj in state.store.matching(
                    def,
                    &filter.namespace,
                    &filter.labels,
                    &filter.fields,
                    filter.name.as_deref(),
                ) {
                    initial.push(watching::line(EventType::Added, &render(&obj)));
                }
            }
            Some(from) => match state.store.history_since(from) {
                Ok(events) => {
                    for event in events.iter().filter(|e| filter.matches(e)) {
                        initial.push(watching::line(event.kind, &render(&event.object)));
                    }
                }
                Err(e) => {
                    initial.push(watching::expired_line(from, e.oldest));
                    expired = true;
                }
            },
        }
        if send_initial && !expired {
            let bookmark = serde_json::json!({
                "type": "BOOKMARK",
                "object": {"kind": def.kind, "apiVersion": def.group_version(),
                    "metadata": {"resourceVersion": current.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}
            });
            let mut line = serde_json::to_vec(&bookmark).unwrap_or_default();
            line.push(b'\n');
            initial.push(line);
        }
        (live, current)
    };

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let mut stopping = shared.stopping.clone();
    tokio::spawn(async move {
        let mut live = live;
        for line in initial {
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
        if expired {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) if event.revision > from_rv && filter.matches(&event) => {
                        let line = watching::line(event.kind, &render(&event.object));
                        if tx.send(Bytes::from(line)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Too slow a reader: end with 410 Expired so the client relists.
                        let _ = tx.send(Bytes::from(watching::expired_line(from_rv, from_rv))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = &mut deadline => return,
                _ = stopping.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let mut resp = Response::new(ChannelBody { rx }.boxed());
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// Decodes a create or update body, which must be JSON (`Content-Type` absent, `application/json`
/// or `*/*`).
fn decode_body(call: &Call) -> ApiResult<Value> {
    let media = call
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(media.as_str(), "" | "application/json" | "*/*") {
        return Err(ApiError::UnsupportedBody);
    }
    decode_json(&call.body)
}

fn decode_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("the body of the request could not be decoded: {e}"))
    })
}

fn discovery_route(shared: &Shared, call: &Call) -> ApiResult<Reply> {
    let parts: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    let doc = match parts.as_slice() {
        ["version"] => Some(discovery::version(shared.minor_version)),
        ["api"] => Some(discovery::core_versions(&shared.addr.to_string())),
        ["apis"] => Some(discovery::group_list()),
        ["api", version] => discovery::resource_list("", version),
        ["apis", group] => discovery::group(group),
        ["apis", group, version] => discovery::resource_list(group, version),
        ["openapi", "v3"] => Some(discovery::openapi_v3_index()),
        ["openapi", "v3", "api", version] => discovery::openapi_v3_group_version("", version),
        ["openapi", "v3", "apis", group, version] => {
            discovery::openapi_v3_group_version(group, version)
        }
        ["healthz" | "livez" | "readyz"] => {
            return Ok(Reply::json(200, Value::String("ok".into())));
        }
        _ => None,
    };
    let doc = doc.ok_or(ApiError::NoRoute)?;
    if call.method != Method::GET && call.method != Method::HEAD {
        return Err(ApiError::MethodNotAllowed);
    }
    let root = matches!(parts.as_slice(), ["api"] | ["apis"]);
    if root && discovery::accepts_aggregated_v2(&call.accept) {
        return Ok(Reply {
            code: 200,
            body: discovery::aggregated(parts.as_slice() == ["api"]),
            content_type: discovery::AGGREGATED_V2,
        });
    }
    Ok(Reply::json(200, doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_selectors_and_bad_escapes() {
        assert_eq!(percent_decode("app%3Dapp%2Cenv%21%3Dx"), "app=app,env!=x");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn kubeconfig_names_server_and_token() {
        let text = kubeconfig_yaml("http://127.0.0.1:1", Some("abc"), None);
        assert!(text.contains("server: http://127.0.0.1:1\n"));
        assert!(text.contains("token: \"abc\"\n"));
        assert!(!text.contains("certificate-authority-data"));
        assert!(kubeconfig_yaml("http://x", None, None).contains("user: {}\n"));
        let tls = kubeconfig_yaml("https://x", None, Some("PEM"));
        assert!(tls.contains("certificate-authority-data: UEVN\n"));
    }
}
