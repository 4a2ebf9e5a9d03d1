//! The GCP provider against the embedded sandbox, in process: one read and at most one
//! write per policy per run, an etag conflict between wid's read and its write, an
//! injected `ABORTED`, and a new account's policy written without a read (with the empty
//! policy's etag, re-read only when someone wrote it first).

mod common;

use common::*;
use wid_core::{Change, ChangeKind, Provider};
use wid_gcp::GcpProvider;
use wid_sandbox::{Fault, FaultAction, Sandbox};

#[tokio::test]
async fn ten_workloads_on_one_project_cost_one_read_and_one_write_of_its_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let resources = workers(10);
    let project_policy = resources
        .iter()
        .find(|r| r.id.to_string() == "gcp/iam-policy/projects/acme-prod")
        .unwrap();
    assert_eq!(project_policy.attrs.len(), 10);
    let changes = plan(&provider, &resources).await;
    execute(&provider, &changes).await;
    assert_eq!(count(&sandbox, "gcp:crm.projects.getIamPolicy"), 1);
    assert_eq!(count(&sandbox, "gcp:crm.projects.setIamPolicy"), 1);
    // The next run reads it once more and has nothing to write.
    let again = plan(&provider, &resources).await;
    assert!(
        again.iter().all(|c| c.kind == ChangeKind::NoOp),
        "{again:?}"
    );
    assert_eq!(count(&sandbox, "gcp:crm.projects.getIamPolicy"), 2);
    assert_eq!(count(&sandbox, "gcp:crm.projects.setIamPolicy"), 1);
}

#[tokio::test]
async fn an_etag_conflict_between_read_and_write_is_re_read_and_both_changes_survive() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let mut direct = impersonating("unused-name", "roles/storage.objectViewer");
    direct.service_account = None;
    direct.direct = true;
    let resources = desired(&[(direct, "reports")]);
    let changes = plan(&provider, &resources).await;
    // Someone else writes the project's policy after wid read it.
    sandbox.shared().write(|s| {
        let policy = &mut s.gcp.projects.get_mut("acme-prod").unwrap().policy;
        policy.bindings.push(wid_sandbox::gcp::Binding {
            role: "roles/viewer".into(),
            members: vec!["user:alice@example.com".into()],
            condition: None,
        });
        policy.etag = "BwYAAAAAAAk=".into();
    });
    execute(&provider, &changes).await;
    let bindings = sandbox
        .shared()
        .read(|s| s.gcp.projects["acme-prod"].policy.bindings.clone());
    let members: Vec<(String, String)> = bindings
        .iter()
        .flat_map(|b| b.members.iter().map(|m| (b.role.clone(), m.clone())))
        .collect();
    assert!(
        members.contains(&("roles/viewer".into(), "user:alice@example.com".into())),
        "{members:?}"
    );
    assert!(members.contains(&(
        "roles/storage.objectViewer".into(),
        "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/acme-prod.svc.id.goog/subject/ns/shop/sa/reports".into()
    )), "{members:?}");
    assert_eq!(
        count(&sandbox, "gcp:crm.projects.getIamPolicy"),
        2,
        "read, then re-read after the conflict"
    );
    assert_eq!(count(&sandbox, "gcp:crm.projects.setIamPolicy"), 2);
    assert_converged(&provider, &resources).await;
}

#[tokio::test]
async fn an_injected_aborted_is_re_read_and_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let resources = desired(&[(
        impersonating("orders-app", "roles/pubsub.subscriber"),
        "orders",
    )]);
    let changes = plan(&provider, &resources).await;
    sandbox.inject(Fault {
        api: "gcp:crm.projects.setIamPolicy".into(),
        action: FaultAction::Conflict,
        times: Some(1),
    });
    execute(&provider, &changes).await;
    assert_eq!(count(&sandbox, "gcp:crm.projects.setIamPolicy"), 2);
    assert_converged(&provider, &resources).await;
}

/// Applies the changes in [`execute`]'s order, calling `between` after the accounts are
/// created and before any policy is written.
async fn execute_with(provider: &GcpProvider, changes: &[Change], between: impl FnOnce()) {
    let (accounts, policies): (Vec<Change>, Vec<Change>) = changes
        .iter()
        .cloned()
        .partition(|c| c.id.kind() == "service-account");
    execute(provider, &accounts).await;
    between();
    execute(provider, &policies).await;
}

fn sa_members(sandbox: &Sandbox, email: &str) -> Vec<(String, String)> {
    sandbox.shared().read(|s| {
        s.gcp.projects["acme-prod"]
            .service_accounts
            .values()
            .find(|a| a.email == email)
            .unwrap()
            .policy
            .bindings
            .iter()
            .flat_map(|b| b.members.iter().map(|m| (b.role.clone(), m.clone())))
            .collect()
    })
}

const ORDERS: &str = "orders-app@acme-prod.iam.gserviceaccount.com";

#[tokio::test]
async fn a_new_accounts_policy_is_written_with_the_empty_etag_and_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let resources = desired(&[(
        impersonating("orders-app", "roles/pubsub.subscriber"),
        "orders",
    )]);
    let changes = plan(&provider, &resources).await;
    execute(&provider, &changes).await;
    assert_eq!(count(&sandbox, "gcp:iam.serviceAccounts.getIamPolicy"), 0);
    assert_eq!(count(&sandbox, "gcp:iam.serviceAccounts.setIamPolicy"), 1);
    assert_eq!(sa_members(&sandbox, ORDERS).len(), 1);
    assert_converged(&provider, &resources).await;
}

