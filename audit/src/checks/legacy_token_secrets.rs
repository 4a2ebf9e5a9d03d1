//! SA006 legacy-token-secrets: long-lived `kubernetes.io/service-account-token` Secrets.
//! Reports the ServiceAccount, whether it was auto-generated (listed in the SA's
//! `.secrets[]`, as kyverno `check-serviceaccount-secrets` reads it) or created by hand,
//! and the control plane's `kubernetes.io/legacy-token-last-used` / `-invalid-since` labels.

use super::Check;
use crate::context::Context;
use crate::model::{Finding, Severity};
use crate::snapshot::{Snapshot, name_of, ns_of};

/// The Secret type of legacy tokens.
pub const LEGACY_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const LAST_USED_LABEL: &str = "kubernetes.io/legacy-token-last-used";
const INVALID_SINCE_LABEL: &str = "kubernetes.io/legacy-token-invalid-since";

/// The check.
pub static CHECK: Check = Check {
    id: "SA006",
    name: "legacy-token-secrets",
    severity: Severity::Medium,
    summary: "No Secret of type kubernetes.io/service-account-token (a non-expiring ServiceAccount token) exists.",
    why: "Legacy token Secrets never expire and are not bound to a pod: anyone who can read the Secret, or who \
copied it once, holds the ServiceAccount's permissions until the Secret is deleted. Since Kubernetes 1.24 none are \
created automatically; the control plane labels them with kubernetes.io/legacy-token-last-used (1.26+) so you can \
see whether one is still in use.",
    example: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ci-token\n  namespace: shop\n  annotations:\n    kubernetes.io/service-account.name: ci\ntype: kubernetes.io/service-account-token\n",
    fix: "Delete the Secret and use short-lived tokens instead: a projected serviceAccountToken volume in the pod, \
`kubectl create token SA --duration 1h` for people and scripts, or `wid token` from a wid plan:\n\n  kubectl delete secret NAME -n NAMESPACE\n",
    guide: "Delete legacy `kubernetes.io/service-account-token` Secrets from the cluster.",
    others: "None of kubescape, kubeaudit, Polaris, kube-bench, Trivy, rbac-police or KubiScan reports these Secrets. Kyverno has admission policies against them (`deny-secret-service-account-token-type`). wid tells auto-generated tokens (listed in the ServiceAccount's `secrets`) from hand-made ones and shows the `kubernetes.io/legacy-token-last-used` label the control plane maintains since 1.26 (LegacyServiceAccountTokenTracking, GA in 1.28; LegacyServiceAccountTokenCleanUp GA in 1.30).",
    references: &[
        (
            "Kubernetes: kubernetes.io/legacy-token-last-used",
            "https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-legacy-token-last-used",
        ),
        (
            "KEP-2799: reduction of secret-based service account tokens",
            "https://github.com/kubernetes/enhancements/issues/2799",
        ),
        (
            "kubectl create token",
            "https://kubernetes.io/docs/reference/kubectl/generated/kubectl_create/kubectl_create_token/",
        ),
        (
            "Kyverno: deny-secret-service-account-token-type",
            "https://kyverno.io/policies/other/deny-secret-service-account-token-type/deny-secret-service-account-token-type",
        ),
    ],
    example_context: "",
    run,
};

fn run(snap: &Snapshot, _ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &snap.secrets {
        if s.type_.as_deref() != Some(LEGACY_TOKEN_TYPE) {
            continue;
        }
        let ns = ns_of(&s.metadata);
        let name = name_of(&s.metadata);
        let sa_name = s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SA_NAME_ANNOTATION))
            .map(String::as_str)
            .unwrap_or("");
        let label = |k: &str| s.metadata.labels.as_ref().and_then(|l| l.get(k)).cloned();
        let sa = snap.service_account(ns, sa_name);
        let auto = sa
            .and_then(|sa| sa.secrets.as_ref())
            .is_some_and(|refs| refs.iter().any(|r| r.name.as_deref() == Some(name)));
        let origin = if auto {
            "auto-generated (listed in the ServiceAccount's secrets)"
        } else {
            "created manually"
        };
        let last_used = label(LAST_USED_LABEL);
        let usage = match &last_used {
            Some(d) => format!("last used {d}"),
            None => "no last-used label".to_owned(),
        };
        let sa_text = if sa_name.is_empty() {
            "no ServiceAccount annotation".to_owned()
        } else if sa.is_some() {
            format!("ServiceAccount {ns}/{sa_name}")
        } else {
            format!("ServiceAccount {ns}/{sa_name} (not in the input)")
        };
        let mut f = Finding::new(
            CHECK.id,
            CHECK.severity,
            crate::model::ObjectRef::namespaced("Secret", ns, name),
            format!(
                "Secret {ns}/{name} is a non-expiring legacy token for {sa_text}, {origin}, {usage}"
            ),
            format!(
                "kubectl delete secret {name} -n {ns}; use a projected serviceAccountToken volume, kubectl create token {sa} -n {ns} --duration 1h, or wid token instead",
                sa = if sa_name.is_empty() { "SA" } else { sa_name }
            ),
        )
        .at("type")
        .detail("service_account", sa_name)
        .detail("origin", if auto { "auto" } else { "manual" });
        if let Some(d) = last_used {
            f = f.detail("last_used", d);
        }
        if let Some(d) = label(INVALID_SINCE_LABEL) {
            f = f.detail("invalid_since", d);
        }
        out.push(f);
    }
    out
}
