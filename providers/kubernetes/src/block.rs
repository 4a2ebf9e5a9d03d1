//! The workload's `kubernetes` plan block (RBAC rules for the KSA) and its validation.
//!
//! The types are the plan file's schema: serde with `deny_unknown_fields`, and one doc
//! comment per field, which schemars turns into the JSON Schema descriptions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Kubernetes side of one workload beyond the KSA itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesBlock {
    /// RBAC rules granted to the KSA in its namespace through a dedicated Role and
    /// RoleBinding named `wid-<KSA>`. Empty: no Role and no RoleBinding.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

/// One RBAC rule, spelled as in a Kubernetes Role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// API groups of the resources (`""` is the core group, e.g. for configmaps).
    #[serde(rename = "apiGroups")]
    pub api_groups: Vec<String>,
    /// Resource types the rule applies to (`configmaps`, `pods/log`).
    pub resources: Vec<String>,
    /// Verbs allowed: get, list, watch, create, update, patch, delete, deletecollection,
    /// impersonate, bind, escalate, approve, sign, use, proxy, or `*`.
    pub verbs: Vec<String>,
    /// Restricts the rule to these object names; empty means every object.
    #[serde(
        rename = "resourceNames",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_names: Vec<String>,
}

/// The verbs Kubernetes RBAC knows; anything else is a typo that would grant nothing.
pub const KNOWN_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "impersonate",
    "bind",
    "escalate",
    "approve",
    "sign",
    "use",
    "proxy",
    "*",
];

/// How serious a rule issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The plan is invalid.
    Error,
    /// Allowed, but worth a look (wildcards grant more than most workloads need).
    Note,
}

/// One problem with one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleIssue {
    /// The rule's position in `rules`.
    pub index: usize,
    /// The field concerned, as spelled in the plan (`verbs`, `apiGroups`).
    pub field: &'static str,
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// Whether it makes the plan invalid.
    pub severity: Severity,
}

/// Checks every rule: verbs and resources must be non-empty and verbs known. Wildcards
/// are reported as notes, not errors.
pub fn validate_rules(rules: &[PolicyRule]) -> Vec<RuleIssue> {
    let mut issues = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let mut push = |field, severity, message: String| {
            issues.push(RuleIssue {
                index,
                field,
                message,
                severity,
            });
        };
        if rule.verbs.is_empty() {
            push(
                "verbs",
                Severity::Error,
                "must list at least one verb".into(),
            );
        }
        if rule.resources.is_empty() {
            push(
                "resources",
                Severity::Error,
                "must list at least one resource".into(),
            );
        }
        for verb in &rule.verbs {
            if !KNOWN_VERBS.contains(&verb.as_str()) {
                push(
                    "verbs",
                    Severity::Error,
                    format!(
                        "unknown verb {verb:?}; known verbs are {}",
                        KNOWN_VERBS.join(", ")
                    ),
                );
            }
        }
        let wildcard = |field, values: &[String]| {
            values.iter().any(|v| v == "*").then(|| {
                (
                    field,
                    format!("{field} = [\"*\"] grants every {}", noun(field)),
                )
            })
        };
        for (field, message) in [
            wildcard("verbs", &rule.verbs),
            wildcard("resources", &rule.resources),
            wildcard("apiGroups", &rule.api_groups),
        ]
        .into_iter()
        .flatten()
        {
            push(field, Severity::Note, message);
        }
    }
    issues
}

fn noun(field: &str) -> &'static str {
    match field {
        "verbs" => "verb, including escalate, bind and impersonate",
        "resources" => "resource type in the listed groups, including secrets",
        _ => "API group",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        PolicyRule {
            api_groups: v(groups),
            resources: v(resources),
            verbs: v(verbs),
            resource_names: Vec::new(),
        }
    }

    #[test]
    fn parses_the_plan_spelling() {
        let r: PolicyRule = serde_json::from_value(serde_json::json!({
            "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
            "resourceNames": ["app-config"]
        }))
        .unwrap();
        assert_eq!(r.resource_names, ["app-config"]);
        let bad = serde_json::from_value::<PolicyRule>(serde_json::json!({
            "apiGroups": [""], "resources": ["x"], "verbs": ["get"], "typo": 1
        }));
        assert!(bad.is_err());
    }

    #[test]
    fn a_good_rule_has_no_issues() {
        assert!(validate_rules(&[rule(&[""], &["configmaps"], &["get", "list"])]).is_empty());
    }

    #[test]
    fn empty_verbs_and_resources_are_errors() {
        let issues = validate_rules(&[rule(&[""], &[], &[])]);
        let fields: Vec<_> = issues.iter().map(|i| (i.field, i.severity)).collect();
        assert_eq!(
            fields,
            [("verbs", Severity::Error), ("resources", Severity::Error)]
        );
    }

    #[test]
    fn unknown_verbs_are_errors_and_wildcards_notes() {
        let issues = validate_rules(&[
            rule(&[""], &["pods"], &["get"]),
            rule(&["*"], &["pods"], &["gets", "*"]),
        ]);
        assert!(issues.iter().all(|i| i.index == 1));
        let errors: Vec<_> = issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .collect();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("\"gets\""));
        let notes: Vec<_> = issues
            .iter()
            .filter(|i| i.severity == Severity::Note)
            .map(|i| i.field)
            .collect();
        assert_eq!(notes, ["verbs", "apiGroups"]);
    }
}
