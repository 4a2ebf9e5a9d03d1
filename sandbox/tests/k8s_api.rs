//! In-process tests of the Kubernetes API emulator over real HTTP on loopback: the verbs,
//! the Status error shapes, fault injection and persistence across restarts.

mod common;

use std::path::Path;

use common::Reply;
use serde_json::{Value, json};
use wid_sandbox::{ClusterDecl, ClusterKind, Fault, FaultAction, Sandbox, k8s};

/// One HTTP answer, its body parsed as JSON (`null` when empty).
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    reply: Reply,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.reply.header(name)
    }
}

/// One request as `k8s-api-test/1.0` (the User-Agent names the default field manager).
async fn request(base: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
    let headers = [
        ("User-Agent", "k8s-api-test/1.0"),
        ("Content-Type", content_type),
    ];
    let reply = common::send(base, method, path, &headers, body).await;
    let body = if reply.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&reply.body).expect("JSON body")
    };
    Answer {
        status: reply.status,
        body,
        reply,
    }
}

async fn get(base: &str, path: &str) -> Answer {
    request(base, "GET", path, "application/json", b"").await
}

async fn send(base: &str, method: &str, path: &str, content_type: &str, body: &Value) -> Answer {
    request(
        base,
        method,
        path,
        content_type,
        body.to_string().as_bytes(),
    )
    .await
}

fn decl() -> ClusterDecl {
    ClusterDecl {
        name: "dev".into(),
        kind: ClusterKind::Generic,
        eks: None,
        gke: None,
        aks: None,
    }
}

async fn start(dir: &Path) -> (Sandbox, String) {
    let sandbox = Sandbox::start(dir, &[decl()])
        .await
        .expect("sandbox starts");
    let base = sandbox.kube_url("dev").expect("dev is served");
    (sandbox, base)
}

const SAS: &str = "/api/v1/namespaces/default/serviceaccounts";

fn sa(name: &str, labels: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": name, "labels": labels } })
}

