//! A session: a validated plan, the providers that serve it (real, or pointed at the
//! embedded sandbox), and the plan step (discover issuers, compile, observe, diff).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use std::path::Path;
use wid_aws::{AwsOptions, AwsProvider, EksCluster};
use wid_core::{CallCounter, Change, Owner, ProviderError};
use wid_kubernetes::{ClusterConn, KubernetesProvider};

use wid_sandbox::{ClusterDecl, ClusterKind as SandboxKind, EksDecl, Sandbox, Served};

use crate::cli::CliError;
use crate::engine::Providers;
use crate::model::{self, Desired, Issuers};
use crate::plan::{ClusterKind, Plan};

/// Where the providers point.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Run against the embedded sandbox with state in this directory.
    pub sandbox: Option<PathBuf>,
    /// Send AWS calls here instead of AWS (or the sandbox): an emulator such as moto.
    pub aws_endpoint: Option<String>,
}

/// The sandbox a run talks to: one started in this process, or the servers of a
/// `wid sandbox serve` that owns the directory.
pub enum SandboxLink {
    /// Started here; stops with the run.
    InProcess(Sandbox),
    /// Served by another process.
    Served(Served),
}

impl SandboxLink {
    /// Uses the sandbox served from `dir` if there is one (it must already have every
    /// cluster in `decls`), else starts one in this process.
    pub async fn open(dir: &Path, decls: &[ClusterDecl]) -> Result<Self, CliError> {
        if let Some(served) = wid_sandbox::served(dir) {
            let missing: Vec<&str> = decls
                .iter()
                .map(|d| d.name.as_str())
                .filter(|name| !served.kube.contains_key(*name))
                .collect();
            if !missing.is_empty() {
                return Err(CliError::Usage(format!(
                    "the sandbox served from {} (process {}) has no cluster {}; restart it with `wid sandbox serve --dir {} --plan PATH`",
                    dir.display(),
                    served.pid,
                    missing.join(", "),
                    dir.display()
                )));
            }
            return Ok(Self::Served(served));
        }
        let sandbox = Sandbox::start(dir, decls)
            .await
            .map_err(CliError::sandbox)?;
        Ok(Self::InProcess(sandbox))
    }

    /// A cluster's Kubernetes API URL.
    pub fn kube_url(&self, cluster: &str) -> Option<String> {
        match self {
            Self::InProcess(s) => s.kube_url(cluster),
            Self::Served(s) => s.kube.get(cluster).cloned(),
        }
    }

    /// The clusters it serves, by name.
    pub fn clusters(&self) -> Vec<String> {
        match self {
            Self::InProcess(s) => s.clusters().map(str::to_owned).collect(),
            Self::Served(s) => s.kube.keys().cloned().collect(),
        }
    }

    /// The cloud APIs' URL.
    pub fn cloud_url(&self) -> String {
        match self {
            Self::InProcess(s) => s.cloud_url(),
            Self::Served(s) => s.cloud.clone(),
        }
    }

    /// The sandbox, when it runs in this process (tests inject faults through it).
    pub fn in_process(&self) -> Option<&Sandbox> {
        match self {
            Self::InProcess(s) => Some(s),
            Self::Served(_) => None,
        }
    }
}

/// The sandbox's view of a plan's clusters.
pub fn sandbox_clusters(plan: &Plan) -> Vec<ClusterDecl> {
    plan.clusters
        .iter()
        .map(|(name, c)| ClusterDecl {
            name: name.clone(),
            kind: match c.spec.kind {
                ClusterKind::Gke => SandboxKind::Gke,
                ClusterKind::Eks => SandboxKind::Eks,
                ClusterKind::Aks => SandboxKind::Aks,
                ClusterKind::Generic => SandboxKind::Generic,
            },
            eks: (c.spec.kind == ClusterKind::Eks).then(|| EksDecl {
                account: c.spec.account.clone().unwrap_or_default(),
                region: c.spec.region.clone().unwrap_or_default(),
                name: c.spec.name.clone().unwrap_or_default(),
            }),
        })
        .collect()
}

/// The plan's EKS clusters as the AWS provider sees them.
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

/// The plan's result: what is wanted and what must change.
#[derive(Debug)]
pub struct Planned {
    /// The desired resources.
    pub desired: Desired,
    /// Every change, no-ops included, sorted by id.
    pub changes: Vec<Change>,
}

