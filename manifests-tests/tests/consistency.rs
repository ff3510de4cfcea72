//! The manifests agree with the code that reads them: the agent's telegraf.conf loads in our
//! agent and writes to the processor's Service with the Secret's credentials; the processor's
//! config loads and its paths are the pod's mounts; the tick compiles; the app's `deployment`
//! label is its Deployment's name; the Role grants exactly what the processor calls; every pod
//! is hardened.

use std::collections::BTreeMap;

use manifests_tests::render::{self, Rendered, containers, strings};
use manifests_tests::{kustomizations, manifests_dir, tools};
use serde_json::Value;

fn render(name: &str) -> Option<Rendered> {
    let kubectl = tools::kubectl()?;
    Some(
        render::kustomize(&kubectl, &manifests_dir().join(name))
            .unwrap_or_else(|error| panic!("{name}: {error}")),
    )
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Key `key` of Secret `name`, which the manifests do not ship: the one the documented command
/// creates (no kustomization renders a Secret, checked below).
fn secret_value(_rendered: &Rendered, name: &str, key: &str) -> String {
    manifests_tests::created_secret_value(name, key)
        .unwrap_or_else(|| panic!("Secret {name} key {key} is not made by the documented command"))
        .to_owned()
}

/// The container (of any pod) that mounts ConfigMap `config_map`, with its mount path.
fn mounting<'a>(rendered: &'a Rendered, config_map: &str) -> Vec<(String, &'a Value, String)> {
    let mut found = Vec::new();
    for (owner, spec) in rendered.pod_specs() {
        let volumes = spec.get("volumes").and_then(Value::as_array);
        let volume = volumes.into_iter().flatten().find(|volume| {
            str_at(volume, "/configMap/name") == config_map
                || str_at(volume, "/secret/secretName") == config_map
        });
        let Some(volume_name) = volume.map(|volume| str_at(volume, "/name")) else {
            continue;
        };
        for container in containers(spec) {
            let mounts = container.get("volumeMounts").and_then(Value::as_array);
            for mount in mounts.into_iter().flatten() {
                if str_at(mount, "/name") == volume_name {
                    found.push((
                        owner.clone(),
                        container,
                        str_at(mount, "/mountPath").to_owned(),
                    ));
                }
            }
        }
    }
    found
}

/// The environment a container gets from literal values and from Secret keys.
fn container_env(rendered: &Rendered, container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(var, "/name").to_owned();
        if let Some(value) = var.get("value").and_then(Value::as_str) {
            env.insert(name, value.to_owned());
        } else if let Some(secret) = var.pointer("/valueFrom/secretKeyRef") {
            let value = secret_value(rendered, str_at(secret, "/name"), str_at(secret, "/key"));
            env.insert(name, value);
        } else if var.pointer("/valueFrom/fieldRef").is_some() {
            env.insert(name, "from-the-downward-api".to_owned());
        }
    }
    env
}

/// `http://<pod>.<headless service>:<port>` of every processor replica, in pod order: the
/// StatefulSet's pods by their stable DNS names.
fn processor_replica_urls(rendered: &Rendered) -> Vec<String> {
    let statefulset = rendered
        .get("StatefulSet", "processor")
        .expect("StatefulSet processor");
    let replicas = statefulset
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .expect("replicas");
    let service_name = str_at(statefulset, "/spec/serviceName");
    let service = rendered
        .get("Service", service_name)
        .unwrap_or_else(|| panic!("the StatefulSet's serviceName {service_name:?} is a Service"));
    let port = service
        .pointer("/spec/ports/0/port")
        .and_then(Value::as_u64)
        .expect("a port");
    (0..replicas)
        .map(|n| format!("http://processor-{n}.{service_name}:{port}"))
        .collect()
}