#[tokio::test]
async fn create_get_list_with_selectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, base) = start(dir.path()).await;

    let created = send(
        &base,
        "POST",
        SAS,
        "application/json",
        &sa("web", json!({ "app": "web", "tier": "front" })),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let meta = &created.body["metadata"];
    assert_eq!(meta["namespace"], "default");
    // ServiceAccounts have no spec, and no generation on a real server.
    assert!(meta.get("generation").is_none(), "{meta}");
    assert!(meta["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(
        meta["creationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(meta["managedFields"][0]["manager"], "k8s-api-test");
    assert_eq!(meta["managedFields"][0]["operation"], "Update");
    send(
        &base,
        "POST",
        SAS,
        "application/json",
        &sa("db", json!({ "app": "db" })),
    )
    .await;

    let fetched = get(&base, &format!("{SAS}/web")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(
        fetched.body["metadata"]["uid"],
        created.body["metadata"]["uid"]
    );

    let names = |answer: &Answer| -> Vec<String> {
        answer.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["metadata"]["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let list = get(&base, &format!("{SAS}?labelSelector=app%3Dweb")).await;
    assert_eq!(list.body["kind"], "ServiceAccountList");
    assert_eq!(list.body["apiVersion"], "v1");
    assert!(list.body["metadata"]["resourceVersion"].as_str().is_some());
    assert_eq!(list.body["items"][0]["kind"], "ServiceAccount");
    assert_eq!(names(&list), ["web"]);
    let list = get(
        &base,
        &format!("{SAS}?labelSelector=app%20in%20(web%2Cdb)%2C!tier"),
    )
    .await;
    assert_eq!(names(&list), ["db"]);
    let list = get(
        &base,
        "/api/v1/serviceaccounts?fieldSelector=metadata.name%3Ddefault",
    )
    .await;
    assert_eq!(
        list.body["items"].as_array().expect("items").len(),
        4,
        "one per namespace"
    );
    let bad = get(&base, &format!("{SAS}?labelSelector=app%20in%20web")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["reason"], "BadRequest");

    let dry = send(
        &base,
        "POST",
        &format!("{SAS}?dryRun=All"),
        "application/json",
        &sa("dry", json!({})),
    )
    .await;
    assert_eq!(dry.status, 201);
    assert_eq!(
        get(&base, &format!("{SAS}/dry")).await.status,
        404,
        "a dry run stores nothing"
    );

    let generated = send(
        &base,
        "POST",
        SAS,
        "application/json",
        &json!({ "metadata": { "generateName": "job-" } }),
    )
    .await;
    assert_eq!(generated.status, 201);
    let name = generated.body["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("job-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn error_shapes_match_the_real_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, base) = start(dir.path()).await;

    let missing = get(&base, &format!("{SAS}/ghost")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "serviceaccounts \"ghost\" not found", "reason": "NotFound",
            "details": { "name": "ghost", "kind": "serviceaccounts" }, "code": 404,
        })
    );
    let again = send(
        &base,
        "POST",
        SAS,
        "application/json",
        &sa("default", json!({})),
    )
    .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["reason"], "AlreadyExists");
    assert_eq!(
        again.body["message"],
        "serviceaccounts \"default\" already exists"
    );
    let bad = send(
        &base,
        "POST",
        SAS,
        "application/json",
        &sa("Bad_Name", json!({})),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["reason"], "Invalid");
    assert_eq!(bad.body["details"]["causes"][0]["field"], "metadata.name");
    let no_ns = send(
        &base,
        "POST",
        "/api/v1/namespaces/nope/serviceaccounts",
        "application/json",
        &sa("x", json!({})),
    )
    .await;
    assert_eq!(no_ns.status, 404);
    assert_eq!(no_ns.body["message"], "namespaces \"nope\" not found");

    let current = get(&base, &format!("{SAS}/default")).await.body;
    let mut stale = current.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["automountServiceAccountToken"] = json!(false);
    let conflict = send(
        &base,
        "PUT",
        &format!("{SAS}/default"),
        "application/json",
        &stale,
    )
    .await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["reason"], "Conflict");
    let mut fresh = current;
    fresh["automountServiceAccountToken"] = json!(false);
    let replaced = send(
        &base,
        "PUT",
        &format!("{SAS}/default"),
        "application/json",
        &fresh,
    )
    .await;
    assert_eq!(replaced.status, 200);
    assert_eq!(replaced.body["automountServiceAccountToken"], false);

    let pod = json!({ "metadata": { "name": "p" }, "spec": { "serviceAccountName": "ghost", "containers": [{ "name": "c" }] } });
    let refused = send(
        &base,
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        &pod,
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body["message"],
        "pods \"p\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found"
    );
    let unknown = get(&base, "/apis/example.com/v1/widgets").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["kind"], "Status");
    let protected = request(
        &base,
        "DELETE",
        "/api/v1/namespaces/default",
        "application/json",
        b"",
    )
    .await;
    assert_eq!(protected.status, 403);
}

#[tokio::test]
async fn server_side_apply_merge_patch_and_conflicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, base) = start(dir.path()).await;
    let path = format!("{SAS}/orders");
    let apply = "application/apply-patch+yaml";
    let manifest = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": { "name": "orders", "namespace": "default", "labels": { "a": "1", "b": "2" } },
        "automountServiceAccountToken": false,
    });

    let no_manager = send(&base, "PATCH", &path, apply, &manifest).await;
    assert_eq!(no_manager.status, 400);
    let created = send(
        &base,
        "PATCH",
        &format!("{path}?fieldManager=wid"),
        apply,
        &manifest,
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let entry = &created.body["metadata"]["managedFields"][0];
    assert_eq!(entry["manager"], "wid");
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert_eq!(
        entry["fieldsV1"],
        json!({ "f:automountServiceAccountToken": {}, "f:metadata": { "f:labels": { "f:a": {}, "f:b": {} } } })
    );
    let rv = created.body["metadata"]["resourceVersion"].clone();
    let yaml = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: orders\n  labels:\n    a: \"1\"\n    b: \"2\"\nautomountServiceAccountToken: false\n";
    let same = request(
        &base,
        "PATCH",
        &format!("{path}?fieldManager=wid"),
        apply,
        yaml.as_bytes(),
    )
    .await;
    assert_eq!(same.status, 200);
    assert_eq!(
        same.body["metadata"]["resourceVersion"], rv,
        "a no-op apply writes nothing"
    );

    let patched = send(
        &base,
        "PATCH",
        &format!("{path}?fieldManager=kubectl-patch"),
        "application/merge-patch+json",
        &json!({ "automountServiceAccountToken": true, "metadata": { "labels": { "c": "3" } } }),
    )
    .await;
    assert_eq!(patched.status, 200);
    assert_eq!(
        patched.body["metadata"]["labels"],
        json!({ "a": "1", "b": "2", "c": "3" })
    );

    let conflict = send(
        &base,
        "PATCH",
        &format!("{path}?fieldManager=wid"),
        apply,
        &manifest,
    )
    .await;
    assert_eq!(conflict.status, 409);
    assert_eq!(
        conflict.body["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .automountServiceAccountToken"
    );
    assert_eq!(
        conflict.body["details"]["causes"][0]["reason"],
        "FieldManagerConflict"
    );
    assert_eq!(
        conflict.body["details"]["causes"][0]["field"],
        ".automountServiceAccountToken"
    );

    // Forced, and without label b: wid takes the field back and b (only wid's) goes.
    let mut smaller = manifest.clone();
    smaller["metadata"]["labels"] = json!({ "a": "1" });
    let forced = send(
        &base,
        "PATCH",
        &format!("{path}?fieldManager=wid&force=true"),
        apply,
        &smaller,
    )
    .await;
    assert_eq!(forced.status, 200, "{:?}", forced.body);
    assert_eq!(forced.body["automountServiceAccountToken"], false);
    assert_eq!(
        forced.body["metadata"]["labels"],
        json!({ "a": "1", "c": "3" })
    );

    let json_patch = send(
        &base,
        "PATCH",
        &path,
        "application/json-patch+json",
        &json!([{ "op": "remove", "path": "/metadata/labels/c" }]),
    )
    .await;
    assert_eq!(json_patch.status, 200);
    assert_eq!(json_patch.body["metadata"]["labels"], json!({ "a": "1" }));
    let unsupported = send(&base, "PATCH", &path, "text/plain", &json!({})).await;
    assert_eq!(unsupported.status, 415);

    let uid = json_patch.body["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_owned();
    let wrong = send(
        &base,
        "DELETE",
        &path,
        "application/json",
        &json!({ "preconditions": { "uid": "other" } }),
    )
    .await;
    assert_eq!(wrong.status, 409);
    let deleted = send(
        &base,
        "DELETE",
        &path,
        "application/json",
        &json!({ "preconditions": { "uid": uid } }),
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(get(&base, &path).await.status, 404);
}

#[tokio::test]
async fn namespaces_pods_and_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, base) = start(dir.path()).await;
    let ns = send(
        &base,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        &json!({ "metadata": { "name": "prod" } }),
    )
    .await;
    assert_eq!(ns.status, 201);
    assert_eq!(
        get(&base, "/api/v1/namespaces/prod/serviceaccounts/default")
            .await
            .status,
        200
    );
    assert_eq!(
        get(&base, "/api/v1/namespaces/prod/configmaps/kube-root-ca.crt")
            .await
            .status,
        200
    );

    let pod = json!({ "metadata": { "name": "web" }, "spec": { "containers": [{ "name": "c", "image": "nginx" }] } });
    let created = send(
        &base,
        "POST",
        "/api/v1/namespaces/prod/pods",
        "application/json",
        &pod,
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["spec"]["serviceAccountName"], "default");
    assert_eq!(
        created.body["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    let pod_uid = created.body["metadata"]["uid"].clone();

    let token_path = "/api/v1/namespaces/prod/serviceaccounts/default/token";
    let request_body = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": { "audiences": ["sts.amazonaws.com"], "expirationSeconds": 900,
                  "boundObjectRef": { "kind": "Pod", "apiVersion": "v1", "name": "web", "uid": pod_uid } },
    });
    let answer = send(&base, "POST", token_path, "application/json", &request_body).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let token = answer.body["status"]["token"].as_str().expect("token");
    let payload = token.split('.').nth(1).expect("JWT-shaped");
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("claims");
    assert_eq!(claims["sub"], "system:serviceaccount:prod:default");
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], pod_uid);
    assert!(
        answer.body["status"]["expirationTimestamp"]
            .as_str()
            .is_some()
    );

    let short = send(
        &base,
        "POST",
        token_path,
        "application/json",
        &json!({ "spec": { "expirationSeconds": 60 } }),
    )
    .await;
    assert_eq!(short.status, 422);
    assert_eq!(
        short.body["message"],
        "TokenRequest.authentication.k8s.io \"default\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );

    let gone = request(
        &base,
        "DELETE",
        "/api/v1/namespaces/prod",
        "application/json",
        b"",
    )
    .await;
    assert_eq!(gone.status, 200);
    assert_eq!(
        get(&base, "/api/v1/namespaces/prod/pods/web").await.status,
        404
    );
    assert_eq!(
        get(&base, "/api/v1/namespaces/prod/serviceaccounts/default")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn injected_throttle_then_success() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, base) = start(dir.path()).await;
    sandbox.inject(Fault {
        api: "k8s:get serviceaccounts".into(),
        action: FaultAction::Throttle,
        times: Some(1),
    });
    let throttled = get(&base, &format!("{SAS}/default")).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("1"));
    assert_eq!(throttled.body["reason"], "TooManyRequests");
    assert_eq!(get(&base, &format!("{SAS}/default")).await.status, 200);
    assert_eq!(sandbox.calls().get("k8s:get serviceaccounts"), Some(&2));

    sandbox.inject(Fault {
        api: "k8s:discovery".into(),
        action: FaultAction::ServerError,
        times: Some(1),
    });
    let failed = get(&base, "/version").await;
    assert_eq!(failed.status, 500);
    assert_eq!(failed.body["reason"], "InternalError");
    assert_eq!(get(&base, "/version").await.body["gitVersion"], "v1.35.0");
}

