//! Compiling a lambda: the expression after `lambda:` becomes a tree of constants, references,
//! operators and calls. Variables are inlined (a lambda var's tree included), the tree's size
//! and depth bounded, and the result type inferred where it does not depend on the point, which
//! rejects what fails whatever the point holds, as Kapacitor does.

use std::borrow::Cow;

use super::super::ast::{BinaryOp, Expr, UnaryOp};
use super::super::value::{Regex, Value};
use super::super::{Error, Result};
use super::eval::{apply, unary};
use super::functions::{FUNCTION_NAMES, Func};
use super::{Const, Lambda, Node, Val, ValType};

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

#[cfg(test)]
mod tests {
    use crate::tick::lambda::ValType;
    use crate::tick::lambda::fixtures::{compile_err, lambda};

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
    fn source_renders_the_expression() {
        assert_eq!(
            lambda("int(ceil(\"avg\" / target))").source(),
            "int(ceil(\"avg\" / 100.0))"
        );
        assert_eq!(lambda("1 + 2 * 3").source(), "1 + (2 * 3)");
    }
}
