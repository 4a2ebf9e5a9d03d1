//! Name rules shared by plan validation and providers (Kubernetes object names and labels).

/// Why a name is invalid, as a sentence fragment, or `None` if it is valid.
///
/// RFC 1123 label: at most 63 characters, lowercase alphanumerics or `-`, starting and
/// ending with an alphanumeric. Namespaces use this rule.
pub fn dns1123_label(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > 63 {
        return Some(format!("must be at most 63 characters (is {})", name.len()));
    }
    label_chars(name)
}

/// RFC 1123 subdomain: at most 253 characters, dot-separated labels of lowercase
/// alphanumerics and `-`. ServiceAccount names use this rule.
pub fn dns1123_subdomain(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > 253 {
        return Some(format!(
            "must be at most 253 characters (is {})",
            name.len()
        ));
    }
    for part in name.split('.') {
        if part.is_empty() {
            return Some("must not contain empty dot-separated parts".into());
        }
        if let Some(why) = label_chars(part) {
            return Some(why);
        }
    }
    None
}

fn label_chars(s: &str) -> Option<String> {
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "must consist of lowercase letters, digits and '-' (found {c:?})"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("must start and end with a letter or digit".into());
    }
    None
}

/// A label or annotation key: an optional DNS-1123 subdomain prefix of at most 253
/// characters and `/`, then a name of at most 63 characters of alphanumerics, `-`, `_`,
/// `.`, starting and ending with an alphanumeric.
pub fn qualified_key(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && let Some(why) = dns1123_subdomain(p)
    {
        return Some(format!("prefix {p:?} {why}"));
    }
    if name.is_empty() {
        return Some("name part must not be empty".into());
    }
    if name.len() > 63 {
        return Some(format!(
            "name part must be at most 63 characters (is {})",
            name.len()
        ));
    }
    label_value_chars(name)
}

/// A label value: empty, or at most 63 characters of alphanumerics, `-`, `_`, `.`,
/// starting and ending with an alphanumeric.
pub fn label_value(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.len() > 63 {
        return Some(format!(
            "must be at most 63 characters (is {})",
            value.len()
        ));
    }
    label_value_chars(value)
}

fn label_value_chars(s: &str) -> Option<String> {
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "must consist of letters, digits, '-', '_' and '.' (found {c:?})"
        ));
    }
    let first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let last = s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first || !last {
        return Some("must start and end with a letter or digit".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(dns1123_label("production").is_none());
        assert!(dns1123_label("a-1").is_none());
        assert!(dns1123_label("Prod").is_some());
        assert!(dns1123_label("-a").is_some());
        assert!(dns1123_label("a_b").is_some());
        assert!(dns1123_label(&"a".repeat(64)).is_some());
        assert!(dns1123_label(&"a".repeat(63)).is_none());
    }

    #[test]
    fn subdomains() {
        assert!(dns1123_subdomain("orders.v1").is_none());
        assert!(dns1123_subdomain("orders..v1").is_some());
        assert!(dns1123_subdomain("Orders").is_some());
    }

    #[test]
    fn keys_and_values() {
        assert!(qualified_key("app.kubernetes.io/name").is_none());
        assert!(qualified_key("team").is_none());
        assert!(qualified_key("Team_A.b").is_none());
        assert!(qualified_key("bad/").is_some());
        assert!(qualified_key("UPPER.io/x").is_some());
        assert!(label_value("").is_none());
        assert!(label_value("v1.2_3").is_none());
        assert!(label_value("-x").is_some());
        assert!(label_value("a b").is_some());
    }
}
