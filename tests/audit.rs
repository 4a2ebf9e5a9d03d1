//! `wid audit` and `wid token` against the sandbox: the deliberately bad cluster in
//! examples/audit reports exactly its seeded problems, and the hardening plan fixes the
//! ones it can.

mod common;

use common::*;

/// `CHECK Kind/namespace/name` of every finding.
fn ids(report: &serde_json::Value) -> Vec<String> {
    findings(report)
        .into_iter()
        .map(|f| {
            let cols: Vec<&str> = f.split(' ').collect();
            format!("{} {}", cols[0], cols[2])
        })
        .collect()
}

/// `CHECK SEVERITY Kind/namespace/name` of every finding.
fn findings(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let r = &f["resource"];
            let ns = r["namespace"]
                .as_str()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            format!(
                "{} {} {}/{ns}{}",
                f["check_id"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// The findings listed in examples/audit/expected-findings.txt, as `CHECK SEVERITY
/// Kind/namespace/name`.
fn expected() -> Vec<String> {
    let text =
        std::fs::read_to_string(root().join("examples/audit/expected-findings.txt")).unwrap();
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect();
    v.sort();
    v
}

#[test]
fn the_bad_cluster_reports_its_seeded_problems_and_hardening_fixes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb").display().to_string();
    let root = root();
    let load = wid(
        &root,
        &[
            "sandbox",
            "load",
            "examples/audit/cluster.yaml",
            "--dir",
            &sb,
            "--cluster",
            "demo",
        ],
    );
    expect_code(&load, 0);

    let audit = |extra: &[&str]| {
        let mut args = vec!["audit", "--sandbox-dir", &sb, "--cluster", "demo"];
        args.extend_from_slice(extra);
        wid(&root, &args)
    };
    let json = audit(&["--output", "json"]);
    expect_code(&json, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let mut found = findings(&report);
    found.sort();
    // Exactly the file's list, severities included: the README points readers to it.
    assert_eq!(found, expected());

    let human = audit(&[]);
    expect_code(&human, 0);
    insta::assert_snapshot!("audit_bad_cluster", stdout(&human));
    expect_code(&audit(&["--fail-on", "critical"]), 3);

    let sarif = audit(&["--output", "sarif"]);
    expect_code(&sarif, 0);
    let sarif: serde_json::Value = serde_json::from_str(&stdout(&sarif)).unwrap();
    assert_eq!(sarif["version"], "2.1.0");

    let apply = wid(
        &root,
        &[
            "apply",
            "examples/audit/harden.toml",
            "--sandbox-dir",
            &sb,
            "--auto-approve",
        ],
    );
    expect_code(&apply, 0);
    let after = audit(&["--output", "json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&after)).unwrap();
    let after_ids = ids(&report);
    for fixed in [
        "SA001 ServiceAccount/shop/default",
        "SA001 ServiceAccount/billing/default",
        "SA002 Deployment/shop/storefront",
        "SA002 Deployment/billing/invoices",
        "SA005 Deployment/billing/invoices",
    ] {
        assert!(
            !after_ids.iter().any(|f| f == fixed),
            "{fixed} should be fixed: {after_ids:?}"
        );
    }
    insta::assert_snapshot!("audit_after_hardening", stdout(&audit(&[])));
}

#[test]
fn fail_on_and_explain() {
    let root = root();
    let explain = wid(&root, &["audit", "--explain", "SA002"]);
    expect_code(&explain, 0);
    assert!(stdout(&explain).contains("Fix"), "{}", stdout(&explain));
    let unknown = wid(&root, &["audit", "--explain", "SA999"]);
    expect_code(&unknown, 1);
    let manifests = wid(
        &root,
        &[
            "audit",
            "--manifests",
            "examples/audit/cluster.yaml",
            "--fail-on",
            "high",
        ],
    );
    expect_code(&manifests, 3);
}

#[test]
fn token_comes_from_token_request_with_audience_and_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb").display().to_string();
    let root = root();
    expect_code(
        &wid(
            &root,
            &[
                "sandbox",
                "load",
                "examples/audit/cluster.yaml",
                "--dir",
                &sb,
                "--cluster",
                "demo",
            ],
        ),
        0,
    );
    let out = wid(
        &root,
        &[
            "token",
            "shop/report-client",
            "--sandbox-dir",
            &sb,
            "--duration",
            "10m",
            "--audience",
            "https://ci.example.com",
        ],
    );
    expect_code(&out, 0);
    let token = stdout(&out).trim().to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "JWT-shaped: {token}");
    use base64::Engine as _;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["sub"], "system:serviceaccount:shop:report-client");
    assert_eq!(claims["aud"], serde_json::json!(["https://ci.example.com"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(
        !stderr(&out).contains(&token),
        "the token is printed on stdout only"
    );

    let short = wid(
        &root,
        &[
            "token",
            "shop/report-client",
            "--sandbox-dir",
            &sb,
            "--duration",
            "5m",
        ],
    );
    expect_code(&short, 1);
    assert!(stderr(&short).contains("10 minutes"), "{}", stderr(&short));
}

#[test]
fn cloud_trust_that_is_too_broad_is_flagged_with_cloud() {
    if !have("aws") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let sbs = sb.display().to_string();
    let root = root();
    expect_code(
        &wid(
            &root,
            &[
                "apply",
                "examples/eks",
                "--sandbox-dir",
                &sbs,
                "--auto-approve",
            ],
        ),
        0,
    );
    let audit = || {
        let out = wid(
            &root,
            &[
                "audit",
                "--sandbox-dir",
                &sbs,
                "--cluster",
                "eks-prod",
                "--cloud",
                "--plan",
                "examples/eks",
                "--output",
                "json",
            ],
        );
        expect_code(&out, 0);
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()
    };
    let sa009 = |report: &serde_json::Value| -> Vec<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check_id"] == "SA009")
            .map(|f| f["message"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        sa009(&audit()),
        Vec::<String>::new(),
        "wid's own trust policies are exact"
    );

    // Someone loosens orders-prod's trust to the whole namespace, behind wid's back.
    {
        let _serve = Serve::start(&sb);
        let role = sandbox_aws(&sb, &["iam", "get-role", "--role-name", "orders-prod"]);
        let role: serde_json::Value = serde_json::from_str(&role).unwrap();
        let trust = role["Role"]["AssumeRolePolicyDocument"].to_string();
        let loose = trust
            .replace("StringEquals", "StringLike")
            .replace("production:orders", "production:*");
        sandbox_aws(
            &sb,
            &[
                "iam",
                "update-assume-role-policy",
                "--role-name",
                "orders-prod",
                "--policy-document",
                &loose,
            ],
        );
    }
    let findings = sa009(&audit());
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("orders-prod"), "{findings:?}");
}
