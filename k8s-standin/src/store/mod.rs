//! The object store: what etcd and the registry strategies do for the resources we serve —
//! resourceVersion (one global revision, like etcd), uid, creationTimestamp, generation on spec
//! changes, optimistic concurrency (409 on a stale resourceVersion), the `/status`
//! subresource. `validation`: what is refused before anything is stored; `workload`: defaults,
//! validation and status of workloads; `scale`: the `/scale` subresource; `hpa`: defaults and
//! validation of HorizontalPodAutoscalers. Pure: the caller passes the time.

pub(crate) mod hpa;
mod scale;
mod validation;
mod workload;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::patch::{self, PatchType};
use crate::resources::ResourceDef;
use crate::selector::{FieldSelector, Selector};
use crate::status::{ApiError, GroupResource, Result};
use crate::timestamp::rfc3339;

pub use scale::scale_of;
use validation::{check_body, check_name, validate_name};
pub use workload::{StatusMode, WorkloadChange, WorkloadView, workload_manifest};
use workload::{default_workload, mirror_status, validate_workload};

/// Identifies one stored object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ObjectKey {
    group: &'static str,
    plural: &'static str,
    namespace: String,
    name: String,
}

/// The result of a write: the object as returned to the client, and the replica change if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The object (or Scale) to answer with.
    pub object: Value,
    /// Set when a workload's spec.replicas was created or changed.
    pub change: Option<WorkloadChange>,
    /// Whether the write created the object (answer 201).
    pub created: bool,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The object (status kept from the stored object for resources with a status subresource).
    Main,
    /// The `/status` subresource (only status changes).
    Status,
}

/// Options of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// `?dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// The time of the write, seconds since the epoch.
    pub now: u64,
}

impl WriteOptions {
    /// A write that is stored, at `now` (seconds since the epoch).
    pub fn at(now: u64) -> Self {
        WriteOptions {
            dry_run: false,
            now,
        }
    }
}

/// All stored objects.
#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<ObjectKey, Value>,
    revision: u64,
    uid_seed: u64,
    uids: u64,
    status_mode: StatusMode,
    history: crate::watch::History,
    /// Live watch events, sent while the store's lock is held so a watch that subscribes
    /// under the lock sees every later change exactly once.
    events: Option<tokio::sync::broadcast::Sender<std::sync::Arc<crate::watch::WatchEvent>>>,
}

