//! Helpers shared by the provider's sandbox tests: a sandbox with one GKE cluster, plans
//! of impersonating workloads, and applying them as the executor would.
#![allow(dead_code)]

use std::path::Path;

use wid_core::{CallCounter, Change, ChangeKind, Owner, Provider, Resource, WorkloadRef, diff};
use wid_gcp::{
    Endpoints, GcpBlock, GcpOptions, GcpProvider, GcpWorkload, GkeCluster, RoleGrant, compile,
};
use wid_sandbox::{ClusterDecl, ClusterKind, GkeDecl, Sandbox};

pub const PLAN: &str = "gcp-tests";

pub fn cluster() -> GkeCluster {
    GkeCluster {
        plan_name: "gke-prod".into(),
        project: "acme-prod".into(),
        project_number: Some("123456789012".into()),
        location: "us-central1".into(),
        name: "prod".into(),
    }
}

pub async fn start(dir: &Path) -> (Sandbox, GcpProvider) {
    let c = cluster();
    let decl = ClusterDecl {
        name: c.plan_name.clone(),
        kind: ClusterKind::Gke,
        eks: None,
        gke: Some(GkeDecl {
            project: c.project.clone(),
            project_number: c.project_number.clone(),
            location: c.location.clone(),
            name: c.name.clone(),
        }),
        aks: None,
    };
    let sandbox = Sandbox::start(dir, &[decl]).await.unwrap();
    let provider = GcpProvider::new(
        GcpOptions {
            endpoints: Some(Endpoints::sandbox(&sandbox.cloud_url())),
            sandbox: true,
            ..GcpOptions::default()
        },
        CallCounter::default(),
    );
    provider.know_plan(&[c], []);
    (sandbox, provider)
}

pub fn impersonating(account: &str, role: &str) -> GcpBlock {
    GcpBlock {
        service_account: Some(account.into()),
        create: None,
        display_name: None,
        description: None,
        direct: false,
        roles: vec![RoleGrant::OnClusterProject(role.into())],
        adopt: false,
    }
}

pub fn desired(blocks: &[(GcpBlock, &str)]) -> Vec<Resource> {
    let c = cluster();
    let items: Vec<GcpWorkload> = blocks
        .iter()
        .map(|(b, ksa)| GcpWorkload {
            block: b,
            cluster: &c,
            workload: WorkloadRef {
                cluster: c.plan_name.clone(),
                namespace: "shop".into(),
                service_account: (*ksa).into(),
            },
            origin: format!("gke-prod/shop/{ksa}").into(),
        })
        .collect();
    compile(&items, PLAN).unwrap().resources
}

pub fn owner() -> Owner {
    Owner {
        plan: PLAN.into(),
        prune: false,
    }
}

pub async fn plan(provider: &GcpProvider, resources: &[Resource]) -> Vec<Change> {
    let wanted: Vec<&Resource> = resources.iter().collect();
    let observed = provider.observe(&wanted, &owner()).await.unwrap();
    diff(resources, &observed, false)
}

/// Applies the changes as the executor would: accounts before the policies that name
/// them.
pub async fn execute(provider: &GcpProvider, changes: &[Change]) {
    let mut todo: Vec<&Change> = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .collect();
    todo.sort_by_key(|c| (c.id.kind() != "service-account", c.id.clone()));
    for c in todo {
        provider
            .apply(c, &owner())
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", c.id));
    }
}

/// The next plan of `resources` has nothing left to do.
pub async fn assert_converged(provider: &GcpProvider, resources: &[Resource]) {
    let left: Vec<_> = plan(provider, resources)
        .await
        .into_iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .map(|c| c.id)
        .collect();
    assert!(left.is_empty(), "changes left: {left:?}");
}

pub fn count(sandbox: &Sandbox, api: &str) -> u64 {
    sandbox.calls().get(api).copied().unwrap_or(0)
}

/// How a simulated run ended: the changes that failed, by id, with their errors.
pub type Failures = Vec<(wid_core::ResourceId, wid_core::ProviderError)>;

