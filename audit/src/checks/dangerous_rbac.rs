//! SA005 dangerous-rbac: a workload mounts the token of a ServiceAccount that holds
//! takeover permissions (kubescape C-0267/C-0272/C-0261, rbac-police, KubiScan), and any
//! binding that grants a role to a broad group (kubescape C-0265; Trivy KSV-0122/01011).
//! Effective permissions come from the RBAC engine (`crate::rbac`).

use super::Check;
use crate::context::Context;
use crate::danger::{Danger, classify_all};
use crate::model::{Finding, Severity};
use crate::rbac::{BROAD_GROUPS, Grant, Scope, Via, bindings, grants_for, resolve_role};
use crate::snapshot::Snapshot;
use crate::workload::{eff, workloads};

/// The check.
pub static CHECK: Check = Check {
    id: "SA005",
    name: "dangerous-rbac",
    severity: Severity::High,
    summary: "No workload mounts the token of a ServiceAccount that holds dangerous permissions, and no binding \
grants a role to a broad group (system:authenticated, system:unauthenticated, system:serviceaccounts[:NS]).",
    why: "These permissions turn one compromised pod into a cluster takeover: wildcards and cluster-admin; reading \
secrets; creating pods or workloads (which can run as any ServiceAccount of the namespace); pods/exec and \
pods/attach; nodes/proxy (the kubelet API, which bypasses audit and admission); escalate, bind and impersonate; \
creating serviceaccounts/token; approving CSRs; changing admission webhooks. Cluster-wide grants, or grants in \
kube-system, are critical. Bindings to broad groups give a role to every identity in the group, including every \
pod's token.",
    example: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: ops-bot-admin\nsubjects:\n- kind: ServiceAccount\n  name: ops-bot\n  namespace: shop\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ops-console\n  namespace: shop\nspec:\n  selector: {matchLabels: {app: ops-console}}\n  template:\n    metadata: {labels: {app: ops-console}}\n    spec:\n      serviceAccountName: ops-bot   # token mounted: nothing turns automount off\n      containers:\n      - name: app\n        image: ops-console:1.0\n",
    fix: "Grant the ServiceAccount only what the workload needs (a namespaced Role with named verbs and resources), \
or stop mounting its token where it is not needed (automountServiceAccountToken: false). Check the result with:\n\n  kubectl auth can-i --list -n NAMESPACE --as=system:serviceaccount:NAMESPACE:NAME\n\nRemove broad-group subjects from bindings:\n\n  kubectl edit clusterrolebinding NAME\n",
    guide: "Audit service account usage quarterly – find overprivileged accounts and pods using `default`.",
    others: "kubescape C-0267 and C-0272 (workloads with takeover or administrative roles), C-0261 (mounted token with bindings) and C-0265 (broad groups); rbac-police and KubiScan list risky roles. kubescape C-0261 matches a binding's subject name, namespace and kind independently, so the three can come from different subjects; KubiScan ignores apiGroups and needs every verb of its template, so `get` on `nodes/proxy` alone slips through. wid computes effective permissions from bindings to roles to rules with the right namespaces, matches subjects as whole tuples, and counts `get nodes/proxy` as dangerous, as the Kubernetes RBAC good-practices page says it is.",
    references: &[
        (
            "Kubernetes: RBAC good practices (privilege escalation risks)",
            "https://kubernetes.io/docs/concepts/security/rbac-good-practices/",
        ),
        (
            "kubescape regolibrary (C-0261, C-0265, C-0267, C-0272)",
            "https://github.com/kubescape/regolibrary",
        ),
        (
            "rbac-police",
            "https://github.com/PaloAltoNetworks/rbac-police",
        ),
        ("KubiScan", "https://github.com/cyberark/KubiScan"),
    ],
    example_context: "",
    run,
};

/// How many permissions a message names before "and N more" (details list them all).
const MESSAGE_LIMIT: usize = 3;

fn describe(dangers: &[Danger]) -> String {
    let mut parts: Vec<String> = dangers
        .iter()
        .take(MESSAGE_LIMIT)
        .map(|d| format!("{} (via {} -> {})", d.label, d.binding, d.role))
        .collect();
    if dangers.len() > MESSAGE_LIMIT {
        parts.push(format!("and {} more", dangers.len() - MESSAGE_LIMIT));
    }
    parts.join("; ")
}

