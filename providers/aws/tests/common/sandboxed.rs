//! The provider against an in-process sandbox with one EKS cluster, its issuer
//! discovered with `eks:DescribeCluster`.

use wid_aws::{AwsOptions, AwsProvider, EksCluster};
use wid_core::CallCounter;
use wid_sandbox::{ClusterDecl, ClusterKind, EksDecl, Sandbox};

/// The account of the sandbox's EKS cluster `dev` (plan name `eks-dev`).
pub const SANDBOX_ACCOUNT: &str = "111122223333";

/// Starts a sandbox in `dir` with the EKS cluster `dev`, and a provider pointed at it.
pub async fn start(dir: &std::path::Path) -> (Sandbox, AwsProvider, EksCluster) {
    let decl = ClusterDecl {
        name: "eks-dev".into(),
        kind: ClusterKind::Eks,
        eks: Some(EksDecl {
            account: SANDBOX_ACCOUNT.into(),
            region: "us-east-1".into(),
            name: "dev".into(),
        }),
        gke: None,
        aks: None,
    };
    let sandbox = Sandbox::start(dir, &[decl]).await.expect("sandbox starts");
    let opts = AwsOptions {
        endpoint_url: Some(sandbox.cloud_url()),
        sandbox: true,
        ..AwsOptions::default()
    };
    let p = AwsProvider::new(opts, CallCounter::default())
        .await
        .expect("provider");
    let mut cluster = EksCluster {
        plan_name: "eks-dev".into(),
        account: SANDBOX_ACCOUNT.into(),
        region: "us-east-1".into(),
        eks_name: "dev".into(),
        issuer: None,
    };
    let issuer = p
        .discover_issuer(&cluster)
        .await
        .expect("issuer discovered");
    assert!(
        issuer.starts_with("https://oidc.eks.us-east-1.amazonaws.com/id/"),
        "{issuer}"
    );
    cluster.issuer = Some(issuer);
    (sandbox, p, cluster)
}
