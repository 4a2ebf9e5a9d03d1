//! Faults the real GCP and Azure APIs throw at any call, injected in the sandbox: one
//! throttle on every GCP and ARM read API (ARM's with `Retry-After: 1`), and one "try
//! again" conflict on every write API (GCP `ABORTED`, ARM's 409 on concurrent writes).
//! Plan and apply still succeed, each faulted call is retried (and counted twice by the
//! sandbox), and the next plan shows no changes.

use std::path::Path;
use std::time::{Duration, Instant};

use wid::session::Session;
use wid_sandbox::FaultAction;

#[path = "common/fault_kit.rs"]
mod fault_kit;

use fault_kit::{apply, inject, not_retried, pending, run};

/// A session on a GKE and an AKS cluster with `workloads`.
async fn session(dir: &Path, workloads: &str) -> Session {
    fault_kit::session(dir, &plan_text(workloads)).await
}

const SUB: &str = "6d9a1f3e-2b7c-4e58-9a01-3c5d7e9f1b24";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// A GKE and an AKS cluster, and `workloads`.
fn plan_text(workloads: &str) -> String {
    format!(
        r#"version = 1
name = "faults-gke-aks"

[clusters.gke]
kind = "gke"
project = "acme-prod"
location = "us-central1"
name = "prod"
create_namespaces = true

[clusters.aks]
kind = "aks"
subscription = "{SUB}"
tenant = "{TENANT}"
resource_group = "rg-aks"
name = "aks"
create_namespaces = true
{workloads}"#
    )
}

/// Version A: a Google service account impersonated by a KSA (the account, its policy and
/// a project role), a direct grant, and an Azure identity with a role and a credential.
const WORKLOADS_A: &str = r#"
[[workload]]
cluster = "gke"
namespace = "shop"
service_account = "orders"
gcp.service_account = "orders-app"
gcp.display_name = "Orders"
gcp.roles = ["roles/pubsub.subscriber"]

[[workload]]
cluster = "gke"
namespace = "shop"
service_account = "reports"
gcp.direct = true
gcp.roles = ["roles/storage.objectViewer"]

[[workload]]
cluster = "aks"
namespace = "apps"
service_account = "orders"
azure.identity = "orders"
azure.roles = [{ role = "Reader" }]
"#;

/// Version B changes what an update writes: the account's display name, the project's
/// roles, the identity's tags and roles (one removed, one added), a second credential.
const WORKLOADS_B: &str = r#"
[[workload]]
cluster = "gke"
namespace = "shop"
service_account = "orders"
gcp.service_account = "orders-app"
gcp.display_name = "Orders v2"
gcp.roles = ["roles/pubsub.publisher"]

[[workload]]
cluster = "gke"
namespace = "shop"
service_account = "reports"
gcp.direct = true
gcp.roles = ["roles/storage.objectViewer"]

[[workload]]
cluster = "aks"
namespace = "apps"
service_account = "orders"
azure.identity = "orders"
azure.tags = { team = "shop" }
azure.roles = [{ role = "Storage Blob Data Reader" }]

[[workload]]
cluster = "aks"
namespace = "batch"
service_account = "orders"
azure.identity = "orders"
azure.tags = { team = "shop" }
azure.roles = [{ role = "Storage Blob Data Reader" }]
"#;

/// Every GCP and ARM read API a plan of these makes, as the sandbox counts them.
const READS: &[&str] = &[
    "gcp:container.clusters.get",
    "gcp:crm.projects.get",
    "gcp:crm.projects.getIamPolicy",
    "gcp:iam.serviceAccounts.list",
    "gcp:iam.serviceAccounts.getIamPolicy",
    "azure:managedClusters.get",
    "azure:resourceGroups.get",
    "azure:userAssignedIdentities.get",
    "azure:federatedIdentityCredentials.list",
    "azure:roleAssignments.list",
    "azure:roleDefinitions.list",
];

/// Every GCP and ARM write API the two applies make.
const WRITES: &[&str] = &[
    "gcp:iam.serviceAccounts.create",
    "gcp:iam.serviceAccounts.patch",
    "gcp:iam.serviceAccounts.setIamPolicy",
    "gcp:crm.projects.setIamPolicy",
    "azure:userAssignedIdentities.createOrUpdate",
    "azure:userAssignedIdentities.update",
    "azure:federatedIdentityCredentials.createOrUpdate",
    "azure:roleAssignments.create",
    "azure:roleAssignments.delete",
];

#[test]
fn one_throttle_on_every_gcp_and_azure_read_api_and_the_plan_still_succeeds() {
    run(throttled_reads());
}

#[test]
fn one_conflict_on_every_gcp_and_azure_write_api_and_apply_still_succeeds() {
    run(conflicted_writes());
}

async fn throttled_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    apply(&session(dir.path(), WORKLOADS_A).await).await;
    // A new run: the provider reads role definitions and resource groups once per run.
    let session = session(dir.path(), WORKLOADS_A).await;
    let before = session.sandbox().expect("sandbox").calls();
    inject(&session, READS, FaultAction::Throttle);
    let start = Instant::now();
    let left = pending(&session).await;
    assert!(left.is_empty(), "{left:?}");
    // ARM's throttle answers `Retry-After: 1`: its retry waits that second.
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let missed = not_retried(&session, &before, READS);
    let after = session.sandbox().expect("sandbox").calls();
    assert!(
        missed.is_empty(),
        "faulted reads not retried: {missed:#?}\n{after:#?}"
    );
}

async fn conflicted_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session_a = session(dir.path(), WORKLOADS_A).await;
    let before = session_a.sandbox().expect("sandbox").calls();
    inject(&session_a, WRITES, FaultAction::Conflict);
    apply(&session_a).await;
    assert!(pending(&session_a).await.is_empty());
    let created: Vec<&str> = WRITES
        .iter()
        .copied()
        .filter(|api| {
            !matches!(
                *api,
                "gcp:iam.serviceAccounts.patch"
                    | "azure:roleAssignments.delete"
                    | "azure:userAssignedIdentities.update"
            )
        })
        .collect();
    let missed = not_retried(&session_a, &before, &created);
    let after = session_a.sandbox().expect("sandbox").calls();
    assert!(
        missed.is_empty(),
        "conflicted creates not retried: {missed:#?}\n{after:#?}"
    );
    drop(session_a);

    // The same sandbox, version B: every update path meets one conflict.
    let session_b = session(dir.path(), WORKLOADS_B).await;
    let before = session_b.sandbox().expect("sandbox").calls();
    inject(&session_b, WRITES, FaultAction::Conflict);
    apply(&session_b).await;
    assert!(pending(&session_b).await.is_empty());
    let updates: Vec<&str> = WRITES
        .iter()
        .copied()
        .filter(|api| {
            // Version B leaves the account's own policy (its KSA binding) as it is.
            !matches!(
                *api,
                "gcp:iam.serviceAccounts.create"
                    | "gcp:iam.serviceAccounts.setIamPolicy"
                    | "azure:userAssignedIdentities.createOrUpdate"
            )
        })
        .collect();
    let missed = not_retried(&session_b, &before, &updates);
    let after = session_b.sandbox().expect("sandbox").calls();
    assert!(
        missed.is_empty(),
        "conflicted updates not retried: {missed:#?}\n{after:#?}"
    );
}
