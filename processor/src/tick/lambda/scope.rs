//! What a lambda sees of a point: its fields and tags by name, and its time.

use crate::point::PointRef;

use super::FieldValue;

/// What the evaluator needs from a point: fields and tags by name, and its time.
pub trait PointScope {
    /// The field called `name`, if the point has it.
    fn field(&self, name: &str) -> Option<FieldValue<'_>>;
    /// The tag called `name`, if the point has it.
    fn tag(&self, name: &str) -> Option<&str>;
    /// The point's time in nanoseconds since the Unix epoch.
    fn time(&self) -> i64;
}

impl PointScope for PointRef<'_> {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        PointRef::field(self, name)
    }
    fn tag(&self, name: &str) -> Option<&str> {
        PointRef::tag(self, name)
    }
    fn time(&self) -> i64 {
        PointRef::time(self)
    }
}

/// A scope that shows extra named values on top of another scope: an eval node's earlier
/// results (`eval(a, b).as('x', 'y')`: `b` may read `"x"`), or k8sAutoscale's `currentField`.
/// Extra names shadow the point's fields and tags of the same name.
pub struct WithFields<'a, S: PointScope + ?Sized> {
    pub base: &'a S,
    pub extra: &'a [(&'a str, FieldValue<'a>)],
}

impl<S: PointScope + ?Sized> PointScope for WithFields<'_, S> {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        match self.extra.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => Some(*value),
            None => self.base.field(name),
        }
    }
    fn tag(&self, name: &str) -> Option<&str> {
        if self.extra.iter().any(|(n, _)| *n == name) {
            None
        } else {
            self.base.tag(name)
        }
    }
    fn time(&self) -> i64 {
        self.base.time()
    }
}

/// A scope with no fields, no tags and time 0 (for constant expressions).
pub struct EmptyScope;

impl PointScope for EmptyScope {
    fn field(&self, _: &str) -> Option<FieldValue<'_>> {
        None
    }
    fn tag(&self, _: &str) -> Option<&str> {
        None
    }
    fn time(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::lambda::Val;
    use crate::tick::lambda::fixtures::{lambda, point};

    #[test]
    fn lambdas_evaluate_directly_on_written_points() {
        use crate::line_protocol::{Precision, parse_body};
        let parsed = parse_body(
            b"requests,host=web-1,deployment=app counter=42i,avg=250.5 1000000000\n".to_vec(),
            "autoscale".to_string(),
            "autogen".to_string(),
            Precision::Nanoseconds,
            0,
        );
        let point = parsed.batch.point(0).unwrap();
        let l = lambda(
            "\"deployment\" == 'app' AND \"counter\" > 40 AND int(ceil(\"avg\" / target)) == n",
        );
        assert_eq!(l.eval_bool(&point), Ok(true));
        assert_eq!(
            lambda("\"time\"").eval(&point),
            Ok(Val::Time(1_000_000_000))
        );
    }

    #[test]
    fn extra_fields_shadow_the_point() {
        let base = point();
        let extra = [
            ("avg", FieldValue::Float(50.0)),
            ("host", FieldValue::Integer(4)),
            ("current", FieldValue::Integer(2)),
        ];
        let scope = WithFields {
            base: &base,
            extra: &extra,
        };
        assert_eq!(
            lambda("int(ceil(\"avg\" / target))").eval_int(&scope),
            Ok(1)
        );
        assert_eq!(lambda("\"host\" + \"current\"").eval_int(&scope), Ok(6));
        assert_eq!(lambda("\"count\"").eval_int(&scope), Ok(7));
    }
}
