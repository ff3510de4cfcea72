//! The four patch formats the API server accepts, applied to JSON documents: JSON merge patch
//! (RFC 7386), JSON patch (RFC 6902), strategic merge patch (merge with lists of named objects
//! merged by `name`), and server-side apply (treated as a merge of the applied configuration).

use serde_json::{Map, Value};

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not JSON (or not the shape its format requires).
    #[error("invalid patch body: {0}")]
    Malformed(String),
    /// A JSON patch operation failed (missing path, failed `test`, bad index).
    #[error("json patch operation {index} ({op} {path}) failed: {reason}")]
    Operation {
        index: usize,
        op: String,
        path: String,
        reason: String,
    },
}

/// The patch formats, by their `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (we accept JSON, which is YAML).
    Apply,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value, parameters ignored.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// Applies `patch` (the raw body) of `kind` to `target`, returning the patched document.
pub fn apply(kind: PatchType, target: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let patch: Value =
        serde_json::from_slice(patch).map_err(|e| PatchError::Malformed(e.to_string()))?;
    match kind {
        PatchType::Json => json_patch(target, &patch),
        PatchType::Merge | PatchType::Apply => {
            if !patch.is_object() {
                return Err(PatchError::Malformed("patch must be a JSON object".into()));
            }
            Ok(merge_patch(target, &patch))
        }
        PatchType::StrategicMerge => {
            if !patch.is_object() {
                return Err(PatchError::Malformed("patch must be a JSON object".into()));
            }
            Ok(strategic_merge(target, &patch))
        }
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch_map) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch_map {
        if value.is_null() {
            out.remove(key);
        } else {
            let merged = merge_patch(out.get(key).unwrap_or(&Value::Null), value);
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

/// Strategic merge patch, the subset kubectl produces for the types we serve: maps merge, `null`
/// deletes, `$patch: replace|delete` on a map, lists of objects that all carry `name` merge by
/// name (with `$patch: delete` items removing), other lists replace; other `$` directives
/// (`$setElementOrder/…`, `$retainKeys`) are dropped.
pub fn strategic_merge(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch_map) = patch else {
        return patch.clone();
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch_map.clone();
            replaced.remove("$patch");
            return Value::Object(strip_directives(&replaced));
        }
        Some("delete") => return Value::Null,
        _ => {}
    }
    let mut out = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            out.remove(key);
            continue;
        }
        let merged = match (out.get(key), value) {
            (Some(Value::Array(old)), Value::Array(new)) if is_named_list(old, new) => {
                merge_named_list(old, new)
            }
            (old, Value::Object(_)) => strategic_merge(old.unwrap_or(&Value::Null), value),
            (_, other) => strip_value(other),
        };
        if merged.is_null() {
            out.remove(key);
        } else {
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

fn is_named_list(old: &[Value], new: &[Value]) -> bool {
    let named = |v: &Value| v.get("name").is_some_and(Value::is_string);
    !new.is_empty() && new.iter().all(named) && old.iter().all(named)
}

fn merge_named_list(old: &[Value], new: &[Value]) -> Value {
    let mut out: Vec<Value> = old.to_vec();
    for item in new {
        let name = item.get("name");
        let position = out.iter().position(|o| o.get("name") == name);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = strategic_merge(slot, item);
                }
            }
            (None, false) => out.push(strip_value(item)),
        }
    }
    Value::Array(out)
}

fn strip_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_value(v)))
        .collect()
}

fn strip_value(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(strip_directives(m)),
        Value::Array(items) => Value::Array(items.iter().map(strip_value).collect()),
        other => other.clone(),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::Malformed(
            "json patch must be an array of operations".into(),
        ));
    };
    let mut doc = target.clone();
    for (index, op) in ops.iter().enumerate() {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let fail = |reason: &str| PatchError::Operation {
            index,
            op: name.to_string(),
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| fail("missing value"))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("missing from"))
        };
        match name {
            "add" => add(&mut doc, path, value()?).map_err(|r| fail(&r))?,
            "remove" => {
                remove(&mut doc, path).map_err(|r| fail(&r))?;
            }
            "replace" => {
                let v = value()?;
                let slot = pointer_mut(&mut doc, path).ok_or_else(|| fail("path not found"))?;
                *slot = v;
            }
            "move" => {
                let from = from()?;
                let v = remove(&mut doc, from).map_err(|r| fail(&r))?;
                add(&mut doc, path, v).map_err(|r| fail(&r))?;
            }
            "copy" => {
                let v = doc
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| fail("from path not found"))?;
                add(&mut doc, path, v).map_err(|r| fail(&r))?;
            }
            "test" => {
                let expected = value()?;
                if doc.pointer(path) != Some(&expected) {
                    return Err(fail("testing value failed"));
                }
            }
            _ => return Err(fail("unknown operation")),
        }
    }
    Ok(doc)
}

fn pointer_mut<'a>(doc: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    if path.is_empty() {
        Some(doc)
    } else {
        doc.pointer_mut(path)
    }
}

