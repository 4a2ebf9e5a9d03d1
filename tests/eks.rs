//! EKS through the CLI: examples/eks converges on the sandbox, and an IRSA plan goes
//! plan → apply → no changes → drift (made with the aws CLI) → fix → prune against moto.

mod common;

use common::*;

/// Runs `wid ARGS --sandbox-dir SB` from the repo root.
fn sandboxed(sb: &str, args: &[&str]) -> std::process::Output {
    let mut all = args.to_vec();
    all.extend(["--sandbox-dir", sb]);
    wid(&root(), &all)
}

#[test]
fn the_eks_example_converges_on_the_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb").display().to_string();
    let first = sandboxed(&sb, &["plan", "examples/eks", "--detailed-exitcode"]);
    expect_code(&first, 2);
    insta::assert_snapshot!("eks_first_plan", stdout(&first));
    let apply = sandboxed(&sb, &["apply", "examples/eks", "--auto-approve"]);
    expect_code(&apply, 0);
    let again = sandboxed(&sb, &["plan", "examples/eks", "--detailed-exitcode"]);
    expect_code(&again, 0);
    assert!(stdout(&again).contains("No changes."), "{}", stdout(&again));
}

#[test]
fn injected_throttling_is_retried_and_apply_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    std::fs::create_dir_all(&sb).unwrap();
    // Every IAM write is throttled twice before it goes through.
    std::fs::write(
        sb.join("faults.json"),
        r#"[{"api": "iam:CreateRole", "action": "throttle", "times": 4},
            {"api": "iam:AttachRolePolicy", "action": "throttle", "times": 2},
            {"api": "iam:CreateOpenIDConnectProvider", "action": "throttle", "times": 2}]"#,
    )
    .unwrap();
    let sb = sb.display().to_string();
    let apply = sandboxed(&sb, &["apply", "examples/eks", "--auto-approve"]);
    expect_code(&apply, 0);
    assert!(
        stderr(&apply).contains("throttled"),
        "retries are shown:\n{}",
        stderr(&apply)
    );
    let again = sandboxed(&sb, &["plan", "examples/eks", "--detailed-exitcode"]);
    expect_code(&again, 0);
}

const MOTO_PLAN: &str = r#"version = 1
name = "moto-irsa"

[clusters.prod]
kind = "eks"
account = "123456789012"
region = "us-east-1"
name = "prod"
issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
create_namespaces = true

