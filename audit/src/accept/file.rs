//! The exceptions file (`wid audit --exceptions FILE`): accepted findings kept in the
//! repository, reviewed like code. TOML, one `[[accept]]` table per acceptance:
//!
//! ```toml
//! [[accept]]
//! check = "SA003"                 # or ["SA002", "SA003"]; ids or names, never a glob
//! cluster = "prod-*"              # optional; `*` globs allowed
//! namespace = "batch"             # optional; `*` globs allowed
//! kind = "CronJob"                # optional; exact
//! name = "nightly-*"              # optional; `*` globs allowed
//! reason = "needs the default SA until the 2027-03 migration; ticket OPS-123"
//! expires = 2027-03-31            # required: the last day the acceptance holds
//! ```
//!
//! Safety rules, each an error located by file, line and column: `reason` and `expires`
//! are required; an entry names a `namespace` or a `name` (a check is never accepted
//! everywhere at once); a glob has at least one character besides `*`; `kind` is one the
//! audit reports; unknown keys are errors. Parsing is pure: errors carry byte spans and the
//! CLI renders them with the plan diagnostics' carets.

use std::ops::Range;

use toml_edit::{Document, Item, Table, Value};

use super::{Acceptance, AcceptanceSource, Glob, Pattern, Rule, Selector};
use crate::checks::{checks, find};
use crate::date::Date;
use crate::model::SourceLocation;

/// One problem in an exceptions file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionsError {
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// The byte span it is about.
    pub span: Range<usize>,
    /// What to do about it.
    pub help: Option<String>,
}