/// A plan with its providers.
pub struct Session {
    /// The validated plan.
    pub plan: Plan,
    /// Every API call the providers make.
    pub counter: CallCounter,
    /// The providers by id prefix.
    pub providers: Providers,
    /// The Kubernetes provider (audit and token use it directly).
    pub kubernetes: Arc<KubernetesProvider>,
    aws: Option<Arc<AwsProvider>>,
    sandbox: Option<SandboxLink>,
}

impl Session {
    /// Connects the providers the plan needs. With a sandbox target, starts the sandbox
    /// with the plan's clusters first.
    pub async fn open(plan: Plan, target: &Target) -> Result<Self, CliError> {
        let counter = CallCounter::default();
        if target.sandbox.is_none() && plan.clusters.len() > 1 {
            let without: Vec<&str> = plan
                .clusters
                .iter()
                .filter(|(_, c)| c.spec.context.is_none())
                .map(|(name, _)| name.as_str())
                .collect();
            if !without.is_empty() {
                return Err(CliError::Usage(format!(
                    "cluster(s) {} have no `context`: with several clusters each needs its own kubeconfig context, or they would all reach the current one",
                    without.join(", ")
                )));
            }
        }
        let sandbox = match &target.sandbox {
            Some(dir) => Some(SandboxLink::open(dir, &sandbox_clusters(&plan)).await?),
            None => None,
        };
        let conns: BTreeMap<String, ClusterConn> = plan
            .clusters
            .iter()
            .map(|(name, c)| {
                let conn = match &sandbox {
                    Some(s) => ClusterConn::Url(s.kube_url(name).unwrap_or_default()),
                    None => ClusterConn::Kubeconfig {
                        path: c.spec.kubeconfig.as_ref().map(|p| c.dir.join(p)),
                        context: c.spec.context.clone(),
                    },
                };
                (name.clone(), conn)
            })
            .collect();
        let kubernetes = Arc::new(KubernetesProvider::connect(conns, counter.clone()).await?);
        let mut providers = Providers::default();
        providers.add(kubernetes.clone());
        let aws = if plan.workloads.iter().any(|w| w.spec.aws.is_some()) {
            let opts = AwsOptions {
                endpoint_url: target
                    .aws_endpoint
                    .clone()
                    .or_else(|| sandbox.as_ref().map(SandboxLink::cloud_url)),
                sandbox: sandbox.is_some() && target.aws_endpoint.is_none(),
                profiles: plan.aws.profiles.clone(),
            };
            let aws = Arc::new(AwsProvider::new(opts, counter.clone()).await?);
            // Prune must scan every EKS cluster of the plan, including those whose
            // workloads all left it.
            aws.know_clusters(&eks_clusters(&plan, &Issuers::new()));
            providers.add(aws.clone());
            Some(aws)
        } else {
            None
        };
        Ok(Self {
            plan,
            counter,
            providers,
            kubernetes,
            aws,
            sandbox,
        })
    }

    /// The sandbox, if the session started one in this process.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref().and_then(SandboxLink::in_process)
    }

    /// The ownership scope.
    pub fn owner(&self, prune: bool) -> Owner {
        Owner {
            plan: self.plan.name.clone(),
            prune,
        }
    }

    /// Asks the clouds for the OIDC issuers the plan does not spell out (one
    /// `eks:DescribeCluster` per EKS cluster with AWS workloads).
    pub async fn issuers(&self) -> Result<Issuers, ProviderError> {
        let mut issuers = Issuers::new();
        for cluster in eks_clusters(&self.plan, &Issuers::new()) {
            if let Some(issuer) = &cluster.issuer {
                issuers.insert(cluster.plan_name.clone(), issuer.clone());
                continue;
            }
            let needs = self
                .plan
                .workloads_of(&cluster.plan_name)
                .any(|w| w.spec.aws.is_some());
            if let (true, Some(aws)) = (needs, &self.aws) {
                issuers.insert(
                    cluster.plan_name.clone(),
                    aws.discover_issuer(&cluster).await?,
                );
            }
        }
        for (name, c) in &self.plan.clusters {
            if let Some(issuer) = &c.spec.issuer {
                issuers.insert(name.clone(), issuer.clone());
            }
        }
        Ok(issuers)
    }

    /// Discovers issuers, compiles, observes and diffs.
    pub async fn plan(&self, prune: bool) -> Result<Planned, CliError> {
        let issuers = self.issuers().await?;
        let desired = model::compile(&self.plan, &issuers).map_err(CliError::Plan)?;
        let observed = self
            .providers
            .observe(&desired.resources, &self.owner(prune))
            .await?;
        let changes = wid_core::diff(&desired.resources, &observed, prune);
        Ok(Planned { desired, changes })
    }
}
