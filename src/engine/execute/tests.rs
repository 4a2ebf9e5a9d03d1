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
        let value = change.desired_attr("v").cloned();
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
        desired: Some(r),
        observed: None,
        attrs: Vec::new(),
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
        observed: Some(o),
        attrs: Vec::new(),
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
            c.desired.as_mut().unwrap().serialize_key = Some("identity-1".into());
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
                observed: Some(live),
                attrs: Vec::new(),
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
    b.desired.as_mut().unwrap().attrs.insert(
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
    a.desired
        .as_mut()
        .unwrap()
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
