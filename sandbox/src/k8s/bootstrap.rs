//! What a new cluster starts with, as a fresh real cluster does: the system namespaces
//! and the RBAC bootstrap policy (`cluster-admin`, `admin`, `edit`, `view`,
//! `system:discovery`, `system:basic-user`, `system:public-info-viewer`,
//! `system:service-account-issuer-discovery` and their bindings), the binding that makes
//! the sandbox kubeconfig's user a cluster admin, plus its token signing key.

use rand::Rng;
use serde_json::{Value, json};

use super::ClusterState;
use super::catalog;

const RBAC_V1: &str = "rbac.authorization.k8s.io/v1";

/// A new cluster: namespaces, each with its default ServiceAccount, and the bootstrap
/// RBAC policy.
pub fn new_cluster() -> ClusterState {
    let mut cluster = ClusterState {
        signing_key: hex::encode(rand::rng().random::<[u8; 32]>()),
        ..ClusterState::default()
    };
    let namespaces = catalog::by_plural("namespaces").expect("namespaces are served");
    for name in ["default", "kube-node-lease", "kube-public", "kube-system"] {
        let body = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } });
        // Cannot fail on an empty cluster: the names are valid and free.
        let _ = cluster.create(namespaces, None, &body, "kube-apiserver", false);
    }
    reconcile(&mut cluster);
    cluster
}

/// The user the sandbox kubeconfig's token (`sandbox`) authenticates as, and the group
/// that makes it a cluster admin through the `sandbox:cluster-admins` binding.
pub const ADMIN_USER: &str = "sandbox";
/// The group of [`ADMIN_USER`], bound to `cluster-admin`.
pub const ADMIN_GROUP: &str = "sandbox:cluster-admins";

/// Creates whichever bootstrap ClusterRoles and ClusterRoleBindings are missing, as the
/// real API server's RBAC bootstrap does at every start; existing ones are left alone.
/// Besides the control plane's own policy, `sandbox:cluster-admins` binds `cluster-admin`
/// to [`ADMIN_GROUP`], as kubeadm's `kubeadm:cluster-admins` does for its admin user.
pub fn reconcile(cluster: &mut ClusterState) {
    let roles = catalog::by_plural("clusterroles").expect("clusterroles are served");
    for role in cluster_roles() {
        let name = role["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if cluster.get(roles, None, &name).is_err() {
            // Cannot fail: the name is valid and free.
            let _ = cluster.create(roles, None, &role, "kube-apiserver", false);
        }
    }
    let bindings =
        catalog::by_plural("clusterrolebindings").expect("clusterrolebindings are served");
    for (name, role, groups) in BINDINGS {
        if cluster.get(bindings, None, name).is_ok() {
            continue;
        }
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g }))
            .collect();
        let binding = json!({
            "apiVersion": RBAC_V1,
            "kind": "ClusterRoleBinding",
            "metadata": bootstrap_metadata(name, None),
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
            "subjects": subjects,
        });
        let _ = cluster.create(bindings, None, &binding, "kube-apiserver", false);
    }
}

/// `(binding, ClusterRole, groups)` of the bootstrap ClusterRoleBindings.
const BINDINGS: &[(&str, &str, &[&str])] = &[
    ("cluster-admin", "cluster-admin", &["system:masters"]),
    (ADMIN_GROUP, "cluster-admin", &[ADMIN_GROUP]),
    (
        "system:discovery",
        "system:discovery",
        &["system:authenticated"],
    ),
    (
        "system:basic-user",
        "system:basic-user",
        &["system:authenticated"],
    ),
    (
        "system:public-info-viewer",
        "system:public-info-viewer",
        &["system:authenticated", "system:unauthenticated"],
    ),
    (
        "system:service-account-issuer-discovery",
        "system:service-account-issuer-discovery",
        &["system:serviceaccounts"],
    ),
];

fn bootstrap_metadata(name: &str, aggregate_to: Option<&str>) -> Value {
    let mut labels = json!({ "kubernetes.io/bootstrapping": "rbac-defaults" });
    if let Some(role) = aggregate_to {
        labels[format!("rbac.authorization.k8s.io/aggregate-to-{role}")] = json!("true");
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": { "rbac.authorization.kubernetes.io/autoupdate": "true" },
    })
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({ "apiGroups": groups, "resources": resources, "verbs": verbs })
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

