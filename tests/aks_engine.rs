//! AKS through wid's session and executor against the in-process sandbox: federated
//! credential writes are serialized per identity and overlap across identities; drift is
//! told from plan changes and incomplete applies; adopted identities keep what others put
//! on them; prune and destroy remove exactly what the plan owns; a new principal Azure
//! RBAC does not see yet is waited for; preflight and plan-time conflicts name the fix;
//! identities and role assignments are read in bulk, one by one when the lists are denied.

#[path = "aks/flow.rs"]
mod flow;

use std::sync::Arc;

use flow::*;
use wid_core::{ChangeKind, Reason};
use wid_sandbox::azure::{self as sbx, FederatedCredential, Identity, RoleAssignment};

const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fic_writes_are_serialized_per_identity_and_overlap_across_identities() {
    let tmp = tempfile::tempdir().unwrap();
    let mut workloads: String = (0..10)
        .map(|i| workload(&format!("busy-{i}"), "busy", ""))
        .collect();
    for i in 0..10 {
        workloads.push_str(&workload(
            &format!("spread-{i}"),
            &format!("other-{}", i / 2),
            "",
        ));
    }
    let session = open(tmp.path(), &plan_text("fics", &workloads)).await;
    let shared = shared(&session);
    // Each write keeps its identity busy long enough that any overlap would be caught.
    shared.write(|s| sbx::set_fic_write_ms(s, 40));
    converge(&session, false).await;
    let stats = sbx::fic_stats(&shared);
    assert_eq!(stats.writes, 20, "{stats:?}");
    assert_eq!(stats.rejected_concurrent, 0, "no 409: {stats:?}");
    assert!(
        stats.max_parallel_identities >= 2,
        "writes on different identities overlapped: {stats:?}"
    );
    assert!(pending(&plan(&session, false).await).is_empty());
}

