//! What the API server refuses before anything is stored: a body that is not an object of the
//! resource's kind, in the request's namespace, named as on the URL; names that are not DNS-1123
//! subdomains.

use serde_json::Value;

use super::meta_str;
use crate::resources::ResourceDef;
use crate::status::{ApiError, Result};

/// A create or update body: an object of the resource's kind, in the request's namespace.
pub(super) fn check_body(def: &ResourceDef, body: &Value, namespace: &str) -> Result<()> {
    if !body.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be an object".into(),
        ));
    }
    check_kind(def, body)?;
    let body_ns = meta_str(body, "namespace");
    if def.namespaced && !body_ns.is_empty() && body_ns != namespace {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    Ok(())
}

/// A PUT body names the object on the URL.
pub(super) fn check_name(body: &Value, name: &str) -> Result<()> {
    let body_name = meta_str(body, "name");
    if body_name != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

fn check_kind(def: &ResourceDef, body: &Value) -> Result<()> {
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or(def.kind);
    let api_version = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| def.group_version());
    if kind != def.kind || api_version != def.group_version() {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            def.group_version()
        )));
    }
    Ok(())
}

/// DNS-1123 subdomain, the rule for the names of the objects we serve.
pub(super) fn validate_name(def: &ResourceDef, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(crate::status::FieldError {
            group: def.group.into(),
            kind: def.kind.into(),
            name: name.into(),
            field: "metadata.name".into(),
            value: Some(format!("{name:?}")),
            detail: "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into(),
        }))
    }
}