/// The rules of `view`: read access to most namespaced objects, never Secrets.
fn view_rules() -> Vec<Value> {
    vec![
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
            READ,
        ),
        rule(
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
            READ,
        ),
        rule(&[""], &["namespaces"], READ),
        rule(
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            READ,
        ),
        rule(
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
            READ,
        ),
    ]
}

/// The rules `edit` adds: writing workloads, Secrets, ServiceAccounts (with impersonation
/// and token requests), but no RBAC.
fn edit_rules() -> Vec<Value> {
    vec![
        rule(
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
            READ,
        ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
            &["create", "delete", "deletecollection", "patch", "update"],
        ),
        rule(&[""], &["pods/eviction"], &["create"]),
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
            WRITE,
        ),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            WRITE,
        ),
        rule(&["batch"], &["cronjobs", "jobs"], WRITE),
    ]
}

/// The rules `admin` adds: RBAC within the namespace.
fn admin_rules() -> Vec<Value> {
    vec![
        rule(
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
            &["create"],
        ),
        rule(
            &["rbac.authorization.k8s.io"],
            &["rolebindings", "roles"],
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
        ),
    ]
}

fn aggregated(name: &str, aggregate_to: Option<&str>, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": RBAC_V1,
        "kind": "ClusterRole",
        "metadata": bootstrap_metadata(name, aggregate_to),
        "aggregationRule": { "clusterRoleSelectors": [{
            "matchLabels": { format!("rbac.authorization.k8s.io/aggregate-to-{name}"): "true" }
        }]},
        "rules": rules,
    })
}

/// `cluster-admin` (everything, including non-resource URLs) and the aggregated
/// `admin` ⊇ `edit` ⊇ `view`, with their rules already aggregated as the controller
/// leaves them.
fn cluster_roles() -> Vec<Value> {
    let view = view_rules();
    let edit: Vec<Value> = edit_rules().into_iter().chain(view.clone()).collect();
    let admin: Vec<Value> = admin_rules().into_iter().chain(edit.clone()).collect();
    vec![
        json!({
            "apiVersion": RBAC_V1,
            "kind": "ClusterRole",
            "metadata": bootstrap_metadata("cluster-admin", None),
            "rules": [
                { "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] },
                { "nonResourceURLs": ["*"], "verbs": ["*"] },
            ],
        }),
        aggregated("admin", None, admin),
        aggregated("edit", Some("admin"), edit),
        aggregated("view", Some("edit"), view),
        non_resource_role(
            "system:discovery",
            &[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ],
        ),
        json!({
            "apiVersion": RBAC_V1,
            "kind": "ClusterRole",
            "metadata": bootstrap_metadata("system:basic-user", None),
            "rules": [
                rule(&["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"], &["create"]),
                rule(&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"]),
            ],
        }),
        non_resource_role(
            "system:public-info-viewer",
            &["/healthz", "/livez", "/readyz", "/version", "/version/"],
        ),
        non_resource_role(
            "system:service-account-issuer-discovery",
            &[
                "/.well-known/openid-configuration",
                "/.well-known/openid-configuration/",
                "/openid/v1/jwks",
                "/openid/v1/jwks/",
            ],
        ),
    ]
}

/// A bootstrap ClusterRole that may GET some non-resource URLs.
fn non_resource_role(name: &str, urls: &[&str]) -> Value {
    json!({
        "apiVersion": RBAC_V1,
        "kind": "ClusterRole",
        "metadata": bootstrap_metadata(name, None),
        "rules": [{ "nonResourceURLs": urls, "verbs": ["get"] }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_cluster_looks_like_a_real_one() {
        let c = new_cluster();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(c.objects["namespaces"].contains_key(ns), "{ns}");
            assert!(
                c.objects["serviceaccounts"].contains_key(&format!("{ns}/default")),
                "{ns}"
            );
        }
        let admin = &c.objects["clusterroles"]["cluster-admin"];
        assert_eq!(admin["rules"][0]["verbs"], json!(["*"]));
        assert_eq!(admin["rules"][1]["nonResourceURLs"], json!(["*"]));
        assert_eq!(
            admin["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
        for role in ["admin", "edit", "view"] {
            assert!(c.objects["clusterroles"].contains_key(role), "{role}");
        }
        let view = serde_json::to_string(&c.objects["clusterroles"]["view"]).expect("json");
        assert!(!view.contains("secrets"), "view never reads secrets");
        let binding = &c.objects["clusterrolebindings"]["cluster-admin"];
        assert_eq!(binding["subjects"][0]["name"], "system:masters");
        assert_eq!(c.signing_key.len(), 64);
    }
}
