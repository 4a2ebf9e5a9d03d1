//! GKE through the CLI: examples/gke converges on the sandbox; a cluster without Workload
//! Identity fails the plan before any IAM change; bindings made by others with gcloud
//! survive apply, prune and destroy; drift made by hand shows as drift and apply fixes
//! it; each hint names the plan key that fixes the problem, and applying it works; an
//! apply writes the record once per record account, and one whose policy write fails
//! leaves a record that holds exactly the bindings made.

mod common;
#[path = "common/gcp_ledger.rs"]
mod gcp_ledger;

use std::path::Path;

use common::*;
use wid_sandbox::{ClusterDecl, ClusterKind, GkeDecl, Sandbox};

/// Runs `wid ARGS --sandbox-dir SB` from `cwd`.
fn sandboxed(cwd: &Path, sb: &Path, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    let sb = sb.display().to_string();
    all.extend(["--sandbox-dir", &sb]);
    wid(cwd, &all)
}

/// The sandbox's counts of GCP calls whose name starts with `prefix`.
fn gcp_calls(dir: &Path, prefix: &str) -> u64 {
    let calls: std::collections::BTreeMap<String, u64> =
        serde_json::from_slice(&std::fs::read(dir.join("calls.json")).unwrap_or_default())
            .unwrap_or_default();
    calls
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

const PLAN: &str = r#"version = 1
name = "gke-cli"

[clusters.gke-prod]
kind = "gke"
project = "acme-prod"
location = "us-central1"
name = "prod"
create_namespaces = true

[[workload]]
cluster = "gke-prod"
namespace = "shop"
service_account = "orders"
gcp.service_account = "orders-app"
gcp.display_name = "Orders"
gcp.roles = ["roles/pubsub.subscriber"]

[[workload]]
cluster = "gke-prod"
namespace = "shop"
service_account = "reports"
gcp.direct = true
gcp.roles = ["roles/storage.objectViewer"]
"#;

const REPORTS: &str = "[[workload]]\ncluster = \"gke-prod\"\nnamespace = \"shop\"\nservice_account = \"reports\"\ngcp.direct = true\ngcp.roles = [\"roles/storage.objectViewer\"]\n";

/// Declares the plan's cluster in a sandbox dir and lets `edit` change its GCP state
/// before any wid command runs.
fn prepared_sandbox(dir: &Path, edit: impl FnOnce(&mut wid_sandbox::State)) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let decl = ClusterDecl {
            name: "gke-prod".into(),
            kind: ClusterKind::Gke,
            eks: None,
            gke: Some(GkeDecl {
                project: "acme-prod".into(),
                project_number: None,
                location: "us-central1".into(),
                name: "prod".into(),
            }),
            aks: None,
        };
        let sandbox = Sandbox::start(dir, &[decl]).await.unwrap();
        sandbox.shared().write(edit);
    });
}

#[test]
fn the_gke_example_converges_on_the_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let first = sandboxed(
        &root(),
        &sb,
        &["plan", "examples/gke", "--detailed-exitcode"],
    );
    expect_code(&first, 2);
    insta::assert_snapshot!("gke_first_plan", stdout(&first));
    let apply = sandboxed(&root(), &sb, &["apply", "examples/gke", "--auto-approve"]);
    expect_code(&apply, 0);
    let again = sandboxed(
        &root(),
        &sb,
        &["plan", "examples/gke", "--detailed-exitcode"],
    );
    expect_code(&again, 0);
    assert!(stdout(&again).contains("No changes."), "{}", stdout(&again));
}

