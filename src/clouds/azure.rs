//! Azure: the `azure` block on AKS clusters (Microsoft Entra Workload ID), through
//! `wid-azure`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use wid_azure::{AksCluster, AzureBlock, AzureOptions, AzureProvider, AzureWorkload};
use wid_core::import::{Imported, KsaFacts};
use wid_core::{ErrorKind, FieldIssue, Preflight, Provider, ProviderError, Resource, ResourceId};
use wid_sandbox::{AksDecl, ClusterDecl};

use super::import::{ClusterHints, ImportRequest, missing, notes, pick};
use super::{Cloud, CompileIssues, Compiled, ConnectEnv};
use crate::cli::CliError;
use crate::model::{Issuers, workload_ref};
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

/// The plan's workloads with an `azure` block on one of `clusters`, with their index.
fn azure_blocks<'a>(
    plan: &'a Plan,
    clusters: &'a [AksCluster],
) -> impl Iterator<
    Item = (
        usize,
        &'a Entry<WorkloadSpec>,
        &'a AzureBlock,
        &'a AksCluster,
    ),
> {
    plan.workloads.iter().enumerate().filter_map(|(i, w)| {
        let block = w.spec.azure.as_deref()?;
        let cluster = clusters.iter().find(|c| c.plan_name == w.spec.cluster)?;
        Some((i, w, block, cluster))
    })
}

/// The roles the plan assigns, (scope, role as written) as observe looks them up, each
/// with the identities that hold it.
fn plan_roles(plan: &Plan, clusters: &[AksCluster]) -> BTreeMap<(String, String), Vec<ResourceId>> {
    let mut out: BTreeMap<(String, String), Vec<ResourceId>> = BTreeMap::new();
    for (_, _, block, cluster) in azure_blocks(plan, clusters) {
        for pair in wid_azure::compile::block_roles(block, cluster) {
            let holders = out.entry(pair).or_default();
            let identity = identity_of_block(block, cluster);
            if !holders.contains(&identity) {
                holders.push(identity);
            }
        }
    }
    out
}

