//! TICKscript: the task language of Kapacitor, as far as autoscaling scripts use it.
//!
//! # Layout
//! - [`lexer`]: source text -> tokens (nom), borrowing from the source.
//! - [`parser`]: tokens -> [`ast::Program`] (recursive descent, operator precedence for lambdas).
//! - [`ast`]: the syntax tree: statements, expressions, node chains, with source offsets.
//! - [`value`]: typed values (`var` types), task-level `vars` overrides, durations.
//! - [`bind`]: resolves `var`s (with overrides), builds and validates the [`Pipeline`]
//!   ([`compiled`]: the result, its nodes and the queries on it).
//! - [`nodes`]: the supported pipeline nodes, their properties (checked, typed) and defaults.
//! - [`lambda`]: compiled lambda expressions and their evaluator over a [`lambda::PointScope`].
//! - [`dot`]: the DOT graph shown by `kapacitor show`.
//!
//! Entry point: [`compile`] (script + vars overrides -> validated [`Pipeline`]). Every error
//! carries the line and column of the offending text and a short excerpt of that line.
//! Lambdas evaluate on any [`PointScope`], including the write API's `point::PointRef`;
//! [`Pipeline::subscription_keys`] gives the `routing::Key`s a task reads;
//! [`Pipeline::dot`] / [`Pipeline::dot_with_stats`] render `kapacitor show`'s graph.

pub mod ast;
pub mod bind;
pub mod compiled;
pub mod dot;
pub mod lambda;
pub mod lexer;
pub mod nodes;
pub mod parser;
pub mod value;

use std::fmt;

/// The largest TICKscript or vars file read, in bytes: the task API takes bodies of 16 MiB.
pub const MAX_SCRIPT_FILE: u64 = 16 << 20;

pub use compiled::{Dbrp, Node, Pipeline};
pub use dot::{DotStats, NoStats};
pub use lambda::{EvalError, FieldValue, Lambda, PointScope, Val, ValType, WithFields};
pub use nodes::{NodeKind, NodeSpec};
pub use value::{TaskVar, Value, VarOverrides, VarType};

/// Where in the script something is: 1-based line and column (in characters), and the line's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Line number, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub column: u32,
    /// The text of that line (trimmed, at most 60 characters around the column).
    pub excerpt: String,
}

impl Location {
    /// The location of byte `offset` in `source` (clamped to the source's length).
    pub fn at(source: &str, offset: usize) -> Location {
        let mut offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[offset..]
            .find('\n')
            .map_or(source.len(), |i| offset + i);
        let line = before.matches('\n').count() + 1;
        let column = source[line_start..offset].chars().count() + 1;
        let text = &source[line_start..line_end];
        Location {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            excerpt: excerpt(text, column),
        }
    }
}

fn excerpt(line: &str, column: usize) -> String {
    const WIDTH: usize = 60;
    let chars: Vec<char> = line.trim_end().chars().collect();
    let start = column.saturating_sub(WIDTH / 2).min(chars.len());
    let end = (start + WIDTH).min(chars.len());
    let text: String = chars.get(start..end).unwrap_or_default().iter().collect();
    text.trim().to_string()
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}:{}", self.line, self.column)
    }
}

/// Why a script (or a vars override) was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The text is not TICKscript: bad token, unexpected token, unterminated literal.
    #[error("{location}: {reason} (in `{}`)", location.excerpt)]
    Syntax { location: Location, reason: String },
    /// Valid syntax using something this processor does not run (batch, udf, alert, ...).
    #[error("{location}: {reason} (in `{}`)", location.excerpt)]
    Unsupported { location: Location, reason: String },
    /// Well-formed but wrong: unknown variable or property, wrong argument type, invalid value.
    #[error("{location}: {reason} (in `{}`)", location.excerpt)]
    Invalid { location: Location, reason: String },
    /// A task-level `vars` override that cannot be applied.
    #[error("vars override `{name}`: {reason}")]
    Var { name: String, reason: String },
    /// The script has no pipeline at all.
    #[error("the script defines no pipeline: expected a chain starting at `stream`")]
    Empty,
}

impl Error {
    /// The location of the error in the script, when it has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Syntax { location, .. }
            | Error::Unsupported { location, .. }
            | Error::Invalid { location, .. } => Some(location),
            Error::Var { .. } | Error::Empty => None,
        }
    }

    pub(crate) fn syntax(source: &str, offset: usize, reason: impl Into<String>) -> Error {
        Error::Syntax {
            location: Location::at(source, offset),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(source: &str, offset: usize, reason: impl Into<String>) -> Error {
        Error::Unsupported {
            location: Location::at(source, offset),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(source: &str, offset: usize, reason: impl Into<String>) -> Error {
        Error::Invalid {
            location: Location::at(source, offset),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses, binds and validates `script` with the task's `vars` overrides applied.
pub fn compile(script: &str, vars: &VarOverrides) -> Result<Pipeline> {
    let program = parser::parse(script)?;
    bind::bind(script, &program, vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_characters_from_one() {
        let src = "var a = 1\nvar µb = 'x'\n";
        let loc = Location::at(src, src.find("= 'x'").unwrap());
        assert_eq!((loc.line, loc.column), (2, 8));
        assert_eq!(loc.excerpt, "var µb = 'x'");
    }

    #[test]
    fn location_past_the_end_is_clamped() {
        let loc = Location::at("ab", 99);
        assert_eq!((loc.line, loc.column), (1, 3));
    }
}
