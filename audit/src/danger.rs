//! Dangerous RBAC permission classes (AUDIT-NOTES §b; Kubernetes "RBAC good practices",
//! privilege-escalation risks) and the classification of a grant into them.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::model::{ObjectRef, Severity};
use crate::rbac::{Grant, Scope, allows};

/// One class of dangerous permission.
#[derive(Debug)]
pub struct DangerClass {
    /// Stable short id, e.g. `secrets-read`.
    pub id: &'static str,
    /// What the holder can do, for messages.
    pub label: &'static str,
    /// Severity when held in an ordinary namespace.
    pub severity: Severity,
    /// Whether holding it cluster-wide or in kube-system makes it critical.
    pub critical_when_broad: bool,
    /// (verbs, api group, resources): any allowed combination puts a rule in the class.
    pub probes: &'static [(
        &'static [&'static str],
        &'static str,
        &'static [&'static str],
    )],
}

const WORKLOAD_WRITE: &[&str] = &["create", "update", "patch"];

/// The classes, most severe first. `cluster-admin` (all verbs on all resources in all
/// groups) is checked separately and subsumes the others.
pub static CLASSES: &[DangerClass] = &[
    DangerClass {
        id: "escalate",
        label: "escalate roles (bypass RBAC's escalation check)",
        severity: Severity::Critical,
        critical_when_broad: true,
        probes: &[(
            &["escalate"],
            "rbac.authorization.k8s.io",
            &["roles", "clusterroles"],
        )],
    },
    DangerClass {
        id: "bind",
        label: "bind roles it does not hold",
        severity: Severity::Critical,
        critical_when_broad: true,
        probes: &[(
            &["bind"],
            "rbac.authorization.k8s.io",
            &["roles", "clusterroles"],
        )],
    },
    DangerClass {
        id: "impersonate",
        label: "impersonate users, groups or service accounts",
        severity: Severity::Critical,
        critical_when_broad: true,
        probes: &[
            (
                &["impersonate"],
                "",
                &["users", "groups", "serviceaccounts"],
            ),
            (
                &["impersonate"],
                "authentication.k8s.io",
                &["uids", "userextras/scopes"],
            ),
        ],
    },
    DangerClass {
        id: "secrets-read",
        label: "read secrets",
        severity: Severity::High,
        critical_when_broad: true,
        probes: &[(&["get", "list", "watch"], "", &["secrets"])],
    },
    DangerClass {
        id: "workload-create",
        label: "create pods or workloads (run as any ServiceAccount of the namespace)",
        severity: Severity::High,
        critical_when_broad: true,
        probes: &[
            (&["create"], "", &["pods"]),
            (WORKLOAD_WRITE, "", &["replicationcontrollers"]),
            (
                WORKLOAD_WRITE,
                "apps",
                &["deployments", "replicasets", "statefulsets", "daemonsets"],
            ),
            (WORKLOAD_WRITE, "batch", &["jobs", "cronjobs"]),
        ],
    },
    DangerClass {
        id: "pods-exec",
        label: "exec or attach into pods",
        severity: Severity::High,
        critical_when_broad: true,
        probes: &[(&["create", "get"], "", &["pods/exec", "pods/attach"])],
    },
    DangerClass {
        id: "nodes-proxy",
        label: "use nodes/proxy (kubelet API: exec in any pod on the node)",
        severity: Severity::High,
        critical_when_broad: true,
        probes: &[(&["get", "create"], "", &["nodes/proxy"])],
    },
    DangerClass {
        id: "token-create",
        label: "create tokens for service accounts",
        severity: Severity::High,
        critical_when_broad: true,
        probes: &[(&["create"], "", &["serviceaccounts/token"])],
    },
    DangerClass {
        id: "csr-approve",
        label: "approve certificate signing requests",
        severity: Severity::High,
        critical_when_broad: true,
        probes: &[(
            &["update", "patch"],
            "certificates.k8s.io",
            &["certificatesigningrequests/approval"],
        )],
    },
    DangerClass {
        id: "webhook-config",
        label: "change admission webhook configurations",
        severity: Severity::High,
        critical_when_broad: true,
        probes: &[(
            WORKLOAD_WRITE,
            "admissionregistration.k8s.io",
            &[
                "validatingwebhookconfigurations",
                "mutatingwebhookconfigurations",
            ],
        )],
    },
    DangerClass {
        id: "wildcard",
        label: "use wildcard verbs or resources (includes future resources)",
        severity: Severity::High,
        critical_when_broad: false,
        probes: &[],
    },
];

