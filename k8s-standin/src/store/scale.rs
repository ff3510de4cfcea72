//! The `/scale` subresource: a workload seen as an `autoscaling/v1` Scale, read and written
//! (PUT, or a patch applied to the Scale) through the object store.

use serde_json::{Map, Value, json};

use super::validation::check_name;
use super::{Part, Store, WriteOptions, Written, apply_patch, meta_str, replicas_of, set_in};
use crate::patch::PatchType;
use crate::resources::ResourceDef;
use crate::selector::selector_string;
use crate::status::{ApiError, Result};

impl Store {
    /// GET `/scale`.
    pub fn get_scale(&self, def: &ResourceDef, namespace: &str, name: &str) -> Result<Value> {
        Ok(scale_of(&self.get(def, namespace, name)?))
    }

    /// PUT `/scale` with an `autoscaling/v1` Scale body.
    pub fn update_scale(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        body: &Value,
        opts: WriteOptions,
    ) -> Result<Written> {
        let old = self.get(def, namespace, name)?;
        self.write_scale(def, namespace, name, &old, body, opts)
    }

    /// PATCH `/scale`: the patch applies to the Scale, which is then written like a PUT.
    #[allow(clippy::too_many_arguments)]
    pub fn patch_scale(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        kind: PatchType,
        body: &[u8],
        opts: WriteOptions,
    ) -> Result<Written> {
        let old = self.get(def, namespace, name)?;
        let patched = apply_patch(kind, &scale_of(&old), body)?;
        self.write_scale(def, namespace, name, &old, &patched, opts)
    }

    fn write_scale(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        old: &Value,
        scale: &Value,
        opts: WriteOptions,
    ) -> Result<Written> {
        if !scale.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be a Scale object".into(),
            ));
        }
        check_name(scale, name)?;
        let replicas_value = scale.get("spec").and_then(|s| s.get("replicas"));
        let replicas = match replicas_value {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().filter(|r| i32::try_from(*r).is_ok()).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Scale in version \"v1\" cannot be handled as a Scale: spec.replicas: {v} is not an int32"
                ))
            })?,
        };
        if replicas < 0 {
            return Err(ApiError::invalid(crate::status::FieldError {
                group: "autoscaling".into(),
                kind: "Scale".into(),
                name: name.into(),
                field: "spec.replicas".into(),
                value: Some(replicas.to_string()),
                detail: "must be greater than or equal to 0".into(),
            }));
        }
        let mut new = old.clone();
        set_in(&mut new, &["spec", "replicas"], json!(replicas));
        let rv = meta_str(scale, "resourceVersion");
        set_in(&mut new, &["metadata", "resourceVersion"], json!(rv));
        let written = self.replace(def, namespace, name, old, new, Part::Main, opts)?;
        Ok(Written {
            object: scale_of(&written.object),
            ..written
        })
    }
}

