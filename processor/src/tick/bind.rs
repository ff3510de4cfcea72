//! Binding: runs the statements in order, resolving `var`s (task vars override them), creating
//! nodes for chains, then validates every node into a [`Pipeline`].

use std::collections::{BTreeSet, HashMap};

use super::Location;
use super::ast::{Expr, LinkKind, Program, Statement};
use super::compiled::{Dbrp, Node, Pipeline};
use super::lambda::{EmptyScope, Lambda, Val, VarLookup, compile_regex};
use super::nodes::{self, Arg, NodeKind, RawProperty, SUPPORTED_NODES};
use super::parser::parse_lambda_body;
use super::value::{TaskVar, Value, VarOverrides, VarType, parse_duration};
use super::{Error, Result};

#[derive(Debug, Clone)]
enum Binding {
    Value(Value),
    Node(usize),
}

struct RawNode<'a> {
    kind: NodeKind,
    /// Nodes between this one and `stream0` (`stream0`: 0).
    depth: usize,
    offset: usize,
    ctor: Vec<Arg>,
    props: Vec<RawProperty<'a>>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Env<'a>(HashMap<&'a str, Binding>);

impl VarLookup for Env<'_> {
    fn var(&self, name: &str) -> Option<&Value> {
        match self.0.get(name) {
            Some(Binding::Value(v)) => Some(v),
            _ => None,
        }
    }
}

struct Binder<'a, 'v> {
    source: &'a str,
    overrides: &'v VarOverrides,
    used: BTreeSet<&'v str>,
    env: Env<'a>,
    nodes: Vec<RawNode<'a>>,
    stream_seen: bool,
    dbrps: Vec<Dbrp>,
    /// Value vars in declaration order; a redeclared var leaves a `None` where it was.
    vars: Vec<Option<(String, Value)>>,
    /// Where each var stands in `vars`.
    var_slots: HashMap<&'a str, usize>,
}

/// Nodes a chain may have between `stream` and its last node. A point travels a chain by
/// recursion, so the limit bounds the stack a point needs (a 20,000-node chain overflowed it);
/// real tasks use a handful.
pub const MAX_CHAIN_DEPTH: usize = 256;

/// Nodes a task may have in all: each is built, run and reported per point.
pub const MAX_NODES: usize = 4096;

/// Binds a parsed script: see the module docs.
pub fn bind(source: &str, program: &Program<'_>, overrides: &VarOverrides) -> Result<Pipeline> {
    let mut b = Binder {
        source,
        overrides,
        used: BTreeSet::new(),
        env: Env(HashMap::new()),
        nodes: vec![RawNode {
            kind: NodeKind::Stream,
            depth: 0,
            offset: 0,
            ctor: Vec::new(),
            props: Vec::new(),
            parent: None,
            children: Vec::new(),
        }],
        stream_seen: false,
        dbrps: Vec::new(),
        vars: Vec::new(),
        var_slots: HashMap::new(),
    };
    for statement in &program.statements {
        b.statement(statement)?;
    }
    if let Some(name) = overrides.keys().find(|k| !b.used.contains(k.as_str())) {
        return Err(Error::Var {
            name: name.clone(),
            reason: "the script declares no such var".to_string(),
        });
    }
    if b.nodes.len() < 2 {
        return Err(Error::Empty);
    }
    let mut nodes = Vec::with_capacity(b.nodes.len());
    for (id, raw) in b.nodes.iter().enumerate() {
        let name = format!("{}{id}", raw.kind.desc());
        let spec = nodes::build(source, raw.kind, &name, raw.offset, &raw.ctor, &raw.props)?;
        nodes.push(Node {
            id,
            name,
            spec,
            parent: raw.parent,
            children: raw.children.clone(),
            location: Location::at(source, raw.offset),
        });
    }
    Ok(Pipeline {
        dbrps: b.dbrps,
        nodes,
        vars: b.vars.into_iter().flatten().collect(),
    })
}

