//! AWS: the `aws` block on EKS clusters (IRSA and EKS Pod Identity), through `wid-aws`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use wid_aws::{AwsOptions, AwsProvider, AwsWorkload, CompileOptions, EksCluster, Mechanism};
use wid_core::import::{Imported, KsaFacts};
use wid_core::{FieldIssue, Provider, ProviderError, Resource, ResourceId};
use wid_sandbox::{ClusterDecl, EksDecl};

use super::import::{ClusterHints, ImportRequest, missing, notes, pick};
use super::{Cloud, CompileIssues, Compiled, ConnectEnv};
use crate::cli::CliError;
use crate::model::{Issuers, workload_ref};
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

    /// The roles, Pod Identity associations and OIDC providers the plan names. An OIDC
    /// provider's id holds the issuer preflight looks up; before it, the offline stand-in
    /// names the same account, and the account is all its read (one list) needs.
    fn read_ahead_ids(&self, plan: &Plan) -> Vec<ResourceId> {
        let clusters = eks_clusters(plan, &crate::model::offline(plan).issuers);
        let mut out = BTreeSet::new();
        for w in &plan.workloads {
            let (Some(block), Some(cluster)) = (
                w.spec.aws.as_ref(),
                clusters.iter().find(|c| c.plan_name == w.spec.cluster),
            ) else {
                continue;
            };
            let account = block.account.as_deref().unwrap_or(&cluster.account);
            out.insert(wid_aws::ids::role_id(account, &block.role));
            match block.mechanism {
                Mechanism::Irsa => {
                    if let Some(issuer) = &cluster.issuer {
                        out.insert(wid_aws::ids::oidc_id(account, issuer));
                    }
                }
                Mechanism::PodIdentity => {
                    out.insert(wid_aws::ids::association_id(
                        &cluster.account,
                        &cluster.region,
                        &cluster.eks_name,
                        &w.spec.namespace,
                        &w.spec.service_account,
                    ));
                }
            }
        }
        out.into_iter().collect()
    }

    fn compile(
        &self,
        plan: &Plan,
        found: &Preflight,
        origins: &[Arc<str>],
    ) -> Result<Compiled, CompileIssues> {
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
                origin: origins[i].clone(),
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
        let aws =
            AwsProvider::new(options(env, plan.aws.profiles.clone()), env.counter.clone()).await?;
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

    fn recognizes(&self, hints: &ClusterHints, ksas: &[KsaFacts]) -> Option<String> {
        if let Some(c) = &hints.context {
            if eks_context(&c.name).is_some() || eksctl_context(&c.name).is_some() {
                return Some(format!("its kubeconfig context is named {}", c.name));
            }
            if server_region(&c.server).is_some() {
                return Some(format!("its API server is {}", c.server));
            }
        }
        ksas.iter()
            .any(|k| {
                k.annotations
                    .contains_key(wid_aws::compile::ROLE_ARN_ANNOTATION)
            })
            .then(|| format!("its KSAs carry {}", wid_aws::compile::ROLE_ARN_ANNOTATION))
    }

    async fn import(
        &self,
        request: &ImportRequest<'_>,
        env: &ConnectEnv<'_>,
    ) -> Result<Imported, CliError> {
        let h = request.hints;
        let decl = h.decl.as_ref().and_then(|d| d.eks.as_ref());
        let ctx_name = h
            .context
            .as_ref()
            .map(|c| c.name.as_str())
            .unwrap_or_default();
        let arn = eks_context(ctx_name);
        let eksctl = eksctl_context(ctx_name);
        let server = h.context.as_ref().and_then(|c| server_region(&c.server));
        let from_ctx = format!("from the kubeconfig context {ctx_name}");
        let role_accounts: BTreeSet<&str> = request
            .ksas
            .iter()
            .filter_map(|k| k.annotations.get(wid_aws::compile::ROLE_ARN_ANNOTATION))
            .filter_map(|a| wid_aws::ids::parse_role_arn(a).map(|(acc, _)| acc))
            .collect();
        let one_account = (role_accounts.len() == 1)
            .then(|| role_accounts.iter().next().map(|a| (*a).to_owned()))
            .flatten();
        let account = pick([
            (h.flags.account.clone(), "from --account".to_owned()),
            (decl.map(|d| d.account.clone()), "as the sandbox declares it".to_owned()),
            (arn.as_ref().map(|a| a.1.clone()), from_ctx.clone()),
            (
                one_account,
                "the account of the roles its KSAs name (pass --account if the cluster is in another)"
                    .to_owned(),
            ),
        ]);
        let region = pick([
            (h.flags.region.clone(), "from --region".to_owned()),
            (
                decl.map(|d| d.region.clone()),
                "as the sandbox declares it".to_owned(),
            ),
            (arn.as_ref().map(|a| a.0.clone()), from_ctx.clone()),
            (eksctl.as_ref().map(|e| e.1.clone()), from_ctx.clone()),
            (server, "from its API server's host name".to_owned()),
        ]);
        let name = pick([
            (h.flags.name.clone(), "from --eks-cluster".to_owned()),
            (
                decl.map(|d| d.name.clone()),
                "as the sandbox declares it".to_owned(),
            ),
            (arn.as_ref().map(|a| a.2.clone()), from_ctx.clone()),
            (eksctl.as_ref().map(|e| e.0.clone()), from_ctx),
        ]);
        let (Some(account), Some(region), Some(name)) =
            (account.clone(), region.clone(), name.clone())
        else {
            let mut gaps = Vec::new();
            if account.is_none() {
                gaps.push(("AWS account", "--account ACCOUNT"));
            }
            if region.is_none() {
                gaps.push(("region", "--region REGION"));
            }
            if name.is_none() {
                gaps.push(("name in EKS", "--eks-cluster NAME"));
            }
            return Err(missing("EKS", &gaps));
        };
        let cluster = EksCluster {
            plan_name: request.cluster.to_owned(),
            account: account.0.clone(),
            region: region.0.clone(),
            eks_name: name.0.clone(),
            issuer: h.flags.issuer.clone(),
        };
        let aws = AwsProvider::new(options(env, BTreeMap::new()), env.counter.clone()).await?;
        let mut out = aws.import(&cluster, request.ksas, request.plan).await?;
        let mut fields = Map::new();
        fields.insert("account".into(), Value::String(account.0.clone()));
        fields.insert("region".into(), Value::String(region.0.clone()));
        fields.insert("name".into(), Value::String(name.0.clone()));
        if let Some(issuer) = &h.flags.issuer {
            fields.insert("issuer".into(), Value::String(issuer.clone()));
        }
        fields.extend(std::mem::take(&mut out.cluster));
        out.cluster = fields;
        out.cluster_notes = notes(&[("account", &account), ("region", &region), ("name", &name)]);
        Ok(out)
    }
}