/// One dangerous permission held, with provenance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Danger {
    /// The finding severity this permission warrants.
    pub severity: Severity,
    /// Class id (`cluster-admin`, `secrets-read`, …).
    pub class: &'static str,
    /// Human description including scope and restriction.
    pub label: String,
    /// The binding that grants it.
    pub binding: ObjectRef,
    /// The role it comes from.
    pub role: ObjectRef,
}

fn is_full_admin(rule: &PolicyRule) -> bool {
    let has_star = |l: Option<&Vec<String>>| l.is_some_and(|l| l.iter().any(|x| x == "*"));
    rule.verbs.iter().any(|v| v == "*")
        && has_star(rule.resources.as_ref())
        && has_star(rule.api_groups.as_ref())
}

fn is_wildcard(rule: &PolicyRule) -> bool {
    rule.resources.is_some()
        && (rule.verbs.iter().any(|v| v == "*")
            || rule.resources.iter().flatten().any(|r| r == "*"))
}

/// The dangerous permissions one grant confers. Rules restricted by `resourceNames` are
/// kept but capped at medium and say so, since they reach only the named objects.
pub fn classify(g: &Grant) -> Vec<Danger> {
    let broad = match &g.scope {
        Scope::Cluster => true,
        Scope::Namespace(ns) => ns == "kube-system",
    };
    let names = g.rule.resource_names.as_deref().unwrap_or(&[]);
    let restricted = !names.is_empty();
    let suffix = if restricted {
        format!(" (only resourceNames {})", names.join(","))
    } else {
        String::new()
    };
    let finish = |class: &'static str, label: &str, sev: Severity| {
        let sev = if restricted {
            sev.min(Severity::Medium)
        } else {
            sev
        };
        Danger {
            severity: sev,
            class,
            label: format!("{label} {}{suffix}", g.scope),
            binding: g.binding.clone(),
            role: g.role.clone(),
        }
    };
    if is_full_admin(&g.rule) {
        let sev = if broad {
            Severity::Critical
        } else {
            Severity::High
        };
        return vec![finish(
            "cluster-admin",
            "do anything (all verbs on all resources)",
            sev,
        )];
    }
    let mut out = Vec::new();
    for c in CLASSES {
        let hit = if c.id == "wildcard" {
            is_wildcard(&g.rule)
        } else {
            c.probes.iter().any(|(verbs, group, resources)| {
                verbs
                    .iter()
                    .any(|v| resources.iter().any(|r| allows(&g.rule, v, group, r)))
            })
        };
        if hit {
            let sev = if broad && c.critical_when_broad {
                Severity::Critical
            } else {
                c.severity
            };
            out.push(finish(c.id, c.label, sev));
        }
    }
    out
}

/// The dangers of many grants, de-duplicated by (class, scope label), most severe first.
pub fn classify_all<'a>(grants: impl IntoIterator<Item = &'a Grant>) -> Vec<Danger> {
    let mut by_key: BTreeMap<(&'static str, String), Danger> = BTreeMap::new();
    for g in grants {
        for d in classify(g) {
            by_key.entry((d.class, d.label.clone())).or_insert(d);
        }
    }
    let mut v: Vec<Danger> = by_key.into_values().collect();
    v.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.cmp(b)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::Via;

    fn grant(groups: &[&str], resources: &[&str], verbs: &[&str], scope: Scope) -> Grant {
        Grant {
            rule: PolicyRule {
                api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
                resources: Some(resources.iter().map(|s| s.to_string()).collect()),
                verbs: verbs.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            scope,
            binding: ObjectRef::cluster("ClusterRoleBinding", "b"),
            role: ObjectRef::cluster("ClusterRole", "r"),
            via: Via::Direct,
        }
    }

    #[test]
    fn secrets_read_is_critical_cluster_wide_and_high_in_a_namespace() {
        let c = classify(&grant(&[""], &["secrets"], &["list"], Scope::Cluster));
        assert_eq!(
            (c[0].class, c[0].severity),
            ("secrets-read", Severity::Critical)
        );
        let n = classify(&grant(
            &[""],
            &["secrets"],
            &["get"],
            Scope::Namespace("a".into()),
        ));
        assert_eq!(
            (n[0].class, n[0].severity),
            ("secrets-read", Severity::High)
        );
    }

    #[test]
    fn full_wildcard_is_cluster_admin_only() {
        let c = classify(&grant(&["*"], &["*"], &["*"], Scope::Cluster));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].class, "cluster-admin");
    }

    #[test]
    fn harmless_rules_are_not_dangerous() {
        let g = grant(
            &[""],
            &["configmaps"],
            &["get", "list", "watch"],
            Scope::Namespace("a".into()),
        );
        assert!(classify(&g).is_empty());
    }
}
