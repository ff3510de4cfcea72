//! Checking a node's arguments as bound: counts and types, with errors that name the node and
//! the property (`` `.unit()` of derivative2 expects a duration, got int 1 ``).

use std::time::Duration;

use super::super::lambda::{Lambda, ValType};
use super::super::value::Value;
use super::super::{Error, Result};
use super::Dimensions;

/// A bound argument and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub value: Value,
    pub offset: usize,
}

/// `.name(args)` as written, before checking.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawProperty<'a> {
    pub name: &'a str,
    pub args: Vec<Arg>,
    pub offset: usize,
}

/// Checks arguments for one node and phrases errors with the node's name.
pub(super) struct Checker<'s> {
    pub(super) source: &'s str,
    pub(super) node: &'s str,
    pub(super) offset: usize,
}

fn describe(value: &Value) -> String {
    match value {
        Value::Lambda(_) => "a lambda".to_string(),
        Value::Star => "`*`".to_string(),
        Value::List(_) => "a list".to_string(),
        other => format!("{} {other}", other.var_type()),
    }
}

impl Checker<'_> {
    pub(super) fn err(&self, offset: usize, reason: impl Into<String>) -> Error {
        Error::invalid(self.source, offset, reason.into())
    }

    pub(super) fn wrong(&self, what: &str, expected: &str, arg: &Arg) -> Error {
        self.err(
            arg.offset,
            format!(
                "{what} of {} expects {expected}, got {}",
                self.node,
                describe(&arg.value)
            ),
        )
    }

    pub(super) fn count<'a>(
        &self,
        what: &str,
        args: &'a [Arg],
        n: usize,
        offset: usize,
    ) -> Result<&'a [Arg]> {
        if args.len() == n {
            Ok(args)
        } else {
            let plural = if n == 1 { "" } else { "s" };
            Err(self.err(
                offset,
                format!(
                    "{what} of {} takes {n} argument{plural}, got {}",
                    self.node,
                    args.len()
                ),
            ))
        }
    }

    pub(super) fn string(&self, what: &str, arg: &Arg) -> Result<String> {
        match &arg.value {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.wrong(what, "a string", arg)),
        }
    }

    pub(super) fn int(&self, what: &str, arg: &Arg) -> Result<i64> {
        match &arg.value {
            Value::Int(i) => Ok(*i),
            _ => Err(self.wrong(what, "an int", arg)),
        }
    }

    /// A number: an int or a float literal, as a float.
    pub(super) fn number(&self, what: &str, arg: &Arg) -> Result<f64> {
        match &arg.value {
            Value::Float(x) => Ok(*x),
            Value::Int(i) => Ok(*i as f64),
            _ => Err(self.wrong(what, "a number", arg)),
        }
    }

    pub(super) fn duration(&self, what: &str, arg: &Arg) -> Result<Duration> {
        match &arg.value {
            Value::Duration(d) => u64::try_from(*d).map(Duration::from_nanos).map_err(|_| {
                self.err(
                    arg.offset,
                    format!("{what} of {} must not be negative", self.node),
                )
            }),
            _ => Err(self.wrong(what, "a duration", arg)),
        }
    }

    /// A lambda argument; `returns` is the type it must evaluate to, checked when it is known
    /// without a point (e.g. `.replicas(lambda: ceil(...))` is a float, never an int).
    pub(super) fn lambda(&self, what: &str, arg: &Arg, returns: Option<ValType>) -> Result<Lambda> {
        let Value::Lambda(l) = &arg.value else {
            return Err(self.wrong(what, "a lambda expression (lambda: ...)", arg));
        };
        if let (Some(expected), Some(actual)) = (returns, l.static_type())
            && expected != actual
        {
            let hint = match expected {
                ValType::Int => " (convert with int())",
                ValType::Bool => " (compare it, e.g. `> 0`)",
                _ => "",
            };
            return Err(self.err(
                arg.offset,
                format!(
                    "{what} of {} must evaluate to {expected}, but `{}` is {actual}{hint}",
                    self.node,
                    l.source()
                ),
            ));
        }
        Ok(l.clone())
    }

    /// The single argument of `.name(arg)`, with the `` `.name()` `` that errors about it name.
    fn one<'p>(&self, p: &'p RawProperty<'_>) -> Result<(String, &'p Arg)> {
        let what = format!("`.{}()`", p.name);
        let args = self.count(&what, &p.args, 1, p.offset)?;
        Ok((what, &args[0]))
    }

    pub(super) fn one_string(&self, p: &RawProperty<'_>) -> Result<String> {
        let (what, arg) = self.one(p)?;
        self.string(&what, arg)
    }

    pub(super) fn one_duration(&self, p: &RawProperty<'_>) -> Result<Duration> {
        let (what, arg) = self.one(p)?;
        self.duration(&what, arg)
    }

    pub(super) fn one_number(&self, p: &RawProperty<'_>) -> Result<f64> {
        let (what, arg) = self.one(p)?;
        self.number(&what, arg)
    }

    pub(super) fn one_int(&self, p: &RawProperty<'_>) -> Result<i64> {
        let (what, arg) = self.one(p)?;
        self.int(&what, arg)
    }

    pub(super) fn one_lambda(
        &self,
        p: &RawProperty<'_>,
        returns: Option<ValType>,
    ) -> Result<Lambda> {
        let (what, arg) = self.one(p)?;
        self.lambda(&what, arg, returns)
    }

    pub(super) fn flag(&self, p: &RawProperty<'_>) -> Result<bool> {
        self.count(&format!("`.{}()`", p.name), &p.args, 0, p.offset)?;
        Ok(true)
    }

    pub(super) fn strings(&self, what: &str, args: &[Arg]) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(args.len());
        for arg in args {
            match &arg.value {
                Value::String(s) => out.push(s.clone()),
                Value::List(items) => {
                    for item in items {
                        match item {
                            Value::String(s) => out.push(s.clone()),
                            _ => return Err(self.wrong(what, "strings", arg)),
                        }
                    }
                }
                _ => return Err(self.wrong(what, "strings", arg)),
            }
        }
        Ok(out)
    }

    pub(super) fn dimensions(&self, what: &str, args: &[Arg]) -> Result<Dimensions> {
        let mut dims = Dimensions::default();
        let mut add = |value: &Value, arg: &Arg| -> Result<()> {
            match value {
                Value::String(s) => dims.tags.push(s.clone()),
                Value::Star => dims.all = true,
                _ => return Err(self.wrong(what, "tag names (strings) or `*`", arg)),
            }
            Ok(())
        };
        for arg in args {
            match &arg.value {
                Value::List(items) => {
                    for item in items {
                        add(item, arg)?;
                    }
                }
                other => add(other, arg)?,
            }
        }
        Ok(dims)
    }

    /// For nodes without properties: the first property given is an error.
    pub(super) fn no_properties(&self, props: &[RawProperty<'_>]) -> Result<()> {
        match props.first() {
            Some(p) => Err(self.unknown(p, "")),
            None => Ok(()),
        }
    }

    pub(super) fn unknown(&self, p: &RawProperty<'_>, known: &str) -> Error {
        let known = if known.is_empty() {
            "it has none".to_string()
        } else {
            format!("known: {known}")
        };
        self.err(
            p.offset,
            format!(
                "unknown property `.{}()` for {} ({known})",
                p.name, self.node
            ),
        )
    }
}
