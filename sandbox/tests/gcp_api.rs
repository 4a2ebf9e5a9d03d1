//! The GCP emulator over HTTP, with the exact wire shapes the google-cloud-rust clients
//! send (`$alt=json;enum-encoding=int`, `{}` bodies on POST, options in the query for
//! IAM and in the body for Resource Manager, `resource` and `updateMask` in
//! setIamPolicy bodies) and gcloud's (`alt=json`): service accounts, the error shapes,
//! GKE clusters, faults, counters, tokens and persistence. Policy semantics are in
//! `gcp_policies.rs`.

mod common;

use common::{GCP_NUMBER, GCP_PROJECT, Reply, gcloud_like, gcp, gke_prod, send};
use serde_json::{Value, json};
use wid_sandbox::{Fault, FaultAction, Sandbox, gcp as sandbox_gcp};

const SA: &str = "/gcp/iam/v1/projects/acme-prod/serviceAccounts";
const EMAIL: &str = "orders-prod@acme-prod.iam.gserviceaccount.com";

async fn start(dir: &std::path::Path) -> Sandbox {
    Sandbox::start(dir, &gke_prod())
        .await
        .expect("sandbox starts")
}

/// Creates `id` in acme-prod the way the Rust client does (it also sends `name`).
async fn create(sb: &Sandbox, id: &str) -> Reply {
    let body = json!({
        "name": "projects/acme-prod",
        "accountId": id,
        "serviceAccount": { "displayName": "Orders", "description": "wid: payments" },
    });
    gcp(sb, "POST", SA, Some(&body.to_string())).await
}

fn assert_error(reply: &Reply, code: u16, status: &str, message: &str) {
    assert_eq!(reply.status, code, "{}", reply.body);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], code, "{}", reply.body);
    assert_eq!(error["status"], status, "{}", reply.body);
    assert_eq!(error["message"], message, "{}", reply.body);
}

