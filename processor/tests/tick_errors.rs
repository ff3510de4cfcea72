//! Broken scripts are rejected with the line:column of the offending text and a clear reason.

use processor::tick::{Error, VarOverrides, compile};

/// (script, line, column, text the message must contain)
const BROKEN: &[(&str, u32, u32, &str)] = &[
    // Lexical errors.
    ("var x = 'abc", 1, 9, "unterminated string"),
    (
        "stream\n  |from()\n  .where(lambda: \"host\" == 'a)",
        3,
        28,
        "unterminated string",
    ),
    ("var x = 1.5s", 1, 9, "whole number"),
    ("var x = 5min", 1, 9, "`5min`"),
    ("stream\n    |from() #", 2, 13, "unexpected character `#`"),
    ("var r = /abc", 1, 9, "unterminated regex"),
    // Syntax errors.
    ("stream\n    |from(\n", 2, 11, "unexpected end of script"),
    (
        "stream\n    |from()\n    .measurement('a'\n    |derivative('x')",
        4,
        5,
        "expected `,` or `)`",
    ),
    ("var = 5", 1, 5, "a variable name after `var`"),
    (
        "stream\n  |from()\n  .where(lambda: \"a\" = 1)",
        3,
        22,
        "compare with `==`",
    ),
    (
        "stream\n  |from()\n  .where(lambda: \"a\" > 1 and \"b\" < 2)",
        3,
        26,
        "AND, OR",
    ),
    ("stream\n  |from\n", 2, 8, "`(` after `from`"),
    ("dbrp \"db\" \"rp\"", 1, 11, "`.` between \"db\" and \"rp\""),
    (
        "var x = 99999999999999999999",
        1,
        9,
        "does not fit in 64 bits",
    ),
    // Unsupported nodes and syntax.
    (
        "stream\n    |from()\n    |alert()\n        .crit(lambda: TRUE)",
        3,
        6,
        "node `alert()` is not supported",
    ),
    (
        "batch\n    |query('SELECT 1')",
        1,
        1,
        "batch tasks are not supported",
    ),
    (
        "stream\n    |from()\n    @myUdf()",
        3,
        6,
        "`@myUdf()` is not supported",
    ),
    (
        "var data = stream|from()\ndata|join(data)",
        2,
        6,
        "node `join()` is not supported",
    ),
    // Binding and type errors.
    (
        "stream\n    |from()\n    |derivative('x')\n        .unit('1s')",
        4,
        15,
        "`.unit()` of derivative2 expects a duration, got string '1s'",
    ),
    (
        "stream\n    |from()\n    |derivative('x')\n        .unt(1s)",
        4,
        10,
        "unknown property `.unt()` for derivative2",
    ),
    (
        "stream\n    |from()\n    |movingAverage('x', 2.5)",
        3,
        25,
        "expects an int, got float 2.5",
    ),
    (
        "stream\n    |from()\n    |movingAverage('x', 0)",
        3,
        25,
        "must be from 1 to 1000000",
    ),
    (
        "stream\n    |from()\n        .truncate(1)",
        3,
        19,
        "`.truncate()` of from1 expects a duration, got int 1",
    ),
    (
        "stream\n    |from()\n        .groupBy(1s)",
        3,
        18,
        "tag names (strings) or `*`",
    ),
    (
        "stream\n    |from()\n        .where('host')",
        3,
        16,
        "expects a lambda expression",
    ),
    (
        "stream\n    |from()\n        .measurement(\"requests\")",
        3,
        22,
        "only allowed inside `lambda:`",
    ),
    (
        "stream\n    |from()\n    |sum()",
        3,
        6,
        "`sum()` of sum2 takes 1 argument, got 0",
    ),
    (
        "stream\n    |derivative('x')",
        2,
        6,
        "`stream` can only be followed by `|from()`",
    ),
    (
        "stream\n    |from()\n    |from()",
        3,
        6,
        "`|from()` can only follow `stream`",
    ),
    ("var x = 5\nx|from()", 2, 1, "`x` is a int, not a node"),
    (
        "stream\n    |from()\n    |eval(lambda: \"a\" * 2.0)\n        .as('b', 'c')",
        4,
        10,
        "1 expression(s) but 2 name(s)",
    ),
    (
        "stream\n    |from()\n    |k8sAutoscale()\n        .resourceNameTag('deployment')",
        3,
        6,
        "needs `.replicas(lambda: ...)`",
    ),
    (
        "stream\n    |from()\n    |k8sAutoscale()\n        .replicas(lambda: 1)",
        3,
        6,
        "exactly one of `.resourceName()` and `.resourceNameTag()`",
    ),
    (
        "stream\n    |from()\n    |k8sAutoscale()\n        .resourceName('app')\n        .replicas(lambda: 1)\n        .min(0)",
        6,
        10,
        "`.min()` of k8s_autoscale2 must be at least 1",
    ),
    (
        "stream\n    |from()\n    |k8sAutoscale()\n        .resourceName('app')\n        .replicas(lambda: 1)\n        .kind('pods')",
        6,
        10,
        "unknown kind 'pods'",
    ),
    (
        "stream\n    |from()\n    |k8sAutoscale()\n        .resourceName('app')\n        .replicas(1)",
        5,
        19,
        "expects a lambda expression",
    ),
    (
        "stream\n    |from()\n    |where(lambda: int(ceil(\"x\" / target)) > 1)",
        3,
        35,
        "undefined variable `target`",
    ),
    (
        "stream\n    |from()\n    |where(lambda: floor(\"x\", 2.0) > 1)",
        3,
        20,
        "floor() takes 1 argument, got 2",
    ),
    (
        "stream\n    |from()\n    |where(lambda: median(\"x\") > 1)",
        3,
        20,
        "unknown function `median`",
    ),
    (
        "stream\n    |from()\n    |where(lambda: \"host\" =~ /a(/)",
        3,
        30,
        "invalid regex",
    ),
    (
        "stream\n    |from()\n        .where(lambda: int(\"x\"))",
        3,
        16,
        "`.where()` of from1 must evaluate to bool",
    ),
    (
        "stream\n    |from()\n    |where(lambda: \"x\" > 1 AND 5)",
        3,
        28,
        "operator `AND` cannot be applied to int",
    ),
    ("var x = y", 1, 9, "undefined variable `y`"),
    (
        "var x = 1 + 2.0",
        1,
        11,
        "mismatched types for `+`: int and float",
    ),
    ("var stream = 1", 1, 1, "`stream` is reserved"),
    ("var x = 5\n5", 2, 1, "this statement does nothing"),
    ("var x float", 1, 1, "has no value"),
    ("var x number", 1, 7, "unknown type `number`"),
    (
        "stream\n    |from()\n    |window()\n        .every(10s)",
        3,
        6,
        "window2 needs a positive `.period()`",
    ),
    (
        "stream\n    |from()\n    |influxDBOut()\n        .database('db')\n        .precision('x')",
        5,
        10,
        "unknown precision 'x'",
    ),
    (
        "stream\n    |from()\n    |log()\n        .level('LOUD')",
        4,
        10,
        "unknown log level 'LOUD'",
    ),
    (
        "stream\n    |from()\n    |httpOut('a/b')",
        3,
        14,
        "without `/`",
    ),
];

#[test]
fn broken_scripts_report_line_column_and_reason() {
    let mut failures = Vec::new();
    for (script, line, column, needle) in BROKEN {
        match compile(script, &VarOverrides::new()) {
            Ok(_) => failures.push(format!("accepted: {script:?}")),
            Err(err) => {
                let message = err.to_string();
                let at = err.location().map(|l| (l.line, l.column));
                if at != Some((*line, *column)) || !message.contains(needle) {
                    failures.push(format!(
                        "{script:?}\n   expected {line}:{column} containing {needle:?}\n   got      {at:?} {message}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_message_shows_the_line_and_an_excerpt() {
    let err = compile("stream\n    |from()\n    |alert()\n", &VarOverrides::new()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }));
    let message = err.to_string();
    assert!(
        message.starts_with("line 3:6: node `alert()` is not supported"),
        "{message}"
    );
    assert!(message.ends_with("(in `|alert()`)"), "{message}");
}

#[test]
fn script_without_a_chain_is_rejected() {
    assert_eq!(
        compile("var x = 1\n// nothing else\n", &VarOverrides::new()),
        Err(Error::Empty)
    );
    assert_eq!(compile("", &VarOverrides::new()), Err(Error::Empty));
}
