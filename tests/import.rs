//! `wid import` round trips on a served sandbox: objects made by hand with the clouds' own
//! clients (kubectl, the aws CLI, gcloud, Microsoft's Python SDKs) → `wid import` → the plan
//! validates, `wid plan --detailed-exitcode` exits 0, and `wid apply` makes no call that
//! writes. Also: what wid applied itself imports as its own (no `adopt`), and
//! `--namespace` limits what is read.

mod common;
#[path = "import/support.rs"]
mod support;

use common::*;
use support::{Served, round_trip};

const EKS: &str = r#"
version = 1
name = "clusters"

[clusters.eks-prod]
kind = "eks"
account = "111122223333"
region = "us-east-1"
name = "prod"
"#;

const GKE: &str = r#"
version = 1
name = "clusters"

[clusters.gke-prod]
kind = "gke"
project = "acme-prod"
location = "us-central1"
name = "prod"
project_number = "123456789012"
"#;

const AKS_SUB: &str = "6d9a1f3e-2b7c-4e58-9a01-3c5d7e9f1b24";

fn aks_clusters() -> String {
    format!(
        r#"
version = 1
name = "clusters"

[clusters.aks-prod]
kind = "aks"
subscription = "{AKS_SUB}"
tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
resource_group = "rg-aks-prod"
name = "aks-prod"
"#
    )
}

/// The tools a round trip drives; a loud skip when one is missing.
fn tools(names: &[&str]) -> bool {
    for t in names {
        if !have(t) {
            eprintln!("SKIPPED: `{t}` is not installed; this import round trip needs it");
            return false;
        }
    }
    true
}

/// The cluster's OIDC issuer as EKS describes it.
fn eks_issuer(s: &Served) -> String {
    let out = s.aws(&[
        "eks",
        "describe-cluster",
        "--name",
        "prod",
        "--region",
        "us-east-1",
        "--query",
        "cluster.identity.oidc.issuer",
        "--output",
        "text",
    ]);
    out.trim().to_owned()
}

#[test]
fn eks_roles_and_associations_made_by_hand_import_to_a_plan_that_changes_nothing() {
    if !tools(&["kubectl", "aws"]) {
        return;
    }
    let s = Served::start(EKS);
    let issuer = eks_issuer(&s);
    let host = issuer.trim_start_matches("https://");
    // The OIDC provider, as eksctl would make it.
    s.aws(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        &issuer,
        "--client-id-list",
        "sts.amazonaws.com",
        "--thumbprint-list",
        "9e99a48a9960b14926bb7f3b02e22da2b0ab7280",
    ]);
    // An IRSA role with a managed and an inline policy and tags of its own.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::111122223333:oidc-provider/{host}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{host}:sub":"system:serviceaccount:shop:orders","{host}:aud":"sts.amazonaws.com"}}}}}}]}}"#
    );
    s.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "orders-irsa",
        "--assume-role-policy-document",
        &trust,
        "--tags",
        "Key=owner,Value=ops",
    ]);
    s.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "orders-irsa",
        "--policy-arn",
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    ]);
    s.aws(&[
        "iam",
        "put-role-policy",
        "--role-name",
        "orders-irsa",
        "--policy-name",
        "queue",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:111122223333:orders"}]}"#,
    ]);
    // A Pod Identity role and its association.
    s.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "billing-pod-identity",
        "--assume-role-policy-document",
        // Narrowed to the one KSA by its session tags, as the EKS user guide advises (a
        // statement without the conditions imports with a warning: the plan narrows it).
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"aws:RequestTag/eks-cluster-arn":"arn:aws:eks:us-east-1:111122223333:cluster/prod","aws:RequestTag/kubernetes-namespace":"shop","aws:RequestTag/kubernetes-service-account":"billing"}}}]}"#,
    ]);
    s.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "prod",
        "--region",
        "us-east-1",
        "--namespace",
        "shop",
        "--service-account",
        "billing",
        "--role-arn",
        "arn:aws:iam::111122223333:role/billing-pod-identity",
    ]);
    s.kubectl(&["create", "namespace", "shop"]);
    s.kubectl(&["create", "serviceaccount", "orders", "-n", "shop"]);
    s.kubectl(&[
        "annotate",
        "serviceaccount",
        "orders",
        "-n",
        "shop",
        "eks.amazonaws.com/role-arn=arn:aws:iam::111122223333:role/orders-irsa",
    ]);
    s.kubectl(&["create", "serviceaccount", "billing", "-n", "shop"]);
    // A KSA with no workload identity is not imported.
    s.kubectl(&["create", "serviceaccount", "plain", "-n", "shop"]);

    let (text, _) = round_trip(&s, "eks-prod", "shop");
    for want in [
        "orders-irsa",
        "billing-pod-identity",
        "AmazonS3ReadOnlyAccess",
        "sqs:SendMessage",
        "adopt = true",
    ] {
        assert!(text.contains(want), "the plan lacks {want}:\n{text}");
    }
    assert!(!text.contains("\"plain\""), "{text}");
    // The hand-made tags are still there: import adopted, it did not take over.
    let tags = s.aws(&["iam", "list-role-tags", "--role-name", "orders-irsa"]);
    assert!(tags.contains("ops"), "{tags}");
    assert!(!tags.contains("wid.dev"), "{tags}");
}

