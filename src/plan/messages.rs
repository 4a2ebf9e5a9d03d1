//! Words for plan problems: serde's deserialization errors in the plan's own terms (never
//! a Rust type name such as `u32` or `struct AwsBlock`), and "did you mean" suggestions
//! for misspelt keys, values and cluster names.

/// A serde error message as `(message, help)` in the words of a TOML plan.
pub fn serde_error(message: &str) -> (String, Option<String>) {
    let message = message.trim_end();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (field, expected) = split_expected(rest);
        return (
            format!("unknown field {field}"),
            suggestion(unquote(field), &choices(expected)),
        );
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (value, expected) = split_expected(rest);
        return (
            format!("unknown value {value}"),
            suggestion(unquote(value), &choices(expected)),
        );
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = split_expected(rest);
            let found = found_words(found);
            return match expected {
                Some(expected) => (
                    format!("expected {}, found {found}", expected_words(expected)),
                    None,
                ),
                None => (format!("unexpected {found}"), None),
            };
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        let (length, expected) = split_expected(rest);
        return (
            format!(
                "expected {}, found {length} items",
                expected.map_or("another length".to_owned(), expected_words)
            ),
            None,
        );
    }
    if message.starts_with("data did not match any variant of untagged enum InlinePolicy") {
        return (
            "expected a policy document: a JSON string, or { file = \"PATH\" }".to_owned(),
            None,
        );
    }
    if message.starts_with("data did not match any variant of untagged enum") {
        return (
            "this value has none of the forms the key accepts".to_owned(),
            Some("schema/plan.schema.json describes every key".to_owned()),
        );
    }
    if message == "wanted string or table" {
        return ("expected a string".to_owned(), None);
    }
    (message.to_owned(), None)
}

/// `"`x`, expected Y"` → (`` `x` ``, Some(Y)).
fn split_expected(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once(", expected ") {
        Some((head, tail)) => (head, Some(tail)),
        None => (rest, None),
    }
}

fn unquote(s: &str) -> &str {
    s.trim_matches('`')
}

/// The names in serde's "one of `a`, `b`" or "`a` or `b`" lists.
fn choices(expected: Option<&str>) -> Vec<String> {
    let Some(expected) = expected else {
        return Vec::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// "did you mean `x`?" when one choice is close, else the list of choices.
fn suggestion(word: &str, choices: &[String]) -> Option<String> {
    if choices.is_empty() {
        return None;
    }
    let candidates: Vec<&str> = choices.iter().map(String::as_str).collect();
    match did_you_mean(word, &candidates) {
        Some(best) => Some(format!("did you mean `{best}`?")),
        None => Some(format!(
            "expected {}",
            choices
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// serde's description of what it got, in TOML words.
fn found_words(found: &str) -> String {
    if let Some(s) = found.strip_prefix("string ") {
        return format!("the string {s}");
    }
    for prefix in ["integer ", "floating point "] {
        if let Some(n) = found.strip_prefix(prefix) {
            return format!("the number {}", n.trim_matches('`'));
        }
    }
    if let Some(b) = found.strip_prefix("boolean ") {
        return b.to_owned();
    }
    match found {
        "sequence" => "an array".to_owned(),
        "map" => "a table".to_owned(),
        other => other.to_owned(),
    }
}

/// serde's description of what it wanted (often a Rust type), in TOML words.
fn expected_words(expected: &str) -> String {
    let expected = expected.trim();
    let words = match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a positive whole number",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a sequence" => "an array",
        "a map" => "a table",
        "a borrowed string" | "a string" | "a character" | "a char" => "a string",
        "a boolean" | "a bool" => "`true` or `false`",
        _ if expected.starts_with("struct ") => "a table",
        _ if expected.starts_with("enum ") => "one of the values this key accepts",
        _ if expected.starts_with("one of ") || expected.contains('`') => {
            return format!("one of {}", expected.trim_start_matches("one of "));
        }
        other => other,
    };
    words.to_owned()
}

/// The candidate `word` most likely misspells: within a small edit distance (a third of
/// the word, at least one), or a word of four letters or more that one of them starts
/// with. `None` when nothing is close: a far-fetched guess is worse than none.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let best = candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    if let Some((_, c)) = best {
        return Some(c);
    }
    if word.chars().count() >= 4 {
        let mut prefixed: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|c| c.starts_with(word))
            .collect();
        prefixed.sort_by_key(|c| c.len());
        return prefixed.first().copied();
    }
    None
}

/// Levenshtein distance, counting a swap of two neighbours as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_made_only_when_close() {
        let keys = ["cluster", "namespace", "service_account", "automount_token"];
        assert_eq!(
            did_you_mean("service_acount", &keys),
            Some("service_account")
        );
        assert_eq!(did_you_mean("namesapce", &keys), Some("namespace"));
        assert_eq!(did_you_mean("automount", &keys), Some("automount_token"));
        assert_eq!(did_you_mean("owner", &keys), None);
        assert_eq!(did_you_mean("x", &keys), None);
        assert_eq!(did_you_mean("prd", &["prod", "staging"]), Some("prod"));
        assert_eq!(did_you_mean("dev", &["prod", "staging"]), None);
        assert_eq!(edit_distance("kind", "kind"), 0);
        assert_eq!(edit_distance("knid", "kind"), 1);
    }

    #[test]
    fn serde_messages_speak_toml() {
        let cases = [
            (
                "invalid value: integer `-5`, expected u32",
                "expected a positive whole number, found the number -5",
                None,
            ),
            (
                "invalid type: string \"big\", expected usize",
                "expected a positive whole number, found the string \"big\"",
                None,
            ),
            (
                "invalid type: sequence, expected a map",
                "expected a table, found an array",
                None,
            ),
            (
                "invalid type: string \"role\", expected struct AwsBlock",
                "expected a table, found the string \"role\"",
                None,
            ),
            (
                "invalid type: integer `1`, expected a boolean",
                "expected `true` or `false`, found the number 1",
                None,
            ),
            (
                "unknown variant `gkee`, expected one of `gke`, `eks`, `aks`, `generic`",
                "unknown value `gkee`",
                Some("did you mean `gke`?"),
            ),
            (
                "unknown field `zone`, expected one of `kind`, `context`",
                "unknown field `zone`",
                Some("expected `kind`, `context`"),
            ),
            (
                "unknown variant `pod_identity`, expected `irsa` or `pod-identity`",
                "unknown value `pod_identity`",
                Some("did you mean `pod-identity`?"),
            ),
        ];
        for (raw, message, help) in cases {
            let (m, h) = serde_error(raw);
            assert_eq!(m, message, "{raw}");
            assert_eq!(h.as_deref(), help, "{raw}");
        }
    }
}
