//! AWS: the `aws` block on EKS clusters (IRSA and EKS Pod Identity), through `wid-aws`.

use std::sync::Arc;

use async_trait::async_trait;
use wid_aws::{AwsOptions, AwsProvider, AwsWorkload, CompileOptions, EksCluster};
use wid_core::{FieldIssue, Provider, ProviderError, Resource};
use wid_sandbox::{ClusterDecl, EksDecl};

use super::{Cloud, CompileIssues, Compiled, ConnectEnv};
use crate::model::{Issuers, workload_origin, workload_ref};
use crate::plan::{ClusterKind, ClusterSpec, Entry, Plan, WorkloadSpec};
use wid_core::Preflight;

/// The AWS entry of [`super::ALL`].
pub struct Aws;

/// The plan's EKS clusters as the AWS provider sees them, with the issuers known so far.
fn eks_clusters(plan: &Plan, issuers: &Issuers) -> Vec<EksCluster> {
    plan.clusters
        .iter()
        .filter(|(_, c)| c.spec.kind == ClusterKind::Eks)
        .map(|(name, c)| EksCluster {
            plan_name: name.clone(),
            account: c.spec.account.clone().unwrap_or_default(),
            region: c.spec.region.clone().unwrap_or_default(),
            eks_name: c.spec.name.clone().unwrap_or_default(),
            issuer: issuers.get(name).cloned().or_else(|| c.spec.issuer.clone()),
        })
        .collect()
}

#[async_trait]
impl Cloud for Aws {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn cluster_kind(&self) -> ClusterKind {
        ClusterKind::Eks
    }

    fn used_by(&self, workload: &WorkloadSpec) -> bool {
        workload.aws.is_some()
    }

    fn validate(&self, workload: &Entry<WorkloadSpec>) -> Vec<FieldIssue> {
        workload
            .spec
            .aws
            .as_ref()
            .map(|block| wid_aws::validate_block(block, &workload.dir))
            .unwrap_or_default()
    }

    fn referenced_files(&self, workload: &Entry<WorkloadSpec>) -> Vec<std::path::PathBuf> {
        let Some(block) = &workload.spec.aws else {
            return Vec::new();
        };
        block
            .inline_policies
            .values()
            .filter_map(|policy| match policy {
                wid_aws::InlinePolicy::File { file } => Some(workload.dir.join(file)),
                wid_aws::InlinePolicy::Json(_) => None,
            })
            .collect()
    }

    /// EKS issuers are always `https://oidc.eks.REGION.amazonaws.com/id/` and 32 hex
    /// digits.
    fn offline_issuer(&self, cluster: &ClusterSpec) -> Option<String> {
        Some(format!(
            "https://oidc.eks.{}.amazonaws.com/id/{}",
            cluster.region.as_deref().unwrap_or_default(),
            "0".repeat(32)
        ))
    }

    fn compile(&self, plan: &Plan, found: &Preflight) -> Result<Compiled, CompileIssues> {
        let clusters = eks_clusters(plan, &found.issuers);
        let mut index = Vec::new();
        let mut items = Vec::new();
        for (i, w) in plan.workloads.iter().enumerate() {
            let block = w.spec.aws.as_ref();
            let cluster = clusters.iter().find(|c| c.plan_name == w.spec.cluster);
            let (Some(block), Some(cluster)) = (block, cluster) else {
                continue;
            };
            index.push(i);
            items.push(AwsWorkload {
                block,
                cluster,
                workload: workload_ref(w),
                plan_dir: w.dir.clone(),
                origin: workload_origin(w),
            });
        }
        let options = CompileOptions {
            trust_policy_limit: plan
                .aws
                .trust_policy_limit
                .unwrap_or(CompileOptions::default().trust_policy_limit),
        };
        match wid_aws::compile_with(&items, &plan.name, &options) {
            Ok(compiled) => Ok(Compiled {
                resources: compiled.resources,
                contributions: compiled
                    .contributions
                    .into_iter()
                    .enumerate()
                    .map(|(k, c)| (index[k], c))
                    .collect(),
            }),
            Err(issues) => Err(issues.into_iter().map(|(k, i)| (index[k], i)).collect()),
        }
    }

    fn group(&self, resource: &Resource) -> Option<String> {
        (resource.id.kind() == wid_aws::ids::KIND_OIDC)
            .then(|| format!("aws account {} (shared)", resource.id.part(0)))
    }

    fn sandbox_cluster(&self, _: &str, cluster: &ClusterSpec, decl: &mut ClusterDecl) {
        decl.eks = Some(EksDecl {
            account: cluster.account.clone().unwrap_or_default(),
            region: cluster.region.clone().unwrap_or_default(),
            name: cluster.name.clone().unwrap_or_default(),
        });
    }

    fn needed(&self, plan: &Plan) -> bool {
        plan.workloads.iter().any(|w| self.used_by(&w.spec))
            || plan
                .clusters
                .values()
                .any(|c| c.spec.kind == ClusterKind::Eks)
            || !plan.aws.profiles.is_empty()
    }

    async fn connect(
        &self,
        plan: &Plan,
        env: &ConnectEnv<'_>,
    ) -> Result<Arc<dyn Provider>, ProviderError> {
        let opts = AwsOptions {
            endpoint_url: env
                .target
                .aws_endpoint
                .clone()
                .or_else(|| env.sandbox.map(|s| s.cloud_url())),
            sandbox: env.sandbox.is_some() && env.target.aws_endpoint.is_none(),
            profiles: plan.aws.profiles.clone(),
            limits: env.target.limits.clone(),
        };
        let aws = AwsProvider::new(opts, env.counter.clone()).await?;
        // Prune scans every EKS cluster of the plan, including those whose workloads all
        // left it, and every account its roles name; preflight discovers the issuers the
        // plan does not set.
        aws.know_clusters(&eks_clusters(plan, &Issuers::new()));
        aws.know_accounts(plan.workloads.iter().filter_map(|w| {
            let block = w.spec.aws.as_ref()?;
            block.account.as_deref().or_else(|| {
                plan.clusters
                    .get(&w.spec.cluster)
                    .and_then(|c| c.spec.account.as_deref())
            })
        }));
        Ok(Arc::new(aws))
    }
}
