//! Evaluating a compiled lambda against a scope: constants, references (fields before tags,
//! `"time"`), unary and binary operators with Kapacitor's typing, and the typed entry points.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::super::ast::{BinaryOp, UnaryOp};
use super::functions::call;
use super::{Const, EvalError, EvalResult, FieldValue, Lambda, Node, PointScope, Val, ValType};

impl Lambda {
    /// Evaluates the expression for one point.
    pub fn eval<'s, S: PointScope + ?Sized>(&'s self, scope: &'s S) -> EvalResult<Val<'s>> {
        eval(&self.root, scope)
    }

    pub fn eval_bool<S: PointScope + ?Sized>(&self, scope: &S) -> EvalResult<bool> {
        match self.eval(scope)? {
            Val::Bool(b) => Ok(b),
            other => Err(wrong_type(ValType::Bool, &other)),
        }
    }

    /// Evaluates to an int; a float result is an error (as Kapacitor's `EvalInt`).
    pub fn eval_int<S: PointScope + ?Sized>(&self, scope: &S) -> EvalResult<i64> {
        match self.eval(scope)? {
            Val::Int(i) => Ok(i),
            other => Err(wrong_type(ValType::Int, &other)),
        }
    }

    /// Evaluates to a number: an int or a float, as a float (`k8sAutoscale`'s `.replicas()`).
    pub fn eval_number<S: PointScope + ?Sized>(&self, scope: &S) -> EvalResult<f64> {
        match self.eval(scope)? {
            Val::Float(x) => Ok(x),
            Val::Int(i) => Ok(i as f64),
            other => Err(wrong_type(ValType::Float, &other)),
        }
    }

    /// Evaluates to a float; an int result is an error (as Kapacitor's `EvalFloat`).
    pub fn eval_float<S: PointScope + ?Sized>(&self, scope: &S) -> EvalResult<f64> {
        match self.eval(scope)? {
            Val::Float(x) => Ok(x),
            other => Err(wrong_type(ValType::Float, &other)),
        }
    }
}

fn wrong_type(expected: ValType, got: &Val<'_>) -> EvalError {
    EvalError::WrongType {
        expected,
        got: got.val_type(),
    }
}

pub(super) fn eval<'s, S: PointScope + ?Sized>(
    node: &'s Node,
    scope: &'s S,
) -> EvalResult<Val<'s>> {
    match node {
        Node::Const(c) => Ok(match c {
            Const::Bool(b) => Val::Bool(*b),
            Const::Int(i) => Val::Int(*i),
            Const::Float(x) => Val::Float(*x),
            Const::Str(s) => Val::Str(Cow::Borrowed(s)),
            Const::Duration(d) => Val::Duration(*d),
            Const::Regex(r) => Val::Regex(r),
        }),
        Node::Time => Ok(Val::Time(scope.time())),
        Node::Reference(name) => reference(name, scope),
        Node::IsPresent(name) => Ok(Val::Bool(
            scope.field(name).is_some() || scope.tag(name).is_some(),
        )),
        Node::Unary(op, operand) => unary(*op, eval(operand, scope)?),
        Node::Binary(op, lhs, rhs) => binary(*op, lhs, rhs, scope),
        Node::Call(func, args) => call(*func, args, scope),
    }
}

fn reference<'s, S: PointScope + ?Sized>(name: &'s str, scope: &'s S) -> EvalResult<Val<'s>> {
    match (scope.field(name), scope.tag(name)) {
        (Some(_), Some(_)) => Err(EvalError::Ambiguous(name.to_string())),
        (Some(field), None) => Ok(match field {
            FieldValue::Float(x) => Val::Float(x),
            FieldValue::Integer(i) => Val::Int(i),
            FieldValue::Boolean(b) => Val::Bool(b),
            FieldValue::String(s) => Val::Str(Cow::Borrowed(s)),
        }),
        (None, Some(tag)) => Ok(Val::Str(Cow::Borrowed(tag))),
        (None, None) => Err(EvalError::Missing(name.to_string())),
    }
}

