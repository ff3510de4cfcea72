//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/{group}`, `/api/v1`,
//! `/apis/{group}/{version}`, the aggregated `apidiscovery.k8s.io/v2` form of `/api` and
//! `/apis` that kubectl 1.30+ and `kube::Discovery::run_aggregated` ask for first, and a minimal
//! `/openapi/v3` (operations and parameters, no schemas): enough for kubectl to see that the
//! server validates fields itself, so `kubectl apply` and `create -f` need no `--validate=false`.

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

/// The resources served in a group version, `None` when none.
fn served(group: &str, version: &str) -> Option<Vec<&'static ResourceDef>> {
    let defs: Vec<&ResourceDef> = resources::ALL
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    (!defs.is_empty()).then_some(defs)
}

/// A discovery entry's `shortNames` and `categories`, when the resource has any.
fn add_names(entry: &mut Value, def: &ResourceDef) {
    if !def.short_names.is_empty() {
        entry["shortNames"] = json!(def.short_names);
    }
    if !def.categories.is_empty() {
        entry["categories"] = json!(def.categories);
    }
}

fn resource_entry(def: &ResourceDef) -> Value {
    let mut entry = json!({
        "name": def.plural,
        "singularName": def.singular,
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": def.verbs(),
    });
    add_names(&mut entry, def);
    entry
}

/// `/api/v1` or `/apis/{group}/{version}`, `None` when not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let defs = served(group, version)?;
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

/// The media type of aggregated discovery v2, as the API server labels its answer.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header lists aggregated discovery v2 (in any position; the API server
/// serves the first acceptable type and kubectl lists v2 first).
pub fn accepts_aggregated_v2(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.first() == Some(&"application/json")
            && params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

fn aggregated_resource(def: &ResourceDef) -> Value {
    // Like the API server, the main resource's responseKind leaves group and version empty
    // (they are the group version's own); subresources of another kind name theirs.
    let mut subresources = Vec::new();
    if def.scalable {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": def.subresource_verbs(),
        }));
    }
    if def.has_status {
        subresources.push(json!({
            "subresource": "status",
            "responseKind": {"group": "", "version": "", "kind": def.kind},
            "verbs": def.subresource_verbs(),
        }));
    }
    let mut entry = json!({
        "resource": def.plural,
        "responseKind": {"group": "", "version": "", "kind": def.kind},
        "scope": if def.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": def.singular,
        "verbs": def.verbs(),
    });
    add_names(&mut entry, def);
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

fn aggregated_group(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = resources::ALL
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .map(aggregated_resource)
        .collect();
    let metadata = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({
        "metadata": metadata,
        "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
    })
}

/// The aggregated discovery document of `/api` (`core`) or `/apis`.
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group("", "v1")]
    } else {
        resources::groups()
            .into_iter()
            .map(|(g, v)| aggregated_group(g, v))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `/openapi/v3`: the index of per group-version documents.
pub fn openapi_v3_index() -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(String, String)> = vec![("api/v1".to_string(), String::new())];
    for (g, v) in resources::groups() {
        gvs.push((format!("apis/{g}/{v}"), String::new()));
    }
    for (path, _) in gvs {
        let url = format!("/openapi/v3/{path}?hash=standin");
        paths.insert(path, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`: the operations kubectl looks
/// for (create, patch and update with their `fieldValidation`, `fieldManager` and `dryRun`
/// parameters, tagged with the kind), and no schemas. `None` when not served.
pub fn openapi_v3_group_version(group: &str, version: &str) -> Option<Value> {
    let defs = served(group, version)?;
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let params = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
    ]);
    let mut paths = serde_json::Map::new();
    for def in defs {
        let gvk = json!({"group": def.group, "version": def.version, "kind": def.kind});
        let op = |action: &str| {
            json!({"parameters": params, "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk, "responses": {}})
        };
        let base = format!("{prefix}/namespaces/{{namespace}}/{}", def.plural);
        paths.insert(base.clone(), json!({"post": op("post")}));
        paths.insert(
            format!("{base}/{{name}}"),
            json!({"put": op("put"), "patch": op("patch")}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-standin"},
        "paths": paths,
        "components": {"schemas": {}},
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
    fn kubectls_accept_header_selects_aggregated_v2() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(accepts_aggregated_v2(kubectl));
        assert!(!accepts_aggregated_v2("application/json, */*"));
        assert!(!accepts_aggregated_v2(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        ));
    }

    #[test]
    fn aggregated_apps_lists_deployments_with_their_scale_subresource() {
        let doc = aggregated(false);
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let apps = doc["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["metadata"]["name"] == "apps"));
        let Some(apps) = apps else {
            panic!("no apps group in {doc}")
        };
        let deploy = &apps["versions"][0]["resources"][0];
        assert_eq!(deploy["resource"], "deployments");
        assert_eq!(deploy["scope"], "Namespaced");
        assert_eq!(deploy["subresources"][0]["subresource"], "scale");
        assert_eq!(
            deploy["subresources"][0]["responseKind"]["group"],
            "autoscaling"
        );
        let core = aggregated(true);
        assert!(core["items"][0]["metadata"].get("name").is_none());
        assert_eq!(core["items"][0]["versions"][0]["version"], "v1");
    }

    #[test]
    fn openapi_v3_lists_patch_operations_with_field_validation_per_kind() {
        let index = openapi_v3_index();
        assert_eq!(
            index["paths"]["apis/apps/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/apps/v1?hash=standin"
        );
        let doc = openapi_v3_group_version("apps", "v1").unwrap_or_default();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"fieldValidation"));
        assert_eq!(openapi_v3_group_version("batch", "v1"), None);
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

    #[test]
    fn autoscaling_v2_serves_namespaced_hpas_with_their_short_name_and_status() {
        let list = resource_list("autoscaling", "v2").unwrap_or_default();
        assert_eq!(list["groupVersion"], "autoscaling/v2");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status"
            ]
        );
        assert_eq!(list["resources"][0]["shortNames"], json!(["hpa"]));
        assert_eq!(list["resources"][0]["namespaced"], true);
        assert_eq!(resource_list("autoscaling", "v1"), None);
        let doc = aggregated(false);
        let autoscaling = doc["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["metadata"]["name"] == "autoscaling")
        });
        let Some(autoscaling) = autoscaling else {
            panic!("no autoscaling group in {doc}")
        };
        let hpa = &autoscaling["versions"][0]["resources"][0];
        assert_eq!(autoscaling["versions"][0]["version"], "v2");
        assert_eq!(hpa["resource"], "horizontalpodautoscalers");
        assert_eq!(hpa["scope"], "Namespaced");
        assert!(
            hpa["verbs"]
                .as_array()
                .is_some_and(|v| v.contains(&json!("list")))
        );
        assert_eq!(
            group("autoscaling").map(|g| g["preferredVersion"]["groupVersion"].clone()),
            Some(json!("autoscaling/v2"))
        );
    }
}
