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
/// [`expected`] without severities: `CHECK Kind/namespace/name`, as [`ids`] gives them.
fn expected_ids() -> Vec<String> {
    let mut v: Vec<String> = expected()
        .into_iter()
        .map(|e| {
            let cols: Vec<&str> = e.split(' ').collect();
            format!("{} {}", cols[0], cols[2])
        })
        .collect();
    v.sort();
    v
}

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

/// Runs `wid ARGS` in `cwd` with `input` on stdin.
fn wid_stdin(cwd: &std::path::Path, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wid"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// The SARIF 2.1.0 schema vendored with the audit crate's tests.
fn sarif_errors(doc: &serde_json::Value) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("audit/tests/data/sarif-2.1.0.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

#[test]
fn explain_prints_each_checks_page() {
    let root = root();
    for id in [
        "SA001", "SA002", "SA003", "SA004", "SA005", "SA006", "SA007", "SA008", "SA009",
    ] {
        let out = wid(&root, &["audit", "--explain", id]);
        expect_code(&out, 0);
        let page = std::fs::read_to_string(root.join(format!("docs/checks/{id}.md")))
            .unwrap_or_else(|_| panic!("docs/checks/{id}.md is missing"));
        assert_eq!(stdout(&out), page, "{id}: --explain and the page disagree");
    }
}

/// A multi-document manifest: the line numbers below are asserted literally.
const APP: &str = "\
# shop manifests
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      automountServiceAccountToken: true
      containers:
      - name: web
        image: web:1.0
---
apiVersion: v1
kind: Secret
metadata:
  name: legacy
  namespace: shop
  annotations:
    kubernetes.io/service-account.name: default
type: kubernetes.io/service-account-token
";

#[test]
fn sarif_from_manifests_points_at_the_manifest_lines() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("k8s")).unwrap();
    std::fs::write(tmp.path().join("k8s/app.yaml"), APP).unwrap();
    let out = wid(
        tmp.path(),
        &["audit", "--manifests", "k8s/app.yaml", "--output", "sarif"],
    );
    expect_code(&out, 0);
    let doc = json_of(&out);
    assert_eq!(sarif_errors(&doc), Vec::<String>::new());
    let mut got: Vec<(String, String, i64, i64)> = doc["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let p = &r["locations"][0]["physicalLocation"];
            (
                r["ruleId"].as_str().unwrap().to_owned(),
                p["artifactLocation"]["uri"].as_str().unwrap().to_owned(),
                p["region"]["startLine"].as_i64().unwrap(),
                p["region"]["startColumn"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let at = |id: &str, line, col| (id.to_owned(), "k8s/app.yaml".to_owned(), line, col);
    assert_eq!(
        got,
        vec![
            // The default SA leaves automount unset: its document's first line.
            at("SA001", 2, 1),
            // automountServiceAccountToken: true in the pod template.
            at("SA002", 20, 7),
            // serviceAccountName is absent: the pod spec it belongs in.
            at("SA003", 19, 5),
            // The Secret's type.
            at("SA006", 32, 1),
        ]
    );
    // An absolute path inside the working directory is cited relative to it.
    let abs = tmp.path().join("k8s/app.yaml").display().to_string();
    let out = wid(
        tmp.path(),
        &["audit", "--manifests", &abs, "--output", "sarif"],
    );
    let doc = json_of(&out);
    assert_eq!(
        doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "k8s/app.yaml"
    );
}

#[test]
fn manifests_from_stdin() {
    let root = root();
    let out = wid_stdin(
        &root,
        &["audit", "--manifests", "-", "--output", "json"],
        APP,
    );
    expect_code(&out, 0);
    let doc = json_of(&out);
    let mut found = ids(&doc);
    found.sort();
    assert_eq!(
        found,
        vec![
            "SA001 ServiceAccount/shop/default",
            "SA002 Deployment/shop/web",
            "SA003 Deployment/shop/web",
            "SA006 Secret/shop/legacy",
        ]
    );
    let sa002 = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check_id"] == "SA002")
        .unwrap();
    assert_eq!(
        sa002["location"],
        serde_json::json!({"path": "<stdin>", "line": 20, "column": 7})
    );
    // stdin is no file: SARIF keeps the logical location only.
    let sarif = wid_stdin(
        &root,
        &["audit", "--manifests", "-", "--output", "sarif"],
        APP,
    );
    let doc = json_of(&sarif);
    assert!(
        doc["runs"][0]["results"][0]["locations"][0]
            .get("physicalLocation")
            .is_none()
    );
    // Human output cites stdin lines.
    let human = wid_stdin(&root, &["audit", "--manifests", "-"], APP);
    assert!(
        stdout(&human).contains("at:  <stdin>:20:7"),
        "{}",
        stdout(&human)
    );
}

const BATCH: &str = "\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: batch
  annotations:
    wid.dev/audit-accept: \"SA001 until 2099-12-31: batch jobs use the default token until the 2027 migration; ticket OPS-123\"
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: batch
  annotations:
    wid.dev/audit-accept: |
      SA002, SA003 until 2020-01-31: waiting for the new batch runner
      SA007: this job projects no token
      SA0X2: typo
spec:
  schedule: \"0 3 * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: job
            image: job:1.0
---
apiVersion: v1
kind: Secret
metadata:
  name: old-token
  namespace: batch
  annotations:
    kubernetes.io/service-account.name: default
type: kubernetes.io/service-account-token
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web:1.0
";

const EXCEPTIONS: &str = "\
# Accepted audit findings, reviewed like code.

[[accept]]
check = \"SA006\"
namespace = \"batch\"
kind = \"Secret\"
name = \"old-*\"
reason = \"rotated out by the 2027 migration; ticket OPS-124\"
expires = 2099-12-31

[[accept]]
check = [\"SA002\", \"SA003\"]
namespace = \"shop\"
name = \"web\"
reason = \"legacy web tier\"
expires = 2020-06-30

[[accept]]
check = \"SA008\"
namespace = \"batch\"
reason = \"no cloud keys here any more\"
expires = 2099-12-31
";

fn accept_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("k8s")).unwrap();
    std::fs::write(tmp.path().join("k8s/batch.yaml"), BATCH).unwrap();
    std::fs::write(tmp.path().join("audit-exceptions.toml"), EXCEPTIONS).unwrap();
    tmp
}

#[test]
fn acceptances_suppress_exactly_their_findings_expired_ones_do_not_and_stale_ones_warn() {
    let tmp = accept_dir();
    let dir = tmp.path();
    let audit = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            "--manifests",
            "k8s/batch.yaml",
            "--exceptions",
            "audit-exceptions.toml",
        ];
        args.extend_from_slice(extra);
        wid(dir, &args)
    };
    let out = audit(&["--output", "json", "--fail-on", "high"]);
    // The high SA003 findings' acceptances have expired: they count again.
    expect_code(&out, 3);
    let doc = json_of(&out);
    let mut active = ids(&doc);
    active.sort();
    assert_eq!(
        active,
        vec![
            "SA002 CronJob/batch/nightly",
            "SA002 Deployment/shop/web",
            "SA003 CronJob/batch/nightly",
            "SA003 Deployment/shop/web",
        ]
    );
    let accepted: Vec<(String, String, String, String)> = doc["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["check_id"].as_str().unwrap().to_owned(),
                a["acceptance"]["source"].as_str().unwrap().to_owned(),
                a["acceptance"]["expires"].as_str().unwrap().to_owned(),
                a["acceptance"]["origin"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        accepted,
        vec![
            (
                "SA001".into(),
                "annotation".into(),
                "2099-12-31".into(),
                "k8s/batch.yaml:7:5 (ServiceAccount batch/default)".into()
            ),
            (
                "SA006".into(),
                "file".into(),
                "2099-12-31".into(),
                "audit-exceptions.toml:3:1".into()
            ),
        ]
    );
    assert_eq!(doc["counts"]["accepted"], 2);
    assert_eq!(doc["counts"]["total"], 4);
    let expired: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}",
                f["check_id"].as_str().unwrap(),
                f["resource"]["name"].as_str().unwrap(),
                f["expired_acceptance"]["expires"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        expired,
        vec![
            "SA003 nightly 2020-01-31",
            "SA003 web 2020-06-30",
            "SA002 nightly 2020-01-31",
            "SA002 web 2020-06-30",
        ]
    );
    let warnings: Vec<String> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "{} {}",
                w["kind"].as_str().unwrap(),
                w["origin"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        warnings,
        vec![
            "stale_acceptance k8s/batch.yaml:15:5 (CronJob batch/nightly)",
            "stale_acceptance audit-exceptions.toml:18:1",
            "expired_acceptance k8s/batch.yaml:15:5 (CronJob batch/nightly)",
            "expired_acceptance audit-exceptions.toml:11:1",
            "expired_acceptance k8s/batch.yaml:15:5 (CronJob batch/nightly)",
            "expired_acceptance audit-exceptions.toml:11:1",
            "invalid_annotation k8s/batch.yaml:15:5 (CronJob batch/nightly)",
        ]
    );
    // Every warning also reaches stderr, whatever the output format.
    insta::assert_snapshot!("audit_acceptance_warnings", stderr(&out));

    // SARIF: accepted findings are suppressed results (inSource for the annotation,
    // external for the file), valid against the SARIF 2.1.0 schema.
    let sarif = json_of(&audit(&["--output", "sarif"]));
    assert_eq!(sarif_errors(&sarif), Vec::<String>::new());
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let suppressed: Vec<(String, String, String)> = results
        .iter()
        .filter_map(|r| {
            let s = r.get("suppressions")?;
            Some((
                r["ruleId"].as_str().unwrap().to_owned(),
                s[0]["kind"].as_str().unwrap().to_owned(),
                s[0]["justification"].as_str().unwrap().to_owned(),
            ))
        })
        .collect();
    assert_eq!(
        suppressed,
        vec![
            (
                "SA001".into(),
                "inSource".into(),
                "batch jobs use the default token until the 2027 migration; ticket OPS-123 (accepted until 2099-12-31)".into()
            ),
            (
                "SA006".into(),
                "external".into(),
                "rotated out by the 2027 migration; ticket OPS-124 (accepted until 2099-12-31)".into()
            ),
        ]
    );
    let notes = sarif["runs"][0]["invocations"][0]["toolConfigurationNotifications"]
        .as_array()
        .unwrap();
    assert_eq!(notes.len(), 7);

    // Human output counts accepted findings; --show-accepted lists them.
    let human = audit(&[]);
    assert!(
        stdout(&human).contains("4 findings (0 critical, 2 high, 2 medium, 0 low) from 9 checks; 2 accepted (--show-accepted lists them)."),
        "{}",
        stdout(&human)
    );
    assert!(!stdout(&human).contains("ACCEPTED"));
    insta::assert_snapshot!("audit_show_accepted", stdout(&audit(&["--show-accepted"])));
}