#[tokio::test]
async fn a_new_accounts_policy_written_by_someone_else_first_is_re_read_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let resources = desired(&[(
        impersonating("orders-app", "roles/pubsub.subscriber"),
        "orders",
    )]);
    let changes = plan(&provider, &resources).await;
    // Between the account's create and wid's write of its policy, someone grants a role
    // on the new account: the empty policy's etag no longer matches.
    execute_with(&provider, &changes, || {
        sandbox.shared().write(|s| {
            let sa = s
                .gcp
                .projects
                .get_mut("acme-prod")
                .unwrap()
                .service_accounts
                .values_mut()
                .find(|a| a.email == ORDERS)
                .unwrap();
            sa.policy.bindings.push(wid_sandbox::gcp::Binding {
                role: "roles/iam.serviceAccountTokenCreator".into(),
                members: vec!["user:alice@example.com".into()],
                condition: None,
            });
            sa.policy.etag = "BwYAAAAAAAk=".into();
        });
    })
    .await;
    let members = sa_members(&sandbox, ORDERS);
    assert!(
        members.contains(&(
            "roles/iam.serviceAccountTokenCreator".into(),
            "user:alice@example.com".into()
        )),
        "{members:?}"
    );
    assert!(
        members
            .iter()
            .any(|(role, _)| role == "roles/iam.workloadIdentityUser"),
        "{members:?}"
    );
    assert_eq!(
        count(&sandbox, "gcp:iam.serviceAccounts.getIamPolicy"),
        1,
        "read only after the conflict"
    );
    assert_eq!(count(&sandbox, "gcp:iam.serviceAccounts.setIamPolicy"), 2);
    assert_converged(&provider, &resources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_applied_together_share_their_record_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let resources = workers(10);
    let changes = plan(&provider, &resources).await;
    let (accounts, policies): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .partition(|c| c.id.kind() == "service-account");
    execute(&provider, &accounts).await;
    // Record writes take a while, as they do against IAM: the changes that arrive while
    // one is in flight wait for the next.
    for api in [
        "gcp:iam.serviceAccounts.create",
        "gcp:iam.serviceAccounts.patch",
    ] {
        sandbox.inject(Fault {
            api: api.into(),
            action: FaultAction::Latency { ms: 100 },
            times: None,
        });
    }
    let before = account_writes(&sandbox);
    assert_eq!(policies.len(), 11, "ten account policies and the project's");
    // Applied without announcing the run first (no `run_starting`): each change writes
    // its own entries ahead, and those waiting for the record share the next write.
    let own = owner();
    let results = futures::future::join_all(policies.iter().map(|c| provider.apply(c, &own))).await;
    for r in results {
        r.unwrap();
    }
    let writes = account_writes(&sandbox) - before;
    assert!(
        (1..=3).contains(&writes),
        "11 policy changes at once made {writes} record writes"
    );
    // The record holds every binding: the next plan has nothing to do.
    let again = plan(&provider, &resources).await;
    assert!(
        again.iter().all(|c| c.kind == ChangeKind::NoOp),
        "{again:?}"
    );
}

/// Reads of one observe: its lists of service accounts and its policy reads.
fn observe_reads(sandbox: &Sandbox) -> (u64, u64) {
    (
        count(sandbox, "gcp:iam.serviceAccounts.list"),
        count(sandbox, "gcp:crm.projects.getIamPolicy"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_ahead_serves_observe_once_and_a_write_drops_it() {
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let provider = Arc::new(provider);
    let resources = workers(3);
    execute(&provider, &plan(&provider, &resources).await).await;
    let wanted: Vec<&wid_core::Resource> = resources.iter().collect();
    let ids: Vec<wid_core::ResourceId> = resources.iter().map(|r| r.id.clone()).collect();
    let before = observe_reads(&sandbox);
    let read = provider.observe(&wanted, &owner()).await.unwrap();
    let one = observe_reads(&sandbox);
    let per_observe = (one.0 - before.0, one.1 - before.1);
    assert_eq!(
        per_observe,
        (1, 1),
        "one list of acme-prod, its policy once"
    );

    // Observe polled first waits for the reads registered ahead of it: nothing twice.
    let own = owner();
    let reads = Arc::clone(&provider).read_ahead(ids.clone(), own.clone());
    let (observed, ()) = tokio::join!(provider.observe(&wanted, &own), reads);
    let observed = observed.unwrap();
    assert_eq!(observed.resources, read.resources);
    assert_eq!(observed.blockers, read.blockers);
    let two = observe_reads(&sandbox);
    assert_eq!((two.0 - one.0, two.1 - one.1), per_observe);

    // Taken once: the next observe reads again.
    provider.observe(&wanted, &owner()).await.unwrap();
    let three = observe_reads(&sandbox);
    assert_eq!((three.0 - two.0, three.1 - two.1), per_observe);

    // A write after the reads ahead (an account, its policy, the record): what was
    // read may no longer be what is, so observe reads it all again.
    let more = workers(4);
    let changes = plan(&provider, &more).await;
    Arc::clone(&provider).read_ahead(ids.clone(), owner()).await;
    let before_writes = observe_reads(&sandbox);
    execute(&provider, &changes).await;
    assert!(
        account_writes(&sandbox) > 0,
        "the new worker's binding was recorded"
    );
    let written = observe_reads(&sandbox);
    provider.observe(&wanted, &owner()).await.unwrap();
    let four = observe_reads(&sandbox);
    assert_eq!((four.0 - written.0, four.1 - written.1), per_observe);
    assert_eq!(before_writes, written, "the writes read nothing of these");

    // Forgotten: observe reads again what was read ahead.
    Arc::clone(&provider).read_ahead(ids, owner()).await;
    provider.forget_read_ahead();
    provider.observe(&wanted, &owner()).await.unwrap();
    let five = observe_reads(&sandbox);
    assert_eq!(
        (five.0 - four.0, five.1 - four.1),
        (2 * per_observe.0, 2 * per_observe.1)
    );
}
