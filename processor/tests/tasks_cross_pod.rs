//! compat.md 2.6 end to end: the scenario's agent flushes are POSTed to the write API of an
//! in-process processor (its clock driven by the test), the task's sum goes out through
//! influxDBOut to a real InfluxDB 1.6 (`/usr/bin/influxd`), and what InfluxDB stored equals
//! the true total at every aligned second.

mod pipeline_scenario;
mod tasks_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use hyper::{Method, StatusCode};
use pipeline_scenario::{S, SUM_SCRIPT};
use processor::{Options, Processor};
use tasks_support::{call, config, eventually};
use workspace_bins::peers::{Influxd, http};

#[tokio::test(flavor = "multi_thread")]
async fn the_true_total_reaches_influxdb_through_the_write_api() {
    let dir = tempfile::tempdir().unwrap();
    let Some(influxd) = Influxd::start(&dir.path().join("influxd")) else {
        return;
    };
    let (status, body) = http(influxd.addr, "POST", "/query?q=CREATE+DATABASE+out", "");
    assert_eq!(status, 200, "{body}");
    let scenario = pipeline_scenario::build();
    let now = Arc::new(AtomicI64::new(pipeline_scenario::T0 * S));
    let clock_now = Arc::clone(&now);
    let extra = format!(
        "[[influxdb]]\nname = \"local\"\nurls = [\"http://{}\"]\ndefault = true\n",
        influxd.addr
    );
    let processor = Processor::bind(
        config(&dir.path().join("data"), &extra),
        Options {
            clock: Arc::new(move || clock_now.load(Ordering::SeqCst)),
            metrics: false,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let addr = processor.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(processor.serve(async {
        let _ = stopped.await;
    }));
    let script =
        format!("{SUM_SCRIPT}    |influxDBOut().database('out').retentionPolicy('autogen')\n");
    let (status, _, text) = call(
        addr,
        Method::POST,
        "/kapacitor/v1/tasks",
        &tasks_support::define_body("cross_pod", &script, "enabled"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");

    let mut written = 0u64;
    for flush in &scenario.flushes {
        now.store(flush.arrival_ns, Ordering::SeqCst);
        let (status, _, text) = call(
            addr,
            Method::POST,
            "/write?db=autoscale&rp=autogen",
            &flush.body,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        written += flush.body.lines().count() as u64;
        // wait until the task has taken the batch, so the clock matches its arrival
        assert!(
            eventually(|| async move {
                let (_, task, _) =
                    call(addr, Method::GET, "/kapacitor/v1/tasks/cross_pod", "").await;
                task["stats"]["node-stats"]["stream0"]["collected"].as_u64() == Some(written)
            })
            .await,
            "the task did not take the flush at {}",
            flush.arrival_ns / S - pipeline_scenario::T0
        );
    }
    // past every lateness bound; the task ticks once a second
    now.store((scenario.end + 60) * S, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    let mut sums = BTreeMap::new();
    assert!(
        eventually(|| {
            let json = influxd.query("out", "SELECT total_requests_per_second FROM requests");
            let rows = json["results"][0]["series"][0]["values"]
                .as_array()
                .map_or(0, Vec::len);
            async move { rows > 250 }
        })
        .await
    );
    let json = influxd.query("out", "SELECT total_requests_per_second FROM requests");
    for row in json["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
    {
        let secs = row[0].as_i64().unwrap_or_else(|| panic!("row {row}")) / S;
        let value = row[1].as_f64().unwrap_or_else(|| panic!("row {row}"));
        sums.insert(secs, value);
    }
    let compared = pipeline_scenario::check(&scenario, &sums);
    assert!(compared > 250, "compared {compared} seconds");
    let _ = stop.send(());
    server.await.unwrap();
}
