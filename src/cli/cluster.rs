//! Connecting to clusters for the commands that work without applying a plan: one cluster
//! for `token` ([`ClusterArgs`]), one or several for `audit` ([`ClustersArgs`]). A cluster
//! is a kubeconfig context, a cluster of the sandbox, or a cluster a plan declares (whose
//! context and kubeconfig the plan names).

use std::collections::{BTreeMap, BTreeSet};
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

/// Which clusters to talk to (each flag repeatable).
#[derive(Debug, Clone, Args)]
pub struct ClustersArgs {
    /// A kubeconfig context; repeat for several clusters, each named after its context
    /// (default: the current context).
    #[arg(long = "context", value_name = "CTX")]
    pub contexts: Vec<String>,
    /// The kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// A cluster by its plan (or sandbox) name; repeat for several. Required when the
    /// sandbox has more than one. Given with as many --context flags, the n-th cluster
    /// uses the n-th context.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
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

/// A connection to one or more clusters through one provider.
pub struct Clusters {
    /// The provider with every cluster.
    pub provider: KubernetesProvider,
    /// The clusters' names, in the order given.
    pub names: Vec<String>,
    /// The sandbox, kept running while the connection is used.
    pub sandbox: Option<SandboxLink>,
    /// Calls made.
    pub counter: CallCounter,
}

impl ClusterArgs {
    /// Connects. With a sandbox, the sandbox's clusters (plus the plan's, if given) are
    /// the choices; otherwise the kubeconfig context.
    pub async fn connect(&self, plan: Option<&Plan>) -> Result<OneCluster, CliError> {
        let many = ClustersArgs {
            contexts: self.context.iter().cloned().collect(),
            kubeconfig: self.kubeconfig.clone(),
            clusters: self.cluster.iter().cloned().collect(),
            target: self.target.clone(),
        };
        let mut c = many.connect(plan).await?;
        let name = c.names.remove(0);
        Ok(OneCluster {
            provider: c.provider,
            name,
            sandbox: c.sandbox,
            counter: c.counter,
        })
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

impl ClustersArgs {
    /// Connects to every cluster named (at least one).
    pub async fn connect(&self, plan: Option<&Plan>) -> Result<Clusters, CliError> {
        let counter = CallCounter::default();
        let target = self.target.target()?;
        let (conns, sandbox) = match &target.sandbox {
            Some(dir) => {
                if !self.contexts.is_empty() {
                    return Err(CliError::Usage(
                        "--context picks kubeconfig contexts; with the sandbox, name its clusters with --cluster".into(),
                    ));
                }
                let decls: Vec<ClusterDecl> = plan.map(sandbox_clusters).unwrap_or_default();
                let sandbox = SandboxLink::open(dir, &decls).await?;
                let conns = self.sandbox_conns(&sandbox)?;
                (conns, Some(sandbox))
            }
            None => (self.kubeconfig_conns(plan)?, None),
        };
        let mut seen = BTreeSet::new();
        for (name, _) in &conns {
            if !seen.insert(name.clone()) {
                return Err(CliError::Usage(format!("cluster `{name}` is named twice")));
            }
        }
        let names: Vec<String> = conns.iter().map(|(n, _)| n.clone()).collect();
        let provider = KubernetesProvider::connect_with(
            conns.into_iter().collect::<BTreeMap<_, _>>(),
            counter.clone(),
            &target.limits,
        )
        .await?;
        Ok(Clusters {
            provider,
            names,
            sandbox,
            counter,
        })
    }

    fn sandbox_conns(&self, sandbox: &SandboxLink) -> Result<Vec<(String, ClusterConn)>, CliError> {
        let have = sandbox.clusters();
        let names = match (self.clusters.as_slice(), have.as_slice()) {
            ([], [only]) => vec![only.clone()],
            ([], []) => {
                return Err(CliError::Usage(
                    "the sandbox has no cluster yet; apply a plan to it or `wid sandbox load` manifests first".into(),
                ));
            }
            ([], _) => {
                return Err(CliError::Usage(format!(
                    "the sandbox has several clusters; pick them with --cluster (repeatable): {}",
                    have.join(", ")
                )));
            }
            (wanted, _) => {
                if let Some(c) = wanted.iter().find(|c| !have.contains(c)) {
                    return Err(CliError::Usage(format!(
                        "the sandbox has no cluster `{c}`; it has: {}",
                        list(&have)
                    )));
                }
                wanted.to_vec()
            }
        };
        Ok(names
            .into_iter()
            .map(|n| {
                let url = sandbox.kube_url(&n).unwrap_or_default();
                (n, ClusterConn::Url(url))
            })
            .collect())
    }

    fn kubeconfig_conns(
        &self,
        plan: Option<&Plan>,
    ) -> Result<Vec<(String, ClusterConn)>, CliError> {
        // --kubeconfig wins over the plan's kubeconfig.
        let conn = |context: Option<String>, path: Option<PathBuf>| ClusterConn::Kubeconfig {
            path: self.kubeconfig.clone().or(path),
            context,
        };
        // The plan's context and kubeconfig for a cluster it declares.
        let from_plan = |name: &str| {
            let c = plan?.clusters.get(name)?;
            Some((
                c.spec.context.clone(),
                c.spec.kubeconfig.as_ref().map(|k| c.dir.join(k)),
            ))
        };
        match (self.clusters.as_slice(), self.contexts.as_slice()) {
            ([], []) => Ok(vec![("current-context".to_owned(), conn(None, None))]),
            ([], contexts) => Ok(contexts
                .iter()
                .map(|c| (c.clone(), conn(Some(c.clone()), None)))
                .collect()),
            (clusters, contexts) if contexts.len() == clusters.len() => Ok(clusters
                .iter()
                .zip(contexts)
                .map(|(name, ctx)| {
                    let path = from_plan(name).and_then(|p| p.1);
                    (name.clone(), conn(Some(ctx.clone()), path))
                })
                .collect()),
            (clusters, []) => clusters
                .iter()
                .map(|name| match from_plan(name) {
                    Some((ctx, path)) => Ok((name.clone(), conn(ctx, path))),
                    None if clusters.len() == 1 => Ok((name.clone(), conn(None, None))),
                    None => Err(CliError::Usage(format!(
                        "cluster `{name}`: no context to reach it; pass a --plan that declares it, or one --context per --cluster"
                    ))),
                })
                .collect(),
            (clusters, contexts) => Err(CliError::Usage(format!(
                "{} --cluster but {} --context: give one context per cluster, or name the clusters in a --plan",
                clusters.len(),
                contexts.len()
            ))),
        }
    }
}
