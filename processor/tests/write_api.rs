//! The write API over HTTP, row by row against write-api.md's table of InfluxDB 1.6.7 answers,
//! plus one test per deliberate deviation, authentication, the v2 endpoint and the limits.

mod write_api_support;

use std::collections::VecDeque;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use processor::config::{ApiToken, Http, User};
use write_api_support::*;

const WRITE: &str = "/write?db=testdb";

/// A row whose answer is a 400 with `unable to parse '<line>': <reason>`.
async fn assert_parse_error(line: &str, reason: &str) {
    let server = start().await;
    let reply = post(server.addr, WRITE, line.to_owned()).await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{line:?}: {}",
        reply.body
    );
    assert_eq!(
        reply.body,
        error_body(&format!("unable to parse '{line}': {reason}")),
        "{line:?}"
    );
    assert!(server.recorder.take().is_empty());
}

macro_rules! parse_error_rows {
    ($($name:ident: $line:expr => $reason:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            assert_parse_error($line, $reason).await;
        }
    )*};
}

parse_error_rows! {
    row_non_boolean_word_is_invalid_boolean: "bad value=abc 1700000000000000000" => "invalid boolean";
    row_tags_without_fields_are_missing_fields: "bad,host=a" => "missing fields";
    row_bare_measurement_is_missing_fields: "bad" => "missing fields";
    row_empty_value_is_missing_field_value: "bad value=" => "missing field value";
    row_word_timestamp_is_bad_timestamp: "bad value=1 notatime" => "bad timestamp";
    row_float_timestamp_is_bad_timestamp: "bad value=1 1.5e9" => "bad timestamp";
    row_huge_timestamp_is_out_of_range: "bad value=1 99999999999999999999" =>
        "strconv.ParseInt: parsing \"99999999999999999999\": value out of range";
    row_huge_integer_is_out_of_range: "bad value=9223372036854775808i" =>
        "unable to parse integer 9223372036854775808: strconv.ParseInt: parsing \"9223372036854775808\": value out of range";
    row_unsigned_integer_is_invalid_number: "bad value=1u" => "invalid number";
    row_hex_is_invalid_number: "bad x=0x10" => "invalid number";
    row_float_integer_is_invalid_number: "bad x=1.5i" => "invalid number";
    row_underscore_is_invalid_number: "bad x=1_000" => "invalid number";
    row_nan_is_invalid_number: "bad value=NaN" => "invalid number";
    row_plus_inf_is_invalid_boolean: "bad value=+Inf" => "invalid boolean";
    row_inf_is_invalid_boolean: "bad x=inf" => "invalid boolean";
    row_plus_sign_is_invalid_boolean: "bad x=+1" => "invalid boolean";
    row_empty_tag_value_is_missing_tag_value: "bad,host= value=1" => "missing tag value";
    row_tag_without_equals_is_missing_tag_value: "bad,host value=1" => "missing tag value";
    row_unterminated_string_is_unbalanced_quotes: "bad value=\"unterminated" => "unbalanced quotes";
    row_duplicate_tags_are_rejected: "dup,host=a,host=b value=1" => "duplicate tags";
    row_leading_comma_is_missing_measurement: ",host=a value=1" => "missing measurement";
    row_text_after_timestamp_is_point_is_invalid: "extra value=1 1700000000000000000 junk" => "point is invalid";
}

