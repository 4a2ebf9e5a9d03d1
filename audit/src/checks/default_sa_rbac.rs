//! SA004 default-sa-rbac: a RoleBinding or ClusterRoleBinding grants a role to some
//! namespace's `default` ServiceAccount (kubescape rule
//! `ensure-default-service-accounts-has-only-default-roles`, C-0225/C-0239). Unlike the
//! anchor, the subject's namespace is resolved, so the finding names which `default`.

use super::Check;
use crate::context::Context;
use crate::model::{Finding, Severity};
use crate::rbac::{bindings, resolve_role};
use crate::snapshot::Snapshot;
use crate::workload::DEFAULT_SA;

/// The check.
pub static CHECK: Check = Check {
    id: "SA004",
    name: "default-sa-rbac",
    severity: Severity::High,
    summary: "No RoleBinding or ClusterRoleBinding grants anything to a namespace's `default` ServiceAccount.",
    why: "Permissions bound to `default` are held by every pod of the namespace that names no ServiceAccount, \
including pods added later by people who never asked for them. Grant permissions to a dedicated ServiceAccount \
used only by the workload that needs them.",
    example: "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: read-secrets\n  namespace: billing\nsubjects:\n- kind: ServiceAccount\n  name: default\n  namespace: billing\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: secret-reader\n",
    fix: "Bind the role to a dedicated ServiceAccount instead and remove `default` from the subjects:\n\n  kubectl create serviceaccount APP -n NAMESPACE\n  kubectl edit rolebinding NAME -n NAMESPACE   # replace subject default with APP\n\nIn a wid plan, declare the workload's own KSA (service_account = \"APP\") and bind roles to it.\n",
    guide: "Create dedicated service accounts per workload role with minimal RBAC.",
    others: "kubescape's rule `ensure-default-service-accounts-has-only-default-roles` (C-0225 on EKS, C-0239 on AKS) fails on any binding subject named `default` but does not say whose `default` it is; wid resolves the subject's namespace (a RoleBinding's own namespace when the subject omits it) and names it. Bindings the control plane creates (label `kubernetes.io/bootstrapping: rbac-defaults`) are skipped, as kubescape does.",
    references: &[
        (
            "Kubernetes: RBAC good practices",
            "https://kubernetes.io/docs/concepts/security/rbac-good-practices/",
        ),
        (
            "kubescape regolibrary (C-0225, C-0239)",
            "https://github.com/kubescape/regolibrary",
        ),
    ],
    example_context: "",
    run,
};

fn run(snap: &Snapshot, _ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for b in bindings(snap) {
        if b.is_bootstrap() {
            continue;
        }
        for (i, s) in b.subjects.iter().enumerate() {
            if s.kind != "ServiceAccount" || s.name != DEFAULT_SA {
                continue;
            }
            let Some(sa_ns) = b.subject_namespace(s) else {
                continue;
            };
            let binding = b.object_ref();
            let role = resolve_role(snap, &b)
                .map(|(r, _)| r.to_string())
                .unwrap_or_else(|| {
                    format!("{} {} (not in the input)", b.role_ref.kind, b.role_ref.name)
                });
            let kind_lc = binding.kind.to_ascii_lowercase();
            let ns_flag = b.namespace.map(|n| format!(" -n {n}")).unwrap_or_default();
            out.push(
                Finding::new(
                    CHECK.id,
                    CHECK.severity,
                    binding.clone(),
                    format!(
                        "{binding} grants {role} {scope} to ServiceAccount {sa_ns}/default",
                        scope = b.scope()
                    ),
                    format!(
                        "bind {role} to a dedicated ServiceAccount of {sa_ns} instead, then remove subject {sa_ns}/default: kubectl edit {kind_lc} {name}{ns_flag}",
                        name = binding.name
                    ),
                )
                .at(format!("subjects[{i}]"))
                .detail("subject", format!("{sa_ns}/default")),
            );
        }
    }
    out
}