#[test]
fn every_agent_config_loads_in_our_agent_and_writes_to_every_processor_replica_with_the_secret() {
    for name in kustomizations().expect("list overlays") {
        let Some(rendered) = render(&name) else {
            return;
        };
        let username = secret_value(&rendered, "processor-auth", "username");
        let password = secret_value(&rendered, "processor-auth", "password");
        let replica_urls = processor_replica_urls(&rendered);
        assert_eq!(replica_urls.len(), 2, "{name}: {replica_urls:?}");
        let agent_configs: Vec<&Value> = rendered
            .all("ConfigMap")
            .filter(|map| map.pointer("/data/telegraf.conf").is_some())
            .collect();
        assert!(!agent_configs.is_empty(), "{name}: no agent ConfigMap");
        for map in agent_configs {
            let map_name = render::name_of(map);
            let text = str_at(map, "/data/telegraf.conf");
            let users = mounting(&rendered, map_name);
            assert!(
                !users.is_empty(),
                "{name}: ConfigMap {map_name} is mounted by no container"
            );
            for (owner, container, mount_path) in users {
                // The agent is started on the mounted file.
                let args = strings(container, "args");
                let config_flag = args.iter().position(|arg| arg == "--config");
                let config_path = config_flag.and_then(|at| args.get(at + 1));
                assert_eq!(
                    config_path.map(String::as_str),
                    Some(format!("{mount_path}/telegraf.conf").as_str()),
                    "{name}: {owner} runs {args:?}"
                );
                // Every ${VAR} the config needs is in the container's environment.
                let env = container_env(&rendered, container);
                let config = agent::config::Config::parse(text, |var| env.get(var).cloned())
                    .unwrap_or_else(|error| panic!("{name}: {map_name}: {error}"));
                assert!(
                    config.warnings.is_empty(),
                    "{name}: {map_name}: {:?}",
                    config.warnings
                );
                let outputs: Vec<_> = config
                    .outputs
                    .iter()
                    .filter_map(|output| match output {
                        agent::config::Output::Influxdb(influx) => Some(influx),
                        agent::config::Output::File(_) => None,
                    })
                    .collect();
                // One output per replica, each with one url: an output with several urls
                // writes each batch to one of them (failover), not to all.
                let urls: Vec<Vec<String>> =
                    outputs.iter().map(|output| output.urls.clone()).collect();
                let expected: Vec<Vec<String>> =
                    replica_urls.iter().map(|url| vec![url.clone()]).collect();
                assert_eq!(urls, expected, "{name}: {map_name}");
                for output in outputs {
                    assert_eq!(output.database, "autoscale");
                    assert_eq!(output.retention_policy, "autogen");
                    assert_eq!(output.username.as_deref(), Some(username.as_str()));
                    assert_eq!(output.password.as_deref(), Some(password.as_str()));
                }
            }
        }
    }
}

#[test]
fn the_agent_config_refuses_to_load_without_the_credentials() {
    let Some(rendered) = render("base") else {
        return;
    };
    let map = rendered
        .get("ConfigMap", "agent-config")
        .expect("agent-config");
    let error = agent::config::Config::parse(str_at(map, "/data/telegraf.conf"), |_| None)
        .expect_err("the credentials are required");
    // The error names the file; its cause names the variable.
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(chain.contains("PROCESSOR_USERNAME"), "{chain}");
}

#[test]
fn the_app_sidecar_scrapes_the_app_metrics_port() {
    let Some(rendered) = render("base") else {
        return;
    };
    let map = rendered
        .get("ConfigMap", "agent-config")
        .expect("agent-config");
    let env = |var: &str| Some(format!("value-of-{var}"));
    let config =
        agent::config::Config::parse(str_at(map, "/data/telegraf.conf"), env).expect("loads");
    let deployment = rendered.get("Deployment", "app").expect("Deployment app");
    let spec = deployment.pointer("/spec/template/spec").expect("pod spec");
    let app = containers(spec)
        .into_iter()
        .find(|container| str_at(container, "/name") == "app")
        .expect("container app");
    let metrics_port = app
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|port| str_at(port, "/name") == "metrics")
        .and_then(|port| port.get("containerPort"))
        .and_then(Value::as_u64)
        .expect("a metrics port");
    let urls: Vec<&str> = config
        .inputs
        .iter()
        .flat_map(|input| input.urls.iter().map(String::as_str))
        .collect();
    assert_eq!(
        urls,
        vec![format!("http://localhost:{metrics_port}/metrics")]
    );
    // And the app listens there (its --metrics-listen flag).
    let args = strings(app, "args");
    assert!(
        args.contains(&format!("0.0.0.0:{metrics_port}")),
        "app args {args:?}"
    );
}

