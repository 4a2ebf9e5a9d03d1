//! SA007 projected-tokens: hand-written projected `serviceAccountToken` volumes without an
//! explicit audience, or with an expiry above the policy maximum (default 1 h). The
//! auto-injected `kube-api-access-*` volumes of live pods are skipped: they are the
//! automount itself, which SA002 judges.

use super::Check;
use crate::context::Context;
use crate::model::{Finding, Severity};
use crate::snapshot::Snapshot;
use crate::workload::workloads;

/// The API default for `expirationSeconds` when a projection leaves it unset.
const API_DEFAULT_EXPIRATION: i64 = 3600;
/// Name prefix of the volume the ServiceAccount admission plugin injects.
const INJECTED_PREFIX: &str = "kube-api-access-";

/// The check.
pub static CHECK: Check = Check {
    id: "SA007",
    name: "projected-tokens",
    severity: Severity::Medium,
    summary: "Projected serviceAccountToken volumes set an explicit audience and an expiry no longer than the \
policy maximum (default 3600 s; the API minimum is 600 s).",
    why: "Without an audience the token is issued for the API server itself, so whatever service receives it can \
replay it against the Kubernetes API. A long expiry widens the window in which a leaked token works. The kubelet \
rotates projected tokens at 80 % of their lifetime, so short lifetimes cost nothing.",
    example: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: api-consumer\n  namespace: shop\nspec:\n  containers:\n  - name: app\n    image: api-consumer:1.0\n  volumes:\n  - name: sa-token\n    projected:\n      sources:\n      - serviceAccountToken:\n          path: token\n          expirationSeconds: 7200   # above 1 h, and no audience\n",
    fix: "Give the projection the audience of the service that will read the token and a short expiry:\n\n  - serviceAccountToken:\n      path: token\n      audience: https://my-api.example.com   # sts.amazonaws.com for IRSA, api://AzureADTokenExchange for AKS\n      expirationSeconds: 3600\n",
    guide: "Use projected tokens with explicit expiration and audience instead of legacy token Secrets.",
    others: "No established scanner checks projected token audience or expiry. For reference, the Azure Workload Identity webhook injects audience `api://AzureADTokenExchange` with a 3600 s expiry. The API defaults `expirationSeconds` to 3600 and requires at least 600; `--service-account-extend-token-expiration` (kubescape C-0290) stretches only the auto-injected tokens.",
    references: &[
        (
            "k8s-openapi: ServiceAccountTokenProjection",
            "https://docs.rs/k8s-openapi/latest/k8s_openapi/api/core/v1/struct.ServiceAccountTokenProjection.html",
        ),
        (
            "Kubernetes: configure service accounts for pods",
            "https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/",
        ),
        (
            "Azure Workload Identity webhook",
            "https://github.com/Azure/azure-workload-identity",
        ),
    ],
    example_context: "",
    run,
};

fn run(snap: &Snapshot, ctx: &Context) -> Vec<Finding> {
    let max = ctx.policy.max_token_expiration_seconds;
    let mut out = Vec::new();
    for w in workloads(snap) {
        for (vi, v) in w.spec.volumes.iter().flatten().enumerate() {
            if v.name.starts_with(INJECTED_PREFIX) {
                continue;
            }
            let Some(projected) = &v.projected else {
                continue;
            };
            for (si, src) in projected.sources.iter().flatten().enumerate() {
                let Some(t) = &src.service_account_token else {
                    continue;
                };
                let mut problems = Vec::new();
                if t.audience.as_deref().unwrap_or("").is_empty() {
                    problems.push("has no audience (defaults to the API server)".to_owned());
                }
                let exp = t.expiration_seconds.unwrap_or(API_DEFAULT_EXPIRATION);
                if exp > max {
                    problems.push(format!(
                        "expires after {exp} s, above the policy maximum of {max} s"
                    ));
                }
                if problems.is_empty() {
                    continue;
                }
                out.push(
                    Finding::new(
                        CHECK.id,
                        CHECK.severity,
                        w.object_ref(),
                        format!(
                            "{} projects a ServiceAccount token in volume {} (path {}) that {}",
                            w.label(),
                            v.name,
                            t.path,
                            problems.join(" and ")
                        ),
                        format!(
                            "in {} volume {}, set serviceAccountToken.audience to the token's consumer and expirationSeconds to at most {max}",
                            w.spec_path, v.name
                        ),
                    )
                    .at(format!(
                        "{}.volumes[{vi}].projected.sources[{si}].serviceAccountToken",
                        w.spec_path
                    ))
                    .detail("volume", v.name.clone())
                    .detail("expiration_seconds", exp.to_string()),
                );
            }
        }
    }
    out
}
