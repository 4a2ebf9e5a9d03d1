//! `--target`, `--context`/`--kubeconfig`, and the default PATH, against the sandbox:
//! a targeted run plans, applies, prunes and destroys only inside its targets, names
//! what it pulled in, and a saved plan applies exactly its selection.

mod common;

use std::path::Path;

use common::*;

fn run(cwd: &Path, args: &[&str], sandbox: &Path) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.extend(["--sandbox-dir".into(), sandbox.display().to_string()]);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    wid(cwd, &refs)
}

#[test]
fn a_target_plans_and_applies_its_workloads_and_what_they_need() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let dir = tmp.path().join("plan");
    copy_plan(&root().join("examples/quickstart"), &dir);

    // PATH defaults to the current directory.
    let plan = run(
        &dir,
        &["plan", "--target", "staging", "--detailed-exitcode"],
        &sb,
    );
    expect_code(&plan, 2);
    let (out, err) = (stdout(&plan), stderr(&plan));
    assert!(out.contains("staging/reports/reports"), "{out}");
    assert!(!out.contains("dev/payments"), "{out}");
    assert!(
        err.contains("--target staging: 1 of the plan's 3 workload(s) selected"),
        "{err}"
    );
    assert!(
        err.contains("Also planned, because the selected workloads depend on them: k8s/namespace/staging/reports"),
        "{err}"
    );

    expect_code(
        &run(
            &dir,
            &["apply", "--target", "staging", "--auto-approve"],
            &sb,
        ),
        0,
    );
    let rest = run(&dir, &["plan", "--detailed-exitcode"], &sb);
    expect_code(&rest, 2);
    assert!(
        !stdout(&rest).contains("staging/reports"),
        "{}",
        stdout(&rest)
    );
    expect_code(
        &run(
            &dir,
            &["plan", "--target", "staging", "--detailed-exitcode"],
            &sb,
        ),
        0,
    );

    // A saved plan records its targets and applies exactly that selection.
    let saved = run(
        &dir,
        &[
            "plan",
            "--target",
            "dev/payments/orders",
            "--out",
            "orders.wid",
        ],
        &sb,
    );
    expect_code(&saved, 0);
    let other = run(&dir, &["apply", "orders.wid", "--target", "staging"], &sb);
    expect_code(&other, 1);
    assert!(
        stderr(&other).contains("was planned for --target dev/payments/orders"),
        "{}",
        stderr(&other)
    );
    let apply = run(&dir, &["apply", "orders.wid"], &sb);
    expect_code(&apply, 0);
    let left = stdout(&run(&dir, &["plan"], &sb));
    assert!(left.contains("dev/payments/config-watcher"), "{left}");
    assert!(!left.contains("dev/payments/orders ("), "{left}");

    // An unknown cluster is refused, naming the plan's clusters.
    let bad = run(&dir, &["plan", "--target", "prod/x"], &sb);
    expect_code(&bad, 1);
    assert!(
        stderr(&bad).contains("the plan has no cluster `prod`; its clusters are dev, staging"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn targeted_prune_and_destroy_stay_inside_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let dir = tmp.path().join("plan");
    copy_plan(&root().join("examples/quickstart"), &dir);
    let p = dir.display().to_string();
    expect_code(&run(tmp.path(), &["apply", &p, "--auto-approve"], &sb), 0);

    // The staging workload leaves the plan: a prune targeted at dev does not delete it.
    let workloads = std::fs::read_to_string(dir.join("workloads.toml")).unwrap();
    let cut = workloads
        .find("[[workload]]\ncluster = \"staging\"")
        .unwrap();
    std::fs::write(dir.join("workloads.toml"), &workloads[..cut]).unwrap();
    expect_code(
        &run(
            tmp.path(),
            &[
                "plan",
                &p,
                "--prune",
                "--target",
                "dev",
                "--detailed-exitcode",
            ],
            &sb,
        ),
        0,
    );
    let staging = run(
        tmp.path(),
        &[
            "plan",
            &p,
            "--prune",
            "--target",
            "staging",
            "--detailed-exitcode",
        ],
        &sb,
    );
    expect_code(&staging, 2);
    assert!(
        stdout(&staging).contains("k8s/serviceaccount/staging/reports/reports"),
        "{}",
        stdout(&staging)
    );

    // Destroy of one KSA deletes it with its Role and RoleBinding, not its namespace
    // (another workload of the plan uses it) nor anything else.
    let destroy = run(
        tmp.path(),
        &[
            "destroy",
            &p,
            "--target",
            "dev/payments/config-watcher",
            "--auto-approve",
        ],
        &sb,
    );
    expect_code(&destroy, 0);
    let out = stdout(&destroy);
    for id in [
        "k8s/serviceaccount/dev/payments/config-watcher",
        "k8s/role/dev/payments/wid-config-watcher",
        "k8s/rolebinding/dev/payments/wid-config-watcher",
    ] {
        assert!(out.contains(id), "{out}");
    }
    assert!(!out.contains("k8s/namespace/dev/payments"), "{out}");
    assert!(!out.contains("orders"), "{out}");
    let after = run(tmp.path(), &["plan", &p, "--detailed-exitcode"], &sb);
    expect_code(&after, 2);
    let text = stdout(&after);
    assert!(text.contains("config-watcher"), "{text}");
    assert!(!text.contains("orders"), "{text}");
}

#[test]
fn contexts_and_kubeconfig_from_the_command_line_override_the_plan() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let dir = tmp.path().join("plan");
    copy_plan(&root().join("examples/quickstart"), &dir);
    let p = dir.display().to_string();
    let _serve = Serve::start_with(&sb, &["--plan", &p]);
    let kubeconfig = sb.join("kubeconfig").display().to_string();

    // Two clusters without a context in the plan: refused without overrides.
    let without = wid(tmp.path(), &["plan", &p, "--kubeconfig", &kubeconfig]);
    expect_code(&without, 1);
    assert!(
        stderr(&without).contains("--context CLUSTER=CTX"),
        "{}",
        stderr(&without)
    );
    // The sandbox's kubeconfig names a context after each cluster.
    let ok = wid(
        tmp.path(),
        &[
            "plan",
            &p,
            "--kubeconfig",
            &kubeconfig,
            "--context",
            "dev=dev",
            "--context",
            "staging=staging",
            "--detailed-exitcode",
        ],
    );
    expect_code(&ok, 2);
    assert!(
        stdout(&ok).contains("dev/payments/orders"),
        "{}",
        stdout(&ok)
    );
    let unknown = wid(
        tmp.path(),
        &[
            "plan",
            &p,
            "--kubeconfig",
            &kubeconfig,
            "--context",
            "prod=dev",
        ],
    );
    expect_code(&unknown, 1);
    assert!(
        stderr(&unknown).contains("--context names cluster(s) prod that the plan does not declare"),
        "{}",
        stderr(&unknown)
    );
    let bad = wid(tmp.path(), &["plan", &p, "--context", "dev"]);
    expect_code(&bad, 1);
    assert!(
        stderr(&bad).contains("expected CLUSTER=CONTEXT"),
        "{}",
        stderr(&bad)
    );
}