#[test]
fn the_processor_config_loads_and_names_the_pods_mounts_and_the_secrets_user() {
    let Some(rendered) = render("base") else {
        return;
    };
    let statefulset = rendered
        .get("StatefulSet", "processor")
        .expect("StatefulSet processor");
    let spec = statefulset
        .pointer("/spec/template/spec")
        .expect("pod spec");
    let container = containers(spec)
        .into_iter()
        .find(|container| str_at(container, "/name") == "processor")
        .expect("container processor");
    // The config file from its ConfigMap, with the pod's environment (its user from the Secret).
    let map = rendered
        .get("ConfigMap", "processor-config")
        .expect("ConfigMap processor-config");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("processor.conf");
    std::fs::write(&path, str_at(map, "/data/processor.conf")).expect("write");
    let loaded =
        processor::config::Config::load_with_env(Some(&path), container_env(&rendered, container))
            .expect("processor.conf loads with the pod's environment");
    let config = &loaded.config;
    let unread = &loaded.warnings;
    assert!(unread.is_empty(), "every key is read: {unread:?}");
    assert!(config.ha.enabled, "the replicas elect the one that scales");
    // `[ha] peers` names every replica by its stable DNS name; each replica finds itself by
    // its pod name (its identity) and forwards to the others.
    let replica_urls = processor_replica_urls(&rendered);
    assert_eq!(config.peers.peers, replica_urls);
    for (n, own) in replica_urls.iter().enumerate() {
        let others = config.peers.others(&format!("processor-{n}"));
        assert_eq!(others.len(), replica_urls.len() - 1, "{others:?}");
        assert!(
            !others.contains(own),
            "processor-{n} forwards to itself: {others:?}"
        );
    }
    assert!(
        config.http.auth_enabled,
        "the write API requires credentials"
    );
    let username = secret_value(&rendered, "processor-auth", "username");
    let password = secret_value(&rendered, "processor-auth", "password");
    assert!(
        config
            .http
            .users
            .iter()
            .any(|user| user.name == username && user.password == password),
        "the agents' credentials are the processor's [[http.users]] entry"
    );
    let port = container
        .pointer("/ports/0/containerPort")
        .and_then(Value::as_u64)
        .expect("a port");
    assert!(
        config.http.bind_address.ends_with(&format!(":{port}")),
        "bind-address {} vs containerPort {port}",
        config.http.bind_address
    );
    let mounts: BTreeMap<&str, &str> = container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|mount| (str_at(mount, "/mountPath"), str_at(mount, "/name")))
        .collect();
    // The data dir is a writable volume (the root file system is read-only).
    assert!(
        mounts.contains_key(config.data_dir.to_str().unwrap_or("")),
        "data_dir {:?} is not a mount: {mounts:?}",
        config.data_dir
    );
    // The processor runs on the mounted config file.
    let args = strings(container, "args");
    let config_path = args
        .iter()
        .position(|arg| arg == "--config")
        .and_then(|at| args.get(at + 1))
        .expect("--config FILE");
    let (config_dir, _) = config_path.rsplit_once('/').expect("an absolute path");
    assert_eq!(mounts.get(config_dir), Some(&"config"), "{config_path}");
    // `[load] dir` + `/tasks` is where the tick ConfigMap is mounted.
    let load = &config.tasks.load;
    assert!(load.enabled, "[load] enabled");
    let tasks_dir = load.dir.join("tasks");
    assert_eq!(
        mounts.get(tasks_dir.to_str().unwrap_or("")),
        Some(&"tasks"),
        "{mounts:?}"
    );
    // One cluster, the processor's own, through its ServiceAccount.
    assert_eq!(config.kubernetes.len(), 1, "{:?}", config.kubernetes);
    let cluster = &config.kubernetes[0];
    assert!(cluster.enabled && cluster.in_cluster && !cluster.dry_run);
    assert!(cluster.api_servers.is_empty() && cluster.namespace.is_empty());
}

