//! Label and field selectors of LIST requests (`labelSelector=app=web,tier notin (db)`,
//! `fieldSelector=metadata.name=x`), parsed and matched as the real server does.

use std::collections::BTreeSet;

use serde_json::Value;

use super::status::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    /// `key=v`, `key==v`, `key in (a,b)`.
    In(String, BTreeSet<String>),
    /// `key!=v`, `key notin (a,b)`: also true when the label is absent.
    NotIn(String, BTreeSet<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse requirement: found '{part}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            })?);
        }
        Ok(Self(requirements))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::In(key, values) => label(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => label(key).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::NotExists(key) => label(key).is_none(),
        })
    }
}

/// Splits on commas that are not inside a `( ... )` value set.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn value_set(text: &str) -> Option<BTreeSet<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    let values: BTreeSet<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
    values.iter().all(|v| valid_value(v)).then_some(values)
}

fn parse_requirement(part: &str) -> Option<Requirement> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        return valid_key(key).then(|| Requirement::NotExists(key.to_owned()));
    }
    for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = part.split_once(op) {
            let (key, value) = (key.trim(), value.trim());
            if !valid_key(key) || !valid_value(value) {
                return None;
            }
            let set = BTreeSet::from([value.to_owned()]);
            return Some(if negated {
                Requirement::NotIn(key.to_owned(), set)
            } else {
                Requirement::In(key.to_owned(), set)
            });
        }
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next()?.trim();
    let rest = words.next().map(str::trim).unwrap_or_default();
    if !valid_key(key) {
        return None;
    }
    if rest.is_empty() {
        return Some(Requirement::Exists(key.to_owned()));
    }
    if let Some(set) = rest.strip_prefix("notin") {
        return Some(Requirement::NotIn(key.to_owned(), value_set(set)?));
    }
    if let Some(set) = rest.strip_prefix("in") {
        return Some(Requirement::In(key.to_owned(), value_set(set)?));
    }
    None
}

/// A parsed field selector: `(field, wanted value, negated)` terms, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter for objects of `resource`, refusing the
    /// fields the real server does not index for it.
    pub fn parse(text: &str, resource: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value, negated) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let supported = matches!(field, "metadata.name" | "metadata.namespace")
                || (resource == "secrets" && field == "type")
                || (resource == "events"
                    && (field.starts_with("involvedObject.")
                        || matches!(field, "reason" | "type" | "reportingComponent")))
                || (resource == "pods"
                    && matches!(
                        field,
                        "spec.serviceAccountName" | "spec.nodeName" | "status.phase"
                    ));
            if !supported {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_owned(), value.trim().to_owned(), negated));
        }
        Ok(Self(terms))
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, wanted, negated)| {
            let actual = field
                .split('.')
                .try_fold(object, |v, key| v.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default();
            (actual == wanted) != *negated
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({ "metadata": { "name": "a", "namespace": "ns", "labels": labels }, "type": "Opaque" })
    }

    #[test]
    fn equality_and_inequality() {
        let web = obj(json!({ "app": "web", "tier": "front" }));
        let bare = obj(json!({}));
        for (text, on_web, on_bare) in [
            ("app=web", true, false),
            ("app==web", true, false),
            ("app!=web", false, true),
            ("app=db", false, false),
            ("app=web,tier=front", true, false),
            ("app=web,tier=back", false, false),
            ("", true, true),
        ] {
            let sel = LabelSelector::parse(text).expect("valid selector");
            assert_eq!(sel.matches(&web), on_web, "{text} on web");
            assert_eq!(sel.matches(&bare), on_bare, "{text} on bare");
        }
    }

    #[test]
    fn set_and_existence() {
        let web = obj(json!({ "app": "web", "tier": "front" }));
        let bare = obj(json!({}));
        for (text, on_web, on_bare) in [
            ("app in (web, db)", true, false),
            ("app in (db)", false, false),
            ("app notin (db,cache)", true, true),
            ("app notin (web)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("app in (web,db),!missing,tier", true, false),
        ] {
            let sel = LabelSelector::parse(text).expect("valid selector");
            assert_eq!(sel.matches(&web), on_web, "{text} on web");
            assert_eq!(sel.matches(&bare), on_bare, "{text} on bare");
        }
    }

    #[test]
    fn malformed_selectors_are_bad_requests() {
        for text in ["app in web", "a b c", "app=(x", "!"] {
            let err = LabelSelector::parse(text).expect_err(text);
            assert_eq!(err.code, 400, "{text}");
        }
    }

    #[test]
    fn field_selectors() {
        let secret = obj(json!({}));
        let sel = FieldSelector::parse("metadata.name=a,type=Opaque", "secrets").expect("valid");
        assert!(sel.matches(&secret));
        let sel = FieldSelector::parse("metadata.namespace!=ns", "secrets").expect("valid");
        assert!(!sel.matches(&secret));
        let err = FieldSelector::parse("type=Opaque", "serviceaccounts").expect_err("unsupported");
        assert_eq!(err.message, "field label not supported: type");
    }
}
