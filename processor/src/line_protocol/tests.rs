use super::*;
use crate::point::FieldValue;
use proptest::prelude::*;

const NOW: i64 = 1_700_000_123_456_789_012;

fn parse(body: &str) -> Parsed {
    parse_with(body.as_bytes(), Precision::Nanoseconds)
}

fn parse_with(body: &[u8], precision: Precision) -> Parsed {
    parse_body(body.to_vec(), "db".into(), "autogen".into(), precision, NOW)
}

fn messages(parsed: &Parsed) -> Vec<String> {
    parsed.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn a_telegraf_line_becomes_one_point_borrowing_the_body() {
    let parsed = parse(
        "cpu,host=a,region=eu value=1,count=2i,ok=true,msg=\"hi there\" 1700000000000000000\n",
    );
    assert!(parsed.errors.is_empty());
    let point = parsed.batch.point(0).expect("one point");
    assert_eq!(point.measurement(), "cpu");
    assert_eq!(
        point.tags().collect::<Vec<_>>(),
        [("host", "a"), ("region", "eu")]
    );
    assert_eq!(
        point.fields().collect::<Vec<_>>(),
        [
            ("value", FieldValue::Float(1.0)),
            ("count", FieldValue::Integer(2)),
            ("ok", FieldValue::Boolean(true)),
            ("msg", FieldValue::String("hi there")),
        ]
    );
    assert_eq!(point.time(), 1_700_000_000_000_000_000);
    assert_eq!((point.db(), point.rp()), ("db", "autogen"));
    assert_eq!(
        parsed.batch.unescaped_len(),
        0,
        "nothing copied for a plain line"
    );
}

#[test]
fn bad_lines_fail_alone_with_influxdb_reasons() {
    let parsed = parse(
        "part value=1 1700000001000000000\n\
         part value=oops 1700000002000000000\n\
         part value=3 1700000003000000000\n\
         part,host value=4 1700000004000000000\n\
         part value=5 1700000005000000000\n",
    );
    assert_eq!(
        messages(&parsed),
        [
            "unable to parse 'part value=oops 1700000002000000000': invalid boolean",
            "unable to parse 'part,host value=4 1700000004000000000': missing tag value",
        ]
    );
    assert_eq!(parsed.errors[1].line_number, 4);
    let times: Vec<i64> = parsed.batch.points().map(|p| p.time()).collect();
    assert_eq!(
        times,
        [
            1_700_000_001_000_000_000,
            1_700_000_003_000_000_000,
            1_700_000_005_000_000_000
        ]
    );
}

#[test]
fn a_line_that_is_not_utf8_fails_alone() {
    let mut body = b"ok value=1 1\nbad\xff value=2 2\nok value=3 3\n".to_vec();
    body.extend_from_slice(b"also\xfe,t=x value=4 4\n");
    let parsed = parse_with(&body, Precision::Nanoseconds);
    assert_eq!(parsed.batch.len(), 2);
    assert_eq!(
        parsed
            .errors
            .iter()
            .map(|e| (e.line_number, e.reason.clone()))
            .collect::<Vec<_>>(),
        [(2, Reason::InvalidUtf8), (4, Reason::InvalidUtf8)]
    );
    assert_eq!(
        parsed.errors[0].to_string(),
        "unable to parse 'bad\u{fffd} value=2 2': invalid UTF-8"
    );
    assert_eq!(parsed.batch.point(1).map(|p| p.time()), Some(3));
}

#[test]
fn a_non_utf8_line_that_influxdb_rejects_gets_influxdb_reason() {
    let parsed = parse_with(b"bad\xff", Precision::Nanoseconds);
    assert_eq!(parsed.errors[0].reason, Reason::MissingFields);
}

#[test]
fn unsigned_integers_are_rejected_as_influxdb_1_6_does() {
    let parsed = parse("bad value=1u");
    assert_eq!(
        messages(&parsed),
        ["unable to parse 'bad value=1u': invalid number"]
    );
    assert!(parsed.batch.is_empty());
}

#[test]
fn duplicate_tags_are_rejected_even_unsorted() {
    let parsed = parse("dup,host=a,host=b value=1\nd2,b=1,a=2,b=3 v=1");
    assert_eq!(
        messages(&parsed),
        [
            "unable to parse 'dup,host=a,host=b value=1': duplicate tags",
            "unable to parse 'd2,b=1,a=2,b=3 v=1': duplicate tags"
        ]
    );
}

#[test]
fn a_repeated_field_keeps_its_last_value() {
    let parsed = parse("bad value=1,other=5i,value=2");
    let point = parsed.batch.point(0).expect("point");
    assert_eq!(
        point.fields().collect::<Vec<_>>(),
        [
            ("value", FieldValue::Float(2.0)),
            ("other", FieldValue::Integer(5))
        ]
    );
}

#[test]
fn a_time_field_is_skipped_and_a_point_with_only_time_is_dropped() {
    let parsed = parse("a time=1,v=2 5\nbad time=1\n");
    assert_eq!(parsed.batch.len(), 1);
    assert_eq!(
        parsed
            .batch
            .point(0)
            .map(|p| p.fields().collect::<Vec<_>>()),
        Some(vec![("v", FieldValue::Float(2.0))])
    );
    assert_eq!(
        parsed.dropped,
        Some(Dropped {
            count: 1,
            reason: "invalid field name: input field \"time\" on measurement \"bad\" is invalid"
                .into()
        })
    );
}

#[test]
fn a_time_tag_drops_the_point_with_influxdb_reason() {
    let parsed = parse("a,time=x v=1\nb time=1\n");
    assert!(parsed.batch.is_empty());
    assert_eq!(
        parsed.dropped,
        Some(Dropped {
            count: 2,
            reason: "invalid tag key: input tag \"time\" on measurement \"a\" is invalid".into()
        })
    );
}

#[test]
fn timestamps_scale_by_precision() {
    for (precision, expected) in [
        (Precision::Nanoseconds, 7),
        (Precision::Microseconds, 7_000),
        (Precision::Milliseconds, 7_000_000),
        (Precision::Seconds, 7_000_000_000),
        (Precision::Minutes, 420_000_000_000),
        (Precision::Hours, 25_200_000_000_000),
    ] {
        let parsed = parse_with(b"m v=1 7", precision);
        assert_eq!(
            parsed.batch.point(0).map(|p| p.time()),
            Some(expected),
            "{precision:?}"
        );
    }
}

#[test]
fn a_missing_timestamp_is_server_time_truncated_to_the_precision() {
    let at = |precision| {
        parse_with(b"m v=1", precision)
            .batch
            .point(0)
            .map(|p| p.time())
    };
    assert_eq!(at(Precision::Nanoseconds), Some(NOW));
    assert_eq!(at(Precision::Microseconds), Some(1_700_000_123_456_789_000));
    assert_eq!(at(Precision::Seconds), Some(1_700_000_123_000_000_000));
    assert_eq!(at(Precision::Hours), Some(1_699_999_200_000_000_000));
}

#[test]
fn precision_parameter_accepts_every_documented_spelling() {
    for (text, expected) in [
        ("", Precision::Nanoseconds),
        ("n", Precision::Nanoseconds),
        ("ns", Precision::Nanoseconds),
        ("u", Precision::Microseconds),
        ("us", Precision::Microseconds),
        ("µs", Precision::Microseconds),
        ("ms", Precision::Milliseconds),
        ("s", Precision::Seconds),
        ("m", Precision::Minutes),
        ("h", Precision::Hours),
    ] {
        assert_eq!(Precision::from_v1_param(text), Ok(expected), "{text:?}");
    }
    assert_eq!(
        Precision::from_v1_param("xyz"),
        Err(UnknownPrecision("xyz".into()))
    );
}

#[test]
fn a_timestamp_that_overflows_after_scaling_is_out_of_range() {
    let parsed = parse_with(b"a v=1 99999999999", Precision::Hours);
    assert_eq!(
        messages(&parsed),
        [
            "unable to parse 'a v=1 99999999999': time outside range -9223372036854775806 - 9223372036854775806"
        ]
    );
    let parsed = parse("a v=1 9223372036854775807");
    assert_eq!(parsed.errors[0].reason, Reason::TimeOutOfRange);
}

#[test]
fn number_forms_only_influxdb_1_accepts_are_rewritten_and_kept() {
    let parsed = parse("a a=.5,b=-.5,c=1.,d=1.e5,s=\"x=.5\" 1");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let fields: Vec<_> = parsed.batch.point(0).expect("point").fields().collect();
    assert_eq!(
        fields,
        [
            ("a", FieldValue::Float(0.5)),
            ("b", FieldValue::Float(-0.5)),
            ("c", FieldValue::Float(1.0)),
            ("d", FieldValue::Float(100_000.0)),
            ("s", FieldValue::String("x=.5")),
        ]
    );
}

#[test]
fn other_number_forms_influxdb_accepts_parse() {
    let parsed = parse("a w=1e10,x=1e+10,y=0005,z=-0,q=-0i,r=-9223372036854775808i");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let point = parsed.batch.point(0).expect("point");
    assert_eq!(point.field("y"), Some(FieldValue::Float(5.0)));
    assert_eq!(point.field("r"), Some(FieldValue::Integer(i64::MIN)));
}

#[test]
fn every_boolean_spelling_parses() {
    let parsed = parse("a b=t,c=T,d=true,e=True,f=TRUE,g=f,h=F,i=false,j=False,k=FALSE");
    let values: Vec<_> = parsed
        .batch
        .point(0)
        .expect("point")
        .fields()
        .map(|(_, v)| v)
        .collect();
    let expected: Vec<_> = [
        true, true, true, true, true, false, false, false, false, false,
    ]
    .into_iter()
    .map(FieldValue::Boolean)
    .collect();
    assert_eq!(values, expected);
}

#[test]
fn a_quoted_newline_does_not_end_the_line() {
    let parsed = parse("a s=\"line\nbreak\" 1\nb v=1 2\n");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(
        parsed.batch.point(0).and_then(|p| p.field("s")),
        Some(FieldValue::String("line\nbreak"))
    );
    assert_eq!(parsed.batch.point(1).map(|p| p.measurement()), Some("b"));
}

#[test]
fn crlf_lines_fail_with_bad_timestamp_as_influxdb() {
    let parsed = parse("crlf value=1 1700000000000000000\r\ncrlf value=2 1700000000000000001\r\n");
    assert_eq!(
        messages(&parsed),
        [
            "unable to parse 'crlf value=1 1700000000000000000\r': bad timestamp",
            "unable to parse 'crlf value=2 1700000000000000001\r': bad timestamp"
        ]
    );
}

#[test]
fn escapes_unescape_as_influxdb() {
    let parsed = parse("esc\\ m\\,x,t\\ k\\=y=v\\,a\\ l f\\=k=\"str \\\"q\\\" \\\\ back\"");
    let point = parsed.batch.point(0).expect("point");
    assert_eq!(point.measurement(), "esc m,x");
    assert_eq!(point.tags().collect::<Vec<_>>(), [("t k=y", "v,a l")]);
    assert_eq!(
        point.fields().collect::<Vec<_>>(),
        [("f=k", FieldValue::String("str \"q\" \\ back"))]
    );
}

#[test]
fn blank_lines_comments_and_surrounding_spaces_are_skipped() {
    let parsed = parse("\n   \n# comment\n  \t a v=1 5  \n\t# indented comment\nb v=2");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.batch.len(), 2);
    assert_eq!(parsed.batch.point(0).map(|p| p.time()), Some(5));
    assert!(parse("").batch.is_empty());
}

