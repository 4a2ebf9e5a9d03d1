//! Scale benchmark: parse + validate + compile + diff of generated plans.
//!
//! Run: `cargo bench --bench scale`.

#[path = "../tests/common/scale_plan.rs"]
mod scale_plan;

use std::time::Instant;

use wid_core::{Observed, ObservedResource, Ownership};

/// CPU time of this thread, from /proc/thread-self/schedstat (nanoseconds on CPU).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
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
    let desired = wid::model::compile(&plan, &wid::model::offline(&plan)).expect("compiles");
    let t_compile = thread_cpu_ns();
    let creates = wid_core::diff(&desired.resources, &Observed::default(), false);
    let mut live = Observed::default();
    for r in &desired.resources {
        let mut o = ObservedResource::new(r.id.clone(), Ownership::Ours);
        for (k, v) in &r.attrs {
            if let Some(v) = v.known().filter(|v| !v.is_null()) {
                o.attrs.insert(k.clone(), v.clone());
            }
        }
        live.insert(o);
    }
    let t_live = thread_cpu_ns();
    let noops = wid_core::diff(&desired.resources, &live, false);
    let t_diff = thread_cpu_ns();
    let ms = |a: u64, b: u64| (b - a) as f64 / 1e6;
    println!(
        "parse-to-diff {n}: {} resources, {} creates, {} no-ops; cpu load {:.1} ms, compile {:.1} ms, diff {:.1} ms (+ {:.1} ms no-op diff), total {:.1} ms; wall {:.1} ms; peak {} KiB (before {before} KiB)",
        desired.resources.len(),
        creates.len(),
        noops.len(),
        ms(cpu, t_load),
        ms(t_load, t_compile),
        ms(
            t_compile,
            t_live - (t_live - t_compile) + (t_live - t_compile).min(0)
        ),
        ms(t_live, t_diff),
        ms(cpu, t_live),
        wall.elapsed().as_secs_f64() * 1e3,
        peak_kib(),
    );
}

fn main() {
    let sizes = std::env::var("WID_BENCH_PARSE_SIZES").unwrap_or_else(|_| "10000".into());
    for n in sizes.split(',').filter_map(|s| s.trim().parse().ok()) {
        parse_to_diff(n);
    }
}