#[test]
fn accepted_findings_never_count_toward_fail_on() {
    let tmp = accept_dir();
    let dir = tmp.path();
    std::fs::write(
        dir.join("all.toml"),
        "[[accept]]\ncheck = [\"SA001\", \"SA002\", \"SA003\", \"SA006\"]\nnamespace = \"*\"\nreason = \"r\"\nexpires = 2099-12-31\n",
    )
    .unwrap();
    // A bare `*` is refused, with its place in the file.
    let out = wid(
        dir,
        &[
            "audit",
            "--manifests",
            "k8s/batch.yaml",
            "--exceptions",
            "all.toml",
        ],
    );
    expect_code(&out, 1);
    assert!(stderr(&out).contains("all.toml:3:13"), "{}", stderr(&out));
    std::fs::write(
        dir.join("all.toml"),
        "[[accept]]\ncheck = [\"SA001\", \"SA002\", \"SA003\", \"SA006\"]\nnamespace = \"b*\"\nreason = \"r\"\nexpires = 2099-12-31\n\n[[accept]]\ncheck = [\"SA002\", \"SA003\"]\nnamespace = \"shop\"\nname = \"web\"\nreason = \"r\"\nexpires = 2099-12-31\n",
    )
    .unwrap();
    let args = [
        "audit",
        "--manifests",
        "k8s/batch.yaml",
        "--exceptions",
        "all.toml",
        "--fail-on",
        "low",
        "--output",
        "json",
    ];
    let out = wid(dir, &args);
    expect_code(&out, 0);
    let doc = json_of(&out);
    assert_eq!(doc["counts"]["total"], 0);
    assert_eq!(doc["counts"]["accepted"], 6);
    // Without the file the same manifests fail.
    expect_code(
        &wid(
            dir,
            &["audit", "--manifests", "k8s/batch.yaml", "--fail-on", "low"],
        ),
        3,
    );
}

