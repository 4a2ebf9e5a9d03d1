//! Azure: the `azure` block on AKS clusters (Microsoft Entra Workload ID), through
//! `wid-azure`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use wid_azure::{AksCluster, AzureOptions, AzureProvider, AzureWorkload};
use wid_core::{ErrorKind, FieldIssue, Preflight, Provider, ProviderError, Resource};
use wid_sandbox::{AksDecl, ClusterDecl};

use super::{Cloud, CompileIssues, Compiled, ConnectEnv};
use crate::model::{Issuers, workload_origin, workload_ref};
use crate::plan::{ClusterKind, ClusterSpec, Entry, Plan, WorkloadSpec};

/// The Azure entry of [`super::ALL`].
pub struct Azure;

/// The plan's AKS clusters as the Azure provider sees them, with the issuers known so far.
fn aks_clusters(plan: &Plan, issuers: &Issuers) -> Vec<AksCluster> {
    plan.clusters
        .iter()
        .filter(|(_, c)| c.spec.kind == ClusterKind::Aks)
        .map(|(name, c)| AksCluster {
            plan_name: name.clone(),
            subscription: c.spec.subscription.clone().unwrap_or_default(),
            resource_group: c.spec.resource_group.clone().unwrap_or_default(),
            name: c.spec.name.clone().unwrap_or_default(),
            tenant: c.spec.tenant.clone().unwrap_or_default(),
            issuer: issuers.get(name).cloned().or_else(|| c.spec.issuer.clone()),
        })
        .collect()
}

/// The resource groups whose location compile needs (identities without `location`), by
/// plan cluster name.
fn location_groups(plan: &Plan) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for w in &plan.workloads {
        let (Some(block), Some(cluster)) = (&w.spec.azure, plan.clusters.get(&w.spec.cluster))
        else {
            continue;
        };
        if block.location.is_none() {
            let rg = block
                .resource_group
                .clone()
                .or_else(|| cluster.spec.resource_group.clone())
                .unwrap_or_default();
            out.entry(w.spec.cluster.clone()).or_default().insert(rg);
        }
    }
    out
}

#[async_trait]
impl Cloud for Azure {
    fn name(&self) -> &'static str {
        "azure"
    }

    fn cluster_kind(&self) -> ClusterKind {
        ClusterKind::Aks
    }

    fn used_by(&self, workload: &WorkloadSpec) -> bool {
        workload.azure.is_some()
    }

    fn validate(&self, workload: &Entry<WorkloadSpec>) -> Vec<FieldIssue> {
        workload
            .spec
            .azure
            .as_ref()
            .map(wid_azure::validate_block)
            .unwrap_or_default()
    }

    /// AKS issuers are `https://REGION.oic.prod-aks.azure.com/TENANT/GUID/`.
    fn offline_issuer(&self, cluster: &ClusterSpec) -> Option<String> {
        Some(format!(
            "https://eastus.oic.prod-aks.azure.com/{}/00000000-0000-0000-0000-000000000000/",
            cluster.tenant.as_deref().unwrap_or_default()
        ))
    }

    fn compile(&self, plan: &Plan, found: &Preflight) -> Result<Compiled, CompileIssues> {
        let clusters = aks_clusters(plan, &found.issuers);
        let mut index = Vec::new();
        let mut items = Vec::new();
        for (i, w) in plan.workloads.iter().enumerate() {
            let block = w.spec.azure.as_ref();
            let cluster = clusters.iter().find(|c| c.plan_name == w.spec.cluster);
            let (Some(block), Some(cluster)) = (block, cluster) else {
                continue;
            };
            index.push(i);
            items.push(AzureWorkload {
                block,
                cluster,
                workload: workload_ref(w),
                origin: workload_origin(w),
            });
        }
        let location = |cluster: &str, fact: &str| found.fact(cluster, fact).map(str::to_owned);
        match wid_azure::compile(&items, &plan.name, &location) {
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

    /// An identity may serve several workloads: it gets a group of its own.
    fn group(&self, resource: &Resource) -> Option<String> {
        (resource.id.kind() == wid_azure::ids::KIND_IDENTITY).then(|| {
            format!(
                "azure identity {} (resource group {})",
                resource.id.part(2),
                resource.id.part(1)
            )
        })
    }

    fn sandbox_cluster(&self, _: &str, cluster: &ClusterSpec, decl: &mut ClusterDecl) {
        decl.aks = Some(AksDecl {
            subscription: cluster.subscription.clone().unwrap_or_default(),
            resource_group: cluster.resource_group.clone().unwrap_or_default(),
            name: cluster.name.clone().unwrap_or_default(),
            tenant: cluster.tenant.clone(),
            location: None,
        });
    }

    async fn connect(
        &self,
        plan: &Plan,
        env: &ConnectEnv<'_>,
    ) -> Result<Arc<dyn Provider>, ProviderError> {
        let options = match env.sandbox {
            Some(sandbox) => {
                let (Some(url), Some(ca)) = (sandbox.azure_url(), sandbox.azure_ca()) else {
                    return Err(ProviderError::new(
                        ErrorKind::Invalid,
                        "the sandbox serves no Azure endpoint",
                    )
                    .with_hint("restart `wid sandbox serve` with this version of wid"));
                };
                // A small regular file, like every file wid reads.
                let pem = wid_core::read_referenced_file(&ca, wid_core::MAX_REFERENCED_FILE_BYTES)
                    .map_err(|e| {
                        ProviderError::new(
                            ErrorKind::Invalid,
                            format!("cannot read the sandbox's Azure CA: {e}"),
                        )
                    })?
                    .into_bytes();
                AzureOptions {
                    endpoint: Some(url),
                    sandbox_ca: Some(pem),
                    limits: env.target.limits.clone(),
                }
            }
            None => AzureOptions {
                limits: env.target.limits.clone(),
                ..AzureOptions::default()
            },
        };
        let azure = AzureProvider::new(options, env.counter.clone())?;
        // Preflight reads these clusters and the resource groups identities default
        // their location to; prune scans the clusters' subscriptions.
        azure.know_plan(&aks_clusters(plan, &Issuers::new()), location_groups(plan));
        Ok(Arc::new(azure))
    }
}
