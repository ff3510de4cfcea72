//! Telegraf's metric filters: `namepass`/`namedrop`, `tagpass`/`tagdrop`, `fieldpass`/`fielddrop`,
//! `taginclude`/`tagexclude`, with Telegraf's glob syntax.
//!
//! Globs match a whole string: `*` any run of characters, `?` one character, `[abc]`, `[a-z]`,
//! `[!abc]` a class, `{a,b*}` alternatives, `\` escapes the next character. A list of patterns
//! matches when any one does. As in Telegraf, `namepass` and `tagpass` decide on the metric as
//! the input made it (before `name_override`, plugin tags and global tags); the field and tag
//! removals apply afterwards.

/// Why a pattern could not be compiled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GlobError {
    #[error("unclosed '[' in pattern {0:?}")]
    UnclosedClass(String),
    #[error("unclosed '{{' in pattern {0:?}")]
    UnclosedAlternatives(String),
    #[error("pattern {0:?} expands to too many alternatives")]
    TooManyAlternatives(String),
}

/// The most alternatives one pattern may expand to (`{a,b}{c,d}` is 4).
const MAX_ALTERNATIVES: usize = 256;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    AnyChar,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled list of globs; matches when any of them matches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GlobSet {
    /// Patterns without any special character, compared as plain strings.
    exact: Vec<String>,
    patterns: Vec<Vec<Token>>,
}

impl GlobSet {
    /// Compiles `patterns`.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, GlobError> {
        let mut set = Self::default();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            for expanded in expand_alternatives(pattern)? {
                let tokens = tokenize(&expanded, pattern)?;
                if let Some(literal) = as_literal(&tokens) {
                    set.exact.push(literal);
                } else {
                    set.patterns.push(tokens);
                }
            }
        }
        Ok(set)
    }

    /// Whether `text` matches any pattern.
    pub fn is_match(&self, text: &str) -> bool {
        self.exact.iter().any(|e| e == text) || self.patterns.iter().any(|p| matches(p, text))
    }
}

fn as_literal(tokens: &[Token]) -> Option<String> {
    tokens
        .iter()
        .map(|t| match t {
            Token::Literal(c) => Some(*c),
            _ => None,
        })
        .collect()
}

/// Expands `{a,b}` groups (nesting allowed) into plain globs.
fn expand_alternatives(pattern: &str) -> Result<Vec<String>, GlobError> {
    // Find the first unescaped '{' and its matching '}'.
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut open = None;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' => {
                // Braces inside a class are literal: skip to the class end.
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
            }
            '{' => {
                open = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let Some(open) = open else {
        return Ok(vec![pattern.to_owned()]);
    };
    let mut depth = 0;
    let mut splits = vec![open];
    let mut close = None;
    let mut j = open + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 1,
            '{' => depth += 1,
            '}' if depth == 0 => {
                close = Some(j);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => splits.push(j),
            _ => {}
        }
        j += 1;
    }
    let close = close.ok_or_else(|| GlobError::UnclosedAlternatives(pattern.to_owned()))?;
    splits.push(close);
    let prefix: String = chars[..open].iter().collect();
    let suffix: String = chars[close + 1..].iter().collect();
    let mut out = Vec::new();
    for window in splits.windows(2) {
        let alternative: String = chars[window[0] + 1..window[1]].iter().collect();
        for expanded in expand_alternatives(&format!("{prefix}{alternative}{suffix}"))? {
            if out.len() == MAX_ALTERNATIVES {
                return Err(GlobError::TooManyAlternatives(pattern.to_owned()));
            }
            out.push(expanded);
        }
    }
    Ok(out)
}

