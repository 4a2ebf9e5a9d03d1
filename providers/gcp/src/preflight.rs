//! Pre-flight: before any IAM change, read each GKE cluster the plan's `gcp` workloads use
//! and refuse the plan, naming the cluster, when it cannot serve Workload Identity; warn
//! about node pools whose pods would get the node's identity instead; look up project
//! numbers the plan does not give; report each cluster's issuer.

use futures::{StreamExt, TryStreamExt};
use google_cloud_container_v1::model::workload_metadata_config::Mode;
use wid_core::{ErrorKind, Preflight, ProviderError};

use crate::client::GcpProvider;
use crate::compile::GkeCluster;
use crate::error::Call;
use crate::names::{gke_issuer, workload_pool};

impl GcpProvider {
    pub(crate) async fn preflight_clusters(
        &self,
        names: &[String],
    ) -> Result<Preflight, ProviderError> {
        let known: Vec<GkeCluster> = {
            let map = self
                .clusters
                .lock()
                .expect("cluster map lock is never poisoned");
            names.iter().filter_map(|n| map.get(n).cloned()).collect()
        };
        // The clusters are read concurrently and merged in plan order, so warnings and the
        // first error come out the same way every run.
        let found: Vec<Preflight> = futures::stream::iter(known)
            .map(|cluster| self.preflight_cluster(cluster))
            .buffered(self.calls.concurrency())
            .try_collect()
            .await?;
        let mut out = Preflight::default();
        for one in found {
            out.extend(one);
        }
        Ok(out)
    }

    /// One cluster's part of pre-flight: its check and its project number, read together.
    async fn preflight_cluster(&self, cluster: GkeCluster) -> Result<Preflight, ProviderError> {
        let mut out = Preflight::default();
        let number = async {
            match &cluster.project_number {
                Some(n) => Ok(n.clone()),
                None => self.project_number(&cluster.project).await,
            }
        };
        let (checked, number) = futures::join!(self.check_cluster(&cluster, &mut out), number);
        checked?;
        out.facts
            .entry(cluster.plan_name.clone())
            .or_default()
            .insert("project_number".to_owned(), number?);
        out.issuers.insert(
            cluster.plan_name.clone(),
            gke_issuer(&cluster.project, &cluster.location, &cluster.name),
        );
        Ok(out)
    }

    async fn check_cluster(
        &self,
        c: &GkeCluster,
        out: &mut Preflight,
    ) -> Result<(), ProviderError> {
        let name = format!(
            "projects/{}/locations/{}/clusters/{}",
            c.project, c.location, c.name
        );
        let call = Call::new(
            "container.clusters.get",
            format!("read GKE cluster `{}` ({name})", c.plan_name),
            &name,
        );
        let gke = self.gke().await?;
        let cluster = self
            .read_with(&call, gke, |m| m.get_cluster().set_name(&name).send())
            .await
            .map_err(|err| {
                if err.kind() == ErrorKind::NotFound {
                    err.with_hint(format!(
                        "check `project`, `location` and `name` of cluster `{}` in the plan",
                        c.plan_name
                    ))
                } else {
                    err
                }
            })?;
        let pool = cluster
            .workload_identity_config
            .as_ref()
            .map(|w| w.workload_pool.as_str())
            .unwrap_or_default();
        let want = workload_pool(&c.project);
        if pool != want {
            let why = if pool.is_empty() {
                "Workload Identity is not enabled on it (no workload pool)".to_owned()
            } else {
                format!("its workload pool is {pool}, not {want}")
            };
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                format!("GKE cluster `{}` ({name}) cannot serve workload identity: {why}", c.plan_name),
            )
            .with_operation(call.op)
            .with_hint(format!(
                "enable it: gcloud container clusters update {} --location {} --project {} --workload-pool={want}",
                c.name, c.location, c.project
            )));
        }
        for pool in &cluster.node_pools {
            let mode = pool
                .config
                .as_ref()
                .and_then(|cfg| cfg.workload_metadata_config.as_ref())
                .map(|w| w.mode.clone());
            if mode != Some(Mode::GkeMetadata) {
                let shown = mode
                    .as_ref()
                    .and_then(|m| m.name().map(str::to_owned))
                    .unwrap_or_else(|| "unset".to_owned());
                out.warnings.push(format!(
                    "GKE cluster `{}`: node pool {} has workload metadata mode {shown}, not GKE_METADATA; its pods get the node's identity, not their KSA's (gcloud container node-pools update {} --cluster {} --location {} --project {} --workload-metadata=GKE_METADATA)",
                    c.plan_name, pool.name, pool.name, c.name, c.location, c.project
                ));
            }
        }
        Ok(())
    }

    /// The project number (Resource Manager `projects.get`).
    pub(crate) async fn project_number(&self, project: &str) -> Result<String, ProviderError> {
        let call = Call::new(
            "resourcemanager.projects.get",
            format!("look up the number of project {project}"),
            format!("projects/{project}"),
        );
        let p = self
            .read(&call, |c| {
                c.projects
                    .get_project()
                    .set_name(format!("projects/{project}"))
                    .send()
            })
            .await
            .map_err(|e| e.with_hint(format!("set `project_number` on the cluster in the plan, or grant resourcemanager.projects.get on projects/{project}")))?;
        p.name
            .strip_prefix("projects/")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::Invalid,
                    format!(
                        "project {project} came back without a project number ({})",
                        p.name
                    ),
                )
                .with_hint("set `project_number` on the cluster in the plan")
            })
    }
}