/// Splits `/a/b/c` into the parent pointer `/a/b` and the unescaped last token `c`.
fn split_parent(path: &str) -> Result<(&str, String), String> {
    let cut = path
        .rfind('/')
        .ok_or_else(|| "path must start with /".to_string())?;
    let (parent, last) = path.split_at(cut);
    let token = last
        .get(1..)
        .unwrap_or("")
        .replace("~1", "/")
        .replace("~0", "~");
    Ok((parent, token))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, token) = split_parent(path)?;
    match pointer_mut(doc, parent) {
        Some(Value::Object(map)) => {
            map.insert(token, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = if token == "-" {
                items.len()
            } else {
                token
                    .parse::<usize>()
                    .map_err(|_| format!("invalid array index {token:?}"))?
            };
            if index > items.len() {
                return Err(format!("array index {index} out of bounds"));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err("path not found".to_string()),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, token) = split_parent(path)?;
    match pointer_mut(doc, parent) {
        Some(Value::Object(map)) => map.remove(&token).ok_or_else(|| "path not found".into()),
        Some(Value::Array(items)) => {
            let index = token
                .parse::<usize>()
                .map_err(|_| format!("invalid array index {token:?}"))?;
            if index >= items.len() {
                return Err(format!("array index {index} out of bounds"));
            }
            Ok(items.remove(index))
        }
        _ => Err("path not found".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn scale() -> Value {
        json!({"metadata": {"name": "app", "resourceVersion": "5"}, "spec": {"replicas": 1}})
    }

    #[test]
    fn merge_patch_sets_replicas_and_keeps_the_rest() {
        let out = apply(PatchType::Merge, &scale(), br#"{"spec":{"replicas":3}}"#);
        assert_eq!(
            out,
            Ok(
                json!({"metadata": {"name": "app", "resourceVersion": "5"}, "spec": {"replicas": 3}})
            )
        );
    }

    #[test]
    fn merge_patch_null_deletes_a_key() {
        let out = merge_patch(&json!({"a": 1, "b": {"c": 2}}), &json!({"b": null}));
        assert_eq!(out, json!({"a": 1}));
    }

    #[test]
    fn json_patch_replace_test_add_remove_move_copy() {
        let patch = json!([
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 4},
            {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
            {"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"},
            {"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/c"},
            {"op": "remove", "path": "/metadata/resourceVersion"}
        ]);
        assert_eq!(
            json_patch(&scale(), &patch),
            Ok(
                json!({"metadata": {"name": "app", "labels": {"name": "app", "c": "b"}}, "spec": {"replicas": 4}})
            )
        );
    }

    #[test]
    fn json_patch_failed_test_names_the_operation() {
        let patch = br#"[{"op":"test","path":"/spec/replicas","value":2}]"#;
        let err = apply(PatchType::Json, &scale(), patch);
        assert!(
            matches!(&err, Err(PatchError::Operation { index: 0, op, reason, .. }) if op == "test" && reason == "testing value failed"),
            "{err:?}"
        );
    }

    #[test]
    fn json_patch_on_a_missing_path_fails() {
        let patch = json!([{"op": "replace", "path": "/status/replicas", "value": 2}]);
        assert!(json_patch(&scale(), &patch).is_err());
        let patch = json!([{"op": "add", "path": "/spec/x/y", "value": 2}]);
        assert!(json_patch(&scale(), &patch).is_err());
    }

    #[test]
    fn json_patch_array_indices_and_append() {
        let doc = json!({"l": [1, 2]});
        let patch = json!([
            {"op": "add", "path": "/l/-", "value": 3},
            {"op": "add", "path": "/l/0", "value": 0},
            {"op": "remove", "path": "/l/1"}
        ]);
        assert_eq!(json_patch(&doc, &patch), Ok(json!({"l": [0, 2, 3]})));
        let bad = json!([{"op": "add", "path": "/l/9", "value": 0}]);
        assert!(json_patch(&doc, &bad).is_err());
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let doc = json!({"spec": {"containers": [
            {"name": "app", "image": "app:1"},
            {"name": "agent", "image": "agent:1"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "agent"}],
            "containers": [{"name": "app", "image": "app:2"}, {"name": "agent", "$patch": "delete"}]
        }});
        assert_eq!(
            strategic_merge(&doc, &patch),
            json!({"spec": {"containers": [{"name": "app", "image": "app:2"}]}})
        );
    }

    #[test]
    fn strategic_merge_replaces_plain_lists_and_honours_patch_replace() {
        let doc = json!({"args": ["a", "b"], "m": {"x": 1, "y": 2}});
        let patch = json!({"args": ["c"], "m": {"$patch": "replace", "z": 3}});
        assert_eq!(
            strategic_merge(&doc, &patch),
            json!({"args": ["c"], "m": {"z": 3}})
        );
    }

    #[test]
    fn content_types_select_the_patch_type() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn a_body_that_is_not_json_is_malformed() {
        assert!(matches!(
            apply(PatchType::Merge, &scale(), b"{spec"),
            Err(PatchError::Malformed(_))
        ));
        assert!(matches!(
            apply(PatchType::Json, &scale(), b"{}"),
            Err(PatchError::Malformed(_))
        ));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z/~0-9-]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z$/~0-9-]{0,5}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn no_patch_body_panics_any_format(target in arb_json(), body in prop::collection::vec(any::<u8>(), 0..64)) {
            for kind in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge, PatchType::Apply] {
                let _ = apply(kind, &target, &body);
            }
        }

        #[test]
        fn no_json_patch_document_panics(target in arb_json(), patch in arb_json()) {
            let _ = json_patch(&target, &patch);
            let _ = strategic_merge(&target, &patch);
        }

        #[test]
        fn a_merge_patch_applied_twice_equals_once(target in arb_json(), patch in arb_json()) {
            let once = merge_patch(&target, &patch);
            prop_assert_eq!(merge_patch(&once, &patch), once);
        }
    }
}