/// Runs `changes` as the executor does, with its hooks: the provider learns them all
/// first, accounts are applied before policies (`started` policy changes at most; the
/// rest are never started, as in a drained run), a policy change whose account failed is
/// skipped, and the run ends with `run_ended`.
pub async fn run(
    provider: &GcpProvider,
    changes: &[Change],
    started: usize,
) -> (Failures, Result<(), wid_core::ProviderError>) {
    let todo: Vec<&Change> = changes
        .iter()
        .filter(|c| !matches!(c.kind, ChangeKind::NoOp | ChangeKind::Conflict))
        .collect();
    let own = owner();
    let announced: Vec<(&Change, &Owner)> = todo.iter().map(|c| (*c, &own)).collect();
    provider.run_starting(&announced);
    let (accounts, policies): (Vec<&Change>, Vec<&Change>) = todo
        .into_iter()
        .partition(|c| c.id.kind() == "service-account");
    let mut failed = Vec::new();
    for c in accounts {
        if let Err(e) = provider.apply(c, &own).await {
            failed.push((c.id.clone(), e));
        }
    }
    let skipped = |c: &Change| {
        c.desired.as_ref().is_some_and(|d| {
            d.depends_on
                .iter()
                .any(|dep| failed.iter().any(|(f, _)| f == dep))
        })
    };
    let runnable: Vec<&Change> = policies.into_iter().filter(|c| !skipped(c)).collect();
    let results = futures::future::join_all(
        runnable
            .iter()
            .take(started)
            .map(|c| async { (c.id.clone(), provider.apply(c, &own).await) }),
    )
    .await;
    for (id, r) in results {
        if let Err(e) = r {
            failed.push((id, e));
        }
    }
    let ended = provider.run_ended().await;
    (failed, ended)
}

/// Every entry of the plan's record, as its record accounts hold them.
pub fn record_entries(sandbox: &Sandbox) -> std::collections::BTreeSet<String> {
    let prefix = wid_gcp::record::record_account(PLAN, 0);
    let prefix = prefix.trim_end_matches('0').to_owned();
    sandbox.shared().read(|s| {
        s.gcp.projects["acme-prod"]
            .service_accounts
            .values()
            .filter(|a| a.email.starts_with(&prefix))
            .flat_map(|a| wid_gcp::record::parse_entries(&a.description))
            .collect()
    })
}

/// The entry of every unconditional binding in the project's policy and its accounts'.
pub fn policy_entries(sandbox: &Sandbox) -> std::collections::BTreeSet<String> {
    sandbox.shared().read(|s| {
        let project = &s.gcp.projects["acme-prod"];
        let mut policies = vec![("projects/acme-prod".to_owned(), &project.policy)];
        for a in project.service_accounts.values() {
            policies.push((
                format!("projects/acme-prod/serviceAccounts/{}", a.email),
                &a.policy,
            ));
        }
        policies
            .into_iter()
            .flat_map(|(resource, policy)| {
                policy
                    .bindings
                    .iter()
                    .filter(|b| b.condition.is_none())
                    .flat_map(|b| {
                        b.members
                            .iter()
                            .map(|m| wid_gcp::record::entry(&resource, &b.role, m))
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    })
}

/// `n` impersonating workloads `worker-00`… each with a role on the cluster's project.
pub fn workers(n: usize) -> Vec<Resource> {
    let blocks: Vec<(GcpBlock, String)> = (0..n)
        .map(|i| {
            (
                impersonating(&format!("worker-{i:02}"), "roles/pubsub.subscriber"),
                format!("ksa-{i}"),
            )
        })
        .collect();
    let blocks: Vec<(GcpBlock, &str)> = blocks
        .iter()
        .map(|(b, k)| (b.clone(), k.as_str()))
        .collect();
    desired(&blocks)
}

/// Record writes so far: creates, patches and deletes of service accounts (in a run whose
/// accounts already exist, those of record accounts only).
pub fn account_writes(sandbox: &Sandbox) -> u64 {
    [
        "gcp:iam.serviceAccounts.create",
        "gcp:iam.serviceAccounts.patch",
        "gcp:iam.serviceAccounts.delete",
    ]
    .iter()
    .map(|api| count(sandbox, api))
    .sum()
}
