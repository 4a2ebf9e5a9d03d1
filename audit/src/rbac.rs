//! The RBAC engine: which rules a ServiceAccount effectively holds, through which binding
//! and role, and in which scope.
//!
//! Semantics follow the upstream authorizer (`pkg/registry/rbac/validation/rule.go`,
//! `appliesToUser`; `pkg/apis/rbac/v1/evaluation_helpers.go`):
//! - a RoleBinding grants its Role (same namespace) or a ClusterRole, in its namespace
//!   only; a ClusterRoleBinding grants a ClusterRole cluster-wide;
//! - subjects are matched as whole tuples (kind, name, namespace) — never name from one
//!   subject and namespace from another (kubescape C-0261's mistake);
//! - a ServiceAccount subject without a namespace means the RoleBinding's own namespace
//!   (upstream defaults it so); in a ClusterRoleBinding it matches nothing (the API rejects it);
//! - groups `system:serviceaccounts`, `system:serviceaccounts:NS` and `system:authenticated`
//!   apply to every SA (of NS), as does the User `system:serviceaccount:NS:NAME`;
//! - `*` matches any verb, API group or resource, and `*/sub` any resource's subresource
//!   `sub`. `pods/*` is NOT a wildcard upstream, so it is matched literally here.

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::ObjectRef;
use crate::snapshot::{Snapshot, name_of, ns_of};

/// Groups that contain (at least) every ServiceAccount, or everyone.
pub const BROAD_GROUPS: [&str; 3] = [
    "system:authenticated",
    "system:unauthenticated",
    "system:serviceaccounts",
];

/// Label that marks the control plane's own default bindings.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");

/// Where a grant applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Every namespace and cluster-scoped objects.
    Cluster,
    /// One namespace.
    Namespace(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Cluster => f.write_str("cluster-wide"),
            Scope::Namespace(ns) => write!(f, "in namespace {ns}"),
        }
    }
}

/// A RoleBinding or ClusterRoleBinding seen uniformly.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The binding's metadata.
    pub meta: &'a ObjectMeta,
    /// Its namespace: `Some` for RoleBindings, `None` for ClusterRoleBindings.
    pub namespace: Option<&'a str>,
    /// Its subjects.
    pub subjects: &'a [Subject],
    /// The role it grants.
    pub role_ref: &'a RoleRef,
}

impl Binding<'_> {
    /// The binding's object reference.
    pub fn object_ref(&self) -> ObjectRef {
        match self.namespace {
            Some(ns) => ObjectRef::namespaced("RoleBinding", ns, name_of(self.meta)),
            None => ObjectRef::cluster("ClusterRoleBinding", name_of(self.meta)),
        }
    }

    /// The scope the binding grants in.
    pub fn scope(&self) -> Scope {
        match self.namespace {
            Some(ns) => Scope::Namespace(ns.to_owned()),
            None => Scope::Cluster,
        }
    }

    /// Whether this is one of the control plane's default bindings.
    pub fn is_bootstrap(&self) -> bool {
        self.meta
            .labels
            .as_ref()
            .and_then(|l| l.get(BOOTSTRAP_LABEL.0))
            .is_some_and(|v| v == BOOTSTRAP_LABEL.1)
    }

    /// The namespace a ServiceAccount subject refers to, with the RoleBinding default.
    pub fn subject_namespace<'s>(&'s self, s: &'s Subject) -> Option<&'s str> {
        match s.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => Some(ns),
            _ => self.namespace,
        }
    }
}

/// All bindings, RoleBindings first, each list in snapshot order.
pub fn bindings(snap: &Snapshot) -> Vec<Binding<'_>> {
    let rbs = snap.role_bindings.iter().map(|b| Binding {
        meta: &b.metadata,
        namespace: Some(ns_of(&b.metadata)),
        subjects: b.subjects.as_deref().unwrap_or(&[]),
        role_ref: &b.role_ref,
    });
    let crbs = snap.cluster_role_bindings.iter().map(|b| Binding {
        meta: &b.metadata,
        namespace: None,
        subjects: b.subjects.as_deref().unwrap_or(&[]),
        role_ref: &b.role_ref,
    });
    rbs.chain(crbs).collect()
}

/// How a subject of a binding reached the ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// A `ServiceAccount` subject (or the SA's `User` name).
    Direct,
    /// A group containing the SA.
    Group(String),
}

