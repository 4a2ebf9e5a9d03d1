//! What wid leaves behind, through the CLI against the sandbox, read from the sandbox's own
//! state (never from wid's output):
//! - an emptied plan with `--prune`, `wid destroy`, and a plan whose workloads no longer
//!   use AWS leave nothing carrying the plan's mark in IAM, EKS or Kubernetes, while
//!   another plan's objects and hand-made ones survive; destroy deletes in reverse
//!   dependency order;
//! - an apply that fails on `iam:AttachRolePolicy` (an injected fault, or a misspelt
//!   policy ARN) says which resource it left partly applied, the next plan says
//!   "incomplete apply" (human and JSON), never drift, and a re-run converges;
//! - a hand-made Pod Identity association is a conflict without `aws.adopt` and survives
//!   `--prune`.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::Value;

const CLUSTER: &str = r#"
[clusters.prod]
kind = "eks"
account = "111122223333"
region = "us-east-1"
name = "prod"
"#;

/// The plan's name, its cluster, and (so prune also looks in the data account once no
/// workload names it) a profile for the data account.
fn header(name: &str) -> String {
    format!(
        "version = 1\nname = \"{name}\"\n{CLUSTER}\n[aws.profiles]\n\"444455556666\" = \"data\"\n"
    )
}

/// IRSA with policies, tags and RBAC; Pod Identity; a cross-account IRSA role; a KSA.
const LEAVE_WORKLOADS: &str = r#"
[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "orders"
aws.role = "leave-orders"
aws.managed_policies = ["arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"]
aws.inline_policies.s3 = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}'
aws.tags = { team = "shop" }
kubernetes.rules = [{ apiGroups = [""], resources = ["configmaps"], verbs = ["get"] }]