#[tokio::test]
async fn row_valid_write_is_204_with_influxdb_headers_and_reaches_the_subscriber() {
    let server = start().await;
    let reply = post(
        server.addr,
        WRITE,
        "cpu,host=a,region=eu value=1,count=2i,ok=true,msg=\"hi there\" 1700000000000000000\n",
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.raw.is_empty());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-influxdb-build"), Some("OSS"));
    assert_eq!(reply.header("x-influxdb-version"), Some("1.6.7"));
    assert_eq!(
        reply.header("x-kapacitor-version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let id = reply.header("request-id").expect("Request-Id");
    assert_eq!(reply.header("x-request-id"), Some(id));
    assert_eq!(id.len(), 36);
    assert_eq!(
        server.recorder.take(),
        [Recorded {
            db: "testdb".into(),
            rp: "autogen".into(),
            measurement: "cpu".into(),
            tags: vec![("host".into(), "a".into()), ("region".into(), "eu".into())],
            fields: vec![
                ("value".into(), Value::Float(1.0)),
                ("count".into(), Value::Integer(2)),
                ("ok".into(), Value::Boolean(true)),
                ("msg".into(), Value::String("hi there".into())),
            ],
            time: 1_700_000_000_000_000_000,
        }]
    );
}

#[tokio::test]
async fn row_empty_comment_and_unterminated_bodies_are_204() {
    let server = start().await;
    for body in ["", "\n\n   \n# just a comment\n", "m v=1 1"] {
        let reply = post(server.addr, WRITE, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NO_CONTENT,
            "{body:?}: {}",
            reply.body
        );
    }
    assert_eq!(server.recorder.take().len(), 1);
}

#[tokio::test]
async fn row_chunked_body_is_204() {
    let server = start().await;
    let chunks = VecDeque::from([
        Bytes::from_static(b"m v=1 1\nm v="),
        Bytes::from_static(b"2 2\n"),
    ]);
    let reply = send_body(server.addr, Method::POST, WRITE, &[], Chunked(chunks)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(server.recorder.take().len(), 2);
}

#[tokio::test]
async fn row_empty_credentials_with_auth_off_are_ignored() {
    let server = start().await;
    let reply = post(server.addr, "/write?db=testdb&u=&p=", "m v=1 1").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn row_known_consistency_levels_are_accepted_and_bogus_is_400() {
    let server = start().await;
    for level in ["all", "any", "one", "quorum"] {
        let reply = post(
            server.addr,
            &format!("{WRITE}&consistency={level}"),
            "m v=1 1",
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{level}");
    }
    let reply = post(
        server.addr,
        &format!("{WRITE}&consistency=bogus"),
        "m v=1 1",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, error_body("invalid consistency level"));
}

#[tokio::test]
async fn row_missing_or_empty_db_is_database_is_required() {
    let server = start().await;
    for path in ["/write", "/write?db=", "/kapacitor/v1/write"] {
        let reply = post(server.addr, path, "m v=1 1").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(reply.body, error_body("database is required"));
        assert_eq!(
            reply.header("x-influxdb-error"),
            Some("database is required")
        );
    }
}

#[tokio::test]
async fn row_get_write_is_405_plain_text() {
    let server = start().await;
    let reply = send(server.addr, Method::GET, WRITE, &[], "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("OPTIONS, POST"));
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    assert_eq!(reply.body.trim_end(), "Method Not Allowed");
}

#[tokio::test]
async fn row_repeated_field_keeps_the_last_value() {
    let server = start().await;
    let reply = post(server.addr, WRITE, "bad value=1,value=2 1").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let points = server.recorder.take();
    assert_eq!(points[0].fields, [("value".to_owned(), Value::Float(2.0))]);
}

#[tokio::test]
async fn row_time_field_is_a_partial_write_invalid_field_name() {
    let server = start().await;
    let reply = post(server.addr, WRITE, "bad time=1").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        error_body(
            "partial write: invalid field name: input field \"time\" on measurement \"bad\" is invalid dropped=1"
        )
    );
}

#[tokio::test]
async fn row_batch_with_bad_lines_keeps_the_good_ones_and_says_partial_write() {
    let server = start().await;
    let body = "part value=1 1700000001000000000\n\
                part value=oops 1700000002000000000\n\
                part value=3 1700000003000000000\n\
                part,host value=4 1700000004000000000\n\
                part value=5 1700000005000000000\n";
    let reply = post(server.addr, WRITE, body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = "partial write: unable to parse 'part value=oops 1700000002000000000': invalid boolean\nunable to parse 'part,host value=4 1700000004000000000': missing tag value dropped=0";
    assert_eq!(reply.body, error_body(message));
    assert_eq!(
        reply.header("x-influxdb-error"),
        Some(message.replace('\n', " ").as_str())
    );
    let times: Vec<i64> = server.recorder.take().iter().map(|p| p.time).collect();
    assert_eq!(
        times,
        [
            1_700_000_001_000_000_000,
            1_700_000_003_000_000_000,
            1_700_000_005_000_000_000
        ]
    );
}

#[tokio::test]
async fn row_every_precision_scales_timestamps() {
    let server = start().await;
    for (precision, expected) in [
        ("n", 7),
        ("ns", 7),
        ("u", 7_000),
        ("ms", 7_000_000),
        ("s", 7_000_000_000),
        ("m", 420_000_000_000),
        ("h", 25_200_000_000_000),
    ] {
        let reply = post(
            server.addr,
            &format!("{WRITE}&precision={precision}"),
            "m v=1 7",
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{precision}");
        assert_eq!(server.recorder.take()[0].time, expected, "{precision}");
    }
}

#[tokio::test]
async fn row_missing_timestamp_is_server_time_truncated_to_the_precision() {
    let server = start().await;
    let reply = post(server.addr, &format!("{WRITE}&precision=s"), "m v=1").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(server.recorder.take()[0].time, 1_700_000_123_000_000_000);
    let reply = post(server.addr, WRITE, "m v=1").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(server.recorder.take()[0].time, TEST_NOW);
}

#[tokio::test]
async fn row_gzip_body_with_header_is_204() {
    let server = start().await;
    let reply = send(
        server.addr,
        Method::POST,
        WRITE,
        &[("content-encoding", "gzip")],
        gzip(b"m v=1 1\nm v=2 2\n"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(server.recorder.take().len(), 2);
}

#[tokio::test]
async fn row_gzip_body_without_header_is_a_400_json_parse_error() {
    let server = start().await;
    let reply = post(server.addr, WRITE, gzip(b"m v=1 1\n")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("a JSON body");
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("unable to parse"))
    );
}

#[tokio::test]
async fn row_plain_body_labelled_gzip_is_invalid_header() {
    let server = start().await;
    let reply = send(
        server.addr,
        Method::POST,
        WRITE,
        &[("content-encoding", "gzip")],
        "m v=1 1700000000000000000\n",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, error_body("gzip: invalid header"));
}

#[tokio::test]
async fn row_truncated_gzip_is_unexpected_eof() {
    let server = start().await;
    let full = gzip(&b"m v=1 1\n".repeat(1000));
    let reply = send(
        server.addr,
        Method::POST,
        WRITE,
        &[("content-encoding", "gzip")],
        full[..full.len() / 2].to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, error_body("unexpected EOF"));
}

#[tokio::test]
async fn row_crlf_lines_are_bad_timestamps() {
    let server = start().await;
    let reply = post(
        server.addr,
        WRITE,
        "crlf value=1 1700000000000000000\r\ncrlf value=2 1700000000000000000\r\n",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        error_body(
            "unable to parse 'crlf value=1 1700000000000000000\r': bad timestamp\nunable to parse 'crlf value=2 1700000000000000000\r': bad timestamp"
        )
    );
}

#[tokio::test]
async fn row_body_over_the_default_25_mb_is_413_and_closes() {
    let server = start().await;
    let line = b"m v=1 1\n";
    let body = line.repeat(25_000_000 / line.len() + 1);
    assert!(body.len() > 25_000_000);
    let reply = post(server.addr, WRITE, body).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body, error_body("Request Entity Too Large"));
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(server.recorder.take().is_empty());
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let http = Http {
        max_body_size: 100,
        ..Http::default()
    };
    let server = start_with(http, "autogen", &[("testdb", "autogen")]).await;
    let chunks = (0..20).map(|_| Bytes::from_static(b"m v=1 1\n")).collect();
    let reply = send_body(server.addr, Method::POST, WRITE, &[], Chunked(chunks)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn gzip_bomb_is_capped_after_decompression() {
    let http = Http {
        max_body_size: 1_000_000,
        ..Http::default()
    };
    let server = start_with(http, "autogen", &[("testdb", "autogen")]).await;
    // 50 MB of one repeated line compress to about 50 kB.
    let bomb = gzip(&b"m v=1 1\n".repeat(50_000_000 / 8));
    assert!(bomb.len() < 1_000_000);
    let reply = send(
        server.addr,
        Method::POST,
        WRITE,
        &[("content-encoding", "gzip")],
        bomb,
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body, error_body("Request Entity Too Large"));
    assert!(server.recorder.take().is_empty());
}

#[tokio::test]
async fn row_query_without_q_is_missing_required_parameter() {
    let server = start().await;
    let reply = post(server.addr, "/query", "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, error_body("missing required parameter \"q\""));
}

#[tokio::test]
async fn row_create_database_is_200_as_telegraf_sends_it() {
    let server = start().await;
    // Telegraf posts the statement as a form body.
    let reply = send(
        server.addr,
        Method::POST,
        "/query",
        &[("content-type", "application/x-www-form-urlencoded")],
        "q=CREATE+DATABASE+%22telegraf%22",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "{\"results\":[{\"statement_id\":0}]}\n");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let reply = post(server.addr, "/query?q=CREATE%20DATABASE%20testdb", "").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn deviation_other_queries_are_501_json() {
    let server = start().await;
    let reply = post(server.addr, "/query?q=SELECT%20*%20FROM%20cpu", "").await;
    assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED);
    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("CREATE DATABASE"))
    );
}

#[tokio::test]
async fn deviation_unknown_database_and_retention_policy_are_accepted() {
    let server = start_with(
        Http::default(),
        "autogen",
        &[("nope", "autogen"), ("testdb", "nope")],
    )
    .await;
    let reply = post(server.addr, "/write?db=nope", "m v=1 1").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let reply = post(server.addr, "/write?db=testdb&rp=nope", "m v=1 2").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let got: Vec<_> = server
        .recorder
        .take()
        .into_iter()
        .map(|p| (p.db, p.rp, p.time))
        .collect();
    assert_eq!(
        got,
        [
            ("nope".into(), "autogen".into(), 1),
            ("testdb".into(), "nope".into(), 2)
        ]
    );
}

#[tokio::test]
async fn deviation_precision_us_and_micro_sign_are_microseconds() {
    let server = start().await;
    for precision in ["us", "%C2%B5s"] {
        let reply = post(
            server.addr,
            &format!("{WRITE}&precision={precision}"),
            "m v=1 7",
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert_eq!(server.recorder.take()[0].time, 7_000, "{precision}");
    }
}

#[tokio::test]
async fn deviation_unknown_precision_is_400() {
    let server = start().await;
    for precision in ["xyz", "rfc3339"] {
        let reply = post(
            server.addr,
            &format!("{WRITE}&precision={precision}"),
            "m v=1 7",
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{precision}");
        assert!(reply.body.contains("invalid precision"), "{}", reply.body);
    }
    assert!(server.recorder.take().is_empty());
}

#[tokio::test]
async fn deviation_a_hundred_tags_are_accepted() {
    let server = start().await;
    let tags: String = (0..100).map(|i| format!(",t{i:03}=v")).collect();
    let reply = post(server.addr, WRITE, format!("m{tags} v=1 1")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(server.recorder.take()[0].tags.len(), 100);
}

#[tokio::test]
async fn deviation_a_line_that_is_not_utf8_fails_alone() {
    let server = start().await;
    let reply = post(
        server.addr,
        WRITE,
        b"ok v=1 1\nbad\xff v=2 2\nok v=3 3\n".to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        error_body("partial write: unable to parse 'bad\u{fffd} v=2 2': invalid UTF-8 dropped=0")
    );
    assert_eq!(server.recorder.take().len(), 2);
}

#[tokio::test]
async fn deviation_unknown_paths_are_404_json() {
    let server = start().await;
    let reply = send(server.addr, Method::GET, "/nope", &[], "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, error_body("Not Found"));
}

#[tokio::test]
async fn writes_without_rp_reach_the_configured_default_retention_policy() {
    let server = start_with(Http::default(), "raw", &[("testdb", "raw")]).await;
    let reply = post(server.addr, WRITE, "m v=1 1").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(server.recorder.take()[0].rp, "raw");
}

#[tokio::test]
async fn kapacitor_write_path_and_options_behave_as_write() {
    let server = start().await;
    let reply = post(server.addr, "/kapacitor/v1/write?db=testdb", "m v=1 1").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(server.recorder.take().len(), 1);
    let reply = send(server.addr, Method::OPTIONS, WRITE, &[], "").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn ping_and_ready_answer_204_and_ready_says_503_json_until_ready() {
    let server = start().await;
    for path in ["/ping", "/kapacitor/v1/ping", "/ready"] {
        for method in [Method::GET, Method::HEAD] {
            let reply = send(server.addr, method.clone(), path, &[], "").await;
            assert_eq!(reply.status, StatusCode::NO_CONTENT, "{method} {path}");
            assert_eq!(reply.header("x-influxdb-build"), Some("OSS"));
        }
    }
    server.api.set_ready(false);
    let reply = send(server.addr, Method::GET, "/ready", &[], "").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert!(json["error"].is_string());
}

#[tokio::test]
async fn verbose_ping_is_still_204_as_influxdb_1_6_7_answers_it() {
    let server = start().await;
    let reply = send(server.addr, Method::GET, "/ping?verbose=true", &[], "").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.raw.is_empty());
}

fn auth_http() -> Http {
    Http {
        auth_enabled: true,
        users: vec![User {
            name: "telegraf".into(),
            password: "s3cret".into(),
        }],
        tokens: vec![ApiToken {
            token: "tok3n".into(),
        }],
        ..Http::default()
    }
}

#[tokio::test]
async fn auth_accepts_basic_token_bearer_and_query_credentials() {
    let server = start_with(auth_http(), "autogen", &[("testdb", "autogen")]).await;
    // "telegraf:s3cret" in base64.
    let basic = "Basic dGVsZWdyYWY6czNjcmV0";
    for (path, headers) in [
        (WRITE.to_owned(), vec![("authorization", basic)]),
        (WRITE.to_owned(), vec![("authorization", "Token tok3n")]),
        (WRITE.to_owned(), vec![("authorization", "Bearer tok3n")]),
        (
            WRITE.to_owned(),
            vec![("authorization", "Token telegraf:s3cret")],
        ),
        (format!("{WRITE}&u=telegraf&p=s3cret"), vec![]),
    ] {
        let reply = send(server.addr, Method::POST, &path, &headers, "m v=1 1").await;
        assert_eq!(
            reply.status,
            StatusCode::NO_CONTENT,
            "{path} {headers:?}: {}",
            reply.body
        );
    }
    assert_eq!(server.recorder.take().len(), 5);
}

#[tokio::test]
async fn auth_rejects_missing_and_wrong_credentials_with_401_json() {
    let server = start_with(auth_http(), "autogen", &[("testdb", "autogen")]).await;
    let reply = post(server.addr, WRITE, "m v=1 1").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.body,
        error_body("unable to parse authentication credentials")
    );
    for (path, headers) in [
        (
            WRITE.to_owned(),
            vec![("authorization", "Basic dGVsZWdyYWY6d3Jvbmc=")],
        ),
        (WRITE.to_owned(), vec![("authorization", "Token wrong")]),
        (format!("{WRITE}&u=telegraf&p=wrong"), vec![]),
    ] {
        let reply = send(server.addr, Method::POST, &path, &headers, "m v=1 1").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path} {headers:?}");
        assert_eq!(reply.body, error_body("authorization failed"));
    }
    let reply = post(server.addr, "/query?q=CREATE%20DATABASE%20x", "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(server.recorder.take().is_empty());
}

#[tokio::test]
async fn auth_is_not_needed_for_ping_and_ready() {
    let server = start_with(auth_http(), "autogen", &[("testdb", "autogen")]).await;
    for path in ["/ping", "/kapacitor/v1/ping", "/ready"] {
        let reply = send(server.addr, Method::GET, path, &[], "").await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{path}");
    }
}

#[tokio::test]
async fn v2_write_maps_bucket_to_db_and_rp() {
    let server = start_with(
        Http::default(),
        "autogen",
        &[("testdb", "autogen"), ("testdb", "raw")],
    )
    .await;
    let reply = post(
        server.addr,
        "/api/v2/write?org=x&bucket=testdb/raw&precision=s",
        "m v=1 7",
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let reply = post(server.addr, "/api/v2/write?bucket=testdb", "m v=1 8").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let got: Vec<_> = server
        .recorder
        .take()
        .into_iter()
        .map(|p| (p.rp, p.time))
        .collect();
    assert_eq!(got, [("raw".into(), 7_000_000_000), ("autogen".into(), 8)]);
}

#[tokio::test]
async fn v2_errors_use_the_code_and_message_shape() {
    let server = start_with(auth_http(), "autogen", &[("testdb", "autogen")]).await;
    let reply = post(server.addr, "/api/v2/write?bucket=testdb", "m v=1 1").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(json["code"], "unauthorized");
    assert_eq!(
        json["message"],
        "unable to parse authentication credentials"
    );
    let headers = [("authorization", "Token tok3n")];
    let reply = send(
        server.addr,
        Method::POST,
        "/api/v2/write",
        &headers,
        "m v=1 1",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(json["code"], "invalid");
    assert_eq!(json["message"], "bucket is required");
    let reply = send(
        server.addr,
        Method::POST,
        "/api/v2/write?bucket=testdb",
        &headers,
        "bad value=abc",
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(
        json["message"],
        "unable to parse 'bad value=abc': invalid boolean"
    );
}

#[tokio::test]
async fn deviation_the_error_header_is_cut_at_4_kib_the_body_is_whole() {
    let server = start().await;
    let body = "bad value=abc\n".repeat(1000);
    let reply = post(server.addr, WRITE, body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let header = reply.headers.get("x-influxdb-error").expect("header");
    assert!(
        header.len() <= 4096 && header.len() > 4000,
        "{}",
        header.len()
    );
    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(
        json["error"]
            .as_str()
            .map(|e| e.matches("unable to parse").count()),
        Some(1000)
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_write_finish_and_refuses_new_connections() {
    let mut server = start().await;
    let (feed, chunks) = tokio::sync::mpsc::channel(4);
    let addr = server.addr;
    let in_flight =
        tokio::spawn(
            async move { send_body(addr, Method::POST, WRITE, &[], Streamed(chunks)).await },
        );
    feed.send(Bytes::from_static(b"m v=1 1\n"))
        .await
        .expect("first chunk");
    // Let the request reach the handler before shutting down.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    server.shut_down();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    feed.send(Bytes::from_static(b"m v=2 2\n"))
        .await
        .expect("second chunk");
    drop(feed);
    let reply = in_flight.await.expect("request task");
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(server.recorder.take().len(), 2);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn every_error_is_json_with_the_error_header() {
    let server = start().await;
    for (path, body) in [
        ("/write", "m v=1"),
        (WRITE, "bad"),
        ("/query", ""),
        ("/write?db=x&precision=x", "m v=1"),
    ] {
        let reply = post(server.addr, path, body).await;
        assert!(reply.status.is_client_error(), "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON body");
        assert_eq!(
            reply.headers.get("x-influxdb-error").map(|v| v.as_bytes()),
            json["error"].as_str().map(str::as_bytes),
            "{path}"
        );
    }
}

mod arbitrary_bodies {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the body, the server answers 204 or a 400 with a JSON error, and keeps serving.
        #[test]
        fn arbitrary_bodies_get_204_or_a_json_400(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            gzipped in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let server = start().await;
                let headers: &[(&str, &str)] = if gzipped { &[("content-encoding", "gzip")] } else { &[] };
                let reply = send(server.addr, Method::POST, WRITE, headers, body.clone()).await;
                assert!(
                    reply.status == StatusCode::NO_CONTENT || reply.status == StatusCode::BAD_REQUEST,
                    "{}: {}", reply.status, reply.body
                );
                if reply.status == StatusCode::BAD_REQUEST {
                    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
                    assert!(json["error"].is_string());
                }
                let ping = send(server.addr, Method::GET, "/ping", &[], "").await;
                assert_eq!(ping.status, StatusCode::NO_CONTENT);
            });
        }
    }
}

#[tokio::test]
async fn points_are_routed_by_db_rp_and_measurement_without_copying_per_subscriber() {
    use processor::routing::Key;
    use std::sync::Arc;
    let server = start().await;
    let cpu_only = Arc::new(Recorder::default());
    server.router.subscribe(
        Key {
            db: "testdb".into(),
            rp: "autogen".into(),
            measurement: Some("cpu".into()),
        },
        cpu_only.clone(),
    );
    let other_db = Arc::new(Recorder::default());
    server.router.subscribe(
        Key {
            db: "otherdb".into(),
            rp: "autogen".into(),
            measurement: Some("cpu".into()),
        },
        other_db.clone(),
    );
    let reply = post(server.addr, WRITE, "cpu v=1 1\nmem v=2 2\ncpu v=3 3\n").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let cpu: Vec<i64> = cpu_only.take().iter().map(|p| p.time).collect();
    assert_eq!(cpu, [1, 3]);
    assert_eq!(cpu_only.deliveries(), 1, "one delivery per request");
    assert_eq!(
        server.recorder.take().len(),
        3,
        "the every-measurement subscriber"
    );
    assert!(other_db.take().is_empty());
}
