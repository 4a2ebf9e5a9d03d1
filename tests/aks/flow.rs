//! In-process runs of wid's session and executor against the sandbox, with access to the
//! sandbox's state (to change the live world behind wid's back and to read what it did).

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wid::engine::{Progress, Report, RetryPolicy, Step, execute};
use wid::session::{PlanMode, Planned, Session, Target};
use wid_core::{Change, ChangeKind, ProviderError, Reason, ResourceId};
use wid_sandbox::Shared;

pub const SUB: &str = "6d9a1f3e-2b7c-4e58-9a01-3c5d7e9f1b24";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// A plan with one AKS cluster `aks` (resource group `rg-aks`) and `workloads` appended.
pub fn plan_text(name: &str, workloads: &str) -> String {
    format!(
        r#"version = 1
name = "{name}"

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

/// One workload on `aks` in namespace `apps`, with extra `azure.*` lines.
pub fn workload(ksa: &str, identity: &str, extra: &str) -> String {
    format!(
        "\n[[workload]]\ncluster = \"aks\"\nnamespace = \"apps\"\nservice_account = \"{ksa}\"\nazure.identity = \"{identity}\"\n{extra}\n"
    )
}

struct Quiet;

impl Progress for Quiet {
    fn started(&self, _: &Change) {}
    fn retrying(&self, _: &ResourceId, _: u32, _: &ProviderError, _: Duration) {}
    fn finished(&self, _: &Step, _: usize, _: usize) {}
}

/// A session on `plan` (written to DIR/plan.toml) against the sandbox in DIR/sb.
pub async fn open(dir: &Path, plan: &str) -> Session {
    std::fs::write(dir.join("plan.toml"), plan).unwrap();
    let plan = wid::plan::load(&dir.join("plan.toml")).expect("the plan is valid");
    let target = Target {
        sandbox: Some(dir.join("sb")),
        ..Default::default()
    };
    Session::open(plan, &target).await.expect("session opens")
}

/// The sandbox's shared state.
pub fn shared(session: &Session) -> Arc<Shared> {
    session
        .sandbox()
        .expect("in-process sandbox")
        .shared()
        .clone()
}

pub async fn plan(session: &Session, prune: bool) -> Planned {
    session
        .plan(PlanMode::Apply { prune })
        .await
        .expect("plan succeeds")
}

pub async fn apply(session: &Session, prune: bool) -> Report {
    let planned = plan(session, prune).await;
    execute_planned(session, &planned, prune).await
}

/// Executes the changes of a plan made earlier.
pub async fn execute_planned(session: &Session, planned: &Planned, prune: bool) -> Report {
    execute(
        &session.providers,
        &planned.changes,
        &session.owner(prune),
        &RetryPolicy::default(),
        &Quiet,
    )
    .await
}

/// Applies and asserts every step succeeded.
pub async fn converge(session: &Session, prune: bool) {
    let report = apply(session, prune).await;
    let failed: Vec<String> = report
        .steps
        .iter()
        .filter_map(|s| match &s.outcome {
            wid::engine::Outcome::Done { .. } => None,
            other => Some(format!("{}: {other:?}", s.id)),
        })
        .collect();
    assert!(failed.is_empty(), "apply failed: {failed:#?}");
}

/// The actionable changes as (id, kind, reason).
pub fn pending(planned: &Planned) -> Vec<(String, ChangeKind, Reason)> {
    planned
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .map(|c| (c.id.to_string(), c.kind, c.reason.clone()))
        .collect()
}

/// An identity in the sandbox.
/// How many calls of `api` (`azure:roleDefinitions.list`) the sandbox has answered.
pub fn sandbox_calls(shared: &Shared, api: &str) -> u64 {
    shared.calls().get(api).copied().unwrap_or(0)
}

pub fn identity(shared: &Shared, rg: &str, name: &str) -> Option<wid_sandbox::azure::Identity> {
    shared.read(|s| {
        s.azure
            .subscriptions
            .get(SUB)?
            .resource_groups
            .get(rg)?
            .identities
            .get(&name.to_ascii_lowercase())
            .cloned()
    })
}

/// The role assignments of a principal in the sandbox, as (scope, role GUID, description).
pub fn assignments(shared: &Shared, principal: &str) -> Vec<(String, String, Option<String>)> {
    shared.read(|s| {
        let mut out: Vec<_> = s.azure.subscriptions[SUB]
            .role_assignments
            .values()
            .filter(|a| a.principal_id == principal)
            .map(|a| {
                (
                    a.scope.clone(),
                    a.role_definition_id.rsplit('/').next().unwrap().to_owned(),
                    a.description.clone(),
                )
            })
            .collect();
        out.sort();
        out
    })
}
