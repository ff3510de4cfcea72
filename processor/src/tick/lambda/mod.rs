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
//!
//! # Layout
//! - `compile.rs`: the expression after `lambda:` -> [`Lambda`]: variables inlined, size
//!   bounded, the result type inferred where it does not depend on the point, source rendered.
//! - `scope.rs`: [`PointScope`], what a lambda reads from a point (fields, tags, time), and the
//!   scopes layered on one ([`WithFields`]).
//! - `eval.rs`: a [`Lambda`] over a scope -> [`Val`]: references, operators, typed results.
//! - `functions.rs`: the built-in functions ([`Func`]): names, arities, evaluation.

mod compile;
mod eval;
mod functions;
mod scope;

use std::borrow::Cow;
use std::fmt;

pub use crate::point::FieldValue;

use super::ast::{BinaryOp, UnaryOp};
use super::value::Regex;

pub(crate) use compile::{VarLookup, compile_regex};
pub use functions::{FUNCTION_NAMES, Func};
pub use scope::{EmptyScope, PointScope, WithFields};

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

impl Lambda {
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
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::lambda;

    #[test]
    fn references_are_listed_once() {
        assert_eq!(lambda("\"a\" + \"b\" > \"a\"").references(), vec!["a", "b"]);
    }
}