impl<'a, 'v> Binder<'a, 'v> {
    fn statement(&mut self, statement: &Statement<'a>) -> Result<()> {
        match statement {
            Statement::Var {
                name,
                value,
                offset,
            } => self.declare(name, value, *offset),
            Statement::TypeDecl {
                name,
                type_name,
                offset,
                type_offset,
            } => {
                self.check_name(name, *offset)?;
                let Some(var_type) = VarType::from_name(type_name) else {
                    return Err(Error::invalid(
                        self.source,
                        *type_offset,
                        format!(
                            "unknown type `{type_name}` (bool, int, float, string, duration, regex, lambda, star, list)"
                        ),
                    ));
                };
                let Some((key, given)) = self.overrides.get_key_value(*name) else {
                    return Err(Error::invalid(
                        self.source,
                        *offset,
                        format!(
                            "var `{name}` declares type {var_type} but has no value: give it one (`var {name} = ...`) or set it in the task vars"
                        ),
                    ));
                };
                self.used.insert(key.as_str());
                let value = self.override_value(name, var_type, given)?;
                self.set_value(name, value);
                Ok(())
            }
            Statement::Dbrp {
                database,
                retention_policy,
                ..
            } => {
                self.dbrps.push(Dbrp {
                    database: database.to_string(),
                    retention_policy: retention_policy.to_string(),
                });
                Ok(())
            }
            Statement::Expr(Expr::Chain {
                head,
                head_offset,
                links,
            }) => {
                self.chain(head, *head_offset, links)?;
                Ok(())
            }
            Statement::Expr(other) => Err(Error::invalid(
                self.source,
                other.offset(),
                "this statement does nothing: a statement is a `var` declaration, a `dbrp` statement or a chain starting at `stream`",
            )),
        }
    }

    fn check_name(&self, name: &str, offset: usize) -> Result<()> {
        if matches!(name, "stream" | "batch") {
            return Err(Error::invalid(
                self.source,
                offset,
                format!("`{name}` is reserved and cannot be a variable name"),
            ));
        }
        Ok(())
    }

    /// Sets a value var; a redeclared one moves to the end of the declaration order.
    fn set_value(&mut self, name: &'a str, value: Value) {
        if let Some(slot) = self.var_slots.insert(name, self.vars.len())
            && let Some(old) = self.vars.get_mut(slot)
        {
            *old = None;
        }
        self.vars.push(Some((name.to_string(), value.clone())));
        self.env.0.insert(name, Binding::Value(value));
    }

    fn declare(&mut self, name: &'a str, expr: &Expr<'a>, offset: usize) -> Result<()> {
        self.check_name(name, offset)?;
        let binding = self.eval(expr)?;
        let override_entry = self.overrides.get_key_value(name);
        match binding {
            Binding::Node(id) => {
                if let Some((key, _)) = override_entry {
                    return Err(Error::Var {
                        name: key.clone(),
                        reason: "the script's var holds a node chain, which cannot be overridden"
                            .to_string(),
                    });
                }
                self.env.0.insert(name, Binding::Node(id));
            }
            Binding::Value(value) => {
                let value = match override_entry {
                    Some((key, given)) => {
                        self.used.insert(key.as_str());
                        self.override_value(name, value.var_type(), given)?
                    }
                    None => value,
                };
                self.set_value(name, value);
            }
        }
        Ok(())
    }

    /// Converts a task var to the type the script declares.
    fn override_value(&self, name: &str, expected: VarType, given: &TaskVar) -> Result<Value> {
        let fail = |reason: String| Error::Var {
            name: name.to_string(),
            reason,
        };
        if given.kind != expected {
            return Err(fail(format!(
                "has type {} but the script declares it as {expected}",
                given.kind
            )));
        }
        self.task_var_value(given).map_err(fail)
    }

