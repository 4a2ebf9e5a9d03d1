//! Fault rules end to end: 401, 403 and quota answers in each API's shape, rules matched
//! by object, probabilities reproducible from a seed, `times` counted across runs, and
//! real clients (kubectl, the aws CLI) reading injected faults as they read real ones.

mod arm;
mod common;

use std::path::Path;
use std::process::Command;

use common::{ACCOUNT, Reply, TRUST, authorization, send};
use serde_json::{Value, json};
use wid_sandbox::{ClusterDecl, FaultAction, FaultRule, Sandbox};

async fn start(dir: &Path) -> Sandbox {
    let mut decls: Vec<ClusterDecl> = common::eks_dev();
    decls.extend(common::gke_prod());
    decls.extend(arm::aks_dev());
    Sandbox::start(dir, &decls).await.expect("sandbox")
}

async fn iam(sb: &Sandbox, params: &[(&str, &str)]) -> Reply {
    let mut all = params.to_vec();
    all.push(("Version", "2010-05-08"));
    let body = serde_urlencoded::to_string(&all).unwrap();
    let auth = authorization(ACCOUNT, "iam");
    send(
        &sb.cloud_url(),
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &auth),
        ],
        body.as_bytes(),
    )
    .await
}

async fn create_role(sb: &Sandbox, name: &str) -> Reply {
    iam(
        sb,
        &[
            ("Action", "CreateRole"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", TRUST),
        ],
    )
    .await
}

async fn k8s(sb: &Sandbox, method: &str, path: &str, body: Option<Value>) -> Reply {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    send(
        &sb.kube_url("eks-dev").expect("cluster"),
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
}

fn json(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

#[tokio::test]
async fn unauthorized_forbidden_and_quota_answers_take_each_apis_shape() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    for action in [
        FaultAction::Unauthorized,
        FaultAction::Forbidden,
        FaultAction::LimitExceeded,
    ] {
        for api in ["k8s:", "iam:", "eks:", "gcp:", "azure:"] {
            sb.inject(FaultRule::new(api, action.clone()).times(1));
        }
        let sa = k8s(
            &sb,
            "GET",
            "/api/v1/namespaces/default/serviceaccounts/default",
            None,
        )
        .await;
        let role = create_role(&sb, "denied").await;
        let cluster = common::eks(&sb, "GET", "/clusters/dev", None).await;
        let account = common::gcp(
            &sb,
            "POST",
            "/gcp/iam/v1/projects/acme-prod/serviceAccounts",
            Some(r#"{"accountId": "denied-sa"}"#),
        )
        .await;
        let identity = arm::Arm::new(&sb)
            .call(
                "PUT",
                &arm::identity_path("denied"),
                arm::MSI,
                Some(&json!({"location": "westeurope"})),
            )
            .await;
        let statuses = [
            sa.status,
            role.status,
            cluster.status,
            account.status,
            identity.status,
        ];
        match action {
            FaultAction::Unauthorized => {
                assert_eq!(statuses, [401, 403, 403, 401, 401]);
                assert_eq!(json(&sa)["reason"], "Unauthorized");
                assert!(
                    role.body.contains("<Code>InvalidClientTokenId</Code>"),
                    "{}",
                    role.body
                );
                assert_eq!(
                    cluster.header("x-amzn-errortype"),
                    Some("UnrecognizedClientException")
                );
                assert_eq!(json(&account)["error"]["status"], "UNAUTHENTICATED");
                assert_eq!(identity.code(), "InvalidAuthenticationToken");
                assert!(identity.header("www-authenticate").is_some());
            }
            FaultAction::Forbidden => {
                assert_eq!(statuses, [403; 5]);
                assert_eq!(
                    json(&sa)["message"],
                    "serviceaccounts \"default\" is forbidden: User \"sandbox\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"default\""
                );
                assert!(
                    role.body.contains("<Code>AccessDenied</Code><Message>User: arn:aws:iam::111122223333:user/sandbox is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::111122223333:role/denied because no identity-based policy allows the iam:CreateRole action</Message>"),
                    "{}",
                    role.body
                );
                assert_eq!(
                    cluster.header("x-amzn-errortype"),
                    Some("AccessDeniedException")
                );
                assert!(
                    json(&cluster)["message"]
                        .as_str()
                        .unwrap()
                        .contains("eks:DescribeCluster on resource: arn:aws:eks:us-east-1:111122223333:cluster/dev")
                );
                let error = &json(&account)["error"];
                assert_eq!(error["status"], "PERMISSION_DENIED");
                assert_eq!(
                    error["details"][0]["metadata"]["permission"],
                    "iam.serviceAccounts.create"
                );
                assert_eq!(identity.code(), "AuthorizationFailed");
                assert!(
                    identity.json()["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains(&format!(
                            "perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/write' over scope '{}'",
                            arm::identity_path("denied")
                        )),
                    "{}",
                    identity.body
                );
            }
            _ => {
                assert_eq!(statuses, [403, 409, 400, 429, 409]);
                assert!(
                    json(&sa)["message"]
                        .as_str()
                        .unwrap()
                        .contains("exceeded quota: object-counts")
                );
                assert!(
                    role.body.contains("<Code>LimitExceeded</Code><Message>Cannot exceed quota for RolesPerAccount: 1000</Message>"),
                    "{}",
                    role.body
                );
                assert_eq!(
                    cluster.header("x-amzn-errortype"),
                    Some("ResourceLimitExceededException")
                );
                assert_eq!(json(&account)["error"]["status"], "RESOURCE_EXHAUSTED");
                assert_eq!(identity.code(), "QuotaExceeded");
            }
        }
    }
    let state = sb.snapshot();
    assert!(state["aws"]["accounts"][ACCOUNT]["roles"]["denied"].is_null());
}

#[tokio::test]
async fn rules_match_by_object() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    sb.inject(FaultRule::new("iam:", FaultAction::Throttle).object("orders-*"));
    sb.inject(FaultRule::new("k8s:create", FaultAction::Conflict).object("eks-dev/default/team-*"));
    assert_eq!(create_role(&sb, "orders-prod").await.status, 400);
    assert_eq!(create_role(&sb, "billing").await.status, 200);
    assert_eq!(
        iam(&sb, &[("Action", "GetRole"), ("RoleName", "orders-dr")])
            .await
            .status,
        400
    );
    assert_eq!(
        iam(&sb, &[("Action", "ListRoles")]).await.status,
        200,
        "lists name no object"
    );
    let sa = |name: &str| json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
    let path = "/api/v1/namespaces/default/serviceaccounts";
    assert_eq!(k8s(&sb, "POST", path, Some(sa("team-a"))).await.status, 409);
    assert_eq!(k8s(&sb, "POST", path, Some(sa("other"))).await.status, 201);

    // Creations are matched by the name they create, on every API.
    sb.inject(FaultRule::new("gcp:", FaultAction::Conflict).object("orders-*"));
    sb.inject(FaultRule::new("eks:", FaultAction::Conflict).object("dev/production/orders*"));
    let create_sa = |id: &str| format!(r#"{{"accountId": "{id}"}}"#);
    let accounts = "/gcp/iam/v1/projects/acme-prod/serviceAccounts";
    let conflict = common::gcp(&sb, "POST", accounts, Some(&create_sa("orders-sa"))).await;
    assert_eq!(conflict.status, 409);
    let created = common::gcp(&sb, "POST", accounts, Some(&create_sa("billing-sa"))).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let associate = |sa: &str| {
        json!({"namespace": "production", "serviceAccount": sa,
               "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/billing")})
    };
    let associations = "/clusters/dev/pod-identity-associations";
    let conflict = common::eks(&sb, "POST", associations, Some(associate("orders"))).await;
    assert_eq!(conflict.status, 409);
    let created = common::eks(&sb, "POST", associations, Some(associate("billing"))).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = json(&created)["association"]["associationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.inject(FaultRule::new("eks:Describe", FaultAction::Throttle).object("production/billing"));
    let read = common::eks(&sb, "GET", &format!("{associations}/{id}"), None).await;
    assert_eq!(read.status, 429, "an association is named by its KSA");
}

/// The status of each of `n` GetRole calls on a fresh sandbox in `dir`.
async fn pattern(dir: &Path, n: usize) -> Vec<u16> {
    let sb = start(dir).await;
    assert_eq!(create_role(&sb, "r").await.status, 200);
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(
            iam(&sb, &[("Action", "GetRole"), ("RoleName", "r")])
                .await
                .status,
        );
    }
    statuses
}

fn faults_file(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("faults.json"), text).unwrap();
}