#[tokio::test]
async fn service_accounts_are_created_read_listed_changed_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;

    let created = create(&sb, "orders-prod").await;
    assert_eq!(created.status, 200, "{}", created.body);
    let account = created.json();
    let unique_id = account["uniqueId"].as_str().expect("uniqueId").to_owned();
    assert_eq!(unique_id.len(), 21);
    assert_eq!(
        account,
        json!({
            "name": format!("projects/acme-prod/serviceAccounts/{EMAIL}"),
            "projectId": "acme-prod",
            "uniqueId": unique_id,
            "email": EMAIL,
            "displayName": "Orders",
            "etag": "MDEwMjE5MjA=",
            "description": "wid: payments",
            "oauth2ClientId": unique_id,
        })
    );
    assert!(
        created
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );

    // By email or unique id, under `-` or the project.
    for path in [
        format!("/gcp/iam/v1/projects/-/serviceAccounts/{EMAIL}"),
        format!("{SA}/{EMAIL}"),
        format!("/gcp/iam/v1/projects/-/serviceAccounts/{unique_id}"),
        "/gcp/iam/v1/projects/-/serviceAccounts/orders-prod%40acme-prod.iam.gserviceaccount.com"
            .to_owned(),
    ] {
        let got = gcp(&sb, "GET", &path, None).await;
        assert_eq!(got.status, 200, "{path}: {}", got.body);
        assert_eq!(got.json(), account);
    }

    // The Rust client always sends pageSize and pageToken, zero and empty by default.
    for id in ["reports-prod", "billing-prod"] {
        assert_eq!(create(&sb, id).await.status, 200);
    }
    let all = gcp(&sb, "GET", &format!("{SA}?pageSize=0&pageToken="), None).await;
    let emails: Vec<String> = all.json()["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["email"].as_str().expect("email").to_owned())
        .collect();
    assert_eq!(
        emails,
        [
            "billing-prod@acme-prod.iam.gserviceaccount.com",
            EMAIL,
            "reports-prod@acme-prod.iam.gserviceaccount.com"
        ]
    );
    assert_eq!(all.json().get("nextPageToken"), None);
    let mut token = String::new();
    let mut paged = Vec::new();
    loop {
        let page = gcp(
            &sb,
            "GET",
            &format!("{SA}?pageSize=2&pageToken={token}"),
            None,
        )
        .await;
        let page = page.json();
        for a in page["accounts"].as_array().expect("accounts") {
            paged.push(a["email"].as_str().expect("email").to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, emails);
    let empty = gcp(
        &sb,
        "GET",
        "/gcp/iam/v1/projects/acme-dev/serviceAccounts",
        None,
    )
    .await;
    assert_eq!((empty.status, empty.json()), (200, json!({})));

    // PATCH changes what the mask names; PUT only the display name.
    let patch = json!({
        "serviceAccount": { "name": format!("projects/acme-prod/serviceAccounts/{EMAIL}"), "displayName": "ignored", "description": "wid: payments v2" },
        "updateMask": "description",
    });
    let patched = gcp(
        &sb,
        "PATCH",
        &format!("{SA}/{EMAIL}"),
        Some(&patch.to_string()),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        (
            patched.json()["displayName"].clone(),
            patched.json()["description"].clone()
        ),
        (json!("Orders"), json!("wid: payments v2"))
    );
    let no_mask = gcp(
        &sb,
        "PATCH",
        &format!("{SA}/{EMAIL}"),
        Some(r#"{"serviceAccount":{}}"#),
    )
    .await;
    assert_eq!(no_mask.status, 400);
    let put = json!({ "name": format!("projects/acme-prod/serviceAccounts/{EMAIL}"), "displayName": "Orders v3", "etag": "MDEwMjE5MjA=" });
    let updated = gcp(&sb, "PUT", &format!("{SA}/{EMAIL}"), Some(&put.to_string())).await;
    assert_eq!(updated.json()["displayName"], "Orders v3");
    assert_eq!(updated.json()["description"], "wid: payments v2");

    // DELETE answers `{}`: the Rust client rejects an empty 200 body.
    let deleted = gcp(
        &sb,
        "DELETE",
        &format!("/gcp/iam/v1/projects/-/serviceAccounts/{EMAIL}"),
        None,
    )
    .await;
    assert_eq!((deleted.status, deleted.body.as_str()), (200, "{}"));
    let gone = gcp(
        &sb,
        "GET",
        &format!("/gcp/iam/v1/projects/-/serviceAccounts/{EMAIL}"),
        None,
    )
    .await;
    assert_error(
        &gone,
        404,
        "NOT_FOUND",
        &format!("Service account projects/-/serviceAccounts/{EMAIL} does not exist."),
    );
    let again = gcp(&sb, "DELETE", &format!("{SA}/{EMAIL}"), None).await;
    assert_error(
        &again,
        404,
        "NOT_FOUND",
        &format!("Service account projects/acme-prod/serviceAccounts/{EMAIL} does not exist."),
    );
}

#[tokio::test]
async fn errors_have_googles_shape_and_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;

    let anonymous = send(&sb.cloud_url(), "GET", SA, &[], b"").await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(
        anonymous.json()["error"]["details"][0]["reason"],
        "CREDENTIALS_MISSING"
    );
    let empty_bearer = send(
        &sb.cloud_url(),
        "GET",
        SA,
        &[("Authorization", "Bearer ")],
        b"",
    )
    .await;
    assert_eq!(empty_bearer.status, 401);

    assert_eq!(create(&sb, "orders-prod").await.status, 200);
    let duplicate = create(&sb, "orders-prod").await;
    assert_error(
        &duplicate,
        409,
        "ALREADY_EXISTS",
        "Service account orders-prod already exists within project projects/acme-prod.",
    );
    assert_eq!(
        duplicate.json()["error"]["details"][0],
        json!({
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resourceName": format!("projects/acme-prod/serviceAccounts/{EMAIL}"),
        })
    );
    assert_error(
        &create(&sb, "short").await,
        400,
        "INVALID_ARGUMENT",
        "The account ID \"short\" does not have a length between 6 and 30.",
    );
    assert_error(
        &create(&sb, "Orders-prod").await,
        400,
        "INVALID_ARGUMENT",
        r"Orders-prod does not match [a-z][a-z\d\-]*[a-z\d].",
    );
    let long_name =
        json!({ "accountId": "long-name", "serviceAccount": { "displayName": "x".repeat(101) } });
    assert_eq!(
        gcp(&sb, "POST", SA, Some(&long_name.to_string()))
            .await
            .status,
        400
    );
    let long_text =
        json!({ "accountId": "long-text", "serviceAccount": { "description": "x".repeat(257) } });
    assert_eq!(
        gcp(&sb, "POST", SA, Some(&long_text.to_string()))
            .await
            .status,
        400
    );
    let at_limits = json!({ "accountId": "a".repeat(30), "serviceAccount": { "displayName": "x".repeat(100), "description": "x".repeat(256) } });
    assert_eq!(
        gcp(&sb, "POST", SA, Some(&at_limits.to_string()))
            .await
            .status,
        200
    );

    let unknown_field = gcp(
        &sb,
        "POST",
        SA,
        Some(r#"{"accountId":"typo-prod","serviceAcount":{}}"#),
    )
    .await;
    assert_error(
        &unknown_field,
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON payload received. Unknown name \"serviceAcount\": Cannot find field.",
    );
    assert_eq!(
        unknown_field.json()["error"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    // Projects that cannot exist.
    let bad_project = gcp(
        &sb,
        "GET",
        "/gcp/iam/v1/projects/Not_A_Project/serviceAccounts",
        None,
    )
    .await;
    assert_eq!(bad_project.json()["error"]["status"], "PERMISSION_DENIED");
    let unknown_number = gcp(&sb, "GET", "/gcp/crm/v3/projects/999999999999", None).await;
    assert_error(
        &unknown_number,
        403,
        "PERMISSION_DENIED",
        "The caller does not have permission",
    );
    // Paths no API serves: a JSON 404 in each shape, not counted.
    let nowhere = gcp(&sb, "GET", "/gcp/iam/v2/roles", None).await;
    assert_eq!(nowhere.json()["error"]["status"], "NOT_FOUND");
    let outside = send(&sb.cloud_url(), "GET", "/gcp", &[], b"").await;
    assert_eq!(outside.status, 404);
    assert!(outside.json()["message"].is_string());
    assert_eq!(sb.calls().keys().filter(|k| k.contains("v2")).count(), 0);
}

#[tokio::test]
async fn projects_read_by_id_or_number_in_v1_and_v3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;
    for p in [GCP_PROJECT, GCP_NUMBER] {
        let v3 = gcp(&sb, "GET", &format!("/gcp/crm/v3/projects/{p}"), None).await;
        assert_eq!(v3.status, 200, "{}", v3.body);
        let v3 = v3.json();
        assert_eq!(v3["name"], format!("projects/{GCP_NUMBER}"));
        assert_eq!(v3["projectId"], GCP_PROJECT);
        assert_eq!(v3["displayName"], GCP_PROJECT);
        // Enums are numbers for the Rust clients, names otherwise.
        assert_eq!(v3["state"], 1);
    }
    let named = gcloud_like(&sb, "GET", "/gcp/crm/v3/projects/acme-prod", "").await;
    assert_eq!(named.json()["state"], "ACTIVE");
    let v1 = gcloud_like(&sb, "GET", "/gcp/crm/v1/projects/acme-prod", "")
        .await
        .json();
    assert_eq!(
        (v1["projectNumber"].clone(), v1["lifecycleState"].clone()),
        (json!(GCP_NUMBER), json!("ACTIVE"))
    );
    // An undeclared project exists from its first request, with a stable derived number.
    let other = gcp(&sb, "GET", "/gcp/crm/v3/projects/acme-shared", None)
        .await
        .json();
    let number = sandbox_gcp::derived_project_number("acme-shared");
    assert_eq!(other["name"], format!("projects/{number}"));
    let by_number = gcp(&sb, "GET", &format!("/gcp/crm/v1/projects/{number}"), None).await;
    assert_eq!(by_number.json()["projectId"], "acme-shared");
}

fn cluster_path(name: &str) -> String {
    format!("/gcp/container/v1/projects/acme-prod/locations/us-central1/clusters/{name}")
}

#[tokio::test]
async fn gke_clusters_report_workload_identity_and_node_pools() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;
    // The Rust client also sends the deprecated projectId, zone and clusterId, empty.
    let path = format!("{}?projectId=&zone=&clusterId=", cluster_path("prod"));
    let named = gcloud_like(&sb, "GET", &path, "").await.json();
    assert_eq!(named["name"], "prod");
    assert_eq!(named["location"], "us-central1");
    assert_eq!(named["status"], "RUNNING");
    assert_eq!(
        named["workloadIdentityConfig"],
        json!({ "workloadPool": "acme-prod.svc.id.goog" })
    );
    assert_eq!(
        named["selfLink"],
        "https://container.googleapis.com/v1/projects/acme-prod/locations/us-central1/clusters/prod"
    );
    assert!(
        named["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with("34."))
    );
    let pool = &named["nodePools"][0];
    assert_eq!(pool["name"], "default-pool");
    assert_eq!(
        pool["config"]["workloadMetadataConfig"]["mode"],
        "GKE_METADATA"
    );
    let numbered = gcp(&sb, "GET", &path, None).await.json();
    assert_eq!(numbered["status"], 2);
    assert_eq!(
        numbered["nodePools"][0]["config"]["workloadMetadataConfig"]["mode"],
        2
    );

    sb.shared().write(|state| {
        assert!(sandbox_gcp::set_workload_identity(
            state,
            "acme-prod",
            "us-central1",
            "prod",
            false
        ));
        assert!(sandbox_gcp::add_node_pool(
            state,
            "acme-prod",
            "us-central1",
            "prod",
            "legacy",
            "GCE_METADATA"
        ));
    });
    let changed = gcloud_like(&sb, "GET", &cluster_path("prod"), "")
        .await
        .json();
    assert_eq!(changed.get("workloadIdentityConfig"), None);
    let modes: Vec<(&str, &str)> = changed["nodePools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name"),
                p["config"]["workloadMetadataConfig"]["mode"]
                    .as_str()
                    .expect("mode"),
            )
        })
        .collect();
    assert_eq!(
        modes,
        [("default-pool", "GKE_METADATA"), ("legacy", "GCE_METADATA")]
    );
    assert_eq!(
        gcp(&sb, "GET", &cluster_path("prod"), None).await.json()["nodePools"][1]["config"]["workloadMetadataConfig"]
            ["mode"],
        1
    );

    for location in ["-", "us-central1"] {
        let list = gcp(
            &sb,
            "GET",
            &format!("/gcp/container/v1/projects/acme-prod/locations/{location}/clusters"),
            None,
        )
        .await;
        let names: Vec<String> = list.json()["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(names, ["prod"]);
    }
    let none = gcp(
        &sb,
        "GET",
        "/gcp/container/v1/projects/acme-prod/locations/europe-west4/clusters",
        None,
    )
    .await;
    assert_eq!(none.json(), json!({}));
    assert_error(
        &gcp(&sb, "GET", &cluster_path("staging"), None).await,
        404,
        "NOT_FOUND",
        "Not found: projects/acme-prod/locations/us-central1/clusters/staging.",
    );
}

#[tokio::test]
async fn faults_and_counters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;
    let get_policy = "/gcp/crm/v3/projects/acme-prod:getIamPolicy";
    let options = r#"{"resource":"projects/acme-prod","options":{"requestedPolicyVersion":3}}"#;
    for (action, code, status) in [
        (FaultAction::Throttle, 429, "RESOURCE_EXHAUSTED"),
        (FaultAction::ServerError, 503, "UNAVAILABLE"),
        (FaultAction::Conflict, 409, "ABORTED"),
    ] {
        sb.inject(Fault {
            api: "gcp:crm.projects.getIamPolicy".into(),
            action,
            times: Some(1),
        });
        let faulted = gcp(&sb, "POST", get_policy, Some(options)).await;
        assert_eq!(faulted.status, code, "{}", faulted.body);
        assert_eq!(faulted.json()["error"]["status"], status);
    }
    sb.inject(Fault {
        api: "gcp:iam.".into(),
        action: FaultAction::Latency { ms: 150 },
        times: Some(1),
    });
    let started = std::time::Instant::now();
    assert_eq!(gcp(&sb, "GET", SA, None).await.status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    let ok = gcp(&sb, "POST", get_policy, Some(options)).await;
    assert_eq!((ok.status, ok.json()), (200, json!({ "etag": "ACAB" })));
    // Unauthenticated requests are counted too: they reached the API.
    send(&sb.cloud_url(), "GET", &cluster_path("prod"), &[], b"").await;
    let calls = sb.calls();
    assert_eq!(calls["gcp:crm.projects.getIamPolicy"], 4);
    assert_eq!(calls["gcp:iam.serviceAccounts.list"], 1);
    assert_eq!(calls["gcp:container.clusters.get"], 1);
    assert_eq!(calls.get("gcp:crm.projects.setIamPolicy"), None);
}

#[tokio::test]
async fn gke_cluster_tokens_carry_the_gke_issuer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start(dir.path()).await;
    let base = sb.kube_url("gke-prod").expect("the cluster is served");
    let body = json!({ "spec": { "audiences": ["acme-prod.svc.id.goog"] } }).to_string();
    let answer = send(
        &base,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let token = answer.json()["status"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("JWT-shaped"))
            .expect("base64url"),
    )
    .expect("claims");
    assert_eq!(
        claims["iss"],
        "https://container.googleapis.com/v1/projects/acme-prod/locations/us-central1/clusters/prod"
    );
    assert_eq!(claims["aud"], json!(["acme-prod.svc.id.goog"]));
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (account, policy) = {
        let sb = start(dir.path()).await;
        let account = create(&sb, "orders-prod").await.json();
        let set = json!({ "policy": { "bindings": [{ "role": "roles/viewer", "members": ["user:a@example.com"] }] } });
        let policy = gcp(
            &sb,
            "POST",
            "/gcp/crm/v1/projects/acme-prod:setIamPolicy",
            Some(&set.to_string()),
        )
        .await
        .json();
        sb.shared().write(|state| {
            assert!(sandbox_gcp::set_workload_identity(
                state,
                "acme-prod",
                "us-central1",
                "prod",
                false
            ));
        });
        (account, policy)
    };
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).expect("state.json"))
            .expect("json");
    assert_eq!(state["gcp"]["projects"]["acme-prod"]["number"], GCP_NUMBER);
    let sb = start(dir.path()).await;
    let got = gcp(&sb, "GET", &format!("{SA}/{EMAIL}"), None).await.json();
    assert_eq!(got, account);
    let options = r#"{"options":{"requestedPolicyVersion":3}}"#;
    let read = gcp(
        &sb,
        "POST",
        "/gcp/crm/v3/projects/acme-prod:getIamPolicy",
        Some(options),
    )
    .await
    .json();
    assert_eq!(read, policy);
    // The declaration does not turn Workload Identity back on.
    let cluster = gcp(&sb, "GET", &cluster_path("prod"), None).await.json();
    assert_eq!(cluster.get("workloadIdentityConfig"), None);
}
