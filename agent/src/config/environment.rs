//! Environment-variable substitution in the config text, before TOML parsing, as Telegraf does:
//! `$NAME`, `${NAME}`, `${NAME:-default}` (unset or empty), `${NAME-default}` (unset),
//! `${NAME:?message}` and `${NAME?message}` (an error), `$$` for a literal `$`. A variable that
//! is unset and has no default is left as written (Telegraf keeps such patterns). Comments are
//! copied without substitution.

/// A `${NAME?message}` whose variable is missing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: environment variable {name} is required: {message}")]
pub struct MissingVariable {
    pub line: usize,
    pub name: String,
    pub message: String,
}

/// Substitutes the variables that `lookup` resolves.
pub fn substitute(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, MissingVariable> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let comment_start = comment_start(line);
        let (code, comment) = line.split_at(comment_start);
        substitute_code(code, index + 1, &lookup, &mut out)?;
        out.push_str(comment);
    }
    Ok(out)
}

/// Where a TOML comment starts on this line (its length when there is none): the first `#`
/// outside a basic or literal string.
fn comment_start(line: &str) -> usize {
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for (i, byte) in line.bytes().enumerate() {
        match quote {
            Some(b'"') if escaped => escaped = false,
            Some(b'"') if byte == b'\\' => escaped = true,
            Some(q) if byte == q => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None if byte == b'#' => return i,
            None => {}
        }
    }
    line.len()
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn substitute_code(
    code: &str,
    line: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), MissingVariable> {
    let mut rest = code;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(after_escape) = after.strip_prefix('$') {
            out.push('$');
            rest = after_escape;
        } else if let Some(braced) = after.strip_prefix('{') {
            let Some(close) = braced.find('}') else {
                out.push('$');
                rest = after;
                continue;
            };
            let expression = &braced[..close];
            let original = &rest[dollar..dollar + 2 + close + 1];
            out.push_str(&expand(expression, original, line, lookup)?);
            rest = &braced[close + 1..];
        } else if after.starts_with(is_name_start) {
            let len = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
            let name = &after[..len];
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => {
                    out.push('$');
                    out.push_str(name);
                }
            }
            rest = &after[len..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(())
}

/// Expands the inside of `${...}`; `original` is the whole pattern, kept when nothing applies.
fn expand(
    expression: &str,
    original: &str,
    line: usize,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<String, MissingVariable> {
    let name_len = expression
        .find(|c| !is_name_char(c))
        .unwrap_or(expression.len());
    let (name, operator) = expression.split_at(name_len);
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Ok(original.to_owned());
    }
    let value = lookup(name);
    let missing = |message: &str| MissingVariable {
        line,
        name: name.to_owned(),
        message: message.to_owned(),
    };
    let result = if operator.is_empty() {
        value.unwrap_or_else(|| original.to_owned())
    } else if let Some(default) = operator.strip_prefix(":-") {
        value
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    } else if let Some(default) = operator.strip_prefix('-') {
        value.unwrap_or_else(|| default.to_owned())
    } else if let Some(message) = operator.strip_prefix(":?") {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing(message))?
    } else if let Some(message) = operator.strip_prefix('?') {
        value.ok_or_else(|| missing(message))?
    } else {
        original.to_owned()
    };
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("pod-1".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("9092".into()),
            _ => None,
        }
    }

    #[test]
    fn dollar_and_braced_forms_are_replaced() {
        let text = "url = \"http://$HOST:${PORT}/write\"\n";
        assert_eq!(
            substitute(text, env).unwrap(),
            "url = \"http://pod-1:9092/write\"\n"
        );
    }

    #[test]
    fn defaults_follow_shell_rules() {
        let text = "a=\"${EMPTY:-x}\" b=\"${EMPTY-x}\" c=\"${UNSET-y}\" d=\"${UNSET:-z}\"";
        assert_eq!(
            substitute(text, env).unwrap(),
            "a=\"x\" b=\"\" c=\"y\" d=\"z\""
        );
    }

    #[test]
    fn unset_variables_without_default_are_left_as_written() {
        assert_eq!(
            substitute("a = \"$UNSET ${UNSET}\"", env).unwrap(),
            "a = \"$UNSET ${UNSET}\""
        );
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        let error = substitute("\n\ntoken = \"${TOKEN:?set the token}\"", env).unwrap_err();
        assert_eq!(
            error,
            MissingVariable {
                line: 3,
                name: "TOKEN".into(),
                message: "set the token".into()
            }
        );
        assert!(substitute("x = \"${EMPTY?no}\"", env).is_ok());
        assert!(substitute("x = \"${EMPTY:?no}\"", env).is_err());
    }

    #[test]
    fn comments_and_escaped_dollars_are_kept() {
        let text = "price = \"$$5\" # costs $HOST ${TOKEN:?never evaluated}\n";
        assert_eq!(
            substitute(text, env).unwrap(),
            "price = \"$5\" # costs $HOST ${TOKEN:?never evaluated}\n"
        );
        // A '#' inside a string is not a comment.
        assert_eq!(
            substitute("tag = \"#$HOST\"", env).unwrap(),
            "tag = \"#pod-1\""
        );
    }

    #[test]
    fn malformed_patterns_pass_through() {
        for text in ["$", "${", "${}", "${1X}", "$1", "a$-b"] {
            assert_eq!(substitute(text, env).unwrap(), text);
        }
    }

    proptest::proptest! {
        #[test]
        fn no_text_makes_it_panic(text in "\\PC{0,64}") {
            let _ = substitute(&text, env);
        }
    }
}
