//! Executor tests with a scripted provider: ordering, concurrency, retries, skips.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use wid_core::{
    AttrValue, Change, ChangeKind, ErrorKind, Observed, ObservedResource, Outputs, Owner,
    Ownership, Provider, ProviderError, Reason, Resource, ResourceId,
};

use super::*;
use crate::engine::{Stop, StopLevel, StopReason};

#[derive(Default)]
struct Scripted {
    /// Errors to return per resource key, consumed in order.
    errors: Mutex<BTreeMap<String, Vec<ErrorKind>>>,
    log: Mutex<Vec<String>>,
    running: AtomicUsize,
    /// Resources whose create got as far as the object (before any scripted error).
    created: Mutex<BTreeMap<ResourceId, wid_core::ObservedAttrs>>,
    /// Whether creates leave the object behind even when they fail.
    half_done: bool,
    max_running: AtomicUsize,
    limit: usize,
    /// The changes `run_starting` was given, and how many applies had run by then.
    announced: Mutex<Option<(Vec<ResourceId>, usize)>>,
    /// How many times `run_ended` was called.
    ended: AtomicUsize,
    /// What `run_ended` fails with.
    end_error: Option<ErrorKind>,
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &'static str {
        "t"
    }

    fn concurrency(&self) -> usize {
        self.limit
    }

    async fn observe(&self, wanted: &[&Resource], _: &Owner) -> Result<Observed, ProviderError> {
        // What the scripted applies left behind: every resource applied at least once
        // exists, with the attributes of its first attempt.
        let mut observed = Observed::default();
        for r in wanted {
            if let Some(attrs) = self.created.lock().unwrap().get(&r.id) {
                let mut o = ObservedResource::new(r.id.clone(), Ownership::Ours);
                o.attrs = attrs.clone();
                observed.insert(o);
            }
        }
        Ok(observed)
    }

    async fn apply(&self, change: &Change, _: &Owner) -> Result<Outputs, ProviderError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        let key = change.id.part(0).to_owned();
        if self.half_done && change.kind == ChangeKind::Create {
            // A half-done create: the object exists, its attributes do not.
            self.created
                .lock()
                .unwrap()
                .entry(change.id.clone())
                .or_default();
        }
        let mut log = self.log.lock().unwrap();
        let value = change.desired_attr("v").map(std::borrow::Cow::into_owned);
        log.push(format!(
            "{:?} {key} {}",
            change.kind,
            value.map(|v| v.to_string()).unwrap_or_default()
        ));
        if let Some(kind) = self
            .errors
            .lock()
            .unwrap()
            .get_mut(&key)
            .and_then(|v| (!v.is_empty()).then(|| v.remove(0)))
        {
            return Err(ProviderError::new(
                kind,
                format!("scripted {kind} for {key}"),
            ));
        }
        Ok(BTreeMap::from([("arn".to_owned(), format!("arn:{key}"))]))
    }

    fn run_starting(&self, changes: &[(&Change, &Owner)]) {
        let ids = changes.iter().map(|(c, _)| c.id.clone()).collect();
        *self.announced.lock().unwrap() = Some((ids, self.log.lock().unwrap().len()));
    }

    async fn run_ended(&self) -> Result<(), ProviderError> {
        self.ended.fetch_add(1, Ordering::SeqCst);
        match self.end_error {
            Some(kind) => Err(ProviderError::new(kind, "scripted clean-up failure")),
            None => Ok(()),
        }
    }
}

fn id(key: &str) -> ResourceId {
    ResourceId::new("t", "thing", [key])
}

fn create(key: &str, deps: &[&str]) -> Change {
    let mut r = Resource::new(id(key));
    for d in deps {
        r = r.depends_on(&id(d));
    }
    Change {
        id: id(key),
        kind: ChangeKind::Create,
        reason: Reason::Missing,
        desired: Some(r.into()),
        observed: None,
        changed: Vec::new(),
    }
}

fn delete(key: &str, deps: &[&str]) -> Change {
    let mut o = ObservedResource::new(id(key), Ownership::Ours);
    o.depends_on = deps.iter().map(|d| id(d)).collect();
    Change {
        id: id(key),
        kind: ChangeKind::Delete,
        reason: Reason::LeftPlan,
        desired: None,
        observed: Some(o.into()),
        changed: Vec::new(),
    }
}

struct Quiet;

impl Progress for Quiet {
    fn started(&self, _: &Change) {}
    fn retrying(&self, _: &ResourceId, _: u32, _: &ProviderError, _: Duration) {}
    fn finished(&self, _: &Step, _: usize, _: usize) {}
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(2),
    }
}

async fn run(p: Arc<Scripted>, changes: &[Change]) -> Report {
    let mut providers = Providers::default();
    providers.add(p);
    let owner = Owner {
        plan: "p".into(),
        prune: false,
    };
    execute(&providers, changes, &owner, &fast(), &Quiet).await
}

