//! The Kubernetes API emulator's authentication, authorization and write options over
//! HTTP: ServiceAccount tokens, the access reviews, 403s, and DeleteOptions. (kubectl
//! sends no bearer token over plain HTTP, so tokens are tested here rather than with it.)

mod common;

use serde_json::{Value, json};
use wid_sandbox::{ClusterDecl, ClusterKind, Sandbox};

async fn start(dir: &std::path::Path) -> (Sandbox, String) {
    let decl = ClusterDecl {
        name: "dev".into(),
        kind: ClusterKind::Generic,
        eks: None,
        gke: None,
        aks: None,
    };
    let sandbox = Sandbox::start(dir, &[decl]).await.expect("sandbox starts");
    let base = sandbox.kube_url("dev").expect("dev is served");
    (sandbox, base)
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Value) {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let raw = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let reply = common::send(base, method, path, &all, raw.as_bytes()).await;
    let json = if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    };
    (reply.status, json)
}

const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

fn review(verb: &str, resource: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": { "resourceAttributes": { "verb": verb, "resource": resource, "namespace": namespace } },
    })
}

#[tokio::test]
async fn service_account_tokens_authenticate_and_are_authorized_by_rbac() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, base) = start(dir.path()).await;
    let (status, answer) = call(
        &base,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        &[],
        json!({ "spec": {} }),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let token = answer["status"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    let (status, who) = call(
        &base,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &auth,
        json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview" }),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        who["status"]["userInfo"]["username"],
        "system:serviceaccount:default:default"
    );
    let (_, can) = call(
        &base,
        "POST",
        SSAR,
        &auth,
        review("list", "secrets", "default"),
    )
    .await;
    assert_eq!(can["status"], json!({ "allowed": false }));
    let (status, denied) = call(
        &base,
        "GET",
        "/api/v1/namespaces/default/secrets",
        &auth,
        Value::Null,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        denied["message"],
        "secrets is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    // TokenReview: the admin may ask who a token is, for which audiences.
    let review = |audiences: Value, token: &str| {
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": { "token": token, "audiences": audiences },
        })
    };
    let reviews = "/apis/authentication.k8s.io/v1/tokenreviews";
    let (status, answer) = call(&base, "POST", reviews, &[], review(json!([]), &token)).await;
    assert_eq!(status, 201);
    assert_eq!(answer["status"]["authenticated"], true, "{answer}");
    assert_eq!(
        answer["status"]["user"]["username"],
        "system:serviceaccount:default:default"
    );
    let (_, answer) = call(
        &base,
        "POST",
        reviews,
        &[],
        review(json!(["sts.amazonaws.com"]), &token),
    )
    .await;
    assert_eq!(answer["status"]["authenticated"], false, "{answer}");
    let (_, answer) = call(
        &base,
        "POST",
        reviews,
        &[],
        review(json!([]), "not.a.token"),
    )
    .await;
    assert_eq!(answer["status"]["authenticated"], false, "{answer}");
    let (status, _) = call(&base, "POST", reviews, &auth, review(json!([]), &token)).await;
    assert_eq!(status, 403, "a ServiceAccount may not review tokens");

    // Discovery is everyone's (system:discovery).
    let (status, _) = call(&base, "GET", "/api/v1", &auth, Value::Null).await;
    assert_eq!(status, 200);

    // Once the ServiceAccount is gone, so is its token.
    let (status, _) = call(
        &base,
        "DELETE",
        "/api/v1/namespaces/default/serviceaccounts/default",
        &[],
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&base, "GET", "/api/v1", &auth, Value::Null).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["reason"], "Unauthorized");
}

