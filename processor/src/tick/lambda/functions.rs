//! The built-in functions a lambda may call: conversions (`int()`, `float()`, `string()`,
//! `bool()`, `duration()`), float math (`ceil()`, `pow()`, ...) and `if()`.

use std::borrow::Cow;

use super::super::value::{format_tick_duration, parse_duration};
use super::eval::eval;
use super::{EvalError, EvalResult, Node, PointScope, Val};

/// Built-in functions callable in lambdas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Bool,
    Int,
    Float,
    String,
    Duration,
    Abs,
    Ceil,
    Floor,
    Round,
    Trunc,
    Sqrt,
    Log,
    Exp,
    Min,
    Max,
    Pow,
    If,
}

impl Func {
    pub(super) fn lookup(name: &str) -> Option<Func> {
        Some(match name {
            "bool" => Func::Bool,
            "int" => Func::Int,
            "float" => Func::Float,
            "string" => Func::String,
            "duration" => Func::Duration,
            "abs" => Func::Abs,
            "ceil" => Func::Ceil,
            "floor" => Func::Floor,
            "round" => Func::Round,
            "trunc" => Func::Trunc,
            "sqrt" => Func::Sqrt,
            "log" => Func::Log,
            "exp" => Func::Exp,
            "min" => Func::Min,
            "max" => Func::Max,
            "pow" => Func::Pow,
            "if" => Func::If,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Func::Bool => "bool",
            Func::Int => "int",
            Func::Float => "float",
            Func::String => "string",
            Func::Duration => "duration",
            Func::Abs => "abs",
            Func::Ceil => "ceil",
            Func::Floor => "floor",
            Func::Round => "round",
            Func::Trunc => "trunc",
            Func::Sqrt => "sqrt",
            Func::Log => "log",
            Func::Exp => "exp",
            Func::Min => "min",
            Func::Max => "max",
            Func::Pow => "pow",
            Func::If => "if",
        }
    }

    /// Accepted argument counts (inclusive range).
    pub(super) fn arity(self) -> (usize, usize) {
        match self {
            Func::Min | Func::Max | Func::Pow => (2, 2),
            Func::Duration => (1, 2),
            Func::If => (3, 3),
            _ => (1, 1),
        }
    }
}

/// The functions a lambda may call, for error messages.
pub const FUNCTION_NAMES: &str = "bool, int, float, string, duration, abs, ceil, floor, round, trunc, sqrt, log, exp, min, max, pow, if, isPresent";

fn math_arg(func: Func, v: Val<'_>) -> EvalResult<f64> {
    match v {
        Val::Float(x) => Ok(x),
        other => Err(EvalError::Function {
            function: func.name(),
            reason: format!(
                "expects a float, got {} (convert with float())",
                other.val_type()
            ),
        }),
    }
}

fn func_error(func: Func, reason: impl Into<String>) -> EvalError {
    EvalError::Function {
        function: func.name(),
        reason: reason.into(),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

pub(super) fn call<'s, S: PointScope + ?Sized>(
    func: Func,
    args: &'s [Node],
    scope: &'s S,
) -> EvalResult<Val<'s>> {
    let arg = |i: usize| -> EvalResult<Val<'s>> {
        match args.get(i) {
            Some(node) => eval(node, scope),
            None => Err(func_error(func, "missing argument")),
        }
    };
    let math1 =
        |f: fn(f64) -> f64| -> EvalResult<Val<'s>> { Ok(Val::Float(f(math_arg(func, arg(0)?)?))) };
    let math2 = |f: fn(f64, f64) -> f64| -> EvalResult<Val<'s>> {
        let a = math_arg(func, arg(0)?)?;
        let b = math_arg(func, arg(1)?)?;
        Ok(Val::Float(f(a, b)))
    };
    match func {
        Func::Abs => math1(f64::abs),
        Func::Ceil => math1(f64::ceil),
        Func::Floor => math1(f64::floor),
        Func::Round => math1(f64::round),
        Func::Trunc => math1(f64::trunc),
        Func::Sqrt => math1(f64::sqrt),
        Func::Log => math1(f64::ln),
        Func::Exp => math1(f64::exp),
        Func::Min => math2(f64::min),
        Func::Max => math2(f64::max),
        Func::Pow => math2(f64::powf),
        Func::Int => match arg(0)? {
            Val::Int(i) => Ok(Val::Int(i)),
            Val::Float(x) => {
                // Truncates toward zero, as Go's int64(float64) for in-range values.
                if x.is_finite() && x >= i64::MIN as f64 && x < i64::MAX as f64 {
                    Ok(Val::Int(x as i64))
                } else {
                    Err(func_error(func, format!("{x} does not fit in an int")))
                }
            }
            Val::Str(s) => s
                .parse::<i64>()
                .map(Val::Int)
                .map_err(|_| func_error(func, format!("cannot parse '{s}' as an int"))),
            Val::Bool(b) => Ok(Val::Int(i64::from(b))),
            Val::Duration(d) => Ok(Val::Int(d)),
            other => Err(func_error(
                func,
                format!("cannot convert {} to int", other.val_type()),
            )),
        },
        Func::Float => match arg(0)? {
            Val::Int(i) => Ok(Val::Float(i as f64)),
            Val::Float(x) => Ok(Val::Float(x)),
            Val::Str(s) => s
                .parse::<f64>()
                .map(Val::Float)
                .map_err(|_| func_error(func, format!("cannot parse '{s}' as a float"))),
            Val::Bool(b) => Ok(Val::Float(if b { 1.0 } else { 0.0 })),
            other => Err(func_error(
                func,
                format!("cannot convert {} to float", other.val_type()),
            )),
        },
        Func::Bool => match arg(0)? {
            Val::Bool(b) => Ok(Val::Bool(b)),
            Val::Str(s) => parse_bool(&s)
                .map(Val::Bool)
                .ok_or_else(|| func_error(func, format!("cannot parse '{s}' as a bool"))),
            Val::Int(0) => Ok(Val::Bool(false)),
            Val::Int(1) => Ok(Val::Bool(true)),
            Val::Float(0.0) => Ok(Val::Bool(false)),
            Val::Float(1.0) => Ok(Val::Bool(true)),
            other => Err(func_error(
                func,
                format!("cannot convert {other:?} to bool"),
            )),
        },
        Func::String => Ok(Val::Str(Cow::Owned(match arg(0)? {
            Val::Str(s) => return Ok(Val::Str(s)),
            Val::Int(i) => i.to_string(),
            Val::Float(x) => x.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Duration(d) => format_tick_duration(d),
            other => {
                return Err(func_error(
                    func,
                    format!("cannot convert {} to string", other.val_type()),
                ));
            }
        }))),
        Func::Duration => {
            let value = arg(0)?;
            let unit = if args.len() > 1 {
                match arg(1)? {
                    Val::Duration(u) => Some(u),
                    other => {
                        return Err(func_error(
                            func,
                            format!("the unit must be a duration, got {}", other.val_type()),
                        ));
                    }
                }
            } else {
                None
            };
            match (value, unit) {
                (Val::Duration(d), _) => Ok(Val::Duration(d)),
                (Val::Str(s), _) => parse_duration(&s)
                    .map(Val::Duration)
                    .map_err(|reason| func_error(func, reason)),
                (Val::Int(i), Some(u)) => i
                    .checked_mul(u)
                    .map(Val::Duration)
                    .ok_or_else(|| func_error(func, "duration overflows")),
                (Val::Float(x), Some(u)) => {
                    let nanos = x * u as f64;
                    if nanos.is_finite() && nanos.abs() < i64::MAX as f64 {
                        Ok(Val::Duration(nanos as i64))
                    } else {
                        Err(func_error(func, "duration overflows"))
                    }
                }
                (Val::Int(_) | Val::Float(_), None) => Err(func_error(
                    func,
                    "a number needs a unit: duration(value, 1s)",
                )),
                (other, _) => Err(func_error(
                    func,
                    format!("cannot convert {} to duration", other.val_type()),
                )),
            }
        }
        Func::If => match arg(0)? {
            Val::Bool(true) => arg(1),
            Val::Bool(false) => arg(2),
            other => Err(func_error(
                func,
                format!("the condition must be a bool, got {}", other.val_type()),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use crate::tick::lambda::Val;
    use crate::tick::lambda::fixtures::eval;

    #[test]
    fn math_functions_take_floats_only() {
        let err = eval("ceil(\"count\")").unwrap_err();
        assert!(
            err.to_string().contains("ceil(): expects a float, got int"),
            "{err}"
        );
        assert_eq!(eval("floor(2.7)"), Ok(Val::Float(2.0)));
        assert_eq!(eval("round(2.5)"), Ok(Val::Float(3.0)));
        assert_eq!(eval("round(-2.5)"), Ok(Val::Float(-3.0)));
        assert_eq!(eval("trunc(-2.7)"), Ok(Val::Float(-2.0)));
        assert_eq!(eval("abs(-2.5)"), Ok(Val::Float(2.5)));
        assert_eq!(eval("min(2.0, 3.0)"), Ok(Val::Float(2.0)));
        assert_eq!(eval("max(2.0, 3.0)"), Ok(Val::Float(3.0)));
        assert_eq!(eval("pow(2.0, 10.0)"), Ok(Val::Float(1024.0)));
        assert_eq!(eval("sqrt(16.0)"), Ok(Val::Float(4.0)));
        assert_eq!(eval("log(exp(2.0))"), Ok(Val::Float(2.0)));
    }

    #[test]
    fn conversions_follow_kapacitor() {
        assert_eq!(eval("int(-2.9)"), Ok(Val::Int(-2)));
        assert_eq!(eval("int('42')"), Ok(Val::Int(42)));
        assert_eq!(eval("int(TRUE)"), Ok(Val::Int(1)));
        assert_eq!(eval("int(1s)"), Ok(Val::Int(1_000_000_000)));
        assert_eq!(eval("float(3)"), Ok(Val::Float(3.0)));
        assert_eq!(eval("bool('true')"), Ok(Val::Bool(true)));
        assert!(eval("bool(2)").is_err());
        assert_eq!(eval("string(2.5)"), Ok(Val::Str(Cow::Borrowed("2.5"))));
        assert_eq!(eval("string(100.0)"), Ok(Val::Str(Cow::Borrowed("100"))));
        assert_eq!(eval("string(90s)"), Ok(Val::Str(Cow::Borrowed("90s"))));
        assert!(eval("int(pow(10.0, 30.0))").is_err());
        assert_eq!(eval("duration(2, 1m)"), Ok(Val::Duration(120_000_000_000)));
        assert_eq!(eval("duration('10s')"), Ok(Val::Duration(10_000_000_000)));
    }

    #[test]
    fn if_picks_a_branch() {
        assert_eq!(
            eval("if(\"up\", 'yes', 'no')"),
            Ok(Val::Str(Cow::Borrowed("yes")))
        );
    }
}
