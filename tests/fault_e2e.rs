//! Fault end to end: a plan of `WID_E2E_WORKLOADS` (default 500) workloads across AWS,
//! GCP and Azure applied against a sandbox that throttles 10% of calls, fails
//! 5% with a server error, answers 2% of writes with the API's "try again" conflict,
//! loses the response of some applied writes and leaves a few calls hanging past
//! `--call-timeout`. The sandbox is served by its own process (as a cloud outlives wid),
//! the first apply is killed (SIGKILL) at a seeded random moment, and apply is re-run
//! until it succeeds (a few runs at most); then the next plan shows no change, and the
//! whole sandbox state, compared before and after, shows that nothing of another plan in
//! the same clusters, namespaces, accounts, projects and resource groups changed: every
//! difference is an addition, a counter, or a member wid added to a shared IAM policy
//! with every earlier member kept. Fault decisions are seeded, so a run is reproducible.

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
    for api in ["k8s:", "iam:", "eks:", "sts:", "azure:", "gcp:"] {
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
        "gcp:crm.projects.setIamPolicy",
        "gcp:iam.serviceAccounts.setIamPolicy",
    ] {
        rules.push(serde_json::json!({"api": api, "action": "conflict", "probability": 0.02}));
    }
    for api in [
        "iam:CreateRole",
        "k8s:apply",
        "azure:",
        "gcp:iam.serviceAccounts.create",
    ] {
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
    let mut serve = Serve::start(&sb);
    let start = Instant::now();
    // The first apply dies at a random moment (seeded: 1.5 to 4.5 s in).
    let mut child = Command::new(env!("CARGO_BIN_EXE_wid"))
        .args([
            "apply",
            &plan,
            "--auto-approve",
            "--call-timeout",
            "2s",
            "--sandbox-dir",
        ])
        .arg(&sb)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wid runs");
    let kill_after = std::time::Duration::from_millis(1500 + (n as u64 * 7919 + 11) % 3000);
    std::thread::sleep(kill_after);
    let killed = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    let mut runs = 1;
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
            runs < 6,
            "apply did not converge in {runs} runs; last:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
    }
    serve.stop();
    eprintln!(
        "fault e2e: the first apply was {} after {:?}",
        if killed { "killed" } else { "already done" },
        kill_after
    );
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
    let b: serde_json::Value = serde_json::from_str(&before).unwrap();
    let a: serde_json::Value = serde_json::from_str(&after).unwrap();
    let mut unexplained = Vec::new();
    for c in wid_sandbox::json_diff(&b, &a) {
        let counter = c.path.ends_with("/resource_version")
            || c.path.starts_with("/azure/fic_stats/")
            || c.path.ends_with("/policy/etag");
        let policy = c.path.contains("/policy/bindings");
        if c.before.is_none() || counter || policy {
            continue;
        }
        unexplained.push(c.path);
    }
    assert!(
        unexplained.is_empty(),
        "the apply changed or removed what it did not add: {unexplained:#?}"
    );
    // Shared IAM policies: every member bound before is still bound, to the same role.
    let mut policies = Vec::new();
    collect_policies(&b, "", &mut policies);
    assert!(!policies.is_empty(), "the plans share no IAM policy");
    for path in policies {
        let after = a.pointer(&path).expect("the policy is still there");
        for (role, member) in members(b.pointer(&path).unwrap()) {
            assert!(
                members(after).contains(&(role.clone(), member.clone())),
                "{member} lost {role} on {path}"
            );
        }
    }
}

/// The JSON pointers of every IAM policy (an object with `bindings`) in a sandbox state.
fn collect_policies(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    if let Some(map) = v.as_object() {
        if map.contains_key("bindings") {
            out.push(path.to_owned());
            return;
        }
        for (k, child) in map {
            let escaped = k.replace('~', "~0").replace('/', "~1");
            collect_policies(child, &format!("{path}/{escaped}"), out);
        }
    }
}

/// (role, member) pairs of a policy.
fn members(policy: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in policy["bindings"].as_array().into_iter().flatten() {
        let role = b["role"].as_str().unwrap_or_default();
        for m in b["members"].as_array().into_iter().flatten() {
            out.push((role.to_owned(), m.as_str().unwrap_or_default().to_owned()));
        }
    }
    out
}
