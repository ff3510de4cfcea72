//! Compiled lambda expressions and their evaluation against one point.
//!
//! Typing follows Kapacitor's stateful expressions: arithmetic needs both operands of the same
//! numeric type (`int + float` is an error; convert with `float()` or `int()`), while ordering
//! and equality comparisons between int and float are allowed (Kapacitor compares them as
//! floats). Math functions (`ceil`, `floor`, `abs`, `pow`, ...) take floats only. `int()` of a
//! float truncates toward zero. Durations support `+ -` with durations, `* /` with ints and
//! floats, and `duration / duration` gives an int. Variables are resolved when the script is
//! bound; `"name"` references are looked up per evaluation (fields first; a name that is both a
//! field and a tag is an error; `"time"` is the point's time). Evaluation never allocates unless
//! it builds a new string (`+` on strings, `string()`).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

pub use crate::point::FieldValue;
use crate::point::PointRef;

use super::ast::{BinaryOp, Expr, UnaryOp};
use super::value::{Regex, Value, format_tick_duration, parse_duration};
use super::{Error, Result};

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

/// The result of evaluating an expression. Strings borrow from the lambda or the point.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'s> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'s, str>),
    /// Nanoseconds.
    Duration(i64),
    /// Nanoseconds since the Unix epoch.
    Time(i64),
    Regex(&'s Regex),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValType {
    Bool,
    Int,
    Float,
    String,
    Duration,
    Time,
    Regex,
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::Bool => "bool",
            ValType::Int => "int",
            ValType::Float => "float",
            ValType::String => "string",
            ValType::Duration => "duration",
            ValType::Time => "time",
            ValType::Regex => "regex",
        })
    }
}

impl Val<'_> {
    pub fn val_type(&self) -> ValType {
        match self {
            Val::Bool(_) => ValType::Bool,
            Val::Int(_) => ValType::Int,
            Val::Float(_) => ValType::Float,
            Val::Str(_) => ValType::String,
            Val::Duration(_) => ValType::Duration,
            Val::Time(_) => ValType::Time,
            Val::Regex(_) => ValType::Regex,
        }
    }
}