fn position(log: &[String], needle: &str) -> usize {
    log.iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in {log:?}"))
}

#[tokio::test]
async fn dependencies_run_first_and_deletes_run_in_reverse() {
    let p = Arc::new(Scripted {
        limit: 8,
        ..Default::default()
    });
    let changes = [
        create("b", &["a"]),
        create("a", &[]),
        create("c", &["b"]),
        delete("x", &[]),
        delete("y", &["x"]),
    ];
    let report = run(p.clone(), &changes).await;
    assert!(report.succeeded());
    let log = p.log.lock().unwrap().clone();
    assert!(position(&log, "Create a") < position(&log, "Create b"));
    assert!(position(&log, "Create b") < position(&log, "Create c"));
    assert!(
        position(&log, "Delete y") < position(&log, "Delete x"),
        "{log:?}"
    );
}

#[tokio::test]
async fn concurrency_stays_within_the_provider_limit() {
    let p = Arc::new(Scripted {
        limit: 3,
        ..Default::default()
    });
    let changes: Vec<Change> = (0..20).map(|i| create(&format!("r{i}"), &[])).collect();
    let report = run(p.clone(), &changes).await;
    assert!(report.succeeded());
    let max = p.max_running.load(Ordering::SeqCst);
    assert!((2..=3).contains(&max), "max concurrent {max}");
}

