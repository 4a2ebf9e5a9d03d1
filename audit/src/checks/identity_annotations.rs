//! SA009 identity-annotations: workload identity annotations that point nowhere or
//! disagree with the wid plan, and cloud-side trust that is broader than one KSA.
//!
//! Cluster side (always): malformed `eks.amazonaws.com/role-arn`,
//! `iam.gke.io/gcp-service-account`, `azure.workload.identity/client-id` values, and role
//! ARNs the CLI found missing. With `Expected` (from `--plan`): annotated KSAs the plan does
//! not declare or whose values differ, and plan KSAs lacking their annotation. With
//! `CloudTrust`: IRSA trust with wildcard (`StringLike`) or missing `:sub` conditions or no
//! `:aud` condition; EKS Pod Identity trust with no session-tag condition; GKE bindings to
//! namespace- or cluster-wide `principalSet://` members.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::Check;
use crate::context::{AwsRoleTrust, Context};
use crate::model::{Finding, ObjectRef, Severity};
use crate::positions::child;
use crate::snapshot::{Snapshot, name_of, ns_of};

/// The IRSA role annotation.
pub const AWS_ROLE: &str = "eks.amazonaws.com/role-arn";
/// The GKE Google service account annotation.
pub const GKE_GSA: &str = "iam.gke.io/gcp-service-account";
/// The AKS managed identity client id annotation.
pub const AZURE_CLIENT_ID: &str = "azure.workload.identity/client-id";
const ANNOTATIONS: [&str; 3] = [AWS_ROLE, GKE_GSA, AZURE_CLIENT_ID];

/// The check.
pub static CHECK: Check = Check {
    id: "SA009",
    name: "identity-annotations",
    severity: Severity::Medium,
    summary: "Workload identity annotations on ServiceAccounts are well-formed, point at existing identities, match \
the wid plan (with --plan), and the cloud-side trust behind them names one KSA.",
    why: "An annotation that points nowhere fails at runtime, often after someone \"fixes\" it with a static key. One \
that the plan does not declare is an identity nobody reviews. On the cloud side, an IRSA trust policy with a \
StringLike wildcard subject or no subject lets every ServiceAccount it matches assume the role; without an :aud \
condition, tokens minted for other audiences work too; an EKS Pod Identity trust without session-tag conditions \
accepts any association in the account; a GKE principalSet member grants every pod of a namespace or cluster.",
    example: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: orders\n  namespace: shop\n  annotations:\n    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/not-in-the-plan\n",
    fix: "Declare the KSA and its identity in the wid plan and let wid write both sides:\n\n  [[workload]]\n  cluster = \"eks-prod\"\n  namespace = \"shop\"\n  service_account = \"orders\"\n  aws.role = \"orders-prod\"\n\n  wid plan identities/ && wid apply identities/\n\nor remove the stray annotation: kubectl annotate serviceaccount NAME -n NAMESPACE eks.amazonaws.com/role-arn-\n",
    guide: "Use workload identity federation instead of storing cloud credentials as Secrets.",
    others: "rbac-police reads the identity annotations as a signal (`providerIAM`); no established scanner checks them against a declared plan or reads the cloud-side trust behind them. Wildcard subjects in IRSA trust are a common request in the Terraform and eksctl trackers, and a common way to let every ServiceAccount of a cluster assume a role.",
    references: &[
        (
            "rbac-police",
            "https://github.com/PaloAltoNetworks/rbac-police",
        ),
        (
            "Azure Workload Identity",
            "https://github.com/Azure/azure-workload-identity",
        ),
    ],
    example_context: "{\"expected\": {\"workloads\": []}}",
    run,
};

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("annotation patterns are valid regexes")
}

static ROLE_ARN: LazyLock<Regex> =
    LazyLock::new(|| re(r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]+$"));
static GSA_EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.gserviceaccount\.com$"));
static UUID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
});