#[test]
fn an_invalid_exceptions_file_is_located_and_nothing_is_audited() {
    let tmp = accept_dir();
    let dir = tmp.path();
    std::fs::write(
        dir.join("bad.toml"),
        "[[accept]]\ncheck = \"SA010\"\nnamespace = \"shop\"\nreasn = \"typo\"\nexpires = \"2027-03-31\"\n",
    )
    .unwrap();
    let out = wid(
        dir,
        &[
            "audit",
            "--manifests",
            "k8s/batch.yaml",
            "--exceptions",
            "bad.toml",
        ],
    );
    expect_code(&out, 1);
    assert_eq!(stdout(&out), "", "nothing is audited");
    insta::assert_snapshot!("audit_bad_exceptions", stderr(&out));
}

const WEB: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: web
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: web
automountServiceAccountToken: false
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: frontend
  namespace: web
---
apiVersion: v1
kind: Pod
metadata:
  name: frontend
  namespace: web
spec:
  serviceAccountName: frontend
  containers:
  - name: app
    image: frontend:1.0
";

/// A sandbox with the bad example cluster as `a` and a small, mostly hardened one as `b`.
fn two_cluster_sandbox() -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb").display().to_string();
    std::fs::write(tmp.path().join("web.yaml"), WEB).unwrap();
    let web = tmp.path().join("web.yaml").display().to_string();
    let root = root();
    for (file, cluster) in [("examples/audit/cluster.yaml", "a"), (web.as_str(), "b")] {
        let load = wid(
            &root,
            &["sandbox", "load", file, "--dir", &sb, "--cluster", cluster],
        );
        expect_code(&load, 0);
    }
    (tmp, sb)
}

