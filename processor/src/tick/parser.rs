//! Tokens -> [`Program`]: statements, chains, and lambda expressions with Kapacitor's operator
//! precedence (OR < AND < equality and regex match < ordering < `+ -` < `* / %`, unary `-` `!`
//! tightest).

use std::borrow::Cow;

use super::ast::{BinaryOp, Expr, Link, LinkKind, Program, Statement, UnaryOp};
use super::lexer::{Token, TokenKind, tokenize};
use super::value::{parse_duration, unescape};
use super::{Error, Result};

/// Nesting limit for parentheses, unary operators and calls: bounds recursion on any input.
const MAX_DEPTH: usize = 128;

/// Parses a whole script.
pub fn parse(source: &str) -> Result<Program<'_>> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
        depth: 0,
    };
    let mut statements = Vec::new();
    while parser.peek() != TokenKind::Eof {
        statements.push(parser.statement()?);
    }
    Ok(Program { statements })
}

/// Parses the text of a lambda body (what follows `lambda:`), as given in task vars.
pub fn parse_lambda_body(source: &str) -> Result<Expr<'_>> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
        depth: 0,
    };
    let body = parser.operand_expr()?;
    parser.expect(|k| k == TokenKind::Eof, "the end of the lambda")?;
    Ok(body)
}

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    depth: usize,
}

