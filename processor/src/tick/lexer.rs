//! TICKscript tokens. Token texts borrow from the source; nothing is unescaped here.
//!
//! `/` is ambiguous: after an operand (identifier, literal, reference, `)` or `]`) it divides,
//! elsewhere it starts a regex literal `/.../`; `//` always starts a comment to the end of line.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, take_while, take_while1},
    character::complete::{char, digit1},
    combinator::{opt, recognize},
    sequence::pair,
};

use super::{Error, Result};

/// One token and where it starts (byte offset into the source).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Token<'a> {
    pub kind: TokenKind<'a>,
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenKind<'a> {
    Ident(&'a str),
    /// Digits with an optional fraction: `10`, `100.0`.
    Number(&'a str),
    /// Whole number and unit: `10s`, `1m`, `100ms`, `1u`, `1µs`, `5ns`.
    Duration(&'a str),
    /// Body of `'...'` (escapes `\'` still in place).
    Str(&'a str),
    /// Body of `'''...'''` (no escapes).
    TripleStr(&'a str),
    /// Body of `"..."` (escapes `\"` still in place): a field or tag reference.
    Reference(&'a str),
    /// Body of `/.../` (escapes `\/` still in place).
    Regex(&'a str),
    Var,
    /// `lambda:`
    Lambda,
    True,
    False,
    And,
    Or,
    Dot,
    Pipe,
    At,
    Assign,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Star,
    Plus,
    Minus,
    Slash,
    Percent,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    RegexMatch,
    RegexNotMatch,
    Not,
    Eof,
}

impl TokenKind<'_> {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Ident(s) => format!("identifier `{s}`"),
            TokenKind::Number(s) => format!("number `{s}`"),
            TokenKind::Duration(s) => format!("duration `{s}`"),
            TokenKind::Str(s) => format!("string '{s}'"),
            TokenKind::TripleStr(_) => "triple-quoted string".to_string(),
            TokenKind::Reference(s) => format!("reference \"{s}\""),
            TokenKind::Regex(s) => format!("regex /{s}/"),
            TokenKind::Var => "`var`".to_string(),
            TokenKind::Lambda => "`lambda:`".to_string(),
            TokenKind::True => "`TRUE`".to_string(),
            TokenKind::False => "`FALSE`".to_string(),
            TokenKind::And => "`AND`".to_string(),
            TokenKind::Or => "`OR`".to_string(),
            TokenKind::Eof => "end of script".to_string(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            TokenKind::Dot => ".",
            TokenKind::Pipe => "|",
            TokenKind::At => "@",
            TokenKind::Assign => "=",
            TokenKind::LParen => "(",
            TokenKind::RParen => ")",
            TokenKind::LBracket => "[",
            TokenKind::RBracket => "]",
            TokenKind::Comma => ",",
            TokenKind::Star => "*",
            TokenKind::Plus => "+",
            TokenKind::Minus => "-",
            TokenKind::Slash => "/",
            TokenKind::Percent => "%",
            TokenKind::EqEq => "==",
            TokenKind::NotEq => "!=",
            TokenKind::Lt => "<",
            TokenKind::Le => "<=",
            TokenKind::Gt => ">",
            TokenKind::Ge => ">=",
            TokenKind::RegexMatch => "=~",
            TokenKind::RegexNotMatch => "!~",
            TokenKind::Not => "!",
            _ => "?",
        }
    }

    /// True when a following `/` divides rather than starts a regex.
    fn ends_operand(&self) -> bool {
        matches!(
            self,
            TokenKind::Ident(_)
                | TokenKind::Number(_)
                | TokenKind::Duration(_)
                | TokenKind::Str(_)
                | TokenKind::TripleStr(_)
                | TokenKind::Reference(_)
                | TokenKind::True
                | TokenKind::False
                | TokenKind::RParen
                | TokenKind::RBracket
        )
    }
}

/// Duration units, longest first so that `ms` wins over `m`.
pub const DURATION_UNITS: [&str; 11] = ["ns", "us", "µs", "ms", "u", "µ", "s", "m", "h", "d", "w"];

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

type LexResult<'a, O> = IResult<&'a str, O>;

fn identifier(input: &str) -> LexResult<'_, &str> {
    recognize(pair(take_while1(is_ident_start), take_while(is_ident_char))).parse(input)
}

fn number(input: &str) -> LexResult<'_, &str> {
    recognize(pair(digit1, opt(pair(char('.'), digit1)))).parse(input)
}

fn duration_unit(input: &str) -> LexResult<'_, &str> {
    alt((
        tag("ns"),
        tag("us"),
        tag("µs"),
        tag("ms"),
        tag("u"),
        tag("µ"),
        tag("s"),
        tag("m"),
        tag("h"),
        tag("d"),
        tag("w"),
    ))
    .parse(input)
}

fn operator(input: &str) -> LexResult<'_, TokenKind<'_>> {
    alt((
        tag("==").map(|_| TokenKind::EqEq),
        tag("!=").map(|_| TokenKind::NotEq),
        tag("=~").map(|_| TokenKind::RegexMatch),
        tag("!~").map(|_| TokenKind::RegexNotMatch),
        tag("<=").map(|_| TokenKind::Le),
        tag(">=").map(|_| TokenKind::Ge),
        tag("<").map(|_| TokenKind::Lt),
        tag(">").map(|_| TokenKind::Gt),
        tag("=").map(|_| TokenKind::Assign),
        tag("!").map(|_| TokenKind::Not),
        tag("+").map(|_| TokenKind::Plus),
        tag("-").map(|_| TokenKind::Minus),
        tag("%").map(|_| TokenKind::Percent),
        tag("*").map(|_| TokenKind::Star),
        alt((
            tag(".").map(|_| TokenKind::Dot),
            tag("|").map(|_| TokenKind::Pipe),
            tag("@").map(|_| TokenKind::At),
            tag("(").map(|_| TokenKind::LParen),
            tag(")").map(|_| TokenKind::RParen),
            tag("[").map(|_| TokenKind::LBracket),
            tag("]").map(|_| TokenKind::RBracket),
            tag(",").map(|_| TokenKind::Comma),
        )),
    ))
    .parse(input)
}

/// Scans up to the unescaped `close` delimiter; returns (body, rest after the delimiter).
fn delimited_body(input: &str, close: char) -> Option<(&str, &str)> {
    let mut chars = input.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if c == close {
            return Some((&input[..i], &input[i + c.len_utf8()..]));
        }
    }
    None
}

