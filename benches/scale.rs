//! Scale benchmark on generated plans across AWS (IRSA and Pod Identity), GCP and Azure.
//!
//! Per size (`WID_BENCH_SIZES`, default `100,1000,5000` workloads), against the
//! in-process sandbox with `WID_BENCH_LATENCY_MS` (default 20) of latency on every call:
//! the plan's and the apply's API calls against the lower bound (see
//! `benches/RESULTS.md`), wall time against the ideal (calls x latency / concurrency per
//! provider, providers in parallel) and against a sequential run (computed: calls x
//! latency), the no-op plan after the apply, and peak memory. Then the CPU time and peak
//! memory of parse + validate + compile + diff alone (`WID_BENCH_PARSE_SIZES`, default
//! `10000,100000`), each in a child process so that its peak is its own.
//!
//! The plan is timed `WID_BENCH_PLAN_RUNS` times (default 5), each with a session opened
//! afresh (new clients, new connections, nothing read ahead or cached), against the same
//! empty world; its wall is the median, with the range beside it. One run of 120 ms on a
//! shared 2-core machine moves by 10-40 ms between runs, which one sample cannot tell
//! from a change in wid.
//!
//! Run: `cargo bench --bench scale`; quick: `WID_BENCH_SIZES=100 WID_BENCH_PARSE_SIZES=1000
//! cargo bench --bench scale`.

#[path = "../tests/common/scale_plan.rs"]
mod scale_plan;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wid::engine::{Outcome, Progress, RetryPolicy, Step, execute};
use wid::session::{PlanMode, Session, Target};
use wid_core::{
    Change, ChangeKind, Observed, ObservedResource, Ownership, ProviderError, Resource, ResourceId,
};
use wid_sandbox::{Fault, FaultAction};

/// The allocator the `wid` binary uses (src/main.rs), so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The API prefixes the sandbox counts, with the provider that calls them.
const APIS: [(&str, &str); 6] = [
    ("k8s:", "k8s"),
    ("iam:", "aws"),
    ("eks:", "aws"),
    ("sts:", "aws"),
    ("gcp:", "gcp"),
    ("azure:", "azure"),
];

/// CPU time of this thread, from /proc/thread-self/schedstat (nanoseconds on CPU).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Resident memory of this process now (VmRSS), in KiB.
fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn parse_to_diff(n: usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("plan.toml");
    std::fs::write(&path, scale_plan::plan_text("bench", n)).expect("write plan");
    let before = peak_kib();
    let cpu = thread_cpu_ns();
    let wall = Instant::now();
    let plan = wid::plan::load(&path).unwrap_or_else(|d| panic!("generated plan is invalid:\n{d}"));
    let t_load = thread_cpu_ns();
    let rss_load = rss_kib();
    let desired = wid::model::compile(&plan, &wid::model::offline(&plan)).expect("compiles");
    let t_compile = thread_cpu_ns();
    let rss_compile = rss_kib();
    let creates = wid_core::diff(&desired.resources, &Observed::default(), false);
    let t_creates = thread_cpu_ns();
    let rss_diff = rss_kib();
    let peak_diff = peak_kib();
    let mut live = Observed::default();
    for r in &desired.resources {
        let mut o = ObservedResource::new(r.id.clone(), Ownership::Ours);
        for (k, v) in &r.attrs {
            if let Some(v) = v.known().filter(|v| !v.is_null()) {
                o.attrs.insert(k.clone(), v.into_owned());
            }
        }
        live.insert(o);
    }
    let t_live = thread_cpu_ns();
    let noops = wid_core::diff(&desired.resources, &live, false);
    let t_diff = thread_cpu_ns();
    let wall = wall.elapsed();
    let noops = noops.iter().filter(|c| c.kind == ChangeKind::NoOp).count();
    let ms = |a: u64, b: u64| (b - a) as f64 / 1e6;
    println!(
        "parse-to-diff {n} workloads: {} resources, {} creates; CPU: load (parse + validate) {:.1} ms, compile {:.1} ms, diff {:.1} ms, total {:.1} ms (then a diff against all of it live: {} no-ops, {:.1} ms); wall {:.1} ms; peak memory {:.1} MiB through the diff, {:.1} MiB with the live copy ({:.1} MiB before the plan was read; resident after load {} MiB, after compile {} MiB, after diff {} MiB)",
        desired.resources.len(),
        creates.len(),
        ms(cpu, t_load),
        ms(t_load, t_compile),
        ms(t_compile, t_creates),
        ms(cpu, t_creates),
        noops,
        ms(t_live, t_diff),
        wall.as_secs_f64() * 1e3,
        peak_diff as f64 / 1024.0,
        peak_kib() as f64 / 1024.0,
        before as f64 / 1024.0,
        rss_load / 1024,
        rss_compile / 1024,
        rss_diff / 1024,
    );
}

