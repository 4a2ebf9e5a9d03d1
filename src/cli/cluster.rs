//! Connecting to one cluster for the commands that work on a single cluster without a
//! plan (`audit`, `token`): a kubeconfig context, or a cluster of the sandbox.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use wid_core::CallCounter;
use wid_kubernetes::{ClusterConn, KubernetesProvider};
use wid_sandbox::ClusterDecl;

use super::{CliError, TargetArgs};
use crate::plan::Plan;
use crate::session::{SandboxLink, sandbox_clusters};

/// Which cluster to talk to.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// The kubeconfig context (default: the current context).
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// The kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The cluster by its plan (or sandbox) name; required when the sandbox or the plan
    /// has more than one.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// A connection to one cluster.
pub struct OneCluster {
    /// The provider with that one cluster.
    pub provider: KubernetesProvider,
    /// The cluster's name (plan or sandbox name, or the context).
    pub name: String,
    /// The sandbox, kept running while the connection is used.
    pub sandbox: Option<SandboxLink>,
    /// Calls made.
    pub counter: CallCounter,
}

impl ClusterArgs {
    /// Connects. With a sandbox, the sandbox's clusters (plus the plan's, if given) are
    /// the choices; otherwise the kubeconfig context.
    pub async fn connect(&self, plan: Option<&Plan>) -> Result<OneCluster, CliError> {
        let counter = CallCounter::default();
        let target = self.target.target()?;
        let (name, conn, sandbox) = match &target.sandbox {
            Some(dir) => {
                let decls: Vec<ClusterDecl> = plan.map(sandbox_clusters).unwrap_or_default();
                let sandbox = SandboxLink::open(dir, &decls).await?;
                let names: Vec<String> = sandbox.clusters();
                let name = match (&self.cluster, names.as_slice()) {
                    (Some(c), _) if names.contains(c) => c.clone(),
                    (Some(c), _) => {
                        return Err(CliError::Usage(format!(
                            "the sandbox has no cluster `{c}`; it has: {}",
                            if names.is_empty() {
                                "none".to_owned()
                            } else {
                                names.join(", ")
                            }
                        )));
                    }
                    (None, [only]) => only.clone(),
                    (None, []) => {
                        return Err(CliError::Usage(
                            "the sandbox has no cluster yet; apply a plan to it or `wid sandbox load` manifests first".into(),
                        ));
                    }
                    (None, _) => {
                        return Err(CliError::Usage(format!(
                            "the sandbox has several clusters; pick one with --cluster: {}",
                            names.join(", ")
                        )));
                    }
                };
                let url = sandbox.kube_url(&name).unwrap_or_default();
                (name, ClusterConn::Url(url), Some(sandbox))
            }
            None => {
                let from_plan = plan.and_then(|p| {
                    let c = self.cluster.as_ref().and_then(|n| p.clusters.get(n))?;
                    Some((
                        c.spec.context.clone(),
                        c.spec.kubeconfig.as_ref().map(|k| c.dir.join(k)),
                    ))
                });
                let (context, path) = match from_plan {
                    Some((ctx, path)) => (
                        self.context.clone().or(ctx),
                        self.kubeconfig.clone().or(path),
                    ),
                    None => (self.context.clone(), self.kubeconfig.clone()),
                };
                let name = self
                    .cluster
                    .clone()
                    .or_else(|| context.clone())
                    .unwrap_or_else(|| "current-context".to_owned());
                (name, ClusterConn::Kubeconfig { path, context }, None)
            }
        };
        let conns = BTreeMap::from([(name.clone(), conn)]);
        let provider =
            KubernetesProvider::connect_with(conns, counter.clone(), &target.limits).await?;
        Ok(OneCluster {
            provider,
            name,
            sandbox,
            counter,
        })
    }
}