impl ExceptionsError {
    fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        ExceptionsError {
            message: message.into(),
            span,
            help: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

const KEYS: &[&str] = &[
    "check",
    "cluster",
    "namespace",
    "kind",
    "name",
    "reason",
    "expires",
];

/// The kinds findings are reported on (Kubernetes objects and cloud identities).
pub const KINDS: &[&str] = &[
    "ClusterRoleBinding",
    "ConfigMap",
    "CronJob",
    "DaemonSet",
    "Deployment",
    "GCPServiceAccount",
    "IAMRole",
    "Job",
    "Pod",
    "ReplicaSet",
    "RoleBinding",
    "Secret",
    "ServiceAccount",
    "StatefulSet",
];

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

/// Parses an exceptions file read from `path`: every acceptance as rules (one per check),
/// or every problem found.
pub fn parse_exceptions(text: &str, path: &str) -> Result<Vec<Rule>, Vec<ExceptionsError>> {
    let doc = Document::parse(text.to_owned()).map_err(|e| {
        vec![ExceptionsError::new(
            e.span().unwrap_or(0..0),
            format!("invalid TOML: {}", e.message().trim_end()),
        )]
    })?;
    let root = doc.as_table();
    let mut errors = Vec::new();
    let whole = 0..text.len().min(1);
    for (key, _) in root.iter() {
        if key != "accept" {
            let span = root
                .key(key)
                .and_then(toml_edit::Key::span)
                .unwrap_or(whole.clone());
            errors.push(
                ExceptionsError::new(span, format!("unknown key `{key}`"))
                    .help("the file holds only [[accept]] tables"),
            );
        }
    }
    let mut rules = Vec::new();
    match root.get("accept") {
        None => {}
        Some(Item::ArrayOfTables(tables)) => {
            for table in tables.iter() {
                match entry(table, text, path) {
                    Ok(mut r) => rules.append(&mut r),
                    Err(mut e) => errors.append(&mut e),
                }
            }
        }
        Some(item) => errors.push(
            ExceptionsError::new(
                item.span().unwrap_or(whole),
                "`accept` must be [[accept]] tables",
            )
            .help("write each acceptance as its own [[accept]] table"),
        ),
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        errors.sort_by_key(|e| e.span.start);
        Err(errors)
    }
}

fn value_span(table: &Table, key: &str, fallback: &Range<usize>) -> Range<usize> {
    table
        .get(key)
        .and_then(Item::span)
        .or_else(|| table.key(key).and_then(toml_edit::Key::span))
        .unwrap_or_else(|| fallback.clone())
}

fn string(
    table: &Table,
    key: &str,
    at: &Range<usize>,
    errors: &mut Vec<ExceptionsError>,
) -> Option<String> {
    let item = table.get(key)?;
    match item.as_str() {
        Some(s) => Some(s.to_owned()),
        None => {
            errors.push(ExceptionsError::new(
                value_span(table, key, at),
                format!("`{key}` must be a string"),
            ));
            None
        }
    }
}

/// A name or namespace glob: letters, digits and `-._:/@*`, with something besides `*`.
fn glob(
    table: &Table,
    key: &str,
    at: &Range<usize>,
    errors: &mut Vec<ExceptionsError>,
) -> Option<Glob> {
    let text = string(table, key, at, errors)?;
    let span = value_span(table, key, at);
    if text.is_empty() || text.chars().all(|c| c == '*') {
        errors.push(
            ExceptionsError::new(span, format!("`{key}` must name something, not only `*`")).help(
                format!("leave `{key}` out to match any {key}, or narrow it, e.g. \"ci-*\""),
            ),
        );
        return None;
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._:/@*".contains(*c)))
    {
        errors.push(
            ExceptionsError::new(span, format!("`{key}` contains {bad:?}"))
                .help("names are matched literally; only `*` is a wildcard"),
        );
        return None;
    }
    Some(Glob::new(&text))
}

fn entry(table: &Table, text: &str, path: &str) -> Result<Vec<Rule>, Vec<ExceptionsError>> {
    // The `[[accept]]` header when the parser kept its span, else the first key.
    let first_key = table
        .iter()
        .next()
        .and_then(|(k, _)| table.key(k).and_then(toml_edit::Key::span));
    let header = table.span().or(first_key).unwrap_or(0..0);
    let at = header.clone();
    let mut errors = Vec::new();
    for (key, _) in table.iter() {
        if !KEYS.contains(&key) {
            let span = table
                .key(key)
                .and_then(toml_edit::Key::span)
                .unwrap_or(at.clone());
            errors.push(
                ExceptionsError::new(span, format!("unknown key `{key}`"))
                    .help(format!("an [[accept]] entry takes {}", KEYS.join(", "))),
            );
        }
    }
    let ids = check_ids(table, &header, &mut errors);
    let reason = match string(table, "reason", &at, &mut errors) {
        Some(r) if !r.trim().is_empty() => Some(r.trim().to_owned()),
        Some(_) => {
            errors.push(ExceptionsError::new(
                value_span(table, "reason", &at),
                "`reason` is empty",
            ));
            None
        }
        None if table.contains_key("reason") => None,
        None => {
            errors.push(
                ExceptionsError::new(header.clone(), "missing `reason`")
                    .help("say why the finding is accepted, e.g. reason = \"…; ticket OPS-123\""),
            );
            None
        }
    };
    let expires = expires(table, &header, &mut errors);
    let cluster = table
        .contains_key("cluster")
        .then(|| glob(table, "cluster", &at, &mut errors))
        .flatten();
    let namespace = table
        .contains_key("namespace")
        .then(|| glob(table, "namespace", &at, &mut errors))
        .flatten();
    let name = table
        .contains_key("name")
        .then(|| glob(table, "name", &at, &mut errors))
        .flatten();
    let kind = string(table, "kind", &at, &mut errors);
    if let Some(k) = &kind
        && !KINDS.contains(&k.as_str())
    {
        errors.push(
            ExceptionsError::new(
                value_span(table, "kind", &at),
                format!("no finding is about kind `{k}`"),
            )
            .help(format!("the kinds are {}", KINDS.join(", "))),
        );
    }
    if !table.contains_key("namespace") && !table.contains_key("name") {
        errors.push(
            ExceptionsError::new(header.clone(), "the entry names neither a `namespace` nor a `name`")
                .help("accept findings where they are: add namespace = \"…\" or name = \"…\" (a check is never accepted everywhere at once)"),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(ids), Some(reason), Some(expires)) = (ids, reason, expires) else {
        return Err(errors);
    };
    let (line, column) = line_col(text, header.start);
    let pattern = Pattern {
        cluster,
        namespace,
        kind,
        name,
    };
    Ok(ids
        .into_iter()
        .map(|check| Rule {
            check,
            selector: Selector::Pattern(pattern.clone()),
            acceptance: Acceptance {
                source: AcceptanceSource::File,
                reason: reason.clone(),
                expires: Some(expires),
                origin: format!("{path}:{line}:{column}"),
                location: Some(SourceLocation {
                    path: path.to_owned(),
                    line,
                    column,
                }),
            },
        })
        .collect())
}

fn check_ids(
    table: &Table,
    header: &Range<usize>,
    errors: &mut Vec<ExceptionsError>,
) -> Option<Vec<&'static str>> {
    let all: Vec<&str> = checks().iter().map(|c| c.id).collect();
    let Some(item) = table.get("check") else {
        errors.push(
            ExceptionsError::new(header.clone(), "missing `check`").help(format!(
                "name the accepted check: one of {}",
                all.join(", ")
            )),
        );
        return None;
    };
    let span = item.span().unwrap_or(header.clone());
    let values: Vec<(&Value, Range<usize>)> = match item.as_value() {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| (v, v.span().unwrap_or(span.clone())))
            .collect(),
        Some(v @ Value::String(_)) => vec![(v, span.clone())],
        _ => {
            errors.push(ExceptionsError::new(
                span,
                "`check` must be a check id or a list of them, e.g. \"SA003\"",
            ));
            return None;
        }
    };
    let mut ids = Vec::new();
    for (v, span) in values {
        match v.as_str().and_then(find) {
            Some(c) => ids.push(c.id),
            None => errors.push(
                ExceptionsError::new(
                    span,
                    format!("no check {}", v.as_str().map_or_else(|| v.to_string(), |s| format!("`{s}`"))),
                )
                .help(format!(
                    "the checks are {} (globs are not allowed: a wildcard would also accept checks added later)",
                    all.join(", ")
                )),
            ),
        }
    }
    (!ids.is_empty() && ids.len() == ids.iter().collect::<std::collections::BTreeSet<_>>().len())
        .then_some(ids)
}

fn expires(
    table: &Table,
    header: &Range<usize>,
    errors: &mut Vec<ExceptionsError>,
) -> Option<Date> {
    let Some(item) = table.get("expires") else {
        errors.push(
            ExceptionsError::new(header.clone(), "missing `expires`").help(
                "every acceptance ends: add expires = YYYY-MM-DD (unquoted), the last day it holds",
            ),
        );
        return None;
    };
    let span = item.span().unwrap_or(header.clone());
    let date = match item.as_value() {
        Some(Value::Datetime(d)) => {
            let d = d.value();
            match (d.date, d.time) {
                (Some(date), None) => Date::new(i32::from(date.year), date.month, date.day),
                _ => None,
            }
        }
        _ => None,
    };
    if date.is_none() {
        errors.push(
            ExceptionsError::new(span, "`expires` must be a date")
                .help("write the date unquoted, e.g. expires = 2027-03-31"),
        );
    }
    date
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse_exceptions(text, "x.toml") {
            Ok(r) => panic!("expected errors, got {r:?}"),
            Err(e) => e
                .iter()
                .map(|e| {
                    let (l, c) = line_col(text, e.span.start);
                    format!("{l}:{c}: {}", e.message)
                })
                .collect(),
        }
    }

    #[test]
    fn a_valid_entry_yields_one_rule_per_check() {
        let text = "# exceptions\n\n[[accept]]\ncheck = [\"SA002\", \"default-sa-used\"]\ncluster = \"prod-*\"\nnamespace = \"batch\"\nkind = \"CronJob\"\nname = \"nightly-*\"\nreason = \"ticket OPS-123\"\nexpires = 2027-03-31\n";
        let rules = parse_exceptions(text, "x.toml").expect("valid");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].check, "SA002");
        assert_eq!(rules[1].check, "SA003");
        assert_eq!(rules[0].acceptance.origin, "x.toml:3:1");
        assert_eq!(
            rules[0].acceptance.expires.map(|d| d.to_string()),
            Some("2027-03-31".into())
        );
        assert_eq!(
            rules[0].describe(),
            "cluster prod-*, namespace batch, kind CronJob, name nightly-*"
        );
    }

    #[test]
    fn every_problem_is_located() {
        let text = "[[accept]]\ncheck = \"SA010\"\nnamespace = \"*\"\nkind = \"Deploymnet\"\nreasn = \"typo\"\nexpires = \"2027-03-31\"\n\n[[accept]]\ncheck = \"*\"\nname = \"web\"\nreason = \" \"\n\n[[accept]]\ncheck = \"SA001\"\nreason = \"r\"\nexpires = 2027-02-28\n";
        assert_eq!(
            errors(text),
            vec![
                "1:1: missing `reason`",
                "2:9: no check `SA010`",
                "3:13: `namespace` must name something, not only `*`",
                "4:8: no finding is about kind `Deploymnet`",
                "5:1: unknown key `reasn`",
                "6:11: `expires` must be a date",
                "8:1: missing `expires`",
                "9:9: no check `*`",
                "11:10: `reason` is empty",
                "13:1: the entry names neither a `namespace` nor a `name`",
            ]
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = errors("[[accept]\ncheck = 1\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("1:"), "{e:?}");
        let e = errors(
            "[[accept]]\ncheck = \"SA001\"\nname = \"a\"\nreason = \"r\"\nexpires = 2027-02-30\n",
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("5:11: invalid TOML"), "{e:?}");
    }
}
