//! Label selectors: the string form the API server prints in `Scale.status.selector` and parses
//! from `?labelSelector=` (`k8s.io/apimachinery/pkg/labels`).

use serde_json::Value;

/// A selector string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement {term:?}: {reason}")]
pub struct SelectorError {
    /// The offending term.
    pub term: String,
    /// Why.
    pub reason: &'static str,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses `a=b,c!=d,e in (f,g),!h`.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let mut out = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            out.push(parse_term(term)?);
        }
        Ok(Selector(out))
    }

    /// Whether the labels object (`metadata.labels`, possibly absent) satisfies every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or(""));
    parts
}

fn parse_term(term: &str) -> Result<Requirement, SelectorError> {
    let err = |reason| SelectorError {
        term: term.to_string(),
        reason,
    };
    let valid_key = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    };
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) {
            Ok(Requirement::DoesNotExist(key.to_string()))
        } else {
            Err(err("invalid label key"))
        };
    }
    if let Some((k, v)) = term.split_once("!=") {
        return key_value(k, v, &valid_key, &err).map(|(k, v)| Requirement::NotEquals(k, v));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return key_value(k, v, &valid_key, &err).map(|(k, v)| Requirement::Equals(k, v));
    }
    for (word, not) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = term.split_once(word) {
            let k = k.trim();
            let values = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| err("set must be in parentheses"))?;
            if !valid_key(k) {
                return Err(err("invalid label key"));
            }
            let vs = values.split(',').map(|v| v.trim().to_string()).collect();
            return Ok(if not {
                Requirement::NotIn(k.to_string(), vs)
            } else {
                Requirement::In(k.to_string(), vs)
            });
        }
    }
    if valid_key(term) {
        Ok(Requirement::Exists(term.to_string()))
    } else {
        Err(err("invalid label key"))
    }
}

fn key_value(
    k: &str,
    v: &str,
    valid_key: &dyn Fn(&str) -> bool,
    err: &dyn Fn(&'static str) -> SelectorError,
) -> Result<(String, String), SelectorError> {
    let k = k.trim();
    if !valid_key(k) {
        return Err(err("invalid label key"));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

/// A field selector (`involvedObject.name=app,type!=Normal`): each term compares the string form
/// of the field at that dotted path (missing fields read as empty). The API server allows only
/// some fields per resource; the stand-in allows any path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `a.b=c`, `a.b==c`, `a.b!=c` terms separated by commas.
    pub fn parse(text: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, true, v)
            } else {
                return Err(SelectorError {
                    term: term.to_string(),
                    reason: "expected field=value or field!=value",
                });
            };
            let field = field.trim();
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(SelectorError {
                    term: term.to_string(),
                    reason: "invalid field path",
                });
            }
            let pointer = format!("/{}", field.replace('.', "/"));
            terms.push((pointer, equal, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    /// The dotted field paths the terms compare, in order.
    pub fn fields(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(pointer, _, _)| pointer.trim_start_matches('/').replace('/', "."))
            .collect()
    }

    /// The name an equality term on `metadata.name` asks for.
    pub fn name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, equal, _)| p == "/metadata/name" && *equal)
            .map(|(_, _, v)| v.as_str())
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(pointer, equal, want)| {
            let have = match object.pointer(pointer) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (have == *want) == *equal
        })
    }
}

/// The string form of an apps/v1 `LabelSelector` (`matchLabels`, `matchExpressions`), sorted by
/// key as `labels.Selector.String()` prints it; also accepts the plain map selector of a
/// ReplicationController.
pub fn selector_string(selector: Option<&Value>) -> String {
    let Some(Value::Object(sel)) = selector else {
        return String::new();
    };
    let mut terms: Vec<(String, String)> = Vec::new();
    let structured = sel.contains_key("matchLabels") || sel.contains_key("matchExpressions");
    let labels = if structured {
        sel.get("matchLabels").and_then(Value::as_object)
    } else {
        Some(sel)
    };
    for (k, v) in labels.into_iter().flatten() {
        terms.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let text = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        terms.push((key.to_string(), text));
    }
    terms.sort();
    terms
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn match_labels_print_sorted_by_key() {
        let sel = json!({"matchLabels": {"tier": "web", "app": "app"}});
        assert_eq!(selector_string(Some(&sel)), "app=app,tier=web");
    }

    #[test]
    fn match_expressions_print_like_the_api_server() {
        let sel = json!({"matchLabels": {"app": "a"}, "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "zz", "operator": "DoesNotExist"},
            {"key": "b", "operator": "Exists"}
        ]});
        assert_eq!(selector_string(Some(&sel)), "app=a,b,env in (dev,prod),!zz");
    }

    #[test]
    fn a_replication_controller_map_selector_prints_as_a_set() {
        assert_eq!(selector_string(Some(&json!({"app": "x"}))), "app=x");
        assert_eq!(selector_string(None), "");
    }

    #[test]
    fn field_selectors_compare_any_dotted_path() {
        let event = json!({"metadata": {"name": "e1", "namespace": "default"},
            "involvedObject": {"kind": "Deployment", "name": "app"}, "type": "Normal", "count": 2});
        let ok = |s: &str| FieldSelector::parse(s).map(|f| f.matches(&event));
        assert_eq!(
            ok("involvedObject.name=app,involvedObject.kind=Deployment"),
            Ok(true)
        );
        assert_eq!(ok("type!=Warning"), Ok(true));
        assert_eq!(ok("type==Warning"), Ok(false));
        assert_eq!(ok("count=2"), Ok(true));
        assert_eq!(ok("missing.field="), Ok(true));
        assert_eq!(ok(""), Ok(true));
        assert!(FieldSelector::parse("novalue").is_err());
        assert!(FieldSelector::parse("a..b=c").is_err());
        assert_eq!(
            FieldSelector::parse("metadata.name=app")
                .ok()
                .as_ref()
                .and_then(FieldSelector::name),
            Some("app")
        );
    }

    #[test]
    fn parsed_selectors_match_labels() {
        let labels = json!({"app": "app", "env": "prod"});
        let ok = |s: &str| Selector::parse(s).map(|sel| sel.matches(Some(&labels)));
        assert_eq!(ok("app=app"), Ok(true));
        assert_eq!(ok("app==app,env!=dev"), Ok(true));
        assert_eq!(ok("env in (dev, prod)"), Ok(true));
        assert_eq!(ok("env notin (prod)"), Ok(false));
        assert_eq!(ok("app,!missing"), Ok(true));
        assert_eq!(ok("missing"), Ok(false));
        assert_eq!(ok(""), Ok(true));
        assert!(Selector::parse("a b").is_err());
        assert!(Selector::parse("x in a").is_err());
    }
}
