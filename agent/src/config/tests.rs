use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Config {
    Config::parse(text, no_env).unwrap_or_else(|e| panic!("{e}"))
}

const MINIMAL: &str =
    "[[inputs.prometheus]]\nurls = [\"http://localhost:8000\"]\n[[outputs.file]]\n";

#[test]
fn the_tutorial_config_loads_with_the_expected_settings() {
    let text = include_str!("../../examples/tutorial-telegraf.conf");
    let config = parse(text);
    let agent = &config.agent;
    assert_eq!(agent.interval, Duration::from_secs(1));
    assert!(agent.round_interval);
    assert_eq!(agent.metric_batch_size, 1000);
    assert_eq!(agent.metric_buffer_limit, 10_000);
    assert_eq!(agent.collection_jitter, Duration::ZERO);
    assert_eq!(agent.flush_interval, Duration::from_secs(10));
    assert_eq!(agent.flush_jitter, Duration::ZERO);
    assert_eq!(agent.precision, Some(Duration::from_secs(1)));
    assert!(agent.debug && !agent.quiet && !agent.omit_hostname);
    assert_eq!(agent.hostname, "");

    assert_eq!(config.inputs.len(), 1);
    let input = &config.inputs[0];
    assert_eq!(input.urls, ["http://localhost:8000/metrics"]);
    assert_eq!(input.metric_version, 1);
    assert_eq!(input.url_tag, "url");
    let namepass = input.filter.namepass.as_ref().expect("namepass");
    assert!(namepass.is_match("requests"));
    assert!(!namepass.is_match("process_open_fds"));

    let [Output::Influxdb(influx), Output::File(file)] = config.outputs.as_slice() else {
        panic!("outputs: {:?}", config.outputs);
    };
    assert_eq!(influx.urls, ["http://kapacitor:9092"]);
    assert_eq!(influx.database, "autoscale");
    assert_eq!(influx.retention_policy, "autogen");
    assert_eq!(influx.write_consistency, "any");
    assert_eq!(influx.timeout, Duration::from_secs(5));
    assert_eq!(influx.content_encoding, ContentEncoding::Gzip);
    assert_eq!(file.files, ["stdout"]);

    // The only remark is the old precision form.
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].starts_with("agent.precision: \"s\" is the old unit-only form"));
}

#[test]
fn defaults_match_telegraf() {
    let config = parse(MINIMAL);
    assert_eq!(config.agent.interval, Duration::from_secs(10));
    assert_eq!(config.agent.flush_interval, Duration::from_secs(10));
    assert_eq!(config.agent.metric_batch_size, 1000);
    assert_eq!(config.agent.metric_buffer_limit, 10_000);
    assert_eq!(config.agent.precision, None);
    assert!(config.agent.round_interval);
    assert_eq!(config.inputs[0].timeout, Duration::from_secs(5));
    let parsed = parse("[[inputs.prometheus]]\nurls=[\"http://a\"]\n[[outputs.influxdb]]\n");
    let Output::Influxdb(influx) = &parsed.outputs[0] else {
        panic!()
    };
    assert_eq!(influx.urls, ["http://localhost:8086"]);
    assert_eq!(influx.database, "telegraf");
    assert!(!influx.skip_database_creation);
}

#[test]
fn unknown_keys_and_plugins_are_reported_by_name() {
    let text = format!(
        "{MINIMAL}[agent]\ncollection_offset = \"1s\"\n\
         [[inputs.cpu]]\npercpu = true\n\
         [[outputs.kafka]]\nbrokers = []\n\
         [[processors.rename]]\n\
         [[inputs.prometheus]]\nurls = [\"http://b\"]\nkubernetes_services = [\"http://svc\"]\n"
    );
    let config = parse(&text);
    let expected = [
        "agent.collection_offset: option not implemented; ignored",
        "inputs.cpu: input plugin not implemented; it collects nothing",
        "outputs.kafka: output plugin not implemented; nothing is written to it",
        "processors.rename: plugin not implemented; metrics pass through unchanged",
        "inputs.prometheus[1].kubernetes_services: option not implemented; ignored",
    ];
    for warning in expected {
        assert!(
            config.warnings.iter().any(|w| w == warning),
            "missing {warning:?} in {:#?}",
            config.warnings
        );
    }
    assert_eq!(
        config.warnings.len(),
        expected.len(),
        "{:#?}",
        config.warnings
    );
}

