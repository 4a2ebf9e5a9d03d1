//! Apply benchmark on the embedded sandbox with injected API latency.
//!
//! Prints ratios, not timings to compare across machines:
//! - API calls of the plan step against the lower bound (one namespace LIST per cluster
//!   and one LIST per namespace and kind that holds wanted objects);
//! - API calls of apply against the lower bound (one write per change and per policy of a
//!   new role, plus the one record write that says such a multi-call create finished);
//! - wall time of the concurrent apply against a sequential one (concurrency 1).
//!
//! Two scenarios: Kubernetes only (KSAs, Roles, RoleBindings, namespaces, default-SA
//! hardening on generic clusters) and EKS IRSA (an IAM role with a managed policy per KSA,
//! one OIDC provider per cluster).
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Kubernetes,
    Eks,
}

fn plan_text(scenario: Scenario, ksas: usize) -> String {
    let mut text = String::from("version = 1\nname = \"bench\"\n");
    for c in 0..CLUSTERS {
        match scenario {
            Scenario::Kubernetes => text.push_str(&format!(
                "[clusters.c{c}]\nkind = \"generic\"\ncreate_namespaces = true\nharden_default_service_accounts = true\n"
            )),
            Scenario::Eks => text.push_str(&format!(
                "[clusters.c{c}]\nkind = \"eks\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\nname = \"c{c}\"\ncreate_namespaces = true\n"
            )),
        }
    }
    for c in 0..CLUSTERS {
        for n in 0..NAMESPACES {
            for k in 0..ksas {
                text.push_str(&format!(
                    "[[workload]]\ncluster = \"c{c}\"\nnamespace = \"ns{n}\"\nservice_account = \"sa{k}\"\nlabels = {{ team = \"t{n}\" }}\n"
                ));
                match scenario {
                    Scenario::Kubernetes if k % 2 == 0 => text.push_str(
                        "kubernetes.rules = [{ apiGroups = [\"\"], resources = [\"configmaps\"], verbs = [\"get\"] }]\n",
                    ),
                    Scenario::Kubernetes => {}
                    Scenario::Eks => text.push_str(&format!(
                        "aws.role = \"c{c}-ns{n}-sa{k}\"\naws.managed_policies = [\"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\"]\n"
                    )),
                }
            }
        }
    }
    text
}

/// The fewest calls any tool needs to observe `desired` when none of it exists yet:
/// Kubernetes, one namespace LIST per cluster and one LIST per namespace and kind; AWS,
/// one DescribeCluster per EKS cluster, one OIDC provider listing per account and one
/// GetRole per role.
fn observe_lower_bound(desired: &[std::sync::Arc<Resource>]) -> usize {
    let mut lists = std::collections::BTreeSet::new();
    for r in desired {
        let id = &r.id;
        match (id.provider(), id.kind()) {
            ("k8s", "namespace") => {}
            ("k8s", kind) => {
                let kind = if kind == "default-serviceaccount" {
                    "serviceaccount"
                } else {
                    kind
                };
                lists.insert(format!("k8s ns {}", id.part(0)));
                lists.insert(format!("k8s {kind} {}/{}", id.part(0), id.part(1)));
            }
            ("aws", "iam-role") => {
                lists.insert(format!("aws oidc list {}", id.part(0)));
                lists.insert(format!("aws role {id}"));
            }
            ("aws", "iam-oidc-provider") => {
                lists.insert(format!("aws oidc list {}", id.part(0)));
                lists.insert(format!("eks describe {}", id.key()[1..].join("/")));
            }
            _ => {}
        }
    }
    lists.len()
}

/// The fewest calls a change needs from a tool whose records never call a half-made
/// object complete: `(writes, seals)`. Writes: one per object, plus one per managed and
/// inline policy of a new role (IAM attaches them one call at a time). Seals: one record
/// write per new role with policies, after the last of them (its create call can only say
/// "incomplete"; a tool that records nothing would not need it).
fn apply_lower_bound(changes: &[Change]) -> (usize, usize) {
    let writes = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .map(|c| {
            let count = |key: &str| {
                c.desired_attr(key).map_or(0, |v| {
                    v.as_array()
                        .map(Vec::len)
                        .or_else(|| v.as_object().map(|o| o.len()))
                        .unwrap_or(0)
                })
            };
            match (c.id.kind(), c.kind) {
                ("iam-role", ChangeKind::Create) => {
                    1 + count("managed_policies") + count("inline_policies")
                }
                _ => 1,
            }
        })
        .sum();
    let seals = changes
        .iter()
        .filter(|c| (c.id.kind(), c.kind) == ("iam-role", ChangeKind::Create))
        .filter(|c| {
            ["managed_policies", "inline_policies"].iter().any(|key| {
                c.desired_attr(key).is_some_and(|v| {
                    v.as_array().is_some_and(|a| !a.is_empty())
                        || v.as_object().is_some_and(|o| !o.is_empty())
                })
            })
        })
        .count();
    (writes, seals)
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
    lower_apply: (usize, usize),
    elapsed: Duration,
}

async fn run(scenario: Scenario, ksas: usize, latency: u64, sequential: bool) -> Run {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("plan.toml"), plan_text(scenario, ksas))
        .expect("write bench plan");
    let plan = wid::plan::load(&tmp.path().join("plan.toml")).expect("bench plan is valid");
    let target = Target {
        sandbox: Some(tmp.path().join("sb")),
        aws_endpoint: None,
        ..Target::default()
    };
    let session = Session::open(plan, &target).await.expect("open session");
    for api in ["k8s:", "iam:", "eks:", "sts:"] {
        session.sandbox().expect("sandbox").inject(Fault {
            api: api.into(),
            action: FaultAction::Latency { ms: latency },
            times: None,
        });
    }
    let planned = session
        .plan(wid::session::PlanMode::Apply { prune: false })
        .await
        .expect("plan");
    let plan_calls = session.counter.total();
    let lower_plan = observe_lower_bound(&planned.desired.resources);
    let lower_apply = apply_lower_bound(&planned.changes);
    let mut providers = session.providers.clone();
    if sequential {
        let mut one_at_a_time = Providers::default();
        for name in ["k8s", "aws"] {
            if let Some(p) = providers.get(name) {
                one_at_a_time.add(Arc::new(Sequential(p.clone())));
            }
        }
        providers = one_at_a_time;
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
        lower_apply,
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
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    for (scenario, label) in [
        (Scenario::Kubernetes, "kubernetes"),
        (Scenario::Eks, "eks irsa"),
    ] {
        let concurrent = rt.block_on(run(scenario, ksas, latency, false));
        let sequential = rt.block_on(run(scenario, ksas, latency, true));
        println!(
            "{label}: {CLUSTERS} clusters x {NAMESPACES} namespaces x {ksas} KSAs ({} changes), {latency} ms per API call",
            concurrent.changes
        );
        println!(
            "  plan:  {} API calls, lower bound {} -> ratio {:.2}",
            concurrent.plan_calls,
            concurrent.lower_plan,
            ratio(concurrent.plan_calls as f64, concurrent.lower_plan as f64)
        );
        let (writes, seals) = concurrent.lower_apply;
        println!(
            "  apply: {} API calls, lower bound {} ({writes} writes + {seals} record seals) -> ratio {:.2}",
            concurrent.apply_calls,
            writes + seals,
            ratio(concurrent.apply_calls as f64, (writes + seals) as f64)
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
}
