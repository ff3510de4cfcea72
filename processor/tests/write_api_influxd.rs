//! Side by side with a real InfluxDB 1.6 (`/usr/bin/influxd`, Debian package `influxdb`, started
//! by `workspace_bins::peers::Influxd` on free loopback ports in a temp dir): the same batches get the same status codes (and
//! the same error bodies), and the series written read back the same from both.

mod write_api_support;

use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use processor::config::Http;
use serde_json::Value as Json;
use workspace_bins::peers::Influxd;
use write_api_support::*;

/// Batches both must accept (204).
fn valid_batches() -> Vec<(&'static str, String)> {
    let telegraf: String = (0..50)
        .map(|i| {
            format!(
                "cpu,cpu=cpu{},host=web-{} usage_idle={}.5,usage_user=1.25,usage_system=0.5 {}\n",
                i % 4,
                i % 3,
                90 + i % 7,
                1_700_000_000_000_000_000i64 + i * 1_000_000_000
            )
        })
        .collect();
    vec![
        ("", telegraf),
        ("", "mem,host=a used=1024i,free=2048i,ok=true,label=\"a b\" 1700000000000000000\n".into()),
        ("", "\n# comment\n  \nweird,z=1,a=2 v=1 1700000000000000001\n".into()),
        ("", "esc\\ m\\,x,t\\ k\\=y=v\\,a\\ l f\\=k=\"str \\\"q\\\" \\\\ back\" 1700000000000000002".into()),
        ("", "nums a=1.,b=.5,c=-.5,d=1e10,e=1.e5,f=0005,g=-0i,h=-9223372036854775808i 1700000000000000003\n".into()),
        ("", "bools a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE 1700000000000000004\n".into()),
        ("", "dupf value=1,value=2 1700000000000000005\n".into()),
        ("", "neg value=1 -1000\n".into()),
        ("", "nl s=\"line\nbreak\" 1700000000000000006\n".into()),
        ("", "utf8,città=zürich température=21.5 1700000000000000007\n".into()),
        ("&precision=s", "prec value=1 1700000000\n".into()),
        ("&precision=ms", "precms value=1 1700000000123\n".into()),
        ("&precision=h", "prech value=1 472222\n".into()),
        ("&consistency=all", "cons value=1 1700000000000000008\n".into()),
        ("", "spaces    value=1    1700000000000000009   \n".into()),
        ("", "tfield time=1,v=2 1700000000000000010\n".into()),
        ("", "bs\\\\x,t=a\\\\b,u=\\\\\\ c v=1 1700000000000000011\n".into()),
    ]
}

