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
        assert_eq!(Precision::from_v1_param(expected.v1_param()), Ok(expected));
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
fn the_batch_reserves_room_for_the_rest_of_the_body_within_bounds() {
    // Telegraf-shaped: room for every point at once.
    let line = "cpu,host=a,region=eu usage_idle=97.5,usage_user=1.25 1700000000000000000\n";
    let parsed = parse(&line.repeat(1_000));
    assert_eq!(parsed.batch.len(), 1_000);
    let (points, tags, fields) = parsed.batch.capacities();
    assert!(points >= 1_000 && tags >= 2_000 && fields >= 2_000);
    // A dense head (15 fields in 62 bytes), then one long string: the room follows the body's
    // size, not the head's density (extrapolating would reserve about 250,000 fields).
    let mut body = "m a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=0,k=1,l=2,n=3,o=4,p=5\n".repeat(64);
    body.push_str(&format!("s v=\"{}\"\n", "x".repeat(1 << 20)));
    let parsed = parse(&body);
    assert_eq!(parsed.batch.len(), 65);
    let (points, _, fields) = parsed.batch.capacities();
    assert!(points <= 2 * 64 + body.len() / 32, "{points}");
    assert!(fields <= 2 * 960 + body.len() / 8, "{fields}");
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

// The fast path for simple lines against the full path (1.x's scanner, then the crate).

/// A field value, comparable exactly (floats by their bits, so -0.0 and 0.0 differ).
#[derive(Debug, PartialEq)]
enum Exact {
    Float(u64),
    Integer(i64),
    Boolean(bool),
    String(String),
}

/// A point: measurement, tags, fields, time.
type ExactPoint = (String, Vec<(String, String)>, Vec<(String, Exact)>, i64);

/// Everything a parse produced, in a comparable form.
#[derive(Debug, PartialEq)]
struct Outcome {
    points: Vec<ExactPoint>,
    errors: Vec<(usize, String, String)>,
    dropped: Option<Dropped>,
}

fn outcome(parsed: &Parsed) -> Outcome {
    let points = parsed
        .batch
        .points()
        .map(|point| {
            let tags = point
                .tags()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let fields = point
                .fields()
                .map(|(k, v)| {
                    let exact = match v {
                        FieldValue::Float(f) => Exact::Float(f.to_bits()),
                        FieldValue::Integer(i) => Exact::Integer(i),
                        FieldValue::Boolean(b) => Exact::Boolean(b),
                        FieldValue::String(s) => Exact::String(s.to_owned()),
                    };
                    (k.to_owned(), exact)
                })
                .collect();
            (point.measurement().to_owned(), tags, fields, point.time())
        })
        .collect();
    let errors = parsed
        .errors
        .iter()
        .map(|e| (e.line_number, e.line.clone(), e.reason.to_string()))
        .collect();
    Outcome {
        points,
        errors,
        dropped: parsed.dropped.clone(),
    }
}

fn both_paths(body: &[u8], precision: Precision) -> (Outcome, Outcome) {
    let run = |paths| {
        let parsed = parse_body_with(
            body.to_vec(),
            "db".into(),
            "autogen".into(),
            precision,
            NOW,
            paths,
            None,
        );
        outcome(&parsed)
    };
    (run(Paths::SimpleFirst), run(Paths::FullOnly))
}

/// True when the fast path alone stores `line`.
fn takes_fast_path(line: &str, precision: Precision) -> bool {
    let mut batch = Batch::new("db".into(), "autogen".into());
    let context = LineContext {
        base: line.as_ptr() as usize,
        body_len: line.len(),
        precision,
        default_time: precision.truncate(NOW),
    };
    simple::store(&mut batch, &context, line, 0)
}

const TELEGRAF_LINES: [&str; 4] = [
    "cpu,cpu=cpu0,host=app-1 usage_guest=0,usage_idle=97.25,usage_iowait=0.1,usage_irq=0,usage_system=1.2,usage_user=1.1 1700000000000000000",
    "mem,host=app-1 active=1234567i,available=7654321i,available_percent=61.2,free=1111111i,used=2222222i,used_percent=38.8 1700000000000001000",
    "net,host=app-1,interface=eth0 bytes_recv=1000i,bytes_sent=700i,packets_recv=12345i,err_in=0i 1700000000000002000",
    "requests,deployment=app,host=app-1,url=http://10.0.0.1:8000/metrics counter=3i,up=true",
];

#[test]
fn telegraf_lines_take_the_fast_path_and_give_the_full_paths_points() {
    for line in TELEGRAF_LINES {
        assert!(takes_fast_path(line, Precision::Nanoseconds), "{line}");
    }
    let body = TELEGRAF_LINES.join("\n");
    let (fast, full) = both_paths(body.as_bytes(), Precision::Nanoseconds);
    assert_eq!(fast.points.len(), 4);
    assert_eq!(fast, full);
}

#[test]
fn lines_that_are_not_simple_leave_the_fast_path() {
    for line in [
        "m,t=a s=\"str\" 1",
        "m\\ x v=1",
        "m v=.5",
        "m v=1.",
        "m v=1u",
        "m,time=x v=1",
        "m time=1,v=2",
        "m v=1,v=2",
        "m,b=1,a=2,b=3 v=1",
        "m,t=a\tx v=1",
        "m v=1 5\t",
        "m v=1 5 x",
        "m v=1 99999999999999999999",
        "m v=1e400",
        "m v=tru",
        "m v=1\r",
        "m,t=a=b v=1",
        "m,t= v=1",
        "m, v=1",
        "m",
        "m v=",
        "m v=1,",
    ] {
        assert!(!takes_fast_path(line, Precision::Nanoseconds), "{line:?}");
    }
    // Scaled out of range: the full path gives 1.x's error.
    assert!(!takes_fast_path("m v=1 99999999999", Precision::Hours));
}

#[test]
fn unsorted_tags_without_repeats_take_the_fast_path() {
    assert!(takes_fast_path("m,b=1,a=2 v=1", Precision::Nanoseconds));
    let (fast, full) = both_paths(b"m,b=1,a=2 v=1", Precision::Nanoseconds);
    assert_eq!(fast, full);
}

/// Names both paths accept in a simple line (no leading `#`, which starts a comment).
fn clean_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_é][a-zA-Z0-9_.:/é-]{0,7}"
}

