//! GCP: the `gcp` block on GKE clusters (Workload Identity: impersonation of a Google
//! service account, or roles granted to the KSA's own principal), through `wid-gcp`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use wid_core::import::{Imported, KsaFacts};
use wid_core::{FieldIssue, Preflight, Provider, ProviderError, Resource, ResourceId};
use wid_gcp::{Endpoints, GcpOptions, GcpProvider, GcpWorkload, GkeCluster, Target};
use wid_sandbox::{ClusterDecl, GkeDecl};

use super::import::{ClusterHints, ImportRequest, missing, notes, pick};
use super::{Cloud, CompileIssues, Compiled, ConnectEnv};
use crate::cli::CliError;
use crate::model::workload_ref;
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

/// What one gcp block names, as compile will resolve it (what it cannot resolve is left
/// to compile's errors).
struct Named {
    /// The service account (project, email) of an impersonating workload.
    account: Option<(String, String)>,
    /// Its roles' targets.
    targets: Vec<Target>,
}

/// What each of the plan's gcp blocks names.
fn named(plan: &Plan, clusters: &[GkeCluster]) -> Vec<Named> {
    let mut out = Vec::new();
    for w in &plan.workloads {
        let (Some(block), Some(cluster)) = (
            w.spec.gcp.as_ref(),
            clusters.iter().find(|c| c.plan_name == w.spec.cluster),
        ) else {
            continue;
        };
        let account = block
            .service_account
            .as_ref()
            .filter(|_| !block.direct)
            .and_then(|sa| wid_gcp::names::expand_service_account(sa, &cluster.project).ok());
        let targets = block
            .roles
            .iter()
            .filter_map(|grant| wid_gcp::block::target(grant, &cluster.project).ok())
            .collect();
        out.push(Named { account, targets });
    }
    out
}

