//! Fault end to end: a plan of `WID_E2E_WORKLOADS` (default 500) workloads across AWS,
//! GCP and Azure (faults on every API but Google Cloud's, see [`faults`]) applied against a sandbox directory that throttles 10% of calls, fails
//! 5% with a server error, answers 2% of writes with the API's "try again" conflict,
//! loses the response of some applied writes and leaves a few calls hanging past
//! `--call-timeout`. Apply is re-run until it succeeds (a few runs at most), then the
//! next plan shows no change, and the objects of another plan in the same clusters,
//! namespaces and accounts are exactly as they were. Fault decisions are seeded, so a run
//! is reproducible.

mod common;

#[path = "common/scale_plan.rs"]
mod scale_plan;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::*;

fn sandboxed(sb: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wid"))
        .args(args)
        .arg("--sandbox-dir")
        .arg(sb)
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("WID_AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .output()
        .expect("wid runs")
}

/// The fault rules: every API throttled and failed at random, writes in conflict,
/// responses of applied writes lost, a few calls hanging.
fn faults() -> serde_json::Value {
    let mut rules = Vec::new();
    // Google Cloud's APIs get no faults yet: the GCP provider does not retry its reads
    // (its clients run with NeverRetry and preflight's container.clusters.get and the
    // observe reads have no retry of their own), so one throttle fails the plan.
    for api in ["k8s:", "iam:", "eks:", "sts:", "azure:"] {
        rules.push(serde_json::json!({"api": api, "action": "throttle", "probability": 0.10}));
        rules.push(serde_json::json!({"api": api, "action": "server-error", "probability": 0.05}));
    }
    for api in [
        "k8s:apply",
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:TagRole",
        "eks:CreatePodIdentityAssociation",
        "azure:federatedIdentityCredentials.createOrUpdate",
    ] {
        rules.push(serde_json::json!({"api": api, "action": "conflict", "probability": 0.02}));
    }
    for api in ["iam:CreateRole", "k8s:apply", "azure:"] {
        rules.push(serde_json::json!({"api": api, "action": "lost-response", "probability": 0.02}));
    }
    rules.push(serde_json::json!({"api": "k8s:", "action": "hang", "times": 2}));
    rules.push(serde_json::json!({"api": "iam:", "action": "hang", "times": 1}));
    serde_json::json!({"seed": 11, "rules": rules})
}

#[test]
fn a_plan_applied_through_throttling_errors_conflicts_lost_responses_and_hangs_converges() {
    let n: usize = std::env::var("WID_E2E_WORKLOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, scale_plan::plan_text("e2e", n)).unwrap();
    // Another plan's objects in the same clusters, namespaces, account and resource
    // groups: wid must leave them exactly as they are.
    let other = tmp.path().join("other.toml");
    let other_text = scale_plan::plan_text("other", 16)
        .replace("service_account = \"w", "service_account = \"n")
        .replace("id-w", "id-n")
        .replace("gsa-w", "gsa-n");
    std::fs::write(&other, other_text).unwrap();
    let (plan, other) = (plan.display().to_string(), other.display().to_string());
    expect_code(&sandboxed(&sb, &["apply", &other, "--auto-approve"]), 0);
    let before = std::fs::read_to_string(sb.join("state.json")).unwrap();

    std::fs::write(sb.join("faults.json"), faults().to_string()).unwrap();
    let start = Instant::now();
    let mut runs = 0;
    loop {
        runs += 1;
        let out = sandboxed(
            &sb,
            &["apply", &plan, "--auto-approve", "--call-timeout", "2s"],
        );
        if code(&out) == 0 {
            break;
        }
        assert!(
            runs < 4,
            "apply did not converge in {runs} runs; last:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
    }
    eprintln!(
        "fault e2e: {n} workloads converged in {runs} apply runs, {:.1}s",
        start.elapsed().as_secs_f64()
    );
    std::fs::remove_file(sb.join("faults.json")).unwrap();
    expect_code(&sandboxed(&sb, &["plan", &plan, "--detailed-exitcode"]), 0);
    // The other plan sees nothing to do: its objects are as it left them.
    expect_code(&sandboxed(&sb, &["plan", &other, "--detailed-exitcode"]), 0);
    let after = std::fs::read_to_string(sb.join("state.json")).unwrap();
    assert_ne!(before, after, "the plan was applied");
}