    fn task_var_value(&self, given: &TaskVar) -> std::result::Result<Value, String> {
        let v = &given.value;
        let bad = |what: &str| format!("the value {v} is not {what}");
        Ok(match given.kind {
            VarType::Bool => Value::Bool(v.as_bool().ok_or_else(|| bad("a bool"))?),
            VarType::Int => Value::Int(v.as_i64().ok_or_else(|| bad("an integer"))?),
            VarType::Float => Value::Float(v.as_f64().ok_or_else(|| bad("a number"))?),
            VarType::String => {
                Value::String(v.as_str().ok_or_else(|| bad("a string"))?.to_string())
            }
            VarType::Duration => Value::Duration(match (v.as_str(), v.as_i64()) {
                (Some(text), _) => parse_duration(text)?,
                (None, Some(nanos)) => nanos,
                _ => return Err(bad("a duration (\"10s\" or integer nanoseconds)")),
            }),
            VarType::Regex => {
                let pattern = v.as_str().ok_or_else(|| bad("a regex pattern string"))?;
                Value::Regex(compile_regex(pattern, pattern, 0).map_err(|e| e.to_string())?)
            }
            VarType::Lambda => {
                let text = v
                    .as_str()
                    .ok_or_else(|| bad("a lambda expression string"))?;
                let text = text.trim_start();
                let text = text.strip_prefix("lambda:").unwrap_or(text);
                let body = parse_lambda_body(text).map_err(|e| e.to_string())?;
                Value::Lambda(Lambda::compile(text, &body, &self.env).map_err(|e| e.to_string())?)
            }
            VarType::Star => Value::Star,
            VarType::List => {
                let items = v.as_array().ok_or_else(|| bad("a list"))?;
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let value = match item {
                        serde_json::Value::String(s) => Value::String(s.clone()),
                        other => {
                            let var: TaskVar = serde_json::from_value(other.clone())
                                .map_err(|e| format!("list item {other}: {e}"))?;
                            self.task_var_value(&var)?
                        }
                    };
                    if !matches!(value, Value::String(_) | Value::Star) {
                        return Err(format!(
                            "list items must be strings or star, got {}",
                            value.var_type()
                        ));
                    }
                    out.push(value);
                }
                Value::List(out)
            }
        })
    }

    fn eval(&mut self, expr: &Expr<'a>) -> Result<Binding> {
        let value = match expr {
            Expr::Chain {
                head,
                head_offset,
                links,
            } => return self.chain(head, *head_offset, links).map(Binding::Node),
            Expr::Ident(name, offset) => return self.lookup(name, *offset),
            Expr::Lambda { body, .. } => {
                Value::Lambda(Lambda::compile(self.source, body, &self.env)?)
            }
            Expr::Star(_) => Value::Star,
            Expr::Regex(pattern, offset) => {
                Value::Regex(compile_regex(self.source, pattern, *offset)?)
            }
            Expr::Str(s, _) => Value::String(s.to_string()),
            Expr::Reference(name, offset) => {
                return Err(Error::invalid(
                    self.source,
                    *offset,
                    format!(
                        "\"{name}\" is a field or tag reference, only allowed inside `lambda:` expressions (a string is written in single quotes: '{name}')"
                    ),
                ));
            }
            Expr::List(items, _) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match self.eval(item)? {
                        Binding::Value(v @ (Value::String(_) | Value::Star)) => out.push(v),
                        _ => {
                            return Err(Error::invalid(
                                self.source,
                                item.offset(),
                                "list items must be strings or `*`",
                            ));
                        }
                    }
                }
                Value::List(out)
            }
            other => self.constant(other)?,
        };
        Ok(Binding::Value(value))
    }

    /// Evaluates a constant expression (`5`, `-1m`, `2 * 30`, `float(5)`).
    fn constant(&self, expr: &Expr<'a>) -> Result<Value> {
        let offset = expr.offset();
        let lambda = Lambda::compile(self.source, expr, &self.env)?;
        if lambda.reads_point() {
            return Err(Error::invalid(
                self.source,
                offset,
                "field and tag references are only allowed inside `lambda:` expressions",
            ));
        }
        let value = lambda
            .eval(&EmptyScope)
            .map_err(|e| Error::invalid(self.source, offset, e.to_string()))?;
        Ok(match value {
            Val::Bool(b) => Value::Bool(b),
            Val::Int(i) => Value::Int(i),
            Val::Float(x) => Value::Float(x),
            Val::Str(s) => Value::String(s.into_owned()),
            Val::Duration(d) => Value::Duration(d),
            Val::Regex(r) => Value::Regex(r.clone()),
            Val::Time(_) => {
                return Err(Error::invalid(
                    self.source,
                    offset,
                    "a time value cannot be stored in a var",
                ));
            }
        })
    }

    fn lookup(&mut self, name: &str, offset: usize) -> Result<Binding> {
        match name {
            "stream" => {
                self.see_stream(offset);
                return Ok(Binding::Node(0));
            }
            "batch" => return Err(batch_error(self.source, offset)),
            _ => {}
        }
        match self.env.0.get(name) {
            Some(binding) => Ok(binding.clone()),
            None => {
                let hint = if matches!(name, "true" | "false") {
                    " (booleans are written TRUE and FALSE)"
                } else {
                    ""
                };
                Err(Error::invalid(
                    self.source,
                    offset,
                    format!("undefined variable `{name}`{hint}"),
                ))
            }
        }
    }

    fn see_stream(&mut self, offset: usize) {
        if !self.stream_seen {
            self.stream_seen = true;
            if let Some(stream) = self.nodes.first_mut() {
                stream.offset = offset;
            }
        }
    }

    fn args(&mut self, args: &[Expr<'a>], node: &str) -> Result<Vec<Arg>> {
        let mut out = Vec::with_capacity(args.len());
        for arg in args {
            match self.eval(arg)? {
                Binding::Value(value) => out.push(Arg {
                    value,
                    offset: arg.offset(),
                }),
                Binding::Node(_) => {
                    return Err(Error::invalid(
                        self.source,
                        arg.offset(),
                        format!("a node cannot be an argument of `{node}()`"),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn chain(
        &mut self,
        head: &str,
        head_offset: usize,
        links: &[super::ast::Link<'a>],
    ) -> Result<usize> {
        let mut current = match self.lookup(head, head_offset)? {
            Binding::Node(id) => id,
            Binding::Value(v) => {
                return Err(Error::invalid(
                    self.source,
                    head_offset,
                    format!(
                        "`{head}` is a {}, not a node: a chain starts at `stream` or at a variable holding a node",
                        v.var_type()
                    ),
                ));
            }
        };
        for link in links {
            match link.kind {
                LinkKind::Udf => {
                    return Err(Error::unsupported(
                        self.source,
                        link.offset,
                        format!(
                            "user-defined function `@{}()` is not supported by this processor",
                            link.name
                        ),
                    ));
                }
                LinkKind::Property => {
                    let args = self.args(&link.args, link.name)?;
                    if let Some(node) = self.nodes.get_mut(current) {
                        node.props.push(RawProperty {
                            name: link.name,
                            args,
                            offset: link.offset,
                        });
                    }
                }
                LinkKind::Node => {
                    current = self.add_node(current, link)?;
                }
            }
        }
        Ok(current)
    }

    /// True when node `id` emits batches (Kapacitor's batch edge): it is a window or follows
    /// one, with no aggregate (which reduces a batch to a point) or k8sAutoscale (which emits
    /// events) in between.
    fn gives_batches(&self, id: usize) -> bool {
        let mut current = Some(id);
        while let Some(node) = current.and_then(|i| self.nodes.get(i)) {
            match node.kind {
                NodeKind::Window => return true,
                NodeKind::Aggregate(_)
                | NodeKind::K8sAutoscale
                | NodeKind::From
                | NodeKind::Stream => return false,
                _ => current = node.parent,
            }
        }
        false
    }

    fn add_node(&mut self, parent: usize, link: &super::ast::Link<'a>) -> Result<usize> {
        let Some(kind) = NodeKind::from_method(link.name) else {
            return Err(Error::unsupported(
                self.source,
                link.offset,
                format!(
                    "node `{}()` is not supported by this processor (supported: {SUPPORTED_NODES})",
                    link.name
                ),
            ));
        };
        let parent_kind = self.nodes.get(parent).map_or(NodeKind::Stream, |n| n.kind);
        if parent_kind == NodeKind::Stream && kind != NodeKind::From {
            return Err(Error::invalid(
                self.source,
                link.offset,
                format!(
                    "`stream` can only be followed by `|from()`, not `|{}()`",
                    link.name
                ),
            ));
        }
        if kind == NodeKind::From && parent_kind != NodeKind::Stream {
            return Err(Error::invalid(
                self.source,
                link.offset,
                "`|from()` can only follow `stream`",
            ));
        }
        if kind == NodeKind::Window && self.gives_batches(parent) {
            return Err(Error::invalid(
                self.source,
                link.offset,
                "`|window()` needs a stream of points, but it follows a window's batches (reduce them first, e.g. `|mean()`)",
            ));
        }
        let depth = self.nodes.get(parent).map_or(0, |n| n.depth) + 1;
        if depth > MAX_CHAIN_DEPTH {
            return Err(Error::invalid(
                self.source,
                link.offset,
                format!("the chain is longer than {MAX_CHAIN_DEPTH} nodes after `stream`"),
            ));
        }
        if self.nodes.len() >= MAX_NODES {
            return Err(Error::invalid(
                self.source,
                link.offset,
                format!("the task has more than {MAX_NODES} nodes"),
            ));
        }
        let ctor = self.args(&link.args, link.name)?;
        let id = self.nodes.len();
        self.nodes.push(RawNode {
            kind,
            depth,
            offset: link.offset,
            ctor,
            props: Vec::new(),
            parent: Some(parent),
            children: Vec::new(),
        });
        if let Some(p) = self.nodes.get_mut(parent) {
            p.children.push(id);
        }
        Ok(id)
    }
}

fn batch_error(source: &str, offset: usize) -> Error {
    Error::unsupported(
        source,
        offset,
        "batch tasks are not supported: this processor runs stream tasks (`stream |from() ...`)",
    )
}
