//! RBAC as the real authorizer evaluates it, over the Roles, ClusterRoles, RoleBindings
//! and ClusterRoleBindings a cluster holds (kubernetes `plugin/pkg/auth/authorizer/rbac`):
//! subjects (users, groups, ServiceAccounts), rules (API groups, resources with
//! subresources and `*/sub`, resource names, verbs, `*`, non-resource URLs with a
//! trailing `*`), and the rules a user has in a namespace (SelfSubjectRulesReview).
//!
//! ClusterRoles are read as stored: the bootstrap aggregated roles hold their aggregated
//! rules already, and no aggregation controller runs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::ClusterState;

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `system:serviceaccount:NS:NAME` for ServiceAccounts.
    pub name: String,
    /// The ServiceAccount's uid, empty for others.
    pub uid: String,
    /// Groups, `system:authenticated` included.
    pub groups: Vec<String>,
    /// Extra attributes.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The user a ServiceAccount authenticates as, with its fixed groups.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            uid: uid.to_owned(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
            extra: BTreeMap::new(),
        }
    }

    /// `userInfo` as SelfSubjectReview and the reviews write it.
    pub fn json(&self) -> Value {
        let mut out = json!({ "username": self.name, "groups": self.groups });
        if !self.uid.is_empty() {
            out["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            out["extra"] = json!(self.extra);
        }
        out
    }
}

/// What a request does, as authorization sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// An API object or collection.
    Resource {
        /// `get`, `list`, `create`, `impersonate`, ...
        verb: String,
        /// API group, `""` for core.
        group: String,
        /// Plural resource.
        resource: String,
        /// Subresource (`token`), or empty.
        subresource: String,
        /// Object name, or empty.
        name: String,
        /// Namespace, empty for cluster-scoped requests.
        namespace: String,
    },
    /// Any other path (`/version`, `/apis`).
    NonResource {
        /// Lowercase HTTP verb (`get`, `post`).
        verb: String,
        /// The request path.
        path: String,
    },
}

/// The outcome of authorizing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether some binding allows it.
    pub allowed: bool,
    /// `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`, or empty.
    pub reason: String,
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(Value::as_str)
}

fn has(list: &Value, wanted: &str) -> bool {
    strings(list).any(|v| v == wanted)
}

/// `describeSubject`.
fn describe_subject(subject: &Value, binding_namespace: &str) -> String {
    let kind = subject["kind"].as_str().unwrap_or_default();
    let name = subject["name"].as_str().unwrap_or_default();
    if kind == "ServiceAccount" {
        let ns = subject["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(binding_namespace);
        format!("{kind} {:?}", format!("{name}/{ns}"))
    } else {
        format!("{kind} {name:?}")
    }
}

/// Whether `subject` of a binding in `binding_namespace` designates `user`.
fn applies(subject: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str().unwrap_or_default() {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// `RuleAllows`.
pub fn rule_allows(rule: &Value, attributes: &Attributes) -> bool {
    let verbs = &rule["verbs"];
    match attributes {
        Attributes::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            let combined = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let resource_ok = strings(&rule["resources"]).any(|r| {
                r == "*"
                    || r == combined
                    || (!subresource.is_empty()
                        && r.strip_prefix("*/") == Some(subresource.as_str()))
            });
            let names = &rule["resourceNames"];
            (has(verbs, "*") || has(verbs, verb))
                && (has(&rule["apiGroups"], "*") || has(&rule["apiGroups"], group))
                && resource_ok
                && (strings(names).next().is_none() || has(names, name))
        }
        Attributes::NonResource { verb, path } => {
            (has(verbs, "*") || has(verbs, verb))
                && strings(&rule["nonResourceURLs"]).any(|url| {
                    url == "*"
                        || url == path
                        || url
                            .strip_suffix('*')
                            .is_some_and(|prefix| path.starts_with(prefix))
                })
        }
    }
}

/// One binding that applies to a user: its description and the rules it grants.
struct Grant<'a> {
    source: String,
    rules: &'a [Value],
}

fn role_rules<'a>(cluster: &'a ClusterState, binding: &Value, namespace: &str) -> &'a [Value] {
    let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
    let role = match binding["roleRef"]["kind"].as_str() {
        Some("ClusterRole") => cluster
            .objects
            .get("clusterroles")
            .and_then(|o| o.get(name)),
        Some("Role") if !namespace.is_empty() => cluster
            .objects
            .get("roles")
            .and_then(|o| o.get(&format!("{namespace}/{name}"))),
        _ => None,
    };
    role.and_then(|r| r["rules"].as_array())
        .map_or(&[], Vec::as_slice)
}

