//! Credentials inside URLs (`http://user:password@host`): the config refuses them (they would
//! not be sent, and they would end up in tags and logs), and [`redact`] hides them wherever a
//! URL, or a message quoting one, is shown. Pure.

use std::borrow::Cow;

/// What replaces the user information of a URL that is shown.
pub const REDACTED: &str = "***";

/// Whether `url` carries user information (`user@` or `user:password@` before the host).
pub fn has_userinfo(url: &str) -> bool {
    userinfo_spans(url).next().is_some()
}

/// `text` with the user information of every URL in it replaced by [`REDACTED`]
/// (`http://alice:s3cret@h:9092/x` becomes `http://***@h:9092/x`). Text without any is borrowed.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut spans = userinfo_spans(text).peekable();
    if spans.peek().is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in spans {
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The byte ranges of user information in `text`: what lies between `://` (or the start of the
/// text when it has no scheme) and the last `@` of the authority that follows.
fn userinfo_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut starts: Vec<usize> = text.match_indices("://").map(|(i, _)| i + 3).collect();
    if starts.is_empty() {
        starts.push(0);
    }
    starts.into_iter().filter_map(move |start| {
        let rest = &text[start..];
        let authority_len = rest
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`') || c.is_whitespace()
            })
            .unwrap_or(rest.len());
        let at = rest[..authority_len].rfind('@')?;
        Some((start, start + at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_information_is_found_and_hidden() {
        let cases = [
            ("http://alice:s3cret@host:9092", "http://***@host:9092"),
            ("https://token@h/write?db=x", "https://***@h/write?db=x"),
            ("alice:s3cret@host:9092/x", "***@host:9092/x"),
            (
                "a http://u:p@h/ and \"https://v:q@i\" too",
                "a http://***@h/ and \"https://***@i\" too",
            ),
            (
                "http://h:1/path@not-userinfo",
                "http://h:1/path@not-userinfo",
            ),
            ("http://h:1/x?mail=a@b", "http://h:1/x?mail=a@b"),
            ("no url here", "no url here"),
            ("http://p:a@ss@host", "http://***@host"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
            assert_eq!(has_userinfo(url), url != shown, "{url}");
        }
    }

    proptest::proptest! {
        #[test]
        fn redaction_never_panics_and_removes_every_password(
            prefix in "\\PC{0,12}",
            password in "[a-z0-9]{6,12}",
            suffix in "\\PC{0,12}",
        ) {
            let text = format!("{prefix} http://user:{password}@host/{suffix}");
            let shown = redact(&text);
            let url_part = &shown[shown.find(" http://").unwrap_or(0)..];
            proptest::prop_assert!(url_part.starts_with(" http://***@host/"), "{}", shown);
        }
    }
}
