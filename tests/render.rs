//! `wid render` as a GitOps mode: the out dir is kept exact (its own stale files are
//! removed, nothing else is touched, an edited file is refused), and `--out-dir -`
//! writes one YAML stream.

mod common;

use std::path::Path;

use common::*;

fn render(cwd: &Path, plan: &Path, out: &str) -> std::process::Output {
    wid(
        cwd,
        &["render", &plan.display().to_string(), "--out-dir", out],
    )
}

fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn render_removes_its_own_stale_files_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan");
    copy_plan(&root().join("examples/quickstart"), &plan);
    let out = tmp.path().join("k8s");
    let o = out.display().to_string();
    expect_code(&render(tmp.path(), &plan, &o), 0);
    let first = files(&out);
    assert!(first.contains(&".wid-render.json".to_owned()), "{first:?}");
    assert!(first.contains(&"staging/reports/serviceaccount-reports.yaml".to_owned()));
    // Files wid did not write, beside and among its own.
    std::fs::write(out.join("README.md"), "mine\n").unwrap();
    std::fs::write(
        out.join("staging/reports/kustomization.yaml"),
        "resources: []\n",
    )
    .unwrap();

    // The same plan again writes nothing.
    let again = render(tmp.path(), &plan, &o);
    expect_code(&again, 0);
    assert!(
        stdout(&again).contains("wrote 0 manifest(s)"),
        "{}",
        stdout(&again)
    );

    // The staging workload and config-watcher leave the plan.
    let workloads = std::fs::read_to_string(plan.join("workloads.toml")).unwrap();
    let start = workloads
        .find("# A workload that does call the API")
        .unwrap();
    std::fs::write(plan.join("workloads.toml"), &workloads[..start]).unwrap();
    let pruned = render(tmp.path(), &plan, &o);
    expect_code(&pruned, 0);
    let text = stdout(&pruned);
    assert!(
        text.contains(
            "removed staging/reports/serviceaccount-reports.yaml (its object left the plan)"
        ),
        "{text}"
    );
    assert!(
        text.contains("removed dev/payments/role-wid-config-watcher.yaml"),
        "{text}"
    );
    let now = files(&out);
    assert!(now.contains(&"README.md".to_owned()), "{now:?}");
    assert!(
        now.contains(&"staging/reports/kustomization.yaml".to_owned()),
        "{now:?}"
    );
    assert!(!now.iter().any(|f| f.contains("config-watcher")), "{now:?}");
    assert!(!now.contains(&"staging/reports/serviceaccount-reports.yaml".to_owned()));
    assert!(now.contains(&"dev/payments/serviceaccount-orders.yaml".to_owned()));
    // The namespace's manifest left with its last workload, its directory with it.
    assert!(!out.join("staging/_cluster").exists(), "{now:?}");
    assert_eq!(
        std::fs::read_to_string(out.join("README.md")).unwrap(),
        "mine\n"
    );

    // A rendered file edited by hand is refused, named, and nothing changes.
    let orders = out.join("dev/payments/serviceaccount-orders.yaml");
    std::fs::write(&orders, "edited\n").unwrap();
    std::fs::write(
        plan.join("workloads.toml"),
        "version = 1\nname = \"quickstart\"\n",
    )
    .unwrap();
    let refused = render(tmp.path(), &plan, &o);
    expect_code(&refused, 1);
    assert!(
        stderr(&refused).contains("serviceaccount-orders.yaml was edited since wid rendered it"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(files(&out), now);
    assert_eq!(std::fs::read_to_string(&orders).unwrap(), "edited\n");

    // A file in the way that wid never wrote is refused too.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(fresh.join("dev/payments")).unwrap();
    std::fs::write(fresh.join("dev/payments/serviceaccount-orders.yaml"), "x\n").unwrap();
    copy_plan(&root().join("examples/quickstart"), &plan);
    let blocked = render(tmp.path(), &plan, &fresh.display().to_string());
    expect_code(&blocked, 1);
    assert!(
        stderr(&blocked).contains("exists and was not written by wid render"),
        "{}",
        stderr(&blocked)
    );
}

#[test]
fn render_to_stdout_is_one_yaml_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(tmp.path(), &root().join("examples/quickstart"), "-");
    expect_code(&out, 0);
    let text = stdout(&out);
    let docs: Vec<serde_json::Value> = text
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str(d.trim_start_matches("---\n")).unwrap())
        .collect();
    assert!(docs.len() >= 5, "{text}");
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "ServiceAccount" && d["metadata"]["name"] == "orders"),
        "{text}"
    );
    assert!(!tmp.path().join("-").exists());
}

/// The sandbox's Kubernetes calls so far (`k8s...` keys of calls.json).
fn kube_calls(sb: &Path) -> u64 {
    let calls: std::collections::BTreeMap<String, u64> =
        serde_json::from_slice(&std::fs::read(sb.join("calls.json")).unwrap_or_default())
            .unwrap_or_default();
    calls
        .iter()
        .filter(|(api, _)| api.starts_with("k8s") || api.starts_with("kube"))
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn cloud_only_plans_and_applies_the_cloud_side_and_never_calls_a_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let s = sb.display().to_string();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--sandbox-dir", &s]);
        wid(&root(), &all)
    };
    let plan = run(&[
        "plan",
        "examples/eks",
        "--cloud-only",
        "--detailed-exitcode",
    ]);
    expect_code(&plan, 2);
    let text = stdout(&plan);
    assert!(text.contains("+ aws/iam-role/"), "{text}");
    assert!(!text.contains("k8s/"), "{text}");
    let apply = run(&["apply", "examples/eks", "--cloud-only", "--auto-approve"]);
    expect_code(&apply, 0);
    assert_eq!(kube_calls(&sb), 0, "cloud-only reads no cluster");
    // The drift gate of a cloud-only pipeline agrees with its apply.
    expect_code(
        &run(&[
            "plan",
            "examples/eks",
            "--cloud-only",
            "--detailed-exitcode",
        ]),
        0,
    );
    // What is left is the Kubernetes side, for the GitOps controller.
    let full = run(&["plan", "examples/eks", "--detailed-exitcode"]);
    expect_code(&full, 2);
    let text = stdout(&full);
    assert!(text.contains("k8s/serviceaccount/"), "{text}");
    assert!(!text.contains("+ aws/"), "{text}");
    // A saved cloud-only plan applies as such; asking a whole saved plan to be
    // cloud-only is refused.
    let whole = tmp.path().join("whole.wid").display().to_string();
    expect_code(&run(&["plan", "examples/eks", "--out", &whole]), 0);
    let refused = run(&["apply", &whole, "--cloud-only"]);
    expect_code(&refused, 1);
    assert!(
        stderr(&refused).contains("was planned with its Kubernetes side"),
        "{}",
        stderr(&refused)
    );
}
