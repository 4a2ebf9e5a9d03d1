//! Compiling a plan: each provider turns its part of every workload into resources, and
//! the cloud providers' KSA annotations flow into the Kubernetes side.

use std::collections::BTreeMap;

use wid_core::{AttrValue, Resource, ResourceId, WorkloadRef};

use crate::plan::{ClusterKind, Diagnostics, Plan, PlanDiagnostic, field_issue};

/// The OIDC issuer of each cluster that needs one, by cluster name.
pub type Issuers = BTreeMap<String, String>;

/// Everything a plan wants.
#[derive(Debug, Default)]
pub struct Desired {
    /// The resources, sorted by id.
    pub resources: Vec<Resource>,
    /// The workload each resource serves (`cluster/namespace/sa`), or `cluster NAME` for
    /// cluster-wide resources; used to group the plan's output.
    pub groups: BTreeMap<ResourceId, String>,
}

/// Issuers of the same length as the real ones, so that size limits (IAM's trust policy
/// quota) can be checked before any network call. EKS issuers are always
/// `https://oidc.eks.REGION.amazonaws.com/id/` and 32 hex digits.
pub fn offline_issuers(plan: &Plan) -> Issuers {
    plan.clusters
        .iter()
        .filter_map(|(name, c)| {
            let issuer = c.spec.issuer.clone().or_else(|| match c.spec.kind {
                ClusterKind::Eks => Some(format!(
                    "https://oidc.eks.{}.amazonaws.com/id/{}",
                    c.spec.region.as_deref().unwrap_or_default(),
                    "0".repeat(32)
                )),
                _ => None,
            })?;
            Some((name.clone(), issuer))
        })
        .collect()
}

/// The label a workload's resources are grouped under.
fn workload_label(w: &WorkloadRef) -> String {
    format!("{}/{}/{}", w.cluster, w.namespace, w.service_account)
}

/// Compiles the plan with the clusters' issuers. Errors are plan diagnostics (a shared
/// role whose workloads disagree, a trust policy over IAM's size limit).
pub fn compile(plan: &Plan, issuers: &Issuers) -> Result<Desired, Diagnostics> {
    let mut diags = Diagnostics::default();
    let refs: Vec<WorkloadRef> = plan
        .workloads
        .iter()
        .map(|w| WorkloadRef {
            cluster: w.spec.cluster.clone(),
            namespace: w.spec.namespace.clone(),
            service_account: w.spec.service_account.clone(),
        })
        .collect();
    let origins: Vec<String> = plan
        .workloads
        .iter()
        .zip(&refs)
        .map(|(w, r)| format!("{} ({})", workload_label(r), w.origin()))
        .collect();

    // Cloud side first: it decides the KSA annotations.
    let eks: BTreeMap<&str, wid_aws::EksCluster> = plan
        .clusters
        .iter()
        .filter(|(_, c)| c.spec.kind == ClusterKind::Eks)
        .map(|(name, c)| {
            let cluster = wid_aws::EksCluster {
                plan_name: name.clone(),
                account: c.spec.account.clone().unwrap_or_default(),
                region: c.spec.region.clone().unwrap_or_default(),
                eks_name: c.spec.name.clone().unwrap_or_default(),
                issuer: issuers.get(name).cloned(),
            };
            (name.as_str(), cluster)
        })
        .collect();
    let mut aws_index = Vec::new();
    let mut aws_items = Vec::new();
    for (i, w) in plan.workloads.iter().enumerate() {
        let (Some(block), Some(cluster)) = (&w.spec.aws, eks.get(w.spec.cluster.as_str())) else {
            continue;
        };
        aws_index.push(i);
        aws_items.push(wid_aws::AwsWorkload {
            block,
            cluster,
            workload: refs[i].clone(),
            plan_dir: w.dir.clone(),
            origin: origins[i].clone(),
        });
    }
    let mut contributions: BTreeMap<usize, wid_core::Contribution> = BTreeMap::new();
    let mut resources = Vec::new();
    let options = wid_aws::CompileOptions {
        trust_policy_limit: plan
            .aws
            .trust_policy_limit
            .unwrap_or(wid_aws::CompileOptions::default().trust_policy_limit),
    };
    match wid_aws::compile_with(&aws_items, &plan.name, &options) {
        Ok(compiled) => {
            resources.extend(compiled.resources);
            for (k, c) in compiled.contributions.into_iter().enumerate() {
                contributions.insert(aws_index[k], c);
            }
        }
        Err(issues) => {
            for (k, issue) in issues {
                let entry = &plan.workloads[aws_index[k]];
                diags.push(field_issue(entry, &issue));
            }
        }
    }

    // Kubernetes side: every workload's KSA, with the clouds' annotations.
    let clusters: Vec<wid_kubernetes::ClusterOptions> = plan
        .clusters
        .iter()
        .map(|(name, c)| wid_kubernetes::ClusterOptions {
            name: name.clone(),
            create_namespaces: c.spec.create_namespaces,
            harden_default_service_accounts: c.spec.harden_default_service_accounts,
        })
        .collect();
    let ksas: Vec<wid_kubernetes::KsaSpec> = plan
        .workloads
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let contribution = contributions.remove(&i).unwrap_or_default();
            let mut annotations: BTreeMap<String, AttrValue> = w
                .spec
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), AttrValue::from(v.clone())))
                .collect();
            annotations.extend(contribution.ksa_annotations);
            wid_kubernetes::KsaSpec {
                workload: refs[i].clone(),
                labels: w.spec.labels.clone(),
                annotations,
                automount: w.spec.automount_token,
                rules: w
                    .spec
                    .kubernetes
                    .as_ref()
                    .map(|k| k.rules.clone())
                    .unwrap_or_default(),
                adopt: w.spec.adopt,
                depends_on: contribution.ksa_depends_on,
                origin: origins[i].clone(),
            }
        })
        .collect();
    resources.extend(wid_kubernetes::compile(&clusters, &ksas));
    if !diags.is_empty() {
        diags.sort();
        return Err(diags);
    }
    resources.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(dup) = resources.windows(2).find(|w| w[0].id == w[1].id) {
        diags.push(PlanDiagnostic::general(format!(
            "two workloads compile to the same resource {}",
            dup[0].id
        )));
        return Err(diags);
    }
    let groups = resources
        .iter()
        .map(|r| {
            let cluster_wide = matches!(r.id.kind(), "namespace" | "default-serviceaccount");
            let group = match (&r.origin, r.id.provider()) {
                (_, "k8s") if cluster_wide => format!("cluster {}", r.id.part(0)),
                (_, "aws") if r.id.kind() == "iam-oidc-provider" => {
                    format!("aws account {} (shared)", r.id.part(0))
                }
                (Some(origin), _) => origin.clone(),
                (None, "k8s") => format!("cluster {}", r.id.part(0)),
                (None, provider) => format!("{provider} shared"),
            };
            (r.id.clone(), group)
        })
        .collect();
    Ok(Desired { resources, groups })
}
