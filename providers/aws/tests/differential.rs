//! The same plan applied against the sandbox and against moto must leave the same IAM
//! state: roles (normalized trust policies, attachments, inline policies, tags, path,
//! session length, description) and OIDC providers (url, audiences, tags). Both use moto's
//! default account, so ARNs compare as they are. `GetAccountAuthorizationDetails` (the bulk
//! role read) must show both the same roles, and agree with the per-role reads.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use wid_aws::{AwsOptions, AwsProvider, EksCluster};
use wid_core::CallCounter;
use wid_sandbox::{ClusterDecl, ClusterKind, EksDecl, Sandbox};

fn cluster() -> EksCluster {
    EksCluster {
        plan_name: "eks-dev".into(),
        account: MOTO_ACCOUNT.into(),
        region: "us-east-1".into(),
        eks_name: "dev".into(),
        issuer: Some("https://oidc.eks.us-east-1.amazonaws.com/id/DIFFERENTIAL0001".into()),
    }
}

/// Applies the scenario plus a temporary role, then prunes the temporary role, and
/// returns the end state.
async fn run(url: &str) -> Value {
    let opts = AwsOptions {
        endpoint_url: Some(url.to_owned()),
        sandbox: true,
        ..AwsOptions::default()
    };
    let p = AwsProvider::new(opts, CallCounter::default())
        .await
        .expect("provider");
    let iam = iam(url, MOTO_ACCOUNT).await;
    let policy = managed_policy(&iam, "wid-diff-read").await;
    let mut workloads = scenario(&policy);
    let mut temp = block("wid-temp");
    temp.path = Some("/wid/".into());
    temp.tags.insert("short-lived".into(), "yes".into());
    workloads.push(wl(0, "batch", "job", temp));
    let clusters = [cluster()];
    let own = owner("diff", false);
    let desired = compile_plan(&workloads, &clusters, "diff");
    let (_, changes) = plan(&p, &desired, &own).await;
    apply(&p, &changes, &own).await;
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{url}: {:?}", kinds(&changes));
    workloads.pop();
    let desired = compile_plan(&workloads, &clusters, "diff");
    let pruning = owner("diff", true);
    let (_, changes) = plan(&p, &desired, &pruning).await;
    apply(&p, &changes, &pruning).await;
    let state = iam_state(&iam).await;
    let details = gaad_state(&iam).await;
    // The bulk read agrees with the per-role reads on everything it carries.
    for (name, role) in state["roles"].as_object().expect("roles") {
        for key in ["trust", "managed", "inline", "tags", "path"] {
            assert_eq!(details[name][key], role[key], "{url}: {name}.{key}");
        }
    }
    json!({"calls": state, "details": details})
}

/// Every role as `GetAccountAuthorizationDetails` (`Filter=Role`, paginated) shows it,
/// documents decoded and normalized, attached policies by name.
async fn gaad_state(iam: &aws_sdk_iam::Client) -> Value {
    let mut roles = BTreeMap::new();
    let mut marker = None;
    loop {
        let page = iam
            .get_account_authorization_details()
            .filter(aws_sdk_iam::types::EntityType::Role)
            .max_items(1)
            .set_marker(marker)
            .send()
            .await
            .expect("get account authorization details");
        assert!(page.user_detail_list().is_empty() && page.policies().is_empty());
        for r in page.role_detail_list() {
            let trust = wid_aws::normalize_policy(r.assume_role_policy_document().unwrap_or("{}"))
                .expect("trust parses");
            let managed: BTreeSet<&str> = r
                .attached_managed_policies()
                .iter()
                .filter_map(|p| p.policy_name())
                .collect();
            let inline: BTreeMap<&str, Value> = r
                .role_policy_list()
                .iter()
                .map(|p| {
                    let doc = wid_aws::normalize_policy(p.policy_document().unwrap_or("{}"))
                        .expect("inline parses");
                    (p.policy_name().unwrap_or_default(), doc)
                })
                .collect();
            let tags: BTreeMap<&str, &str> =
                r.tags().iter().map(|t| (t.key(), t.value())).collect();
            roles.insert(
                r.role_name().unwrap_or_default().to_owned(),
                json!({"trust": trust, "managed": managed, "inline": inline, "tags": tags, "path": r.path()}),
            );
        }
        match page.marker() {
            Some(m) if page.is_truncated() => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    Value::Object(roles.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_and_moto_end_in_the_same_state() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let decl = ClusterDecl {
        name: "eks-dev".into(),
        kind: ClusterKind::Eks,
        eks: Some(EksDecl {
            account: MOTO_ACCOUNT.into(),
            region: "us-east-1".into(),
            name: "dev".into(),
        }),
        gke: None,
        aks: None,
    };
    let sandbox = Sandbox::start(dir.path(), &[decl])
        .await
        .expect("sandbox starts");
    let from_moto = run(&moto.url).await;
    let from_sandbox = run(&sandbox.cloud_url()).await;
    let roles = from_moto["calls"]["roles"].as_object().expect("roles");
    assert_eq!(
        roles.keys().collect::<Vec<_>>(),
        ["wid-orders", "wid-shared-reader"],
        "the scenario's roles remain and the pruned one is gone"
    );
    assert_eq!(
        from_moto["calls"]["oidc_providers"]
            .as_object()
            .map(|m| m.len()),
        Some(1)
    );
    assert_eq!(
        serde_json::to_string_pretty(&from_sandbox).expect("json"),
        serde_json::to_string_pretty(&from_moto).expect("json")
    );
}