fn with_details(mut f: Finding, dangers: &[Danger]) -> Finding {
    for (i, d) in dangers.iter().enumerate() {
        f = f.detail(
            &format!("permission.{:02}", i + 1),
            format!("{}: {} via {} -> {}", d.class, d.label, d.binding, d.role),
        );
    }
    f
}

fn run(snap: &Snapshot, _ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in workloads(snap) {
        let a = eff(snap, &w);
        if !a.mounted {
            continue;
        }
        let grants = grants_for(snap, w.namespace(), w.sa_name());
        let dangers = classify_all(&grants);
        let Some(worst) = dangers.first().map(|d| d.severity) else {
            continue;
        };
        let via_groups: Vec<String> = grants
            .iter()
            .filter_map(|g| match &g.via {
                Via::Group(name) => Some(name.clone()),
                Via::Direct => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut f = Finding::new(
            CHECK.id,
            worst,
            w.object_ref(),
            format!(
                "{} mounts the token of ServiceAccount {}, which can {}",
                w.label(),
                a.service_account,
                describe(&dangers)
            ),
            format!(
                "reduce the RBAC of ServiceAccount {sa} to what {label} needs (kubectl auth can-i --list -n {ns} --as=system:serviceaccount:{ns}:{name}), or set automountServiceAccountToken: false if it does not call the API",
                sa = a.service_account,
                label = w.label(),
                ns = w.namespace(),
                name = w.sa_name()
            ),
        )
        .at(format!("{}.serviceAccountName", w.spec_path))
        .detail("service_account", a.service_account.clone());
        if !via_groups.is_empty() {
            f = f.detail("via_groups", via_groups.join(","));
        }
        out.push(with_details(f, &dangers));
    }
    out.extend(broad_group_bindings(snap));
    out
}

/// Whether a group subject covers every identity, or every ServiceAccount (of a namespace).
fn is_broad_group(name: &str) -> bool {
    BROAD_GROUPS.contains(&name) || name.starts_with("system:serviceaccounts:")
}

fn broad_group_bindings(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for b in bindings(snap) {
        if b.is_bootstrap() {
            // The control plane's own bindings (e.g. system:discovery to system:authenticated)
            // are expected; reporting them would bury real findings.
            continue;
        }
        let Some((role, rules)) = resolve_role(snap, &b) else {
            continue;
        };
        for (i, s) in b
            .subjects
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == "Group" && is_broad_group(&s.name))
        {
            let grants: Vec<Grant> = rules
                .iter()
                .map(|r| Grant {
                    rule: r.clone(),
                    scope: b.scope(),
                    binding: b.object_ref(),
                    role: role.clone(),
                    via: Via::Group(s.name.clone()),
                })
                .collect();
            let dangers = classify_all(&grants);
            let binding = b.object_ref();
            let severity = dangers
                .first()
                .map(|d| d.severity.max(Severity::High))
                .unwrap_or(Severity::Medium);
            let who = if s.name == "system:unauthenticated" {
                "anonymous requests"
            } else if s.name == "system:authenticated" {
                "every authenticated identity, including every pod token"
            } else {
                "every ServiceAccount token in the group"
            };
            let what = if dangers.is_empty() {
                String::new()
            } else {
                format!(", which can {}", describe(&dangers))
            };
            let scope = match b.scope() {
                Scope::Cluster => "cluster-wide".to_owned(),
                Scope::Namespace(ns) => format!("in namespace {ns}"),
            };
            let kind_lc = binding.kind.to_ascii_lowercase();
            let ns_flag = b.namespace.map(|n| format!(" -n {n}")).unwrap_or_default();
            let f = Finding::new(
                CHECK.id,
                severity,
                binding.clone(),
                format!("{binding} grants {role} {scope} to group {} ({who}){what}", s.name),
                format!(
                    "remove group {} from the subjects (kubectl edit {kind_lc} {}{ns_flag}) and bind the role to the specific ServiceAccounts that need it",
                    s.name, binding.name
                ),
            )
            .at(format!("subjects[{i}]"))
            .detail("group", s.name.clone());
            out.push(with_details(f, &dangers));
        }
    }
    out
}