#[test]
fn a_cluster_without_workload_identity_fails_the_plan_before_any_iam_change() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let sb = tmp.path().join("sb");
    prepared_sandbox(&sb, |s| {
        assert!(wid_sandbox::gcp::set_workload_identity(
            s,
            "acme-prod",
            "us-central1",
            "prod",
            false
        ));
    });
    let out = sandboxed(tmp.path(), &sb, &["plan", "plan.toml"]);
    expect_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("GKE cluster `gke-prod` (projects/acme-prod/locations/us-central1/clusters/prod) cannot serve workload identity"),
        "{err}"
    );
    assert!(
        err.contains("--workload-pool=acme-prod.svc.id.goog"),
        "{err}"
    );
    assert_eq!(gcp_calls(&sb, "gcp:container.clusters.get"), 1);
    // The plan's IAM reads start beside the cluster's (they change nothing, and their
    // answers are used only once preflight passes); nothing is written.
    for write in [
        "gcp:iam.serviceAccounts.create",
        "gcp:iam.serviceAccounts.patch",
        "gcp:iam.serviceAccounts.delete",
        "gcp:iam.serviceAccounts.setIamPolicy",
        "gcp:crm.projects.setIamPolicy",
    ] {
        assert_eq!(gcp_calls(&sb, write), 0, "{write} before preflight passed");
    }
}

#[test]
fn a_node_pool_on_the_node_metadata_server_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let sb = tmp.path().join("sb");
    prepared_sandbox(&sb, |s| {
        assert!(wid_sandbox::gcp::add_node_pool(
            s,
            "acme-prod",
            "us-central1",
            "prod",
            "legacy-pool",
            "GCE_METADATA"
        ));
    });
    let out = sandboxed(
        tmp.path(),
        &sb,
        &["plan", "plan.toml", "--detailed-exitcode"],
    );
    expect_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("warning: GKE cluster `gke-prod`: node pool legacy-pool has workload metadata mode GCE_METADATA"),
        "{err}"
    );
    assert!(!err.contains("default-pool"), "{err}");
}

#[test]
fn others_bindings_survive_apply_prune_and_destroy_and_drift_is_fixed() {
    if !have("gcloud") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let sb = tmp.path().join("sb");
    let serve = Serve::start_with(&sb, &["--plan", &plan.display().to_string()]);
    let run = |args: &[&str]| sandboxed(tmp.path(), &sb, args);
    expect_code(&run(&["apply", "plan.toml", "--auto-approve"]), 0);
    expect_code(&run(&["plan", "plan.toml", "--detailed-exitcode"]), 0);

    // Someone else grants roles on the same project policy, one of them to wid's own
    // service account: neither is wid's, so both survive.
    let gsa = "orders-app@acme-prod.iam.gserviceaccount.com";
    serve.gcloud(&[
        "projects",
        "add-iam-policy-binding",
        "acme-prod",
        "--member=user:alice@example.com",
        "--role=roles/viewer",
        "--format=json",
    ]);
    serve.gcloud(&[
        "projects",
        "add-iam-policy-binding",
        "acme-prod",
        &format!("--member=serviceAccount:{gsa}"),
        "--role=roles/logging.logWriter",
        "--format=json",
    ]);
    expect_code(&run(&["plan", "plan.toml", "--detailed-exitcode"]), 0);

    // Drift by hand: wid's binding removed, its account's display name changed.
    serve.gcloud(&[
        "projects",
        "remove-iam-policy-binding",
        "acme-prod",
        &format!("--member=serviceAccount:{gsa}"),
        "--role=roles/pubsub.subscriber",
        "--format=json",
    ]);
    serve.gcloud(&[
        "iam",
        "service-accounts",
        "update",
        gsa,
        "--display-name=Hand-edited",
    ]);
    let drift = run(&["plan", "plan.toml", "--detailed-exitcode"]);
    expect_code(&drift, 2);
    let text = stdout(&drift);
    assert!(text.contains("~ gcp/iam-policy/projects/acme-prod  update (drift: changed outside wid since it applied this plan)"), "{text}");
    assert!(
        text.contains(&format!(
            "roles/pubsub.subscriber serviceAccount:{gsa}: (unset) → \"projects/acme-prod\""
        )),
        "{text}"
    );
    assert!(text.contains("~ gcp/service-account/acme-prod/orders-app  update (drift: changed outside wid since it applied this plan)"), "{text}");
    assert!(
        text.contains("display_name: \"Hand-edited\" → \"Orders\""),
        "{text}"
    );
    expect_code(&run(&["apply", "plan.toml", "--auto-approve"]), 0);
    expect_code(&run(&["plan", "plan.toml", "--detailed-exitcode"]), 0);

    // The direct workload leaves the plan: prune removes its binding, and only it.
    std::fs::write(&plan, PLAN.replace(REPORTS, "")).unwrap();
    let prune = run(&["plan", "plan.toml", "--prune", "--detailed-exitcode"]);
    expect_code(&prune, 2);
    assert!(
        stdout(&prune)
            .contains("roles/storage.objectViewer principal://iam.googleapis.com/projects/"),
        "{}",
        stdout(&prune)
    );
    expect_code(
        &run(&["apply", "plan.toml", "--prune", "--auto-approve"]),
        0,
    );
    expect_code(
        &run(&["plan", "plan.toml", "--prune", "--detailed-exitcode"]),
        0,
    );
    let policy = serve.gcloud(&["projects", "get-iam-policy", "acme-prod", "--format=json"]);
    assert!(policy.contains("user:alice@example.com"), "{policy}");
    assert!(policy.contains("roles/logging.logWriter"), "{policy}");
    assert!(!policy.contains("subject/ns/shop/sa/reports"), "{policy}");
    assert!(policy.contains("roles/pubsub.subscriber"), "{policy}");

    // Destroy removes every account and binding the plan owns, and nothing else.
    expect_code(&run(&["destroy", "plan.toml", "--auto-approve"]), 0);
    let accounts = serve.gcloud(&[
        "iam",
        "service-accounts",
        "list",
        "--project=acme-prod",
        "--format=value(email)",
    ]);
    assert_eq!(
        accounts.trim(),
        "",
        "no account of the plan is left, record accounts included"
    );
    let policy = serve.gcloud(&["projects", "get-iam-policy", "acme-prod", "--format=json"]);
    assert!(policy.contains("user:alice@example.com"), "{policy}");
    assert!(policy.contains("roles/logging.logWriter"), "{policy}");
    assert!(!policy.contains("roles/pubsub.subscriber"), "{policy}");
}

