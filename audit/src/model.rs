//! The report vocabulary: severities, object references, findings, counts and the report
//! itself. These types are what every renderer reads and what the JSON schema is
//! generated from, so their serde shape is a public contract (`format_version` 1).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::accept::{Acceptance, AcceptedFinding, Warning};

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
    /// 1-based line: of the offending field when the finding names one and the manifest
    /// has it, else of the object's YAML document start.
    pub line: usize,
    /// 1-based column (in characters) of that field or document start.
    pub column: usize,
}

/// One problem with one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// The check that produced it, e.g. `SA002`.
    pub check_id: String,
    /// The finding's severity: the check's default, or raised/lowered by what was found.
    pub severity: Severity,
    /// The cluster the object is in: set by live audits, and by manifest audits given
    /// `--cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The object at fault.
    pub resource: ObjectRef,
    /// One line naming the object and the exact reason.
    pub message: String,
    /// What to do about it, specific to this object where possible.
    pub fix: String,
    /// The field of the object at fault, as a path such as
    /// `spec.template.spec.automountServiceAccountToken` or
    /// `metadata.annotations["eks.amazonaws.com/role-arn"]`; absent when the whole object is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Structured facts behind the message (never secret values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    /// The manifest location of the field (or object), when the snapshot came from files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<SourceLocation>,
    /// An acceptance that covered this finding until it expired: the finding is reported
    /// again, and this says since when and why it had been accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_acceptance: Option<Acceptance>,
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
            cluster: None,
            resource,
            message,
            fix,
            field: None,
            details: BTreeMap::new(),
            location: None,
            expired_acceptance: None,
        }
    }

    /// Names the field at fault (builder style); see [`Finding::field`].
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
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
    /// All findings (accepted ones excluded).
    pub total: usize,
    /// Findings an acceptance covers; not in `total`, never counted toward `--fail-on`.
    #[serde(default)]
    pub accepted: usize,
}

impl Counts {
    /// Counts the findings by severity.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
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

/// The result of running checks over one or more snapshots (clusters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// The findings no acceptance covers, sorted by cluster, then severity (most severe
    /// first), check id, object, message.
    pub findings: Vec<Finding>,
    /// Findings per severity, and the number accepted.
    pub counts: Counts,
    /// Ids of the checks that ran, in registry order.
    pub checks_run: Vec<String>,
    /// The clusters audited, in the order given; empty when no cluster is named.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Findings an acceptance covers.
    #[serde(default)]
    pub accepted: Vec<AcceptedFinding>,
    /// Expired, stale and invalid acceptances.
    #[serde(default)]
    pub warnings: Vec<Warning>,
}

impl Report {
    /// Builds a report: sorts and de-duplicates the findings and counts them.
    pub fn new(mut findings: Vec<Finding>, checks_run: Vec<String>) -> Self {
        findings.sort_by(|a, b| {
            a.cluster
                .cmp(&b.cluster)
                .then_with(|| b.severity.cmp(&a.severity))
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
            clusters: Vec::new(),
            accepted: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Merges the reports of several clusters, each already tagged with its cluster name
    /// (findings, accepted findings and warnings are kept; counts are recomputed).
    pub fn merge(reports: Vec<(String, Report)>) -> Report {
        let mut findings = Vec::new();
        let mut accepted = Vec::new();
        let mut warnings = Vec::new();
        let mut clusters = Vec::new();
        let mut checks_run = Vec::new();
        for (name, r) in reports {
            clusters.push(name);
            findings.extend(r.findings);
            accepted.extend(r.accepted);
            warnings.extend(r.warnings);
            checks_run = r.checks_run;
        }
        let mut merged = Report::new(findings, checks_run);
        merged.counts.accepted = accepted.len();
        merged.clusters = clusters;
        merged.accepted = accepted;
        merged.warnings = warnings;
        merged
    }

    /// Whether a finding at or above `level` remains (accepted findings never count).
    pub fn exceeds(&self, level: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= level)
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