#[tokio::test]
async fn subject_access_reviews_answer_for_the_named_subject() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, base) = start(dir.path()).await;
    let (status, answer) = call(&base, "POST", SSAR, &[], review("delete", "nodes", "")).await;
    assert_eq!(status, 201);
    assert_eq!(answer["status"]["allowed"], true);
    assert_eq!(
        answer["status"]["reason"],
        "RBAC: allowed by ClusterRoleBinding \"sandbox:cluster-admins\" of ClusterRole \"cluster-admin\" to Group \"sandbox:cluster-admins\""
    );
    let sar = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": { "user": "jane", "groups": ["system:masters"], "resourceAttributes": { "verb": "get", "resource": "pods", "namespace": "default" } },
    });
    let (status, answer) = call(
        &base,
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        &[],
        sar,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(answer["status"]["allowed"], true, "{answer}");
    let local = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "LocalSubjectAccessReview",
        "spec": { "user": "jane", "resourceAttributes": { "verb": "get", "resource": "pods", "namespace": "other" } },
    });
    let (status, answer) = call(
        &base,
        "POST",
        "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
        &[],
        local,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = call(&base, "POST", SSAR, &[], json!({ "spec": {} })).await;
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = call(
        &base,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        &[],
        json!({ "spec": {} }),
    )
    .await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (400, Some("no namespace on request"))
    );
    // Reviews are answered, never stored or listed.
    let (status, _) = call(&base, "GET", SSAR, &[], Value::Null).await;
    assert_eq!(status, 405);
    // The admin may impersonate anyone; jane, even in group ops, may not get pods.
    let (status, answer) = call(
        &base,
        "POST",
        SSAR,
        &[("Impersonate-User", "jane"), ("Impersonate-Group", "ops")],
        review("get", "pods", "default"),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(answer["status"], json!({ "allowed": false }));
}

#[tokio::test]
async fn delete_options_preconditions_and_dry_run_in_the_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, base) = start(dir.path()).await;
    let path = "/api/v1/namespaces/default/configmaps";
    let (status, cm) = call(
        &base,
        "POST",
        path,
        &[],
        json!({ "metadata": { "name": "c" } }),
    )
    .await;
    assert_eq!(status, 201);
    let object = format!("{path}/c");
    let (status, answer) = call(
        &base,
        "DELETE",
        &object,
        &[],
        json!({ "kind": "DeleteOptions", "apiVersion": "v1", "preconditions": { "uid": "not-it" } }),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .expect("message")
            .contains("Precondition failed: UID in precondition: not-it")
    );
    let (status, _) = call(
        &base,
        "DELETE",
        &format!("{object}?dryRun=All"),
        &[],
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    let (status, still) = call(&base, "GET", &object, &[], Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(
        still["metadata"]["resourceVersion"],
        cm["metadata"]["resourceVersion"]
    );
    let (status, answer) = call(
        &base,
        "POST",
        &format!("{path}?dryRun=Yes"),
        &[],
        json!({ "metadata": { "name": "d" } }),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    let rv = cm["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    let (status, _) = call(
        &base,
        "DELETE",
        &object,
        &[],
        json!({ "preconditions": { "resourceVersion": rv } }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(&base, "GET", &object, &[], Value::Null).await;
    assert_eq!(status, 404);

    // deletecollection, dry run first.
    for name in ["x1", "x2"] {
        let body = json!({ "metadata": { "name": name, "labels": { "batch": "x" } } });
        assert_eq!(call(&base, "POST", path, &[], body).await.0, 201);
    }
    let selected = format!("{path}?labelSelector=batch%3Dx");
    let (status, list) = call(
        &base,
        "DELETE",
        &selected,
        &[],
        json!({ "kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"] }),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let (_, left) = call(&base, "GET", &selected, &[], Value::Null).await;
    assert_eq!(
        left["items"].as_array().map(Vec::len),
        Some(2),
        "a dry run deleted"
    );
    let (status, _) = call(&base, "DELETE", &selected, &[], Value::Null).await;
    assert_eq!(status, 200);
    let (_, left) = call(&base, "GET", &selected, &[], Value::Null).await;
    assert_eq!(left["items"].as_array().map(Vec::len), Some(0));
    let (status, _) = call(&base, "DELETE", "/api/v1/namespaces", &[], Value::Null).await;
    assert_eq!(status, 405, "namespaces cannot be deleted as a collection");
}
