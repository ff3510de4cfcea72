//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/{group}`, `/api/v1`,
//! `/apis/{group}/{version}` (the legacy, unaggregated form; clients that ask for the aggregated
//! `apidiscovery.k8s.io/v2` form fall back to it when the answer is plain `application/json`).

use serde_json::{Value, json};

use crate::resources::{self, ResourceDef};

/// `/version` for a server that claims Kubernetes `1.{minor}`.
pub fn version(minor: u32) -> Value {
    json!({
        "major": "1",
        "minor": minor.to_string(),
        "emulationMajor": "1",
        "emulationMinor": minor.to_string(),
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": minor.saturating_sub(1).to_string(),
        "gitVersion": format!("v1.{minor}.0-standin"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`: the core group's versions.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `/apis`: every named group.
pub fn group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .map(|(g, v)| group_entry(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`, `None` for groups we do not serve.
pub fn group(name: &str) -> Option<Value> {
    let (g, v) = resources::groups().into_iter().find(|(g, _)| *g == name)?;
    let mut entry = group_entry(g, v);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

fn resource_entry(def: &ResourceDef) -> Value {
    let mut entry = json!({
        "name": def.plural,
        "singularName": def.singular,
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": def.verbs(),
    });
    if !def.short_names.is_empty() {
        entry["shortNames"] = json!(def.short_names);
    }
    if !def.categories.is_empty() {
        entry["categories"] = json!(def.categories);
    }
    entry
}

/// `/api/v1` or `/apis/{group}/{version}`, `None` when not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = resources::ALL
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut entries = Vec::new();
    for def in defs {
        entries.push(resource_entry(def));
        if def.scalable {
            entries.push(json!({
                "name": format!("{}/scale", def.plural),
                "singularName": "",
                "namespaced": def.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": def.subresource_verbs(),
            }));
        }
        if def.has_status {
            entries.push(json!({
                "name": format!("{}/status", def.plural),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": def.kind,
                "verbs": def.subresource_verbs(),
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_v1_lists_deployments_with_a_scale_subresource_of_kind_autoscaling_scale() {
        let list = resource_list("apps", "v1").unwrap_or_default();
        assert_eq!(list["groupVersion"], "apps/v1");
        let resources = list["resources"].as_array().cloned().unwrap_or_default();
        let scale = resources.iter().find(|r| r["name"] == "deployments/scale");
        assert_eq!(
            scale.map(|s| s["group"].clone()),
            Some(json!("autoscaling"))
        );
        assert_eq!(scale.map(|s| s["kind"].clone()), Some(json!("Scale")));
        let deploy = resources.iter().find(|r| r["name"] == "deployments");
        assert_eq!(
            deploy.map(|d| d["shortNames"].clone()),
            Some(json!(["deploy"]))
        );
    }

    #[test]
    fn core_v1_serves_events_and_replication_controllers() {
        let list = resource_list("", "v1").unwrap_or_default();
        assert_eq!(list["groupVersion"], "v1");
        let names: Vec<String> = list["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect();
        assert!(names.contains(&"events".to_string()));
        assert!(names.contains(&"replicationcontrollers/scale".to_string()));
        assert_eq!(resource_list("batch", "v1"), None);
    }

    #[test]
    fn the_group_list_names_each_group_with_its_preferred_version() {
        let list = group_list();
        assert_eq!(list["groups"][0]["name"], "apps");
        assert_eq!(
            list["groups"][0]["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
        assert_eq!(
            group("coordination.k8s.io").map(|g| g["kind"].clone()),
            Some(json!("APIGroup"))
        );
        assert_eq!(group("extensions"), None);
    }
}
