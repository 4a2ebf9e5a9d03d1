//! Faults the real APIs throw at any call, injected in the sandbox: one throttle on every
//! read API and one conflict ("try again") on every write API. Plan and apply still
//! succeed, each faulted call is retried (and counted twice), the next plan shows no
//! changes, and a Kubernetes 429 is retried no sooner than its `Retry-After`.

use std::time::{Duration, Instant};

use wid_sandbox::FaultAction;

#[path = "common/fault_kit.rs"]
mod fault_kit;

use fault_kit::{apply, inject, not_retried, pending, session};

/// Version A of the plan: IRSA roles with managed and inline policies and tags, a role
/// shared by two KSAs, EKS Pod Identity, and RBAC on the cluster.
const PLAN_A: &str = r#"version = 1
name = "faults"

[clusters.eks]
kind = "eks"
account = "111122223333"
region = "us-east-1"
name = "prod"
create_namespaces = true

[[workload]]
cluster = "eks"
namespace = "shop"
service_account = "orders"
aws.role = "orders"
aws.managed_policies = ["arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"]
aws.inline_policies.s3 = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'
aws.tags = { team = "shop" }
kubernetes.rules = [{ apiGroups = [""], resources = ["configmaps"], verbs = ["get"] }]

[[workload]]
cluster = "eks"
namespace = "shop"
service_account = "reports"
aws.role = "shared-reader"

[[workload]]
cluster = "eks"
namespace = "shop"
service_account = "payments"
aws.role = "payments"
aws.mechanism = "pod-identity"
"#;

/// Version B changes every kind of thing an update writes: the inline policy, the
/// managed policies, tags, the session length, a second KSA on the shared role (its trust
/// policy), and the pod identity association's role.
const PLAN_B: &str = r#"version = 1
name = "faults"

[clusters.eks]
kind = "eks"
account = "111122223333"
region = "us-east-1"
name = "prod"
create_namespaces = true

[[workload]]
cluster = "eks"
namespace = "shop"
service_account = "orders"
aws.role = "orders"
aws.managed_policies = ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
aws.inline_policies.s3 = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}'
aws.tags = { owner = "shop" }
aws.max_session_duration = 7200
kubernetes.rules = [{ apiGroups = [""], resources = ["configmaps", "secrets"], verbs = ["get"] }]

[[workload]]
cluster = "eks"
namespace = "shop"
service_account = "reports"
aws.role = "shared-reader"

[[workload]]
cluster = "eks"
namespace = "billing"
service_account = "reports"
aws.role = "shared-reader"

[[workload]]
cluster = "eks"
namespace = "shop"
service_account = "payments"
aws.role = "payments-v2"
aws.mechanism = "pod-identity"
"#;

/// Every read API a plan of these makes.
const READS: &[&str] = &[
    "eks:DescribeCluster",
    "eks:ListPodIdentityAssociations",
    "eks:DescribePodIdentityAssociation",
    "iam:ListOpenIDConnectProviders",
    "iam:GetOpenIDConnectProvider",
    // Before GetRole, which is a prefix of it: rules match by prefix, first rule first.
    "iam:GetRolePolicy",
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "k8s:list namespaces",
    "k8s:list serviceaccounts",
    "k8s:list roles",
    "k8s:list rolebindings",
];

/// Every write API the two applies make.
const WRITES: &[&str] = &[
    "iam:CreateOpenIDConnectProvider",
    "iam:CreateRole",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateRole",
    "iam:UpdateAssumeRolePolicy",
    "eks:CreatePodIdentityAssociation",
    "eks:UpdatePodIdentityAssociation",
    "k8s:apply namespaces",
    "k8s:apply serviceaccounts",
    "k8s:apply roles",
    "k8s:apply rolebindings",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_throttle_on_every_read_api_and_the_plan_still_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = session(dir.path(), PLAN_A).await;
    apply(&session).await;
    let before = session.sandbox().expect("sandbox").calls();
    inject(&session, READS, FaultAction::Throttle);
    let start = Instant::now();
    let left = pending(&session).await;
    assert!(left.is_empty(), "{left:?}");
    // The Kubernetes throttle answers `Retry-After: 1`: its retry waits that second.
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let missed = not_retried(&session, &before, READS);
    assert!(missed.is_empty(), "faulted reads not retried: {missed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_conflict_on_every_write_api_and_apply_still_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session_a = session(dir.path(), PLAN_A).await;
    let before = session_a.sandbox().expect("sandbox").calls();
    inject(&session_a, WRITES, FaultAction::Conflict);
    apply(&session_a).await;
    assert!(pending(&session_a).await.is_empty());
    let created: Vec<&str> = WRITES
        .iter()
        .copied()
        .filter(|api| {
            api.contains("Create")
                || api.starts_with("k8s:")
                || *api == "iam:AttachRolePolicy"
                || *api == "iam:PutRolePolicy"
        })
        .collect();
    let missed = not_retried(&session_a, &before, &created);
    assert!(
        missed.is_empty(),
        "conflicted creates not retried: {missed:#?}"
    );
    drop(session_a);

    // The same sandbox, version B: every update path meets one conflict.
    let session_b = session(dir.path(), PLAN_B).await;
    let before = session_b.sandbox().expect("sandbox").calls();
    inject(&session_b, WRITES, FaultAction::Conflict);
    apply(&session_b).await;
    assert!(pending(&session_b).await.is_empty());
    // Version B changes the Role's rules, not its binding: no RoleBinding is written.
    let updates: Vec<&str> = WRITES
        .iter()
        .copied()
        .filter(|api| !api.contains("Create") && *api != "k8s:apply rolebindings")
        .collect();
    let missed = not_retried(&session_b, &before, &updates);
    assert!(
        missed.is_empty(),
        "conflicted updates not retried: {missed:#?}"
    );
}