#[tokio::test]
async fn serialization_keys_run_one_at_a_time() {
    let p = Arc::new(Scripted {
        limit: 8,
        ..Default::default()
    });
    let changes: Vec<Change> = (0..6)
        .map(|i| {
            let mut c = create(&format!("f{i}"), &[]);
            Arc::make_mut(c.desired.as_mut().unwrap()).serialize_key = Some("identity-1".into());
            c
        })
        .collect();
    run(p.clone(), &changes).await;
    assert_eq!(p.max_running.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn deletes_run_under_the_live_objects_serialization_key() {
    let p = Arc::new(Scripted {
        limit: 8,
        ..Default::default()
    });
    let changes: Vec<Change> = (0..6)
        .map(|i| {
            let id = ResourceId::new("t", "x", [format!("f{i}")]);
            let mut live = ObservedResource::new(id.clone(), Ownership::Ours);
            live.serialize_key = Some("identity-1".into());
            Change {
                id,
                kind: ChangeKind::Delete,
                reason: Reason::LeftPlan,
                desired: None,
                observed: Some(live.into()),
                changed: Vec::new(),
            }
        })
        .collect();
    assert!(run(p.clone(), &changes).await.succeeded());
    assert_eq!(p.max_running.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retryable_errors_are_retried_until_success() {
    let p = Arc::new(Scripted {
        limit: 2,
        ..Default::default()
    });
    p.errors
        .lock()
        .unwrap()
        .insert("a".into(), vec![ErrorKind::Throttled, ErrorKind::Transient]);
    let report = run(p.clone(), &[create("a", &[])]).await;
    assert!(matches!(
        report.steps[0].outcome,
        Outcome::Done { attempts: 3 }
    ));
}

#[tokio::test]
async fn a_failure_skips_only_its_dependents() {
    let p = Arc::new(Scripted {
        limit: 2,
        ..Default::default()
    });
    p.errors
        .lock()
        .unwrap()
        .insert("a".into(), vec![ErrorKind::Permission]);
    let changes = [
        create("a", &[]),
        create("b", &["a"]),
        create("c", &["b"]),
        create("d", &[]),
    ];
    let report = run(p.clone(), &changes).await;
    let outcome = |k: &str| {
        report
            .steps
            .iter()
            .find(|s| s.id == id(k))
            .unwrap()
            .outcome
            .clone()
    };
    assert!(matches!(outcome("a"), Outcome::Failed { attempts: 1, .. }));
    assert!(matches!(outcome("b"), Outcome::Skipped { ref because } if *because == id("a")));
    assert!(matches!(outcome("c"), Outcome::Skipped { ref because } if *because == id("b")));
    assert!(matches!(outcome("d"), Outcome::Done { .. }));
    assert_eq!(report.counts(), (1, 1, 2));
}

#[tokio::test]
async fn retries_give_up_after_max_attempts() {
    let p = Arc::new(Scripted {
        limit: 1,
        ..Default::default()
    });
    p.errors
        .lock()
        .unwrap()
        .insert("a".into(), vec![ErrorKind::Throttled; 10]);
    let report = run(p, &[create("a", &[])]).await;
    assert!(matches!(
        report.steps[0].outcome,
        Outcome::Failed { attempts: 4, .. }
    ));
}

#[tokio::test]
async fn unknown_values_are_filled_from_dependency_outputs() {
    let p = Arc::new(Scripted {
        limit: 2,
        ..Default::default()
    });
    let mut b = create("b", &["a"]);
    Arc::make_mut(b.desired.as_mut().unwrap()).attrs.insert(
        "v".into(),
        AttrValue::Unknown {
            from: id("a"),
            output: "arn".into(),
        },
    );
    let report = run(p.clone(), &[create("a", &[]), b]).await;
    assert!(report.succeeded());
    let log = p.log.lock().unwrap().clone();
    assert!(log.iter().any(|l| l == "Create b \"arn:a\""), "{log:?}");
}

#[tokio::test]
async fn a_retried_create_that_half_happened_continues_as_an_update() {
    let p = Arc::new(Scripted {
        limit: 2,
        half_done: true,
        ..Default::default()
    });
    p.errors
        .lock()
        .unwrap()
        .insert("a".into(), vec![ErrorKind::Throttled]);
    let mut a = create("a", &[]);
    Arc::make_mut(a.desired.as_mut().unwrap())
        .attrs
        .insert("v".into(), AttrValue::Known(serde_json::json!(1)));
    let report = run(p.clone(), &[a]).await;
    assert!(matches!(
        report.steps[0].outcome,
        Outcome::Done { attempts: 2 }
    ));
    let log = p.log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec!["Create a 1", "Update a 1"],
        "the retry re-read the live state"
    );
}

/// An IRSA-shaped plan of `n` changes: one shared OIDC provider, then pairs of a role
/// (trusting the provider) and a KSA (annotated with the role), every fifth role sharing
/// a serialization key with the next.
fn irsa_shaped(n: usize) -> Vec<Change> {
    let mut changes = vec![create("oidc", &[])];
    for i in 0..(n - 1) / 2 {
        let role = format!("role{i:06}");
        let mut c = create(&role, &["oidc"]);
        if i % 5 < 2 {
            Arc::make_mut(c.desired.as_mut().unwrap()).serialize_key =
                Some(format!("key{}", i / 5));
        }
        changes.push(c);
        changes.push(create(&format!("ksa{i:06}"), &[&role]));
    }
    changes
}

/// Runs a schedule to the end without I/O, starting everything ready and finishing it
/// (`fail` decides which fail), and returns its units of work.
fn drive(changes: &[Change], fail: impl Fn(&ResourceId) -> bool) -> (u64, usize) {
    let mut s = schedule::Schedule::new(changes);
    let mut started = Vec::new();
    let mut skipped = 0;
    loop {
        for p in 0..s.providers().len() {
            while let Some(i) = s.start(p) {
                started.push(i);
            }
        }
        if started.is_empty() {
            break;
        }
        for i in std::mem::take(&mut started) {
            let ok = !fail(&s.change(i).id);
            skipped += s.finish(i, ok).len();
        }
    }
    assert_eq!(s.finished(), s.len(), "every change ends");
    for i in 0..s.len() {
        assert!(matches!(
            s.state(i),
            schedule::State::Done | schedule::State::Bad
        ));
    }
    (s.ops(), skipped)
}

#[test]
fn scheduling_work_is_linear_in_the_number_of_changes() {
    // The executor used to rescan every change after each completion: 10,000 changes
    // cost about 50 million visits. Now each change and each dependency edge is touched
    // a bounded number of times.
    let (small, _) = drive(&irsa_shaped(1_000), |_| false);
    let (large, _) = drive(&irsa_shaped(10_000), |_| false);
    assert!(large <= 6 * 10_000, "{large} units for 10,000 changes");
    let per_small = small as f64 / 1_000.0;
    let per_large = large as f64 / 10_000.0;
    assert!(
        (per_large - per_small).abs() < 0.1,
        "per change: {per_small:.2} at 1,000, {per_large:.2} at 10,000"
    );
}

#[test]
fn a_failure_early_in_a_large_plan_skips_the_rest_in_linear_work() {
    let changes = irsa_shaped(10_000);
    let (work, skipped) = drive(&changes, |id| *id == super::tests::id("oidc"));
    assert_eq!(skipped, changes.len() - 1, "every role and KSA is skipped");
    assert!(work <= 6 * 10_000, "{work}");
}

#[tokio::test]
async fn parallelism_caps_the_provider_limit() {
    let p = Arc::new(Scripted {
        limit: 8,
        ..Default::default()
    });
    let changes: Vec<Change> = (0..20).map(|i| create(&format!("r{i}"), &[])).collect();
    let mut providers = Providers::default();
    providers.add(p.clone());
    let options = ExecuteOptions {
        retry: fast(),
        parallelism: Some(2),
        stop: None,
    };
    let owner = Owner {
        plan: "p".into(),
        prune: false,
    };
    let report = execute_with(&providers, &changes, &owner, &options, &Quiet).await;
    assert!(report.succeeded());
    assert!(p.max_running.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn throttles_narrow_the_provider_and_successes_widen_it_again() {
    // Every change is throttled once: the window halves with each throttle, so after the
    // first wave (8 at once) fewer run at once, and all still succeed.
    let p = Arc::new(Scripted {
        limit: 8,
        ..Default::default()
    });
    for i in 0..32 {
        p.errors
            .lock()
            .unwrap()
            .insert(format!("r{i:02}"), vec![ErrorKind::Throttled]);
    }
    let changes: Vec<Change> = (0..32).map(|i| create(&format!("r{i:02}"), &[])).collect();
    let report = run(p.clone(), &changes).await;
    assert!(report.succeeded());
    assert!(p.max_running.load(Ordering::SeqCst) <= 8);
}

/// Runs with a stop switch that is pulled to `level` once `after` changes finished.
struct StopAfter {
    stop: Stop,
    after: usize,
    level: StopLevel,
    reason: StopReason,
}

impl Progress for StopAfter {
    fn started(&self, _: &Change) {}
    fn retrying(&self, _: &ResourceId, _: u32, _: &ProviderError, _: Duration) {}
    fn finished(&self, _: &Step, finished: usize, _: usize) {
        if finished == self.after {
            self.stop.request(self.level, self.reason);
        }
    }
}

async fn run_stopped(level: StopLevel) -> (Arc<Scripted>, Report) {
    run_stopped_by(level, StopReason::Interrupted).await
}

async fn run_stopped_by(level: StopLevel, reason: StopReason) -> (Arc<Scripted>, Report) {
    let p = Arc::new(Scripted {
        limit: 2,
        ..Default::default()
    });
    let changes: Vec<Change> = (0..10).map(|i| create(&format!("r{i}"), &[])).collect();
    let mut providers = Providers::default();
    providers.add(p.clone());
    let stop = Stop::new();
    let progress = StopAfter {
        stop: stop.clone(),
        after: 1,
        level,
        reason,
    };
    let options = ExecuteOptions {
        retry: fast(),
        parallelism: None,
        stop: Some(stop),
    };
    let owner = Owner {
        plan: "p".into(),
        prune: false,
    };
    let report = execute_with(&providers, &changes, &owner, &options, &progress).await;
    (p, report)
}

#[tokio::test]
async fn a_drain_lets_calls_in_flight_finish_and_starts_nothing_new() {
    let (p, report) = run_stopped(StopLevel::Drain).await;
    assert_eq!(report.stopped, Some(StopReason::Interrupted));
    let (done, failed, skipped) = report.counts();
    let (not_started, abandoned) = report.not_run();
    // Two ran at once: the first finished and pulled the switch, the second finished.
    assert_eq!((done, failed, skipped, abandoned), (2, 0, 0, 0));
    assert_eq!(not_started, 8);
    assert_eq!(p.log.lock().unwrap().len(), 2, "nothing else was called");
    assert_eq!(report.steps.len(), 10, "every change is in the report");
    assert_eq!(p.ended.load(Ordering::SeqCst), 1, "the provider cleaned up");
}

#[tokio::test]
async fn an_abort_drops_calls_in_flight_and_says_so() {
    let (p, report) = run_stopped(StopLevel::Abort).await;
    let (done, _, _) = report.counts();
    let (not_started, abandoned) = report.not_run();
    assert_eq!((done, abandoned, not_started), (1, 1, 8));
    assert!(!report.succeeded());
    assert_eq!(
        p.ended.load(Ordering::SeqCst),
        0,
        "a second Ctrl-C sends nothing more"
    );
}

#[tokio::test]
async fn a_timed_out_run_still_cleans_up() {
    let (p, report) = run_stopped_by(
        StopLevel::Abort,
        StopReason::TimedOut(Duration::from_secs(1)),
    )
    .await;
    assert_eq!(report.not_run().0, 8);
    assert_eq!(p.ended.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn providers_learn_the_run_before_it_and_its_clean_up_errors_are_the_runs() {
    let p = Arc::new(Scripted {
        limit: 8,
        end_error: Some(ErrorKind::Permission),
        ..Default::default()
    });
    let changes = [create("b", &["a"]), create("a", &[]), delete("x", &[])];
    let report = run(p.clone(), &changes).await;
    let (announced, applied_before) = p.announced.lock().unwrap().clone().unwrap();
    assert_eq!(announced, vec![id("a"), id("b"), id("x")]);
    assert_eq!(applied_before, 0, "announced before the first change");
    assert_eq!(p.ended.load(Ordering::SeqCst), 1);
    assert_eq!(report.counts(), (3, 0, 0));
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].kind(), ErrorKind::Permission);
    assert!(!report.succeeded(), "a failed clean-up fails the run");
}