#[test]
fn gke_accounts_and_bindings_made_with_gcloud_import_to_a_plan_that_changes_nothing() {
    if !tools(&["kubectl", "gcloud"]) {
        return;
    }
    let s = Served::start(GKE);
    let g = |args: &[&str]| s.serve.gcloud(args);
    g(&[
        "iam",
        "service-accounts",
        "create",
        "orders",
        "--project",
        "acme-prod",
        "--display-name",
        "Orders",
    ]);
    let gsa = "orders@acme-prod.iam.gserviceaccount.com";
    g(&[
        "iam",
        "service-accounts",
        "add-iam-policy-binding",
        gsa,
        "--project",
        "acme-prod",
        "--role",
        "roles/iam.workloadIdentityUser",
        "--member",
        "serviceAccount:acme-prod.svc.id.goog[shop/orders]",
    ]);
    g(&[
        "projects",
        "add-iam-policy-binding",
        "acme-prod",
        "--role",
        "roles/pubsub.subscriber",
        "--member",
        &format!("serviceAccount:{gsa}"),
    ]);
    // Workload Identity Federation for GKE: a role granted to the KSA's principal.
    g(&[
        "projects",
        "add-iam-policy-binding",
        "acme-prod",
        "--role",
        "roles/storage.objectViewer",
        "--member",
        "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/acme-prod.svc.id.goog/subject/ns/shop/sa/reports",
    ]);
    s.kubectl(&["create", "namespace", "shop"]);
    s.kubectl(&["create", "serviceaccount", "orders", "-n", "shop"]);
    s.kubectl(&[
        "annotate",
        "serviceaccount",
        "orders",
        "-n",
        "shop",
        &format!("iam.gke.io/gcp-service-account={gsa}"),
    ]);
    s.kubectl(&["create", "serviceaccount", "reports", "-n", "shop"]);

    let (text, _) = round_trip(&s, "gke-prod", "shop");
    for want in [
        "orders",
        "roles/pubsub.subscriber",
        "roles/storage.objectViewer",
        "direct = true",
        "adopt = true",
    ] {
        assert!(text.contains(want), "the plan lacks {want}:\n{text}");
    }
}

#[test]
fn aks_identities_made_with_the_azure_sdks_import_to_a_plan_that_changes_nothing() {
    if !tools(&["kubectl", "python3"]) {
        return;
    }
    let probe = std::process::Command::new("python3")
        .args(["-c", "import azure.mgmt.msi, azure.mgmt.authorization"])
        .output()
        .expect("run python3");
    if !probe.status.success() {
        eprintln!(
            "SKIPPED: azure-mgmt-msi and azure-mgmt-authorization are not installed (pip install azure-mgmt-msi azure-mgmt-authorization)"
        );
        return;
    }
    let s = Served::start(&aks_clusters());
    let issuer = aks_issuer(&s);
    let out = std::process::Command::new("python3")
        .arg(root().join("tests/import_aks.py"))
        .envs(env_file(&s.dir().join("env")))
        .env("IMPORT_RG", "rg-aks-prod")
        .env("IMPORT_ISSUER", &issuer)
        .env("IMPORT_SUBJECT", "system:serviceaccount:orders:api")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("REQUESTS_CA_BUNDLE")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "import_aks.py failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let client_id = stdout(&out)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    s.kubectl(&["create", "namespace", "orders"]);
    s.kubectl(&["create", "serviceaccount", "api", "-n", "orders"]);
    s.kubectl(&[
        "annotate",
        "serviceaccount",
        "api",
        "-n",
        "orders",
        &format!("azure.workload.identity/client-id={client_id}"),
        "azure.workload.identity/tenant-id=72f988bf-86f1-41af-91ab-2d7cd011db47",
    ]);

    let (text, _) = round_trip(&s, "aks-prod", "orders");
    for want in [
        "identity = \"orders\"",
        "orders-from-aks",
        "Reader",
        "ordersdata",
        "adopt = true",
    ] {
        assert!(text.contains(want), "the plan lacks {want}:\n{text}");
    }
}

/// The AKS cluster's issuer as the sandbox's state holds it (written within moments of
/// the sandbox starting).
fn aks_issuer(s: &Served) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let issuer = std::fs::read(s.dir().join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v["clusters"]["aks-prod"]["issuer"]
                    .as_str()
                    .map(str::to_owned)
            });
        if let Some(issuer) = issuer {
            return issuer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sandbox never wrote the AKS cluster's issuer to state.json"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn what_wid_applied_imports_as_its_own_and_the_namespace_filter_limits_the_read() {
    if !tools(&["kubectl"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb").display().to_string();
    let apply = wid(
        &root(),
        &[
            "apply",
            "examples/eks",
            "--sandbox-dir",
            &sb,
            "--auto-approve",
        ],
    );
    expect_code(&apply, 0);
    let out = tmp.path().join("imported.toml").display().to_string();
    let import = wid(
        tmp.path(),
        &[
            "import",
            "--sandbox-dir",
            &sb,
            "--cluster",
            "eks-prod",
            "--namespace",
            "production",
            "--out",
            &out,
        ],
    );
    expect_code(&import, 0);
    let text = std::fs::read_to_string(&out).unwrap();
    // The plan's name comes from wid's marks, and nothing it made needs `adopt`.
    assert!(text.contains("name = \"eks-example\""), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("adopt = true")),
        "{text}"
    );
    assert!(text.contains("namespace = \"production\""), "{text}");
    assert!(!text.contains("namespace = \"analytics\""), "{text}");
    let plan = wid(
        tmp.path(),
        &["plan", &out, "--sandbox-dir", &sb, "--detailed-exitcode"],
    );
    assert_eq!(
        code(&plan),
        0,
        "{}\n{}\n{text}",
        stdout(&plan),
        stderr(&plan)
    );
}