struct Quiet;

impl Progress for Quiet {
    fn started(&self, _: &Change) {}
    fn retrying(&self, _: &ResourceId, _: u32, _: &ProviderError, _: Duration) {}
    fn finished(&self, _: &Step, _: usize, _: usize) {}
}

/// The fewest reads that observe `desired` in an empty world: per Kubernetes cluster one
/// namespace LIST, per namespace and kind one LIST; per AWS account one OIDC provider
/// listing, per EKS cluster one DescribeCluster, per role one read (the bulk read needs
/// fewer once roles exist; none do yet); per GCP and Azure object one read.
fn observe_lower_bound(desired: &[std::sync::Arc<Resource>]) -> BTreeMap<&'static str, usize> {
    let mut reads: BTreeMap<&'static str, std::collections::BTreeSet<String>> = BTreeMap::new();
    for r in desired {
        let id = &r.id;
        match (id.provider(), id.kind()) {
            ("k8s", "namespace") => {}
            ("k8s", kind) => {
                let kind = kind.trim_start_matches("default-");
                let set = reads.entry("k8s").or_default();
                set.insert(format!("ns {}", id.part(0)));
                set.insert(format!("{kind} {}/{}", id.part(0), id.part(1)));
            }
            ("aws", "iam-role") => {
                let set = reads.entry("aws").or_default();
                set.insert(format!("oidc list {}", id.part(0)));
                set.insert(format!("role {id}"));
            }
            ("aws", "iam-oidc-provider") => {
                let set = reads.entry("aws").or_default();
                set.insert(format!("oidc list {}", id.part(0)));
                set.insert(format!("describe {}", id.key()[1..].join("/")));
            }
            ("aws", _) => {
                reads.entry("aws").or_default().insert(id.to_string());
            }
            (provider, _) => {
                let name = if provider == "gcp" { "gcp" } else { "azure" };
                reads.entry(name).or_default().insert(id.to_string());
            }
        }
    }
    reads.into_iter().map(|(k, v)| (k, v.len())).collect()
}

/// The fewest writes that make `changes`: one per change, plus, for an object created with
/// parts that are separate API resources, one call per part and one record write (the
/// create can only record "incomplete", so a failure between the parts never reads as
/// drift):
/// - an IAM role: one call per managed and inline policy (IAM attaches them one at a
///   time);
/// - an Azure managed identity: one PUT per role assignment (each is its own ARM
///   resource, made against the principal the identity's create returns), and the tag
///   write.
///
/// And for GCP, the record writes: a binding in an IAM policy carries no mark, so wid
/// records each binding it adds or drops as an entry of the plan's record, in the
/// descriptions of record service accounts that hold 28 entries each
/// (`wid_gcp::record::ENTRIES_PER_RECORD`). A run that adds `a` entries writes at least
/// `ceil(a / 28)` record accounts (creates, or updates of accounts with room), and one
/// that drops `d` entries at least `ceil(d / 28)` (the fewest accounts that can hold
/// them; the bench cannot see which accounts hold them, so this is the least it can
/// claim). `a` counts the lines of the policy changes that the plan wants and observe did
/// not find as wid's (desired keys not among the observed ones), `d` the lines observe
/// found as wid's that the plan no longer wants.
fn apply_lower_bound(changes: &[Change]) -> BTreeMap<&'static str, usize> {
    let mut out: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut added, mut dropped) = (0, 0);
    for c in changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp && c.id.provider() == "gcp")
        .filter(|c| c.id.kind() == "iam-policy")
    {
        let keys = |attrs: Option<Vec<&String>>| -> std::collections::BTreeSet<String> {
            attrs.unwrap_or_default().into_iter().cloned().collect()
        };
        let wanted = match c.kind {
            ChangeKind::Delete => keys(None),
            _ => keys(c.desired.as_ref().map(|d| d.attrs.keys().collect())),
        };
        let have = keys(c.observed.as_ref().map(|o| o.attrs.keys().collect()));
        added += wanted.difference(&have).count();
        dropped += have.difference(&wanted).count();
    }
    let per = wid_gcp::record::ENTRIES_PER_RECORD;
    let records = added.div_ceil(per) + dropped.div_ceil(per);
    if records > 0 {
        *out.entry("gcp").or_default() += records;
    }
    for c in changes.iter().filter(|c| c.kind != ChangeKind::NoOp) {
        let count = |key: &str| {
            c.desired_attr(key).map_or(0, |v| {
                v.as_array()
                    .map(Vec::len)
                    .or_else(|| v.as_object().map(|o| o.len()))
                    .unwrap_or(0)
            })
        };
        let n = match (c.id.kind(), c.kind) {
            ("iam-role", ChangeKind::Create) => {
                let policies = count("managed_policies") + count("inline_policies");
                1 + policies + usize::from(policies > 0)
            }
            ("managed-identity", ChangeKind::Create) => {
                let assignments = count("role_assignments");
                1 + assignments + usize::from(assignments > 0)
            }
            _ => 1,
        };
        let provider = match c.id.provider() {
            "k8s" => "k8s",
            "aws" => "aws",
            "gcp" => "gcp",
            _ => "azure",
        };
        *out.entry(provider).or_default() += n;
    }
    out
}

