//! The clouds wid provisions workload identity in, as one list the engine iterates over.
//!
//! Each entry glues one provider crate to the engine: which workload block is its, which
//! cluster kind it serves, the block's plan-time checks, how the plan's blocks compile to
//! resources, what the sandbox must emulate for its clusters, and how to connect its
//! provider. The session, compile, validation and sandbox wiring never name a cloud;
//! adding one is a provider crate, one field in [`WorkloadSpec`], one file here and one
//! entry in [`ALL`].

mod aws;
mod azure;
mod gcp;
pub mod import;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use wid_core::{
    CallCounter, Contribution, FieldIssue, Preflight, Provider, ProviderError, Resource,
};
use wid_sandbox::ClusterDecl;

use crate::cli::CliError;
use crate::plan::{ClusterKind, ClusterSpec, Entry, Plan, WorkloadSpec};
use crate::session::{SandboxLink, Target};
use import::{ClusterHints, ImportRequest};
use wid_core::import::{Imported, KsaFacts};

/// Every cloud, in the order their resources are compiled.
pub static ALL: &[&dyn Cloud] = &[&aws::Aws, &gcp::Gcp, &azure::Azure];

/// The cloud whose block key (and resource id prefix) is `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Cloud> {
    ALL.iter().copied().find(|c| c.name() == name)
}

/// What one cloud's blocks compile to.
#[derive(Debug, Default)]
pub struct Compiled {
    /// The cloud's resources, each once (shared ones deduplicated).
    pub resources: Vec<Resource>,
    /// What each workload's KSA gets from this cloud (annotations, dependencies), by the
    /// workload's index in the plan.
    pub contributions: BTreeMap<usize, Contribution>,
}

/// Problems found while compiling, by workload index, each relative to the cloud's block.
pub type CompileIssues = Vec<(usize, FieldIssue)>;

/// Where a run points and what it counts, for [`Cloud::connect`].
pub struct ConnectEnv<'a> {
    /// The command line's target (sandbox directory, endpoint overrides).
    pub target: &'a Target,
    /// The sandbox the run talks to, if any.
    pub sandbox: Option<&'a SandboxLink>,
    /// Every API call of the run.
    pub counter: &'a CallCounter,
}

/// One cloud. See the module docs.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// The workload block's key, which is also the id prefix of the cloud's resources
    /// and its provider's name (`aws`).
    fn name(&self) -> &'static str;

    /// The kind of cluster whose workloads may use this cloud's block.
    fn cluster_kind(&self) -> ClusterKind;

    /// Whether a workload has this cloud's block.
    fn used_by(&self, workload: &WorkloadSpec) -> bool;

    /// The block's own checks, no network: names, formats, limits. Paths are relative to
    /// the block.
    fn validate(&self, workload: &Entry<WorkloadSpec>) -> Vec<FieldIssue>;

    /// Files outside the plan's TOML that a workload's block makes compile read (inline
    /// policy documents), resolved against the workload's directory. A saved plan records
    /// their digests, so applying it refuses when one changed.
    fn referenced_files(&self, workload: &Entry<WorkloadSpec>) -> Vec<std::path::PathBuf> {
        let _ = workload;
        Vec::new()
    }

    /// An issuer of the real length for a cluster of this kind whose plan entry sets none,
    /// so size limits can be checked before any call.
    fn offline_issuer(&self, cluster: &ClusterSpec) -> Option<String> {
        let _ = cluster;
        None
    }

    /// Stand-ins of the real shape for the facts preflight would look up for a cluster of
    /// this kind when its plan entry does not give them (a GKE project number), so
    /// offline validation compiles exactly what apply would.
    fn offline_facts(&self, cluster: &ClusterSpec) -> BTreeMap<String, String> {
        let _ = cluster;
        BTreeMap::new()
    }

    /// The ids of this cloud's resources the plan names without compiling it and
    /// without preflight, for a read-ahead to start on ([`Provider::read_ahead`]). An id
    /// compile does not produce costs a read nobody takes; one it produces and this
    /// misses is read by observe. Default: none.
    ///
    /// [`Provider::read_ahead`]: wid_core::Provider::read_ahead
    fn read_ahead_ids(&self, plan: &Plan) -> Vec<wid_core::ResourceId> {
        let _ = plan;
        Vec::new()
    }

    /// Compiles every block of the plan at once (shared identities need all of them),
    /// with the issuers and facts preflight found (or their offline stand-ins).
    /// `origins` holds each workload's [`workload_origin`](crate::model::workload_origin),
    /// shared by every resource it compiles to.
    fn compile(
        &self,
        plan: &Plan,
        found: &Preflight,
        origins: &[Arc<str>],
    ) -> Result<Compiled, CompileIssues>;

    /// How the plan output groups a resource that serves no single workload (a shared
    /// OIDC provider); `None` for the default grouping.
    fn group(&self, resource: &Resource) -> Option<String> {
        let _ = resource;
        None
    }

    /// Adds what the sandbox must emulate for a cluster of this kind (the cloud's side of
    /// the cluster).
    fn sandbox_cluster(&self, name: &str, cluster: &ClusterSpec, decl: &mut ClusterDecl) {
        let _ = (name, cluster, decl);
    }

    /// Whether a run needs this cloud's provider: some workload uses the block, or the
    /// plan names a scope of it (a cluster of its kind, plan-wide settings) where prune
    /// must look for what carries the plan's mark. Connecting makes no call.
    fn needed(&self, plan: &Plan) -> bool {
        plan.workloads.iter().any(|w| self.used_by(&w.spec))
            || plan
                .clusters
                .values()
                .any(|c| c.spec.kind == self.cluster_kind())
    }

    /// Builds the provider for this plan (no call yet: credentials are checked on first
    /// use).
    async fn connect(
        &self,
        plan: &Plan,
        env: &ConnectEnv<'_>,
    ) -> Result<Arc<dyn Provider>, ProviderError>;

    /// For `wid import`: why a cluster looks like one of this cloud's (its context's name
    /// or API server, its KSAs' annotations), from what is known before any cloud call;
    /// `None` when nothing says so.
    fn recognizes(&self, hints: &ClusterHints, ksas: &[KsaFacts]) -> Option<String>;

    /// For `wid import`: the cluster entry's coordinates and the blocks that reproduce
    /// the workload identities of the cluster's KSAs, read from the cloud. Asks for a
    /// flag, naming it, for a coordinate it cannot find out.
    async fn import(
        &self,
        request: &ImportRequest<'_>,
        env: &ConnectEnv<'_>,
    ) -> Result<Imported, CliError>;
}
