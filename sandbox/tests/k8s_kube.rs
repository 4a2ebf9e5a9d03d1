//! The kube-rs client (what wid's Kubernetes provider uses) against the sandbox: typed
//! server-side apply, merge patch, selectors, TokenRequest, deletes and Status errors.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use wid_sandbox::{ClusterDecl, ClusterKind, Fault, FaultAction, Sandbox};

async fn client(sandbox: &Sandbox) -> kube::Client {
    let url = sandbox.kube_url("dev").expect("dev is served");
    let mut config = kube::Config::new(url.parse().expect("url"));
    // Assertions on 429 need the raw answer, not kube's retries.
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

#[tokio::test]
async fn kube_rs_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let decl = ClusterDecl {
        name: "dev".into(),
        kind: ClusterKind::Generic,
        eks: None,
        gke: None,
        aks: None,
    };
    let sandbox = Sandbox::start(dir.path(), &[decl]).await.expect("sandbox");
    let client = client(&sandbox).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");

    let desired: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": "orders", "labels": { "app.kubernetes.io/managed-by": "wid" } },
        "automountServiceAccountToken": false,
    }))
    .expect("typed");
    let applied = accounts
        .patch(
            "orders",
            &PatchParams::apply("wid").force(),
            &Patch::Apply(&desired),
        )
        .await
        .expect("apply");
    assert_eq!(applied.automount_service_account_token, Some(false));
    let managed = applied.metadata.managed_fields.expect("managedFields");
    assert_eq!(managed[0].manager.as_deref(), Some("wid"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));

    let patched = accounts
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "note": "x" } } })),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        patched.metadata.annotations.expect("annotations")["note"],
        "x"
    );

    let listed = accounts
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=wid"))
        .await
        .expect("list");
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(names, ["orders"]);

    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["sts.amazonaws.com".into()],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request("orders", &PostParams::default(), &request)
        .await
        .expect("token");
    let status = token.status.expect("status");
    assert_eq!(status.token.split('.').count(), 3);

    let too_short = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(60),
            ..Default::default()
        },
        ..Default::default()
    };
    match accounts
        .create_token_request("orders", &PostParams::default(), &too_short)
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422);
            assert_eq!(status.reason, "Invalid");
        }
        other => panic!("expected a 422, got {other:?}"),
    }

    accounts
        .delete("orders", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(accounts.get_opt("orders").await.expect("get_opt").is_none());
    match accounts.get("orders").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.message, "serviceaccounts \"orders\" not found");
        }
        other => panic!("expected a 404, got {other:?}"),
    }

    let roles: Api<ClusterRole> = Api::all(client.clone());
    let admin = roles.get("cluster-admin").await.expect("bootstrap role");
    assert_eq!(admin.rules.expect("rules")[0].verbs, ["*"]);

    sandbox.inject(Fault {
        api: "k8s:list serviceaccounts".into(),
        action: FaultAction::Throttle,
        times: Some(1),
    });
    match accounts.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 429),
        other => panic!("expected a 429, got {other:?}"),
    }
    assert!(accounts.list(&ListParams::default()).await.is_ok());
}