/// Calls per provider since `before`, from the sandbox's own counters.
fn calls_by_provider(
    now: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for (api, n) in now {
        let n = n - before.get(api).copied().unwrap_or(0);
        if let Some((_, provider)) = APIS.iter().find(|(p, _)| api.starts_with(p)) {
            *out.entry(*provider).or_default() += n;
        }
    }
    out
}

/// The ideal wall time: each provider's calls x latency / its concurrency, providers in
/// parallel (the slowest decides).
fn ideal(calls: &BTreeMap<&'static str, u64>, session: &Session, latency: u64) -> Duration {
    calls
        .iter()
        .map(|(p, n)| {
            let c = session
                .providers
                .get(p)
                .map_or(1, |p| p.concurrency())
                .max(1) as u64;
            Duration::from_millis(n * latency / c)
        })
        .max()
        .unwrap_or_default()
}

/// Calls per API since `before`, as `api n` pairs.
fn per_api(now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> String {
    now.iter()
        .filter_map(|(api, n)| {
            let n = n - before.get(api).copied().unwrap_or(0);
            (n > 0).then(|| format!("{api} {n}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn total<V: Copy + Into<u64>>(m: &BTreeMap<&'static str, V>) -> u64 {
    m.values().map(|v| (*v).into()).sum()
}

fn fmt_map<V: std::fmt::Display>(m: &BTreeMap<&'static str, V>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn plan_and_apply(n: usize, latency: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("plan.toml");
    std::fs::write(&path, scale_plan::plan_text("bench", n)).expect("write plan");
    let plan = wid::plan::load(&path).unwrap_or_else(|d| panic!("generated plan is invalid:\n{d}"));
    let target = Target {
        sandbox: Some(tmp.path().join("sb")),
        aws_endpoint: None,
        ..Target::default()
    };
    let runs = plan_runs();
    let mut walls = Vec::new();
    let mut last = None;
    let mut first_calls = None;
    for run in 0..runs {
        // Each run's session is new: its clients connect and build afresh, as a new
        // `wid plan` process's would. The last one's is kept for the apply; the others
        // are dropped first, which stops their in-process sandbox and frees its
        // directory.
        drop(last.take());
        let session = Session::open(plan.clone(), &target)
            .await
            .expect("open session");
        let sandbox = session.sandbox().expect("sandbox");
        for (api, _) in APIS {
            sandbox.inject(Fault {
                api: api.into(),
                action: FaultAction::Latency { ms: latency },
                times: None,
            });
        }
        let before = sandbox.calls();
        let start = Instant::now();
        let planned = session
            .plan(PlanMode::Apply { prune: false })
            .await
            .expect("plan");
        walls.push(start.elapsed());
        let after_plan = sandbox.calls();
        let calls = calls_by_provider(&after_plan, &before);
        match &first_calls {
            None => first_calls = Some(calls.clone()),
            Some(first) => assert_eq!(&calls, first, "plan run {run} made other calls"),
        }
        last = Some((session, planned, calls, before, after_plan));
    }
    let (session, planned, plan_calls, before, after_plan) = last.expect("at least one plan run");
    let sandbox = session.sandbox().expect("sandbox");
    walls.sort();
    let plan_wall = walls[walls.len() / 2];
    let plan_range = format!(
        "median of {} runs, {:.0}-{:.0} ms",
        walls.len(),
        walls[0].as_secs_f64() * 1e3,
        walls[walls.len() - 1].as_secs_f64() * 1e3
    );
    let plan_lower = observe_lower_bound(&planned.desired.resources);
    let apply_lower = apply_lower_bound(&planned.changes);
    let changes = planned
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .count();
    let start = Instant::now();
    let report = execute(
        &session.providers,
        &planned.changes,
        &session.owner(false),
        &RetryPolicy::default(),
        &Quiet,
    )
    .await;
    let apply_wall = start.elapsed();
    let failed: Vec<String> = report
        .steps
        .iter()
        .filter(|s| !matches!(s.outcome, Outcome::Done { .. }))
        .map(|s| format!("{:?}", s.outcome))
        .take(3)
        .collect();
    assert!(failed.is_empty(), "bench apply failed: {failed:?}");
    let after_apply = sandbox.calls();
    let apply_calls = calls_by_provider(&after_apply, &after_plan);
    let start = Instant::now();
    let noop = session
        .plan(PlanMode::Apply { prune: false })
        .await
        .expect("no-op plan");
    let noop_wall = start.elapsed();
    let noop_calls = calls_by_provider(&sandbox.calls(), &after_apply);
    let left = noop
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .count();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let concurrency: BTreeMap<&'static str, usize> = plan_calls
        .keys()
        .map(|p| (*p, session.providers.get(p).map_or(1, |p| p.concurrency())))
        .collect();
    println!(
        "{n} workloads ({} resources, {changes} changes), {latency} ms per call, concurrency: {}",
        planned.desired.resources.len(),
        fmt_map(&concurrency)
    );
    for (step, calls, lower, wall, runs) in [
        ("plan", &plan_calls, plan_lower, plan_wall, plan_range),
        (
            "apply",
            &apply_calls,
            apply_lower,
            apply_wall,
            "one run".to_owned(),
        ),
    ] {
        let ideal = ideal(calls, &session, latency);
        let sequential = Duration::from_millis(total(calls) * latency);
        println!(
            "  {step:5}: calls {} (lower bound {}; {} vs {}), wall {:.3}s ({runs}), ideal {:.2}s -> {:.2}x ideal; sequential (computed) {:.1}s -> speed-up {:.1}x",
            total(calls),
            total(&lower.iter().map(|(k, v)| (*k, *v as u64)).collect()),
            fmt_map(calls),
            fmt_map(&lower),
            wall.as_secs_f64(),
            ideal.as_secs_f64(),
            ratio(wall, ideal),
            sequential.as_secs_f64(),
            ratio(sequential, wall),
        );
    }
    println!("  plan calls per API: {}", per_api(&after_plan, &before));
    println!(
        "  apply calls per API: {}",
        per_api(&after_apply, &after_plan)
    );
    println!(
        "  no-op plan: {left} changes left, calls {} ({}), wall {:.2}s; peak memory so far {} MiB",
        total(&noop_calls),
        fmt_map(&noop_calls),
        noop_wall.as_secs_f64(),
        peak_kib() / 1024
    );
}

/// How many times the plan is timed per size (`WID_BENCH_PLAN_RUNS`, at least 1).
fn plan_runs() -> usize {
    sizes("WID_BENCH_PLAN_RUNS", "5")
        .first()
        .copied()
        .unwrap_or(5)
        .max(1)
}

fn sizes(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    if let Ok(n) = std::env::var("WID_BENCH_CHILD_PARSE") {
        parse_to_diff(n.parse().expect("a size"));
        return;
    }
    let latency = sizes("WID_BENCH_LATENCY_MS", "20")
        .first()
        .copied()
        .unwrap_or(20) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for n in sizes("WID_BENCH_SIZES", "100,1000,5000") {
        rt.block_on(plan_and_apply(n, latency));
    }
    // Each parse-to-diff run in a fresh process, so its peak memory is its own.
    let exe = std::env::current_exe().expect("the bench's own path");
    for n in sizes("WID_BENCH_PARSE_SIZES", "10000,100000") {
        let status = std::process::Command::new(&exe)
            .env("WID_BENCH_CHILD_PARSE", n.to_string())
            .status()
            .expect("run the parse-to-diff child");
        assert!(status.success(), "parse-to-diff {n} failed");
    }
}
