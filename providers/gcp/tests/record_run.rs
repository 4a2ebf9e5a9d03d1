//! The record across a run, against the sandbox: the entries of every binding a run adds
//! are written ahead in one write per record account, and after the run the record holds
//! exactly the bindings that are in the policies, whatever failed, was skipped or never
//! started.

mod common;

use common::*;
use wid_core::{Change, ChangeKind, ErrorKind, Resource};
use wid_gcp::GcpProvider;
use wid_sandbox::{FaultAction, FaultRule, Sandbox};

/// Creates the plan's accounts, then plans again: what is left are the policy changes.
async fn accounts_first(provider: &GcpProvider, resources: &[Resource]) -> Vec<Change> {
    let changes = plan(provider, resources).await;
    let accounts: Vec<Change> = changes
        .into_iter()
        .filter(|c| c.id.kind() == "service-account")
        .collect();
    execute(provider, &accounts).await;
    let left = plan(provider, resources).await;
    let not_policies: Vec<String> = left
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp && c.id.kind() != "iam-policy")
        .map(|c| c.id.to_string())
        .collect();
    assert!(not_policies.is_empty(), "{not_policies:?}");
    left
}

/// The record holds an entry for exactly the bindings in the policies.
fn assert_record_exact(sandbox: &Sandbox) {
    let record = record_entries(sandbox);
    let live = policy_entries(sandbox);
    assert_eq!(
        record,
        live,
        "recorded without a binding: {:?}; bound without a record: {:?}",
        record.difference(&live).collect::<Vec<_>>(),
        live.difference(&record).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_the_record_once_per_record_account_it_touches() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    // 20 workloads: 20 account policy lines and 20 project lines, 40 entries, two record
    // accounts of 28.
    let resources = workers(20);
    let policies = accounts_first(&provider, &resources).await;
    assert_eq!(
        policies
            .iter()
            .filter(|c| c.kind != ChangeKind::NoOp)
            .count(),
        21
    );
    let before = account_writes(&sandbox);
    let (failed, ended) = run(&provider, &policies, usize::MAX).await;
    assert!(failed.is_empty(), "{failed:?}");
    ended.unwrap();
    assert_eq!(
        count(&sandbox, "gcp:iam.serviceAccounts.create"),
        20 + 2,
        "two record accounts created"
    );
    assert_eq!(
        account_writes(&sandbox) - before,
        2,
        "one write per record account"
    );
    assert_record_exact(&sandbox);
    assert_converged(&provider, &resources).await;

    // Five more workloads: their ten entries fit in the second record account (12 of 28),
    // one update, whatever order the changes run in.
    let more = workers(25);
    let policies = accounts_first(&provider, &more).await;
    let before = account_writes(&sandbox);
    let (failed, ended) = run(&provider, &policies, usize::MAX).await;
    assert!(failed.is_empty(), "{failed:?}");
    ended.unwrap();
    assert_eq!(account_writes(&sandbox) - before, 1);
    assert_eq!(count(&sandbox, "gcp:iam.serviceAccounts.patch"), 1);
    assert_record_exact(&sandbox);
    assert_converged(&provider, &more).await;
}

#[tokio::test]
async fn failed_policy_writes_leave_no_entry_for_bindings_not_made() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let resources = workers(6);
    let policies = accounts_first(&provider, &resources).await;
    // worker-02's policy write fails: nothing lands. worker-04's lands but its answer is
    // lost: the binding is there, and wid cannot tell from the error.
    sandbox.inject(
        FaultRule::new(
            "gcp:iam.serviceAccounts.setIamPolicy",
            FaultAction::ServerError,
        )
        .object("worker-02@")
        .times(1),
    );
    sandbox.inject(
        FaultRule::new(
            "gcp:iam.serviceAccounts.setIamPolicy",
            FaultAction::LostResponse {
                response: Default::default(),
            },
        )
        .object("worker-04@")
        .times(1),
    );
    let reads = count(&sandbox, "gcp:iam.serviceAccounts.getIamPolicy");
    let (failed, ended) = run(&provider, &policies, usize::MAX).await;
    let failed: Vec<String> = failed.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed.iter().any(|id| id.contains("worker-02@")),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|id| id.contains("worker-04@")),
        "{failed:?}"
    );
    ended.unwrap();
    assert_eq!(
        count(&sandbox, "gcp:iam.serviceAccounts.getIamPolicy") - reads,
        2,
        "the two policies whose write failed are read again, and only they"
    );
    // worker-02's entry is gone, worker-04's stays: its binding is there.
    assert_record_exact(&sandbox);

    let again = plan(&provider, &resources).await;
    let (failed, ended) = run(&provider, &again, usize::MAX).await;
    assert!(failed.is_empty(), "{failed:?}");
    ended.unwrap();
    assert_record_exact(&sandbox);
    assert_converged(&provider, &resources).await;
}

