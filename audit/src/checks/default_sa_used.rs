//! SA003 default-sa-used: a workload runs as its namespace's `default` ServiceAccount; high
//! when it also gets that token (kubeaudit asat `AutomountServiceAccountTokenTrueAndDefaultSA`),
//! low otherwise (no dedicated identity per workload).

use super::Check;
use crate::context::Context;
use crate::model::{Finding, Severity};
use crate::snapshot::Snapshot;
use crate::workload::{DEFAULT_SA, eff, workloads};

/// The check.
pub static CHECK: Check = Check {
    id: "SA003",
    name: "default-sa-used",
    severity: Severity::Low,
    summary: "Workloads run as a dedicated ServiceAccount, not their namespace's `default` (high when the `default` \
token is also mounted).",
    why: "`default` is shared by every pod in the namespace that names no ServiceAccount, so any RBAC or cloud \
identity given to it is given to all of them, and nothing can be granted to one workload alone. With the token \
mounted, a compromise of any such pod yields the shared credential. An empty serviceAccountName means `default`.",
    example: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      serviceAccountName: \"\"   # means `default`\n      containers:\n      - name: app\n        image: web:1.0\n",
    fix: "Give the workload its own ServiceAccount. In the wid plan:\n\n  [[workload]]\n  cluster = \"prod\"\n  namespace = \"shop\"\n  service_account = \"web\"\n\nthen set `serviceAccountName: web` in the pod template; or by hand:\n\n  kubectl create serviceaccount web -n shop\n  kubectl set serviceaccount deployment web web -n shop\n",
    guide: "Create dedicated service accounts per workload role with minimal RBAC.",
    others: "kubeaudit's `asat` auditor reports `AutomountServiceAccountTokenTrueAndDefaultSA` as an error; it looks up the `default` ServiceAccount among all scanned resources without checking the namespace, so another namespace's `default` can decide the result. wid looks it up by (namespace, name). kubescape C-0189 flags namespaces with no ServiceAccount besides `default`; no established scanner flags a workload running as `default` with its token off, which wid reports as low.",
    references: &[
        (
            "Kubernetes: configure service accounts for pods",
            "https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/",
        ),
        (
            "kubeaudit (asat auditor)",
            "https://github.com/Shopify/kubeaudit",
        ),
        (
            "kubescape regolibrary (C-0189)",
            "https://github.com/kubescape/regolibrary",
        ),
    ],
    example_context: "",
    run,
};

fn run(snap: &Snapshot, _ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in workloads(snap) {
        if w.sa_name() != DEFAULT_SA {
            continue;
        }
        let a = eff(snap, &w);
        let (severity, message) = if a.mounted {
            (
                Severity::High,
                format!(
                    "{} runs as ServiceAccount {}/default with its token mounted: {}",
                    w.label(),
                    w.namespace(),
                    a.reason(w.spec_path)
                ),
            )
        } else {
            (
                CHECK.severity,
                format!(
                    "{} runs as ServiceAccount {}/default (token not mounted)",
                    w.label(),
                    w.namespace()
                ),
            )
        };
        let fix = if w.kind == "Pod" {
            format!(
                "create a dedicated ServiceAccount (kubectl create serviceaccount {name} -n {ns}) and set spec.serviceAccountName: {name} in pod {ns}/{name}",
                ns = w.namespace(),
                name = w.name()
            )
        } else {
            format!(
                "kubectl create serviceaccount {name} -n {ns} && kubectl set serviceaccount {kind} {name} {name} -n {ns} (or declare service_account = \"{name}\" for namespace {ns} in the wid plan)",
                ns = w.namespace(),
                name = w.name(),
                kind = w.kind.to_ascii_lowercase()
            )
        };
        out.push(
            Finding::new(CHECK.id, severity, w.object_ref(), message, fix)
                .at(format!("{}.serviceAccountName", w.spec_path))
                .detail("token_mounted", a.mounted.to_string()),
        );
    }
    out
}