/// Batches both must reject with the same status and body.
fn invalid_batches() -> Vec<String> {
    [
        "bad value=abc 1700000000000000000",
        "bad,host=a",
        "bad value=",
        "bad value=1 notatime",
        "bad value=1 99999999999999999999",
        "bad value=9223372036854775808i",
        "bad value=1u",
        "bad x=1.5i",
        "bad x=+1",
        "bad,host= value=1",
        "bad value=\"unterminated",
        "dup,host=a,host=b value=1",
        ",host=a value=1",
        "extra value=1 1700000000000000000 junk",
        "bad time=1",
        "a,time=x v=1",
        "a,t=a=b v=1",
        "a =1",
        "a v=1,b",
        "a v=1e",
        "a v=1 9223372036854775807",
        "crlf value=1 1700000000000000000\r\ncrlf value=2 1700000000000000000\r\n",
        "part value=1 1700000001000000000\npart value=oops 1700000002000000000\npart value=3 1700000003000000000\n",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Number(f64),
    Bool(bool),
    Text(String),
}

type Series = BTreeMap<(String, Vec<(String, String)>, i64), BTreeMap<String, Field>>;

fn ours(points: &[Recorded]) -> Series {
    let mut series = Series::new();
    for point in points {
        let mut tags = point.tags.clone();
        tags.sort();
        let row = series
            .entry((point.measurement.clone(), tags, point.time))
            .or_default();
        for (key, value) in &point.fields {
            let value = match value {
                Value::Float(v) => Field::Number(*v),
                Value::Integer(v) => Field::Number(*v as f64),
                Value::Boolean(v) => Field::Bool(*v),
                Value::String(v) => Field::Text(v.clone()),
            };
            row.insert(key.clone(), value);
        }
    }
    series
}

fn theirs(influxd: &Influxd, measurements: &[String]) -> Series {
    let mut series = Series::new();
    for measurement in measurements {
        // InfluxQL identifiers escape backslashes and quotes.
        let identifier = measurement.replace('\\', "\\\\").replace('"', "\\\"");
        let json = influxd.query(
            "testdb",
            &format!("SELECT * FROM \"{identifier}\" GROUP BY *"),
        );
        for found in json["results"][0]["series"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = found["name"].as_str().unwrap_or_default().to_owned();
            let mut tags: Vec<(String, String)> = found["tags"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .filter(|(_, v)| !v.is_empty())
                .collect();
            tags.sort();
            let columns: Vec<&str> = found["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
                .collect();
            for row in found["values"].as_array().into_iter().flatten() {
                let row = row.as_array().expect("row");
                let time = row[0].as_i64().expect("epoch=ns time");
                let fields = series
                    .entry((name.clone(), tags.clone(), time))
                    .or_default();
                for (column, value) in columns.iter().zip(row).skip(1) {
                    let value = match value {
                        Json::Number(n) => Field::Number(n.as_f64().unwrap_or(f64::NAN)),
                        Json::Bool(b) => Field::Bool(*b),
                        Json::String(s) => Field::Text(s.clone()),
                        _ => continue,
                    };
                    fields.insert((*column).to_owned(), value);
                }
            }
        }
    }
    series
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_batches_same_answers_and_same_series_as_influxd() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(influxd) = Influxd::start(dir.path()) else {
        return;
    };
    let server = start_with(Http::default(), "autogen", &[("testdb", "autogen")]).await;
    for target in [influxd.addr, server.addr] {
        let reply = send(
            target,
            Method::POST,
            "/query",
            &[("content-type", "application/x-www-form-urlencoded")],
            "q=CREATE+DATABASE+%22testdb%22",
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{target}");
        assert_eq!(reply.body, "{\"results\":[{\"statement_id\":0}]}\n");
    }

    for (params, body) in valid_batches() {
        let path = format!("/write?db=testdb{params}");
        let theirs = post(influxd.addr, &path, body.clone()).await;
        let ours = post(server.addr, &path, body.clone()).await;
        assert_eq!(
            theirs.status,
            StatusCode::NO_CONTENT,
            "influxd: {body:?} {}",
            theirs.body
        );
        assert_eq!(ours.status, theirs.status, "{body:?}: {}", ours.body);
    }
    let gzipped = gzip(b"gz value=1 1700000000000000100\ngz value=2 1700000000000000101\n");
    for target in [influxd.addr, server.addr] {
        let reply = send(
            target,
            Method::POST,
            "/write?db=testdb",
            &[("content-encoding", "gzip")],
            gzipped.clone(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{target}");
    }

    for body in invalid_batches() {
        let theirs = post(influxd.addr, "/write?db=testdb", body.clone()).await;
        let ours = post(server.addr, "/write?db=testdb", body.clone()).await;
        assert_eq!(
            (ours.status, &ours.body),
            (theirs.status, &theirs.body),
            "{body:?}"
        );
    }

    let recorded = server.recorder.take();
    let ours = ours(&recorded);
    let mut measurements: Vec<String> = recorded.iter().map(|p| p.measurement.clone()).collect();
    measurements.sort();
    measurements.dedup();
    let theirs = theirs(&influxd, &measurements);
    assert!(ours.len() > 60, "{}", ours.len());
    for (key, fields) in &ours {
        assert_eq!(theirs.get(key), Some(fields), "series {key:?}");
    }
    assert_eq!(ours.len(), theirs.len());
}
