//! The fault tests' shared steps: a session on the in-process sandbox with a fast retry
//! policy, apply and plan, one-shot faults, and the check that each faulted call was
//! retried.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use wid::engine::{ExecuteOptions, Progress, Step, execute_with};
use wid::session::{PlanMode, Session, Target};
use wid_core::{Change, ChangeKind, ProviderError, ResourceId, RetryPolicy};
use wid_sandbox::{Fault, FaultAction};

/// Progress that prints nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn started(&self, _: &Change) {}
    fn retrying(&self, _: &ResourceId, _: u32, _: &ProviderError, _: Duration) {}
    fn finished(&self, _: &Step, _: usize, _: usize) {}
}

pub fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
    }
}

/// A session on the plan `text` (written to DIR/plan.toml) against the in-process
/// sandbox in DIR/sb, retrying fast.
pub async fn session(dir: &Path, text: &str) -> Session {
    let file = dir.join("plan.toml");
    std::fs::write(&file, text).expect("write plan");
    let plan = wid::plan::load(&file).expect("plan is valid");
    let mut target = Target {
        sandbox: Some(dir.join("sb")),
        ..Target::default()
    };
    target.limits.retry = fast();
    Session::open(plan, &target).await.expect("session")
}

pub async fn apply(session: &Session) {
    let planned = session
        .plan(PlanMode::Apply { prune: false })
        .await
        .expect("plan");
    let options = ExecuteOptions {
        retry: fast(),
        ..ExecuteOptions::default()
    };
    let report = execute_with(
        &session.providers,
        &planned.changes,
        &session.owner(false),
        &options,
        &Quiet,
    )
    .await;
    let failed: Vec<String> = report
        .steps
        .iter()
        .filter(|s| !matches!(s.outcome, wid::engine::Outcome::Done { .. }))
        .map(|s| format!("{}: {:?}", s.id, s.outcome))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

pub async fn pending(session: &Session) -> Vec<String> {
    let planned = session
        .plan(PlanMode::Apply { prune: false })
        .await
        .expect("plan");
    planned
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .map(|c| format!("{:?} {}", c.kind, c.id))
        .collect()
}

pub fn inject(session: &Session, apis: &[&str], action: FaultAction) {
    let sandbox = session.sandbox().expect("in-process sandbox");
    for api in apis {
        sandbox.inject(Fault {
            api: (*api).to_owned(),
            action: action.clone(),
            times: Some(1),
        });
    }
}

/// The APIs of `apis` called fewer than twice between `before` and now: a faulted call is
/// always followed by its retry. A rule matches every API its name begins with (the
/// sandbox's rule), so with `gcp:crm.projects.get` and `gcp:crm.projects.getIamPolicy`
/// both faulted either call may take either fault: an API is counted with those its name
/// begins, needing two calls for each listed API among them.
pub fn not_retried(
    session: &Session,
    before: &std::collections::BTreeMap<String, u64>,
    apis: &[&str],
) -> Vec<String> {
    let after = session.sandbox().expect("sandbox").calls();
    let family = |calls: &std::collections::BTreeMap<String, u64>, api: &str| -> u64 {
        calls
            .iter()
            .filter(|(k, _)| k.starts_with(api))
            .map(|(_, v)| v)
            .sum()
    };
    apis.iter()
        .filter(|api| {
            let rules = apis.iter().filter(|a| a.starts_with(**api)).count() as u64;
            family(&after, api) - family(before, api) < 2 * rules
        })
        .map(|api| format!("{api}: {:?} -> {:?}", before.get(*api), after.get(*api)))
        .collect()
}

/// Runs `test` on a runtime whose threads have room for the Google clients' deep
/// futures (a test thread's default 2 MiB stack is too small for them in debug builds;
/// `wid` itself runs on the main thread's 8 MiB).
pub fn run<F: std::future::Future<Output = ()> + Send + 'static>(test: F) {
    const STACK: usize = 16 * 1024 * 1024;
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(STACK)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(test);
        })
        .expect("thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}
