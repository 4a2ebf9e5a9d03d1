//! Apply benchmark on the embedded sandbox with injected API latency.
//!
//! Prints ratios, not timings to compare across machines:
//! - API calls of the plan step against the lower bound (one namespace LIST per cluster
//!   and one LIST per namespace and kind that holds wanted objects);
//! - API calls of apply against the lower bound (one write per change);
//! - wall time of the concurrent apply against a sequential one (concurrency 1).
//!
//! Run: `cargo bench --bench apply` (WID_BENCH_KSAS sets the number of KSAs per
//! namespace, default 10; WID_BENCH_LATENCY_MS the latency per call, default 5).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wid::engine::{Outcome, Progress, Providers, RetryPolicy, Step, execute};
use wid::session::{Session, Target};
use wid_core::{
    Change, ChangeKind, Observed, Outputs, Owner, Provider, ProviderError, Resource, ResourceId,
};
use wid_sandbox::{Fault, FaultAction};

const CLUSTERS: usize = 3;
const NAMESPACES: usize = 4;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_plan(dir: &std::path::Path, ksas: usize) {
    let mut text = String::from("version = 1\nname = \"bench\"\n");
    for c in 0..CLUSTERS {
        text.push_str(&format!("[clusters.c{c}]\nkind = \"generic\"\ncreate_namespaces = true\nharden_default_service_accounts = true\n"));
    }
    for c in 0..CLUSTERS {
        for n in 0..NAMESPACES {
            for k in 0..ksas {
                text.push_str(&format!(
                    "[[workload]]\ncluster = \"c{c}\"\nnamespace = \"ns{n}\"\nservice_account = \"sa{k}\"\nlabels = {{ team = \"t{n}\" }}\n"
                ));
                if k % 2 == 0 {
                    text.push_str("kubernetes.rules = [{ apiGroups = [\"\"], resources = [\"configmaps\"], verbs = [\"get\"] }]\n");
                }
            }
        }
    }
    std::fs::write(dir.join("plan.toml"), text).expect("write bench plan");
}

struct Quiet;

impl Progress for Quiet {
    fn started(&self, _: &Change) {}
    fn retrying(&self, _: &ResourceId, _: u32, _: &ProviderError, _: Duration) {}
    fn finished(&self, _: &Step, _: usize, _: usize) {}
}

/// The same provider with concurrency 1: the sequential baseline.
struct Sequential(Arc<dyn Provider>);

#[async_trait]
impl Provider for Sequential {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn concurrency(&self) -> usize {
        1
    }
    async fn observe(
        &self,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        self.0.observe(wanted, owner).await
    }
    async fn apply(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError> {
        self.0.apply(change, owner).await
    }
}

struct Run {
    plan_calls: u64,
    apply_calls: u64,
    changes: usize,
    lower_plan: usize,
    elapsed: Duration,
}

async fn run(ksas: usize, latency: u64, sequential: bool) -> Run {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_plan(tmp.path(), ksas);
    let plan = wid::plan::load(&tmp.path().join("plan.toml")).expect("bench plan is valid");
    let target = Target {
        sandbox: Some(tmp.path().join("sb")),
        aws_endpoint: None,
    };
    let session = Session::open(plan, &target).await.expect("open session");
    session.sandbox().expect("sandbox").inject(Fault {
        api: "k8s:".into(),
        action: FaultAction::Latency { ms: latency },
        times: None,
    });
    let planned = session.plan(false).await.expect("plan");
    let plan_calls = session.counter.total();
    let namespaces_with_objects = CLUSTERS * NAMESPACES;
    // One namespace LIST per cluster, then per namespace one LIST of each kind it holds
    // (serviceaccounts, roles, rolebindings) — nothing exists yet, but wid cannot know.
    let lower_plan = CLUSTERS + namespaces_with_objects * 3;
    let mut providers = Providers::default();
    if sequential {
        providers.add(Arc::new(Sequential(session.kubernetes.clone())));
    } else {
        providers = session.providers.clone();
    }
    let start = Instant::now();
    let report = execute(
        &providers,
        &planned.changes,
        &session.owner(false),
        &RetryPolicy::default(),
        &Quiet,
    )
    .await;
    let elapsed = start.elapsed();
    assert!(
        report
            .steps
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Done { .. })),
        "bench apply failed"
    );
    let changes = planned
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .count();
    Run {
        plan_calls,
        apply_calls: session.counter.total() - plan_calls,
        changes,
        lower_plan,
        elapsed,
    }
}

fn main() {
    let ksas = env("WID_BENCH_KSAS", 10);
    let latency = env("WID_BENCH_LATENCY_MS", 5) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let concurrent = rt.block_on(run(ksas, latency, false));
    let sequential = rt.block_on(run(ksas, latency, true));
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    println!(
        "apply benchmark: {CLUSTERS} clusters x {NAMESPACES} namespaces x {ksas} KSAs ({} changes), {latency} ms per API call",
        concurrent.changes
    );
    println!(
        "  plan:  {} API calls, lower bound {} -> ratio {:.2}",
        concurrent.plan_calls,
        concurrent.lower_plan,
        ratio(concurrent.plan_calls as f64, concurrent.lower_plan as f64)
    );
    println!(
        "  apply: {} API calls for {} changes, lower bound {} -> ratio {:.2}",
        concurrent.apply_calls,
        concurrent.changes,
        concurrent.changes,
        ratio(concurrent.apply_calls as f64, concurrent.changes as f64)
    );
    println!(
        "  wall:  concurrent {:.2}s vs sequential {:.2}s -> speed-up {:.1}x",
        concurrent.elapsed.as_secs_f64(),
        sequential.elapsed.as_secs_f64(),
        ratio(
            sequential.elapsed.as_secs_f64(),
            concurrent.elapsed.as_secs_f64()
        )
    );
}