/// The bindings that apply to `user` for a request in `namespace` (every
/// ClusterRoleBinding, then the RoleBindings of that namespace), in the real authorizer's
/// order.
fn grants<'a>(cluster: &'a ClusterState, user: &UserInfo, namespace: &str) -> Vec<Grant<'a>> {
    let mut out = Vec::new();
    for binding in cluster
        .objects
        .get("clusterrolebindings")
        .into_iter()
        .flat_map(|o| o.values())
    {
        for subject in binding["subjects"].as_array().into_iter().flatten() {
            if applies(subject, user, "") {
                out.push(Grant {
                    source: format!(
                        "ClusterRoleBinding {:?} of {} {:?} to {}",
                        binding["metadata"]["name"].as_str().unwrap_or_default(),
                        binding["roleRef"]["kind"].as_str().unwrap_or_default(),
                        binding["roleRef"]["name"].as_str().unwrap_or_default(),
                        describe_subject(subject, "")
                    ),
                    rules: role_rules(cluster, binding, ""),
                });
                break;
            }
        }
    }
    if namespace.is_empty() {
        return out;
    }
    let prefix = format!("{namespace}/");
    for (key, binding) in cluster
        .objects
        .get("rolebindings")
        .into_iter()
        .flat_map(|o| o.iter())
    {
        if !key.starts_with(&prefix) {
            continue;
        }
        for subject in binding["subjects"].as_array().into_iter().flatten() {
            if applies(subject, user, namespace) {
                out.push(Grant {
                    source: format!(
                        "RoleBinding {:?} of {} {:?} to {}",
                        format!(
                            "{}/{namespace}",
                            binding["metadata"]["name"].as_str().unwrap_or_default()
                        ),
                        binding["roleRef"]["kind"].as_str().unwrap_or_default(),
                        binding["roleRef"]["name"].as_str().unwrap_or_default(),
                        describe_subject(subject, namespace)
                    ),
                    rules: role_rules(cluster, binding, namespace),
                });
                break;
            }
        }
    }
    out
}

/// Authorizes `attributes` for `user` (the RBAC authorizer: allowed by the first binding
/// with a matching rule, otherwise no opinion, which denies).
pub fn authorize(cluster: &ClusterState, user: &UserInfo, attributes: &Attributes) -> Decision {
    let namespace = match attributes {
        Attributes::Resource { namespace, .. } => namespace.as_str(),
        Attributes::NonResource { .. } => "",
    };
    for grant in grants(cluster, user, namespace) {
        if grant.rules.iter().any(|rule| rule_allows(rule, attributes)) {
            return Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {}", grant.source),
            };
        }
    }
    Decision {
        allowed: false,
        reason: String::new(),
    }
}

/// The rules `user` has in `namespace` (SelfSubjectRulesReview's status): resource rules
/// and non-resource rules, in binding order.
pub fn rules_for(
    cluster: &ClusterState,
    user: &UserInfo,
    namespace: &str,
) -> (Vec<Value>, Vec<Value>) {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for grant in grants(cluster, user, namespace) {
        for rule in grant.rules {
            let list = |field: &str| json!(strings(&rule[field]).collect::<Vec<_>>());
            if strings(&rule["resources"]).next().is_some() {
                let mut entry = json!({
                    "verbs": list("verbs"),
                    "apiGroups": list("apiGroups"),
                    "resources": list("resources"),
                });
                if strings(&rule["resourceNames"]).next().is_some() {
                    entry["resourceNames"] = list("resourceNames");
                }
                resource_rules.push(entry);
            }
            if strings(&rule["nonResourceURLs"]).next().is_some() {
                non_resource_rules.push(json!({
                    "verbs": list("verbs"),
                    "nonResourceURLs": list("nonResourceURLs"),
                }));
            }
        }
    }
    (resource_rules, non_resource_rules)
}

/// `User "x" cannot list resource "configmaps" in API group "" in the namespace "ns"`:
/// why a request is forbidden.
pub fn forbidden_message(user: &UserInfo, attributes: &Attributes) -> String {
    match attributes {
        Attributes::NonResource { verb, path } => {
            format!("User {:?} cannot {verb} path {path:?}", user.name)
        }
        Attributes::Resource {
            verb,
            group,
            resource,
            subresource,
            namespace,
            ..
        } => {
            let resource = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {namespace:?}")
            };
            format!(
                "User {:?} cannot {verb} resource {resource:?} in API group {group:?} {scope}",
                user.name
            )
        }
    }
}

#[cfg(test)]
mod tests;
