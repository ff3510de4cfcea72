//! influxDBOut end to end: a task in an in-process processor writes to a real InfluxDB 1.6
//! (`/usr/bin/influxd`), which is queried back; URL failover, a hung InfluxDB that must not
//! stall the task, and an InfluxDB that comes back after being down.

mod tasks_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hyper::{Method, StatusCode};
use tasks_support::{Running, call, config, define_body, eventually, start, write_seconds};
use workspace_bins::peers::Influxd;

/// Seconds since the epoch of the points written (2023-11-14T22:13:20Z).
const T0: i64 = 1_700_000_000;
const S: i64 = 1_000_000_000;

fn script(props: &str) -> String {
    format!(
        "dbrp \"autoscale\".\"autogen\"\n\
         stream\n    |from()\n        .measurement('requests')\n\
         \x20   |influxDBOut()\n        .database('out')\n        .retentionPolicy('autogen')\n\
         \x20       .measurement('copied')\n        .tag('via', 'processor')\n{props}\n"
    )
}

fn influxdb_section(urls: &[String], timeout: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "[[influxdb]]\nname = \"local\"\ndefault = true\nurls = [{}]\ntimeout = \"{timeout}\"\n",
        urls.join(", ")
    )
}

/// Starts an in-process processor with `influxdb` (its `[[influxdb]]` section) and enables
/// task `id`: [`script`] with `props`.
async fn start_task(dir: &Path, influxdb: &str, id: &str, props: &str) -> Running {
    let running = start(config(&dir.join("data"), influxdb)).await.unwrap();
    let (status, _, text) = call(
        running.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &define_body(id, &script(props), "enabled"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    running
}

async fn node_stat(addr: SocketAddr, task: &str, node: &str, stat: &str) -> u64 {
    let (_, json, _) = call(
        addr,
        Method::GET,
        &format!("/kapacitor/v1/tasks/{task}"),
        "",
    )
    .await;
    json["stats"]["node-stats"][node][stat]
        .as_u64()
        .unwrap_or_default()
}

/// `(time in ns, value of v, tag via)` of every stored `copied` point.
fn stored(influxd: &Influxd) -> Vec<(i64, f64, String)> {
    let json = influxd.query("out", "SELECT v, via FROM copied");
    json["results"][0]["series"][0]["values"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    (
                        row[0].as_i64().unwrap_or_default(),
                        row[1].as_f64().unwrap_or_default(),
                        row[2].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A loopback address that accepts connections (the kernel's backlog) but never answers.
fn black_hole() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// A loopback URL nothing listens on.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}", workspace_bins::peers::free_port())
}

#[tokio::test(flavor = "multi_thread")]
async fn created_database_holds_the_points_at_their_second_precision_times() {
    let dir = tempfile::tempdir().unwrap();
    let Some(influxd) = Influxd::start(&dir.path().join("influxd")) else {
        return;
    };
    let running = start_task(
        dir.path(),
        &influxdb_section(&[format!("http://{}", influxd.addr)], "5s"),
        "copy",
        "        .create()\n        .precision('s')\n        .buffer(3)\n        .flushInterval(1h)",
    )
    .await;
    let addr = running.addr;

    // two points stay buffered (.buffer(3), an hour's flush interval)...
    write_seconds(addr, &format!("requests v=1 {T0}\nrequests v=2 {}", T0 + 1)).await;
    assert!(
        eventually(
            || async move { node_stat(addr, "copy", "influxdb_out2", "collected").await == 2 }
        )
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        node_stat(addr, "copy", "influxdb_out2", "points_written").await,
        0
    );
    // ...the third fills the buffer: the database is created and all three written
    write_seconds(addr, &format!("requests v=3 {}", T0 + 2)).await;
    assert!(
        eventually(|| async move {
            node_stat(addr, "copy", "influxdb_out2", "points_written").await == 3
        })
        .await
    );
    let rows = stored(&influxd);
    assert_eq!(
        rows,
        vec![
            (T0 * S, 1.0, "processor".to_owned()),
            ((T0 + 1) * S, 2.0, "processor".to_owned()),
            ((T0 + 2) * S, 3.0, "processor".to_owned()),
        ]
    );
    let (_, task, _) = call(addr, Method::GET, "/kapacitor/v1/tasks/copy", "").await;
    assert_eq!(
        task["stats"]["node-stats"]["influxdb_out2"]["write_errors"],
        0
    );
    let dot = task["dot"].as_str().unwrap_or_default();
    assert!(dot.contains("points_written=\"3\""), "{dot}");
    assert!(dot.contains("write_errors=\"0\""), "{dot}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn points_still_buffered_are_written_when_the_processor_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let Some(influxd) = Influxd::start(&dir.path().join("influxd")) else {
        return;
    };
    let running = start_task(
        dir.path(),
        &influxdb_section(&[format!("http://{}", influxd.addr)], "5s"),
        "copy",
        "        .create()\n        .buffer(1000)\n        .flushInterval(1h)",
    )
    .await;
    let addr = running.addr;
    write_seconds(addr, &format!("requests v=1 {T0}\nrequests v=2 {}", T0 + 1)).await;
    assert!(
        eventually(
            || async move { node_stat(addr, "copy", "influxdb_out2", "collected").await == 2 }
        )
        .await
    );
    assert!(stored(&influxd).is_empty(), "buffered for an hour");
    running.stop().await;
    let values: Vec<f64> = stored(&influxd).into_iter().map(|(_, v, _)| v).collect();
    assert_eq!(values, vec![1.0, 2.0], "flushed at shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_first_url_fails_over_to_the_live_second() {
    let dir = tempfile::tempdir().unwrap();
    let Some(influxd) = Influxd::start(&dir.path().join("influxd")) else {
        return;
    };
    let running = start_task(
        dir.path(),
        &influxdb_section(&[dead_url(), format!("http://{}", influxd.addr)], "5s"),
        "failover",
        "        .create()\n        .precision('s')\n        .buffer(1)",
    )
    .await;
    let addr = running.addr;
    write_seconds(addr, &format!("requests v=7 {T0}")).await;
    assert!(
        eventually(|| {
            let rows = stored(&influxd).len();
            async move { rows == 1 }
        })
        .await
    );
    assert_eq!(stored(&influxd)[0].0, T0 * S);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_influxdb_does_not_stall_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let (_listener, url) = black_hole();
    // every write waits the whole timeout: an hour
    let running = start_task(
        dir.path(),
        &influxdb_section(&[url], "1h"),
        "hung",
        "        .precision('s')\n        .buffer(1)",
    )
    .await;
    let addr = running.addr;
    for i in 0..20 {
        write_seconds(addr, &format!("requests v={i} {}", T0 + i)).await;
        let expected = (i + 1) as u64;
        assert!(
            eventually(|| async move {
                node_stat(addr, "hung", "influxdb_out2", "collected").await == expected
            })
            .await,
            "the task stalled at point {i}"
        );
    }
    assert_eq!(
        node_stat(addr, "hung", "influxdb_out2", "points_written").await,
        0
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn points_written_while_influxdb_is_down_arrive_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut influxd) = Influxd::start(&dir.path().join("influxd")) else {
        return;
    };
    let running = start_task(
        dir.path(),
        &influxdb_section(&[format!("http://{}", influxd.addr)], "2s"),
        "outage",
        "        .create()\n        .precision('s')\n        .buffer(2)\n        .flushInterval(200ms)",
    )
    .await;
    let addr = running.addr;
    write_seconds(addr, &format!("requests v=1 {T0}\nrequests v=2 {}", T0 + 1)).await;
    // written and acknowledged (stored is not enough: a kill before the answer is a failure)
    assert!(
        eventually(|| async move {
            node_stat(addr, "outage", "influxdb_out2", "points_written").await == 2
        })
        .await
    );

    tokio::task::block_in_place(|| influxd.stop());
    write_seconds(
        addr,
        &format!("requests v=3 {}\nrequests v=4 {}", T0 + 2, T0 + 3),
    )
    .await;
    write_seconds(addr, &format!("requests v=5 {}", T0 + 4)).await;
    assert!(
        eventually(|| async move {
            node_stat(addr, "outage", "influxdb_out2", "write_errors").await >= 2
        })
        .await
    );
    assert_eq!(
        node_stat(addr, "outage", "influxdb_out2", "points_written").await,
        2
    );

    tokio::task::block_in_place(|| influxd.restart());
    assert!(
        eventually(|| async move {
            node_stat(addr, "outage", "influxdb_out2", "points_written").await == 5
        })
        .await
    );
    let values: Vec<f64> = stored(&influxd).into_iter().map(|(_, v, _)| v).collect();
    assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        node_stat(addr, "outage", "influxdb_out2", "points_dropped").await,
        0
    );
    running.stop().await;
}

#[tokio::test]
async fn a_task_whose_influxdbout_has_no_cluster_is_refused_naming_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(&dir.path().join("data"), "")).await.unwrap();
    let (status, json, text) = call(
        running.addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &define_body("nowhere", &script(""), "enabled"),
    )
    .await;
    assert_ne!(status, StatusCode::OK, "{text}");
    let error = json["error"].as_str().unwrap_or(&text);
    assert!(error.contains("influxdb_out2"), "{error}");
    assert!(error.contains("[[influxdb]]"), "{error}");
    running.stop().await;
}