#[test]
fn environment_variables_are_substituted_before_parsing() {
    let text = "[[inputs.prometheus]]\nurls = [\"http://localhost:${PORT}\"]\n\
                [[outputs.influxdb]]\nurls = [\"$URL\"]\ndatabase = \"${DB:-autoscale}\"\n\
                [agent]\nmetric_batch_size = ${BATCH}\n";
    let env = |name: &str| match name {
        "PORT" => Some("8000".to_owned()),
        "URL" => Some("http://processor:9092".to_owned()),
        "BATCH" => Some("50".to_owned()),
        _ => None,
    };
    let config = Config::parse(text, env).unwrap();
    assert_eq!(config.inputs[0].urls, ["http://localhost:8000"]);
    let Output::Influxdb(influx) = &config.outputs[0] else {
        panic!()
    };
    assert_eq!(influx.urls, ["http://processor:9092"]);
    assert_eq!(influx.database, "autoscale");
    assert_eq!(config.agent.metric_batch_size, 50);
}

#[test]
fn bad_values_name_the_key() {
    let cases = [
        ("[agent]\ninterval = \"soon\"\n", "agent.interval"),
        ("[agent]\ninterval = \"0s\"\n", "agent.interval"),
        (
            "[agent]\nmetric_batch_size = 0\n",
            "agent.metric_batch_size",
        ),
        (
            "[agent]\nround_interval = \"yes\"\n",
            "agent.round_interval",
        ),
        ("[agent]\nprecision = \"fortnight\"\n", "agent.precision"),
    ];
    for (extra, key) in cases {
        let error = Config::parse(&format!("{MINIMAL}{extra}"), no_env).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Invalid { key: k, .. } if k == key),
            "{extra:?}: {error}"
        );
    }
    let plugin_cases = [
        ("urls = []\n", "inputs.prometheus[0].urls"),
        (
            "urls = [\"http://a\"]\nmetric_version = 3\n",
            "inputs.prometheus[0].metric_version",
        ),
        (
            "urls = [\"http://a\"]\nnamepass = [\"a[\"]\n",
            "inputs.prometheus[0].namepass",
        ),
        (
            "urls = [\"http://a\"]\ntagpass = { cpu = \"x\" }\n",
            "inputs.prometheus[0].tagpass.cpu",
        ),
    ];
    for (body, key) in plugin_cases {
        let text = format!("[[inputs.prometheus]]\n{body}[[outputs.file]]\n");
        let error = Config::parse(&text, no_env).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Invalid { key: k, .. } if k == key),
            "{body:?}: {error}"
        );
    }
}

#[test]
fn missing_inputs_or_outputs_and_broken_toml_are_errors() {
    assert!(matches!(
        Config::parse("[[outputs.file]]\n", no_env),
        Err(ConfigError::NoInputs)
    ));
    assert!(matches!(
        Config::parse("[[inputs.prometheus]]\nurls=[\"http://a\"]\n", no_env),
        Err(ConfigError::NoOutputs)
    ));
    assert!(matches!(
        Config::parse("[agent\n", no_env),
        Err(ConfigError::Toml { .. })
    ));
    assert!(matches!(
        Config::parse("x = \"${NEEDED:?set it}\"\n", no_env),
        Err(ConfigError::Environment { .. })
    ));
}

#[test]
fn durations_accept_numbers_as_seconds() {
    let config = parse(&format!(
        "{MINIMAL}[agent]\ninterval = 2\nflush_interval = 0.5\n"
    ));
    assert_eq!(config.agent.interval, Duration::from_secs(2));
    assert_eq!(config.agent.flush_interval, Duration::from_millis(500));
}

#[test]
fn later_files_add_plugins_and_override_agent_keys() {
    let first = format!("{MINIMAL}[agent]\ninterval = \"5s\"\nflush_interval = \"7s\"\n");
    let second = "[agent]\ninterval = \"1s\"\n[[inputs.prometheus]]\nurls = [\"http://b\"]\n";
    let config = Config::parse_many(&[("a.conf", &first), ("b.conf", second)], no_env).unwrap();
    assert_eq!(config.agent.interval, Duration::from_secs(1));
    assert_eq!(config.agent.flush_interval, Duration::from_secs(7));
    assert_eq!(config.inputs.len(), 2);
}

#[test]
fn host_tag_follows_hostname_and_omit_hostname() {
    let machine = || "vm-1".to_owned();
    assert_eq!(parse(MINIMAL).host_tag(machine).as_deref(), Some("vm-1"));
    let named = parse(&format!("{MINIMAL}[agent]\nhostname = \"pod-9\"\n"));
    assert_eq!(named.host_tag(machine).as_deref(), Some("pod-9"));
    let omitted = parse(&format!("{MINIMAL}[agent]\nomit_hostname = true\n"));
    assert_eq!(omitted.host_tag(machine), None);
}

