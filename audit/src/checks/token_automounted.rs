//! SA002 token-automounted: a pod or workload template effectively receives an API token
//! (CIS 5.1.6; kubescape C-0034/C-0190; Polaris automountServiceAccountToken; Trivy KSV036).
//! The decision is `workload::eff`: pod field, else the same-namespace SA's, else true.

use super::Check;
use crate::context::Context;
use crate::model::{Finding, Severity};
use crate::snapshot::Snapshot;
use crate::workload::{eff, workloads};

/// The check.
pub static CHECK: Check = Check {
    id: "SA002",
    name: "token-automounted",
    severity: Severity::Medium,
    summary: "Pods and workload templates (Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob) do not \
receive an API token unless they need one.",
    why: "The pod's automountServiceAccountToken wins if set, else its ServiceAccount's, else the token is mounted. \
A mounted token lets anyone who gets code execution in the pod call the Kubernetes API as its ServiceAccount. \
Findings where the token was requested explicitly (true in the pod or the ServiceAccount) are reported as low: \
confirm the workload calls the API; implicit mounts are medium.",
    example: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      # automountServiceAccountToken unset, and the ServiceAccount leaves it unset too\n      containers:\n      - name: app\n        image: web:1.0\n",
    fix: "Set `automountServiceAccountToken: false` in the pod template of every workload that does not call the \
Kubernetes API:\n\n  kubectl patch deployment NAME -n NAMESPACE -p '{\"spec\":{\"template\":{\"spec\":{\"automountServiceAccountToken\":false}}}}'\n\n\
or disable it on its ServiceAccount (wid plan: harden_default_service_accounts = true for `default`, and dedicated \
KSAs per workload).\n",
    guide: "Set `automountServiceAccountToken: false` on every pod that does not call the Kubernetes API.",
    others: "CIS 5.1.6; kubescape C-0034 and C-0190; Polaris `automountServiceAccountToken`; Trivy KSV-0036. kube-bench's 5.1.6 audit flags a pod that sets `automountServiceAccountToken: false` when its ServiceAccount leaves the field unset, although no token is mounted (its own remediation text calls that case compliant). Trivy KSV-0036 never reads the ServiceAccount and, in manifests, stays silent when the field is unset. Polaris needs the ServiceAccount object with an exact name, so a template with an empty `serviceAccountName` never matches `default`. wid applies the admission plugin's rule exactly: the pod's field, else its own namespace's ServiceAccount's, else true.",
    references: &[
        (
            "Kubernetes: configure service accounts for pods (automount precedence)",
            "https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/",
        ),
        (
            "kube-bench (CIS 5.1.6)",
            "https://github.com/aquasecurity/kube-bench",
        ),
        ("Polaris", "https://github.com/FairwindsOps/polaris"),
        (
            "Trivy checks (KSV-0036)",
            "https://github.com/aquasecurity/trivy-checks",
        ),
    ],
    example_context: "",
    run,
};

fn run(snap: &Snapshot, _ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in workloads(snap) {
        let a = eff(snap, &w);
        if !a.mounted {
            continue;
        }
        let severity = if a.explicit() {
            Severity::Low
        } else {
            CHECK.severity
        };
        let kind_lc = w.kind.to_ascii_lowercase();
        let fix = if w.kind == "Pod" {
            format!(
                "set spec.automountServiceAccountToken: false in pod {}/{} (pods are immutable: change the manifest and recreate it)",
                w.namespace(),
                w.name()
            )
        } else {
            let patch = if w.kind == "CronJob" {
                "{\"spec\":{\"jobTemplate\":{\"spec\":{\"template\":{\"spec\":{\"automountServiceAccountToken\":false}}}}}}"
            } else {
                "{\"spec\":{\"template\":{\"spec\":{\"automountServiceAccountToken\":false}}}}"
            };
            format!(
                "kubectl patch {kind_lc} {} -n {} -p '{patch}'",
                w.name(),
                w.namespace()
            )
        };
        out.push(
            Finding::new(
                CHECK.id,
                severity,
                w.object_ref(),
                format!(
                    "{} mounts an API token: {}",
                    w.label(),
                    a.reason(w.spec_path)
                ),
                fix,
            )
            .at(format!("{}.automountServiceAccountToken", w.spec_path))
            .detail("service_account", a.service_account.clone())
            .detail("explicit", a.explicit().to_string()),
        );
    }
    out
}