#[test]
fn hints_name_the_plan_key_and_applying_them_works() {
    if !have("gcloud") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let sb = tmp.path().join("sb");
    let serve = Serve::start_with(&sb, &["--plan", &plan.display().to_string()]);
    let run = |args: &[&str]| sandboxed(tmp.path(), &sb, args);

    // An account made by hand with the plan's name is a conflict naming gcp.adopt.
    serve.gcloud(&[
        "iam",
        "service-accounts",
        "create",
        "orders-app",
        "--project=acme-prod",
        "--display-name=made by hand",
    ]);
    let conflict = run(&["apply", "plan.toml", "--auto-approve"]);
    expect_code(&conflict, 1);
    assert!(
        stdout(&conflict).contains("set `gcp.adopt = true` in workload gke-prod/shop/orders"),
        "{}",
        stdout(&conflict)
    );
    std::fs::write(
        &plan,
        PLAN.replace(
            "gcp.display_name = \"Orders\"\n",
            "gcp.display_name = \"Orders\"\ngcp.adopt = true\n",
        ),
    )
    .unwrap();
    expect_code(&run(&["apply", "plan.toml", "--auto-approve"]), 0);
    expect_code(&run(&["plan", "plan.toml", "--detailed-exitcode"]), 0);
    let described = serve.gcloud(&[
        "iam",
        "service-accounts",
        "describe",
        "orders-app@acme-prod.iam.gserviceaccount.com",
        "--format=value(description)",
    ]);
    assert!(
        described.contains("[wid plan=gke-cli applied="),
        "{described}"
    );

    // An existing account that does not exist: the blocker names `gcp.create = false`.
    let missing = format!(
        "{PLAN}\n[[workload]]\ncluster = \"gke-prod\"\nnamespace = \"shop\"\nservice_account = \"legacy\"\ngcp.service_account = \"legacy-app\"\ngcp.create = false\n"
    );
    std::fs::write(&plan, &missing).unwrap();
    let blocked = run(&["plan", "plan.toml"]);
    let text = stdout(&blocked);
    assert!(text.contains("service account legacy-app@acme-prod.iam.gserviceaccount.com does not exist; with `gcp.create = false`"), "{text}");
    std::fs::write(&plan, missing.replace("gcp.create = false\n", "")).unwrap();
    expect_code(&run(&["apply", "plan.toml", "--auto-approve"]), 0);
    expect_code(&run(&["plan", "plan.toml", "--detailed-exitcode"]), 0);
}

