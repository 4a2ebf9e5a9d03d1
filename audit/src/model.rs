//! The report vocabulary: severities, object references, findings, counts and the report
//! itself. These types are what every renderer reads and what the JSON schema is
//! generated from, so their serde shape is a public contract (`format_version` 1).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered from least to most severe so `>=` means "at least as bad".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hygiene: worth fixing, not an exposure on its own.
    Low,
    /// A weakness an attacker needs something else to exploit.
    Medium,
    /// A direct exposure: a token or credential an attacker can use.
    High,
    /// Cluster or cloud takeover from a single compromised pod.
    Critical,
}

impl Severity {
    /// All severities, most severe first (the order the human renderer groups by).
    pub const DESCENDING: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    /// The lowercase name used in flags, JSON and SARIF properties.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of low, medium, high, critical.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?} (expected low, medium, high or critical)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(UnknownSeverity(s.to_owned())),
        }
    }
}

/// The object a finding is about. Kubernetes objects carry their kind; cloud objects use
/// kinds such as `IAMRole` or `GCPServiceAccount` with no namespace.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct ObjectRef {
    /// Object kind, e.g. `Deployment`, `ServiceAccount`, `ClusterRoleBinding`, `IAMRole`.
    pub kind: String,
    /// Namespace; absent for cluster-scoped and cloud objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name (for cloud objects, the ARN or e-mail).
    pub name: String,
}

impl ObjectRef {
    /// A namespaced object reference.
    pub fn namespaced(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_owned(),
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        }
    }

    /// A cluster-scoped (or cloud) object reference.
    pub fn cluster(kind: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_owned(),
            namespace: None,
            name: name.to_owned(),
        }
    }

    /// `namespace/kind/name`, or `kind/name` without a namespace: the SARIF logical location.
    pub fn qualified_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `Kind ns/name` or `Kind name`, as the human output and messages show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Where an object came from when the snapshot was read from manifest files.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct SourceLocation {
    /// The manifest path as given to the loader.
    pub path: String,
    /// 1-based line where the object's YAML document starts.
    pub line: usize,
}

/// One problem with one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// The check that produced it, e.g. `SA002`.
    pub check_id: String,
    /// The finding's severity: the check's default, or raised/lowered by what was found.
    pub severity: Severity,
    /// The object at fault.
    pub resource: ObjectRef,
    /// One line naming the object and the exact reason.
    pub message: String,
    /// What to do about it, specific to this object where possible.
    pub fix: String,
    /// Structured facts behind the message (never secret values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    /// The manifest location of the object, when the snapshot came from files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<SourceLocation>,
}

impl Finding {
    /// A finding with no details and no location.
    pub fn new(
        check_id: &str,
        severity: Severity,
        resource: ObjectRef,
        message: String,
        fix: String,
    ) -> Self {
        Finding {
            check_id: check_id.to_owned(),
            severity,
            resource,
            message,
            fix,
            details: BTreeMap::new(),
            location: None,
        }
    }

    /// Adds one detail (builder style).
    pub fn detail(mut self, key: &str, value: impl Into<String>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// Number of findings per severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    /// Findings of severity critical.
    pub critical: usize,
    /// Findings of severity high.
    pub high: usize,
    /// Findings of severity medium.
    pub medium: usize,
    /// Findings of severity low.
    pub low: usize,
    /// All findings.
    pub total: usize,
}

impl Counts {
    /// Counts the findings by severity.
    pub fn of(findings: &[Finding]) -> Self {
        let mut c = Counts::default();
        for f in findings {
            match f.severity {
                Severity::Critical => c.critical += 1,
                Severity::High => c.high += 1,
                Severity::Medium => c.medium += 1,
                Severity::Low => c.low += 1,
            }
            c.total += 1;
        }
        c
    }

    /// The count for one severity.
    pub fn get(&self, severity: Severity) -> usize {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }
}

/// The result of running checks over one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// All findings, sorted by severity (most severe first), check id, object, message.
    pub findings: Vec<Finding>,
    /// Findings per severity.
    pub counts: Counts,
    /// Ids of the checks that ran, in registry order.
    pub checks_run: Vec<String>,
}

impl Report {
    /// Builds a report: sorts and de-duplicates the findings and counts them.
    pub fn new(mut findings: Vec<Finding>, checks_run: Vec<String>) -> Self {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.check_id.cmp(&b.check_id))
                .then_with(|| a.resource.cmp(&b.resource))
                .then_with(|| a.message.cmp(&b.message))
                .then_with(|| a.cmp(b))
        });
        findings.dedup();
        let counts = Counts::of(&findings);
        Report {
            findings,
            counts,
            checks_run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_low_to_critical_and_parses() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Medium > Severity::Low);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("severe".parse::<Severity>().is_err());
    }

    #[test]
    fn report_sorts_most_severe_first_and_counts() {
        let low = Finding::new(
            "SA003",
            Severity::Low,
            ObjectRef::namespaced("Pod", "a", "p"),
            "m".into(),
            "f".into(),
        );
        let crit = Finding::new(
            "SA005",
            Severity::Critical,
            ObjectRef::namespaced("Pod", "a", "p"),
            "m".into(),
            "f".into(),
        );
        let r = Report::new(vec![low.clone(), crit.clone(), low], vec![]);
        assert_eq!(r.findings, vec![crit, r.findings[1].clone()]);
        assert_eq!(r.counts.total, 2);
        assert_eq!(r.counts.critical, 1);
        assert_eq!(r.counts.low, 1);
    }

    #[test]
    fn qualified_names() {
        assert_eq!(
            ObjectRef::namespaced("Pod", "a", "p").qualified_name(),
            "a/Pod/p"
        );
        assert_eq!(
            ObjectRef::cluster("ClusterRoleBinding", "x").to_string(),
            "ClusterRoleBinding x"
        );
    }
}
