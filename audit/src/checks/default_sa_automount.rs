//! SA001 default-sa-automount: a namespace's `default` ServiceAccount does not turn off
//! token automounting (CIS 5.1.5; kubescape C-0189; kube-bench 5.1.5).

use std::collections::BTreeSet;

use super::Check;
use crate::context::Context;
use crate::model::{Finding, ObjectRef, Severity};
use crate::snapshot::{Snapshot, name_of, ns_of};
use crate::workload::DEFAULT_SA;

/// The check.
pub static CHECK: Check = Check {
    id: "SA001",
    name: "default-sa-automount",
    severity: Severity::Medium,
    summary: "The `default` ServiceAccount of every namespace sets automountServiceAccountToken: false.",
    why: "Every pod that names no ServiceAccount runs as `default`. Unless `default` opts out, each such pod gets an \
API token mounted at /var/run/secrets/kubernetes.io/serviceaccount/token, and most applications never call the \
Kubernetes API. A compromised pod then hands the attacker a credential for free, carrying whatever RBAC someone \
later grants to `default`.",
    example: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: shop\n# automountServiceAccountToken unset: defaults to true\n",
    fix: "In the wid plan, on the cluster:\n\n  [clusters.prod]\n  harden_default_service_accounts = true\n\nor by hand, per namespace:\n\n  kubectl patch serviceaccount default -n NAMESPACE -p '{\"automountServiceAccountToken\": false}'\n",
    guide: "Disable `automountServiceAccountToken` on the `default` service account in every namespace.",
    others: "CIS Kubernetes Benchmark 5.1.5. kube-bench implements it as a manual (unscored) check, so a failure only ever shows as WARN and never fails its exit code. kubescape C-0189 (rule `automount-default-service-account`) fails on `true` and on unset, like this check. wid also reports the case where the namespace's `default` ServiceAccount is missing from the manifests, because the one the control plane creates leaves the field unset.",
    references: &[
        (
            "Kubernetes: configure service accounts for pods (automount)",
            "https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/",
        ),
        (
            "kube-bench (CIS 5.1.5)",
            "https://github.com/aquasecurity/kube-bench",
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
    // Namespaces we have evidence for: declared Namespace objects and namespaces whose
    // `default` SA is in the input. A namespace only inferred from a workload's manifest
    // says nothing about its `default` SA (SA002 covers that workload).
    let mut namespaces: BTreeSet<&str> = snap
        .namespaces
        .iter()
        .map(|n| name_of(&n.metadata))
        .collect();
    namespaces.extend(
        snap.service_accounts
            .iter()
            .filter(|sa| name_of(&sa.metadata) == DEFAULT_SA)
            .map(|sa| ns_of(&sa.metadata)),
    );
    let mut out = Vec::new();
    for ns in namespaces {
        let (reason, field) = match snap.service_account(ns, DEFAULT_SA) {
            Some(sa) => match sa.automount_service_account_token {
                Some(false) => continue,
                Some(true) => (
                    "sets automountServiceAccountToken: true".to_owned(),
                    Some("automountServiceAccountToken"),
                ),
                None => (
                    "leaves automountServiceAccountToken unset (default true)".to_owned(),
                    None,
                ),
            },
            None => ("is not in the input; the one the control plane creates leaves automountServiceAccountToken unset (default true)".to_owned(), None),
        };
        let fix = format!(
            "kubectl patch serviceaccount default -n {ns} -p '{{\"automountServiceAccountToken\": false}}' (or harden_default_service_accounts = true on the cluster in the wid plan)"
        );
        let mut f = Finding::new(
            CHECK.id,
            CHECK.severity,
            ObjectRef::namespaced("ServiceAccount", ns, DEFAULT_SA),
            format!("ServiceAccount {ns}/default {reason}"),
            fix,
        );
        if let Some(field) = field {
            f = f.at(field);
        }
        out.push(f);
    }
    out
}
