//! The line-protocol corpus (../shared/corpora/line-protocol/corpus.json, 6,615 decode inputs)
//! through the HTTP endpoint: no panic, no hang, only 204 or 400, and every input the corpus
//! accepts produces the corpus's points, except where InfluxDB 1.x (which this API follows)
//! differs from the corpus's v2 semantics. Each such difference is classified, and the classes
//! are the documented ones (corpora/line-protocol/README.md and write-api.md).

mod write_api_support;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use hyper::StatusCode;
use processor::config::Http;
use serde_json::Value as Json;
use write_api_support::*;

fn text_of(value: &Json) -> Option<Vec<u8>> {
    match value {
        Json::String(text) => Some(text.as_bytes().to_vec()),
        Json::Object(object) => object
            .get("binary")
            .and_then(Json::as_str)
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok()),
        _ => None,
    }
}

fn precision_param(precision: &str) -> &'static str {
    match precision {
        "1µs" => "u",
        "1ms" => "ms",
        "1s" => "s",
        "1m" => "m",
        "1h" => "h",
        _ => "ns",
    }
}

/// A point in a comparable form: name, sorted tags, fields (key, rendered value), time.
type Comparable = (
    Vec<u8>,
    Vec<(Vec<u8>, Vec<u8>)>,
    Vec<(Vec<u8>, String)>,
    i64,
);

/// Floats to 15 significant digits: serde_json (without `float_roundtrip`) may be one ulp off
/// the corpus's text, while the server's value is correctly rounded.
fn float(value: f64) -> String {
    if value == 0.0 {
        return format!("float:{value:?}");
    }
    format!("float:{value:.14e}")
}

fn expected_point(point: &Json) -> Option<Comparable> {
    let name = text_of(&point["name"])?;
    let mut tags: Vec<_> = point["tags"]
        .as_array()?
        .iter()
        .map(|tag| Some((text_of(&tag["key"])?, text_of(&tag["value"])?)))
        .collect::<Option<_>>()?;
    tags.sort();
    let fields = point["fields"]
        .as_array()?
        .iter()
        .map(|field| {
            let key = text_of(&field["key"])?;
            let value = field["value"].as_object()?;
            let (kind, v) = value.iter().next()?;
            let rendered = match kind.as_str() {
                "int" => format!("int:{}", v.as_i64()?),
                "uint" => format!("uint:{}", v.as_u64()?),
                "float" => float(v.as_f64()?),
                "bool" => format!("bool:{}", v.as_bool()?),
                "string" => format!("string:{:?}", v.as_str()?),
                other => format!("{other}:{v}"),
            };
            Some((key, rendered))
        })
        .collect::<Option<_>>()?;
    Some((name, tags, fields, point["time"].as_i64()?))
}

fn recorded_point(point: &Recorded) -> Comparable {
    let mut tags: Vec<_> = point
        .tags
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    tags.sort();
    let fields = point
        .fields
        .iter()
        .map(|(key, value)| {
            let rendered = match value {
                Value::Integer(v) => format!("int:{v}"),
                Value::Float(v) => float(*v),
                Value::Boolean(v) => format!("bool:{v}"),
                Value::String(v) => format!("string:{v:?}"),
            };
            (key.as_bytes().to_vec(), rendered)
        })
        .collect();
    (
        point.measurement.as_bytes().to_vec(),
        tags,
        fields,
        point.time,
    )
}

