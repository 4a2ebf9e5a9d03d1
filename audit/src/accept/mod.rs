//! Accepting findings with a reason: the `wid.dev/audit-accept` annotation on the object
//! (`annotation`), an exceptions file (`file`), and applying both to a report (`apply`).
//!
//! An accepted finding is moved out of the report's findings into `accepted`, with the
//! acceptance that covers it: renderers show it as suppressed and it never counts toward
//! `--fail-on`. An acceptance whose expiry date has passed stops suppressing: the finding
//! stays a finding and carries the expired acceptance, and a warning says so. An acceptance
//! that matches nothing in the audited scope is reported as stale, so exceptions do not
//! outlive what they were written for.

mod annotation;
mod apply;
mod file;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::model::{Finding, ObjectRef, SourceLocation};

pub use annotation::{ANNOTATION, AnnotationEntry, from_snapshot, parse_annotation};
pub use apply::{Scope, apply};
pub use file::{ExceptionsError, parse_exceptions};

/// Where an acceptance was written.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AcceptanceSource {
    /// The `wid.dev/audit-accept` annotation on the object (SARIF suppression `inSource`).
    Annotation,
    /// An entry of the `--exceptions` file (SARIF suppression `external`).
    File,
}

/// One acceptance of a finding: why, until when, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Acceptance {
    /// Annotation on the object, or exceptions file.
    pub source: AcceptanceSource,
    /// Why the finding is accepted, as written.
    pub reason: String,
    /// The last day the acceptance holds; absent when the annotation sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Date>,
    /// Where it is written, for people: `FILE:LINE:COL` of the exceptions entry, or the
    /// annotated object and annotation key.
    pub origin: String,
    /// The file location of the annotation or exceptions entry, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<SourceLocation>,
}

impl Acceptance {
    /// Whether the acceptance still holds on `today` (the expiry day itself included).
    pub fn holds_on(&self, today: Date) -> bool {
        self.expires.is_none_or(|e| today <= e)
    }
}

/// A finding that an acceptance covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AcceptedFinding {
    /// The finding, as it would otherwise be reported.
    #[serde(flatten)]
    pub finding: Finding,
    /// The acceptance that covers it.
    pub acceptance: Acceptance,
}

/// What a warning is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// An acceptance matched no finding in the audited scope: remove it.
    StaleAcceptance,
    /// An acceptance matched a finding but has expired: the finding is reported again.
    ExpiredAcceptance,
    /// A `wid.dev/audit-accept` annotation entry does not follow the grammar; it accepts
    /// nothing.
    InvalidAnnotation,
}

/// A problem with an acceptance, reported beside the findings (and on stderr).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Warning {
    /// What kind of problem.
    pub kind: WarningKind,
    /// What is wrong and what to do, as one line.
    pub message: String,
    /// Where the acceptance is written (as in [`Acceptance::origin`]).
    pub origin: String,
    /// The file location, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<SourceLocation>,
}

/// A `*` glob over names: `*` matches any run of characters (none included); every other
/// character matches itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// The pattern as written.
    pub fn new(pattern: &str) -> Self {
        Glob(pattern.to_owned())
    }

    /// Whether the pattern has a wildcard.
    pub fn is_pattern(&self) -> bool {
        self.0.contains('*')
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let parts: Vec<&str> = self.0.split('*').collect();
        if parts.len() == 1 {
            return self.0 == text;
        }
        let (first, last) = (parts[0], parts[parts.len() - 1]);
        if !text.starts_with(first) || text.len() < first.len() + last.len() {
            return false;
        }
        let mut rest = &text[first.len()..text.len() - last.len()];
        if !text.ends_with(last) {
            return false;
        }
        for mid in &parts[1..parts.len() - 1] {
            match rest.find(mid) {
                Some(at) => rest = &rest[at + mid.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Which findings an exceptions-file entry covers. Absent fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pattern {
    /// Cluster name glob.
    pub cluster: Option<Glob>,
    /// Namespace glob; set, it never matches cluster-scoped objects.
    pub namespace: Option<Glob>,
    /// Exact kind.
    pub kind: Option<String>,
    /// Object name glob.
    pub name: Option<Glob>,
}

/// What an acceptance applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// One object (an annotation accepts findings on the object that carries it).
    Object {
        /// The object's cluster, when the audit knows it.
        cluster: Option<String>,
        /// The object.
        object: ObjectRef,
    },
    /// The objects an exceptions-file entry selects.
    Pattern(Pattern),
}

/// One acceptance of one check, ready to match findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The accepted check's id.
    pub check: &'static str,
    /// The findings it applies to.
    pub selector: Selector,
    /// The reason, expiry and origin.
    pub acceptance: Acceptance,
}

impl Rule {
    /// Whether the rule applies to `f` (expiry aside).
    pub fn matches(&self, f: &Finding) -> bool {
        if f.check_id != self.check {
            return false;
        }
        match &self.selector {
            Selector::Object { cluster, object } => &f.cluster == cluster && &f.resource == object,
            Selector::Pattern(p) => {
                let glob = |g: &Option<Glob>, v: Option<&str>| match (g, v) {
                    (None, _) => true,
                    (Some(g), Some(v)) => g.matches(v),
                    (Some(_), None) => false,
                };
                glob(&p.cluster, f.cluster.as_deref())
                    && glob(&p.namespace, f.resource.namespace.as_deref())
                    && p.kind.as_deref().is_none_or(|k| k == f.resource.kind)
                    && glob(&p.name, Some(&f.resource.name))
            }
        }
    }

    /// How the selector reads in messages.
    pub fn describe(&self) -> String {
        match &self.selector {
            Selector::Object { object, .. } => object.to_string(),
            Selector::Pattern(p) => {
                let mut parts = Vec::new();
                if let Some(c) = &p.cluster {
                    parts.push(format!("cluster {}", c.as_str()));
                }
                if let Some(n) = &p.namespace {
                    parts.push(format!("namespace {}", n.as_str()));
                }
                if let Some(k) = &p.kind {
                    parts.push(format!("kind {k}"));
                }
                if let Some(n) = &p.name {
                    parts.push(format!("name {}", n.as_str()));
                }
                parts.join(", ")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_stars_only() {
        let g = Glob::new("ci-*-runner");
        assert!(g.matches("ci-a-runner"));
        assert!(g.matches("ci--runner"));
        assert!(!g.matches("ci-runner"));
        assert!(!g.matches("xci-a-runner"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a*b*c").matches("aXbYc"));
        assert!(!Glob::new("a*b*c").matches("aXcYb"));
        assert!(Glob::new("web").matches("web"));
        assert!(!Glob::new("web").matches("web2"));
        assert!(!Glob::new("web?").matches("web2"), "? is literal");
    }
}