#[tokio::test]
async fn skipped_and_never_started_changes_leave_no_entry_for_their_bindings() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let resources = workers(6);
    // worker-03's account cannot be created: its policy and the project's (which names
    // every account) are skipped.
    sandbox.inject(
        FaultRule::new("gcp:iam.serviceAccounts.create", FaultAction::Forbidden)
            .object("worker-03")
            .times(1),
    );
    let changes = plan(&provider, &resources).await;
    let (failed, ended) = run(&provider, &changes, usize::MAX).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    ended.unwrap();
    assert_record_exact(&sandbox);
    let project_lines = sandbox.shared().read(|s| {
        s.gcp.projects["acme-prod"]
            .policy
            .bindings
            .iter()
            .filter(|b| b.role == "roles/pubsub.subscriber")
            .count()
    });
    assert_eq!(project_lines, 0, "the project's policy change was skipped");

    // A drained run: two of the policy changes start, the others never do.
    let again = plan(&provider, &resources).await;
    let (failed, ended) = run(&provider, &again, 2).await;
    assert!(failed.is_empty(), "{failed:?}");
    ended.unwrap();
    assert_record_exact(&sandbox);
    assert!(
        !record_entries(&sandbox).is_empty(),
        "the two made are kept"
    );

    let again = plan(&provider, &resources).await;
    let (failed, ended) = run(&provider, &again, usize::MAX).await;
    assert!(failed.is_empty(), "{failed:?}");
    ended.unwrap();
    assert_record_exact(&sandbox);
    assert_converged(&provider, &resources).await;
}

#[tokio::test]
async fn a_failed_record_write_fails_the_change_before_its_policy_and_the_next_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, provider) = start(tmp.path()).await;
    let resources = workers(4);
    let policies = accounts_first(&provider, &resources).await;
    sandbox.inject(
        FaultRule::new("gcp:iam.serviceAccounts.create", FaultAction::ServerError)
            .object("wid-rec-")
            .times(1),
    );
    let (failed, ended) = run(&provider, &policies, 1).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let error = &failed[0].1;
    assert_eq!(error.kind(), ErrorKind::Transient, "{error:?}");
    assert!(!error.partial, "nothing was changed: {error:?}");
    ended.unwrap();
    assert_eq!(
        count(&sandbox, "gcp:iam.serviceAccounts.setIamPolicy")
            + count(&sandbox, "gcp:resourcemanager.projects.setIamPolicy"),
        0,
        "no policy was written"
    );
    assert!(record_entries(&sandbox).is_empty());
    assert_record_exact(&sandbox);

    // The next run writes the batch from its first change and converges.
    let again = plan(&provider, &resources).await;
    let before = account_writes(&sandbox);
    let (failed, ended) = run(&provider, &again, usize::MAX).await;
    assert!(failed.is_empty(), "{failed:?}");
    ended.unwrap();
    assert_eq!(account_writes(&sandbox) - before, 1);
    assert_record_exact(&sandbox);
    assert_converged(&provider, &resources).await;
}
