//! Reviewed plans through the CLI against the sandbox: `wid plan --out` saves a plan,
//! `wid apply PLANFILE` applies exactly it, and refuses, naming what changed and changing
//! nothing, when a plan file, a file it names, or a live object (changed with kubectl or
//! the aws CLI against `wid sandbox serve`) differs from when it was saved. Also the JSON
//! apply report.

mod common;

use std::path::Path;

use common::*;

fn sb_args(sb: &Path) -> [String; 2] {
    ["--sandbox-dir".into(), sb.display().to_string()]
}

/// `wid ARGS --sandbox-dir SB` in `cwd`.
fn run(cwd: &Path, args: &[&str], sb: &Path) -> std::process::Output {
    let [a, b] = sb_args(sb);
    let mut all = args.to_vec();
    all.extend([a.as_str(), b.as_str()]);
    wid(cwd, &all)
}

/// Copies a directory tree (plan files and the policy files they name).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn validate(doc: &serde_json::Value, schema: &str) {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("schema").join(schema)).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn a_saved_plan_applies_exactly_what_was_reviewed() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    // Recognized by its content, whatever its name.
    let saved = tmp.path().join("reviewed");
    let s = saved.display().to_string();
    let plan = run(&root(), &["plan", "examples/quickstart", "--out", &s], &sb);
    expect_code(&plan, 0);
    assert!(
        stderr(&plan).contains("Saved the plan to"),
        "{}",
        stderr(&plan)
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    validate(&doc, "saved-plan.schema.json");
    assert_eq!(doc["kind"], "wid-saved-plan");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["source"]["path"], "examples/quickstart");
    assert_eq!(doc["source"]["files"].as_array().unwrap().len(), 2);
    // The loaded document is the saved one, changes included, exactly.
    let loaded: wid::saved::SavedPlan = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(serde_json::to_value(&loaded).unwrap(), doc);

    let writes = sandbox_writes(&sb);
    assert_eq!(writes, 0, "plan writes nothing");
    // No prompt: the saved plan is what was approved.
    let apply = wid(&root(), &["apply", &s]);
    expect_code(&apply, 0);
    let out = stdout(&apply);
    assert!(out.contains("Saved plan verified:"), "{out}");
    assert!(out.contains("Apply complete: 8 done, 0 failed"), "{out}");
    let again = run(
        &root(),
        &["plan", "examples/quickstart", "--detailed-exitcode"],
        &sb,
    );
    expect_code(&again, 0);

    // A saved plan is used up once applied: the objects it would create exist now.
    let twice = wid(&root(), &["apply", &s]);
    expect_code(&twice, 1);
    let err = stderr(&twice);
    assert!(
        err.contains(
            "k8s/serviceaccount/dev/payments/orders: now exists (it did not when the plan was saved)"
        ),
        "{err}"
    );
}

#[test]
fn a_changed_plan_file_refuses_the_apply_before_any_call() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let dir = tmp.path().join("identities");
    copy_plan(&root().join("examples/quickstart"), &dir);
    let plan = run(
        tmp.path(),
        &["plan", "identities", "--out", "plan.wid"],
        &sb,
    );
    expect_code(&plan, 0);
    let calls = std::fs::read(sb.join("calls.json")).unwrap();
    let workloads = std::fs::read_to_string(dir.join("workloads.toml")).unwrap();
    std::fs::write(
        dir.join("workloads.toml"),
        workloads.replace("team = \"analytics\"", "team = \"data\""),
    )
    .unwrap();
    std::fs::write(dir.join("extra.toml"), "version = 1\n").unwrap();
    let apply = wid(tmp.path(), &["apply", "plan.wid"]);
    expect_code(&apply, 1);
    let err = stderr(&apply);
    assert!(
        err.contains("refusing to apply plan.wid: what it was computed from changed since it was saved; nothing was applied"),
        "{err}"
    );
    assert!(
        err.contains("plan files changed (in identities):\n    extra.toml (new)\n    workloads.toml (changed)\n"),
        "{err}"
    );
    assert!(
        err.contains("hint: run `wid plan identities --out plan.wid` again"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(sb.join("calls.json")).unwrap(),
        calls,
        "no API was called"
    );
    // A removed file is named too.
    std::fs::write(dir.join("workloads.toml"), workloads).unwrap();
    std::fs::remove_file(dir.join("extra.toml")).unwrap();
    std::fs::remove_file(dir.join("clusters.toml")).unwrap();
    let err = stderr(&wid(tmp.path(), &["apply", "plan.wid"]));
    assert!(err.contains("    clusters.toml (removed)\n"), "{err}");
}

#[test]
fn a_changed_policy_file_refuses_the_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let dir = tmp.path().join("eks");
    copy_tree(&root().join("examples/eks"), &dir);
    expect_code(
        &run(tmp.path(), &["plan", "eks", "--out", "plan.wid"], &sb),
        0,
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("plan.wid")).unwrap()).unwrap();
    let files: Vec<(String, String)> = doc["source"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("plan.toml".to_owned(), "plan".to_owned()),
            (
                "policies/orders-s3.json".to_owned(),
                "referenced".to_owned()
            )
        ]
    );
    let policy = dir.join("policies/orders-s3.json");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, text.replace("s3:ListBucket", "s3:*")).unwrap();
    let apply = wid(tmp.path(), &["apply", "plan.wid"]);
    expect_code(&apply, 1);
    assert!(
        stderr(&apply).contains("    policies/orders-s3.json (changed)\n"),
        "{}",
        stderr(&apply)
    );
    assert_eq!(sandbox_writes(&sb), 0);
}

