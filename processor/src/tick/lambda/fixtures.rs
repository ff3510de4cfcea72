//! What the unit tests of `lambda/` share: a point, some vars, and shortcuts to compile and
//! evaluate an expression.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{EvalResult, FieldValue, Lambda, PointScope, Val, VarLookup};
use crate::tick::parser::parse_lambda_body;
use crate::tick::value::Value;

struct Vars(HashMap<&'static str, Value>);

impl VarLookup for Vars {
    fn var(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

#[derive(Default)]
pub(super) struct Point {
    pub fields: Vec<(&'static str, FieldValue<'static>)>,
    pub tags: Vec<(&'static str, &'static str)>,
    pub time: i64,
}

impl PointScope for Point {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
    fn tag(&self, name: &str) -> Option<&str> {
        self.tags.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
    fn time(&self) -> i64 {
        self.time
    }
}

pub(super) fn lambda(src: &str) -> Lambda {
    let vars = Vars(HashMap::from([
        ("target", Value::Float(100.0)),
        ("n", Value::Int(3)),
        ("cooldown", Value::Duration(60_000_000_000)),
    ]));
    let body = parse_lambda_body(src).unwrap();
    Lambda::compile(src, &body, &vars).unwrap()
}

pub(super) fn compile_err(src: &str) -> String {
    let body = parse_lambda_body(src).unwrap();
    Lambda::compile(src, &body, &Vars(HashMap::new()))
        .unwrap_err()
        .to_string()
}

pub(super) fn point() -> Point {
    Point {
        fields: vec![
            ("avg", FieldValue::Float(250.0)),
            ("count", FieldValue::Integer(7)),
            ("up", FieldValue::Boolean(true)),
            ("msg", FieldValue::String("hello")),
        ],
        tags: vec![("host", "web-1"), ("deployment", "app")],
        time: 1_000,
    }
}

pub(super) fn eval(src: &str) -> EvalResult<Val<'static>> {
    let l = lambda(src);
    let p = point();
    l.eval(&p).map(|v| match v {
        Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
        Val::Regex(_) => Val::Bool(false),
        Val::Bool(b) => Val::Bool(b),
        Val::Int(i) => Val::Int(i),
        Val::Float(x) => Val::Float(x),
        Val::Duration(d) => Val::Duration(d),
        Val::Time(t) => Val::Time(t),
    })
}
