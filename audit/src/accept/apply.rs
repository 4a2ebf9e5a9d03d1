//! Applying acceptances to a report: which findings they cover, which have expired, and
//! which match nothing in the audited scope (stale).

use super::{AcceptanceSource, AcceptedFinding, Rule, Selector, Warning, WarningKind};
use crate::date::Date;
use crate::model::{Counts, Finding, Report};

/// What the audit looked at, so an acceptance for something outside it is not called
/// stale (an exceptions file shared by every cluster, audited one namespace at a time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The clusters audited (empty when the audit knows no cluster names).
    pub clusters: Vec<String>,
    /// The namespaces the audit was limited to (`--namespace`); empty means all.
    pub namespaces: Vec<String>,
    /// Namespaces whose findings were left out (the control plane's, by default).
    pub excluded_namespaces: Vec<String>,
    /// Whether the cloud side was read (findings on IAM roles and GCP service accounts).
    pub cloud: bool,
}

const CLOUD_KINDS: &[&str] = &["IAMRole", "GCPServiceAccount"];

impl Scope {
    /// Whether findings in namespace `ns` (`None`: cluster-scoped) were audited.
    fn covers_namespace(&self, ns: Option<&str>) -> bool {
        let Some(ns) = ns else {
            return true;
        };
        !self.excluded_namespaces.iter().any(|x| x == ns)
            && (self.namespaces.is_empty() || self.namespaces.iter().any(|x| x == ns))
    }

    /// Whether the audit could have produced a finding this rule matches.
    fn covers(&self, rule: &Rule) -> bool {
        match &rule.selector {
            Selector::Object { object, .. } => self.covers_namespace(object.namespace.as_deref()),
            Selector::Pattern(p) => {
                let cluster = match &p.cluster {
                    None => true,
                    Some(g) => self.clusters.iter().any(|c| g.matches(c)),
                };
                let namespace = match &p.namespace {
                    None => true,
                    Some(g) if g.is_pattern() => {
                        self.namespaces.is_empty() || self.namespaces.iter().any(|n| g.matches(n))
                    }
                    Some(g) => self.covers_namespace(Some(g.as_str())),
                };
                let kind = p
                    .kind
                    .as_deref()
                    .is_none_or(|k| self.cloud || !CLOUD_KINDS.contains(&k));
                cluster && namespace && kind
            }
        }
    }
}

/// Moves the findings that a holding acceptance covers into `accepted`; marks findings
/// whose only acceptances have expired; warns about expired and stale acceptances.
/// Annotations win over file entries, and among those the one that holds longest.
pub fn apply(report: Report, rules: &[Rule], today: Date, scope: &Scope) -> Report {
    let mut used = vec![false; rules.len()];
    let mut findings: Vec<Finding> = Vec::new();
    let mut accepted = report.accepted;
    let mut warnings = report.warnings;
    for mut f in report.findings {
        let matching: Vec<usize> = (0..rules.len()).filter(|i| rules[*i].matches(&f)).collect();
        for i in &matching {
            used[*i] = true;
        }
        let best = |holding: bool| {
            matching
                .iter()
                .map(|i| &rules[*i].acceptance)
                .filter(|a| a.holds_on(today) == holding)
                .max_by_key(|a| {
                    (
                        a.source == AcceptanceSource::Annotation,
                        a.expires.map_or((1, None), |d| (0, Some(d))),
                    )
                })
                .cloned()
        };
        if let Some(acceptance) = best(true) {
            accepted.push(AcceptedFinding {
                finding: f,
                acceptance,
            });
            continue;
        }
        if let Some(expired) = best(false) {
            let date = expired.expires.map(|d| d.to_string()).unwrap_or_default();
            warnings.push(Warning {
                kind: WarningKind::ExpiredAcceptance,
                message: format!(
                    "the acceptance of {} on {} expired on {date} ({}); the finding is reported again",
                    f.check_id, f.resource, expired.reason
                ),
                origin: expired.origin.clone(),
                location: expired.location.clone(),
            });
            f.expired_acceptance = Some(expired);
        }
        findings.push(f);
    }
    for (rule, used) in rules.iter().zip(used) {
        if used || !scope.covers(rule) {
            continue;
        }
        let a = &rule.acceptance;
        let expired = a
            .expires
            .filter(|_| !a.holds_on(today))
            .map(|d| format!(" (it also expired on {d})"))
            .unwrap_or_default();
        let message = match (&rule.selector, a.source) {
            (Selector::Object { object, .. }, _) => format!(
                "{object} accepts {} in its {} annotation, but {} reports nothing on it{expired}; remove {} from the annotation",
                rule.check,
                super::ANNOTATION,
                rule.check,
                rule.check
            ),
            (Selector::Pattern(_), _) => format!(
                "the acceptance of {} for {} matches no finding{expired}; remove the entry",
                rule.check,
                rule.describe()
            ),
        };
        warnings.push(Warning {
            kind: WarningKind::StaleAcceptance,
            message,
            origin: a.origin.clone(),
            location: a.location.clone(),
        });
    }
    warnings.sort();
    warnings.dedup();
    accepted.sort_by(|a, b| {
        a.finding
            .cluster
            .cmp(&b.finding.cluster)
            .then_with(|| b.finding.severity.cmp(&a.finding.severity))
            .then_with(|| a.finding.cmp(&b.finding))
    });
    let mut counts = Counts::of(&findings);
    counts.accepted = accepted.len();
    Report {
        findings,
        counts,
        accepted,
        warnings,
        ..report
    }
}