fn identity_of_block(block: &AzureBlock, cluster: &AksCluster) -> ResourceId {
    wid_azure::ids::identity_id(
        &cluster.subscription,
        block.resource_group_or(cluster),
        &block.identity,
    )
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
            .as_deref()
            .map(wid_azure::validate_block)
            .unwrap_or_default()
    }

    /// The identities and federated credentials the plan names (a credential's name
    /// needs no issuer).
    fn read_ahead_ids(&self, plan: &Plan) -> Vec<ResourceId> {
        let clusters = aks_clusters(plan, &Issuers::new());
        let mut out = BTreeSet::new();
        for (_, w, block, cluster) in azure_blocks(plan, &clusters) {
            let identity = identity_of_block(block, cluster);
            let name = block.credential.clone().unwrap_or_else(|| {
                wid_azure::names::fic_name(
                    &plan.name,
                    &w.spec.cluster,
                    &w.spec.namespace,
                    &w.spec.service_account,
                )
            });
            out.insert(wid_azure::ids::fic_id(&identity, &name));
            out.insert(identity);
        }
        out.into_iter().collect()
    }

    /// AKS issuers are `https://REGION.oic.prod-aks.azure.com/TENANT/GUID/`.
    fn offline_issuer(&self, cluster: &ClusterSpec) -> Option<String> {
        Some(format!(
            "https://eastus.oic.prod-aks.azure.com/{}/00000000-0000-0000-0000-000000000000/",
            cluster.tenant.as_deref().unwrap_or_default()
        ))
    }

    fn compile(
        &self,
        plan: &Plan,
        found: &Preflight,
        origins: &[Arc<str>],
    ) -> Result<Compiled, CompileIssues> {
        let clusters = aks_clusters(plan, &found.issuers);
        let mut index = Vec::new();
        let mut items = Vec::new();
        for (i, w, block, cluster) in azure_blocks(plan, &clusters) {
            index.push(i);
            items.push(AzureWorkload {
                block,
                cluster,
                workload: workload_ref(w),
                origin: origins[i].clone(),
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
        let azure = AzureProvider::new(options(env)?, env.counter.clone())?;
        // Preflight reads these clusters and the resource groups identities default
        // their location to; prune scans the clusters' subscriptions; the read-ahead
        // looks up the roles.
        let clusters = aks_clusters(plan, &Issuers::new());
        let roles = plan_roles(plan, &clusters);
        azure.know_plan(&clusters, location_groups(plan), roles);
        Ok(Arc::new(azure))
    }

    fn recognizes(&self, hints: &ClusterHints, ksas: &[KsaFacts]) -> Option<String> {
        if let Some(c) = &hints.context {
            let host = c
                .server
                .trim_start_matches("https://")
                .split(['/', ':'])
                .next()
                .unwrap_or_default();
            if host.ends_with(".azmk8s.io") {
                return Some(format!("its API server is {}", c.server));
            }
        }
        let annotation = wid_azure::compile::CLIENT_ID_ANNOTATION;
        ksas.iter()
            .any(|k| k.annotations.contains_key(annotation))
            .then(|| format!("its KSAs carry {annotation}"))
    }

    async fn import(
        &self,
        request: &ImportRequest<'_>,
        env: &ConnectEnv<'_>,
    ) -> Result<Imported, CliError> {
        let h = request.hints;
        let decl = h.decl.as_ref().and_then(|d| d.aks.as_ref());
        let sandbox = "as the sandbox declares it".to_owned();
        let ctx_name = h.context.as_ref().map(|c| c.name.clone());
        let tenants: std::collections::BTreeSet<String> = request
            .ksas
            .iter()
            .filter(|k| {
                k.annotations
                    .contains_key(wid_azure::compile::CLIENT_ID_ANNOTATION)
            })
            .filter_map(|k| k.annotations.get(wid_azure::compile::TENANT_ID_ANNOTATION))
            .map(|t| t.to_ascii_lowercase())
            .collect();
        let one_tenant = (tenants.len() == 1)
            .then(|| tenants.iter().next().cloned())
            .flatten();
        let subscription = pick([
            (
                h.flags.subscription.clone(),
                "from --subscription".to_owned(),
            ),
            (decl.map(|d| d.subscription.clone()), sandbox.clone()),
        ]);
        let resource_group = pick([
            (
                h.flags.resource_group.clone(),
                "from --resource-group".to_owned(),
            ),
            (decl.map(|d| d.resource_group.clone()), sandbox.clone()),
        ]);
        let name = pick([
            (h.flags.name.clone(), "from --aks-cluster".to_owned()),
            (decl.map(|d| d.name.clone()), sandbox.clone()),
            (
                ctx_name.clone(),
                "the kubeconfig context's name, as `az aks get-credentials` names it (pass --aks-cluster if it differs)".to_owned(),
            ),
        ]);
        let tenant = pick([
            (h.flags.tenant.clone(), "from --tenant".to_owned()),
            (decl.and_then(|d| d.tenant.clone()), sandbox),
            (
                one_tenant,
                "from the KSAs' azure.workload.identity/tenant-id annotations".to_owned(),
            ),
        ]);
        let (Some(subscription), Some(resource_group), Some(name)) =
            (subscription.clone(), resource_group.clone(), name.clone())
        else {
            let mut gaps = Vec::new();
            if subscription.is_none() {
                gaps.push(("subscription", "--subscription SUBSCRIPTION_ID"));
            }
            if resource_group.is_none() {
                gaps.push(("resource group", "--resource-group RG"));
            }
            if name.is_none() {
                gaps.push(("name in AKS", "--aks-cluster NAME"));
            }
            return Err(missing("AKS", &gaps));
        };
        let cluster = AksCluster {
            plan_name: request.cluster.to_owned(),
            subscription: subscription.0.clone(),
            resource_group: resource_group.0.clone(),
            name: name.0.clone(),
            tenant: tenant.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
            issuer: h.flags.issuer.clone(),
        };
        let azure = AzureProvider::new(options(env)?, env.counter.clone())?;
        let mut out = azure.import(&cluster, request.ksas, request.plan).await?;
        let learned = std::mem::take(&mut out.cluster);
        let mut fields = Map::new();
        fields.insert("subscription".into(), Value::String(subscription.0.clone()));
        fields.insert(
            "resource_group".into(),
            Value::String(resource_group.0.clone()),
        );
        fields.insert("name".into(), Value::String(name.0.clone()));
        let mut sources = vec![
            ("subscription", &subscription),
            ("resource_group", &resource_group),
            ("name", &name),
        ];
        match (&tenant, learned.get("tenant")) {
            (Some(t), _) => {
                fields.insert("tenant".into(), Value::String(t.0.clone()));
                sources.push(("tenant", t));
            }
            (None, Some(t)) => {
                fields.insert("tenant".into(), t.clone());
            }
            (None, None) => {
                return Err(missing(
                    "AKS",
                    &[("Microsoft Entra tenant", "--tenant TENANT_ID")],
                ));
            }
        }
        if let Some(issuer) = &h.flags.issuer {
            fields.insert("issuer".into(), Value::String(issuer.clone()));
        }
        out.cluster_notes = notes(&sources);
        if tenant.is_none()
            && let Some(Value::String(t)) = learned.get("tenant")
        {
            out.cluster_notes.push(format!(
                "tenant {t}: the tenant of the identities its KSAs name"
            ));
        }
        out.cluster = fields;
        Ok(out)
    }
}

/// How the Azure provider reaches Resource Manager: the sandbox's endpoint, trusting only
/// its CA, or Azure's.
// ProviderError is the provider contract's error, returned by value everywhere.
#[allow(clippy::result_large_err)]
fn options(env: &ConnectEnv<'_>) -> Result<AzureOptions, ProviderError> {
    let limits = env.target.limits.clone();
    let Some(sandbox) = env.sandbox else {
        return Ok(AzureOptions {
            limits,
            ..AzureOptions::default()
        });
    };
    let (Some(url), Some(ca)) = (sandbox.azure_url(), sandbox.azure_ca()) else {
        return Err(
            ProviderError::new(ErrorKind::Invalid, "the sandbox serves no Azure endpoint")
                .with_hint("restart `wid sandbox serve` with this version of wid"),
        );
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
    Ok(AzureOptions {
        endpoint: Some(url),
        sandbox_ca: Some(pem),
        limits,
    })
}