#[test]
fn input_options_are_read() {
    let text = "[[inputs.prometheus]]\n\
        urls = [\"https://a:9100/metrics\"]\nmetric_version = 2\nresponse_timeout = \"2s\"\n\
        bearer_token_string = \"abc\"\nusername = \"u\"\npassword = \"p\"\n\
        tls_ca = \"/ca.pem\"\ninsecure_skip_verify = true\ninterval = \"30s\"\n\
        name_prefix = \"p_\"\nname_suffix = \"_s\"\nname_override = \"o\"\n\
        fielddrop = [\"gauge\"]\ntagdrop = { mode = [\"idle\"] }\n\
        [inputs.prometheus.tags]\nteam = \"ops\"\n\
        [[outputs.file]]\n";
    let config = parse(text);
    let input = &config.inputs[0];
    assert_eq!(input.metric_version, 2);
    assert_eq!(input.response_timeout, Some(Duration::from_secs(2)));
    assert_eq!(input.bearer_token_string.as_deref(), Some("abc"));
    assert_eq!(input.tls.ca.as_deref(), Some(Path::new("/ca.pem")));
    assert!(input.tls.insecure_skip_verify);
    assert_eq!(input.interval, Some(Duration::from_secs(30)));
    assert_eq!(
        (
            input.name_prefix.as_str(),
            input.name_suffix.as_str(),
            input.name_override.as_str()
        ),
        ("p_", "_s", "o")
    );
    assert_eq!(input.tags.get("team").map(String::as_str), Some("ops"));
    assert!(!input.filter.keep_field("gauge"));
    assert_eq!(input.filter.tagdrop.len(), 1);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn credentials_in_urls_are_refused_without_showing_the_password() {
    let cases = [
        (
            "[[inputs.prometheus]]\nurls = [\"http://a\"]\n\
             [[outputs.influxdb]]\nurls = [\"http://alice:s3cret@host:9092\"]\n",
            "outputs.influxdb[0].urls",
        ),
        (
            "[[inputs.prometheus]]\nurls = [\"http://a\"]\n\
             [[outputs.influxdb]]\nurl = \"http://alice:s3cret@host:9092\"\n",
            "outputs.influxdb[0].url",
        ),
        (
            "[[inputs.prometheus]]\nurls = [\"http://alice:s3cret@app:8000/metrics\"]\n\
             [[outputs.file]]\n",
            "inputs.prometheus[0].urls",
        ),
    ];
    for (text, key) in cases {
        let error = Config::parse(text, no_env).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Invalid { key: k, .. } if k == key),
            "{text:?}: {error}"
        );
        let shown = error.to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("http://***@"), "{shown}");
    }
}

#[test]
fn a_toml_error_on_a_url_line_does_not_show_its_password() {
    let text = "[[outputs.influxdb]]\nurls = [\"http://alice:s3cret@host:9092\" oops]\n";
    let error = Config::parse(text, no_env).unwrap_err();
    assert!(matches!(error, ConfigError::Toml { .. }), "{error}");
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

#[test]
fn intervals_below_the_floor_are_refused() {
    for (extra, key) in [
        ("[agent]\ninterval = \"1ns\"\n", "agent.interval"),
        (
            "[agent]\nflush_interval = \"99ms\"\n",
            "agent.flush_interval",
        ),
        ("[agent]\nflush_interval = 0\n", "agent.flush_interval"),
    ] {
        let error = Config::parse(&format!("{MINIMAL}{extra}"), no_env).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Invalid { key: k, .. } if k == key),
            "{extra:?}: {error}"
        );
        assert!(error.to_string().contains("minimum of 100ms"), "{error}");
    }
    let text =
        "[[inputs.prometheus]]\nurls = [\"http://a\"]\ninterval = \"1ns\"\n[[outputs.file]]\n";
    let error = Config::parse(text, no_env).unwrap_err();
    assert!(
        matches!(&error, ConfigError::Invalid { key, .. } if key == "inputs.prometheus[0].interval"),
        "{error}"
    );
    let at_floor = parse(&format!(
        "{MINIMAL}[agent]\ninterval = \"100ms\"\nflush_interval = \"100ms\"\n"
    ));
    assert_eq!(at_floor.agent.interval, Duration::from_millis(100));
    assert_eq!(at_floor.agent.flush_interval, Duration::from_millis(100));
}

