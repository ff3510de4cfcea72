//! Routes an authorized request: discovery documents and health checks, or a verb on the
//! store (get, list, create, update, patch, delete; `/scale`, `/status`; kubectl's Tables),
//! answered as JSON. Watches are `watch`'s.

use bytes::Bytes;
use hyper::{Method, Response};
use serde_json::Value;
use tracing::info;

use crate::discovery;
use crate::patch::PatchType;
use crate::request::RequestInfo;
use crate::resources;
use crate::selector::{FieldSelector, Selector};
use crate::server::{Body, Shared, now_secs, response};
use crate::status::{ApiError, Result as ApiResult};
use crate::store::{Part, WriteOptions};
use crate::table::{self, IncludeObject};

/// Everything the router needs from one request.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: String,
    /// Query parameters, percent-decoded.
    pub(crate) params: Vec<(String, String)>,
    pub(crate) info: RequestInfo,
    /// `Accept` header.
    pub(crate) accept: String,
    /// `Content-Type` header.
    pub(crate) content_type: String,
    pub(crate) body: Bytes,
}

impl Call {
    /// `labelSelector` and `fieldSelector`, empty when absent.
    pub(crate) fn selectors(&self) -> ApiResult<(Selector, FieldSelector)> {
        let labels = Selector::parse(self.param("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields = FieldSelector::parse(self.param("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if self.info.api_group.is_empty()
            && self.info.resource == crate::resources::PODS.plural
            && let Some(message) = crate::pods::unsupported_field_label(&fields.fields())
        {
            return Err(ApiError::BadRequest(message));
        }
        Ok((labels, fields))
    }

    /// The first value of query parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
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

/// The answer to an authorized request other than a watch.
pub(crate) fn answer(shared: &Shared, call: &Call) -> ApiResult<Response<Body>> {
    let reply = route(shared, call)?;
    let bytes = serde_json::to_vec(&reply.body).unwrap_or_default();
    Ok(response(reply.code, bytes, reply.content_type))
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
                return Ok(Reply::json(200, table::render_one(def, &obj, include, now)));
            }
            return Ok(Reply::json(200, obj));
        }
        ("list", "") => {
            let (labels, fields) = call.selectors()?;
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
    }
    shared.notify(written.change);
    Ok(Reply::json(
        if written.created { 201 } else { 200 },
        written.object,
    ))
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