/// Whether subject `s` of binding `b` designates ServiceAccount `ns/name`, as one tuple.
pub fn subject_matches(b: &Binding<'_>, s: &Subject, ns: &str, name: &str) -> Option<Via> {
    match s.kind.as_str() {
        "ServiceAccount" => {
            (s.name == name && b.subject_namespace(s) == Some(ns)).then_some(Via::Direct)
        }
        "User" => (s.name == format!("system:serviceaccount:{ns}:{name}")).then_some(Via::Direct),
        "Group" => {
            let applies = s.name == "system:serviceaccounts"
                || s.name == "system:authenticated"
                || s.name == format!("system:serviceaccounts:{ns}");
            applies.then(|| Via::Group(s.name.clone()))
        }
        _ => None,
    }
}

/// The role a binding grants and its rules. A RoleBinding's `Role` is looked up in the
/// binding's namespace. `cluster-admin` is known even when absent (manifest mode).
/// Returns `None` when the role is not in the snapshot.
pub fn resolve_role(snap: &Snapshot, b: &Binding<'_>) -> Option<(ObjectRef, Vec<PolicyRule>)> {
    let name = b.role_ref.name.as_str();
    match (b.role_ref.kind.as_str(), b.namespace) {
        ("Role", Some(ns)) => snap.role(ns, name).map(|r| {
            (
                ObjectRef::namespaced("Role", ns, name),
                r.rules.clone().unwrap_or_default(),
            )
        }),
        ("ClusterRole", _) => {
            let rules = match snap.cluster_role(name) {
                Some(r) => r.rules.clone().unwrap_or_default(),
                None => builtin_cluster_role(name)?,
            };
            Some((ObjectRef::cluster("ClusterRole", name), rules))
        }
        _ => None,
    }
}

/// Rules of built-in ClusterRoles a manifest may bind without declaring.
fn builtin_cluster_role(name: &str) -> Option<Vec<PolicyRule>> {
    (name == "cluster-admin").then(|| {
        vec![PolicyRule {
            api_groups: Some(vec!["*".into()]),
            resources: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..Default::default()
        }]
    })
}

/// One rule a ServiceAccount holds, with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The rule.
    pub rule: PolicyRule,
    /// Where it applies.
    pub scope: Scope,
    /// The binding that grants it.
    pub binding: ObjectRef,
    /// The role it comes from.
    pub role: ObjectRef,
    /// How the binding reached the SA.
    pub via: Via,
}

/// Every rule ServiceAccount `ns/name` holds, through every binding that names it.
pub fn grants_for(snap: &Snapshot, ns: &str, name: &str) -> Vec<Grant> {
    let mut out = Vec::new();
    for b in bindings(snap) {
        let Some(via) = b
            .subjects
            .iter()
            .filter_map(|s| subject_matches(&b, s, ns, name))
            .min()
        else {
            continue;
        };
        let Some((role, rules)) = resolve_role(snap, &b) else {
            continue;
        };
        for rule in rules {
            out.push(Grant {
                rule,
                scope: b.scope(),
                binding: b.object_ref(),
                role: role.clone(),
                via: via.clone(),
            });
        }
    }
    out
}

fn contains_or_star(list: Option<&Vec<String>>, wanted: &str) -> bool {
    list.is_some_and(|l| l.iter().any(|x| x == "*" || x == wanted))
}

/// Whether `rule` allows `verb` on `resource` (optionally `resource/subresource`) in API
/// group `group` (`""` is the core group).
pub fn allows(rule: &PolicyRule, verb: &str, group: &str, resource: &str) -> bool {
    let verb_ok = rule.verbs.iter().any(|v| v == "*" || v == verb);
    let group_ok = contains_or_star(rule.api_groups.as_ref(), group);
    let sub = resource.split_once('/').map(|(_, s)| s);
    let resource_ok = rule.resources.as_ref().is_some_and(|rs| {
        rs.iter().any(|r| {
            r == "*" || r == resource || sub.is_some_and(|s| r.strip_prefix("*/") == Some(s))
        })
    });
    verb_ok && group_ok && resource_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        PolicyRule {
            api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
            resources: Some(resources.iter().map(|s| s.to_string()).collect()),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn wildcards_and_subresources_match_as_upstream() {
        assert!(allows(&rule(&["*"], &["*"], &["*"]), "get", "", "secrets"));
        assert!(allows(
            &rule(&[""], &["*/exec"], &["create"]),
            "create",
            "",
            "pods/exec"
        ));
        assert!(!allows(
            &rule(&[""], &["pods"], &["create"]),
            "create",
            "",
            "pods/exec"
        ));
        // Upstream RBAC has no `resource/*` wildcard.
        assert!(!allows(
            &rule(&[""], &["pods/*"], &["create"]),
            "create",
            "",
            "pods/exec"
        ));
        assert!(!allows(
            &rule(&["apps"], &["secrets"], &["get"]),
            "get",
            "",
            "secrets"
        ));
        assert!(!allows(
            &rule(&[""], &["secrets"], &["create"]),
            "get",
            "",
            "secrets"
        ));
    }
}