fn well_formed(key: &str, value: &str) -> bool {
    match key {
        AWS_ROLE => ROLE_ARN.is_match(value),
        GKE_GSA => GSA_EMAIL.is_match(value),
        _ => UUID.is_match(value),
    }
}

fn sa_finding(ns: &str, name: &str, message: String, fix: String) -> Finding {
    Finding::new(
        CHECK.id,
        CHECK.severity,
        ObjectRef::namespaced("ServiceAccount", ns, name),
        message,
        fix,
    )
}

fn run(snap: &Snapshot, ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for sa in &snap.service_accounts {
        let (ns, name) = (ns_of(&sa.metadata), name_of(&sa.metadata));
        let annotations = sa.metadata.annotations.clone().unwrap_or_default();
        let expected = ctx.expected.as_ref().map(|e| {
            e.workloads
                .iter()
                .find(|w| w.namespace == ns && w.service_account == name)
        });
        for key in ANNOTATIONS {
            let Some(value) = annotations.get(key) else {
                continue;
            };
            let before = out.len();
            let unset = format!("kubectl annotate serviceaccount {name} -n {ns} {key}-");
            if !well_formed(key, value) {
                out.push(sa_finding(
                    ns,
                    name,
                    format!("ServiceAccount {ns}/{name} annotation {key}={value} is malformed, so it points nowhere"),
                    format!("correct the value through the wid plan, or remove it: {unset}"),
                ));
            } else if key == AWS_ROLE && ctx.cloud.aws_missing_roles.iter().any(|r| r == value) {
                out.push(sa_finding(
                    ns,
                    name,
                    format!("ServiceAccount {ns}/{name} annotation {key} points at IAM role {value}, which does not exist"),
                    format!("create the role with wid apply (declare it in the plan), or remove the annotation: {unset}"),
                ));
            }
            match expected {
                Some(None) => out.push(sa_finding(
                    ns,
                    name,
                    format!("ServiceAccount {ns}/{name} is annotated {key}={value} but the plan declares no workload for it"),
                    format!("declare service_account = \"{name}\" in namespace {ns} in the plan, or remove the annotation: {unset}"),
                )),
                Some(Some(w)) => match w.annotations.get(key) {
                    None => out.push(sa_finding(
                        ns,
                        name,
                        format!("ServiceAccount {ns}/{name} is annotated {key}={value} but the plan writes no {key} for it"),
                        format!("remove the annotation ({unset}) or add the identity to the plan workload"),
                    )),
                    Some(want) if want != value => out.push(
                        sa_finding(
                            ns,
                            name,
                            format!("ServiceAccount {ns}/{name} annotation {key} is {value} but the plan says {want}"),
                            format!("run wid apply to restore the planned value, or change the plan: kubectl annotate serviceaccount {name} -n {ns} --overwrite {key}={want}"),
                        )
                        .detail("expected", want.clone()),
                    ),
                    Some(_) => {}
                },
                None => {}
            }
            for f in &mut out[before..] {
                f.field = Some(child("metadata.annotations", key));
            }
        }
    }
    if let Some(e) = &ctx.expected {
        for w in &e.workloads {
            let sa = snap.service_account(&w.namespace, &w.service_account);
            let (ns, name) = (&w.namespace, &w.service_account);
            for (key, want) in &w.annotations {
                let have = sa
                    .and_then(|s| s.metadata.annotations.as_ref())
                    .and_then(|a| a.get(key));
                if have.is_some() {
                    continue;
                }
                let why = if sa.is_some() {
                    format!("lacks the annotation {key}={want} the plan declares")
                } else {
                    format!("does not exist; the plan declares it with {key}={want}")
                };
                out.push(sa_finding(
                    ns,
                    name,
                    format!("ServiceAccount {ns}/{name} {why}"),
                    "run wid apply to create or annotate it".to_owned(),
                ));
            }
        }
    }
    for role in &ctx.cloud.aws_roles {
        out.extend(aws_trust(role));
    }
    for b in &ctx.cloud.gcp_bindings {
        for m in &b.members {
            let wide = if !m.starts_with("principalSet://") {
                continue;
            } else if m.contains("/namespace/") {
                "every pod of a namespace"
            } else if m.contains("/kubernetes.cluster/") {
                "every pod of a cluster"
            } else {
                "a set of principals"
            };
            out.push(
                Finding::new(
                    CHECK.id,
                    Severity::High,
                    ObjectRef::cluster("GCPServiceAccount", &b.service_account),
                    format!("Google service account {} grants {} to {m} ({wide})", b.service_account, b.role),
                    format!(
                        "replace the member with the one KSA that needs it (principal://…/subject/ns/NAMESPACE/sa/KSA) by declaring the workload in the wid plan, and remove it: gcloud iam service-accounts remove-iam-policy-binding {} --role={} --member='{m}'",
                        b.service_account, b.role
                    ),
                )
                .detail("member", m.clone()),
            );
        }
    }
    out
}