#[test]
fn a_live_change_made_with_kubectl_refuses_the_apply_and_changes_nothing() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let dir = tmp.path().join("identities");
    copy_plan(&root().join("examples/quickstart"), &dir);
    expect_code(
        &run(tmp.path(), &["apply", "identities", "--auto-approve"], &sb),
        0,
    );
    // The reviewed change: a new label value on orders.
    let workloads = std::fs::read_to_string(dir.join("workloads.toml")).unwrap();
    std::fs::write(
        dir.join("workloads.toml"),
        workloads.replace("team = \"payments\"", "team = \"payments-v2\""),
    )
    .unwrap();
    let plan = run(
        tmp.path(),
        &["plan", "identities", "--out", "plan.wid"],
        &sb,
    );
    expect_code(&plan, 0);
    assert!(
        stdout(&plan).contains("labels.team: \"payments\" → \"payments-v2\""),
        "{}",
        stdout(&plan)
    );
    // Meanwhile someone turns token automount on by hand.
    {
        let serve = Serve::start(&sb);
        serve.kubectl(&[
            "--context",
            "dev",
            "-n",
            "payments",
            "patch",
            "sa",
            "orders",
            "-p",
            r#"{"automountServiceAccountToken":true}"#,
        ]);
    }
    let writes = sandbox_writes(&sb);
    let apply = wid(tmp.path(), &["apply", "plan.wid"]);
    expect_code(&apply, 1);
    let err = stderr(&apply);
    assert!(
        err.contains("  live objects changed:\n    k8s/serviceaccount/dev/payments/orders: automountServiceAccountToken false → true\n"),
        "{err}"
    );
    assert!(!err.contains("plan files changed"), "{err}");
    assert_eq!(sandbox_writes(&sb), writes, "nothing was written");
    {
        let serve = Serve::start(&sb);
        let sa: serde_json::Value = serde_json::from_str(&stdout(&serve.kubectl(&[
            "--context",
            "dev",
            "-n",
            "payments",
            "get",
            "sa",
            "orders",
            "-o",
            "json",
        ])))
        .unwrap();
        assert_eq!(sa["metadata"]["labels"]["team"], "payments");
        assert_eq!(sa["automountServiceAccountToken"], true);
    }
    // Planned again, it applies: the label and the drift together.
    expect_code(
        &run(
            tmp.path(),
            &["plan", "identities", "--out", "plan.wid"],
            &sb,
        ),
        0,
    );
    expect_code(&wid(tmp.path(), &["apply", "plan.wid"]), 0);
    expect_code(
        &run(
            tmp.path(),
            &["plan", "identities", "--detailed-exitcode"],
            &sb,
        ),
        0,
    );
}

#[test]
fn a_live_change_made_with_the_aws_cli_refuses_the_apply() {
    if !have("aws") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let dir = tmp.path().join("eks");
    copy_tree(&root().join("examples/eks"), &dir);
    expect_code(
        &run(tmp.path(), &["apply", "eks", "--auto-approve"], &sb),
        0,
    );
    let plan_file = dir.join("plan.toml");
    let text = std::fs::read_to_string(&plan_file).unwrap();
    std::fs::write(
        &plan_file,
        text.replace(
            "aws.tags = { team = \"orders\"",
            "aws.tags = { team = \"orders-v2\"",
        ),
    )
    .unwrap();
    expect_code(
        &run(tmp.path(), &["plan", "eks", "--out", "plan.wid"], &sb),
        0,
    );
    {
        let _serve = Serve::start(&sb);
        sandbox_aws(
            &sb,
            &[
                "iam",
                "update-role",
                "--role-name",
                "orders-prod",
                "--max-session-duration",
                "5400",
            ],
        );
    }
    let writes = sandbox_writes(&sb);
    let apply = wid(tmp.path(), &["apply", "plan.wid"]);
    expect_code(&apply, 1);
    let err = stderr(&apply);
    assert!(
        err.contains(
            "    aws/iam-role/111122223333/orders-prod: max_session_duration 7200 → 5400\n"
        ),
        "{err}"
    );
    assert_eq!(sandbox_writes(&sb), writes, "nothing was written");
    let _serve = Serve::start(&sb);
    let role: serde_json::Value = serde_json::from_str(&sandbox_aws(
        &sb,
        &["iam", "get-role", "--role-name", "orders-prod"],
    ))
    .unwrap();
    assert_eq!(role["Role"]["MaxSessionDuration"], 5400);
    let tags = sandbox_aws(
        &sb,
        &["iam", "list-role-tags", "--role-name", "orders-prod"],
    );
    assert!(!tags.contains("orders-v2"), "{tags}");
}

