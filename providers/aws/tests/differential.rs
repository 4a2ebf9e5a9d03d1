//! The same plan applied against the sandbox and against moto must leave the same IAM
//! state: roles (normalized trust policies, attachments, inline policies, tags, path,
//! session length, description) and OIDC providers (url, audiences, tags). Both use moto's
//! default account, so ARNs compare as they are.

mod common;

use common::*;
use serde_json::Value;
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
    iam_state(&iam).await
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
    let roles = from_moto["roles"].as_object().expect("roles");
    assert_eq!(
        roles.keys().collect::<Vec<_>>(),
        ["wid-orders", "wid-shared-reader"],
        "the scenario's roles remain and the pruned one is gone"
    );
    assert_eq!(
        from_moto["oidc_providers"].as_object().map(|m| m.len()),
        Some(1)
    );
    assert_eq!(
        serde_json::to_string_pretty(&from_sandbox).expect("json"),
        serde_json::to_string_pretty(&from_moto).expect("json")
    );
}