fn orders_plan(plan: &str) -> String {
    let scope = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.Storage/storageAccounts/orders"
    );
    plan_text(
        plan,
        &workload(
            "orders",
            "orders",
            &format!(
                "azure.roles = [{{ role = \"Reader\" }}, {{ role = \"Storage Blob Data Reader\", scope = \"{scope}\" }}]"
            ),
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_on_a_subject_and_a_removed_role_assignment_show_as_drift_and_apply_fixes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let session = open(tmp.path(), &orders_plan("drift")).await;
    let shared = shared(&session);
    converge(&session, false).await;
    let before = identity(&shared, "rg-aks", "orders").unwrap();
    assert_eq!(assignments(&shared, &before.principal_id).len(), 2);

    // Someone edits the credential's subject and removes the Reader assignment.
    shared.write(|s| {
        let sub = s.azure.subscriptions.get_mut(SUB).unwrap();
        let id = sub
            .resource_groups
            .get_mut("rg-aks")
            .unwrap()
            .identities
            .get_mut("orders")
            .unwrap();
        for fic in id.federated_credentials.values_mut() {
            fic.subject = "system:serviceaccount:apps:intruder".into();
        }
        let pid = id.principal_id.clone();
        sub.role_assignments
            .retain(|_, a| !(a.principal_id == pid && a.role_definition_id.ends_with(READER)));
    });
    let planned = plan(&session, false).await;
    let changes = pending(&planned);
    let kinds: Vec<(&str, ChangeKind, Reason)> = changes
        .iter()
        .map(|(id, k, r)| (id.split('/').nth(1).unwrap(), *k, r.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("federated-credential", ChangeKind::Update, Reason::Drift),
            ("managed-identity", ChangeKind::Update, Reason::Drift),
        ],
        "{changes:#?}"
    );
    converge(&session, false).await;
    assert!(pending(&plan(&session, false).await).is_empty());
    let after = identity(&shared, "rg-aks", "orders").unwrap();
    assert_eq!(after.principal_id, before.principal_id, "fixed in place");
    assert!(
        after
            .federated_credentials
            .values()
            .all(|f| f.subject == "system:serviceaccount:apps:orders")
    );
    let roles: Vec<String> = assignments(&shared, &after.principal_id)
        .into_iter()
        .map(|(_, role, _)| role)
        .collect();
    assert_eq!(roles.len(), 2);
    assert!(roles.contains(&READER.to_owned()) && roles.contains(&BLOB_READER.to_owned()));
}

/// An identity someone else made, with their own credential, role assignment and tag.
fn legacy_identity(shared: &wid_sandbox::Shared) -> String {
    let principal = "0b6a3a4c-1111-4222-8333-944445555666".to_owned();
    shared.write(|s| {
        sbx::ensure_resource_group(s, SUB, "rg-aks", "eastus");
        let sub = s.azure.subscriptions.get_mut(SUB).unwrap();
        let rg = sub.resource_groups.get_mut("rg-aks").unwrap();
        let mut fics = std::collections::BTreeMap::new();
        fics.insert(
            "manual".into(),
            FederatedCredential {
                name: "manual".into(),
                issuer: "https://token.actions.githubusercontent.com".into(),
                subject: "repo:acme/orders:ref:refs/heads/main".into(),
                audiences: vec!["api://AzureADTokenExchange".into()],
            },
        );
        rg.identities.insert(
            "legacy".into(),
            Identity {
                name: "legacy".into(),
                location: "eastus".into(),
                tags: [("owner".to_owned(), "sre".to_owned())].into(),
                tenant_id: TENANT.into(),
                principal_id: principal.clone(),
                client_id: "5e1d2c3b-aaaa-4bbb-8ccc-ddddeeeeffff".into(),
                created_ms: 0,
                federated_credentials: fics,
            },
        );
        sub.role_assignments.insert(
            "9f1e2d3c-0000-4000-8000-000000000001".into(),
            RoleAssignment {
                name: "9f1e2d3c-0000-4000-8000-000000000001".into(),
                scope: format!("/subscriptions/{SUB}/resourceGroups/rg-aks"),
                role_definition_id: format!(
                    "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
                ),
                principal_id: principal.clone(),
                principal_type: "ServicePrincipal".into(),
                description: None,
                condition: None,
                condition_version: None,
                delegated_managed_identity_resource_id: None,
                created_on: "2024-01-01T00:00:00Z".into(),
                updated_on: "2024-01-01T00:00:00Z".into(),
                created_by: "someone".into(),
                updated_by: "someone".into(),
            },
        );
    });
    principal
}

fn legacy_plan(adopt: bool, with_workload: bool) -> String {
    let extra = format!(
        "azure.roles = [{{ role = \"Storage Blob Data Reader\" }}]\nazure.tags = {{ team = \"orders\" }}\n{}",
        if adopt { "azure.adopt = true" } else { "" }
    );
    let workloads = if with_workload {
        workload("orders", "legacy", &extra)
    } else {
        String::new()
    };
    plan_text("adopter", &workloads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_identity_keeps_what_others_put_on_it_through_apply_and_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let session = open(tmp.path(), &legacy_plan(false, true)).await;
    let shared = shared(&session);
    let principal = legacy_identity(&shared);

    // Without adopt: a conflict whose message names the plan key that fixes it.
    let planned = plan(&session, false).await;
    let conflict = planned
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::Conflict)
        .expect("the existing identity is a conflict");
    let Reason::Blocked(why) = &conflict.reason else {
        panic!("{conflict:?}")
    };
    assert!(why.contains("`azure.adopt = true`"), "{why}");
    drop(session);

    // Following the hint: adopt.
    let session = open(tmp.path(), &legacy_plan(true, true)).await;
    let shared = flow::shared(&session);
    converge(&session, false).await;
    assert!(pending(&plan(&session, false).await).is_empty());
    let legacy = identity(&shared, "rg-aks", "legacy").unwrap();
    assert_eq!(legacy.principal_id, principal);
    assert!(legacy.federated_credentials.contains_key("manual"));
    assert_eq!(legacy.federated_credentials.len(), 2);
    assert_eq!(legacy.tags["owner"], "sre");
    assert_eq!(legacy.tags["team"], "orders");
    assert_eq!(legacy.tags["wid.dev.adopted-by"], "adopter");
    assert!(
        !legacy.tags.contains_key("wid.dev.plan"),
        "adopted, not owned"
    );
    let roles = assignments(&shared, &principal);
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert!(
        roles.iter().any(|(_, r, d)| r == READER && d.is_none()),
        "theirs survives"
    );
    assert!(
        roles
            .iter()
            .any(|(_, r, d)| r == BLOB_READER
                && d.as_deref() == Some("Managed by wid (plan adopter)"))
    );
    // Apply and prune with the workload still in the plan change nothing of theirs.
    converge(&session, true).await;
    assert_eq!(assignments(&shared, &principal).len(), 2);
    drop(session);

    // The workload leaves the plan: prune removes wid's credential, assignment and tags,
    // and leaves the identity with everything else.
    let session = open(tmp.path(), &legacy_plan(true, false)).await;
    let shared = flow::shared(&session);
    converge(&session, true).await;
    let legacy =
        identity(&shared, "rg-aks", "legacy").expect("an adopted identity is never deleted");
    assert_eq!(
        legacy.federated_credentials.keys().collect::<Vec<_>>(),
        ["manual"]
    );
    let roles = assignments(&shared, &principal);
    assert_eq!(
        roles,
        [(
            format!("/subscriptions/{SUB}/resourceGroups/rg-aks"),
            READER.to_owned(),
            None
        )]
    );
    assert_eq!(
        legacy.tags,
        [("owner".to_owned(), "sre".to_owned())].into(),
        "wid's marks and tags are gone, theirs stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_and_destroy_remove_what_the_plan_owns_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let both = plan_text(
        "owner",
        &(workload("keep", "keep", "azure.roles = [{ role = \"Reader\" }]")
            + &workload("gone", "gone", "azure.roles = [{ role = \"Reader\" }]")),
    );
    let session = open(tmp.path(), &both).await;
    let shared = shared(&session);
    let bystander = legacy_identity(&shared);
    converge(&session, false).await;
    let gone = identity(&shared, "rg-aks", "gone").unwrap();
    assert_eq!(assignments(&shared, &gone.principal_id).len(), 1);
    drop(session);

    let session = open(
        tmp.path(),
        &plan_text(
            "owner",
            &workload("keep", "keep", "azure.roles = [{ role = \"Reader\" }]"),
        ),
    )
    .await;
    let shared = flow::shared(&session);
    converge(&session, true).await;
    assert!(identity(&shared, "rg-aks", "gone").is_none());
    assert!(
        assignments(&shared, &gone.principal_id).is_empty(),
        "no orphaned assignment"
    );
    let keep = identity(&shared, "rg-aks", "keep").unwrap();

    let planned = session.plan(wid::session::PlanMode::Destroy).await.unwrap();
    let report = wid::engine::execute(
        &session.providers,
        &planned.changes,
        &session.owner(true),
        &wid::engine::RetryPolicy::default(),
        &NoProgress,
    )
    .await;
    assert!(report.succeeded(), "{report:?}");
    assert!(identity(&shared, "rg-aks", "keep").is_none());
    assert!(assignments(&shared, &keep.principal_id).is_empty());
    let legacy = identity(&shared, "rg-aks", "legacy").expect("not the plan's");
    assert_eq!(legacy.federated_credentials.len(), 1);
    assert_eq!(assignments(&shared, &bystander).len(), 1);
}

struct NoProgress;

impl wid::engine::Progress for NoProgress {
    fn started(&self, _: &wid_core::Change) {}
    fn retrying(
        &self,
        _: &wid_core::ResourceId,
        _: u32,
        _: &wid_core::ProviderError,
        _: std::time::Duration,
    ) {
    }
    fn finished(&self, _: &wid::engine::Step, _: usize, _: usize) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_azure_rbac_does_not_see_yet_is_waited_for() {
    let tmp = tempfile::tempdir().unwrap();
    let session = open(tmp.path(), &orders_plan("replication")).await;
    let shared = shared(&session);
    shared.write(|s| sbx::set_principal_replication_ms(s, 1500));
    let report = apply(&session, false).await;
    assert!(report.succeeded(), "{report:#?}");
    let step = report
        .steps
        .iter()
        .find(|s| s.id.kind() == "managed-identity")
        .unwrap();
    assert!(
        matches!(step.outcome, wid::engine::Outcome::Done { attempts } if attempts > 1),
        "PrincipalNotFound was retried: {:?}",
        step.outcome
    );
    assert!(pending(&plan(&session, false).await).is_empty());
    let id = identity(&shared, "rg-aks", "orders").unwrap();
    assert_eq!(assignments(&shared, &id.principal_id).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_that_stops_part_way_is_an_incomplete_apply_not_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let session = open(tmp.path(), &orders_plan("partial")).await;
    let sandbox = session.sandbox().unwrap();
    sandbox.inject(wid_sandbox::Fault {
        api: "azure:roleAssignments.create".into(),
        action: wid_sandbox::FaultAction::ServerError,
        times: Some(6),
    });
    let report = apply(&session, false).await;
    assert!(!report.succeeded());
    assert_eq!(
        report
            .partial()
            .map(|id| id.kind().to_owned())
            .collect::<Vec<_>>(),
        ["managed-identity"]
    );
    let planned = plan(&session, false).await;
    let identity_change = planned
        .changes
        .iter()
        .find(|c| c.id.kind() == "managed-identity")
        .unwrap();
    assert_eq!(identity_change.reason, Reason::Incomplete);
    converge(&session, false).await;
    assert!(pending(&plan(&session, false).await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_the_oidc_issuer_or_workload_identity_fails_the_plan_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let session = open(tmp.path(), &orders_plan("preflight")).await;
    let shared = shared(&session);
    for (oidc, wi, what) in [
        (false, true, "oidcIssuerProfile.enabled"),
        (true, false, "securityProfile.workloadIdentity.enabled"),
    ] {
        shared.write(|s| {
            assert!(sbx::set_oidc_issuer(s, SUB, "rg-aks", "aks", oidc));
            assert!(sbx::set_workload_identity(s, SUB, "rg-aks", "aks", wi));
        });
        let before = session.counter.snapshot();
        let err = session
            .plan(wid::session::PlanMode::Apply { prune: false })
            .await
            .expect_err("the plan stops");
        let text = format!("{err:?}");
        assert!(
            text.contains("AKS cluster aks (plan cluster aks)"),
            "{text}"
        );
        assert!(text.contains(what), "{text}");
        assert!(
            text.contains("--enable-oidc-issuer --enable-workload-identity"),
            "{text}"
        );
        let after = session.counter.snapshot();
        assert!(
            after
                .iter()
                .filter(|(k, _)| k.contains("userAssignedIdentities"))
                .all(|(k, v)| before.get(k) == Some(v)),
            "no identity call before the check: {after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_change_is_a_conflict_naming_azure_location_and_following_it_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let session = open(tmp.path(), &orders_plan("moves")).await;
    converge(&session, false).await;
    drop(session);
    let moved = orders_plan("moves").replace(
        "azure.identity = \"orders\"\n",
        "azure.identity = \"orders\"\nazure.location = \"West Europe\"\n",
    );
    let session = open(tmp.path(), &moved).await;
    let planned = plan(&session, false).await;
    let conflict = planned
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::Conflict)
        .expect("the identity cannot move");
    let Reason::Blocked(why) = &conflict.reason else {
        panic!("{conflict:?}")
    };
    assert!(why.contains("Azure cannot move it to westeurope"), "{why}");
    assert!(why.contains("`azure.location = \"eastus\"`"), "{why}");
    drop(session);
    // Following the hint: the identity's own location.
    let back = orders_plan("moves").replace(
        "azure.identity = \"orders\"\n",
        "azure.identity = \"orders\"\nazure.location = \"eastus\"\n",
    );
    let session = open(tmp.path(), &back).await;
    assert!(pending(&plan(&session, false).await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_role_name_fails_the_plan_naming_azure_roles_and_a_fixed_name_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = plan_text(
        "roles",
        &workload(
            "orders",
            "orders",
            "azure.roles = [{ role = \"Storage Blob Data Raeder\" }]",
        ),
    );
    let session = open(tmp.path(), &typo).await;
    let err = session
        .plan(wid::session::PlanMode::Apply { prune: false })
        .await
        .expect_err("the role does not exist");
    let text = format!("{err:?}");
    assert!(
        text.contains("role \\\"Storage Blob Data Raeder\\\" does not exist"),
        "{text}"
    );
    assert!(text.contains("`azure.roles`"), "{text}");
    drop(session);
    let fixed = typo.replace("Raeder", "Reader");
    let session = open(tmp.path(), &fixed).await;
    converge(&session, false).await;
    assert!(pending(&plan(&session, false).await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_deleted_behind_wids_back_is_recreated_and_the_ksa_gets_the_new_client_id() {
    let tmp = tempfile::tempdir().unwrap();
    let session = open(tmp.path(), &orders_plan("recreate")).await;
    let shared = shared(&session);
    converge(&session, false).await;
    let old = identity(&shared, "rg-aks", "orders").unwrap();
    shared.write(|s| {
        let rg = s
            .azure
            .subscriptions
            .get_mut(SUB)
            .unwrap()
            .resource_groups
            .get_mut("rg-aks")
            .unwrap();
        rg.identities.remove("orders");
    });
    let planned = plan(&session, false).await;
    let ksa = planned
        .changes
        .iter()
        .find(|c| c.id.provider() == "k8s" && c.id.kind() == "serviceaccount")
        .unwrap();
    assert_eq!(ksa.kind, ChangeKind::Update, "the old client id is stale");
    converge(&session, false).await;
    let new = identity(&shared, "rg-aks", "orders").unwrap();
    assert_ne!(new.client_id, old.client_id);
    let annotation = shared.read(|s| {
        s.clusters["aks"].objects["serviceaccounts"]["apps/orders"]["metadata"]["annotations"]
            ["azure.workload.identity/client-id"]
            .clone()
    });
    assert_eq!(annotation, new.client_id.as_str());
    assert!(pending(&plan(&session, false).await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_name_is_resolved_once_per_scope_per_run() {
    let tmp = tempfile::tempdir().unwrap();
    let reader = "azure.roles = [{ role = \"Reader\" }, { role = \"Reader\", scope = \"/subscriptions/6d9a1f3e-2b7c-4e58-9a01-3c5d7e9f1b24\" }]";
    let workloads: String = (0..3)
        .map(|i| workload(&format!("ksa-{i}"), &format!("id-{i}"), reader))
        .collect();
    let session = open(tmp.path(), &plan_text("lookups", &workloads)).await;
    converge(&session, false).await;
    let calls = session.counter.snapshot();
    // Three identities, the same role at two scopes: two lookups for plan and apply.
    assert_eq!(calls["azure:roleDefinitions.list"], 2, "{calls:?}");
    assert_eq!(calls["azure:roleAssignments.create"], 6, "{calls:?}");
    let sandbox = shared(&session).calls();
    assert_eq!(sandbox["azure:roleDefinitions.list"], 2, "{sandbox:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_group_lists_are_read_ahead_and_a_write_drops_the_lists() {
    const LIST: &str = "azure:userAssignedIdentities.listByResourceGroup";
    const LOOK_UP: &str = "azure:roleDefinitions.list";
    const GET: &str = "azure:userAssignedIdentities.get";
    let tmp = tempfile::tempdir().unwrap();
    let reader = "azure.roles = [{ role = \"Reader\" }]";
    // Four identities of one resource group: observe lists the group.
    let workloads: String = (0..4)
        .map(|i| workload(&format!("ksa-{i}"), &format!("id-{i}"), reader))
        .collect();
    let session = open(tmp.path(), &plan_text("ahead", &workloads)).await;
    let shared = shared(&session);
    let calls = || {
        let n = |api: &str| sandbox_calls(&shared, api);
        (n(LIST), n(LOOK_UP), n(GET))
    };
    let azure = session.providers.get("azure").unwrap().clone();
    let ids = wid::model::cloud_read_ahead_ids(&session.plan);
    assert_eq!(
        ids.len(),
        8,
        "four identities and their credentials: {ids:?}"
    );

    // Read ahead, then observed by the plan: each read once.
    Arc::clone(&azure)
        .read_ahead(ids.clone(), session.owner(false))
        .await;
    assert_eq!(
        calls(),
        (1, 1, 0),
        "the group's list and the role's look-up"
    );
    let planned = plan(&session, false).await;
    assert_eq!(
        pending(&planned).len(),
        4 * 2 + 4 + 1,
        "{:?}",
        pending(&planned)
    );
    assert_eq!(calls(), (1, 1, 0), "the plan took what was read ahead");

    // Read ahead again, then written: the identities now exist, and the next plan must
    // not take the list made before the writes.
    Arc::clone(&azure)
        .read_ahead(ids, session.owner(false))
        .await;
    assert_eq!(calls(), (2, 1, 0), "a role is looked up once per run");
    let report = execute_planned(&session, &planned, false).await;
    assert!(
        report
            .steps
            .iter()
            .all(|s| matches!(s.outcome, wid::engine::Outcome::Done { .. }))
    );
    let after = plan(&session, false).await;
    assert!(pending(&after).is_empty(), "{:?}", pending(&after));
    assert_eq!(calls(), (3, 1, 0), "the plan listed the group again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_ahead_looks_up_only_the_roles_of_the_identities_it_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let workloads = workload("a", "id-a", "azure.roles = [{ role = \"Reader\" }]")
        + &workload(
            "b",
            "id-b",
            "azure.roles = [{ role = \"Storage Blob Data Reader\" }]",
        );
    let session = open(tmp.path(), &plan_text("targeted", &workloads)).await;
    let shared = shared(&session);
    let look_ups = || sandbox_calls(&shared, "azure:roleDefinitions.list");
    let azure = session.providers.get("azure").unwrap().clone();
    let ids = wid::model::cloud_read_ahead_ids(&session.plan);
    // Only id-a and its credential, as a plan targeting workload a would read.
    let only_a: Vec<_> = ids
        .iter()
        .filter(|id| id.part(2) == "id-a")
        .cloned()
        .collect();
    assert_eq!(only_a.len(), 2, "{ids:?}");
    Arc::clone(&azure)
        .read_ahead(only_a, session.owner(false))
        .await;
    assert_eq!(look_ups(), 1, "Reader only");
    Arc::clone(&azure)
        .read_ahead(ids, session.owner(false))
        .await;
    assert_eq!(look_ups(), 2, "then Storage Blob Data Reader, Reader kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_look_up_that_failed_ahead_fails_the_next_plan_once_then_is_made_again() {
    let tmp = tempfile::tempdir().unwrap();
    let misspelt = "azure.roles = [{ role = \"Reeder\" }]";
    let session = open(
        tmp.path(),
        &plan_text("misspelt", &workload("ksa", "orders", misspelt)),
    )
    .await;
    let shared = shared(&session);
    let look_ups = || sandbox_calls(&shared, "azure:roleDefinitions.list");
    let azure = session.providers.get("azure").unwrap().clone();
    let ids = wid::model::cloud_read_ahead_ids(&session.plan);
    azure.read_ahead(ids, session.owner(false)).await;
    assert_eq!(look_ups(), 1);
    for (round, calls) in [(1, 1), (2, 2)] {
        let err = session
            .plan(wid::session::PlanMode::Apply { prune: false })
            .await
            .expect_err("the role does not exist");
        let text = format!("{err:?}");
        assert!(text.contains(r#"role \"Reeder\" does not exist"#), "{text}");
        assert_eq!(look_ups(), calls, "plan {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_credential_trusting_the_same_ksa_is_a_plan_time_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let session = open(tmp.path(), &legacy_plan(true, true)).await;
    let shared = shared(&session);
    legacy_identity(&shared);
    // Someone already federated the KSA by hand, under their own name.
    shared.write(|s| {
        let rg = s
            .azure
            .subscriptions
            .get_mut(SUB)
            .unwrap()
            .resource_groups
            .get_mut("rg-aks")
            .unwrap();
        let issuer = rg.managed_clusters["aks"].issuer_url.clone();
        rg.identities
            .get_mut("legacy")
            .unwrap()
            .federated_credentials
            .insert(
                "by-hand".into(),
                FederatedCredential {
                    name: "by-hand".into(),
                    issuer,
                    subject: "system:serviceaccount:apps:orders".into(),
                    audiences: vec!["api://AzureADTokenExchange".into()],
                },
            );
    });
    let planned = plan(&session, false).await;
    let conflict = planned
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::Conflict)
        .expect("Azure allows one credential per issuer and subject");
    assert_eq!(conflict.id.kind(), "federated-credential");
    let Reason::Blocked(why) = &conflict.reason else {
        panic!("{conflict:?}")
    };
    assert!(
        why.contains("federated credential by-hand of identity legacy"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_and_their_role_assignments_are_read_in_bulk_or_one_by_one_when_denied() {
    let tmp = tempfile::tempdir().unwrap();
    let workloads: String = (0..10)
        .map(|i| {
            workload(
                &format!("ksa-{i}"),
                &format!("id-{i}"),
                "azure.roles = [{ role = \"Reader\" }]",
            )
        })
        .collect();
    let session = open(tmp.path(), &plan_text("listed", &workloads)).await;
    let shared = shared(&session);
    let counts = |name: &str| session.counter.snapshot().get(name).copied().unwrap_or(0);
    const LIST: &str = "azure:userAssignedIdentities.listByResourceGroup";
    const GET: &str = "azure:userAssignedIdentities.get";
    const ROLES: &str = "azure:roleAssignments.list";
    let reads = || (counts(LIST), counts(GET), counts(ROLES));
    let since = |(l, g, r): (u64, u64, u64)| {
        let (l2, g2, r2) = reads();
        (l2 - l, g2 - g, r2 - r)
    };

    // Nothing exists yet: one list of the group says so for all ten.
    let planned = plan(&session, false).await;
    assert_eq!(
        pending(&planned).len(),
        10 * 3 + 1,
        "{:#?}",
        pending(&planned)
    );
    assert_eq!(reads(), (1, 0, 0));
    converge(&session, false).await;

    // The drift gate: one list reads the ten identities, one the role assignments of the
    // subscription.
    let before = reads();
    assert!(pending(&plan(&session, false).await).is_empty());
    assert_eq!(since(before), (1, 0, 1));

    // An identity the list does not hold does not exist: it is created again.
    shared.write(|s| {
        let rg = s.azure.subscriptions.get_mut(SUB).unwrap();
        rg.resource_groups
            .get_mut("rg-aks")
            .unwrap()
            .identities
            .remove("id-2");
    });
    let left = pending(&plan(&session, false).await);
    assert!(
        left.iter()
            .any(|(id, kind, _)| id.ends_with("/id-2") && *kind == ChangeKind::Create),
        "{left:#?}"
    );
    converge(&session, false).await;

    // Denied a list, wid reads one by one and sees the same world. Role assignments are
    // listed in bulk only for identities a list showed exist.
    let sandbox = session.sandbox().expect("in-process sandbox");
    let deny = |api: &str| {
        sandbox.inject(wid_sandbox::Fault {
            api: api.into(),
            action: wid_sandbox::FaultAction::Forbidden,
            times: Some(1),
        })
    };
    deny(LIST);
    let before = reads();
    assert!(pending(&plan(&session, false).await).is_empty());
    assert_eq!(since(before), (1, 10, 10));
    deny(ROLES);
    let before = reads();
    assert!(pending(&plan(&session, false).await).is_empty());
    assert_eq!(since(before), (1, 0, 1 + 10));

    // Throttled, the lists are retried.
    for api in [LIST, ROLES] {
        sandbox.inject(wid_sandbox::Fault {
            api: api.into(),
            action: wid_sandbox::FaultAction::Throttle,
            times: Some(1),
        });
    }
    let before = reads();
    assert!(pending(&plan(&session, false).await).is_empty());
    assert_eq!(since(before), (2, 0, 2));
}
