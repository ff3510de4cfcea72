//! The task sections of the config and their environment overrides.

use processor::config::Config;

#[test]
fn pipeline_and_load_keys_take_environment_overrides_and_processor_wins() {
    let vars = [
        ("KAPACITOR_PIPELINE_LATENESS", "40s"),
        ("PROCESSOR_PIPELINE_LATENESS", "20s"),
        ("KAPACITOR_PIPELINE_SERIES_EXPIRY", "1m"),
        ("PROCESSOR_LOAD_ENABLED", "true"),
        ("KAPACITOR_LOAD_DIR", "/tmp/load"),
        ("PROCESSOR_PIPELINE_QUEUE_SIZE", "8"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let loaded = Config::load_with_env(None, vars).unwrap();
    let tasks = &loaded.config.tasks;
    assert_eq!(tasks.pipeline.lateness, std::time::Duration::from_secs(20));
    assert_eq!(
        tasks.pipeline.series_expiry,
        std::time::Duration::from_secs(60)
    );
    assert_eq!(tasks.pipeline.queue_size, 8);
    assert!(tasks.load.enabled);
    assert_eq!(tasks.load.dir, std::path::PathBuf::from("/tmp/load"));
}

#[test]
fn defaults_suit_ten_second_flushes() {
    let loaded = Config::parse("").unwrap();
    let p = &loaded.config.tasks.pipeline;
    assert_eq!(p.lateness, std::time::Duration::from_secs(15));
    assert_eq!(p.series_expiry, std::time::Duration::from_secs(30));
    assert_eq!(p.state_expiry, std::time::Duration::from_secs(600));
    assert!(!loaded.config.tasks.load.enabled);
}

#[test]
fn influxdb_sections_parse_and_unknown_keys_are_warned() {
    let loaded = Config::parse(
        "[[influxdb]]\nname = \"a\"\nurls = [\"http://127.0.0.1:8086\"]\nssl = true\n",
    )
    .unwrap();
    assert_eq!(
        loaded.config.tasks.influxdb[0].urls,
        vec!["http://127.0.0.1:8086"]
    );
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("influxdb[0].ssl")),
        "{:?}",
        loaded.warnings
    );
}