fn as_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The too-broad trust statements of one IAM role.
fn aws_trust(role: &AwsRoleTrust) -> Vec<Finding> {
    let statements = match role.trust_policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    };
    let mut problems: Vec<String> = Vec::new();
    for st in &statements {
        if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let principal = st.get("Principal");
        let federated = as_list(principal.and_then(|p| p.get("Federated")));
        let services = as_list(principal.and_then(|p| p.get("Service")));
        let actions = as_list(st.get("Action"));
        // (operator, key, values) for every condition entry.
        let mut conds: Vec<(String, String, Vec<String>)> = Vec::new();
        if let Some(Value::Object(ops)) = st.get("Condition") {
            for (op, kv) in ops {
                if let Value::Object(kv) = kv {
                    for (k, v) in kv {
                        conds.push((op.clone(), k.clone(), as_list(Some(v))));
                    }
                }
            }
        }
        let oidc = federated.iter().any(|f| f.contains(":oidc-provider/"));
        if oidc
            && actions
                .iter()
                .any(|a| a == "sts:AssumeRoleWithWebIdentity" || a == "sts:*" || a == "*")
        {
            let subs: Vec<&(String, String, Vec<String>)> = conds
                .iter()
                .filter(|(_, k, _)| k.ends_with(":sub"))
                .collect();
            if subs.is_empty() {
                problems.push("IRSA trust has no :sub condition (any ServiceAccount of the cluster can assume it)".to_owned());
            }
            for (op, _, values) in &subs {
                let wild: Vec<&String> = values
                    .iter()
                    .filter(|v| v.contains('*') || v.contains('?'))
                    .collect();
                if op.contains("Like") && !wild.is_empty() {
                    let joined: Vec<&str> = wild.iter().map(|s| s.as_str()).collect();
                    problems.push(format!(
                        "IRSA trust matches subjects with {op} {}",
                        joined.join(",")
                    ));
                }
            }
            if !conds.iter().any(|(_, k, _)| k.ends_with(":aud")) {
                problems.push("IRSA trust has no :aud condition".to_owned());
            }
        }
        if services.iter().any(|s| s == "pods.eks.amazonaws.com") {
            let tagged = conds.iter().any(|(_, k, _)| {
                k.starts_with("aws:RequestTag/kubernetes-")
                    || k.starts_with("aws:PrincipalTag/kubernetes-")
                    || k.starts_with("aws:RequestTag/eks-cluster-")
            });
            if !tagged {
                problems.push("EKS Pod Identity trust has no session-tag condition (any association in the account can use it)".to_owned());
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
        .into_iter()
        .map(|p| {
            Finding::new(
                CHECK.id,
                Severity::High,
                ObjectRef::cluster("IAMRole", &role.role_arn),
                format!("IAM role {}: {p}", role.role_arn),
                "pin the trust to one KSA (StringEquals on :sub system:serviceaccount:NAMESPACE:KSA and :aud sts.amazonaws.com, or aws:RequestTag/kubernetes-namespace and kubernetes-service-account for Pod Identity) by declaring the workload in the wid plan and running wid apply".to_owned(),
            )
        })
        .collect()
}