/// Splits `source` into tokens, ending with [`TokenKind::Eof`].
pub fn tokenize(source: &str) -> Result<Vec<Token<'_>>> {
    let mut tokens: Vec<Token<'_>> = Vec::new();
    let mut rest = source;
    // End of the last token: where "unexpected end of script" points.
    let mut last_end = 0;
    loop {
        rest = rest.trim_start();
        let offset = source.len() - rest.len();
        if rest.starts_with("//") {
            rest = rest.find('\n').map_or("", |i| &rest[i..]);
            continue;
        }
        let Some(first) = rest.chars().next() else {
            tokens.push(Token {
                kind: TokenKind::Eof,
                offset: last_end,
            });
            return Ok(tokens);
        };
        let after_operand = tokens.last().is_some_and(|t| t.kind.ends_operand());
        let (kind, next) = if is_ident_start(first) {
            lex_word(source, rest, offset)?
        } else if first.is_ascii_digit() {
            lex_number(source, rest, offset)?
        } else if first == '\'' {
            lex_string(source, rest, offset)?
        } else if first == '"' {
            let (body, next) = delimited_body(&rest[1..], '"').ok_or_else(|| {
                Error::syntax(
                    source,
                    offset,
                    "unterminated field or tag reference: missing `\"`",
                )
            })?;
            (TokenKind::Reference(body), next)
        } else if first == '/' && !after_operand {
            let (body, next) = delimited_body(&rest[1..], '/').ok_or_else(|| {
                Error::syntax(source, offset, "unterminated regex: missing closing `/`")
            })?;
            (TokenKind::Regex(body), next)
        } else if first == '/' {
            (TokenKind::Slash, &rest[1..])
        } else {
            match operator(rest) {
                Ok((next, kind)) => (kind, next),
                Err(_) => {
                    return Err(Error::syntax(
                        source,
                        offset,
                        format!("unexpected character `{first}`"),
                    ));
                }
            }
        };
        tokens.push(Token { kind, offset });
        rest = next;
        last_end = source.len() - rest.len();
    }
}

fn lex_word<'a>(source: &str, rest: &'a str, offset: usize) -> Result<(TokenKind<'a>, &'a str)> {
    let (next, word) =
        identifier(rest).map_err(|_| Error::syntax(source, offset, "expected an identifier"))?;
    let kind = match word {
        "var" => TokenKind::Var,
        "TRUE" => TokenKind::True,
        "FALSE" => TokenKind::False,
        "AND" => TokenKind::And,
        "OR" => TokenKind::Or,
        "lambda" if next.starts_with(':') => return Ok((TokenKind::Lambda, &next[1..])),
        _ => TokenKind::Ident(word),
    };
    Ok((kind, next))
}