fn cluster_ids(doc: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .zip(ids(doc))
        .map(|(f, id)| format!("{} {id}", f["cluster"].as_str().unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn two_clusters_in_one_run() {
    let (_tmp, sb) = two_cluster_sandbox();
    let root = root();
    let audit = |extra: &[&str]| {
        let mut args = vec!["audit", "--sandbox-dir", &sb];
        args.extend_from_slice(extra);
        wid(&root, &args)
    };
    let out = audit(&["--cluster", "a", "--cluster", "b", "--output", "json"]);
    expect_code(&out, 0);
    let doc = json_of(&out);
    assert_eq!(doc["clusters"], serde_json::json!(["a", "b"]));
    let found = cluster_ids(&doc);
    let mut want: Vec<String> = expected_ids()
        .into_iter()
        .map(|e| format!("a {e}"))
        .collect();
    want.push("b SA001 ServiceAccount/default/default".into());
    want.push("b SA002 Pod/web/frontend".into());
    want.sort();
    assert_eq!(found, want);

    // Human output: one block per cluster, then the total.
    insta::assert_snapshot!(
        "audit_two_clusters",
        stdout(&audit(&[
            "--cluster",
            "a",
            "--cluster",
            "b",
            "--namespace",
            "web",
            "--namespace",
            "shop"
        ]))
    );

    // SARIF: one run; the cluster in each result's properties and logical location.
    let sarif = json_of(&audit(&[
        "--cluster",
        "a",
        "--cluster",
        "b",
        "--output",
        "sarif",
    ]));
    assert_eq!(sarif_errors(&sarif), Vec::<String>::new());
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0]["properties"]["clusters"],
        serde_json::json!(["a", "b"])
    );
    let frontend = runs[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "SA002" && r["properties"]["cluster"] == "b")
        .unwrap();
    assert_eq!(
        frontend["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "b/web/Pod/frontend"
    );

    // The exit code is over all clusters: only `a` has critical findings.
    expect_code(
        &audit(&["--cluster", "a", "--cluster", "b", "--fail-on", "critical"]),
        3,
    );
    expect_code(&audit(&["--cluster", "b", "--fail-on", "critical"]), 0);
    // A cluster the sandbox does not have is refused before anything is read.
    let missing = audit(&["--cluster", "a", "--cluster", "c"]);
    expect_code(&missing, 1);
    assert!(
        stderr(&missing).contains("no cluster `c`"),
        "{}",
        stderr(&missing)
    );

    // The same two clusters as kubeconfig contexts of `wid sandbox serve`.
    let serve = Serve::start(std::path::Path::new(&sb));
    let kubeconfig = serve.dir.join("kubeconfig").display().to_string();
    let out = wid(
        &root,
        &[
            "audit",
            "--kubeconfig",
            &kubeconfig,
            "--context",
            "a",
            "--context",
            "b",
            "--output",
            "json",
        ],
    );
    expect_code(&out, 0);
    let doc = json_of(&out);
    assert_eq!(doc["clusters"], serde_json::json!(["a", "b"]));
    assert_eq!(cluster_ids(&doc), want);
}

#[test]
fn namespace_filter_live_and_manifests() {
    let (_tmp, sb) = two_cluster_sandbox();
    let root = root();
    let out = wid(
        &root,
        &[
            "audit",
            "--sandbox-dir",
            &sb,
            "--cluster",
            "a",
            "--namespace",
            "billing",
            "--output",
            "json",
        ],
    );
    expect_code(&out, 0);
    let mut found = ids(&json_of(&out));
    found.sort();
    let billing: Vec<String> = expected_ids()
        .into_iter()
        .filter(|e| e.contains("/billing/"))
        .collect();
    assert!(billing.len() >= 6, "{billing:?}");
    assert_eq!(found, billing);

    // Manifests: the objects of the other namespaces (and `default`) are left out.
    let out = wid(
        &root,
        &[
            "audit",
            "--manifests",
            "examples/audit/cluster.yaml",
            "-n",
            "shop",
            "--output",
            "json",
        ],
    );
    expect_code(&out, 0);
    let mut found = ids(&json_of(&out));
    found.sort();
    let shop: Vec<String> = expected_ids()
        .into_iter()
        .filter(|e| e.contains("/shop/"))
        .collect();
    assert_eq!(found, shop);
}
