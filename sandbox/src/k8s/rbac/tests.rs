//! RBAC evaluation: subjects, rules, wildcards, reasons and rule listing.

use super::*;
use crate::k8s::bootstrap;
use crate::k8s::catalog;

fn resource(verb: &str, group: &str, resource: &str, name: &str, namespace: &str) -> Attributes {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    Attributes::Resource {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        subresource: subresource.into(),
        name: name.into(),
        namespace: namespace.into(),
    }
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        uid: String::new(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        extra: BTreeMap::new(),
    }
}

/// A cluster with namespace `team`, Role `reader` (get/list configmaps, get the secret
/// `app-creds`, create serviceaccounts/token), bound to ServiceAccount `team/app`.
fn cluster() -> ClusterState {
    let mut c = bootstrap::new_cluster();
    let create = |c: &mut ClusterState, resource: &str, ns: Option<&str>, body: Value| {
        let info = catalog::by_plural(resource).expect("served");
        c.create(info, ns, &body, "t", true).expect("created");
    };
    create(
        &mut c,
        "namespaces",
        None,
        json!({ "metadata": { "name": "team" } }),
    );
    create(
        &mut c,
        "roles",
        Some("team"),
        json!({ "metadata": { "name": "reader" }, "rules": [
            { "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"] },
            { "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["app-creds"], "verbs": ["get"] },
            { "apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"] },
        ]}),
    );
    create(
        &mut c,
        "rolebindings",
        Some("team"),
        json!({
            "metadata": { "name": "reader" },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader" },
            "subjects": [{ "kind": "ServiceAccount", "name": "app" }],
        }),
    );
    c
}

#[test]
fn service_accounts_get_what_their_bindings_grant() {
    let c = cluster();
    let app = UserInfo::service_account("team", "app", "");
    let allowed = authorize(&c, &app, &resource("get", "", "configmaps", "x", "team"));
    assert!(allowed.allowed);
    assert_eq!(
        allowed.reason,
        "RBAC: allowed by RoleBinding \"reader/team\" of Role \"reader\" to ServiceAccount \"app/team\""
    );
    for denied in [
        resource("delete", "", "configmaps", "x", "team"),
        resource("get", "", "configmaps", "x", "default"),
        resource("get", "", "secrets", "other", "team"),
        resource("get", "apps", "configmaps", "x", "team"),
        resource("create", "", "serviceaccounts", "", "team"),
    ] {
        assert!(!authorize(&c, &app, &denied).allowed, "{denied:?}");
    }
    assert!(
        authorize(
            &c,
            &app,
            &resource("get", "", "secrets", "app-creds", "team")
        )
        .allowed
    );
    assert!(
        authorize(
            &c,
            &app,
            &resource("create", "", "serviceaccounts/token", "app", "team")
        )
        .allowed
    );
    // Another ServiceAccount of the same name elsewhere is someone else.
    let other = UserInfo::service_account("default", "app", "");
    assert!(!authorize(&c, &other, &resource("get", "", "configmaps", "x", "team")).allowed);
}

#[test]
fn bootstrap_policy_gives_admins_everything_and_everyone_discovery() {
    let c = cluster();
    let admin = user(
        "sandbox",
        &["sandbox:cluster-admins", "system:authenticated"],
    );
    let decision = authorize(
        &c,
        &admin,
        &resource("delete", "apps", "deployments", "x", "team"),
    );
    assert!(decision.allowed);
    assert_eq!(
        decision.reason,
        "RBAC: allowed by ClusterRoleBinding \"sandbox:cluster-admins\" of ClusterRole \"cluster-admin\" to Group \"sandbox:cluster-admins\""
    );
    let masters = user("someone", &["system:masters"]);
    assert!(authorize(&c, &masters, &resource("get", "", "nodes", "", "")).allowed);
    let app = UserInfo::service_account("team", "app", "");
    let discovery = |path: &str| Attributes::NonResource {
        verb: "get".into(),
        path: path.into(),
    };
    assert!(authorize(&c, &app, &discovery("/apis/apps/v1")).allowed);
    assert!(authorize(&c, &app, &discovery("/version")).allowed);
    assert!(!authorize(&c, &app, &discovery("/metrics")).allowed);
    let review = resource(
        "create",
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "",
        "",
    );
    assert!(authorize(&c, &app, &review).allowed);
    let nobody = user("jane", &[]);
    assert!(
        !authorize(&c, &nobody, &review).allowed,
        "not authenticated"
    );
}

#[test]
fn rules_match_wildcards_and_subresources_as_the_real_authorizer() {
    let rule = json!({ "apiGroups": ["*"], "resources": ["*/status"], "verbs": ["update"] });
    assert!(rule_allows(
        &rule,
        &resource("update", "apps", "deployments/status", "d", "n")
    ));
    assert!(!rule_allows(
        &rule,
        &resource("update", "apps", "deployments", "d", "n")
    ));
    let rule = json!({ "apiGroups": [""], "resources": ["pods"], "verbs": ["*"] });
    assert!(!rule_allows(
        &rule,
        &resource("get", "", "pods/log", "p", "n")
    ));
    assert!(rule_allows(
        &rule,
        &resource("deletecollection", "", "pods", "", "n")
    ));
    let rule = json!({ "nonResourceURLs": ["/logs/*"], "verbs": ["get"] });
    let path = |p: &str| Attributes::NonResource {
        verb: "get".into(),
        path: p.into(),
    };
    assert!(rule_allows(&rule, &path("/logs/kube.log")));
    assert!(!rule_allows(&rule, &path("/log")));
}

#[test]
fn rules_for_lists_what_a_user_has_in_a_namespace() {
    let c = cluster();
    let app = UserInfo::service_account("team", "app", "");
    let (resources, non_resources) = rules_for(&c, &app, "team");
    assert!(resources.contains(&json!({
        "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["app-creds"],
    })));
    assert!(resources.contains(&json!({
        "verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    })));
    assert!(
        non_resources
            .iter()
            .any(|r| r["nonResourceURLs"][0] == "/api")
    );
    let (elsewhere, _) = rules_for(&c, &app, "default");
    assert!(!elsewhere.iter().any(|r| r["resources"][0] == "configmaps"));
}

#[test]
fn forbidden_messages_read_like_the_real_servers() {
    let app = UserInfo::service_account("team", "app", "");
    assert_eq!(
        forbidden_message(&app, &resource("list", "", "configmaps", "", "team")),
        "User \"system:serviceaccount:team:app\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"team\""
    );
    assert_eq!(
        forbidden_message(
            &app,
            &resource("get", "rbac.authorization.k8s.io", "clusterroles", "x", "")
        ),
        "User \"system:serviceaccount:team:app\" cannot get resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
    );
}