/// Reads the GCP state a sandbox directory holds.
fn gcp_state<T>(dir: &Path, read: impl FnOnce(&wid_sandbox::gcp::GcpState) -> T) -> T {
    let state: wid_sandbox::State =
        serde_json::from_value(wid_sandbox::read_state(dir).unwrap()).unwrap();
    read(&state.gcp)
}

/// The plan's record entries and the entries of every binding in acme-prod's policies.
fn record_and_bindings(
    dir: &Path,
    plan: &str,
) -> (
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<String>,
) {
    gcp_state(dir, |gcp| gcp_ledger::record_and_bindings(gcp, plan))
}

#[test]
fn apply_writes_the_record_once_per_account_and_keeps_it_exact_when_a_policy_write_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let mut text = PLAN.split("[[workload]]").next().unwrap().to_owned();
    for i in 0..30 {
        text.push_str(&format!(
            "[[workload]]\ncluster = \"gke-prod\"\nnamespace = \"shop\"\nservice_account = \"w{i}\"\ngcp.service_account = \"worker-{i:02}\"\ngcp.roles = [\"roles/pubsub.subscriber\"]\n\n"
        ));
    }
    std::fs::write(tmp.path().join("plan.toml"), text).unwrap();
    std::fs::create_dir_all(&sb).unwrap();
    // worker-05's policy write is refused once (not retryable): that change fails, the
    // other 30 policy changes are made.
    std::fs::write(
        sb.join("faults.json"),
        r#"[{"api": "gcp:iam.serviceAccounts.setIamPolicy", "object": "worker-05@", "action": "forbidden", "times": 1}]"#,
    )
    .unwrap();
    let run = |args: &[&str]| sandboxed(tmp.path(), &sb, args);
    let apply = run(&["apply", "plan.toml", "--auto-approve"]);
    expect_code(&apply, 1);
    assert!(stdout(&apply).contains("worker-05@"), "{}", stdout(&apply));
    // 60 entries (30 account policy lines, 30 project lines): three record accounts,
    // created once each, written ahead of the policies. After the run, worker-05's entry
    // is removed (its policy, read again, does not hold the line): one update.
    assert_eq!(gcp_calls(&sb, "gcp:iam.serviceAccounts.create"), 30 + 3);
    assert_eq!(gcp_calls(&sb, "gcp:iam.serviceAccounts.patch"), 1);
    assert_eq!(gcp_calls(&sb, "gcp:iam.serviceAccounts.delete"), 0);
    let (record, bound) = record_and_bindings(&sb, "gke-cli");
    assert_eq!(record, bound, "the record holds exactly the bindings made");
    assert_eq!(record.len(), 59);

    // The re-run makes the one binding left, writing its entry ahead (one update).
    expect_code(&run(&["apply", "plan.toml", "--auto-approve"]), 0);
    assert_eq!(gcp_calls(&sb, "gcp:iam.serviceAccounts.patch"), 2);
    expect_code(&run(&["plan", "plan.toml", "--detailed-exitcode"]), 0);
    let (record, bound) = record_and_bindings(&sb, "gke-cli");
    assert_eq!(record, bound);
    assert_eq!(record.len(), 60);
}
