//! The check registry: one file per check, each exporting `pub static CHECK: Check` with
//! a fixed outline (what it checks, why it matters, a failing example, the fix, the
//! checklist item and the other scanners it answers to, references) and its `run`
//! function. Ids `SA001`..`SA009` are stable: users put them in acceptances and CI. Each
//! check's page, `docs/checks/SA00N.md`, is generated from this outline (`crate::page`),
//! and `wid audit --explain` prints the same page.

use crate::context::Context;
use crate::model::{Finding, Severity};
use crate::snapshot::Snapshot;

pub mod cloud_credentials;
pub mod dangerous_rbac;
pub mod default_sa_automount;
pub mod default_sa_rbac;
pub mod default_sa_used;
pub mod identity_annotations;
pub mod legacy_token_secrets;
pub mod projected_tokens;
pub mod token_automounted;

/// One audit check and its documentation.
#[derive(Debug)]
pub struct Check {
    /// Stable id, `SA001`..`SA009`.
    pub id: &'static str,
    /// Stable kebab-case name, accepted by `--explain` too.
    pub name: &'static str,
    /// Default severity; a finding may raise or lower it and says so.
    pub severity: Severity,
    /// What it checks (one sentence).
    pub summary: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// A YAML snippet that fails the check.
    pub example: &'static str,
    /// How to fix it: kubectl and/or a wid plan snippet.
    pub fix: &'static str,
    /// The hardening guide's checklist item the check measures, word for word.
    pub guide: &'static str,
    /// How the established scanners check the same thing, and where they go wrong.
    pub others: &'static str,
    /// Further reading: (title, URL).
    pub references: &'static [(&'static str, &'static str)],
    /// Context (JSON, as fixtures state it) under which `example` fails; empty for none.
    pub example_context: &'static str,
    /// Runs the check.
    pub run: fn(&Snapshot, &Context) -> Vec<Finding>,
}

static ALL: [&Check; 9] = [
    &default_sa_automount::CHECK,
    &token_automounted::CHECK,
    &default_sa_used::CHECK,
    &default_sa_rbac::CHECK,
    &dangerous_rbac::CHECK,
    &legacy_token_secrets::CHECK,
    &projected_tokens::CHECK,
    &cloud_credentials::CHECK,
    &identity_annotations::CHECK,
];

/// Every check, in id order.
pub fn checks() -> &'static [&'static Check] {
    &ALL
}

/// The check with this id or name (case-insensitive; `SA-001` is accepted for `SA001`).
pub fn find(id_or_name: &str) -> Option<&'static Check> {
    let wanted = id_or_name.trim().to_ascii_lowercase().replace("sa-", "sa");
    ALL.iter()
        .copied()
        .find(|c| c.id.to_ascii_lowercase() == wanted || c.name == id_or_name.trim())
}

pub use crate::page::{page, page_path};

/// The page `wid audit --explain ID` prints (the same text as `docs/checks/ID.md`), or
/// `None` for an unknown id.
pub fn explain(id_or_name: &str) -> Option<String> {
    find(id_or_name).map(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_unique_and_well_formed() {
        let mut ids: Vec<&str> = checks().iter().map(|c| c.id).collect();
        let mut names: Vec<&str> = checks().iter().map(|c| c.name).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(*id, format!("SA{:03}", i + 1));
        }
        for n in &names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{n}");
        }
        ids.dedup();
        names.sort();
        names.dedup();
        assert_eq!(ids.len(), 9);
        assert_eq!(names.len(), 9);
    }

    #[test]
    fn explain_accepts_id_name_and_dashed_id() {
        let by_id = explain("SA001").expect("known id");
        assert_eq!(explain("sa-001"), Some(by_id.clone()));
        assert_eq!(explain("default-sa-automount"), Some(by_id.clone()));
        assert!(by_id.contains("harden_default_service_accounts = true"));
        assert!(
            by_id.starts_with("# SA001 default-sa-automount\n"),
            "{by_id}"
        );
        assert!(explain("SA999").is_none());
    }

    #[test]
    fn every_check_is_documented_with_a_yaml_example_that_fails_it() {
        for c in checks() {
            assert!(!c.summary.is_empty() && !c.why.is_empty() && !c.fix.is_empty());
            assert!(!c.guide.is_empty() && !c.others.is_empty() && !c.references.is_empty());
            assert!(c.example.contains("kind:"), "{} example is YAML", c.id);
            assert!(
                crate::page::example_finding(c).is_some(),
                "{}: its example yields no finding",
                c.id
            );
            for (_, url) in c.references {
                assert!(url.starts_with("https://"), "{}: {url}", c.id);
            }
        }
    }
}