fn lex_number<'a>(source: &str, rest: &'a str, offset: usize) -> Result<(TokenKind<'a>, &'a str)> {
    let (next, digits) =
        number(rest).map_err(|_| Error::syntax(source, offset, "expected a number"))?;
    let is_decimal = digits.contains('.');
    if let Ok((after_unit, unit)) = duration_unit(next) {
        let text = &rest[..digits.len() + unit.len()];
        let glued = after_unit.chars().next().is_some_and(is_ident_char);
        if is_decimal {
            return Err(Error::syntax(
                source,
                offset,
                format!(
                    "invalid duration `{text}`: a duration is a whole number and a unit (write 1500ms, not 1.5s)"
                ),
            ));
        }
        if !glued {
            return Ok((TokenKind::Duration(text), after_unit));
        }
    }
    if next.chars().next().is_some_and(is_ident_char) {
        let word_len = next.find(|c: char| !is_ident_char(c)).unwrap_or(next.len());
        let text = &rest[..digits.len() + word_len];
        return Err(Error::syntax(
            source,
            offset,
            format!(
                "invalid number or duration `{text}`: duration units are ns, u (or µs), ms, s, m, h, d, w"
            ),
        ));
    }
    Ok((TokenKind::Number(digits), next))
}

fn lex_string<'a>(source: &str, rest: &'a str, offset: usize) -> Result<(TokenKind<'a>, &'a str)> {
    if let Some(body) = rest.strip_prefix("'''") {
        let end = body.find("'''").ok_or_else(|| {
            Error::syntax(
                source,
                offset,
                "unterminated triple-quoted string: missing `'''`",
            )
        })?;
        return Ok((TokenKind::TripleStr(&body[..end]), &body[end + 3..]));
    }
    let (body, next) = delimited_body(&rest[1..], '\'')
        .ok_or_else(|| Error::syntax(source, offset, "unterminated string: missing closing `'`"))?;
    Ok((TokenKind::Str(body), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind<'_>> {
        tokenize(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn durations_take_the_longest_unit() {
        assert_eq!(
            kinds("1m 100ms 10s 1u 1µs 5ns 2w 3d 4h 7us"),
            vec![
                TokenKind::Duration("1m"),
                TokenKind::Duration("100ms"),
                TokenKind::Duration("10s"),
                TokenKind::Duration("1u"),
                TokenKind::Duration("1µs"),
                TokenKind::Duration("5ns"),
                TokenKind::Duration("2w"),
                TokenKind::Duration("3d"),
                TokenKind::Duration("4h"),
                TokenKind::Duration("7us"),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn slash_after_an_operand_divides_and_elsewhere_starts_a_regex() {
        assert_eq!(
            kinds(r#""a" / 2 =~ /x\/y/"#),
            vec![
                TokenKind::Reference("a"),
                TokenKind::Slash,
                TokenKind::Number("2"),
                TokenKind::RegexMatch,
                TokenKind::Regex(r"x\/y"),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn comments_run_to_the_end_of_the_line() {
        assert_eq!(
            kinds("// c\nvar x = 1 // trailing\n// last"),
            vec![
                TokenKind::Var,
                TokenKind::Ident("x"),
                TokenKind::Assign,
                TokenKind::Number("1"),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn strings_keep_escapes_and_triple_quotes_span_lines() {
        assert_eq!(
            kinds(
                r"'it\'s' '''a 'b'
c'''"
            ),
            vec![
                TokenKind::Str(r"it\'s"),
                TokenKind::TripleStr("a 'b'\nc"),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn lambda_keyword_needs_the_colon() {
        assert_eq!(
            kinds("lambda: lambda"),
            vec![
                TokenKind::Lambda,
                TokenKind::Ident("lambda"),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn fractional_duration_is_an_error_with_its_column() {
        let err = tokenize("var x = 1.5s").unwrap_err();
        let loc = err.location().unwrap();
        assert_eq!((loc.line, loc.column), (1, 9));
        assert!(err.to_string().contains("whole number"), "{err}");
    }

    #[test]
    fn unknown_unit_is_an_error() {
        let err = tokenize("var x = 5min").unwrap_err();
        assert!(err.to_string().contains("`5min`"), "{err}");
    }

    #[test]
    fn unterminated_literals_are_errors_at_their_start() {
        for (src, col, what) in [
            ("x 'abc", 3, "unterminated string"),
            ("x \"abc", 3, "unterminated field or tag reference"),
            ("x =~ /abc", 6, "unterminated regex"),
            ("x '''abc'", 3, "unterminated triple-quoted"),
        ] {
            let err = tokenize(src).unwrap_err();
            assert_eq!(err.location().unwrap().column, col, "{src}");
            assert!(err.to_string().contains(what), "{err}");
        }
    }

    #[test]
    fn unexpected_character_is_named() {
        let err = tokenize("stream\n  |from() #").unwrap_err();
        let loc = err.location().unwrap();
        assert_eq!((loc.line, loc.column), (2, 11));
        assert!(err.to_string().contains("unexpected character `#`"));
    }
}