/// Every project the plan's gcp blocks name (service accounts, role targets), besides
/// its clusters': prune looks for the plan's service accounts and bindings there.
fn named_projects(plan: &Plan, clusters: &[GkeCluster]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for Named { account, targets } in named(plan, clusters) {
        out.extend(account.map(|(project, _)| project));
        for target in targets {
            out.insert(match target {
                Target::Project(p) | Target::ServiceAccount { project: p, .. } => p,
            });
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
            .as_deref()
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

    /// The service accounts and policies the plan names, without the project numbers
    /// preflight looks up (ids do not hold them).
    fn read_ahead_ids(&self, plan: &Plan) -> Vec<ResourceId> {
        let clusters = gke_clusters(plan, None);
        let mut out = BTreeSet::new();
        for Named { account, targets } in named(plan, &clusters) {
            if let Some((project, email)) = account {
                out.insert(wid_gcp::ids::sa_id(
                    &project,
                    wid_gcp::names::account_id_of(&email),
                ));
                let policy = Target::ServiceAccount { project, email }.resource();
                out.insert(wid_gcp::ids::policy_id(&policy));
            }
            for target in targets {
                out.insert(wid_gcp::ids::policy_id(&target.resource()));
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
                origin: origins[i].clone(),
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
        let gcp = GcpProvider::new(options(env), env.counter.clone());
        let clusters = gke_clusters(plan, None);
        let projects = named_projects(plan, &clusters);
        gcp.know_plan(&clusters, projects);
        Ok(Arc::new(gcp))
    }

    fn recognizes(&self, hints: &ClusterHints, ksas: &[KsaFacts]) -> Option<String> {
        if let Some(c) = &hints.context
            && gke_context(&c.name).is_some()
        {
            return Some(format!("its kubeconfig context is named {}", c.name));
        }
        ksas.iter()
            .any(|k| k.annotations.contains_key(wid_gcp::names::KSA_ANNOTATION))
            .then(|| format!("its KSAs carry {}", wid_gcp::names::KSA_ANNOTATION))
    }

    async fn import(
        &self,
        request: &ImportRequest<'_>,
        env: &ConnectEnv<'_>,
    ) -> Result<Imported, CliError> {
        let h = request.hints;
        let decl = h.decl.as_ref().and_then(|d| d.gke.as_ref());
        let ctx_name = h
            .context
            .as_ref()
            .map(|c| c.name.as_str())
            .unwrap_or_default();
        let ctx = gke_context(ctx_name);
        let from_ctx = format!("from the kubeconfig context {ctx_name}");
        let sandbox = "as the sandbox declares it".to_owned();
        let project = pick([
            (h.flags.project.clone(), "from --project".to_owned()),
            (decl.map(|d| d.project.clone()), sandbox.clone()),
            (ctx.as_ref().map(|c| c.0.clone()), from_ctx.clone()),
        ]);
        let location = pick([
            (h.flags.location.clone(), "from --location".to_owned()),
            (decl.map(|d| d.location.clone()), sandbox.clone()),
            (ctx.as_ref().map(|c| c.1.clone()), from_ctx.clone()),
        ]);
        let name = pick([
            (h.flags.name.clone(), "from --gke-cluster".to_owned()),
            (decl.map(|d| d.name.clone()), sandbox.clone()),
            (ctx.as_ref().map(|c| c.2.clone()), from_ctx),
        ]);
        let number = pick([
            (
                h.flags.project_number.clone(),
                "from --project-number".to_owned(),
            ),
            (decl.and_then(|d| d.project_number.clone()), sandbox),
        ]);
        let (Some(project), Some(location), Some(name)) =
            (project.clone(), location.clone(), name.clone())
        else {
            let mut gaps = Vec::new();
            if project.is_none() {
                gaps.push(("project", "--project PROJECT"));
            }
            if location.is_none() {
                gaps.push(("location", "--location LOCATION"));
            }
            if name.is_none() {
                gaps.push(("name in GKE", "--gke-cluster NAME"));
            }
            return Err(missing("GKE", &gaps));
        };
        let cluster = GkeCluster {
            plan_name: request.cluster.to_owned(),
            project: project.0.clone(),
            project_number: number.as_ref().map(|n| n.0.clone()),
            location: location.0.clone(),
            name: name.0.clone(),
        };
        let gcp = GcpProvider::new(options(env), env.counter.clone());
        let mut out = gcp.import(&cluster, request.ksas, request.plan).await?;
        let mut fields = Map::new();
        fields.insert("project".into(), Value::String(project.0.clone()));
        fields.insert("location".into(), Value::String(location.0.clone()));
        fields.insert("name".into(), Value::String(name.0.clone()));
        if let Some(n) = &number {
            fields.insert("project_number".into(), Value::String(n.0.clone()));
        }
        let learned = std::mem::take(&mut out.cluster);
        let mut sources = vec![
            ("project", &project),
            ("location", &location),
            ("name", &name),
        ];
        if let Some(n) = &number {
            sources.push(("project_number", n));
        }
        out.cluster_notes = notes(&sources);
        if let Some(Value::String(n)) = learned.get("project_number") {
            out.cluster_notes.push(format!(
                "project_number {n}: from the principals that hold roles on the project"
            ));
        }
        fields.extend(learned);
        out.cluster = fields;
        Ok(out)
    }
}

/// How the GCP provider reaches Google: the sandbox's endpoints, or Google's.
fn options(env: &ConnectEnv<'_>) -> GcpOptions {
    GcpOptions {
        endpoints: env.sandbox.map(|s| Endpoints::sandbox(&s.cloud_url())),
        sandbox: env.sandbox.is_some(),
        limits: env.target.limits.clone(),
    }
}

/// (project, location, name) of a context named as `gcloud container clusters
/// get-credentials` names it: `gke_PROJECT_LOCATION_NAME` (none of the three holds `_`).
fn gke_context(name: &str) -> Option<(String, String, String)> {
    let rest = name.strip_prefix("gke_")?;
    let parts: Vec<&str> = rest.split('_').collect();
    match parts.as_slice() {
        [project, location, cluster]
            if !project.is_empty() && !location.is_empty() && !cluster.is_empty() =>
        {
            Some((
                (*project).to_owned(),
                (*location).to_owned(),
                (*cluster).to_owned(),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gke_contexts_name_project_location_and_cluster() {
        assert_eq!(
            gke_context("gke_acme-prod_us-central1_prod"),
            Some(("acme-prod".into(), "us-central1".into(), "prod".into()))
        );
        assert_eq!(gke_context("gke_a_b"), None);
        assert_eq!(gke_context("prod"), None);
    }
}
