//! The agent binary between real programs: a real `prometheus-node-exporter` scraped, a real
//! InfluxDB 1.6 written to, and InfluxDB stopped mid-run to prove nothing within the buffer is
//! lost. The file output records what the agent gathered, to compare with what arrived.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use workspace_bins::peers::{Influxd, NodeExporter};

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("telegraf.conf");
    std::fs::write(&path, body).unwrap();
    path
}

/// The series key of a line: everything before the first unescaped space.
fn series_key(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b' ' => return &line[..i],
            _ => i += 1,
        }
    }
    line
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn values(result: &serde_json::Value) -> Vec<serde_json::Value> {
    result["results"][0]["series"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_node_exporter_sample_arrives_in_influxdb() {
    let dir = tempfile::tempdir().unwrap();
    let Some(influxd) = Influxd::start(&dir.path().join("influxd")) else {
        return;
    };
    let Some(exporter) = NodeExporter::start() else {
        return;
    };
    let gathered = dir.path().join("gathered.lp");
    let config = write_config(
        dir.path(),
        &format!(
            "[agent]\ninterval = \"1s\"\nomit_hostname = true\n\
             [[inputs.prometheus]]\nurls = [\"http://{}/metrics\"]\n\
             [[outputs.influxdb]]\nurls = [\"http://{}\"]\ndatabase = \"node\"\n\
             [[outputs.file]]\nfiles = [\"{}\"]\n",
            exporter.addr,
            influxd.addr,
            gathered.display()
        ),
    );
    let output = Command::new(workspace_bins::binary("agent", "agent"))
        .args(["--config", config.to_str().unwrap(), "--once"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = lines_of(&gathered);
    assert!(
        lines.len() > 200,
        "a node_exporter scrape has hundreds of samples: {}",
        lines.len()
    );
    let sent: BTreeSet<String> = lines.iter().map(|l| series_key(l).to_owned()).collect();
    assert_eq!(
        sent.len(),
        lines.len(),
        "one point per series in one scrape"
    );
    let stored: BTreeSet<String> = values(&influxd.query("node", "SHOW SERIES"))
        .iter()
        .filter_map(|v| v[0].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<_> = sent.difference(&stored).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} of {} series missing, e.g. {missing:?}",
        sent.difference(&stored).count(),
        sent.len()
    );
    assert_eq!(stored.len(), sent.len());
    // A value read back: the exporter's build info gauge is 1.
    let build = influxd.query("node", "SELECT gauge FROM node_exporter_build_info");
    assert_eq!(values(&build)[0][1].as_f64(), Some(1.0));
}

use workspace_bins::peers::KillOnDrop as Running;

#[test]
fn an_influxdb_outage_loses_nothing_within_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut influxd) = Influxd::start(&dir.path().join("influxd")) else {
        return;
    };
    let Some(exporter) = NodeExporter::start() else {
        return;
    };
    let gathered = dir.path().join("gathered.lp");
    let config = write_config(
        dir.path(),
        &format!(
            "[agent]\ninterval = \"1s\"\nflush_interval = \"1s\"\nomit_hostname = true\n\
             [[inputs.prometheus]]\nurls = [\"http://{}/metrics\"]\nnamepass = [\"node_exporter_build_info\"]\n\
             [[outputs.influxdb]]\nurls = [\"http://{}\"]\ndatabase = \"outage\"\ntimeout = \"1s\"\n\
             [[outputs.file]]\nfiles = [\"{}\"]\n",
            exporter.addr,
            influxd.addr,
            gathered.display()
        ),
    );
    let agent = Running(
        Command::new(workspace_bins::binary("agent", "agent"))
            .args(["--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let count = |influxd: &Influxd| {
        values(&influxd.query("outage", "SELECT gauge FROM node_exporter_build_info")).len()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&influxd) < 3 {
        assert!(Instant::now() < deadline, "no points arrived");
        std::thread::sleep(Duration::from_millis(200));
    }
    influxd.stop();
    let outage_from = lines_of(&gathered).len();
    std::thread::sleep(Duration::from_secs(5));
    influxd.restart();
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("kill")
        .args(["-TERM", &agent.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut agent = agent;
    let exit = agent.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");

    let lines = lines_of(&gathered);
    assert!(
        lines.len() >= outage_from + 4,
        "metrics were gathered during the outage: {} then {}",
        outage_from,
        lines.len()
    );
    let sent: Vec<i64> = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        sent.windows(2).all(|w| w[0] < w[1]),
        "gathered in time order"
    );
    let stored: Vec<i64> =
        values(&influxd.query("outage", "SELECT gauge FROM node_exporter_build_info"))
            .iter()
            .map(|v| v[0].as_i64().unwrap())
            .collect();
    assert_eq!(
        stored, sent,
        "every gathered point is in InfluxDB after the outage"
    );
}