#[tokio::test]
async fn probabilities_fault_the_same_calls_for_the_same_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let rule = r#"{"api": "iam:GetRole", "action": "throttle", "probability": 0.5}"#;
    for (name, seed) in [("a", 42), ("b", 42), ("c", 7)] {
        faults_file(
            &tmp.path().join(name),
            &format!(r#"{{"seed": {seed}, "rules": [{rule}]}}"#),
        );
    }
    let a = pattern(&tmp.path().join("a"), 40).await;
    let b = pattern(&tmp.path().join("b"), 40).await;
    let c = pattern(&tmp.path().join("c"), 40).await;
    assert_eq!(a, b, "the same seed faults the same calls");
    assert_ne!(a, c, "another seed faults others");
    let throttled = a.iter().filter(|s| **s == 400).count();
    assert!(
        (8..=32).contains(&throttled),
        "{throttled} of 40 at 0.5: {a:?}"
    );
    assert!(a.iter().all(|s| *s == 200 || *s == 400));
}

#[tokio::test]
async fn times_are_counted_across_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    faults_file(
        &dir,
        r#"[{"api": "iam:GetRole", "action": "throttle", "times": 2}]"#,
    );
    {
        let sb = start(&dir).await;
        assert_eq!(create_role(&sb, "r").await.status, 200);
        assert_eq!(
            iam(&sb, &[("Action", "GetRole"), ("RoleName", "r")])
                .await
                .status,
            400
        );
    }
    let used: Value =
        serde_json::from_slice(&std::fs::read(dir.join("faults.used.json")).unwrap()).unwrap();
    assert_eq!(
        used,
        json!([{"rule": {"api": "iam:GetRole", "action": "throttle", "times": 2},
                "matched": 1, "fired": 1}])
    );
    {
        let sb = start(&dir).await;
        let get = || iam(&sb, &[("Action", "GetRole"), ("RoleName", "r")]);
        assert_eq!(get().await.status, 400, "one time was left");
        assert_eq!(get().await.status, 200, "then none");
        assert_eq!(sb.shared().faults()[0].1.fired, 2);
    }
    let sb = start(&dir).await;
    assert_eq!(
        iam(&sb, &[("Action", "GetRole"), ("RoleName", "r")])
            .await
            .status,
        200,
        "spent for good"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("faults.json")).unwrap(),
        r#"[{"api": "iam:GetRole", "action": "throttle", "times": 2}]"#,
        "the rules file is the user's: never rewritten"
    );
}