#[test]
fn the_task_is_the_tutorial_tick_plus_its_dbrp_line_and_compiles() {
    let Some(rendered) = render("base") else {
        return;
    };
    let map = rendered
        .get("ConfigMap", "processor-tasks")
        .expect("processor-tasks");
    let tick = str_at(map, "/data/autoscale.tick");
    let fixture = std::fs::read_to_string(
        workspace_bins::workspace_root().join("processor/tests/fixtures/tick/autoscale.tick"),
    )
    .expect("the tutorial's tick");
    assert_eq!(tick, format!("dbrp \"autoscale\".\"autogen\"\n\n{fixture}"));
    let pipeline = processor::tick::compile(tick, &Default::default())
        .unwrap_or_else(|error| panic!("autoscale.tick: {error}"));
    assert_eq!(
        pipeline
            .dbrps
            .iter()
            .map(|dbrp| (dbrp.database.as_str(), dbrp.retention_policy.as_str()))
            .collect::<Vec<_>>(),
        vec![("autoscale", "autogen")]
    );
}

#[test]
fn the_app_deployment_label_is_the_deployment_name_in_every_kustomization() {
    for name in kustomizations().expect("list overlays") {
        let Some(rendered) = render(&name) else {
            return;
        };
        let mut checked = 0;
        for deployment in rendered.all("Deployment") {
            let spec = deployment.pointer("/spec/template/spec").expect("pod spec");
            for container in containers(spec) {
                let env = container.get("env").and_then(Value::as_array);
                let Some(var) = env
                    .into_iter()
                    .flatten()
                    .find(|var| str_at(var, "/name") == "APP_DEPLOYMENT")
                else {
                    continue;
                };
                let field = str_at(var, "/valueFrom/fieldRef/fieldPath");
                let label = field
                    .strip_prefix("metadata.labels['")
                    .and_then(|rest| rest.strip_suffix("']"))
                    .unwrap_or_else(|| {
                        panic!("{name}: APP_DEPLOYMENT is not a pod label: {field:?}")
                    });
                let value = deployment
                    .pointer("/spec/template/metadata/labels")
                    .and_then(|labels| labels.get(label))
                    .and_then(Value::as_str);
                assert_eq!(
                    value,
                    Some(render::name_of(deployment)),
                    "{name}: label {label}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 1, "{name}: one app container reads APP_DEPLOYMENT");
    }
}

/// The `[ha]` table of the Secret's processor.conf, read as TOML.
fn ha_table(rendered: &Rendered) -> toml::Table {
    let map = rendered
        .get("ConfigMap", "processor-config")
        .expect("ConfigMap processor-config");
    let text = str_at(map, "/data/processor.conf");
    let mut table: toml::Table = text.parse().expect("processor.conf is TOML");
    match table.remove("ha") {
        Some(toml::Value::Table(ha)) => ha,
        other => panic!("processor.conf has no [ha] table: {other:?}"),
    }
}

#[test]
fn the_role_is_bound_to_the_processors_service_account_and_names_only_the_lease() {
    // What the Role grants is checked against the processor's real requests in role_scenario.rs.
    let Some(rendered) = render("overlays/dev") else {
        return;
    };
    let lease_name = ha_table(&rendered)
        .get("lease-name")
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .expect("[ha] lease-name");
    let role = rendered.get("Role", "processor").expect("Role processor");
    let mut lease_verbs = Vec::new();
    for rule in role
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        assert!(
            rule.get("nonResourceURLs").is_none(),
            "unexpected nonResourceURLs"
        );
        let is_lease = strings(rule, "apiGroups") == ["coordination.k8s.io"]
            && strings(rule, "resources") == ["leases"];
        if is_lease {
            // The one Lease by name; `create` cannot be limited by name, so it is alone.
            let verbs = strings(rule, "verbs");
            if rule.get("resourceNames").is_some() {
                assert_eq!(strings(rule, "resourceNames"), vec![lease_name.clone()]);
                assert!(!verbs.contains(&"create".to_owned()), "{verbs:?}");
            } else {
                assert_eq!(verbs, vec!["create".to_owned()], "unnamed lease rule");
            }
            lease_verbs.extend(verbs);
        } else {
            assert!(
                rule.get("resourceNames").is_none(),
                "unexpected resourceNames"
            );
        }
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(
                !strings(rule, field).contains(&"*".to_owned()),
                "no wildcard {field}"
            );
        }
    }
    lease_verbs.sort();
    assert_eq!(
        lease_verbs,
        ["create", "get", "update", "watch"],
        "the Lease's verbs"
    );
    assert!(
        rendered.all("ClusterRole").next().is_none()
            && rendered.all("ClusterRoleBinding").next().is_none(),
        "nothing cluster-wide"
    );
    let binding = rendered
        .get("RoleBinding", "processor")
        .expect("RoleBinding");
    assert_eq!(str_at(binding, "/roleRef/kind"), "Role");
    assert_eq!(str_at(binding, "/roleRef/name"), "processor");
    assert_eq!(str_at(binding, "/subjects/0/kind"), "ServiceAccount");
    assert_eq!(str_at(binding, "/subjects/0/name"), "processor");
    assert_eq!(str_at(binding, "/subjects/0/namespace"), "autoscale-dev");
    let statefulset = rendered
        .get("StatefulSet", "processor")
        .expect("StatefulSet");
    assert_eq!(
        str_at(statefulset, "/spec/template/spec/serviceAccountName"),
        "processor"
    );
    // Only the processor's pods get an API token.
    for (owner, spec) in rendered.pod_specs() {
        let automount = spec
            .get("automountServiceAccountToken")
            .and_then(Value::as_bool);
        let expected = owner == "StatefulSet/processor";
        assert_eq!(automount, Some(expected), "{owner}");
    }
}

#[test]
fn every_pod_is_hardened_and_every_sidecar_is_native() {
    for name in kustomizations().expect("list overlays") {
        let Some(rendered) = render(&name) else {
            return;
        };
        for (owner, spec) in rendered.pod_specs() {
            let at = |pointer: &str| spec.pointer(pointer).cloned().unwrap_or(Value::Null);
            assert_eq!(
                at("/securityContext/runAsNonRoot"),
                Value::Bool(true),
                "{name}: {owner}"
            );
            assert_eq!(
                at("/securityContext/seccompProfile/type"),
                Value::from("RuntimeDefault"),
                "{name}: {owner}"
            );
            assert!(
                at("/terminationGracePeriodSeconds").is_u64(),
                "{name}: {owner}"
            );
            if at("/hostNetwork") == Value::Bool(true) {
                assert_eq!(
                    at("/dnsPolicy"),
                    Value::from("ClusterFirstWithHostNet"),
                    "{name}: {owner}"
                );
            }
            let sidecars = spec.get("initContainers").and_then(Value::as_array);
            for sidecar in sidecars.into_iter().flatten() {
                assert_eq!(
                    str_at(sidecar, "/restartPolicy"),
                    "Always",
                    "{name}: {owner}"
                );
            }
            for container in containers(spec) {
                let what = format!("{name}: {owner} container {}", str_at(container, "/name"));
                let sc = |pointer: &str| {
                    container
                        .pointer(&format!("/securityContext{pointer}"))
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                assert_eq!(
                    sc("/allowPrivilegeEscalation"),
                    Value::Bool(false),
                    "{what}"
                );
                assert_eq!(sc("/readOnlyRootFilesystem"), Value::Bool(true), "{what}");
                assert_eq!(
                    sc("/capabilities/drop"),
                    serde_json::json!(["ALL"]),
                    "{what}"
                );
                assert!(sc("/capabilities/add").is_null(), "{what}");
                assert!(sc("/privileged") != Value::Bool(true), "{what}");
                for pointer in [
                    "/resources/requests/cpu",
                    "/resources/requests/memory",
                    "/resources/limits/memory",
                ] {
                    assert!(container.pointer(pointer).is_some(), "{what}: no {pointer}");
                }
            }
        }
    }
}

#[test]
fn no_kustomization_ships_a_secret_or_a_placeholder_password() {
    let readme = std::fs::read_to_string(manifests_dir().join("README.md")).expect("README");
    for name in kustomizations().expect("list overlays") {
        let Some(rendered) = render(&name) else {
            return;
        };
        let secrets: Vec<&str> = rendered.all("Secret").map(render::name_of).collect();
        assert!(secrets.is_empty(), "{name}: ships Secrets {secrets:?}");
        for placeholder in processor::config::http::PLACEHOLDER_SECRETS {
            assert!(
                !rendered.yaml.contains(&format!("\"{placeholder}\""))
                    && !rendered
                        .yaml
                        .contains(&format!("password: {placeholder}\n")),
                "{name}: a placeholder secret {placeholder:?} in the manifests"
            );
        }
        // Every Secret key a pod reads is one the documented command creates.
        for (owner, spec) in rendered.pod_specs() {
            for container in containers(spec) {
                let env = container.get("env").and_then(Value::as_array);
                for reference in env
                    .into_iter()
                    .flatten()
                    .filter_map(|var| var.pointer("/valueFrom/secretKeyRef"))
                {
                    let (secret, key) = (str_at(reference, "/name"), str_at(reference, "/key"));
                    assert!(
                        manifests_tests::created_secret_value(secret, key).is_some(),
                        "{name}: {owner} reads Secret {secret} key {key}"
                    );
                }
            }
        }
    }
    assert!(
        readme.contains("create secret generic processor-auth"),
        "manifests/README.md documents the command that creates the Secret"
    );
    for (key, _) in manifests_tests::CREATED_SECRET_KEYS {
        assert!(
            readme.contains(&format!("--from-literal={key}=")),
            "manifests/README.md: the command sets {key}"
        );
    }
}

/// Whether `selector` (a LabelSelector with matchLabels only) selects `labels`.
fn selects(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    assert!(
        selector.get("matchExpressions").is_none(),
        "matchExpressions are not checked here"
    );
    selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value))
}

