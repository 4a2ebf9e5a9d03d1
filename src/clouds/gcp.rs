//! GCP: the `gcp` block on GKE clusters (Workload Identity: impersonation of a Google
//! service account, or roles granted to the KSA's own principal), through `wid-gcp`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use wid_core::{FieldIssue, Preflight, Provider, ProviderError, Resource};
use wid_gcp::{Endpoints, GcpOptions, GcpProvider, GcpWorkload, GkeCluster};
use wid_sandbox::{ClusterDecl, GkeDecl};

use super::{Cloud, CompileIssues, Compiled, ConnectEnv};
use crate::model::{workload_origin, workload_ref};
use crate::plan::{ClusterKind, ClusterSpec, Entry, Plan, WorkloadSpec};

/// The GCP entry of [`super::ALL`].
pub struct Gcp;

/// The plan's GKE clusters, with the project numbers known so far.
fn gke_clusters(plan: &Plan, found: Option<&Preflight>) -> Vec<GkeCluster> {
    plan.clusters
        .iter()
        .filter(|(_, c)| c.spec.kind == ClusterKind::Gke)
        .map(|(name, c)| GkeCluster {
            plan_name: name.clone(),
            project: c.spec.project.clone().unwrap_or_default(),
            project_number: c.spec.project_number.clone().or_else(|| {
                found
                    .and_then(|f| f.fact(name, "project_number"))
                    .map(str::to_owned)
            }),
            location: c.spec.location.clone().unwrap_or_default(),
            name: c.spec.name.clone().unwrap_or_default(),
        })
        .collect()
}

/// Every project the plan's gcp blocks name (service accounts, role targets), besides
/// its clusters': prune looks for the plan's service accounts and bindings there.
fn named_projects(plan: &Plan, clusters: &[GkeCluster]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for w in &plan.workloads {
        let (Some(block), Some(cluster)) = (
            w.spec.gcp.as_ref(),
            clusters.iter().find(|c| c.plan_name == w.spec.cluster),
        ) else {
            continue;
        };
        if let Some(sa) = &block.service_account
            && let Ok((project, _)) = wid_gcp::names::expand_service_account(sa, &cluster.project)
        {
            out.insert(project);
        }
        for grant in &block.roles {
            match wid_gcp::block::target(grant, &cluster.project) {
                Ok(wid_gcp::Target::Project(p)) => {
                    out.insert(p);
                }
                Ok(wid_gcp::Target::ServiceAccount { project, .. }) => {
                    out.insert(project);
                }
                Err(_) => {}
            }
        }
    }
    out
}

#[async_trait]
impl Cloud for Gcp {
    fn name(&self) -> &'static str {
        "gcp"
    }

    fn cluster_kind(&self) -> ClusterKind {
        ClusterKind::Gke
    }

    fn used_by(&self, workload: &WorkloadSpec) -> bool {
        workload.gcp.is_some()
    }

    fn validate(&self, workload: &Entry<WorkloadSpec>) -> Vec<FieldIssue> {
        workload
            .spec
            .gcp
            .as_ref()
            .map(wid_gcp::validate_block)
            .unwrap_or_default()
    }

    /// A 12-digit stand-in for a project number the plan does not give, so offline
    /// validation compiles principals of the real shape and length.
    fn offline_facts(&self, cluster: &ClusterSpec) -> BTreeMap<String, String> {
        if cluster.project_number.is_some() {
            return BTreeMap::new();
        }
        BTreeMap::from([("project_number".to_owned(), "0".repeat(12))])
    }

    fn compile(&self, plan: &Plan, found: &Preflight) -> Result<Compiled, CompileIssues> {
        let clusters = gke_clusters(plan, Some(found));
        let mut index = Vec::new();
        let mut items = Vec::new();
        for (i, w) in plan.workloads.iter().enumerate() {
            let block = w.spec.gcp.as_ref();
            let cluster = clusters.iter().find(|c| c.plan_name == w.spec.cluster);
            let (Some(block), Some(cluster)) = (block, cluster) else {
                continue;
            };
            index.push(i);
            items.push(GcpWorkload {
                block,
                cluster,
                workload: workload_ref(w),
                origin: workload_origin(w),
            });
        }
        match wid_gcp::compile(&items, &plan.name) {
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

    /// A project's policy serves many workloads: it is shown under its own heading.
    fn group(&self, resource: &Resource) -> Option<String> {
        (resource.id.kind() == wid_gcp::ids::KIND_POLICY && resource.origin.is_none()).then(|| {
            format!(
                "gcp {} (shared IAM policy)",
                wid_gcp::ids::policy_resource(&resource.id)
            )
        })
    }

    fn sandbox_cluster(&self, _: &str, cluster: &ClusterSpec, decl: &mut ClusterDecl) {
        decl.gke = Some(GkeDecl {
            project: cluster.project.clone().unwrap_or_default(),
            project_number: cluster.project_number.clone(),
            location: cluster.location.clone().unwrap_or_default(),
            name: cluster.name.clone().unwrap_or_default(),
        });
    }

    async fn connect(
        &self,
        plan: &Plan,
        env: &ConnectEnv<'_>,
    ) -> Result<Arc<dyn Provider>, ProviderError> {
        let options = GcpOptions {
            endpoints: env.sandbox.map(|s| Endpoints::sandbox(&s.cloud_url())),
            sandbox: env.sandbox.is_some(),
            limits: env.target.limits.clone(),
        };
        let gcp = GcpProvider::new(options, env.counter.clone());
        let clusters = gke_clusters(plan, None);
        let projects = named_projects(plan, &clusters);
        gcp.know_plan(&clusters, projects);
        Ok(Arc::new(gcp))
    }
}