#[tokio::test]
async fn a_bad_faults_file_stops_the_start_and_names_the_rule() {
    let tmp = tempfile::tempdir().unwrap();
    faults_file(
        tmp.path(),
        r#"[{"api": "iam:", "action": "throttle"}, {"api": "k8s:", "action": "drop", "objet": "x"}]"#,
    );
    let err = Sandbox::start(tmp.path(), &[]).await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("faults.json: rule 2: unknown key `objet`"),
        "{text}"
    );
}

#[tokio::test]
async fn a_write_just_before_the_sandbox_stops_is_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = start(tmp.path()).await;
    assert_eq!(create_role(&sb, "last-second").await.status, 200);
    drop(sb);
    let state = wid_sandbox::read_state(tmp.path()).unwrap();
    assert!(state["aws"]["accounts"][ACCOUNT]["roles"]["last-second"].is_object());

    // While running, `flush` puts every change on disk at once.
    let sb = start(tmp.path()).await;
    assert_eq!(create_role(&sb, "flushed").await.status, 200);
    sb.flush().unwrap();
    let on_disk = wid_sandbox::read_state(tmp.path()).unwrap();
    assert_eq!(on_disk, sb.snapshot());
    let before = sb.snapshot();
    assert_eq!(create_role(&sb, "after").await.status, 200);
    let changes = wid_sandbox::json_diff(&before, &sb.snapshot());
    assert!(
        changes.iter().all(|c| c
            .path
            .starts_with(&format!("/aws/accounts/{ACCOUNT}/roles/after"))),
        "{changes:?}"
    );
    assert_eq!(changes.len(), 1);
}

fn have(tool: &str, version_args: &[&str]) -> bool {
    let found = Command::new(tool)
        .args(version_args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: {tool} not found on PATH; this test needs it and did not run");
    }
    found
}

/// Runs a command off the async runtime (the sandbox serves on this test's runtime).
async fn run(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().expect("runs"))
        .await
        .expect("task")
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_reads_an_injected_denial_as_it_reads_rbacs() {
    if !have("kubectl", &["version", "--client"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = start(tmp.path()).await;
    sb.write_client_files().unwrap();
    sb.inject(FaultRule::new(
        "k8s:list serviceaccounts",
        FaultAction::Forbidden,
    ));
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(tmp.path().join("kubeconfig"))
        .args(["--context", "eks-dev", "-n", "default", "get", "sa"]);
    let out = run(command).await;
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (Forbidden): serviceaccounts is forbidden: User \"sandbox\" cannot list resource \"serviceaccounts\" in API group \"\" in the namespace \"default\""
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_retries_a_dropped_connection_and_reports_a_denial() {
    if !have("aws", &["--version"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = start(tmp.path()).await;
    sb.write_client_files().unwrap();
    assert_eq!(create_role(&sb, "orders").await.status, 200);
    let env: Vec<(String, String)> = std::fs::read_to_string(tmp.path().join("env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let aws = |args: &[&str]| {
        let mut command = Command::new("aws");
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("AWS_CONFIG_FILE", tmp.path().join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                tmp.path().join("no-credentials"),
            )
            .args(args)
            .args(["--output", "json"]);
        command
    };

    sb.inject(FaultRule::new("iam:GetRole", FaultAction::Drop).times(1));
    let out = run(aws(&["iam", "get-role", "--role-name", "orders"])).await;
    assert!(
        out.status.success(),
        "the CLI retries a dropped connection: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sb.calls()["iam:GetRole"], 2);

    sb.inject(FaultRule::new("iam:GetRole", FaultAction::Forbidden).object("orders"));
    let out = run(aws(&["iam", "get-role", "--role-name", "orders"])).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("An error occurred (AccessDenied) when calling the GetRole operation: User: arn:aws:iam::111122223333:user/sandbox is not authorized to perform: iam:GetRole on resource: arn:aws:iam::111122223333:role/orders"),
        "{stderr}"
    );
}