pub(super) fn unary(op: UnaryOp, v: Val<'_>) -> EvalResult<Val<'_>> {
    match (op, v) {
        (UnaryOp::Neg, Val::Int(i)) => i
            .checked_neg()
            .map(Val::Int)
            .ok_or(EvalError::Overflow { op: "-" }),
        (UnaryOp::Neg, Val::Float(x)) => Ok(Val::Float(-x)),
        (UnaryOp::Neg, Val::Duration(d)) => d
            .checked_neg()
            .map(Val::Duration)
            .ok_or(EvalError::Overflow { op: "-" }),
        (UnaryOp::Not, Val::Bool(b)) => Ok(Val::Bool(!b)),
        (op, v) => Err(EvalError::InvalidOperand {
            op: if op == UnaryOp::Neg { "-" } else { "!" },
            operand: v.val_type(),
        }),
    }
}

fn logical<S: PointScope + ?Sized>(
    op: BinaryOp,
    lhs: &Node,
    rhs: &Node,
    scope: &S,
) -> EvalResult<bool> {
    let as_bool = |v: Val<'_>| match v {
        Val::Bool(b) => Ok(b),
        other => Err(EvalError::InvalidOperand {
            op: op.symbol(),
            operand: other.val_type(),
        }),
    };
    let left = as_bool(eval(lhs, scope)?)?;
    // Short circuit, as Kapacitor.
    match (op, left) {
        (BinaryOp::And, false) => Ok(false),
        (BinaryOp::Or, true) => Ok(true),
        _ => as_bool(eval(rhs, scope)?),
    }
}

fn binary<'s, S: PointScope + ?Sized>(
    op: BinaryOp,
    lhs: &'s Node,
    rhs: &'s Node,
    scope: &'s S,
) -> EvalResult<Val<'s>> {
    if matches!(op, BinaryOp::And | BinaryOp::Or) {
        return logical(op, lhs, rhs, scope).map(Val::Bool);
    }
    let left = eval(lhs, scope)?;
    let right = eval(rhs, scope)?;
    apply(op, left, right)
}

fn ordering_result(op: BinaryOp, ord: Option<Ordering>) -> bool {
    match (op, ord) {
        (BinaryOp::Eq, Some(o)) => o == Ordering::Equal,
        (BinaryOp::NotEq, Some(o)) => o != Ordering::Equal,
        (BinaryOp::NotEq, None) => true,
        (BinaryOp::Lt, Some(o)) => o == Ordering::Less,
        (BinaryOp::Le, Some(o)) => o != Ordering::Greater,
        (BinaryOp::Gt, Some(o)) => o == Ordering::Greater,
        (BinaryOp::Ge, Some(o)) => o != Ordering::Less,
        // NaN compares false, except `!=`.
        _ => false,
    }
}