fn key(def: &ResourceDef, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        group: def.group,
        plural: def.plural,
        namespace: if def.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

fn not_found(def: &ResourceDef, name: &str) -> ApiError {
    ApiError::NotFound {
        resource: GroupResource::new(def.group, def.plural),
        name: name.to_string(),
    }
}

fn conflict(def: &ResourceDef, name: &str) -> ApiError {
    ApiError::Conflict {
        resource: GroupResource::new(def.group, def.plural),
        name: name.to_string(),
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn replicas_of(obj: &Value) -> Option<i64> {
    obj.get("spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
}

/// Sets `obj.path… = value`, turning whatever is not an object on the way into one.
fn set_in(obj: &mut Value, path: &[&str], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *obj = value;
        return;
    };
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    if let Value::Object(m) = obj {
        let slot = m.entry(first.to_string()).or_insert(Value::Null);
        set_in(slot, rest, value);
    }
}

/// Removes `obj.metadata.field`.
fn remove_meta(obj: &mut Value, field: &str) {
    if let Some(Value::Object(m)) = obj.get_mut("metadata") {
        m.remove(field);
    }
}

impl Store {
    /// An empty store; `uid_seed` varies the generated uids between servers.
    pub fn new(uid_seed: u64, status_mode: StatusMode) -> Self {
        Store {
            uid_seed,
            status_mode,
            revision: 1,
            ..Store::default()
        }
    }

    /// Keeps the last `events` changes for watches resuming from a resourceVersion.
    pub fn keep_history(&mut self, events: usize) {
        self.history = crate::watch::History::with_capacity(events);
    }

    /// Sends every later change to `sender` as well as keeping it in the history.
    pub fn publish_to(
        &mut self,
        sender: tokio::sync::broadcast::Sender<std::sync::Arc<crate::watch::WatchEvent>>,
    ) {
        self.events = Some(sender);
    }

    fn record(&mut self, kind: crate::watch::EventType, k: &ObjectKey, obj: &Value) {
        let event = std::sync::Arc::new(crate::watch::WatchEvent {
            revision: self.revision,
            kind,
            group: k.group,
            plural: k.plural,
            namespace: k.namespace.clone(),
            name: k.name.clone(),
            object: obj.clone(),
        });
        if let Some(tx) = &self.events {
            let _ = tx.send(event.clone());
        }
        self.history.push(event);
    }

    /// The changes after `revision` (for a watch resuming from it).
    pub fn history_since(
        &self,
        revision: u64,
    ) -> Result<Vec<std::sync::Arc<crate::watch::WatchEvent>>, crate::watch::Expired> {
        self.history.since(revision)
    }

    /// Forgets the change history up to now: a watch resuming from an older resourceVersion
    /// gets 410 Expired (what etcd's compaction does to the API server).
    pub fn compact_history(&mut self) {
        self.history.compact(self.revision);
    }

    /// Creates the object, or replaces it whole, status included (as a kubelet writing its
    /// pod's status after a change of spec): two writes, the object then its status, each a
    /// watch event only if it changed something.
    pub fn put(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        object: Value,
        now: u64,
    ) -> Result<Value> {
        let name = meta_str(&object, "name").to_string();
        let opts = WriteOptions::at(now);
        let Ok(old) = self.get(def, namespace, &name) else {
            return self.create(def, namespace, object, opts).map(|w| w.object);
        };
        let mut main = object.clone();
        remove_meta(&mut main, "resourceVersion");
        let written = self.replace(def, namespace, &name, &old, main, Part::Main, opts)?;
        if !def.has_status {
            return Ok(written.object);
        }
        let mut status = object;
        remove_meta(&mut status, "resourceVersion");
        self.replace(
            def,
            namespace,
            &name,
            &written.object,
            status,
            Part::Status,
            opts,
        )
        .map(|w| w.object)
    }

    /// The current revision (the list resourceVersion).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// How workload status follows spec.
    pub fn status_mode(&self) -> StatusMode {
        self.status_mode
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        let a = self.uid_seed ^ self.uids.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let b = a.rotate_left(29) ^ 0x5851_f42d_4c95_7f2d;
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a & 0xfff) as u16,
            ((b >> 48) as u16 & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// GET one object.
    pub fn get(&self, def: &ResourceDef, namespace: &str, name: &str) -> Result<Value> {
        self.objects
            .get(&key(def, namespace, name))
            .cloned()
            .ok_or_else(|| not_found(def, name))
    }

    /// LIST, in one namespace or all (`namespace` empty); items lose kind and apiVersion as the
    /// API server's JSON lists do.
    pub fn list(
        &self,
        def: &ResourceDef,
        namespace: &str,
        labels: &Selector,
        fields: &FieldSelector,
    ) -> Value {
        let mut items = self.matching(def, namespace, labels, fields, fields.name());
        for item in &mut items {
            if let Some(m) = item.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
        }
        json!({
            "kind": format!("{}List", def.kind),
            "apiVersion": def.group_version(),
            "metadata": {"resourceVersion": self.revision.to_string()},
            "items": items,
        })
    }

    /// POST: creates an object in `namespace`.
    pub fn create(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        mut body: Value,
        opts: WriteOptions,
    ) -> Result<Written> {
        check_body(def, &body, namespace)?;
        let mut name = meta_str(&body, "name").to_string();
        if name.is_empty() {
            let generate = meta_str(&body, "generateName").to_string();
            if generate.is_empty() {
                return Err(ApiError::invalid(crate::status::FieldError {
                    group: def.group.into(),
                    kind: def.kind.into(),
                    name: String::new(),
                    field: "metadata.name".into(),
                    value: None,
                    detail: "name or generateName is required".into(),
                }));
            }
            let suffix = self.next_uid().replace('-', "");
            name = format!("{generate}{}", suffix.get(..5).unwrap_or("x"));
        }
        validate_name(def, &name)?;
        let k = key(def, namespace, &name);
        if self.objects.contains_key(&k) {
            return Err(ApiError::AlreadyExists {
                resource: GroupResource::new(def.group, def.plural),
                name,
            });
        }
        set_in(&mut body, &["metadata", "name"], json!(name));
        if def.namespaced {
            set_in(&mut body, &["metadata", "namespace"], json!(namespace));
        }
        remove_meta(&mut body, "resourceVersion");
        let uid = self.next_uid();
        set_in(&mut body, &["metadata", "uid"], json!(uid));
        set_in(
            &mut body,
            &["metadata", "creationTimestamp"],
            json!(rfc3339(opts.now)),
        );
        if def.tracks_generation {
            set_in(&mut body, &["metadata", "generation"], json!(1));
        }
        set_in(&mut body, &["apiVersion"], json!(def.group_version()));
        set_in(&mut body, &["kind"], json!(def.kind));
        if def.scalable {
            default_workload(def, &mut body);
            validate_workload(def, &name, &body)?;
            if let Some(m) = body.as_object_mut() {
                m.insert("status".into(), json!({}));
            }
            if self.status_mode == StatusMode::Immediate {
                mirror_status(&mut body);
            }
        }
        if hpa::is_hpa(def) {
            hpa::default_hpa(&mut body);
            hpa::validate_hpa(&name, &body)?;
            set_in(&mut body, &["status"], hpa::new_status());
        }
        let change = def.workload_kind().map(|kind| WorkloadChange {
            kind,
            namespace: namespace.to_string(),
            name: name.clone(),
            previous: None,
            replicas: replicas_of(&body).unwrap_or(0),
            resource_version: String::new(),
            generation: 1,
        });
        self.store(k, body, change, opts, true)
    }

    /// Stores (unless dry run) with a new resourceVersion.
    fn store(
        &mut self,
        k: ObjectKey,
        mut obj: Value,
        mut change: Option<WorkloadChange>,
        opts: WriteOptions,
        created: bool,
    ) -> Result<Written> {
        let rv = if opts.dry_run {
            self.revision
        } else {
            self.revision += 1;
            self.revision
        };
        set_in(
            &mut obj,
            &["metadata", "resourceVersion"],
            json!(rv.to_string()),
        );
        if let Some(c) = change.as_mut() {
            c.resource_version = rv.to_string();
        }
        if !opts.dry_run {
            let kind = if created {
                crate::watch::EventType::Added
            } else {
                crate::watch::EventType::Modified
            };
            self.record(kind, &k, &obj);
            self.objects.insert(k, obj.clone());
        }
        Ok(Written {
            object: obj,
            change: if opts.dry_run { None } else { change },
            created,
        })
    }

    /// PUT on the object or its `/status`.
    pub fn update(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        body: Value,
        part: Part,
        opts: WriteOptions,
    ) -> Result<Written> {
        check_body(def, &body, namespace)?;
        check_name(&body, name)?;
        let old = self.get(def, namespace, name)?;
        self.replace(def, namespace, name, &old, body, part, opts)
    }

    /// The common update path: precondition, immutable fields, generation, status, store.
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        old: &Value,
        mut new: Value,
        part: Part,
        opts: WriteOptions,
    ) -> Result<Written> {
        if !new.is_object() {
            return Err(ApiError::BadRequest(
                "the patched object is not an object".into(),
            ));
        }
        let old_rv = meta_str(old, "resourceVersion");
        let new_rv = meta_str(&new, "resourceVersion");
        if !new_rv.is_empty() && new_rv != old_rv {
            return Err(conflict(def, name));
        }
        let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        match part {
            Part::Main => {
                if def.has_status {
                    match old.get("status") {
                        Some(s) => set_in(&mut new, &["status"], s.clone()),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
            }
            Part::Status => {
                let status = new.get("status").cloned();
                new = old.clone();
                if let (Some(m), Some(s)) = (new.as_object_mut(), status) {
                    m.insert("status".into(), s);
                }
            }
        }
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "namespace",
            "name",
        ] {
            match old_meta.get(field) {
                Some(v) => set_in(&mut new, &["metadata", field], v.clone()),
                None => remove_meta(&mut new, field),
            }
        }
        set_in(&mut new, &["apiVersion"], json!(def.group_version()));
        set_in(&mut new, &["kind"], json!(def.kind));
        let old_replicas = replicas_of(old);
        if def.scalable && part == Part::Main {
            default_workload(def, &mut new);
            validate_workload(def, name, &new)?;
        }
        if hpa::is_hpa(def) && part == Part::Main {
            hpa::default_hpa(&mut new);
            hpa::validate_hpa(name, &new)?;
        }
        let mut generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if def.tracks_generation && new.get("spec") != old.get("spec") {
            generation += 1;
            set_in(&mut new, &["metadata", "generation"], json!(generation));
        }
        if def.scalable && self.status_mode == StatusMode::Immediate && part == Part::Main {
            mirror_status(&mut new);
        }
        // An update that changes nothing is not written: the resourceVersion stays (etcd3 store).
        let mut unchanged = new.clone();
        set_in(
            &mut unchanged,
            &["metadata", "resourceVersion"],
            json!(old_rv),
        );
        if &unchanged == old {
            return Ok(Written {
                object: unchanged,
                change: None,
                created: false,
            });
        }
        let new_replicas = replicas_of(&new);
        let change = match def.workload_kind() {
            Some(kind) if new_replicas != old_replicas => Some(WorkloadChange {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                previous: old_replicas,
                replicas: new_replicas.unwrap_or(0),
                resource_version: String::new(),
                generation,
            }),
            _ => None,
        };
        self.store(key(def, namespace, name), new, change, opts, false)
    }

    /// PATCH on the object or its `/status`; an apply patch creates a missing object.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        kind: PatchType,
        body: &[u8],
        part: Part,
        opts: WriteOptions,
    ) -> Result<Written> {
        let old = match self.get(def, namespace, name) {
            Ok(old) => old,
            Err(_) if kind == PatchType::Apply && part == Part::Main => {
                let empty = json!({"apiVersion": def.group_version(), "kind": def.kind,
                    "metadata": {"name": name, "namespace": namespace}});
                let mut patched = apply_patch(kind, &empty, body)?;
                if def.namespaced {
                    set_in(&mut patched, &["metadata", "namespace"], json!(namespace));
                }
                return self.create(def, namespace, patched, opts);
            }
            Err(e) => return Err(e),
        };
        let patched = apply_patch(kind, &old, body)?;
        if meta_str(&patched, "name") != name {
            return Err(ApiError::BadRequest(
                "metadata.name: Invalid value: the name of the object does not match the name on the URL"
                    .into(),
            ));
        }
        self.replace(def, namespace, name, &old, patched, part, opts)
    }

    /// DELETE.
    pub fn delete(&mut self, def: &ResourceDef, namespace: &str, name: &str) -> Result<Value> {
        let k = key(def, namespace, name);
        let mut removed = self
            .objects
            .remove(&k)
            .ok_or_else(|| not_found(def, name))?;
        self.revision += 1;
        set_in(
            &mut removed,
            &["metadata", "resourceVersion"],
            json!(self.revision.to_string()),
        );
        self.record(crate::watch::EventType::Deleted, &k, &removed);
        Ok(crate::status::success_delete(
            def.group,
            def.plural,
            name,
            meta_str(&removed, "uid"),
        ))
    }

    /// The stored objects a watch starts with (with kind), filtered like a list.
    pub fn matching(
        &self,
        def: &ResourceDef,
        namespace: &str,
        labels: &Selector,
        fields: &FieldSelector,
        name: Option<&str>,
    ) -> Vec<Value> {
        self.of_resource(def)
            .filter(|(k, _)| namespace.is_empty() || k.namespace == namespace)
            .filter(|(k, _)| name.is_none_or(|n| n == k.name))
            .filter(|(_, v)| labels.matches(v.pointer("/metadata/labels")))
            .filter(|(_, v)| fields.matches(v))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every stored object of a resource type (for tests and the lab).
    pub fn objects_of(&self, def: &ResourceDef) -> Vec<Value> {
        self.of_resource(def).map(|(_, v)| v.clone()).collect()
    }

    fn of_resource<'a>(
        &'a self,
        def: &'a ResourceDef,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Value)> + 'a {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == def.group && k.plural == def.plural)
    }
}

fn apply_patch(kind: PatchType, target: &Value, body: &[u8]) -> Result<Value> {
    patch::apply(kind, target, body).map_err(|e| match e {
        patch::PatchError::Malformed(m) => ApiError::BadRequest(m),
        op @ patch::PatchError::Operation { .. } => ApiError::Unprocessable(op.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{DEPLOYMENTS, LEASES, WorkloadKind};

    pub(super) const NOW: u64 = 1_795_888_115;

    pub(super) fn opts() -> WriteOptions {
        WriteOptions::at(NOW)
    }

    pub(super) fn store_with_app(replicas: i64) -> Store {
        let mut store = Store::new(7, StatusMode::Immediate);
        let manifest = workload_manifest(WorkloadKind::Deployment, "default", "app", replicas);
        assert!(
            store
                .create(&DEPLOYMENTS, "default", manifest, opts())
                .is_ok()
        );
        store
    }

    /// spec.replicas of Deployment default/app.
    pub(super) fn app_replicas(store: &Store) -> Option<i64> {
        store
            .workload(WorkloadKind::Deployment, "default", "app")
            .map(|w| w.replicas)
    }

    pub(super) fn rv(obj: &Value) -> String {
        meta_str(obj, "resourceVersion").to_string()
    }

    #[test]
    fn dry_run_answers_but_stores_nothing() {
        let mut store = store_with_app(1);
        let written = store.patch_scale(
            &DEPLOYMENTS,
            "default",
            "app",
            PatchType::Merge,
            br#"{"spec":{"replicas":3}}"#,
            WriteOptions {
                dry_run: true,
                now: NOW,
            },
        );
        assert_eq!(
            written
                .map(|w| (w.object["spec"]["replicas"].clone(), w.change))
                .ok(),
            Some((json!(3), None))
        );
        assert_eq!(app_replicas(&store), Some(1));
    }

    #[test]
    fn main_resource_put_ignores_status_and_status_put_ignores_spec() {
        let mut store = store_with_app(1);
        let mut obj = store
            .get(&DEPLOYMENTS, "default", "app")
            .unwrap_or_default();
        obj["status"]["readyReplicas"] = json!(9);
        obj["spec"]["paused"] = json!(true);
        let main = store.update(
            &DEPLOYMENTS,
            "default",
            "app",
            obj.clone(),
            Part::Main,
            opts(),
        );
        let Ok(main) = main else { panic!("{main:?}") };
        assert_eq!(main.object["status"]["readyReplicas"], 1);
        assert_eq!(main.object["spec"]["paused"], true);
        let mut status_body = main.object.clone();
        status_body["status"]["readyReplicas"] = json!(0);
        status_body["spec"]["replicas"] = json!(5);
        let status = store.update(
            &DEPLOYMENTS,
            "default",
            "app",
            status_body,
            Part::Status,
            opts(),
        );
        let Ok(status) = status else {
            panic!("{status:?}")
        };
        assert_eq!(status.object["status"]["readyReplicas"], 0);
        assert_eq!(status.object["spec"]["replicas"], 1);
    }

    #[test]
    fn creating_twice_is_already_exists_and_missing_objects_are_not_found() {
        let mut store = store_with_app(1);
        let m = workload_manifest(WorkloadKind::Deployment, "default", "app", 1);
        let err = store.create(&DEPLOYMENTS, "default", m, opts());
        assert_eq!(err.map_err(|e| e.reason()).err(), Some("AlreadyExists"));
        let missing = store.get_scale(&DEPLOYMENTS, "default", "nope");
        assert_eq!(
            missing.map_err(|e| e.to_string()).err(),
            Some("deployments.apps \"nope\" not found".to_string())
        );
    }

    #[test]
    fn lists_filter_by_namespace_and_labels_and_drop_item_kinds() {
        let mut store = store_with_app(1);
        let other = workload_manifest(WorkloadKind::Deployment, "prod", "web", 1);
        assert!(store.create(&DEPLOYMENTS, "prod", other, opts()).is_ok());
        let all = store.list(
            &DEPLOYMENTS,
            "",
            &Selector::default(),
            &FieldSelector::default(),
        );
        assert_eq!(all["items"].as_array().map(Vec::len), Some(2));
        assert_eq!(all["kind"], "DeploymentList");
        assert!(all["items"][0].get("kind").is_none());
        let prod = store.list(
            &DEPLOYMENTS,
            "prod",
            &Selector::default(),
            &FieldSelector::default(),
        );
        assert_eq!(prod["items"][0]["metadata"]["name"], "web");
        let sel = Selector::parse("app=app").unwrap_or_default();
        let by_label = store.list(&DEPLOYMENTS, "", &sel, &FieldSelector::default());
        assert_eq!(by_label["items"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn leases_update_with_optimistic_concurrency_and_no_generation() {
        let mut store = Store::new(1, StatusMode::Immediate);
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "processor"}, "spec": {"holderIdentity": "a"}});
        let created = store.create(&LEASES, "default", lease, opts());
        let Ok(created) = created else {
            panic!("{created:?}")
        };
        assert!(created.created);
        assert!(created.object["metadata"].get("generation").is_none());
        let mut next = created.object.clone();
        next["spec"]["holderIdentity"] = json!("b");
        assert!(
            store
                .update(
                    &LEASES,
                    "default",
                    "processor",
                    next.clone(),
                    Part::Main,
                    opts()
                )
                .is_ok()
        );
        let stale = store.update(&LEASES, "default", "processor", next, Part::Main, opts());
        assert_eq!(stale.map_err(|e| e.code()).err(), Some(409));
    }

    #[test]
    fn apply_patch_creates_a_missing_object() {
        let mut store = Store::new(1, StatusMode::Immediate);
        let body = br#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l"},"spec":{"holderIdentity":"x"}}"#;
        let written = store.patch(
            &LEASES,
            "ns",
            "l",
            PatchType::Apply,
            body,
            Part::Main,
            opts(),
        );
        assert_eq!(
            written
                .map(|w| (w.created, w.object["metadata"]["namespace"].clone()))
                .ok(),
            Some((true, json!("ns")))
        );
    }

    proptest::proptest! {
        #[test]
        fn no_body_or_patch_panics_the_store_or_breaks_the_workload(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            text in "[{}\\[\\]\":,a-z0-9 /$-]{0,60}",
            kind_index in 0usize..4,
        ) {
            let mut store = store_with_app(1);
            let kinds = [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge, PatchType::Apply];
            let kind = kinds.get(kind_index).copied().unwrap_or(PatchType::Merge);
            for bytes in [body.as_slice(), text.as_bytes()] {
                let _ = store.patch_scale(&DEPLOYMENTS, "default", "app", kind, bytes, opts());
                let _ = store.patch(&DEPLOYMENTS, "default", "app", kind, bytes, Part::Main, opts());
                let _ = store.patch(&DEPLOYMENTS, "default", "app", kind, bytes, Part::Status, opts());
                if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
                    let _ = store.create(&DEPLOYMENTS, "default", value.clone(), opts());
                    let _ = store.update(&DEPLOYMENTS, "default", "app", value.clone(), Part::Main, opts());
                    let _ = store.update_scale(&DEPLOYMENTS, "default", "app", &value, opts());
                }
            }
            // Whatever was accepted, the workload still has a valid scale.
            let scale = store.get_scale(&DEPLOYMENTS, "default", "app");
            proptest::prop_assert!(scale.is_ok());
            let view = store.workload(WorkloadKind::Deployment, "default", "app");
            proptest::prop_assert!(view.is_some_and(|w| w.replicas >= 0));
        }

        #[test]
        fn whole_document_json_patches_never_panic(value in "(5|null|\\[\\]|\"x\"|\\{\\})") {
            let mut store = store_with_app(1);
            let patch = format!(r#"[{{"op":"replace","path":"","value":{value}}}]"#);
            let result = store.patch(&DEPLOYMENTS, "default", "app", PatchType::Json, patch.as_bytes(), Part::Main, opts());
            proptest::prop_assert!(result.is_err());
        }
    }

    #[test]
    fn generated_uids_are_distinct() {
        let mut store = Store::new(3, StatusMode::Immediate);
        let a = store.next_uid();
        let b = store.next_uid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
    }
}
