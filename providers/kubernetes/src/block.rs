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

/// One problem with (or note about) one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleIssue {
    /// The rule's position in `rules`.
    pub index: usize,
    /// The field concerned, as spelled in the plan (`verbs`, `apiGroups`).
    pub field: &'static str,
    /// What is wrong, as a lowercase fragment.
    pub message: String,
}

/// The errors in `rules`: verbs, resources and API groups must be non-empty (the API
/// server refuses a Role whose resource rule has no API group) and verbs known. Every
/// issue returned makes the plan invalid; wildcards are not errors (see [`rule_notes`]).
pub fn validate_rules(rules: &[PolicyRule]) -> Vec<RuleIssue> {
    let mut issues = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let mut push = |field, message: String| {
            issues.push(RuleIssue {
                index,
                field,
                message,
            });
        };
        if rule.verbs.is_empty() {
            push("verbs", "must list at least one verb".into());
        }
        if rule.resources.is_empty() {
            push("resources", "must list at least one resource".into());
        }
        if rule.api_groups.is_empty() {
            push(
                "apiGroups",
                "must list at least one API group (\"\" is the core group)".into(),
            );
        }
        for verb in &rule.verbs {
            if !KNOWN_VERBS.contains(&verb.as_str()) {
                push(
                    "verbs",
                    format!(
                        "unknown verb {verb:?}; known verbs are {}",
                        KNOWN_VERBS.join(", ")
                    ),
                );
            }
        }
    }
    issues
}

/// Notes worth showing but not errors: wildcards grant more than most workloads need.
pub fn rule_notes(rules: &[PolicyRule]) -> Vec<RuleIssue> {
    let mut notes = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        for (field, values) in [
            ("verbs", &rule.verbs),
            ("resources", &rule.resources),
            ("apiGroups", &rule.api_groups),
        ] {
            if values.iter().any(|v| v == "*") {
                notes.push(RuleIssue {
                    index,
                    field,
                    message: format!("{field} = [\"*\"] grants every {}", noun(field)),
                });
            }
        }
    }
    notes
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
    fn the_schema_describes_every_field() {
        let schema = serde_json::to_value(schemars::schema_for!(KubernetesBlock)).unwrap();
        let rule = &schema["$defs"]["PolicyRule"];
        assert_eq!(rule["additionalProperties"], false);
        for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
            let description = rule["properties"][field]["description"].as_str();
            assert!(
                description.is_some_and(|d| !d.is_empty()),
                "{field}: {rule}"
            );
        }
        let required: Vec<_> = rule["required"].as_array().unwrap().iter().collect();
        assert_eq!(required, ["apiGroups", "resources", "verbs"]);
    }

    #[test]
    fn a_good_rule_has_no_issues() {
        assert!(validate_rules(&[rule(&[""], &["configmaps"], &["get", "list"])]).is_empty());
    }

    #[test]
    fn empty_lists_are_errors() {
        let issues = validate_rules(&[rule(&[], &[], &[])]);
        let fields: Vec<_> = issues.iter().map(|i| i.field).collect();
        assert_eq!(fields, ["verbs", "resources", "apiGroups"]);
    }

    #[test]
    fn unknown_verbs_are_errors_and_wildcards_only_notes() {
        let rules = [
            rule(&[""], &["pods"], &["get"]),
            rule(&["*"], &["pods"], &["gets", "*"]),
        ];
        let errors = validate_rules(&rules);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].index, errors[0].field), (1, "verbs"));
        assert!(errors[0].message.contains("\"gets\""));
        let notes: Vec<_> = rule_notes(&rules)
            .into_iter()
            .map(|i| (i.index, i.field))
            .collect();
        assert_eq!(notes, [(1, "verbs"), (1, "apiGroups")]);
    }
}