[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "orders"
aws.role = "orders"
aws.managed_policies = ["arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"]
aws.inline_policies.s3 = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::orders/*"}]}'
aws.tags = { team = "shop" }

[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "reports"
aws.role = "reports"
aws.managed_policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
"#;

#[test]
fn irsa_against_moto_plan_apply_drift_fix_prune() {
    let Some(moto) = Moto::start() else { return };
    if !have("aws") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, MOTO_PLAN).unwrap();
    let p = plan.display().to_string();
    let sb = tmp.path().join("sb").display().to_string();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--sandbox-dir", &sb]);
        moto.wid(tmp.path(), &all)
    };

    expect_code(&run(&["plan", &p, "--detailed-exitcode"]), 2);
    expect_code(&run(&["apply", &p, "--auto-approve"]), 0);
    let clean = run(&["plan", &p, "--detailed-exitcode"]);
    expect_code(&clean, 0);

    // The trust policy wid wrote is the documented IRSA form, as data.
    let role: serde_json::Value =
        serde_json::from_str(&moto.aws(&["iam", "get-role", "--role-name", "orders"])).unwrap();
    let issuer = "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF";
    let documented = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::123456789012:oidc-provider/{issuer}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            format!("{issuer}:aud"): "sts.amazonaws.com",
            format!("{issuer}:sub"): "system:serviceaccount:shop:orders"}}}]});
    let written =
        wid_aws::normalize_policy(&role["Role"]["AssumeRolePolicyDocument"].to_string()).unwrap();
    assert_eq!(
        written,
        wid_aws::normalize_policy(&documented.to_string()).unwrap()
    );

    // Drift behind wid's back: an extra managed policy, an edited trust, a removed tag.
    moto.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "orders",
        "--policy-arn",
        "arn:aws:iam::aws:policy/AmazonS3FullAccess",
    ]);
    let loose = documented
        .to_string()
        .replace("StringEquals", "StringLike")
        .replace("shop:orders", "shop:*");
    moto.aws(&[
        "iam",
        "update-assume-role-policy",
        "--role-name",
        "orders",
        "--policy-document",
        &loose,
    ]);
    moto.aws(&[
        "iam",
        "untag-role",
        "--role-name",
        "orders",
        "--tag-keys",
        "team",
    ]);
    let drift = run(&["plan", &p, "--detailed-exitcode"]);
    expect_code(&drift, 2);
    let text = stdout(&drift);
    for attr in ["managed_policies:", "trust_policy:", "tags:"] {
        assert!(text.contains(attr), "{attr} drift missing:\n{text}");
    }
    insta::with_settings!({filters => vec![(r"\(/[^)]*plan.toml", "(PLAN")]}, {
        insta::assert_snapshot!("moto_drift_plan", text);
    });
    expect_code(&run(&["apply", &p, "--auto-approve"]), 0);
    expect_code(&run(&["plan", &p, "--detailed-exitcode"]), 0);

    // An unowned role of the same name as a new workload's is a conflict, untouched.
    moto.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "hand-made",
        "--assume-role-policy-document",
        &documented.to_string(),
    ]);
    let with_conflict = format!(
        "{MOTO_PLAN}\n[[workload]]\ncluster = \"prod\"\nnamespace = \"shop\"\nservice_account = \"legacy\"\naws.role = \"hand-made\"\n"
    );
    std::fs::write(&plan, &with_conflict).unwrap();
    let conflict = run(&["apply", &p, "--auto-approve"]);
    expect_code(&conflict, 1);
    assert!(
        stdout(&conflict).contains("adopt = true"),
        "{}",
        stdout(&conflict)
    );
    let tags = moto.aws(&["iam", "list-role-tags", "--role-name", "hand-made"]);
    assert!(
        !tags.contains("wid"),
        "an unowned role is never re-tagged: {tags}"
    );

    // The reports workload leaves the plan: prune deletes its role and nothing else.
    let without_reports = MOTO_PLAN[..MOTO_PLAN
        .find(
            "[[workload]]\ncluster = \"prod\"\nnamespace = \"shop\"\nservice_account = \"reports\"",
        )
        .unwrap()]
        .to_owned();
    std::fs::write(&plan, &without_reports).unwrap();
    let prune = run(&["plan", &p, "--prune", "--detailed-exitcode"]);
    expect_code(&prune, 2);
    let text = stdout(&prune);
    assert!(
        text.contains("- aws/iam-role/123456789012/reports"),
        "{text}"
    );
    assert!(!text.contains("hand-made"), "{text}");
    expect_code(&run(&["apply", &p, "--prune", "--auto-approve"]), 0);
    expect_code(&run(&["plan", &p, "--prune", "--detailed-exitcode"]), 0);
    let roles = moto.aws(&["iam", "list-roles"]);
    assert!(!roles.contains("\"reports\""), "{roles}");
    assert!(
        roles.contains("hand-made") && roles.contains("\"orders\""),
        "{roles}"
    );
}

#[test]
fn the_aws_cli_works_against_wid_sandbox_serve() {
    if !have("aws") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let sbs = sb.display().to_string();
    expect_code(
        &sandboxed(&sbs, &["apply", "examples/eks", "--auto-approve"]),
        0,
    );
    let _serve = Serve::start(&sb);
    let role: serde_json::Value = serde_json::from_str(&sandbox_aws(
        &sb,
        &["iam", "get-role", "--role-name", "orders-prod"],
    ))
    .unwrap();
    assert_eq!(
        role["Role"]["Arn"],
        "arn:aws:iam::111122223333:role/orders-prod"
    );
    let attached = sandbox_aws(
        &sb,
        &[
            "iam",
            "list-attached-role-policies",
            "--role-name",
            "orders-prod",
        ],
    );
    assert!(attached.contains("AmazonSQSReadOnlyAccess"), "{attached}");
    let providers = sandbox_aws(&sb, &["iam", "list-open-id-connect-providers"]);
    assert!(
        providers.contains("oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/"),
        "{providers}"
    );
    let cluster: serde_json::Value = serde_json::from_str(&sandbox_aws(
        &sb,
        &["eks", "describe-cluster", "--name", "prod"],
    ))
    .unwrap();
    let issuer = cluster["cluster"]["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        providers.contains(issuer.trim_start_matches("https://")),
        "{issuer} vs {providers}"
    );
}

#[test]
fn a_failed_apply_reports_what_happened_and_a_rerun_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    std::fs::create_dir_all(&sb).unwrap();
    // The attach of orders-prod's managed policy fails for good (more 5xx than retries).
    std::fs::write(
        sb.join("faults.json"),
        r#"[{"api": "iam:AttachRolePolicy", "action": "server-error", "times": 50}]"#,
    )
    .unwrap();
    let sbs = sb.display().to_string();
    let failed = sandboxed(&sbs, &["apply", "examples/eks", "--auto-approve"]);
    expect_code(&failed, 1);
    let out = stdout(&failed);
    assert!(out.contains("Apply incomplete:"), "{out}");
    assert!(out.contains("failed after 6 attempt(s)"), "{out}");
    assert!(
        out.contains("skipped: it depends on aws/iam-role/111122223333/orders-prod"),
        "{out}"
    );
    assert!(
        stderr(&failed).contains("apply did not complete"),
        "{}",
        stderr(&failed)
    );

    std::fs::remove_file(sb.join("faults.json")).unwrap();
    let partial = sandboxed(&sbs, &["plan", "examples/eks", "--detailed-exitcode"]);
    expect_code(&partial, 2);
    assert!(
        !stdout(&partial).contains("+ aws/iam-oidc-provider"),
        "done work stays done:\n{}",
        stdout(&partial)
    );
    expect_code(
        &sandboxed(&sbs, &["apply", "examples/eks", "--auto-approve"]),
        0,
    );
    expect_code(
        &sandboxed(&sbs, &["plan", "examples/eks", "--detailed-exitcode"]),
        0,
    );
}
