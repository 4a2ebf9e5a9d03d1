//! The `wid.dev/audit-accept` annotation: accepting findings on the object they are about.
//!
//! Grammar (one entry per line; blank lines are ignored):
//!
//! ```text
//! value  = entry *( LF entry )
//! entry  = checks [ SP "until" SP date ] ":" SP reason
//! checks = check *( "," [SP] check )      ; SA003, or a check's name (default-sa-used)
//! date   = YYYY-MM-DD                     ; the last day the acceptance holds
//! reason = any text up to the end of the line, not empty
//! ```
//!
//! e.g. `SA002, SA003 until 2027-03-31: batch job needs the default SA; ticket OPS-123`.
//! Everything after the first `: ` is the reason, so a reason may contain colons,
//! semicolons and dates. An entry that does not follow the grammar accepts nothing and is
//! reported as a warning, so a typo never hides a finding.

use std::sync::LazyLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use regex::Regex;

use super::{Acceptance, AcceptanceSource, Rule, Selector, Warning, WarningKind};
use crate::checks::find;
use crate::date::Date;
use crate::model::ObjectRef;
use crate::positions::child;
use crate::snapshot::{Snapshot, name_of, ns_of};

/// The annotation key.
pub const ANNOTATION: &str = "wid.dev/audit-accept";

static ENTRY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?P<checks>[A-Za-z0-9-]+(?:\s*,\s*[A-Za-z0-9-]+)*)(?:\s+until\s+(?P<date>\S+))?\s*:\s+(?P<reason>.*?)\s*$",
    )
    .expect("the entry grammar is a valid regex")
});

/// One parsed entry of the annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationEntry {
    /// Check ids, canonical (`SA003`).
    pub checks: Vec<&'static str>,
    /// The last day it holds.
    pub expires: Option<Date>,
    /// The reason.
    pub reason: String,
    /// 1-based line within the annotation value.
    pub line: usize,
}

/// Parses an annotation value: the valid entries, and one message per invalid line.
pub fn parse_annotation(value: &str) -> (Vec<AnnotationEntry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in value.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let n = i + 1;
        let Some(caps) = ENTRY.captures(line) else {
            errors.push(format!(
                "entry {n} {line:?} does not read `CHECK[, CHECK] [until YYYY-MM-DD]: reason`"
            ));
            continue;
        };
        let reason = caps["reason"].to_owned();
        if reason.is_empty() {
            errors.push(format!("entry {n} gives no reason after the colon"));
            continue;
        }
        let expires = match caps.name("date").map(|d| d.as_str().parse::<Date>()) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                errors.push(format!("entry {n}: {e}"));
                continue;
            }
        };
        let mut checks = Vec::new();
        let mut unknown = Vec::new();
        for id in caps["checks"].split(',').map(str::trim) {
            match find(id) {
                Some(c) => checks.push(c.id),
                None => unknown.push(id.to_owned()),
            }
        }
        if !unknown.is_empty() {
            errors.push(format!(
                "entry {n} names no known check: {} (the checks are SA001 to SA009)",
                unknown.join(", ")
            ));
            continue;
        }
        entries.push(AnnotationEntry {
            checks,
            expires,
            reason,
            line: n,
        });
    }
    (entries, errors)
}

