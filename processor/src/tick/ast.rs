//! The syntax tree of a script. Names borrow from the source; `offset` is a byte offset into it.

use std::borrow::Cow;

/// A whole script: statements in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct Program<'a> {
    pub statements: Vec<Statement<'a>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement<'a> {
    /// `var name = value`
    Var {
        name: &'a str,
        value: Expr<'a>,
        offset: usize,
    },
    /// `var name type`: a value the task's vars must provide.
    TypeDecl {
        name: &'a str,
        type_name: &'a str,
        offset: usize,
        type_offset: usize,
    },
    /// `dbrp "db"."rp"`
    Dbrp {
        database: Cow<'a, str>,
        retention_policy: Cow<'a, str>,
        offset: usize,
    },
    /// A bare expression: normally a chain starting at `stream` or at a node variable.
    Expr(Expr<'a>),
}

/// How a link joins a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// `|node(args)`: creates a child node.
    Node,
    /// `.property(args)`: sets a property of the current node.
    Property,
    /// `@udf(args)`: a user-defined function.
    Udf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link<'a> {
    pub kind: LinkKind,
    pub name: &'a str,
    pub args: Vec<Expr<'a>>,
    /// Offset of the name (after `|`, `.` or `@`).
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    NotEq,
    RegexMatch,
    RegexNotMatch,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinaryOp {
    /// Binding strength, higher binds tighter (Kapacitor's table).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 0,
            BinaryOp::And => 1,
            BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::RegexMatch | BinaryOp::RegexNotMatch => 2,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 5,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "OR",
            BinaryOp::And => "AND",
            BinaryOp::Eq => "==",
            BinaryOp::NotEq => "!=",
            BinaryOp::RegexMatch => "=~",
            BinaryOp::RegexNotMatch => "!~",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr<'a> {
    Int(i64, usize),
    Float(f64, usize),
    /// Nanoseconds.
    Duration(i64, usize),
    Str(Cow<'a, str>, usize),
    Bool(bool, usize),
    Regex(Cow<'a, str>, usize),
    Star(usize),
    /// A variable (or `stream`/`batch` at the head of a chain).
    Ident(&'a str, usize),
    /// `"name"`: a field or tag of the point (inside lambdas).
    Reference(Cow<'a, str>, usize),
    Unary {
        op: UnaryOp,
        operand: Box<Expr<'a>>,
        offset: usize,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr<'a>>,
        rhs: Box<Expr<'a>>,
        offset: usize,
    },
    Call {
        name: &'a str,
        args: Vec<Expr<'a>>,
        offset: usize,
    },
    /// `lambda: body`
    Lambda {
        body: Box<Expr<'a>>,
        offset: usize,
    },
    List(Vec<Expr<'a>>, usize),
    /// `head |node() .property() ...`
    Chain {
        head: &'a str,
        head_offset: usize,
        links: Vec<Link<'a>>,
    },
}

impl Expr<'_> {
    /// Byte offset where the expression starts (operators: where the operator is).
    pub fn offset(&self) -> usize {
        match self {
            Expr::Int(_, o)
            | Expr::Float(_, o)
            | Expr::Duration(_, o)
            | Expr::Str(_, o)
            | Expr::Bool(_, o)
            | Expr::Regex(_, o)
            | Expr::Star(o)
            | Expr::Ident(_, o)
            | Expr::Reference(_, o)
            | Expr::List(_, o) => *o,
            Expr::Unary { offset, .. }
            | Expr::Binary { offset, .. }
            | Expr::Call { offset, .. }
            | Expr::Lambda { offset, .. } => *offset,
            Expr::Chain { head_offset, .. } => *head_offset,
        }
    }
}