[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "payments"
aws.role = "leave-payments"
aws.mechanism = "pod-identity"

[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "reports"
aws.role = "leave-reports"
aws.account = "444455556666"

[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "frontend"
"#;

/// Another team's plan on the same cluster (Pod Identity and a plain KSA).
const OTHER_WORKLOADS: &str = r#"
[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "billing"
aws.role = "other-billing"
aws.mechanism = "pod-identity"

[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "worker"
"#;

const PODS_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

/// The JSON paths of every object in the sandbox's state (IAM, EKS, Kubernetes) that
/// carries `wid.dev/plan = plan`, as a tag or a label.
fn marked(sb: &Path, plan: &str) -> Vec<String> {
    fn walk(v: &Value, path: &str, plan: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if map.get(wid_core::PLAN_KEY).and_then(Value::as_str) == Some(plan) {
                    out.push(path.to_owned());
                }
                for (k, child) in map {
                    walk(child, &format!("{path}/{k}"), plan, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}/{i}"), plan, out);
                }
            }
            _ => {}
        }
    }
    let state: Value =
        serde_json::from_slice(&std::fs::read(sb.join("state.json")).expect("state.json"))
            .expect("state parses");
    let mut out = Vec::new();
    walk(&state, "", plan, &mut out);
    out
}

/// The sandbox's state as text, for "still there" checks.
fn state_text(sb: &Path) -> String {
    std::fs::read_to_string(sb.join("state.json")).expect("state.json")
}

/// A served sandbox with the plans `leave` (every kind of object) and `other` applied,
/// and hand-made objects beside them: an IAM role, a Pod Identity association and a KSA.
/// The namespace exists beforehand (wid never deletes namespaces, so a namespace it
/// created would keep the mark by design).
struct World {
    tmp: tempfile::TempDir,
    sb: std::path::PathBuf,
    leave: std::path::PathBuf,
    other: std::path::PathBuf,
    serve: Serve,
}

impl World {
    fn new() -> Option<Self> {
        if !have("kubectl") || !have("aws") {
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let sb = tmp.path().join("sb");
        let leave = tmp.path().join("leave.toml");
        let other = tmp.path().join("other.toml");
        std::fs::write(&leave, format!("{}{LEAVE_WORKLOADS}", header("leave"))).unwrap();
        std::fs::write(
            &other,
            format!("version = 1\nname = \"other\"\n{CLUSTER}{OTHER_WORKLOADS}"),
        )
        .unwrap();
        let serve = Serve::start_with(&sb, &["--plan", &leave.display().to_string()]);
        let manifest = tmp.path().join("hand-made.yaml");
        std::fs::write(
            &manifest,
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: hand-made\n  namespace: shop\n",
        )
        .unwrap();
        serve.kubectl(&[
            "--context",
            "prod",
            "create",
            "-f",
            &manifest.display().to_string(),
        ]);
        let world = Self {
            tmp,
            sb,
            leave,
            other,
            serve,
        };
        expect_code(
            &world.wid(&["apply", &world.path(&world.leave), "--auto-approve"]),
            0,
        );
        expect_code(
            &world.wid(&["apply", &world.path(&world.other), "--auto-approve"]),
            0,
        );
        sandbox_aws(
            &world.sb,
            &[
                "iam",
                "create-role",
                "--role-name",
                "hand-made",
                "--assume-role-policy-document",
                PODS_TRUST,
            ],
        );
        sandbox_aws(
            &world.sb,
            &[
                "eks",
                "create-pod-identity-association",
                "--cluster-name",
                "prod",
                "--namespace",
                "shop",
                "--service-account",
                "hand-made",
                "--role-arn",
                "arn:aws:iam::111122223333:role/hand-made",
            ],
        );
        Some(world)
    }

    fn path(&self, p: &Path) -> String {
        p.display().to_string()
    }

    /// `wid ARGS --sandbox-dir SB`.
    fn wid(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        let sb = self.path(&self.sb);
        all.extend(["--sandbox-dir", &sb]);
        wid(self.tmp.path(), &all)
    }

    /// Every kind of object `leave` made carries its mark before it is removed.
    fn assert_leave_is_everywhere(&self) {
        let marks = marked(&self.sb, "leave");
        for what in [
            "roles/leave-orders",
            "roles/leave-payments",
            "444455556666/roles/leave-reports",
            "oidc_providers",
            "pod_identity_associations",
            "serviceaccounts/shop/orders",
            "serviceaccounts/shop/frontend",
            "roles/shop/wid-orders",
            "rolebindings/shop/wid-orders",
        ] {
            assert!(
                marks.iter().any(|m| m.contains(what)),
                "{what} not marked: {marks:#?}"
            );
        }
        assert!(
            marks
                .iter()
                .filter(|m| m.contains("oidc_providers"))
                .count()
                == 2,
            "one OIDC provider per account: {marks:#?}"
        );
    }

    /// Nothing of `leave` is left, and everything else is.
    fn assert_only_leave_is_gone(&self) {
        let marks = marked(&self.sb, "leave");
        assert!(marks.is_empty(), "left behind: {marks:#?}");
        let others = marked(&self.sb, "other");
        for what in [
            "roles/other-billing",
            "pod_identity_associations",
            "serviceaccounts/shop/billing",
            "serviceaccounts/shop/worker",
        ] {
            assert!(
                others.iter().any(|m| m.contains(what)),
                "{what} of plan other is gone: {others:#?}"
            );
        }
        let state = state_text(&self.sb);
        for hand_made in [
            "\"hand-made\"",
            "arn:aws:iam::111122223333:role/hand-made",
            "shop/hand-made",
        ] {
            assert!(state.contains(hand_made), "{hand_made} is gone");
        }
    }
}

#[test]
fn an_emptied_plan_with_prune_leaves_nothing_of_the_plan_in_iam_eks_or_kubernetes() {
    let Some(w) = World::new() else { return };
    w.assert_leave_is_everywhere();
    // Same name, same clusters (and profiles), no workloads.
    std::fs::write(&w.leave, header("leave")).unwrap();
    let plan = w.wid(&["plan", &w.path(&w.leave), "--prune", "--detailed-exitcode"]);
    expect_code(&plan, 2);
    let text = stdout(&plan);
    assert!(
        text.contains("- aws/iam-role/444455556666/leave-reports"),
        "{text}"
    );
    assert!(
        !text.contains("hand-made") && !text.contains("other-"),
        "{text}"
    );
    // Emptying a plan deletes all of its objects: the mass-delete guard refuses it
    // unless asked, before any write.
    let guarded = w.wid(&["apply", &w.path(&w.leave), "--prune", "--auto-approve"]);
    expect_code(&guarded, 1);
    assert!(
        stderr(&guarded).contains("scope `leave` would delete"),
        "{}",
        stderr(&guarded)
    );
    w.assert_leave_is_everywhere();
    expect_code(
        &w.wid(&[
            "apply",
            &w.path(&w.leave),
            "--prune",
            "--allow-mass-delete",
            "--auto-approve",
        ]),
        0,
    );
    w.assert_only_leave_is_gone();
    expect_code(
        &w.wid(&["plan", &w.path(&w.leave), "--prune", "--detailed-exitcode"]),
        0,
    );
    drop(w.serve);
}

#[test]
fn destroy_leaves_nothing_of_the_plan_and_asks_like_apply() {
    let Some(w) = World::new() else { return };
    w.assert_leave_is_everywhere();
    let leave = w.path(&w.leave);
    // Without a terminal it refuses unless told; the plan's file is unchanged.
    let refused = w.wid(&["destroy", &leave]);
    expect_code(&refused, 1);
    assert!(
        stderr(&refused).contains("--auto-approve"),
        "{}",
        stderr(&refused)
    );
    w.assert_leave_is_everywhere();
    let destroyed = w.wid(&["destroy", &leave, "--auto-approve"]);
    expect_code(&destroyed, 0);
    let text = stdout(&destroyed);
    assert!(
        text.contains("- aws/iam-oidc-provider/444455556666/"),
        "{text}"
    );
    assert!(text.contains("Apply complete:"), "{text}");
    w.assert_only_leave_is_gone();
    let again = w.wid(&["destroy", &leave, "--auto-approve"]);
    expect_code(&again, 0);
    assert!(stdout(&again).contains("No changes."), "{}", stdout(&again));
    drop(w.serve);
}

#[test]
fn workloads_that_stop_using_aws_leave_no_aws_objects_behind() {
    let Some(w) = World::new() else { return };
    // The workloads stay, none with an aws block.
    let kept = LEAVE_WORKLOADS
        .lines()
        .filter(|l| !l.starts_with("aws."))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&w.leave, format!("{}{kept}\n", header("leave"))).unwrap();
    expect_code(
        &w.wid(&["apply", &w.path(&w.leave), "--prune", "--auto-approve"]),
        0,
    );
    let marks = marked(&w.sb, "leave");
    assert!(
        marks.iter().all(|m| m.starts_with("/clusters/")),
        "cloud objects left behind: {marks:#?}"
    );
    assert!(
        marks
            .iter()
            .any(|m| m.contains("serviceaccounts/shop/orders")),
        "{marks:#?}"
    );
    let sa: Value = serde_json::from_str(&stdout(&w.serve.kubectl(&[
        "--context",
        "prod",
        "-n",
        "shop",
        "get",
        "sa",
        "orders",
        "-o",
        "json",
    ])))
    .unwrap();
    assert!(
        sa["metadata"]["annotations"]
            .get("eks.amazonaws.com/role-arn")
            .is_none(),
        "{sa}"
    );
    expect_code(
        &w.wid(&["plan", &w.path(&w.leave), "--prune", "--detailed-exitcode"]),
        0,
    );
}

/// Records when each change starts and finishes.
#[derive(Default)]
struct Order(Mutex<Vec<String>>);

impl wid::engine::Progress for Order {
    fn started(&self, change: &wid_core::Change) {
        self.0.lock().unwrap().push(format!("start {}", change.id));
    }
    fn retrying(&self, _: &wid_core::ResourceId, _: u32, _: &wid_core::ProviderError, _: Duration) {
    }
    fn finished(&self, step: &wid::engine::Step, _: usize, _: usize) {
        self.0.lock().unwrap().push(format!("end {}", step.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_deletes_in_reverse_dependency_order() {
    let tmp = tempfile::tempdir().unwrap();
    let plan_path = tmp.path().join("leave.toml");
    let with_namespaces = header("leave").replace(
        "name = \"prod\"",
        "name = \"prod\"\ncreate_namespaces = true",
    );
    std::fs::write(&plan_path, format!("{with_namespaces}{LEAVE_WORKLOADS}")).unwrap();
    let target = wid::session::Target {
        sandbox: Some(tmp.path().join("sb")),
        ..Default::default()
    };
    let open = || async {
        let plan = wid::plan::load(&plan_path).expect("plan loads");
        wid::session::Session::open(plan, &target)
            .await
            .expect("session")
    };
    let session = open().await;
    let planned = session
        .plan(wid::session::PlanMode::Apply { prune: false })
        .await
        .expect("plan");
    let report = wid::engine::execute(
        &session.providers,
        &planned.changes,
        &session.owner(false),
        &wid::engine::RetryPolicy::default(),
        &Order::default(),
    )
    .await;
    assert!(report.succeeded(), "{report:?}");
    drop(session);

    let session = open().await;
    let planned = session
        .plan(wid::session::PlanMode::Destroy)
        .await
        .expect("destroy plan");
    let order = Arc::new(Order::default());
    let report = wid::engine::execute(
        &session.providers,
        &planned.changes,
        &session.owner(true),
        &wid::engine::RetryPolicy::default(),
        order.as_ref(),
    )
    .await;
    assert!(report.succeeded(), "{report:?}");
    let log = order.0.lock().unwrap().clone();
    let at = |what: &str| {
        log.iter()
            .position(|l| l == what)
            .unwrap_or_else(|| panic!("{what} not in {log:#?}"))
    };
    let role = "aws/iam-role/111122223333/leave-orders";
    let provider = "aws/iam-oidc-provider/111122223333/oidc.eks.us-east-1.amazonaws.com";
    let provider_start = log
        .iter()
        .position(|l| l.starts_with(&format!("start {provider}")))
        .expect("provider deleted");
    // The KSA that names the role, then the role, then the OIDC provider it trusts; the
    // RoleBinding before the Role and the KSA it binds; the association before its role.
    assert!(
        at("end k8s/serviceaccount/prod/shop/orders") < at(&format!("start {role}")),
        "{log:#?}"
    );
    assert!(at(&format!("end {role}")) < provider_start, "{log:#?}");
    assert!(
        at("end k8s/rolebinding/prod/shop/wid-orders") < at("start k8s/role/prod/shop/wid-orders"),
        "{log:#?}"
    );
    assert!(
        at("end k8s/rolebinding/prod/shop/wid-orders")
            < at("start k8s/serviceaccount/prod/shop/orders"),
        "{log:#?}"
    );
    assert!(
        at("end aws/eks-pod-identity-association/111122223333/us-east-1/prod/shop/payments")
            < at("start aws/iam-role/111122223333/leave-payments"),
        "{log:#?}"
    );
}

const FAULTY: &str = r#"version = 1
name = "faulty"

[clusters.prod]
kind = "eks"
account = "111122223333"
region = "us-east-1"
name = "prod"
create_namespaces = true

[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "orders"
aws.role = "faulty-orders"
aws.managed_policies = ["arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"]
"#;

/// The plan's one role change in `wid plan --output json`.
fn role_reason(out: &std::process::Output) -> Value {
    let doc: Value = serde_json::from_str(&stdout(out)).unwrap();
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "aws/iam-role/111122223333/faulty-orders")
        .map(|c| c["reason"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn an_apply_failed_on_attach_role_policy_is_an_incomplete_apply_not_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    std::fs::create_dir_all(&sb).unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, FAULTY).unwrap();
    let (p, sbs) = (plan.display().to_string(), sb.display().to_string());
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--sandbox-dir", &sbs]);
        wid(tmp.path(), &all)
    };
    // More failures than the engine retries: the attach fails for good.
    std::fs::write(
        sb.join("faults.json"),
        r#"[{"api": "iam:AttachRolePolicy", "action": "server-error", "times": 50}]"#,
    )
    .unwrap();
    let failed = run(&["apply", &p, "--auto-approve"]);
    expect_code(&failed, 1);
    let out = stdout(&failed);
    assert!(
        out.contains("Left partly applied (1): aws/iam-role/111122223333/faulty-orders."),
        "{out}"
    );
    assert!(
        out.contains("faulty-orders failed after 6 attempt(s); it is left partly applied"),
        "{out}"
    );
    std::fs::remove_file(sb.join("faults.json")).unwrap();

    let plan_out = run(&["plan", &p, "--detailed-exitcode"]);
    expect_code(&plan_out, 2);
    let text = stdout(&plan_out);
    assert!(
        text.contains("aws/iam-role/111122223333/faulty-orders  update (incomplete apply: an earlier apply stopped part-way)"),
        "{text}"
    );
    assert!(!text.contains("drift"), "{text}");
    let json = run(&["plan", &p, "--detailed-exitcode", "--output", "json"]);
    expect_code(&json, 2);
    assert_eq!(
        role_reason(&json),
        serde_json::json!({"reason": "incomplete"})
    );

    expect_code(&run(&["apply", &p, "--auto-approve"]), 0);
    expect_code(&run(&["plan", &p, "--detailed-exitcode"]), 0);

    // Real drift later is still drift: someone detaches the policy.
    if have("aws") {
        let serve = Serve::start(&sb);
        sandbox_aws(
            &sb,
            &[
                "iam",
                "detach-role-policy",
                "--role-name",
                "faulty-orders",
                "--policy-arn",
                "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess",
            ],
        );
        let json = run(&["plan", &p, "--detailed-exitcode", "--output", "json"]);
        expect_code(&json, 2);
        assert_eq!(role_reason(&json), serde_json::json!({"reason": "drift"}));
        drop(serve);
    }
}

#[test]
fn a_misspelt_policy_arn_is_reported_with_its_key_and_left_incomplete_not_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb").display().to_string();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(
        &plan,
        FAULTY.replace("AmazonSQSReadOnlyAccess", "AmazonSQSReadOnlyAcess"),
    )
    .unwrap();
    let p = plan.display().to_string();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--sandbox-dir", &sb]);
        wid(tmp.path(), &all)
    };
    let failed = run(&["apply", &p, "--auto-approve"]);
    expect_code(&failed, 1);
    let out = stdout(&failed);
    assert!(
        out.contains("failed after 1 attempt(s); it is left partly applied"),
        "{out}"
    );
    assert!(
        out.contains("the policy does not exist or cannot be attached"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "hint: check the ARN in `aws.managed_policies` of workload prod/shop/orders ({p}:11:1)"
        )),
        "{out}"
    );
    assert!(
        out.contains("Left partly applied (1): aws/iam-role/111122223333/faulty-orders."),
        "{out}"
    );
    let again = run(&["plan", &p, "--output", "json"]);
    assert_eq!(
        role_reason(&again),
        serde_json::json!({"reason": "incomplete"})
    );
    // The fix the hint names.
    std::fs::write(&plan, FAULTY).unwrap();
    let fixed = run(&["plan", &p]);
    assert!(
        stdout(&fixed).contains("incomplete apply"),
        "{}",
        stdout(&fixed)
    );
    expect_code(&run(&["apply", &p, "--auto-approve"]), 0);
    expect_code(&run(&["plan", &p, "--detailed-exitcode"]), 0);
}

const PODS: &str = r#"version = 1
name = "pods"

[clusters.prod]
kind = "eks"
account = "111122223333"
region = "us-east-1"
name = "prod"
create_namespaces = true

[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "orders"
aws.role = "pods-orders"
aws.mechanism = "pod-identity"
"#;

#[test]
fn a_hand_made_pod_identity_association_is_a_conflict_without_aws_adopt_and_survives_prune() {
    if !have("aws") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, PODS).unwrap();
    let (p, sbs) = (plan.display().to_string(), sb.display().to_string());
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--sandbox-dir", &sbs]);
        wid(tmp.path(), &all)
    };
    let serve = Serve::start_with(&sb, &["--plan", &plan.display().to_string()]);
    sandbox_aws(
        &sb,
        &[
            "iam",
            "create-role",
            "--role-name",
            "by-hand",
            "--assume-role-policy-document",
            PODS_TRUST,
        ],
    );
    sandbox_aws(
        &sb,
        &[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "prod",
            "--namespace",
            "shop",
            "--service-account",
            "orders",
            "--role-arn",
            "arn:aws:iam::111122223333:role/by-hand",
        ],
    );
    let association = || -> Value {
        let list: Value = serde_json::from_str(&sandbox_aws(
            &sb,
            &[
                "eks",
                "list-pod-identity-associations",
                "--cluster-name",
                "prod",
            ],
        ))
        .unwrap();
        let list = list["associations"].as_array().unwrap().clone();
        assert_eq!(list.len(), 1, "{list:?}");
        let id = list[0]["associationId"].as_str().unwrap().to_owned();
        serde_json::from_str::<Value>(&sandbox_aws(
            &sb,
            &[
                "eks",
                "describe-pod-identity-association",
                "--cluster-name",
                "prod",
                "--association-id",
                &id,
            ],
        ))
        .unwrap()["association"]
            .clone()
    };

    let conflict = run(&["apply", &p, "--auto-approve"]);
    expect_code(&conflict, 1);
    let text = stdout(&conflict);
    assert!(
        text.contains(&format!("exists but was not created by wid; set `aws.adopt = true` in workload prod/shop/orders ({p}:11:1) to take it over")),
        "{text}"
    );
    let live = association();
    assert_eq!(live["roleArn"], "arn:aws:iam::111122223333:role/by-hand");
    assert!(live["tags"].get(wid_core::PLAN_KEY).is_none(), "{live}");

    // The workload leaves the plan: prune has nothing of the plan's to delete there.
    std::fs::write(&plan, PODS.split("[[workload]]").next().unwrap()).unwrap();
    expect_code(&run(&["apply", &p, "--prune", "--auto-approve"]), 0);
    let live = association();
    assert_eq!(live["roleArn"], "arn:aws:iam::111122223333:role/by-hand");

    // Applying the hint takes it over (and keeps it).
    std::fs::write(&plan, format!("{PODS}aws.adopt = true\n")).unwrap();
    let adopt = run(&["plan", &p]);
    assert!(
        stdout(&adopt)
            .contains("adopt (exists without wid's mark; the plan sets aws.adopt = true)"),
        "{}",
        stdout(&adopt)
    );
    expect_code(&run(&["apply", &p, "--prune", "--auto-approve"]), 0);
    let live = association();
    assert_eq!(
        live["roleArn"],
        "arn:aws:iam::111122223333:role/pods-orders"
    );
    assert_eq!(live["tags"][wid_core::PLAN_KEY], "pods");
    drop(serve);
}
