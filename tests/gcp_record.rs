//! The GCP record through the engine: a run drained by Ctrl-C after its first policy
//! change leaves a record that holds exactly the bindings made (the entries written ahead
//! for the changes never started are removed after the run), and the next apply
//! converges.

use std::collections::BTreeSet;
use std::time::Duration;

use wid::engine::{
    ExecuteOptions, Outcome, Progress, Step, Stop, StopLevel, StopReason, execute_with,
};
use wid::session::{PlanMode, Session};
use wid_core::{Change, ProviderError, ResourceId};

#[path = "common/fault_kit.rs"]
mod fault_kit;
#[path = "common/gcp_ledger.rs"]
mod gcp_ledger;

const PLAN: &str = "gcp-record";

fn plan_text(workloads: usize) -> String {
    let mut text = format!(
        "version = 1\nname = \"{PLAN}\"\n\n[clusters.gke]\nkind = \"gke\"\nproject = \"acme-prod\"\nlocation = \"us-central1\"\nname = \"prod\"\ncreate_namespaces = true\n\n"
    );
    for i in 0..workloads {
        text.push_str(&format!(
            "[[workload]]\ncluster = \"gke\"\nnamespace = \"shop\"\nservice_account = \"w{i}\"\ngcp.service_account = \"worker-{i:02}\"\ngcp.roles = [\"roles/pubsub.subscriber\"]\n\n"
        ));
    }
    text
}

/// Pulls the stop to a drain, as a first Ctrl-C does, when the first GCP policy change
/// ends.
struct DrainAfterFirstPolicy {
    stop: Stop,
}

impl Progress for DrainAfterFirstPolicy {
    fn started(&self, _: &Change) {}
    fn retrying(&self, _: &ResourceId, _: u32, _: &ProviderError, _: Duration) {}
    fn finished(&self, step: &Step, _: usize, _: usize) {
        if step.id.kind() == "iam-policy" {
            self.stop.request(StopLevel::Drain, StopReason::Interrupted);
        }
    }
}

/// The plan's record entries and the entries of every binding in acme-prod's policies.
fn record_and_bindings(session: &Session) -> (BTreeSet<String>, BTreeSet<String>) {
    let sandbox = session.sandbox().expect("in-process sandbox");
    sandbox
        .shared()
        .read(|s| gcp_ledger::record_and_bindings(&s.gcp, PLAN))
}

#[test]
fn a_drained_apply_leaves_no_record_entry_for_bindings_not_made() {
    fault_kit::run(drained());
}

async fn drained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = fault_kit::session(dir.path(), &plan_text(12)).await;
    let planned = session
        .plan(PlanMode::Apply { prune: false })
        .await
        .expect("plan");
    let stop = Stop::new();
    let options = ExecuteOptions {
        retry: fault_kit::fast(),
        // One change of a provider at a time, so the drain leaves policy changes unstarted.
        parallelism: Some(1),
        stop: Some(stop.clone()),
    };
    let report = execute_with(
        &session.providers,
        &planned.changes,
        &session.owner(false),
        &options,
        &DrainAfterFirstPolicy { stop },
    )
    .await;
    assert_eq!(report.stopped, Some(StopReason::Interrupted));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let made = report
        .steps
        .iter()
        .filter(|s| s.id.kind() == "iam-policy" && matches!(s.outcome, Outcome::Done { .. }))
        .count();
    let never = report
        .steps
        .iter()
        .filter(|s| s.id.kind() == "iam-policy" && matches!(s.outcome, Outcome::NotStarted))
        .count();
    assert_eq!(made, 1, "{:#?}", report.steps);
    assert_eq!(never, 12, "{:#?}", report.steps);
    let (record, bound) = record_and_bindings(&session);
    assert_eq!(record, bound, "the record holds exactly the bindings made");
    assert!(!record.is_empty());

    fault_kit::apply(&session).await;
    assert!(fault_kit::pending(&session).await.is_empty());
    let (record, bound) = record_and_bindings(&session);
    assert_eq!(record, bound);
    assert_eq!(
        record.len(),
        24,
        "12 account policy lines and 12 project lines"
    );
}