#[tokio::test]
async fn state_persists_across_restarts_and_fixtures_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uid = {
        let (sandbox, base) = start(dir.path()).await;
        let fixtures = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: legacy\n  namespace: shop\nspec:\n  serviceAccountName: gone\n  containers:\n  - name: c\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: system:reader\nrules: []\n";
        let ids = k8s::load_manifests(sandbox.shared(), "dev", fixtures).expect("fixtures load");
        assert_eq!(ids, ["pod/shop/legacy", "clusterrole/system:reader"]);
        let bad = k8s::load_manifests(
            sandbox.shared(),
            "dev",
            "apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n",
        );
        assert!(matches!(bad, Err(k8s::LoadError::UnknownKind { .. })));
        let created = send(
            &base,
            "POST",
            SAS,
            "application/json",
            &sa("kept", json!({})),
        )
        .await;
        created.body["metadata"]["uid"].clone()
    };
    let (_sandbox, base) = start(dir.path()).await;
    let kept = get(&base, &format!("{SAS}/kept")).await;
    assert_eq!(kept.status, 200);
    assert_eq!(kept.body["metadata"]["uid"], uid);
    let pod = get(&base, "/api/v1/namespaces/shop/pods/legacy").await;
    assert_eq!(pod.body["spec"]["serviceAccountName"], "gone");
    assert_eq!(
        get(&base, "/api/v1/namespaces/shop/serviceaccounts/default")
            .await
            .status,
        200
    );
    let role = get(
        &base,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:reader",
    )
    .await;
    assert_eq!(role.status, 200);
}

#[tokio::test]
async fn eks_cluster_tokens_carry_the_eks_issuer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let decl = ClusterDecl {
        name: "prod".into(),
        kind: ClusterKind::Eks,
        eks: Some(wid_sandbox::EksDecl {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            name: "prod".into(),
        }),
        gke: None,
        aks: None,
    };
    let sandbox = Sandbox::start(dir.path(), &[decl])
        .await
        .expect("sandbox starts");
    let base = sandbox.kube_url("prod").expect("prod is served");
    let answer = send(
        &base,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "application/json",
        &json!({ "spec": { "audiences": ["sts.amazonaws.com"] } }),
    )
    .await;
    assert_eq!(answer.status, 201);
    let token = answer.body["status"]["token"].as_str().expect("token");
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("JWT-shaped"))
            .expect("base64url"),
    )
    .expect("claims");
    let issuer = claims["iss"].as_str().expect("iss");
    assert!(
        issuer.starts_with("https://oidc.eks.us-east-1.amazonaws.com/id/"),
        "{issuer}"
    );
}