#[test]
fn an_endless_config_file_is_refused_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let endless = dir.path().join("telegraf.conf");
    std::os::unix::fs::symlink("/dev/zero", &endless).unwrap();
    let error = Config::load(Some(&endless), None).unwrap_err();
    assert!(
        matches!(&error, ConfigError::TooLarge { path, limit } if path == &endless && *limit == MAX_CONFIG_FILE_BYTES),
        "{error}"
    );
    assert!(error.to_string().contains("telegraf.conf"), "{error}");

    let conf_dir = tempfile::tempdir().unwrap();
    std::fs::write(conf_dir.path().join("a.conf"), MINIMAL).unwrap();
    std::os::unix::fs::symlink("/dev/zero", conf_dir.path().join("b.conf")).unwrap();
    let error = Config::load(None, Some(conf_dir.path())).unwrap_err();
    assert!(
        matches!(&error, ConfigError::TooLarge { path, .. } if path.ends_with("b.conf")),
        "{error}"
    );
}

fn discovery_error(keys: &str) -> String {
    let text = format!(
        "[[inputs.prometheus]]\nmonitor_kubernetes_pods = true\n{keys}\n[[outputs.file]]\n"
    );
    match Config::parse(&text, no_env) {
        Ok(config) => panic!("{keys}: accepted as {:?}", config.inputs[0].pod_discovery),
        Err(error) => error.to_string(),
    }
}

#[test]
fn pod_discovery_needs_no_urls_and_reads_telegrafs_keys_with_their_defaults() {
    let config = parse(
        "[[inputs.prometheus]]\nmonitor_kubernetes_pods = true\nkubernetes_label_selector = \"app=web\"\n\
         pod_workload_tags = { deployment = \"deployment\" }\n[[outputs.file]]\n",
    );
    let input = &config.inputs[0];
    assert!(input.urls.is_empty());
    let d = input.pod_discovery.as_ref().expect("discovery on");
    assert_eq!(d.method, PodScrapeMethod::Annotations);
    assert_eq!(
        (d.scheme.as_str(), d.port, d.path.as_str()),
        ("http", 9102, "/metrics")
    );
    assert_eq!(d.scope, PodScrapeScope::Cluster);
    assert_eq!(d.namespace_tag, "namespace");
    assert_eq!(d.label_selector, "app=web");
    assert_eq!(d.workload_tags[&WorkloadKind::Deployment], "deployment");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(parse(MINIMAL).inputs[0].pod_discovery.is_none());
}

#[test]
fn out_of_range_discovery_values_are_errors_naming_the_key() {
    for (keys, key) in [
        (
            "monitor_kubernetes_pods_port = 70000",
            "monitor_kubernetes_pods_port",
        ),
        (
            "monitor_kubernetes_pods_port = -1",
            "monitor_kubernetes_pods_port",
        ),
        (
            "monitor_kubernetes_pods_method = \"dns\"",
            "monitor_kubernetes_pods_method",
        ),
        (
            "monitor_kubernetes_pods_scheme = \"ftp\"",
            "monitor_kubernetes_pods_scheme",
        ),
        ("pod_scrape_scope = \"zone\"", "pod_scrape_scope"),
        ("pod_scrape_scope = \"node\"", "pod_scrape_scope"),
        ("pod_scrape_interval = \"10ms\"", "pod_scrape_interval"),
        (
            "pod_workload_tags = { job = \"job\" }",
            "pod_workload_tags.job",
        ),
        ("pod_label_include = [\"[\"]", "pod_label_include"),
    ] {
        let error = discovery_error(keys);
        assert!(
            error.starts_with(&format!("inputs.prometheus[0].{key}:")),
            "{keys}: {error}"
        );
    }
}

#[test]
fn node_scope_takes_the_node_from_the_environment_and_pod_scrape_interval_is_warned_about() {
    let text = "[[inputs.prometheus]]\nmonitor_kubernetes_pods = true\npod_scrape_scope = \"node\"\n\
                pod_scrape_interval = \"30s\"\n[[outputs.file]]\n";
    let env = |name: &str| match name {
        "NODE_NAME" => Some("node-7".to_owned()),
        "NODE_IP" => Some("10.0.0.7".to_owned()),
        _ => None,
    };
    let config = Config::parse(text, env).unwrap_or_else(|e| panic!("{e}"));
    let d = config.inputs[0]
        .pod_discovery
        .as_ref()
        .expect("discovery on");
    assert_eq!(d.node_name.as_deref(), Some("node-7"));
    assert_eq!(d.node_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(d.scrape_interval, Duration::from_secs(30));
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.starts_with("inputs.prometheus[0].pod_scrape_interval:")),
        "{:?}",
        config.warnings
    );
}