/// Applies a non-logical binary operator to two evaluated operands.
pub(super) fn apply<'s>(op: BinaryOp, left: Val<'s>, right: Val<'s>) -> EvalResult<Val<'s>> {
    use BinaryOp as B;
    let sym = op.symbol();
    let mismatched = |l: &Val<'_>, r: &Val<'_>| {
        if l.val_type() == r.val_type() {
            EvalError::InvalidOperand {
                op: sym,
                operand: l.val_type(),
            }
        } else {
            EvalError::Mismatched {
                op: sym,
                left: l.val_type(),
                right: r.val_type(),
            }
        }
    };
    match op {
        B::Eq | B::NotEq | B::Lt | B::Le | B::Gt | B::Ge => {
            let equality = matches!(op, B::Eq | B::NotEq);
            let ord = match (&left, &right) {
                (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
                (Val::Float(a), Val::Float(b)) => a.partial_cmp(b),
                (Val::Int(a), Val::Float(b)) => (*a as f64).partial_cmp(b),
                (Val::Float(a), Val::Int(b)) => a.partial_cmp(&(*b as f64)),
                (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
                (Val::Duration(a), Val::Duration(b)) => Some(a.cmp(b)),
                (Val::Time(a), Val::Time(b)) => Some(a.cmp(b)),
                (Val::Bool(a), Val::Bool(b)) if equality => Some(a.cmp(b)),
                _ => return Err(mismatched(&left, &right)),
            };
            Ok(Val::Bool(ordering_result(op, ord)))
        }
        B::RegexMatch | B::RegexNotMatch => match (&left, &right) {
            (Val::Str(s), Val::Regex(r)) => Ok(Val::Bool(r.0.is_match(s) == (op == B::RegexMatch))),
            _ => Err(EvalError::Mismatched {
                op: sym,
                left: left.val_type(),
                right: right.val_type(),
            }),
        },
        B::Add | B::Sub | B::Mul | B::Div | B::Mod => arithmetic(op, left, right, mismatched),
        B::And | B::Or => Err(mismatched(&left, &right)),
    }
}

fn arithmetic<'s>(
    op: BinaryOp,
    left: Val<'s>,
    right: Val<'s>,
    mismatched: impl Fn(&Val<'_>, &Val<'_>) -> EvalError,
) -> EvalResult<Val<'s>> {
    use BinaryOp as B;
    let sym = op.symbol();
    let int_op = |a: i64, b: i64| -> EvalResult<i64> {
        let result = match op {
            B::Add => a.checked_add(b),
            B::Sub => a.checked_sub(b),
            B::Mul => a.checked_mul(b),
            B::Div | B::Mod if b == 0 => return Err(EvalError::DivisionByZero { op: sym }),
            B::Div => a.checked_div(b),
            _ => a.checked_rem(b),
        };
        result.ok_or(EvalError::Overflow { op: sym })
    };
    let float_to_duration = |x: f64| -> EvalResult<Val<'s>> {
        if x.is_finite() && x.abs() < i64::MAX as f64 {
            Ok(Val::Duration(x as i64))
        } else {
            Err(EvalError::Overflow { op: sym })
        }
    };
    match (op, &left, &right) {
        (_, Val::Int(a), Val::Int(b)) => int_op(*a, *b).map(Val::Int),
        (B::Add, Val::Float(a), Val::Float(b)) => Ok(Val::Float(a + b)),
        (B::Sub, Val::Float(a), Val::Float(b)) => Ok(Val::Float(a - b)),
        (B::Mul, Val::Float(a), Val::Float(b)) => Ok(Val::Float(a * b)),
        (B::Div, Val::Float(a), Val::Float(b)) => Ok(Val::Float(a / b)),
        (B::Add, Val::Str(a), Val::Str(b)) => {
            let mut s = String::with_capacity(a.len() + b.len());
            s.push_str(a);
            s.push_str(b);
            Ok(Val::Str(Cow::Owned(s)))
        }
        (B::Add | B::Sub, Val::Duration(a), Val::Duration(b)) => int_op(*a, *b).map(Val::Duration),
        (B::Div, Val::Duration(a), Val::Duration(b)) => int_op(*a, *b).map(Val::Int),
        (B::Mul | B::Div, Val::Duration(a), Val::Int(b)) => int_op(*a, *b).map(Val::Duration),
        (B::Mul, Val::Int(a), Val::Duration(b)) => int_op(*a, *b).map(Val::Duration),
        (B::Mul, Val::Duration(a), Val::Float(b)) | (B::Mul, Val::Float(b), Val::Duration(a)) => {
            float_to_duration(*a as f64 * b)
        }
        (B::Div, Val::Duration(a), Val::Float(b)) => float_to_duration(*a as f64 / b),
        _ => Err(mismatched(&left, &right)),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use crate::tick::lambda::fixtures::{Point, compile_err, eval, lambda, point};
    use crate::tick::lambda::{EvalError, FieldValue, Val, ValType};

    #[test]
    fn tutorial_replicas_expression_rounds_up_to_an_int() {
        let l = lambda("int(ceil(\"avg\" / target))");
        assert_eq!(l.eval_int(&point()), Ok(3));
    }

    #[test]
    fn int_and_float_arithmetic_is_a_type_error() {
        assert_eq!(
            eval("\"count\" + 1.5"),
            Err(EvalError::Mismatched {
                op: "+",
                left: ValType::Int,
                right: ValType::Float
            })
        );
        assert!(eval("\"avg\" * n").is_err());
        assert_eq!(eval("float(\"count\") + 1.5"), Ok(Val::Float(8.5)));
    }

    #[test]
    fn int_and_float_comparison_is_allowed_as_in_kapacitor() {
        assert_eq!(eval("\"count\" < 7.5"), Ok(Val::Bool(true)));
        assert_eq!(eval("\"avg\" == 250"), Ok(Val::Bool(true)));
    }

    #[test]
    fn precedence_is_respected_in_evaluation() {
        assert_eq!(eval("1 + 2 * 3"), Ok(Val::Int(7)));
        assert_eq!(eval("(1 + 2) * 3"), Ok(Val::Int(9)));
        assert_eq!(eval("10 - 4 - 3"), Ok(Val::Int(3)));
        assert_eq!(eval("-2 * 3 + 10 % 4"), Ok(Val::Int(-4)));
        assert_eq!(eval("TRUE OR FALSE AND FALSE"), Ok(Val::Bool(true)));
        assert_eq!(eval("!FALSE AND 1 < 2"), Ok(Val::Bool(true)));
    }

    #[test]
    fn tags_are_strings_and_regexes_match_them() {
        assert_eq!(eval("\"host\" =~ /^web-[0-9]+$/"), Ok(Val::Bool(true)));
        assert_eq!(eval("\"host\" !~ /^db/"), Ok(Val::Bool(true)));
        assert_eq!(eval("\"deployment\" == 'app'"), Ok(Val::Bool(true)));
        assert_eq!(
            eval("\"host\" + '/' + \"msg\""),
            Ok(Val::Str(Cow::Borrowed("web-1/hello")))
        );
    }

    #[test]
    fn missing_and_ambiguous_references_are_errors() {
        assert_eq!(
            eval("\"nope\" > 1"),
            Err(EvalError::Missing("nope".to_string()))
        );
        let l = lambda("\"x\" > 1");
        let p = Point {
            fields: vec![("x", FieldValue::Integer(2))],
            tags: vec![("x", "2")],
            time: 0,
        };
        assert_eq!(l.eval(&p), Err(EvalError::Ambiguous("x".to_string())));
    }

    #[test]
    fn is_present_checks_fields_and_tags() {
        assert_eq!(eval("isPresent(\"avg\")"), Ok(Val::Bool(true)));
        assert_eq!(eval("isPresent(\"host\")"), Ok(Val::Bool(true)));
        assert_eq!(eval("isPresent(\"nope\")"), Ok(Val::Bool(false)));
    }

    #[test]
    fn logical_operators_short_circuit() {
        assert_eq!(eval("FALSE AND \"nope\" > 1"), Ok(Val::Bool(false)));
        assert_eq!(eval("TRUE OR \"nope\" > 1"), Ok(Val::Bool(true)));
        assert!(compile_err("1 AND TRUE").contains("operator `AND` cannot be applied to int"));
    }

    #[test]
    fn integer_division_by_zero_and_overflow_are_errors() {
        assert_eq!(eval("1 / 0"), Err(EvalError::DivisionByZero { op: "/" }));
        assert_eq!(eval("1 % 0"), Err(EvalError::DivisionByZero { op: "%" }));
        assert_eq!(
            eval("9223372036854775807 + 1"),
            Err(EvalError::Overflow { op: "+" })
        );
        assert_eq!(eval("1.0 / 0.0"), Ok(Val::Float(f64::INFINITY)));
        assert!(compile_err("5.0 % 2.0").contains("operator `%` cannot be applied to float"));
    }

    #[test]
    fn durations_do_arithmetic_and_compare() {
        assert_eq!(eval("cooldown * 2"), Ok(Val::Duration(120_000_000_000)));
        assert_eq!(eval("cooldown / 30s"), Ok(Val::Int(2)));
        assert_eq!(eval("cooldown - 30s > 10s"), Ok(Val::Bool(true)));
        assert_eq!(eval("cooldown * 0.5"), Ok(Val::Duration(30_000_000_000)));
        assert!(eval("\"count\" + cooldown").is_err());
    }

    #[test]
    fn eval_int_rejects_a_float_result() {
        let l = lambda("ceil(\"avg\" / target)");
        assert_eq!(
            l.eval_int(&point()),
            Err(EvalError::WrongType {
                expected: ValType::Int,
                got: ValType::Float
            })
        );
    }

    #[test]
    fn time_reference_is_the_point_time() {
        assert_eq!(eval("\"time\""), Ok(Val::Time(1_000)));
    }
}