/// How the AWS provider reaches AWS: an explicit endpoint (moto), the sandbox, or the
/// SDK's own settings.
fn options(env: &ConnectEnv<'_>, profiles: BTreeMap<String, String>) -> AwsOptions {
    AwsOptions {
        endpoint_url: env
            .target
            .aws_endpoint
            .clone()
            .or_else(|| env.sandbox.map(|s| s.cloud_url())),
        sandbox: env.sandbox.is_some() && env.target.aws_endpoint.is_none(),
        profiles,
        limits: env.target.limits.clone(),
    }
}

/// (region, account, name) of a context named after the cluster's ARN, as
/// `aws eks update-kubeconfig` names it: `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
fn eks_context(name: &str) -> Option<(String, String, String)> {
    let rest = name.strip_prefix("arn:")?;
    let (_, rest) = rest.split_once(":eks:")?;
    let (region, rest) = rest.split_once(':')?;
    let (account, rest) = rest.split_once(':')?;
    let cluster = rest.strip_prefix("cluster/")?;
    (!region.is_empty() && account.len() == 12 && !cluster.is_empty())
        .then(|| (region.to_owned(), account.to_owned(), cluster.to_owned()))
}

/// (name, region) of a context named as eksctl names it: `USER@NAME.REGION.eksctl.io`.
fn eksctl_context(name: &str) -> Option<(String, String)> {
    let (_, host) = name.rsplit_once('@')?;
    let rest = host.strip_suffix(".eksctl.io")?;
    let (cluster, region) = rest.rsplit_once('.')?;
    (!cluster.is_empty() && !region.is_empty()).then(|| (cluster.to_owned(), region.to_owned()))
}

/// The region in an EKS API server's host name (`https://ID.gr7.REGION.eks.amazonaws.com`).
fn server_region(server: &str) -> Option<String> {
    let host = server
        .trim_start_matches("https://")
        .split(['/', ':'])
        .next()?;
    let rest = host.strip_suffix(".eks.amazonaws.com")?;
    let region = rest.rsplit('.').next()?;
    (region.matches('-').count() >= 2).then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eks_contexts_name_their_cluster() {
        assert_eq!(
            eks_context("arn:aws:eks:eu-west-1:111122223333:cluster/prod"),
            Some(("eu-west-1".into(), "111122223333".into(), "prod".into()))
        );
        assert_eq!(eks_context("prod"), None);
        assert_eq!(
            eksctl_context("alice@prod.us-east-2.eksctl.io"),
            Some(("prod".into(), "us-east-2".into()))
        );
        assert_eq!(
            server_region("https://ABCDEF0123.gr7.ap-south-1.eks.amazonaws.com"),
            Some("ap-south-1".into())
        );
        assert_eq!(server_region("https://10.0.0.1:6443"), None);
    }
}