/// The `autoscaling/v1` Scale of a workload, as the registry's scale REST returns it.
pub fn scale_of(obj: &Value) -> Value {
    let replicas = replicas_of(obj).unwrap_or(0);
    let status_replicas = obj
        .get("status")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut metadata = Map::new();
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.get("metadata").and_then(|m| m.get(field)) {
            metadata.insert(field.into(), v.clone());
        }
    }
    let mut spec = Map::new();
    if replicas != 0 {
        spec.insert("replicas".into(), json!(replicas));
    }
    let mut status = Map::new();
    status.insert("replicas".into(), json!(status_replicas));
    let selector = selector_string(obj.get("spec").and_then(|s| s.get("selector")));
    if !selector.is_empty() {
        status.insert("selector".into(), json!(selector));
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{DEPLOYMENTS, REPLICATIONCONTROLLERS, WorkloadKind};
    use crate::store::tests::{app_replicas, opts, rv, store_with_app};
    use crate::store::{StatusMode, workload_manifest};

    fn patch_app_scale(store: &mut Store, kind: PatchType, body: &[u8]) -> Result<Written> {
        store.patch_scale(&DEPLOYMENTS, "default", "app", kind, body, opts())
    }

    #[test]
    fn the_scale_of_a_deployment_carries_replicas_and_selector() {
        let store = store_with_app(2);
        let scale = store.get_scale(&DEPLOYMENTS, "default", "app");
        let Ok(scale) = scale else {
            panic!("{scale:?}")
        };
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["apiVersion"], "autoscaling/v1");
        assert_eq!(scale["spec"], json!({"replicas": 2}));
        assert_eq!(
            scale["status"],
            json!({"replicas": 2, "selector": "app=app"})
        );
    }

    #[test]
    fn scaling_bumps_resource_version_and_generation_and_reports_the_change() {
        let mut store = store_with_app(1);
        let before = store
            .get(&DEPLOYMENTS, "default", "app")
            .unwrap_or_default();
        let written = patch_app_scale(&mut store, PatchType::Merge, br#"{"spec":{"replicas":3}}"#);
        let Ok(written) = written else {
            panic!("{written:?}")
        };
        assert_eq!(written.object["spec"]["replicas"], 3);
        let change = written.change.unwrap_or_else(|| panic!("no change"));
        assert_eq!(
            (change.previous, change.replicas, change.generation),
            (Some(1), 3, 2)
        );
        let after = store
            .get(&DEPLOYMENTS, "default", "app")
            .unwrap_or_default();
        assert_ne!(rv(&after), rv(&before));
        assert_eq!(after["metadata"]["generation"], 2);
        assert_eq!(after["status"]["observedGeneration"], 2);
    }

    #[test]
    fn a_stale_resource_version_on_put_scale_is_a_conflict() {
        let mut store = store_with_app(1);
        let scale = store
            .get_scale(&DEPLOYMENTS, "default", "app")
            .unwrap_or_default();
        let mut first = scale.clone();
        first["spec"]["replicas"] = json!(2);
        assert!(
            store
                .update_scale(&DEPLOYMENTS, "default", "app", &first, opts())
                .is_ok()
        );
        let mut stale = scale;
        stale["spec"]["replicas"] = json!(5);
        let err = store.update_scale(&DEPLOYMENTS, "default", "app", &stale, opts());
        assert_eq!(err.map_err(|e| e.code()).err(), Some(409));
        assert_eq!(app_replicas(&store), Some(2));
    }

    #[test]
    fn put_scale_without_resource_version_is_unconditional() {
        let mut store = store_with_app(1);
        let body = json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": "app", "namespace": "default"}, "spec": {"replicas": 4}});
        let written = store.update_scale(&DEPLOYMENTS, "default", "app", &body, opts());
        assert_eq!(
            written.map(|w| w.object["spec"]["replicas"].clone()).ok(),
            Some(json!(4))
        );
    }

    #[test]
    fn scaling_to_the_same_count_writes_nothing() {
        let mut store = store_with_app(2);
        let before = store.revision();
        let written = patch_app_scale(&mut store, PatchType::Merge, br#"{"spec":{"replicas":2}}"#);
        assert_eq!(written.map(|w| w.change).ok(), Some(None));
        assert_eq!(store.revision(), before);
    }

    #[test]
    fn negative_replicas_are_invalid_and_json_patch_test_failures_unprocessable() {
        let mut store = store_with_app(1);
        let neg = patch_app_scale(
            &mut store,
            PatchType::Json,
            br#"[{"op":"replace","path":"/spec/replicas","value":-1}]"#,
        );
        assert_eq!(neg.map_err(|e| e.reason()).err(), Some("Invalid"));
        let test = patch_app_scale(
            &mut store,
            PatchType::Json,
            br#"[{"op":"test","path":"/spec/replicas","value":7}]"#,
        );
        assert_eq!(test.map_err(|e| e.code()).err(), Some(422));
    }

    #[test]
    fn scale_to_zero_omits_spec_replicas_like_the_api_server() {
        let mut store = store_with_app(1);
        let written = patch_app_scale(&mut store, PatchType::Merge, br#"{"spec":{"replicas":0}}"#);
        assert_eq!(
            written.map(|w| w.object["spec"].clone()).ok(),
            Some(json!({}))
        );
    }

    #[test]
    fn a_patch_carrying_a_stale_resource_version_conflicts() {
        let mut store = store_with_app(1);
        let err = patch_app_scale(
            &mut store,
            PatchType::Merge,
            br#"{"metadata":{"resourceVersion":"1"},"spec":{"replicas":3}}"#,
        );
        assert_eq!(err.map_err(|e| e.reason()).err(), Some("Conflict"));
    }

    #[test]
    fn replication_controllers_scale_through_the_core_group() {
        let mut store = Store::new(1, StatusMode::Immediate);
        let m = workload_manifest(WorkloadKind::ReplicationController, "default", "rc1", 1);
        assert!(
            store
                .create(&REPLICATIONCONTROLLERS, "default", m, opts())
                .is_ok()
        );
        let scale = store
            .get_scale(&REPLICATIONCONTROLLERS, "default", "rc1")
            .unwrap_or_default();
        assert_eq!(scale["status"]["selector"], "app=rc1");
    }
}
