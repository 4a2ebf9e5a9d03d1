//! Conformance: the real kubectl against the sandbox's Kubernetes API server.
//!
//! Skipped (loudly) when kubectl is not installed.

mod kubectl_support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kubectl_support::{kubectl_available, start};

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_reads_writes_and_gets_tokens() {
    if !kubectl_available("kubectl_reads_writes_and_gets_tokens") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, kubectl) = start(dir.path()).await;

    let namespaces = kubectl.ok(&["get", "ns"]).await;
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(namespaces.contains(ns), "{namespaces}");
    }
    let accounts = kubectl.ok(&["get", "sa", "-A"]).await;
    assert!(accounts.contains("kube-system"), "{accounts}");
    assert!(accounts.contains("default"), "{accounts}");

    let yaml = kubectl
        .ok(&["get", "sa", "default", "-n", "default", "-o", "yaml"])
        .await;
    assert!(yaml.contains("kind: ServiceAccount"), "{yaml}");
    assert!(yaml.contains("uid:"), "{yaml}");

    let manifest = dir.path().join("sa.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: orders\n  namespace: default\n  labels:\n    app.kubernetes.io/managed-by: wid\nautomountServiceAccountToken: false\n",
    )
    .expect("manifest");
    let manifest = manifest.to_str().expect("utf-8 path");
    let applied = kubectl
        .ok(&["apply", "--server-side", "-f", manifest])
        .await;
    assert!(
        applied.contains("serviceaccount/orders serverside-applied"),
        "{applied}"
    );
    let label = kubectl
        .ok(&[
            "get",
            "sa",
            "orders",
            "-n",
            "default",
            "-o",
            "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}",
        ])
        .await;
    assert_eq!(label, "wid");

    kubectl
        .ok(&[
            "patch",
            "sa",
            "orders",
            "-n",
            "default",
            "-p",
            r#"{"automountServiceAccountToken":true}"#,
        ])
        .await;
    let automount = kubectl
        .ok(&[
            "get",
            "sa",
            "orders",
            "-n",
            "default",
            "-o",
            "jsonpath={.automountServiceAccountToken}",
        ])
        .await;
    assert_eq!(automount, "true");
    let managers = kubectl
        .ok(&[
            "get",
            "sa",
            "orders",
            "-n",
            "default",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert!(managers.contains("kubectl-patch"), "{managers}");

    // The patch took the field from the applier: re-applying the old value conflicts.
    let conflict = kubectl
        .run(&["apply", "--server-side", "-f", manifest])
        .await;
    assert!(!conflict.ok, "{}", conflict.stdout);
    assert!(
        conflict.stderr.contains("conflict with \"kubectl-patch\""),
        "{}",
        conflict.stderr
    );
    kubectl
        .ok(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            manifest,
        ])
        .await;

    let token = kubectl
        .ok(&[
            "create",
            "token",
            "orders",
            "-n",
            "default",
            "--duration",
            "10m",
            "--audience",
            "https://example.com",
        ])
        .await;
    let payload = token.trim().split('.').nth(1).expect("JWT-shaped token");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
            .expect("json claims");
    assert_eq!(claims["aud"], serde_json::json!(["https://example.com"]));
    assert_eq!(claims["sub"], "system:serviceaccount:default:orders");
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 600);

    let short = kubectl
        .run(&[
            "create",
            "token",
            "orders",
            "-n",
            "default",
            "--duration",
            "5m",
        ])
        .await;
    assert!(!short.ok);
    assert!(
        short
            .stderr
            .contains("may not specify a duration less than 10 minutes"),
        "{}",
        short.stderr
    );

    kubectl
        .ok(&["delete", "sa", "orders", "-n", "default"])
        .await;
    let gone = kubectl.run(&["get", "sa", "orders", "-n", "default"]).await;
    assert!(!gone.ok);
    assert!(
        gone.stderr.contains("serviceaccounts \"orders\" not found"),
        "{}",
        gone.stderr
    );

    let rbac = kubectl.run(&["get", "roles,rolebindings", "-A"]).await;
    assert!(rbac.ok, "{}", rbac.stderr);
    let cluster_roles = kubectl.ok(&["get", "clusterroles"]).await;
    for role in ["cluster-admin", "admin", "edit", "view"] {
        assert!(cluster_roles.contains(role), "{cluster_roles}");
    }
}