/// Every object of the snapshot that carries the annotation, with its reference.
fn annotated(snap: &Snapshot) -> Vec<(ObjectRef, &ObjectMeta)> {
    let mut out = Vec::new();
    macro_rules! scan {
        ($list:expr, $kind:literal, $namespaced:literal) => {
            for o in &$list {
                let m = &o.metadata;
                if m.annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(ANNOTATION))
                {
                    let r = if $namespaced {
                        ObjectRef::namespaced($kind, ns_of(m), name_of(m))
                    } else {
                        ObjectRef::cluster($kind, name_of(m))
                    };
                    out.push((r, m));
                }
            }
        };
    }
    scan!(snap.namespaces, "Namespace", false);
    scan!(snap.service_accounts, "ServiceAccount", true);
    scan!(snap.pods, "Pod", true);
    scan!(snap.deployments, "Deployment", true);
    scan!(snap.replica_sets, "ReplicaSet", true);
    scan!(snap.stateful_sets, "StatefulSet", true);
    scan!(snap.daemon_sets, "DaemonSet", true);
    scan!(snap.jobs, "Job", true);
    scan!(snap.cron_jobs, "CronJob", true);
    scan!(snap.roles, "Role", true);
    scan!(snap.role_bindings, "RoleBinding", true);
    scan!(snap.cluster_roles, "ClusterRole", false);
    scan!(snap.cluster_role_bindings, "ClusterRoleBinding", false);
    scan!(snap.secrets, "Secret", true);
    scan!(snap.config_maps, "ConfigMap", true);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The acceptance rules written as annotations on the snapshot's objects of `cluster`
/// that `audited` keeps, and a warning per entry that does not follow the grammar.
pub fn from_snapshot(
    snap: &Snapshot,
    cluster: Option<&str>,
    audited: impl Fn(&ObjectRef) -> bool,
) -> (Vec<Rule>, Vec<Warning>) {
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    let field = child("metadata.annotations", ANNOTATION);
    for (object, meta) in annotated(snap).into_iter().filter(|(r, _)| audited(r)) {
        let value = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION))
            .map_or("", String::as_str);
        let location = snap.locate(&object, Some(&field));
        let origin = match &location {
            Some(l) => format!("{}:{}:{} ({object})", l.path, l.line, l.column),
            None => match cluster {
                Some(c) => format!("{object} in cluster {c}, annotation {ANNOTATION}"),
                None => format!("{object}, annotation {ANNOTATION}"),
            },
        };
        let (entries, errors) = parse_annotation(value);
        for e in errors {
            warnings.push(Warning {
                kind: WarningKind::InvalidAnnotation,
                message: format!("{ANNOTATION} on {object}: {e}; it accepts nothing"),
                origin: origin.clone(),
                location: location.clone(),
            });
        }
        for e in entries {
            for check in &e.checks {
                rules.push(Rule {
                    check,
                    selector: Selector::Object {
                        cluster: cluster.map(str::to_owned),
                        object: object.clone(),
                    },
                    acceptance: Acceptance {
                        source: AcceptanceSource::Annotation,
                        reason: e.reason.clone(),
                        expires: e.expires,
                        origin: origin.clone(),
                        location: location.clone(),
                    },
                });
            }
        }
    }
    (rules, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_checks_expiry_and_a_reason_with_colons() {
        let (entries, errors) = parse_annotation(
            "SA002, default-sa-used until 2027-03-31: batch job needs the default SA until 2027-03; ticket OPS-123\n\nSA005: reviewed: see SEC-42\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].checks, vec!["SA002", "SA003"]);
        assert_eq!(
            entries[0].expires.map(|d| d.to_string()),
            Some("2027-03-31".into())
        );
        assert_eq!(
            entries[0].reason,
            "batch job needs the default SA until 2027-03; ticket OPS-123"
        );
        assert_eq!(entries[1].checks, vec!["SA005"]);
        assert_eq!(entries[1].expires, None);
        assert_eq!(entries[1].reason, "reviewed: see SEC-42");
        assert_eq!(entries[1].line, 3);
    }

    #[test]
    fn invalid_entries_accept_nothing_and_say_why() {
        let (entries, errors) = parse_annotation(
            "SA010: no such check\nSA003 until 2027-02-30: bad date\nSA003:\nno colon here\nSA003:missing space\n",
        );
        assert!(entries.is_empty(), "{entries:?}");
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].contains("SA010"));
        assert!(errors[1].contains("2027-02-30"));
        assert!(errors[2].contains("does not read"), "{}", errors[2]);
    }
}
