//! No input makes the TICKscript compiler or the lambda evaluator panic.

use processor::tick::lambda::{FieldValue, PointScope};
use processor::tick::nodes::NodeSpec;
use processor::tick::{VarOverrides, compile};
use proptest::prelude::*;

fn tutorial() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tick/autoscale.tick"
    );
    std::fs::read_to_string(path).expect("fixture autoscale.tick")
}

/// Fragments that make up TICKscript, so random scripts reach deep into the parser and binder.
const FRAGMENTS: &[&str] = &[
    "stream",
    "batch",
    "|",
    ".",
    "@",
    "from",
    "(",
    ")",
    "[",
    "]",
    ",",
    "var",
    "x",
    "=",
    "1",
    "2.5",
    "1s",
    "100ms",
    "'s'",
    "'''t'''",
    "\"f\"",
    "/re/",
    "*",
    "lambda:",
    "+",
    "-",
    "/",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    "=~",
    "!~",
    "!",
    "AND",
    "OR",
    "TRUE",
    "FALSE",
    "int",
    "ceil",
    "\n",
    " ",
    "// c\n",
    "derivative",
    "sum",
    "movingAverage",
    "k8sAutoscale",
    "eval",
    "where",
    "groupBy",
    "window",
    "as",
    "unit",
    "replicas",
    "dbrp",
    "µ",
    "\"",
    "'",
    "isPresent",
    "if",
];

fn fragment_script() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..60).prop_map(|v| v.concat())
}

/// The tutorial with one span replaced by random text.
fn mutated_tutorial() -> impl Strategy<Value = String> {
    let base = tutorial();
    let len = base.len();
    (0..len, 0..40usize, ".{0,12}").prop_map(move |(start, cut, insert)| {
        let mut s = base.clone();
        let start = (0..=start)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        let end = (start + cut).min(len);
        let end = (end..=len).find(|i| s.is_char_boundary(*i)).unwrap_or(len);
        s.replace_range(start..end, &insert);
        s
    })
}

struct Point {
    value: f64,
}

impl PointScope for Point {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        match name {
            "f" => Some(FieldValue::Float(self.value)),
            "i" => Some(FieldValue::Integer(self.value as i64)),
            "s" => Some(FieldValue::String("str")),
            "b" => Some(FieldValue::Boolean(self.value > 0.0)),
            _ => None,
        }
    }
    fn tag(&self, name: &str) -> Option<&str> {
        (name == "host").then_some("web-1")
    }
    fn time(&self) -> i64 {
        self.value as i64
    }
}

const OPERANDS: &[&str] = &[
    "\"f\"",
    "\"i\"",
    "\"s\"",
    "\"b\"",
    "\"host\"",
    "\"time\"",
    "\"nope\"",
    "1",
    "0",
    "-1",
    "9223372036854775807",
    "2.5",
    "0.0",
    "1s",
    "'a'",
    "TRUE",
    "/w/",
    "x",
    "d",
];
const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "=~", "!~", "AND", "OR",
];
const FUNCTIONS: &[&str] = &[
    "int", "float", "string", "bool", "abs", "ceil", "floor", "round", "trunc", "sqrt", "log",
    "exp", "duration",
];

fn lambda_expr() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(OPERANDS).prop_map(str::to_string);
    leaf.prop_recursive(5, 40, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(OPERATORS),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (prop::sample::select(FUNCTIONS), inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (
                prop::sample::select(&["min", "max", "pow"][..]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.prop_map(|a| format!("!{a}")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(script in "\\PC{0,200}") {
        let _ = compile(&script, &VarOverrides::new());
    }

    #[test]
    fn token_soup_never_panics(script in fragment_script()) {
        let _ = compile(&script, &VarOverrides::new());
    }

    #[test]
    fn mutated_tutorial_never_panics(script in mutated_tutorial()) {
        if let Err(err) = compile(&script, &VarOverrides::new()) {
            // Errors point into the script (or are not located at all).
            if let Some(loc) = err.location() {
                prop_assert!(loc.line as usize <= script.lines().count() + 1);
            }
        }
    }

    #[test]
    fn evaluating_any_lambda_never_panics(expr in lambda_expr(), value in prop::num::f64::ANY) {
        let script = format!(
            "var x = 3\nvar d = 10s\nstream|from().where(lambda: {expr})"
        );
        if let Ok(pipeline) = compile(&script, &VarOverrides::new()) {
            let NodeSpec::From(from) = &pipeline.nodes[1].spec else { panic!("from1") };
            let lambda = from.where_.as_ref().expect("where");
            let _ = lambda.eval(&Point { value });
            let _ = lambda.eval_int(&Point { value });
        }
    }
}