/// Why our answer differs from the corpus's, for an input the corpus accepts.
fn classify(
    text: &[u8],
    reply_body: &str,
    expected: &[Comparable],
    got: &[Comparable],
) -> &'static str {
    let text_str = String::from_utf8_lossy(text);
    let rendered: String = expected
        .iter()
        .flat_map(|(_, _, fields, _)| fields.iter().map(|(_, v)| v.clone()))
        .collect();
    if rendered.contains("uint:") && reply_body.contains("invalid number") {
        return "unsigned integer (1.6 OSS rejects `u`)";
    }
    if text.contains(&b'\r') && reply_body.contains("unable to parse") {
        return "CRLF line ending (1.x keeps the \\r in the line)";
    }
    if reply_body.contains("input tag \\\"time\\\"") {
        return "time tag (1.x's storage drops the point)";
    }
    if reply_body.contains("name ends with a backslash") {
        return "name ending in a backslash (the crate cannot hold it)";
    }
    let negative_zero = expected.len() == got.len()
        && expected.iter().zip(got).all(|(e, g)| {
            e.2.iter().zip(&g.2).all(|((ek, ev), (gk, gv))| {
                ek == gk && (ev == gv || (ev == "float:0.0" && gv == "float:-0.0"))
            })
        });
    if negative_zero && !got.is_empty() {
        return "-0 is negative zero (as Go's ParseFloat)";
    }
    if std::str::from_utf8(text).is_err() {
        return "not UTF-8 (rejected alone)";
    }
    if expected.len() == got.len() {
        let escapes_differ = expected
            .iter()
            .zip(got)
            .all(|(e, g)| e.0 == g.0 && e.1 == g.1 && e.3 == g.3 && e.2.len() == g.2.len())
            && (text_str.contains("\\t")
                || text_str.contains("\\n")
                || text_str.contains("\\r")
                || text_str.contains("\\f"));
        if escapes_differ {
            return "\\t \\n \\r \\f escapes in strings (1.x keeps them literal)";
        }
    }
    "unexplained"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_input_goes_through_http_and_accepted_ones_match() {
    let Some(dir) = workspace_bins::corpora_dir() else {
        return;
    };
    let corpus: Json = serde_json::from_slice(
        &std::fs::read(dir.join("line-protocol/corpus.json")).expect("read corpus.json"),
    )
    .expect("corpus.json is JSON");
    let decode = corpus["decode"].as_object().expect("decode entries");
    assert_eq!(decode.len(), 6615);

    let server = start_with(Http::default(), "autogen", &[("corpus", "autogen")]).await;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut differences: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let (mut accepted_inputs, mut matched) = (0, 0);
    for (key, entry) in decode {
        let input = &entry["input"];
        let text = text_of(&input["text"]).expect("input text");
        let default_time = input["defaultTime"].as_i64().expect("defaultTime");
        let precision = precision_param(input["precision"].as_str().unwrap_or("1ns"));
        server.now.store(default_time, Ordering::Relaxed);
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            post(
                server.addr,
                &format!("/write?db=corpus&precision={precision}"),
                text.clone(),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("input {key} hung"));
        *statuses.entry(reply.status.as_u16()).or_default() += 1;
        assert!(
            reply.status == StatusCode::NO_CONTENT || reply.status == StatusCode::BAD_REQUEST,
            "input {key}: status {} {}",
            reply.status,
            reply.body
        );
        if reply.status == StatusCode::BAD_REQUEST {
            let json: Json = serde_json::from_str(&reply.body).expect("JSON error body");
            assert!(json["error"].is_string(), "input {key}: {}", reply.body);
        }
        let got: Vec<Comparable> = server.recorder.take().iter().map(recorded_point).collect();
        let Some(expected) = entry["output"]["result"].as_array() else {
            continue;
        };
        accepted_inputs += 1;
        let expected: Vec<Comparable> = expected
            .iter()
            .map(|p| expected_point(p).expect("corpus point"))
            .collect();
        if reply.status == StatusCode::NO_CONTENT && got == expected {
            matched += 1;
            continue;
        }
        let class = classify(&text, &reply.body, &expected, &got);
        differences.entry(class).or_default().push(format!(
            "{key}: {:?} -> {} {}\n  expected {expected:?}\n  got      {got:?}",
            String::from_utf8_lossy(&text),
            reply.status,
            reply.body.trim_end()
        ));
    }
    eprintln!(
        "statuses: {statuses:?}; corpus-accepted inputs: {accepted_inputs}, identical: {matched}"
    );
    for (class, examples) in &differences {
        eprintln!("{class}: {}", examples.len());
        for example in examples
            .iter()
            .take(if *class == "unexplained" { 40 } else { 3 })
        {
            eprintln!("  {example}");
        }
    }
    assert_eq!(accepted_inputs, 395);
    let unexplained = differences.get("unexplained").map_or(0, Vec::len);
    assert_eq!(unexplained, 0, "inputs differing for no documented reason");
    // The documented differences, counted, so a change in either direction is noticed.
    let counts: BTreeMap<&str, usize> = differences.iter().map(|(k, v)| (*k, v.len())).collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("-0 is negative zero (as Go's ParseFloat)", 2),
            ("CRLF line ending (1.x keeps the \\r in the line)", 4),
            (
                "\\t \\n \\r \\f escapes in strings (1.x keeps them literal)",
                3
            ),
            ("time tag (1.x's storage drops the point)", 2),
            ("unsigned integer (1.6 OSS rejects `u`)", 16),
        ])
    );
    assert_eq!(matched, 368);
}