#[test]
fn a_saved_plan_is_applied_where_it_was_computed_for() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let saved = tmp.path().join("plan.wid").display().to_string();
    expect_code(
        &run(
            &root(),
            &["plan", "examples/quickstart", "--out", &saved],
            &sb,
        ),
        0,
    );
    let elsewhere = tmp.path().join("other");
    let apply = run(&root(), &["apply", &saved], &elsewhere);
    expect_code(&apply, 1);
    let err = stderr(&apply);
    assert!(
        err.contains("was computed for the sandbox at")
            && err.contains("the sandbox directory differs"),
        "{err}"
    );
    assert!(!elsewhere.exists(), "no sandbox was started there");
    let prune = wid(&root(), &["apply", &saved, "--prune"]);
    expect_code(&prune, 1);
    assert!(
        stderr(&prune).contains("planned without --prune"),
        "{}",
        stderr(&prune)
    );
}

#[test]
fn files_that_are_not_saved_plans_are_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("other.json");
    std::fs::write(&json, "{\"format_version\": 1}\n").unwrap();
    let out = wid(tmp.path(), &["apply", "other.json", "--auto-approve"]);
    expect_code(&out, 1);
    assert!(
        stderr(&out).contains("other.json is JSON but not a saved wid plan"),
        "{}",
        stderr(&out)
    );
    let newer = tmp.path().join("newer.wid");
    std::fs::write(
        &newer,
        "{\"kind\": \"wid-saved-plan\", \"format_version\": 9, \"wid_version\": \"9.0.0\"}",
    )
    .unwrap();
    let out = wid(tmp.path(), &["show", "newer.wid"]);
    expect_code(&out, 1);
    assert!(
        stderr(&out).contains("was saved by wid 9.0.0 in format 9"),
        "{}",
        stderr(&out)
    );
    let toml = wid(&root(), &["show", "examples/quickstart/clusters.toml"]);
    expect_code(&toml, 1);
    assert!(
        stderr(&toml).contains("is not a saved plan"),
        "{}",
        stderr(&toml)
    );
}

/// The report document with its timings blanked (they vary run to run).
fn report(out: &std::process::Output) -> serde_json::Value {
    let mut doc: serde_json::Value = serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)));
    validate(&doc, "apply-report.schema.json");
    assert_eq!(doc["format_version"], 1);
    for step in doc["steps"].as_array_mut().unwrap() {
        assert!(step["seconds"].as_f64().unwrap() >= 0.0);
        step["seconds"] = serde_json::json!("[seconds]");
    }
    doc
}

#[test]
fn apply_reports_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let out = run(
        &root(),
        &[
            "apply",
            "examples/quickstart",
            "--auto-approve",
            "--output",
            "json",
        ],
        &sb,
    );
    expect_code(&out, 0);
    assert!(
        stderr(&out).contains("Plan: 8 to create"),
        "the plan goes to stderr"
    );
    let doc = report(&out);
    insta::assert_json_snapshot!("apply_report_quickstart", doc);

    // Nothing to do is still a report.
    let again = run(
        &root(),
        &[
            "apply",
            "examples/quickstart",
            "--auto-approve",
            "--output",
            "json",
        ],
        &sb,
    );
    expect_code(&again, 0);
    let doc = report(&again);
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["steps"], serde_json::json!([]));
}

#[test]
fn a_failed_apply_reports_failures_and_skips_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    std::fs::create_dir_all(&sb).unwrap();
    std::fs::write(
        sb.join("faults.json"),
        r#"[{"api": "iam:AttachRolePolicy", "action": "server-error", "times": 50}]"#,
    )
    .unwrap();
    let saved = tmp.path().join("plan.wid").display().to_string();
    expect_code(
        &run(&root(), &["plan", "examples/eks", "--out", &saved], &sb),
        0,
    );
    let out = wid(&root(), &["apply", &saved, "--output", "json"]);
    expect_code(&out, 1);
    let doc = report(&out);
    assert_eq!(doc["complete"], false);
    let steps = doc["steps"].as_array().unwrap();
    let failed = steps
        .iter()
        .find(|s| s["id"] == "aws/iam-role/111122223333/orders-prod")
        .unwrap();
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["attempts"], 6);
    assert_eq!(failed["error"]["kind"], "transient");
    assert!(failed["error"]["operation"].as_str().is_some(), "{failed}");
    let skipped = steps
        .iter()
        .find(|s| s["id"] == "k8s/serviceaccount/eks-prod/production/orders")
        .unwrap();
    assert_eq!(skipped["outcome"], "skipped");
    assert_eq!(skipped["because"], "aws/iam-role/111122223333/orders-prod");
    let s = &doc["summary"];
    assert_eq!(
        s["done"].as_u64().unwrap()
            + s["failed"].as_u64().unwrap()
            + s["skipped"].as_u64().unwrap(),
        steps.len() as u64
    );
    assert!(doc["api_calls"].as_u64().unwrap() > 0);
    assert!(
        doc["api_calls_by_operation"]["iam:AttachRolePolicy"]
            .as_u64()
            .unwrap()
            >= 6
    );
}
