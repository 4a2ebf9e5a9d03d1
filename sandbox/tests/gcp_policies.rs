//! IAM policies over HTTP, on service accounts (IAM: options in the query, the body
//! empty) and projects (Resource Manager v1 and v3: options in the body), as the
//! google-cloud-rust clients send them: etags and `ABORTED`, versions and conditions,
//! audit configs, and what IAM checks in the members it is given.

mod common;

use common::{GCP_NUMBER, Reply, gcloud_like, gcp, gke_prod};
use serde_json::{Value, json};
use wid_sandbox::{Fault, FaultAction, Sandbox, gcp as sandbox_gcp};

const EMAIL: &str = "orders-prod@acme-prod.iam.gserviceaccount.com";
const CONCURRENT: &str = "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.";
const POOL_MEMBER: &str = "serviceAccount:acme-prod.svc.id.goog[payments/orders]";

async fn start(dir: &std::path::Path) -> Sandbox {
    let sb = Sandbox::start(dir, &gke_prod())
        .await
        .expect("sandbox starts");
    let body = json!({ "accountId": "orders-prod", "serviceAccount": {} }).to_string();
    let created = gcp(
        &sb,
        "POST",
        "/gcp/iam/v1/projects/acme-prod/serviceAccounts",
        Some(&body),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    sb
}

fn sa_path(verb: &str) -> String {
    format!("/gcp/iam/v1/projects/-/serviceAccounts/{EMAIL}:{verb}")
}

/// The Rust client's service-account getIamPolicy: `{}` body, options in the query.
async fn sa_get(sb: &Sandbox, version: u32) -> Reply {
    let path = format!(
        "{}?options.requestedPolicyVersion={version}",
        sa_path("getIamPolicy")
    );
    gcp(sb, "POST", &path, None).await
}

/// The Rust client's setIamPolicy body: `resource`, `policy` and `updateMask`.
async fn sa_set(sb: &Sandbox, policy: Value) -> Reply {
    let body = json!({
        "resource": format!("projects/-/serviceAccounts/{EMAIL}"),
        "policy": policy,
        "updateMask": "bindings,etag",
    });
    gcp(
        sb,
        "POST",
        &sa_path("setIamPolicy"),
        Some(&body.to_string()),
    )
    .await
}

async fn project_get(sb: &Sandbox, api: &str, version: u32) -> Reply {
    let body = json!({ "resource": "projects/acme-prod", "options": { "requestedPolicyVersion": version } });
    gcp(
        sb,
        "POST",
        &format!("/gcp/crm/{api}/projects/acme-prod:getIamPolicy"),
        Some(&body.to_string()),
    )
    .await
}

async fn project_set(sb: &Sandbox, api: &str, body: Value) -> Reply {
    gcp(
        sb,
        "POST",
        &format!("/gcp/crm/{api}/projects/acme-prod:setIamPolicy"),
        Some(&body.to_string()),
    )
    .await
}

fn error(reply: &Reply) -> (u16, String, String) {
    let e = &reply.json()["error"];
    (
        reply.status,
        e["status"].as_str().unwrap_or_default().to_owned(),
        e["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A blind write of one `roles/viewer` binding for `member` to the project policy.
async fn grant(sb: &Sandbox, member: &str) -> Reply {
    let policy = json!({ "policy": { "bindings": [binding("roles/viewer", &[member])] } });
    project_set(sb, "v3", policy).await
}

fn binding(role: &str, members: &[&str]) -> Value {
    json!({ "role": role, "members": members })
}

#[tokio::test]
async fn service_account_policies_take_options_in_the_query_and_etags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;
    let empty = sa_get(&sb, 3).await;
    assert_eq!(
        (empty.status, empty.json()),
        (200, json!({ "etag": "ACAB" }))
    );
    // The options do not go in the body of this variant.
    let in_body = gcp(
        &sb,
        "POST",
        &sa_path("getIamPolicy"),
        Some(r#"{"options":{"requestedPolicyVersion":3}}"#),
    )
    .await;
    assert_eq!(
        error(&in_body),
        (
            400,
            "INVALID_ARGUMENT".into(),
            "Invalid JSON payload received. Unknown name \"options\": Cannot find field.".into()
        )
    );
    // gcloud's variant: an empty body.
    let gcloud = gcloud_like(
        &sb,
        "POST",
        &format!(
            "{}?options.requestedPolicyVersion=3",
            sa_path("getIamPolicy")
        ),
        "",
    )
    .await;
    assert_eq!(gcloud.json(), json!({ "etag": "ACAB" }));

    let role = "roles/iam.workloadIdentityUser";
    let written = sa_set(
        &sb,
        json!({ "version": 3, "bindings": [binding(role, &[POOL_MEMBER])], "etag": "ACAB" }),
    )
    .await;
    assert_eq!(written.status, 200, "{}", written.body);
    let written = written.json();
    assert_eq!(written["version"], 1);
    assert_eq!(written["bindings"], json!([binding(role, &[POOL_MEMBER])]));
    let etag = written["etag"].as_str().expect("etag").to_owned();
    assert!(base64_ok(&etag), "{etag}");
    assert_eq!(sa_get(&sb, 3).await.json(), written);

    // Someone else writes in between: the stale etag is ABORTED.
    let other = sa_set(
        &sb,
        json!({ "bindings": [binding(role, &[POOL_MEMBER, "user:b@example.com"])], "etag": etag }),
    )
    .await;
    assert_eq!(other.status, 200);
    let stale = sa_set(&sb, json!({ "bindings": [], "etag": etag })).await;
    let (code, status, message) = error(&stale);
    assert_eq!((code, status.as_str()), (409, "ABORTED"));
    assert!(message.starts_with(CONCURRENT), "{message}");
    assert!(
        message.contains(&format!("The request's ETag '{etag}' did not match")),
        "{message}"
    );
    // Without an etag the write is a blind overwrite.
    let blind = sa_set(&sb, json!({ "bindings": [] })).await;
    assert_eq!(blind.json(), json!({ "etag": blind.json()["etag"] }));
    // Roles that cannot be granted on a service account.
    let project_role = sa_set(
        &sb,
        json!({ "bindings": [binding("roles/storage.admin", &["user:b@example.com"])] }),
    )
    .await;
    assert_eq!(
        error(&project_role).2,
        "Role roles/storage.admin is not supported for this resource."
    );
}

fn base64_ok(text: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .is_ok()
}

#[tokio::test]
async fn conditions_are_kept_byte_for_byte_and_need_version_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;
    let condition = r#"{"title":"bis 2030 – «prod»","expression":"request.time < timestamp(\"2030-01-01T00:00:00Z\") && resource.name.startsWith(\"projects/_/buckets/a\\u0026b\")","description":"kept as written"}"#;
    let body = format!(
        r#"{{"policy":{{"version":3,"bindings":[{{"role":"roles/storage.objectViewer","members":["serviceAccount:{EMAIL}"],"condition":{condition}}},{{"role":"roles/viewer","members":["user:a@example.com"]}}],"etag":"ACAB"}}}}"#
    );
    let written = gcp(
        &sb,
        "POST",
        "/gcp/crm/v3/projects/acme-prod:setIamPolicy",
        Some(&body),
    )
    .await;
    assert_eq!(written.status, 200, "{}", written.body);
    let stored: Value = serde_json::from_str(condition).expect("json");
    let read = project_get(&sb, "v3", 3).await;
    assert_eq!(read.json()["version"], 3);
    assert_eq!(read.json()["bindings"][0]["condition"], stored);
    assert!(
        read.body
            .contains(&serde_json::to_string(&stored).expect("json")),
        "{}",
        read.body
    );
    // v1 (and gcloud's v1 API) see the same policy.
    assert_eq!(project_get(&sb, "v1", 3).await.json(), read.json());
    for version in [0, 1] {
        assert_eq!(
            error(&project_get(&sb, "v1", version).await).2,
            "Requested policy version (1) cannot be less than the existing policy version (3). For more information, please refer to https://cloud.google.com/iam/docs/policies#versions."
        );
    }
    for version in [2, 4] {
        assert_eq!(error(&project_get(&sb, "v3", version).await).0, 400);
        assert_eq!(error(&sa_get(&sb, version).await).0, 400);
    }
    let etag = read.json()["etag"].clone();
    let v1_write = project_set(
        &sb,
        "v3",
        json!({ "policy": { "version": 1, "bindings": [], "etag": etag } }),
    )
    .await;
    assert!(error(&v1_write).2.starts_with(
        "Specified policy version (1) cannot be less than the existing policy version (3)."
    ));
    let v1_condition = project_set(
        &sb,
        "v3",
        json!({ "policy": { "version": 1, "bindings": [{ "role": "roles/viewer", "members": ["user:a@example.com"], "condition": { "title": "t", "expression": "true" } }] } }),
    )
    .await;
    assert_eq!(error(&v1_condition).0, 400);
}

#[tokio::test]
async fn project_policies_keep_audit_configs_and_check_members() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;
    let audit = json!([{ "service": "allServices", "auditLogConfigs": [{ "logType": 3 }, { "logType": "ADMIN_READ", "exemptedMembers": ["user:a@example.com"] }] }]);
    let with_audit = project_set(
        &sb,
        "v1",
        json!({ "policy": { "auditConfigs": audit, "bindings": [binding("roles/viewer", &["user:a@example.com"])] }, "updateMask": "auditConfigs,bindings,etag" }),
    )
    .await;
    assert_eq!(with_audit.status, 200, "{}", with_audit.body);
    // The Rust clients send no mask: bindings and etag only, audit configs untouched.
    let etag = with_audit.json()["etag"].clone();
    let next = project_set(&sb, "v3", json!({ "resource": "projects/acme-prod", "policy": { "version": 3, "bindings": [binding("roles/viewer", &["user:b@example.com"])], "etag": etag } })).await;
    assert_eq!(next.status, 200, "{}", next.body);
    let named = gcloud_like(
        &sb,
        "POST",
        "/gcp/crm/v1/projects/acme-prod:getIamPolicy",
        r#"{"options":{"requestedPolicyVersion":3}}"#,
    )
    .await
    .json();
    assert_eq!(
        named["auditConfigs"],
        json!([{ "service": "allServices", "auditLogConfigs": [{ "logType": "DATA_READ" }, { "logType": "ADMIN_READ", "exemptedMembers": ["user:a@example.com"] }] }])
    );
    assert_eq!(
        project_get(&sb, "v3", 3).await.json()["auditConfigs"][0]["auditLogConfigs"][0]["logType"],
        3
    );
    assert_eq!(
        named["bindings"],
        json!([binding("roles/viewer", &["user:b@example.com"])])
    );

    let missing_sa = grant(
        &sb,
        "serviceAccount:nobody@acme-prod.iam.gserviceaccount.com",
    )
    .await;
    assert_eq!(
        error(&missing_sa),
        (
            400,
            "INVALID_ARGUMENT".into(),
            "Service account nobody@acme-prod.iam.gserviceaccount.com does not exist.".into()
        )
    );
    let principal = format!(
        "principal://iam.googleapis.com/projects/{GCP_NUMBER}/locations/global/workloadIdentityPools/acme-prod.svc.id.goog/subject/ns/payments/sa/orders"
    );
    assert_eq!(grant(&sb, &principal).await.status, 200);
    assert_eq!(grant(&sb, POOL_MEMBER).await.status, 200);
    assert_eq!(
        grant(
            &sb,
            "serviceAccount:orders-prod@acme-prod.iam.gserviceaccount.com"
        )
        .await
        .status,
        200
    );
    let wrong_number = grant(&sb, "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/acme-prod.svc.id.goog/subject/ns/payments/sa/orders").await;
    let pool_missing = "Identity Pool does not exist (acme-prod.svc.id.goog). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API.";
    assert_eq!(error(&wrong_number).2, pool_missing);
    // Without Workload Identity on any cluster the project has no pool.
    sb.shared().write(|state| {
        assert!(sandbox_gcp::set_workload_identity(
            state,
            "acme-prod",
            "us-central1",
            "prod",
            false
        ));
    });
    assert_eq!(
        error(&grant(&sb, "serviceAccount:acme-prod.svc.id.goog[payments/other]").await).2,
        pool_missing
    );
    assert_eq!(
        error(&grant(&sb, "serviceAccount:acme-dev.svc.id.goog[payments/orders]").await).0,
        400
    );
    let syntax = "Policy members must be of the form \"<type>:<value>\".";
    for bad in ["alice@example.com", "user:alice", "robot:x@example.com"] {
        assert_eq!(error(&grant(&sb, bad).await).2, syntax, "{bad}");
    }
    let bad_role = project_set(&sb, "v3", json!({ "policy": { "bindings": [binding("storage.objectViewer", &["user:a@example.com"])] } })).await;
    assert_eq!(
        error(&bad_role).2,
        "Role storage.objectViewer is not supported for this resource."
    );
    let members: Vec<String> = (0..1501)
        .map(|i| format!("user:u{i}@example.com"))
        .collect();
    let too_many = project_set(
        &sb,
        "v3",
        json!({ "policy": { "bindings": [{ "role": "roles/viewer", "members": members }] } }),
    )
    .await;
    assert_eq!(
        error(&too_many).2,
        "The number of members in the policy (1,501) is larger than the maximum allowed size 1,500."
    );
}

#[tokio::test]
async fn an_aborted_write_is_retried_after_a_fresh_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;
    let read = project_get(&sb, "v3", 3).await.json();
    // Someone else's change lands between this client's read and write.
    let theirs = project_set(&sb, "v1", json!({ "policy": { "bindings": [binding("roles/viewer", &["group:auditors@example.com"])], "etag": read["etag"] } })).await;
    assert_eq!(theirs.status, 200);
    let mine = json!({ "policy": { "version": 3, "bindings": [binding("roles/storage.objectViewer", &[POOL_MEMBER])], "etag": read["etag"] } });
    assert_eq!(error(&project_set(&sb, "v3", mine).await).0, 409);
    // An injected ABORTED on the retry's write, then the write goes through.
    sb.inject(Fault {
        api: "gcp:crm.projects.setIamPolicy".into(),
        action: FaultAction::Conflict,
        times: Some(1),
    });
    for attempt in 0..2 {
        let fresh = project_get(&sb, "v3", 3).await.json();
        let mut bindings = fresh["bindings"].as_array().cloned().unwrap_or_default();
        bindings.push(binding("roles/storage.objectViewer", &[POOL_MEMBER]));
        let write = project_set(
            &sb,
            "v3",
            json!({ "policy": { "version": 3, "bindings": bindings, "etag": fresh["etag"] } }),
        )
        .await;
        assert_eq!(
            write.status,
            if attempt == 0 { 409 } else { 200 },
            "{}",
            write.body
        );
    }
    let last = project_get(&sb, "v3", 3).await.json();
    assert_eq!(
        last["bindings"],
        json!([
            binding("roles/storage.objectViewer", &[POOL_MEMBER]),
            binding("roles/viewer", &["group:auditors@example.com"])
        ])
    );
    let calls = sb.calls();
    assert_eq!(
        (
            calls["gcp:crm.projects.getIamPolicy"],
            calls["gcp:crm.projects.setIamPolicy"]
        ),
        (4, 4)
    );
}