#[test]
fn the_network_policy_admits_only_agent_and_processor_pods_to_the_processors_port() {
    for name in kustomizations().expect("list overlays") {
        let Some(rendered) = render(&name) else {
            return;
        };
        let policy = rendered
            .get("NetworkPolicy", "processor")
            .unwrap_or_else(|| panic!("{name}: NetworkPolicy processor"));
        let rules = policy
            .pointer("/spec/ingress")
            .and_then(Value::as_array)
            .expect("ingress rules");
        assert_eq!(rules.len(), 1, "{name}: one rule");
        let peers = rules[0]
            .get("from")
            .and_then(Value::as_array)
            .expect("from");
        assert!(
            peers.iter().all(|peer| peer.get("podSelector").is_some()
                && peer.get("namespaceSelector").is_none()
                && peer.get("ipBlock").is_none()),
            "{name}: only pods of the namespace: {peers:?}"
        );
        let port = str_at(&rules[0], "/ports/0/port");
        let mut templates = Vec::new();
        for kind in ["Deployment", "DaemonSet", "StatefulSet"] {
            templates.extend(rendered.all(kind));
        }
        let mut selected_processors = 0;
        for object in templates {
            let owner = format!("{}/{}", render::kind_of(object), render::name_of(object));
            let labels = object
                .pointer("/spec/template/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let spec = object.pointer("/spec/template/spec").expect("pod spec");
            let admitted = peers
                .iter()
                .any(|peer| selects(&peer["podSelector"], &labels));
            let is_processor = selects(&policy["spec"]["podSelector"], &labels);
            let runs_agent = containers(spec).into_iter().any(|container| {
                strings(container, "args")
                    .iter()
                    .any(|arg| arg.ends_with("telegraf.conf"))
            });
            if is_processor {
                selected_processors += 1;
                // The rule's port is the processor container's named port.
                let ports: Vec<&str> = containers(spec)
                    .into_iter()
                    .flat_map(|container| {
                        container
                            .get("ports")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .map(|p| str_at(p, "/name"))
                    })
                    .collect();
                assert!(ports.contains(&port), "{name}: port {port:?} vs {ports:?}");
            }
            assert_eq!(
                admitted,
                runs_agent || is_processor,
                "{name}: {owner} (labels {labels:?}) admitted: {admitted}, runs an agent: \
                 {runs_agent}"
            );
        }
        assert!(
            selected_processors >= 1,
            "{name}: selects the processor's pods"
        );
    }
}

#[test]
fn no_kustomization_exposes_the_processor_outside_the_cluster() {
    // Its task API can scale any workload the Role allows (manifests/README.md, "Not exposed").
    for name in kustomizations().expect("list overlays") {
        let Some(rendered) = render(&name) else {
            return;
        };
        let service = rendered
            .get("Service", "processor")
            .expect("Service processor");
        let kind = service.pointer("/spec/type").and_then(Value::as_str);
        assert!(
            matches!(kind, None | Some("ClusterIP")),
            "{name}: Service processor is {kind:?}"
        );
        assert!(
            rendered.all("Ingress").next().is_none(),
            "{name}: an Ingress"
        );
    }
}

/// [`selects`] for pod labels as a JSON value; a selector without `matchLabels` selects
/// nothing here (it would select every pod).
fn selects_value(selector: &Value, labels: &Value) -> bool {
    let has_pairs = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_some_and(|pairs| !pairs.is_empty());
    has_pairs
        && labels
            .as_object()
            .is_some_and(|labels| selects(selector, labels))
}

#[test]
fn the_processor_runs_as_two_replicas_with_stable_names_a_budget_and_time_to_release_the_lease() {
    for name in kustomizations().expect("list overlays") {
        let Some(rendered) = render(&name) else {
            return;
        };
        let statefulset = rendered
            .get("StatefulSet", "processor")
            .expect("StatefulSet processor");
        assert!(rendered.get("Deployment", "processor").is_none(), "{name}");
        let spec = statefulset.get("spec").expect("spec");
        assert_eq!(spec["replicas"], 2, "{name}");
        assert_eq!(spec["podManagementPolicy"], "Parallel", "{name}");
        let pod_labels = &spec["template"]["metadata"]["labels"];
        assert!(selects_value(&spec["selector"], pod_labels), "{name}");

        // The headless Service behind the pods' DNS names publishes not-ready pods too.
        let peers = rendered
            .get("Service", str_at(statefulset, "/spec/serviceName"))
            .expect("the StatefulSet's Service");
        assert_eq!(peers["spec"]["clusterIP"], "None", "{name}");
        assert_eq!(peers["spec"]["publishNotReadyAddresses"], true, "{name}");
        let selector = &peers["spec"]["selector"];
        assert!(
            selector
                .as_object()
                .is_some_and(|pairs| pairs.iter().all(|(k, v)| pod_labels.get(k) == Some(v))),
            "{name}: {selector}"
        );
        // The client Service stays for the task API.
        assert!(rendered.get("Service", "processor").is_some(), "{name}");

        // At most one replica away at a time.
        let budget = rendered
            .get("PodDisruptionBudget", "processor")
            .expect("PodDisruptionBudget processor");
        let one = Value::from(1);
        assert!(
            budget["spec"]["maxUnavailable"] == one || budget["spec"]["minAvailable"] == one,
            "{name}: {budget}"
        );
        assert!(
            selects_value(&budget["spec"]["selector"], pod_labels),
            "{name}"
        );

        // Spread over nodes.
        let pod = &spec["template"]["spec"];
        let terms = pod
            .pointer("/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .expect("a pod anti-affinity");
        assert!(
            terms.iter().any(|term| {
                term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
                    && selects_value(&term["podAffinityTerm"]["labelSelector"], pod_labels)
            }),
            "{name}: {terms:?}"
        );

        // The identity is the pod name, the Lease's namespace the pod's.
        let container = containers(pod)
            .into_iter()
            .find(|container| str_at(container, "/name") == "processor")
            .expect("container processor");
        let field = |var: &str| {
            container["env"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|env| env["name"] == var)
                .map(|env| str_at(env, "/valueFrom/fieldRef/fieldPath").to_owned())
        };
        assert_eq!(
            field("PROCESSOR_HA_IDENTITY").as_deref(),
            Some("metadata.name")
        );
        assert_eq!(
            field("PROCESSOR_HA_LEASE_NAMESPACE").as_deref(),
            Some("metadata.namespace")
        );

        // The grace period outlasts the drain and the Lease's release (at most renew-deadline,
        // 10 s when the file does not set it).
        let map = rendered
            .get("ConfigMap", "processor-config")
            .expect("ConfigMap processor-config");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("processor.conf");
        std::fs::write(&path, str_at(map, "/data/processor.conf")).expect("write");
        let loaded = processor::config::Config::load_with_env(
            Some(&path),
            container_env(&rendered, container),
        )
        .expect("processor.conf loads with the pod's environment");
        let renew_deadline = ha_table(&rendered)
            .get("renew-deadline")
            .and_then(toml::Value::as_str)
            .map(|text| humantime::parse_duration(text).expect("renew-deadline"))
            .unwrap_or(std::time::Duration::from_secs(10));
        let grace = pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("grace");
        let needed = loaded.config.http.shutdown_timeout + renew_deadline;
        assert!(
            std::time::Duration::from_secs(grace) > needed,
            "{name}: terminationGracePeriodSeconds {grace} <= shutdown-timeout + renew-deadline {needed:?}"
        );
    }
}