#[test]
fn a_hundred_tags_are_accepted() {
    let tags: String = (0..100).map(|i| format!(",t{i:03}=v{i}")).collect();
    let parsed = parse(&format!("m{tags} v=1 1"));
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.batch.point(0).map(|p| p.tags().len()), Some(100));
}

#[test]
fn the_line_that_crashes_influxd_is_rejected_without_harm() {
    let parsed = parse("m \0=\",\"=3,\"=\"");
    assert_eq!(parsed.errors.len(), 1);
    assert!(
        matches!(parsed.errors[0].reason, Reason::Unsupported(_)),
        "{:?}",
        parsed.errors
    );
}

#[test]
fn backslashes_in_names_are_read_as_influxdb_1_reads_them() {
    let parsed = parse(
        "m\\\\x,t=a\\\\b v=1\n\
         cpu,regions=\\\\ east value=1.0\n\
         cpu,regions=\\\\,\\,\\=east value=1.0\n\
         u f\\\\x=1,g=\"s\\\\\" 1\n",
    );
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let point = parsed.batch.point(0).expect("point");
    assert_eq!(point.measurement(), "m\\\\x");
    assert_eq!(point.tag("t"), Some("a\\\\b"));
    assert_eq!(
        parsed.batch.point(1).and_then(|p| p.tag("regions")),
        Some("\\ east")
    );
    assert_eq!(
        parsed.batch.point(2).and_then(|p| p.tag("regions")),
        Some("\\,,=east")
    );
    let fields: Vec<_> = parsed.batch.point(3).expect("point").fields().collect();
    assert_eq!(
        fields,
        [
            ("f\\\\x", FieldValue::Float(1.0)),
            ("g", FieldValue::String("s\\"))
        ]
    );
    // The crate cannot hold a name that ends with a backslash: rejected, saying so.
    let parsed = parse("u f\\\\=1");
    assert_eq!(
        parsed.errors[0].reason,
        Reason::Unsupported("name ends with a backslash")
    );
}

#[test]
fn negative_timestamps_are_kept() {
    assert_eq!(parse("m v=1 -5").batch.point(0).map(|p| p.time()), Some(-5));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let parsed = parse_with(&body, Precision::Seconds);
        for point in parsed.batch.points() {
            let _ = (point.measurement(), point.tags().count(), point.fields().count());
        }
    }

    #[test]
    fn line_protocol_shaped_text_never_panics_and_accepts_are_consistent(
        body in "[a-z ,=\"\\\\.0-9eEiutTfF#\n\t-]{0,120}"
    ) {
        let parsed = parse_with(body.as_bytes(), Precision::Nanoseconds);
        // Every accepted point has a measurement and at least one field.
        for point in parsed.batch.points() {
            prop_assert!(!point.measurement().is_empty());
            prop_assert!(point.fields().len() > 0);
        }
    }
}