/// Why evaluating a lambda against a point failed (counted as a node error by the pipeline).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("no field or tag exists for \"{0}\"")]
    Missing(String),
    #[error("\"{0}\" is both a field and a tag")]
    Ambiguous(String),
    #[error(
        "mismatched types for `{op}`: {left} and {right} (convert with int(), float(), string(), bool() or duration())"
    )]
    Mismatched {
        op: &'static str,
        left: ValType,
        right: ValType,
    },
    #[error("operator `{op}` cannot be applied to {operand}")]
    InvalidOperand { op: &'static str, operand: ValType },
    #[error("integer division by zero in `{op}`")]
    DivisionByZero { op: &'static str },
    #[error("integer overflow in `{op}`")]
    Overflow { op: &'static str },
    #[error("{function}(): {reason}")]
    Function {
        function: &'static str,
        reason: String,
    },
    #[error("expected the expression to return {expected}, got {got}")]
    WrongType { expected: ValType, got: ValType },
}

type EvalResult<T> = std::result::Result<T, EvalError>;

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
    fn lookup(name: &str) -> Option<Func> {
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
    fn arity(self) -> (usize, usize) {
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

#[derive(Debug, Clone, PartialEq)]
enum Const {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Box<str>),
    Duration(i64),
    Regex(Regex),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Const(Const),
    Reference(Box<str>),
    Time,
    IsPresent(Box<str>),
    Unary(UnaryOp, Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

/// A compiled `lambda:` expression. Cheap to evaluate, immutable, shareable across groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Lambda {
    root: Node,
    source: String,
    /// The result type when it does not depend on the point's values.
    static_type: Option<ValType>,
}

/// Limits on a compiled expression (after inlining lambda vars), so evaluation stays shallow.
const MAX_NODES: usize = 10_000;
const MAX_DEPTH: usize = 256;

fn size_and_depth(node: &Node) -> (usize, usize) {
    match node {
        Node::Const(_) | Node::Reference(_) | Node::Time | Node::IsPresent(_) => (1, 1),
        Node::Unary(_, n) => {
            let (s, d) = size_and_depth(n);
            (s + 1, d + 1)
        }
        Node::Binary(_, a, b) => {
            let (sa, da) = size_and_depth(a);
            let (sb, db) = size_and_depth(b);
            (sa + sb + 1, da.max(db) + 1)
        }
        Node::Call(_, args) => args.iter().fold((1, 1), |(s, d), a| {
            let (sa, da) = size_and_depth(a);
            (s + sa, d.max(da + 1))
        }),
    }
}

/// Infers the result type where it does not depend on the point, and rejects operations that
/// fail whatever the point holds (`1 + 2.0`, `ceil(1)`, `-'a'`), as Kapacitor does when
/// compiling expressions whose operand types are known.
fn infer(node: &Node) -> std::result::Result<Option<ValType>, String> {
    fn sample(t: ValType) -> Option<Val<'static>> {
        Some(match t {
            ValType::Bool => Val::Bool(true),
            ValType::Int => Val::Int(1),
            ValType::Float => Val::Float(1.0),
            ValType::String => Val::Str(Cow::Borrowed("")),
            ValType::Duration => Val::Duration(1),
            ValType::Time => Val::Time(1),
            ValType::Regex => return None,
        })
    }
    Ok(match node {
        Node::Const(c) => Some(match c {
            Const::Bool(_) => ValType::Bool,
            Const::Int(_) => ValType::Int,
            Const::Float(_) => ValType::Float,
            Const::Str(_) => ValType::String,
            Const::Duration(_) => ValType::Duration,
            Const::Regex(_) => ValType::Regex,
        }),
        Node::Reference(_) => None,
        Node::Time => Some(ValType::Time),
        Node::IsPresent(_) => Some(ValType::Bool),
        Node::Unary(op, operand) => match (op, infer(operand)?) {
            (_, None) if *op == UnaryOp::Not => Some(ValType::Bool),
            (_, None) => None,
            (op, Some(t)) => match sample(t) {
                Some(v) => Some(unary(*op, v).map_err(|e| e.to_string())?.val_type()),
                None => {
                    return Err(format!(
                        "operator `{}` cannot be applied to regex",
                        if *op == UnaryOp::Neg { "-" } else { "!" }
                    ));
                }
            },
        },
        Node::Binary(op, lhs, rhs) => {
            let (l, r) = (infer(lhs)?, infer(rhs)?);
            let sym = op.symbol();
            match op {
                BinaryOp::And | BinaryOp::Or => {
                    for t in [l, r].into_iter().flatten() {
                        if t != ValType::Bool {
                            return Err(format!("operator `{sym}` cannot be applied to {t}"));
                        }
                    }
                    Some(ValType::Bool)
                }
                BinaryOp::RegexMatch | BinaryOp::RegexNotMatch => {
                    let left_ok = l.is_none_or(|t| t == ValType::String);
                    let right_ok = r.is_none_or(|t| t == ValType::Regex);
                    if !(left_ok && right_ok) {
                        return Err(format!(
                            "`{sym}` needs a string on the left and a regex on the right, got {} and {}",
                            l.map_or("a field".to_string(), |t| t.to_string()),
                            r.map_or("a field".to_string(), |t| t.to_string())
                        ));
                    }
                    Some(ValType::Bool)
                }
                _ => {
                    let comparison = matches!(
                        op,
                        BinaryOp::Eq
                            | BinaryOp::NotEq
                            | BinaryOp::Lt
                            | BinaryOp::Le
                            | BinaryOp::Gt
                            | BinaryOp::Ge
                    );
                    match (l, r) {
                        (Some(ValType::Regex), _) | (_, Some(ValType::Regex)) => {
                            return Err(format!("operator `{sym}` cannot be applied to regex"));
                        }
                        (Some(a), Some(b)) => match (sample(a), sample(b)) {
                            (Some(x), Some(y)) => {
                                Some(apply(*op, x, y).map_err(|e| e.to_string())?.val_type())
                            }
                            _ => None,
                        },
                        _ if comparison => Some(ValType::Bool),
                        _ => None,
                    }
                }
            }
        }
        Node::Call(func, args) => {
            let types = args
                .iter()
                .map(infer)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            match func {
                Func::Abs
                | Func::Ceil
                | Func::Floor
                | Func::Round
                | Func::Trunc
                | Func::Sqrt
                | Func::Log
                | Func::Exp
                | Func::Min
                | Func::Max
                | Func::Pow => {
                    if let Some(t) = types.iter().flatten().find(|t| **t != ValType::Float) {
                        return Err(format!(
                            "{}() expects a float, got {t} (convert with float())",
                            func.name()
                        ));
                    }
                    Some(ValType::Float)
                }
                Func::Int => Some(ValType::Int),
                Func::Float => Some(ValType::Float),
                Func::String => Some(ValType::String),
                Func::Bool => Some(ValType::Bool),
                Func::Duration => Some(ValType::Duration),
                Func::If => {
                    if let Some(Some(t)) = types.first()
                        && *t != ValType::Bool
                    {
                        return Err(format!("if() needs a bool condition, got {t}"));
                    }
                    match (
                        types.get(1).copied().flatten(),
                        types.get(2).copied().flatten(),
                    ) {
                        (Some(a), Some(b)) if a == b => Some(a),
                        _ => None,
                    }
                }
            }
        }
    })
}

/// Looks variables up while compiling.
pub(crate) trait VarLookup {
    fn var(&self, name: &str) -> Option<&Value>;
}

impl Lambda {
    /// Compiles an expression (the body after `lambda:`), resolving variables through `vars`.
    pub(crate) fn compile(source: &str, body: &Expr<'_>, vars: &dyn VarLookup) -> Result<Lambda> {
        let root = compile_node(source, body, vars)?;
        // Lambda vars are inlined, so `var b = lambda: a + a` doubles the tree: bound it.
        let (size, depth) = size_and_depth(&root);
        if size > MAX_NODES || depth > MAX_DEPTH {
            return Err(Error::invalid(
                source,
                body.offset(),
                format!(
                    "expression too large: {size} terms nested {depth} deep (limits {MAX_NODES} and {MAX_DEPTH})"
                ),
            ));
        }
        let static_type = infer(&root).map_err(|reason| {
            Error::invalid(
                source,
                body.offset(),
                format!("type error in expression: {reason}"),
            )
        })?;
        let source = render(&root);
        Ok(Lambda {
            root,
            source,
            static_type,
        })
    }

    /// The type the expression always evaluates to, when known without a point (`int(...)`
    /// is an int, a comparison a bool); `None` when it depends on field types (`"x" + 1`).
    pub fn static_type(&self) -> Option<ValType> {
        self.static_type
    }

    /// The expression in TICKscript syntax (after `lambda: `).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the expression reads fields, tags or the time of the point.
    pub fn reads_point(&self) -> bool {
        fn reads(node: &Node) -> bool {
            match node {
                Node::Const(_) => false,
                Node::Reference(_) | Node::Time | Node::IsPresent(_) => true,
                Node::Unary(_, n) => reads(n),
                Node::Binary(_, a, b) => reads(a) || reads(b),
                Node::Call(_, args) => args.iter().any(reads),
            }
        }
        reads(&self.root)
    }

    /// The field and tag names the expression reads, in order of appearance.
    pub fn references(&self) -> Vec<&str> {
        fn collect<'n>(node: &'n Node, out: &mut Vec<&'n str>) {
            match node {
                Node::Reference(name) | Node::IsPresent(name) => {
                    if !out.contains(&&**name) {
                        out.push(name);
                    }
                }
                Node::Const(_) | Node::Time => {}
                Node::Unary(_, n) => collect(n, out),
                Node::Binary(_, a, b) => {
                    collect(a, out);
                    collect(b, out);
                }
                Node::Call(_, args) => args.iter().for_each(|a| collect(a, out)),
            }
        }
        let mut out = Vec::new();
        collect(&self.root, &mut out);
        out
    }

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

fn compile_node(source: &str, expr: &Expr<'_>, vars: &dyn VarLookup) -> Result<Node> {
    Ok(match expr {
        Expr::Int(i, _) => Node::Const(Const::Int(*i)),
        Expr::Float(x, _) => Node::Const(Const::Float(*x)),
        Expr::Duration(d, _) => Node::Const(Const::Duration(*d)),
        Expr::Bool(b, _) => Node::Const(Const::Bool(*b)),
        Expr::Str(s, _) => Node::Const(Const::Str(s.as_ref().into())),
        Expr::Regex(pattern, offset) => {
            Node::Const(Const::Regex(compile_regex(source, pattern, *offset)?))
        }
        Expr::Reference(name, _) if name == "time" => Node::Time,
        Expr::Reference(name, _) => Node::Reference(name.as_ref().into()),
        Expr::Ident(name, offset) => match vars.var(name) {
            Some(value) => value_node(source, name, value, *offset)?,
            None => {
                let hint = if matches!(*name, "true" | "false") {
                    "booleans are written TRUE and FALSE".to_string()
                } else {
                    format!("a field or tag is written in double quotes: \"{name}\"")
                };
                return Err(Error::invalid(
                    source,
                    *offset,
                    format!("undefined variable `{name}` ({hint})"),
                ));
            }
        },
        Expr::Unary { op, operand, .. } => {
            Node::Unary(*op, Box::new(compile_node(source, operand, vars)?))
        }
        Expr::Binary { op, lhs, rhs, .. } => Node::Binary(
            *op,
            Box::new(compile_node(source, lhs, vars)?),
            Box::new(compile_node(source, rhs, vars)?),
        ),
        Expr::Call { name, args, offset } => compile_call(source, name, args, *offset, vars)?,
        Expr::Lambda { offset, .. } => {
            return Err(Error::invalid(
                source,
                *offset,
                "a lambda cannot contain another `lambda:`",
            ));
        }
        Expr::Star(offset) | Expr::List(_, offset) => {
            return Err(Error::invalid(
                source,
                *offset,
                "`*` and lists cannot be used inside an expression",
            ));
        }
        Expr::Chain { head_offset, .. } => {
            return Err(Error::invalid(
                source,
                *head_offset,
                "a node chain cannot be used inside an expression",
            ));
        }
    })
}

pub(crate) fn compile_regex(source: &str, pattern: &str, offset: usize) -> Result<Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map(Regex)
        .map_err(|e| Error::invalid(source, offset, format!("invalid regex /{pattern}/: {e}")))
}

fn value_node(source: &str, name: &str, value: &Value, offset: usize) -> Result<Node> {
    Ok(Node::Const(match value {
        Value::Bool(b) => Const::Bool(*b),
        Value::Int(i) => Const::Int(*i),
        Value::Float(x) => Const::Float(*x),
        Value::String(s) => Const::Str(s.as_str().into()),
        Value::Duration(d) => Const::Duration(*d),
        Value::Regex(r) => Const::Regex(r.clone()),
        Value::Lambda(l) => return Ok(l.root.clone()),
        Value::Star | Value::List(_) => {
            return Err(Error::invalid(
                source,
                offset,
                format!(
                    "variable `{name}` is a {}, which cannot be used inside an expression",
                    value.var_type()
                ),
            ));
        }
    }))
}

fn compile_call(
    source: &str,
    name: &str,
    args: &[Expr<'_>],
    offset: usize,
    vars: &dyn VarLookup,
) -> Result<Node> {
    if name == "isPresent" {
        return match args {
            [Expr::Reference(field, _)] => Ok(Node::IsPresent(field.as_ref().into())),
            _ => Err(Error::invalid(
                source,
                offset,
                "isPresent() takes exactly one field or tag reference, e.g. isPresent(\"value\")",
            )),
        };
    }
    let Some(func) = Func::lookup(name) else {
        return Err(Error::invalid(
            source,
            offset,
            format!("unknown function `{name}` (lambdas may call {FUNCTION_NAMES})"),
        ));
    };
    let (min, max) = func.arity();
    if args.len() < min || args.len() > max {
        let expected = if min == max {
            format!("{min}")
        } else {
            format!("{min} or {max}")
        };
        return Err(Error::invalid(
            source,
            offset,
            format!(
                "{name}() takes {expected} argument{}, got {}",
                if max == 1 { "" } else { "s" },
                args.len()
            ),
        ));
    }
    let args = args
        .iter()
        .map(|a| compile_node(source, a, vars))
        .collect::<Result<Vec<_>>>()?;
    Ok(Node::Call(func, args))
}

fn render(node: &Node) -> String {
    fn go(node: &Node, out: &mut String, top: bool) {
        match node {
            Node::Const(c) => {
                let v = match c {
                    Const::Bool(b) => Value::Bool(*b),
                    Const::Int(i) => Value::Int(*i),
                    Const::Float(x) => Value::Float(*x),
                    Const::Str(s) => Value::String(s.to_string()),
                    Const::Duration(d) => Value::Duration(*d),
                    Const::Regex(r) => Value::Regex(r.clone()),
                };
                out.push_str(&v.to_string());
            }
            Node::Reference(name) => {
                out.push('"');
                out.push_str(&name.replace('"', "\\\""));
                out.push('"');
            }
            Node::Time => out.push_str("\"time\""),
            Node::IsPresent(name) => {
                out.push_str("isPresent(\"");
                out.push_str(&name.replace('"', "\\\""));
                out.push_str("\")");
            }
            Node::Unary(op, n) => {
                out.push(if *op == UnaryOp::Neg { '-' } else { '!' });
                go(n, out, false);
            }
            Node::Binary(op, a, b) => {
                if !top {
                    out.push('(');
                }
                go(a, out, false);
                out.push(' ');
                out.push_str(op.symbol());
                out.push(' ');
                go(b, out, false);
                if !top {
                    out.push(')');
                }
            }
            Node::Call(func, args) => {
                out.push_str(func.name());
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    go(a, out, true);
                }
                out.push(')');
            }
        }
    }
    let mut out = String::new();
    go(node, &mut out, true);
    out
}

fn eval<'s, S: PointScope + ?Sized>(node: &'s Node, scope: &'s S) -> EvalResult<Val<'s>> {
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

fn unary(op: UnaryOp, v: Val<'_>) -> EvalResult<Val<'_>> {
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
pub(crate) fn apply<'s>(op: BinaryOp, left: Val<'s>, right: Val<'s>) -> EvalResult<Val<'s>> {
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

fn call<'s, S: PointScope + ?Sized>(
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
    use super::*;
    use crate::tick::parser::parse_lambda_body;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, Value>);

    impl VarLookup for Vars {
        fn var(&self, name: &str) -> Option<&Value> {
            self.0.get(name)
        }
    }

    #[derive(Default)]
    struct Point {
        fields: Vec<(&'static str, FieldValue<'static>)>,
        tags: Vec<(&'static str, &'static str)>,
        time: i64,
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

    fn lambda(src: &str) -> Lambda {
        let vars = Vars(HashMap::from([
            ("target", Value::Float(100.0)),
            ("n", Value::Int(3)),
            ("cooldown", Value::Duration(60_000_000_000)),
        ]));
        let body = parse_lambda_body(src).unwrap();
        Lambda::compile(src, &body, &vars).unwrap()
    }

    fn compile_err(src: &str) -> String {
        let body = parse_lambda_body(src).unwrap();
        Lambda::compile(src, &body, &Vars(HashMap::new()))
            .unwrap_err()
            .to_string()
    }

    fn point() -> Point {
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

    fn eval(src: &str) -> EvalResult<Val<'static>> {
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

    #[test]
    fn if_picks_a_branch() {
        assert_eq!(
            eval("if(\"up\", 'yes', 'no')"),
            Ok(Val::Str(Cow::Borrowed("yes")))
        );
    }

    #[test]
    fn compile_errors_name_the_problem() {
        assert!(compile_err("foo(1)").contains("unknown function `foo`"));
        assert!(compile_err("ceil(1.0, 2.0)").contains("ceil() takes 1 argument, got 2"));
        assert!(compile_err("x > 1").contains("undefined variable `x`"));
        assert!(compile_err("\"a\" == true").contains("TRUE and FALSE"));
        assert!(compile_err("\"a\" =~ /(/").contains("invalid regex"));
        assert!(compile_err("isPresent('a')").contains("isPresent()"));
    }

    #[test]
    fn doubling_lambda_vars_hit_the_size_limit_instead_of_exhausting_memory() {
        let mut script = String::from("var l0 = lambda: \"x\"\n");
        for i in 1..64 {
            script.push_str(&format!("var l{i} = lambda: l{} + l{}\n", i - 1, i - 1));
        }
        script.push_str("stream|from().where(lambda: l63 > 1)");
        let err = crate::tick::compile(&script, &Default::default()).unwrap_err();
        assert!(err.to_string().contains("expression too large"), "{err}");
    }

    #[test]
    fn types_known_without_a_point_are_checked_when_compiling() {
        assert!(compile_err("1 + 2.0").contains("mismatched types for `+`: int and float"));
        assert!(compile_err("ceil(1)").contains("ceil() expects a float, got int"));
        assert!(compile_err("-'a'").contains("cannot be applied to string"));
        assert!(compile_err("'a' =~ 'b'").contains("needs a string on the left and a regex"));
        assert!(compile_err("if(1, 2, 3)").contains("bool condition"));
        assert_eq!(
            lambda("int(ceil(\"avg\" / target))").static_type(),
            Some(ValType::Int)
        );
        assert_eq!(
            lambda("ceil(\"avg\" / target)").static_type(),
            Some(ValType::Float)
        );
        assert_eq!(
            lambda("\"avg\" > 1 AND \"host\" =~ /w/").static_type(),
            Some(ValType::Bool)
        );
        assert_eq!(lambda("\"avg\" * 2.0").static_type(), None);
        assert_eq!(lambda("cooldown / 30s").static_type(), Some(ValType::Int));
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

    #[test]
    fn source_renders_the_expression() {
        assert_eq!(
            lambda("int(ceil(\"avg\" / target))").source(),
            "int(ceil(\"avg\" / 100.0))"
        );
        assert_eq!(lambda("1 + 2 * 3").source(), "1 + (2 * 3)");
    }

    #[test]
    fn references_are_listed_once() {
        assert_eq!(lambda("\"a\" + \"b\" > \"a\"").references(), vec!["a", "b"]);
    }
}