/// Field values in the forms the fast path takes.
fn clean_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| format!("{v}i")),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| format!("{v}")),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| format!("{v:e}")),
        "-?[0-9]{1,4}(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,2})?",
        "-?[0-9]{1,12}\\.[0-9]{1,12}",
        "(t|T|true|True|TRUE|f|F|false|False|FALSE)",
    ]
}

/// A simple line: measurement, unique tags (sorted or not), unique fields, optional timestamp.
fn clean_line() -> impl Strategy<Value = String> {
    (
        clean_name(),
        proptest::collection::btree_map(clean_name(), clean_name(), 0..5),
        any::<bool>(),
        proptest::collection::btree_map(clean_name(), clean_value(), 1..6),
        proptest::option::of(-9_000_000_000_000_000_000i64..9_000_000_000_000_000_000),
        "[ ]{1,3}",
        "[ ]{0,2}",
    )
        .prop_filter("no time key", |(_, tags, _, fields, ..)| {
            !tags.contains_key("time") && !fields.contains_key("time")
        })
        .prop_map(
            |(measurement, tags, reverse, fields, timestamp, gap, tail)| {
                let mut tags: Vec<_> = tags.into_iter().map(|(k, v)| format!(",{k}={v}")).collect();
                if reverse {
                    tags.reverse();
                }
                let fields: Vec<_> = fields
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let timestamp = timestamp.map(|t| format!("{gap}{t}")).unwrap_or_default();
                format!(
                    "{measurement}{}{gap}{}{timestamp}{tail}",
                    tags.concat(),
                    fields.join(",")
                )
            },
        )
}

/// A simple line with one byte inserted or replaced from the ones that matter to the parsers.
fn mutated_line() -> impl Strategy<Value = String> {
    let nasty = prop_oneof![
        Just(' '),
        Just(','),
        Just('='),
        Just('"'),
        Just('\\'),
        Just('\t'),
        Just('\0'),
        Just('\r'),
        Just('.'),
        Just('-'),
        Just('+'),
        Just('e'),
        Just('i'),
        Just('u'),
        Just('t'),
        Just('#'),
        Just('0'),
    ];
    (
        clean_line(),
        any::<prop::sample::Index>(),
        nasty,
        any::<bool>(),
    )
        .prop_map(|(line, at, c, replace)| {
            let chars: Vec<char> = line.chars().collect();
            let i = at.index(chars.len() + 1);
            let (head, tail) = chars.split_at(i);
            let tail = if replace {
                tail.get(1..).unwrap_or_default()
            } else {
                tail
            };
            head.iter().chain([c].iter()).chain(tail).collect()
        })
}

fn any_precision() -> impl Strategy<Value = Precision> {
    prop_oneof![
        Just(Precision::Nanoseconds),
        Just(Precision::Microseconds),
        Just(Precision::Seconds),
        Just(Precision::Hours),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn simple_lines_take_the_fast_path(line in clean_line()) {
        prop_assert!(takes_fast_path(&line, Precision::Nanoseconds), "{line:?}");
    }

    #[test]
    fn the_fast_path_gives_what_the_full_path_gives(
        lines in proptest::collection::vec(
            (
                prop_oneof![Just(""), Just(""), Just("  "), Just("\t"), Just("#"), Just("\0")],
                prop_oneof![
                    3 => clean_line(),
                    4 => mutated_line(),
                    1 => "[a-z0-9 ,=\"\\\\.eEiutTfF#\t+-]{0,40}",
                ],
            ),
            1..6,
        ),
        separator in prop_oneof![Just("\n"), Just("\n\n"), Just("\r\n")],
        precision in any_precision(),
    ) {
        let lines: Vec<String> = lines.into_iter().map(|(lead, line)| format!("{lead}{line}")).collect();
        let body = lines.join(separator);
        let (fast, full) = both_paths(body.as_bytes(), precision);
        prop_assert_eq!(fast, full, "body {:?}", body);
    }
}

#[test]
fn numbered_parsing_gives_each_point_its_line() {
    let body = "# comment\nm v=1 1\n\nbad line\nm,time=x v=2 2\nm s=\"a\nb\" 3\nm v=4 4\n";
    let (parsed, lines) = parse_body_numbered(
        body.as_bytes().to_vec(),
        "db".into(),
        "rp".into(),
        Precision::Nanoseconds,
        NOW,
    );
    let times: Vec<i64> = parsed.batch.points().map(|p| p.time()).collect();
    assert_eq!(times, vec![1, 3, 4]);
    assert_eq!(
        lines,
        vec![2, 6, 8],
        "the string's newline counts as a line"
    );
    assert_eq!(parsed.errors[0].line_number, 4);
    assert_eq!(parsed.dropped.map(|d| d.count), Some(1));
}