fn tokenize(glob: &str, original: &str) -> Result<Vec<Token>, GlobError> {
    let mut tokens = Vec::new();
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => {
                if tokens.last() == Some(&Token::AnyRun) {
                    continue;
                }
                Token::AnyRun
            }
            '?' => Token::AnyChar,
            '\\' => Token::Literal(chars.next().unwrap_or('\\')),
            '[' => {
                let mut negated = false;
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(c) = chars.next() else {
                        return Err(GlobError::UnclosedClass(original.to_owned()));
                    };
                    match c {
                        '!' if first => negated = true,
                        ']' if !first || negated => break,
                        c => {
                            let mut lookahead = chars.clone();
                            if lookahead.next() == Some('-')
                                && let Some(end) = lookahead.next().filter(|&e| e != ']')
                            {
                                chars = lookahead;
                                ranges.push((c, end));
                            } else {
                                ranges.push((c, c));
                            }
                        }
                    }
                    first = false;
                }
                Token::Class { negated, ranges }
            }
            c => Token::Literal(c),
        });
    }
    Ok(tokens)
}

/// Glob matching with single-star backtracking: linear in practice, never exponential.
fn matches(tokens: &[Token], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < text.len() {
        match tokens.get(t) {
            Some(Token::AnyRun) => {
                star = Some((t, s));
                t += 1;
                continue;
            }
            Some(token) if token_matches(token, text[s]) => {
                t += 1;
                s += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((star_t, star_s)) => {
                t = star_t + 1;
                s = star_s + 1;
                star = Some((star_t, star_s + 1));
            }
            None => return false,
        }
    }
    tokens[t.min(tokens.len())..]
        .iter()
        .all(|token| *token == Token::AnyRun)
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyChar => true,
        Token::AnyRun => true,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// The filters of one plugin, compiled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricFilter {
    pub namepass: Option<GlobSet>,
    pub namedrop: Option<GlobSet>,
    /// Tag key -> value globs: the metric passes if any listed tag's value matches.
    pub tagpass: Vec<(String, GlobSet)>,
    /// Tag key -> value globs: the metric is dropped if any listed tag's value matches.
    pub tagdrop: Vec<(String, GlobSet)>,
    pub fieldpass: Option<GlobSet>,
    pub fielddrop: Option<GlobSet>,
    pub taginclude: Option<GlobSet>,
    pub tagexclude: Option<GlobSet>,
}

impl MetricFilter {
    /// Whether the metric named `name` with `tags` is kept (namepass/namedrop, tagpass/tagdrop).
    pub fn select<'t>(
        &self,
        name: &str,
        tags: impl Iterator<Item = (&'t str, &'t str)> + Clone,
    ) -> bool {
        if self.namepass.as_ref().is_some_and(|g| !g.is_match(name))
            || self.namedrop.as_ref().is_some_and(|g| g.is_match(name))
        {
            return false;
        }
        let any_tag_matches = |rules: &[(String, GlobSet)]| {
            tags.clone().any(|(key, value)| {
                rules
                    .iter()
                    .any(|(rule_key, globs)| rule_key == key && globs.is_match(value))
            })
        };
        if !self.tagpass.is_empty() && !any_tag_matches(&self.tagpass) {
            return false;
        }
        self.tagdrop.is_empty() || !any_tag_matches(&self.tagdrop)
    }

    /// Whether the field `key` survives fieldpass/fielddrop.
    pub fn keep_field(&self, key: &str) -> bool {
        self.fieldpass.as_ref().is_none_or(|g| g.is_match(key))
            && !self.fielddrop.as_ref().is_some_and(|g| g.is_match(key))
    }

    /// Whether the tag `key` survives taginclude/tagexclude.
    pub fn keep_tag(&self, key: &str) -> bool {
        self.taginclude.as_ref().is_none_or(|g| g.is_match(key))
            && !self.tagexclude.as_ref().is_some_and(|g| g.is_match(key))
    }

    /// Whether any field or tag removal is configured (the converter skips the checks if not).
    pub fn modifies(&self) -> bool {
        self.fieldpass.is_some()
            || self.fielddrop.is_some()
            || self.taginclude.is_some()
            || self.tagexclude.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> GlobSet {
        GlobSet::new(patterns).unwrap()
    }

    #[test]
    fn plain_names_match_exactly() {
        let names = set(&["requests"]);
        assert!(names.is_match("requests"));
        assert!(!names.is_match("requests_total"));
        assert!(!names.is_match("request"));
    }

    #[test]
    fn wildcards_classes_and_alternatives_follow_telegraf() {
        let cases: &[(&str, &str, bool)] = &[
            ("cpu*", "cpu", true),
            ("cpu*", "cpu_usage", true),
            ("*usage*", "cpu_usage_idle", true),
            ("c?u", "cpu", true),
            ("c?u", "cu", false),
            ("node_[a-c]*", "node_boot", true),
            ("node_[!a-c]*", "node_boot", false),
            ("node_[!a-c]*", "node_disk", true),
            ("{cpu,mem}_*", "mem_free", true),
            ("{cpu,mem}_*", "disk_free", false),
            ("a{b,c{d,e}}f", "acef", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("*", "", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                set(&[pattern]).is_match(text),
                expected,
                "{pattern} vs {text}"
            );
        }
    }

    #[test]
    fn broken_patterns_are_errors() {
        assert!(matches!(
            GlobSet::new(&["a[bc"]),
            Err(GlobError::UnclosedClass(_))
        ));
        assert!(matches!(
            GlobSet::new(&["a{b,c"]),
            Err(GlobError::UnclosedAlternatives(_))
        ));
        let explosive = "{a,b}".repeat(10);
        assert!(matches!(
            GlobSet::new(&[explosive]),
            Err(GlobError::TooManyAlternatives(_))
        ));
    }

    #[test]
    fn namepass_and_namedrop_combine() {
        let filter = MetricFilter {
            namepass: Some(set(&["node_*"])),
            namedrop: Some(set(&["node_scrape_*"])),
            ..Default::default()
        };
        let none = std::iter::empty();
        assert!(filter.select("node_load1", none.clone()));
        assert!(!filter.select("node_scrape_collector_success", none.clone()));
        assert!(!filter.select("go_goroutines", none));
    }

    #[test]
    fn tagpass_needs_one_matching_tag_and_tagdrop_removes_on_any() {
        let filter = MetricFilter {
            tagpass: vec![("cpu".into(), set(&["cpu0", "cpu1"]))],
            tagdrop: vec![("mode".into(), set(&["idle"]))],
            ..Default::default()
        };
        let tags = |pairs: &'static [(&'static str, &'static str)]| pairs.iter().copied();
        assert!(filter.select("m", tags(&[("cpu", "cpu1"), ("mode", "user")])));
        assert!(!filter.select("m", tags(&[("cpu", "cpu1"), ("mode", "idle")])));
        assert!(!filter.select("m", tags(&[("cpu", "cpu7")])));
        assert!(!filter.select("m", tags(&[])));
    }

    #[test]
    fn field_and_tag_removal() {
        let filter = MetricFilter {
            fieldpass: Some(set(&["counter", "gauge"])),
            fielddrop: Some(set(&["gauge"])),
            tagexclude: Some(set(&["url"])),
            ..Default::default()
        };
        assert!(filter.keep_field("counter"));
        assert!(!filter.keep_field("gauge"));
        assert!(!filter.keep_field("value"));
        assert!(filter.keep_tag("host"));
        assert!(!filter.keep_tag("url"));
        assert!(filter.modifies());
        assert!(!MetricFilter::default().modifies());
    }

    proptest::proptest! {
        #[test]
        fn no_pattern_or_text_makes_it_panic(pattern in "[a-c*?\\[\\]{},!\\\\-]{0,12}", text in "[a-c]{0,12}") {
            if let Ok(set) = GlobSet::new(&[pattern]) {
                let _ = set.is_match(&text);
            }
        }
    }
}