fn binary_op(kind: TokenKind<'_>) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::Or => BinaryOp::Or,
        TokenKind::And => BinaryOp::And,
        TokenKind::EqEq => BinaryOp::Eq,
        TokenKind::NotEq => BinaryOp::NotEq,
        TokenKind::RegexMatch => BinaryOp::RegexMatch,
        TokenKind::RegexNotMatch => BinaryOp::RegexNotMatch,
        TokenKind::Lt => BinaryOp::Lt,
        TokenKind::Le => BinaryOp::Le,
        TokenKind::Gt => BinaryOp::Gt,
        TokenKind::Ge => BinaryOp::Ge,
        TokenKind::Plus => BinaryOp::Add,
        TokenKind::Minus => BinaryOp::Sub,
        TokenKind::Star => BinaryOp::Mul,
        TokenKind::Slash => BinaryOp::Div,
        TokenKind::Percent => BinaryOp::Mod,
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    fn token(&self, ahead: usize) -> Token<'a> {
        let last = Token {
            kind: TokenKind::Eof,
            offset: self.source.len(),
        };
        self.tokens.get(self.pos + ahead).copied().unwrap_or(last)
    }

    fn peek(&self) -> TokenKind<'a> {
        self.token(0).kind
    }

    fn offset(&self) -> usize {
        self.token(0).offset
    }

    fn advance(&mut self) -> Token<'a> {
        let t = self.token(0);
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn unexpected(&self, expected: &str) -> Error {
        let t = self.token(0);
        let mut reason = format!("unexpected {}, expected {expected}", t.kind.describe());
        match t.kind {
            TokenKind::Assign => reason.push_str(" (compare with `==`)"),
            TokenKind::Ident("and" | "or") => {
                reason.push_str(" (logical operators are written AND, OR)")
            }
            _ => {}
        }
        Error::syntax(self.source, t.offset, reason)
    }

    fn expect(&mut self, ok: impl Fn(TokenKind<'a>) -> bool, what: &str) -> Result<Token<'a>> {
        if ok(self.peek()) {
            Ok(self.advance())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn ident(&mut self, what: &str) -> Result<(&'a str, usize)> {
        let t = self.expect(|k| matches!(k, TokenKind::Ident(_)), what)?;
        match t.kind {
            TokenKind::Ident(name) => Ok((name, t.offset)),
            _ => Err(self.unexpected(what)),
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::syntax(
                self.source,
                self.offset(),
                format!("expression nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn statement(&mut self) -> Result<Statement<'a>> {
        match (self.peek(), self.token(1).kind) {
            (TokenKind::Var, _) => self.declaration(),
            (TokenKind::Ident("dbrp"), TokenKind::Reference(_)) => self.dbrp(),
            _ => Ok(Statement::Expr(self.expression()?)),
        }
    }

    fn declaration(&mut self) -> Result<Statement<'a>> {
        let offset = self.advance().offset;
        let (name, _) = self.ident("a variable name after `var`")?;
        match self.peek() {
            TokenKind::Assign => {
                self.advance();
                let value = self.expression()?;
                Ok(Statement::Var {
                    name,
                    value,
                    offset,
                })
            }
            TokenKind::Ident(type_name) => {
                let type_offset = self.advance().offset;
                Ok(Statement::TypeDecl {
                    name,
                    type_name,
                    offset,
                    type_offset,
                })
            }
            _ => Err(self.unexpected(&format!("`=` after `var {name}`"))),
        }
    }

    fn dbrp(&mut self) -> Result<Statement<'a>> {
        let offset = self.advance().offset;
        let database = self.reference("the database as \"db\"")?;
        self.expect(|k| k == TokenKind::Dot, "`.` between \"db\" and \"rp\"")?;
        let retention_policy = self.reference("the retention policy as \"rp\"")?;
        Ok(Statement::Dbrp {
            database,
            retention_policy,
            offset,
        })
    }

    fn reference(&mut self, what: &str) -> Result<Cow<'a, str>> {
        match self.peek() {
            TokenKind::Reference(body) => {
                self.advance();
                Ok(unescape(body, '"'))
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// A value in statement or argument position: chain, lambda, list, or operand expression.
    fn expression(&mut self) -> Result<Expr<'a>> {
        match (self.peek(), self.token(1).kind) {
            (TokenKind::Ident(_), TokenKind::Pipe | TokenKind::Dot | TokenKind::At) => self.chain(),
            _ => self.operand_expr(),
        }
    }

    fn chain(&mut self) -> Result<Expr<'a>> {
        let (head, head_offset) = self.ident("a chain head")?;
        let mut links = Vec::new();
        loop {
            let kind = match self.peek() {
                TokenKind::Pipe => LinkKind::Node,
                TokenKind::Dot => LinkKind::Property,
                TokenKind::At => LinkKind::Udf,
                _ => break,
            };
            self.advance();
            let what = match kind {
                LinkKind::Node => "a node name after `|`",
                LinkKind::Property => "a property name after `.`",
                LinkKind::Udf => "a function name after `@`",
            };
            let (name, offset) = self.ident(what)?;
            if self.peek() != TokenKind::LParen {
                return Err(self.unexpected(&format!("`(` after `{name}`")));
            }
            let args = self.arguments()?;
            links.push(Link {
                kind,
                name,
                args,
                offset,
            });
        }
        Ok(Expr::Chain {
            head,
            head_offset,
            links,
        })
    }

    /// `( expr, expr, ... )`
    fn arguments(&mut self) -> Result<Vec<Expr<'a>>> {
        self.separated(TokenKind::RParen, "`,` or `)`", Self::expression)
    }

    /// An opening token (the current one), items separated by commas, then `close`: one
    /// nesting level deeper.
    fn separated(
        &mut self,
        close: TokenKind,
        expected: &str,
        mut item: impl FnMut(&mut Self) -> Result<Expr<'a>>,
    ) -> Result<Vec<Expr<'a>>> {
        self.enter()?;
        self.advance();
        let mut items = Vec::new();
        if self.peek() != close {
            loop {
                items.push(item(self)?);
                if self.peek() == TokenKind::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
        }
        self.expect(|k| k == close, expected)?;
        self.depth -= 1;
        Ok(items)
    }

    /// An operator expression (the body of a lambda, or a constant expression).
    fn operand_expr(&mut self) -> Result<Expr<'a>> {
        self.binary(0)
    }

    fn binary(&mut self, min_precedence: u8) -> Result<Expr<'a>> {
        let depth_before = self.depth;
        let mut lhs = self.primary()?;
        while let Some(op) = binary_op(self.peek()) {
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            let offset = self.advance().offset;
            // Each operator nests the tree built so far one level deeper (`1 + 1 + 1 ...`).
            self.enter()?;
            let rhs = self.binary(precedence + 1)?;
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                offset,
            };
        }
        self.depth = depth_before;
        Ok(lhs)
    }

    fn primary(&mut self) -> Result<Expr<'a>> {
        let t = self.token(0);
        let offset = t.offset;
        let expr = match t.kind {
            TokenKind::LParen => {
                self.enter()?;
                self.advance();
                let inner = self.operand_expr()?;
                self.expect(|k| k == TokenKind::RParen, "`)`")?;
                self.depth -= 1;
                return Ok(inner);
            }
            TokenKind::Number(text) => {
                self.advance();
                if text.contains('.') {
                    let value = text.parse::<f64>().map_err(|_| {
                        Error::syntax(self.source, offset, format!("invalid float `{text}`"))
                    })?;
                    Expr::Float(value, offset)
                } else {
                    let value = text.parse::<i64>().map_err(|_| {
                        Error::syntax(
                            self.source,
                            offset,
                            format!("integer `{text}` does not fit in 64 bits"),
                        )
                    })?;
                    Expr::Int(value, offset)
                }
            }
            TokenKind::Duration(text) => {
                self.advance();
                let nanos = parse_duration(text)
                    .map_err(|reason| Error::syntax(self.source, offset, reason))?;
                Expr::Duration(nanos, offset)
            }
            TokenKind::Str(body) => {
                self.advance();
                Expr::Str(unescape(body, '\''), offset)
            }
            TokenKind::TripleStr(body) => {
                self.advance();
                Expr::Str(Cow::Borrowed(body), offset)
            }
            TokenKind::True | TokenKind::False => {
                self.advance();
                Expr::Bool(t.kind == TokenKind::True, offset)
            }
            TokenKind::Regex(body) => {
                self.advance();
                Expr::Regex(unescape(body, '/'), offset)
            }
            TokenKind::Star => {
                self.advance();
                Expr::Star(offset)
            }
            TokenKind::Reference(body) => {
                self.advance();
                Expr::Reference(unescape(body, '"'), offset)
            }
            TokenKind::Ident(name) => {
                self.advance();
                if self.peek() == TokenKind::LParen {
                    let args = self.arguments()?;
                    Expr::Call { name, args, offset }
                } else {
                    Expr::Ident(name, offset)
                }
            }
            TokenKind::Minus | TokenKind::Not => {
                self.advance();
                self.enter()?;
                let operand = self.primary()?;
                self.depth -= 1;
                let op = if t.kind == TokenKind::Minus {
                    UnaryOp::Neg
                } else {
                    UnaryOp::Not
                };
                Expr::Unary {
                    op,
                    operand: Box::new(operand),
                    offset,
                }
            }
            TokenKind::Lambda => {
                self.advance();
                self.enter()?;
                let body = self.operand_expr()?;
                self.depth -= 1;
                Expr::Lambda {
                    body: Box::new(body),
                    offset,
                }
            }
            TokenKind::LBracket => {
                let items =
                    self.separated(TokenKind::RBracket, "`,` or `]`", Self::operand_expr)?;
                Expr::List(items, offset)
            }
            _ => return Err(self.unexpected("a value")),
        };
        Ok(expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda_body(src: &str) -> Expr<'_> {
        parse_lambda_body(src).unwrap()
    }

    /// Renders an expression with full parentheses to show its structure.
    fn shape(e: &Expr<'_>) -> String {
        match e {
            Expr::Int(i, _) => i.to_string(),
            Expr::Float(f, _) => format!("{f:?}"),
            Expr::Ident(n, _) => n.to_string(),
            Expr::Reference(r, _) => format!("\"{r}\""),
            Expr::Str(s, _) => format!("'{s}'"),
            Expr::Bool(b, _) => b.to_string(),
            Expr::Regex(r, _) => format!("/{r}/"),
            Expr::Duration(d, _) => format!("{d}ns"),
            Expr::Unary { op, operand, .. } => format!("({op:?} {})", shape(operand)),
            Expr::Binary { op, lhs, rhs, .. } => {
                format!("({} {} {})", shape(lhs), op.symbol(), shape(rhs))
            }
            Expr::Call { name, args, .. } => {
                let args: Vec<String> = args.iter().map(shape).collect();
                format!("{name}({})", args.join(", "))
            }
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn multiplication_binds_tighter_than_addition_and_comparison() {
        assert_eq!(shape(&lambda_body("1 + 2 * 3 > 4")), "((1 + (2 * 3)) > 4)");
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(
            shape(&lambda_body("TRUE OR FALSE AND FALSE")),
            "(true OR (false AND false))"
        );
    }

    #[test]
    fn same_precedence_associates_left() {
        assert_eq!(shape(&lambda_body("8 - 4 - 2")), "((8 - 4) - 2)");
        assert_eq!(shape(&lambda_body("8 / 4 / 2")), "((8 / 4) / 2)");
    }

    #[test]
    fn parentheses_and_unary_operators() {
        assert_eq!(shape(&lambda_body("-(1 + 2) * 3")), "((Neg (1 + 2)) * 3)");
        assert_eq!(
            shape(&lambda_body("!\"up\" == TRUE")),
            "((Not \"up\") == true)"
        );
    }

    #[test]
    fn equality_is_looser_than_ordering() {
        assert_eq!(
            shape(&lambda_body("\"a\" < 1 == \"b\" >= 2")),
            "((\"a\" < 1) == (\"b\" >= 2))"
        );
    }

    #[test]
    fn regex_match_and_calls() {
        assert_eq!(
            shape(&lambda_body(
                "\"host\" =~ /^web\\/[0-9]+$/ AND int(ceil(\"x\" / t)) > 1"
            )),
            "((\"host\" =~ /^web/[0-9]+$/) AND (int(ceil((\"x\" / t))) > 1))"
        );
    }

    #[test]
    fn tutorial_chain_has_its_links_in_order() {
        let program = parse(
            "stream\n    |from()\n        .measurement('requests')\n    |derivative('counter')\n",
        )
        .unwrap();
        let [Statement::Expr(Expr::Chain { head, links, .. })] = program.statements.as_slice()
        else {
            panic!("expected one chain: {program:?}");
        };
        assert_eq!(*head, "stream");
        let names: Vec<(LinkKind, &str)> = links.iter().map(|l| (l.kind, l.name)).collect();
        assert_eq!(
            names,
            vec![
                (LinkKind::Node, "from"),
                (LinkKind::Property, "measurement"),
                (LinkKind::Node, "derivative")
            ]
        );
    }

    #[test]
    fn dbrp_statement_reads_quoted_names() {
        let program = parse("dbrp \"autoscale\".\"autogen\"").unwrap();
        assert_eq!(
            program.statements,
            vec![Statement::Dbrp {
                database: Cow::Borrowed("autoscale"),
                retention_policy: Cow::Borrowed("autogen"),
                offset: 0
            }]
        );
    }

    #[test]
    fn assignment_inside_a_lambda_suggests_double_equals() {
        let err = parse_lambda_body("\"a\" = 1").unwrap_err();
        assert!(err.to_string().contains("compare with `==`"), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let src = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        let err = parse_lambda_body(&src).unwrap_err();
        assert!(err.to_string().contains("nested"), "{err}");
        let src = format!("{}1", "-".repeat(10_000));
        assert!(parse_lambda_body(&src).is_err());
        let src = vec!["1"; 10_000].join(" + ");
        assert!(parse_lambda_body(&src).is_err());
        let src = vec!["1"; 100].join(" + ");
        assert!(parse_lambda_body(&src).is_ok());
    }
}
