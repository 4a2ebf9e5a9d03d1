//! A session: a validated plan, the providers that serve it (real, or pointed at the
//! embedded sandbox), and the plan step (discover issuers, compile, observe, diff).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use std::path::Path;
use wid_core::{
    CallCounter, Change, ChangeKind, Limits, Observed, Owner, Ownership, Preflight, ProviderError,
    ResourceId,
};
use wid_kubernetes::{ClusterConn, KubernetesProvider};

use wid_sandbox::{ClusterDecl, ClusterKind as SandboxKind, Opened, Sandbox, Served};

use crate::cli::CliError;
use crate::clouds::{self, ConnectEnv};
use crate::engine::{Owners, Providers, ReadAheadOn, Spawned, retried};
use crate::model::{self, Desired};
use crate::plan::{ClusterKind, Plan};
use crate::select::Selection;

/// Where the providers point.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Run against the embedded sandbox with state in this directory.
    pub sandbox: Option<PathBuf>,
    /// Send AWS calls here instead of AWS (or the sandbox): an emulator such as moto.
    pub aws_endpoint: Option<String>,
    /// Call bounds, retries and the concurrency cap every provider applies.
    pub limits: Limits,
    /// `--context CLUSTER=CTX`: the kubeconfig context of a plan cluster, over the
    /// plan's `context`.
    pub contexts: BTreeMap<String, String>,
    /// `--kubeconfig`: the kubeconfig file of every cluster, over the plan's
    /// `kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
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
    /// cluster in `decls`), else starts one in this process, once no other wid process
    /// holds the directory (waiting for it, and saying so on stderr after a second).
    pub async fn open(dir: &Path, decls: &[ClusterDecl]) -> Result<Self, CliError> {
        let served = match Sandbox::open(dir, decls).await.map_err(CliError::sandbox)? {
            Opened::Started(sandbox) => return Ok(Self::InProcess(sandbox)),
            Opened::Served(served) => served,
        };
        {
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
        }
        Ok(Self::Served(served))
    }

    /// Writes every change of the sandbox to its directory now: an in-process sandbox
    /// writes it itself (it is written when the sandbox stops too; this makes it
    /// independent of how the process ends), a served one is asked to.
    pub fn flush(&self) -> Result<(), CliError> {
        match self {
            Self::InProcess(s) => s.flush().map_err(CliError::sandbox),
            Self::Served(s) => s.flush().map_err(CliError::sandbox),
        }
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

    /// The Azure Resource Manager URL (`https://127.0.0.1:PORT`); `None` for a sandbox
    /// served by a wid that predates the Azure endpoint.
    pub fn azure_url(&self) -> Option<String> {
        match self {
            Self::InProcess(s) => Some(s.azure_url()),
            Self::Served(s) => s.azure.clone(),
        }
    }

    /// The CA certificate (PEM) to trust for [`Self::azure_url`], in sandbox mode only.
    pub fn azure_ca(&self) -> Option<std::path::PathBuf> {
        match self {
            Self::InProcess(s) => Some(s.azure_ca_path()),
            Self::Served(s) => s.azure_ca.clone(),
        }
    }

    /// How the sandbox declares a cluster (its kind and cloud side), if it knows it.
    pub fn cluster_decl(&self, cluster: &str) -> Option<ClusterDecl> {
        match self {
            Self::InProcess(s) => s.cluster_decls().remove(cluster),
            Self::Served(s) => s.clusters.get(cluster).cloned(),
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

/// The sandbox's view of a plan's clusters: each cloud adds its side of the clusters of
/// its kind.
pub fn sandbox_clusters(plan: &Plan) -> Vec<ClusterDecl> {
    plan.clusters
        .iter()
        .map(|(name, c)| {
            let mut decl = ClusterDecl {
                name: name.clone(),
                kind: match c.spec.kind {
                    ClusterKind::Gke => SandboxKind::Gke,
                    ClusterKind::Eks => SandboxKind::Eks,
                    ClusterKind::Aks => SandboxKind::Aks,
                    ClusterKind::Generic => SandboxKind::Generic,
                },
                eks: None,
                gke: None,
                aks: None,
            };
            for cloud in clouds::ALL {
                if cloud.cluster_kind() == c.spec.kind {
                    cloud.sandbox_cluster(name, &c.spec, &mut decl);
                }
            }
            decl
        })
        .collect()
}

/// The plan's result: what is wanted and what must change.
#[derive(Debug, Default)]
pub struct Planned {
    /// The desired resources.
    pub desired: Desired,
    /// Every change, no-ops included, sorted by id.
    pub changes: Vec<Change>,
    /// Preflight problems that do not stop the plan.
    pub warnings: Vec<String>,
    /// What preflight found (issuers, facts); empty for destroy.
    pub preflight: Preflight,
    /// What observe read: a saved plan fingerprints it, and applying the saved plan
    /// compares it with a fresh observation.
    pub observed: Observed,
    /// The scope (plan `name`) of each change.
    pub scopes: BTreeMap<ResourceId, String>,
    /// How many objects carry each scope's mark, as observed (with prune: all of them).
    pub owned: BTreeMap<String, usize>,
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
    /// The run's limits (bounds, retries, concurrency cap).
    pub limits: Limits,
    /// The part of the plan to plan and apply (`--target`); the whole plan by default.
    pub selection: Selection,
    /// Plan and apply only the cloud side (`--cloud-only`): no Kubernetes object is read,
    /// written or deleted; a GitOps controller applies what `wid render` writes.
    pub cloud_only: bool,
    /// The run's stop switch: a plan waiting for preflight ends its wait when the run
    /// stops (`--timeout`, Ctrl-C), even while compile holds its thread.
    pub stop: Option<crate::engine::Stop>,
    sandbox: Option<SandboxLink>,
}

impl Session {
    /// Connects the providers the plan needs: Kubernetes for its clusters, and every
    /// cloud the plan uses or names a scope of (so prune finds what carries the plan's
    /// mark there). With a sandbox target, starts the sandbox with the plan's clusters
    /// first. No API is called yet.
    pub async fn open(plan: Plan, target: &Target) -> Result<Self, CliError> {
        let counter = CallCounter::default();
        let unknown: Vec<&str> = target
            .contexts
            .keys()
            .filter(|name| !plan.clusters.contains_key(*name))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(CliError::Usage(format!(
                "--context names cluster(s) {} that the plan does not declare; its clusters are {}",
                unknown.join(", "),
                plan.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if target.sandbox.is_none() && plan.clusters.len() > 1 {
            let without: Vec<&str> = plan
                .clusters
                .iter()
                .filter(|(name, c)| {
                    c.spec.context.is_none() && !target.contexts.contains_key(*name)
                })
                .map(|(name, _)| name.as_str())
                .collect();
            if !without.is_empty() {
                return Err(CliError::Usage(format!(
                    "cluster(s) {} have no `context`: with several clusters each needs its own kubeconfig context (in the plan, or --context CLUSTER=CTX), or they would all reach the current one",
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
                        path: target
                            .kubeconfig
                            .clone()
                            .or_else(|| c.spec.kubeconfig.as_ref().map(|p| c.dir.join(p))),
                        context: target
                            .contexts
                            .get(name)
                            .cloned()
                            .or_else(|| c.spec.context.clone()),
                    },
                };
                (name.clone(), conn)
            })
            .collect();
        let kubernetes = Arc::new(
            KubernetesProvider::connect_with(conns, counter.clone(), &target.limits).await?,
        );
        let mut providers = Providers::default();
        providers.set_retry(target.limits.retry.clone());
        providers.add(kubernetes.clone());
        let env = ConnectEnv {
            target,
            sandbox: sandbox.as_ref(),
            counter: &counter,
        };
        for cloud in clouds::ALL {
            if cloud.needed(&plan) {
                providers.add(cloud.connect(&plan, &env).await?);
            }
        }
        Ok(Self {
            plan,
            counter,
            providers,
            kubernetes,
            limits: target.limits.clone(),
            selection: Selection::default(),
            cloud_only: false,
            stop: None,
            sandbox,
        })
    }

    /// Writes every change the run made to the sandbox's directory now.
    pub fn flush_sandbox(&self) -> Result<(), CliError> {
        self.sandbox.as_ref().map_or(Ok(()), SandboxLink::flush)
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

    /// Asks each cloud about the plan's clusters whose workloads use it: the issuers the
    /// plan does not spell out, and whether the clusters can serve workload identity at
    /// all (an error names the cluster). The plan's own `issuer` settings win.
    pub async fn preflight(&self) -> Result<Preflight, ProviderError> {
        self.start_preflight().all().await
    }

    /// [`preflight`](Self::preflight), already under way when this returns: each cloud
    /// is asked apart ([`Spawned::start`]), so the work before a cloud's first call
    /// (building its clients: the Google ones load the system's root certificates) runs
    /// on both cores and beside whatever the caller does meanwhile, instead of one cloud
    /// after another on the caller's task. Answers are merged in `clouds::ALL` order, so the
    /// first error in that order wins; dropping what this returns stops the tasks.
    fn start_preflight(&self) -> Preflights {
        let plan = self.selection.apply_to(&self.plan);
        let mut asks = Vec::new();
        for cloud in clouds::ALL {
            let Some(provider) = self.providers.get(cloud.name()) else {
                continue;
            };
            let clusters: Vec<String> = plan
                .clusters
                .iter()
                .filter(|(name, _)| plan.workloads_of(name).any(|w| cloud.used_by(&w.spec)))
                .map(|(name, _)| name.clone())
                .collect();
            if clusters.is_empty() {
                continue;
            }
            let provider = Arc::clone(provider);
            let retry = self.limits.retry.clone();
            asks.push((
                cloud.name(),
                Spawned::start(
                    async move { retried(&retry, || provider.preflight(&clusters)).await },
                ),
            ));
        }
        let issuers: Vec<(String, String)> = self
            .plan
            .clusters
            .iter()
            .filter_map(|(name, c)| Some((name.clone(), c.spec.issuer.clone()?)))
            .collect();
        Preflights {
            asks,
            declared: issuers,
        }
    }

    /// Runs preflight, compiles, observes and diffs, scope by scope: each ownership scope
    /// of the plan is observed and diffed with its own name, so that prune and destroy
    /// only ever reach what carries that scope's mark. With `destroy`, the plan wants
    /// nothing: every object that carries a scope's mark is deleted, in every cluster,
    /// account and profile the plan names, in reverse dependency order.
    pub async fn plan(&self, mode: PlanMode) -> Result<Planned, CliError> {
        let prune = mode.prunes();
        let selected = self.selection.apply_to(&self.plan);
        let providers = if self.cloud_only {
            self.providers.without("k8s")
        } else {
            self.providers.clone()
        };
        // The reads of what the plan names without compiling it (every Kubernetes object,
        // a cloud's accounts and policies) run while the clouds answer preflight and the
        // plan compiles, and observe takes what they read. The Kubernetes lists start
        // first, before preflight: they are the most calls, the plan's longest leg, and
        // their ids cost the least; preflight's threads (building the clouds' clients)
        // would otherwise hold the cores while the lists wait to be sent. The guards are
        // held until the plan returns, which drops whatever was not taken.
        let mut reads_ahead = Vec::new();
        let mut preflight = None;
        if let PlanMode::Apply { .. } = mode {
            let scopes: Vec<(Cow<'_, Plan>, Owner)> = selected
                .scopes
                .iter()
                .map(|scope| {
                    let owner = Owner {
                        plan: scope.clone(),
                        prune,
                    };
                    (selected.scope(scope), owner)
                })
                .collect();
            let ids_of = |ids: fn(&Plan) -> Vec<ResourceId>| {
                scopes
                    .iter()
                    .map(|(plan, owner)| (ids(plan), owner.clone()))
                    .collect()
            };
            if !self.cloud_only {
                reads_ahead.push(providers.only("k8s").read_ahead(
                    ids_of(model::kubernetes_read_ahead_ids),
                    ReadAheadOn::Workers,
                ));
            }
            preflight = Some(self.start_preflight());
            // Thousands of ids, computed without a yield: not on the runtime's worker, where
            // the Kubernetes lists just started and preflight's calls wait to be sent.
            let cloud_ids = off_the_runtime(|| ids_of(model::cloud_read_ahead_ids));
            reads_ahead.push(
                providers
                    .without("k8s")
                    .read_ahead(cloud_ids, ReadAheadOn::OwnThreads),
            );
        }
        // Each cloud's compile beside the others', as soon as its own preflight answers:
        // the plan's wall time waits for it. Destroy compiles offline (no call): what the
        // plan still describes orders the deletes where a live object does not say what it
        // depends on (a KSA names its cloud role only in an annotation), and groups the
        // output.
        let (preflight, scopes) = match preflight {
            Some(preflight) => preflight.compile(&selected, self.stop.as_ref()).await?,
            None => {
                let offline = model::offline(&self.plan);
                let scopes =
                    model::compile_scopes_on(&selected, &offline, model::Threads::PerCloud);
                (Preflight::default(), scopes)
            }
        };
        let scopes = scopes.map_err(CliError::Plan)?;
        // An object some scope wants is never deleted for another (a shared namespace),
        // nor one a workload outside `--target` wants.
        let ids = |scopes: &[(String, Desired)]| -> BTreeSet<ResourceId> {
            scopes
                .iter()
                .flat_map(|(_, d)| d.resources.iter().map(|r| r.id.clone()))
                .collect()
        };
        let (kept, selected_ids) = if self.selection.is_all() {
            (BTreeSet::new(), BTreeSet::new())
        } else {
            let offline = model::offline(&self.plan);
            let rest = model::compile_scopes(&self.selection.rest(&self.plan), &offline)
                .map_err(CliError::Plan)?;
            let mine = model::compile_scopes(&selected, &offline).map_err(CliError::Plan)?;
            (ids(&rest), ids(&mine))
        };
        // Only a plan that prunes has deletes to check against what is wanted.
        let mut wanted = BTreeSet::new();
        if prune {
            wanted = kept.clone();
            if let PlanMode::Apply { .. } = mode {
                wanted.extend(ids(&scopes));
            }
        }
        let may_delete = |id: &ResourceId| {
            !wanted.contains(id) && self.selection.may_delete(id, &selected_ids, &kept)
        };
        let mut out = Planned::default();
        for (scope, mut desired) in scopes {
            if self.cloud_only {
                desired.resources.retain(|r| r.id.provider() != "k8s");
            }
            let owner = Owner {
                plan: scope.clone(),
                prune,
            };
            let (desired, observed, changes) = match mode {
                PlanMode::Apply { .. } => {
                    let observed = providers.observe(&desired.resources, &owner).await?;
                    let changes = wid_core::diff(&desired.resources, &observed, prune);
                    (desired, observed, changes)
                }
                PlanMode::Destroy => {
                    let mut observed = providers
                        .observe(&[] as &[&wid_core::Resource], &owner)
                        .await?;
                    for r in &desired.resources {
                        if let Some(live) = observed.resources.get_mut(&r.id) {
                            let live = Arc::make_mut(live);
                            for dep in &r.depends_on {
                                if !live.depends_on.contains(dep) {
                                    live.depends_on.push(dep.clone());
                                }
                            }
                        }
                    }
                    let changes = wid_core::diff::<wid_core::Resource>(&[], &observed, true);
                    let desired = Desired {
                        resources: Vec::new(),
                        groups: desired.groups,
                    };
                    (desired, observed, changes)
                }
            };
            out.add_scope(&self.plan, &scope, desired, observed, changes, &may_delete);
        }
        out.changes.sort_by(|a, b| a.id.cmp(&b.id));
        out.desired.resources.sort_by(|a, b| a.id.cmp(&b.id));
        let mut preflight = preflight;
        out.warnings = std::mem::take(&mut preflight.warnings);
        out.preflight = preflight;
        Ok(out)
    }

    /// Who owns each change: its scope's name, with `prune` as the run computed it.
    pub fn owners(&self, planned: &Planned, prune: bool) -> Owners {
        let mut owners = Owners::new(self.owner(prune));
        for (id, scope) in &planned.scopes {
            owners.set(
                id.clone(),
                Owner {
                    plan: scope.clone(),
                    prune,
                },
            );
        }
        owners
    }
}

impl Planned {
    /// Adds one scope's result. A change another scope already planned (a shared object
    /// both want the same) is kept once, under the first scope; a delete of an object
    /// another scope wants is dropped.
    fn add_scope(
        &mut self,
        plan: &Plan,
        scope: &str,
        desired: Desired,
        observed: Observed,
        changes: Vec<Change>,
        may_delete: &dyn Fn(&ResourceId) -> bool,
    ) {
        let owned = observed
            .resources
            .values()
            .filter(|r| r.ownership == Ownership::Ours)
            .count();
        self.owned.insert(scope.to_owned(), owned);
        merge_first_wins(&mut self.desired.groups, desired.groups);
        let taken = &self.scopes;
        self.desired.resources.extend(
            desired
                .resources
                .into_iter()
                .filter(|r| !taken.contains_key(&r.id)),
        );
        let mut mine = Vec::with_capacity(changes.len());
        for c in changes {
            if self.scopes.contains_key(&c.id)
                || (c.kind == ChangeKind::Delete && !may_delete(&c.id))
            {
                continue;
            }
            if c.kind == ChangeKind::Delete && plan.is_multi_scope() {
                self.desired
                    .groups
                    .entry(c.id.clone())
                    .or_insert_with(|| plan.group_label(scope, "left the plan").into());
            }
            mine.push((c.id.clone(), scope.to_owned()));
            self.changes.push(c);
        }
        merge_first_wins(&mut self.scopes, mine.into_iter().collect());
        merge_first_wins(&mut self.observed.resources, observed.resources);
        merge_first_wins(&mut self.observed.blockers, observed.blockers);
    }

    /// The scopes whose deletes in this plan exceed the mass-delete guard: more than
    /// [`MASS_DELETE_MIN`] objects and more than half of what the scope owns.
    pub fn mass_deletes(&self) -> Vec<MassDelete> {
        let mut deletes: BTreeMap<&str, usize> = BTreeMap::new();
        for c in self.changes.iter().filter(|c| c.kind == ChangeKind::Delete) {
            if let Some(scope) = self.scopes.get(&c.id) {
                *deletes.entry(scope.as_str()).or_default() += 1;
            }
        }
        deletes
            .into_iter()
            .filter_map(|(scope, deletes)| {
                let owned = self.owned.get(scope).copied().unwrap_or(0).max(deletes);
                (deletes > MASS_DELETE_MIN && deletes * 2 > owned).then(|| MassDelete {
                    scope: scope.to_owned(),
                    deletes,
                    owned,
                })
            })
            .collect()
    }
}

/// The mass-delete guard trips only above this many deletes in one scope.
pub const MASS_DELETE_MIN: usize = 10;

/// One scope's deletes over the mass-delete guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassDelete {
    /// The scope (the plan `name`).
    pub scope: String,
    /// How many objects the run would delete in it.
    pub deletes: usize,
    /// How many objects carry its mark now.
    pub owned: usize,
}

/// What a plan is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMode {
    /// The plan files' state; with `prune`, also delete what left them.
    Apply {
        /// Delete objects that carry the plan's mark and left the plan.
        prune: bool,
    },
    /// Delete everything that carries the plan's mark (`wid destroy`).
    Destroy,
}

impl PlanMode {
    /// Whether deletions are computed.
    pub fn prunes(self) -> bool {
        match self {
            Self::Apply { prune } => prune,
            Self::Destroy => true,
        }
    }
}

/// Runs `f`, which computes without yielding, without holding up the runtime's other
/// tasks: on a multi-threaded runtime this worker's queued tasks move to another thread
/// meanwhile ([`tokio::task::block_in_place`]); on a runtime of one thread, where nothing
/// else could run anyway, it simply runs.
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Adds `from`'s entries to `into`, keeping `into`'s where both have a key. The first
/// scope (a single-team plan's only one) moves in whole, without merging.
fn merge_first_wins<K: Ord, V>(into: &mut BTreeMap<K, V>, from: BTreeMap<K, V>) {
    if into.is_empty() {
        *into = from;
        return;
    }
    for (k, v) in from {
        into.entry(k).or_insert(v);
    }
}

/// Each cloud's preflight, under way ([`Session::start_preflight`]).
struct Preflights {
    /// By cloud, in `clouds::ALL` order.
    asks: Vec<(&'static str, Spawned<Result<Preflight, ProviderError>>)>,
    /// The issuers the plan declares, which stand over what preflight found.
    declared: Vec<(String, String)>,
}

type Scopes = Result<Vec<(String, Desired)>, crate::plan::Diagnostics>;

impl Preflights {
    /// Every cloud's answer, merged in `clouds::ALL` order: the first error in that order
    /// wins.
    async fn all(self) -> Result<Preflight, ProviderError> {
        let mut out = Preflight::default();
        for (_, ask) in self.asks {
            out.extend(ask.join().await?);
        }
        out.issuers.extend(self.declared);
        Ok(out)
    }

    /// Compiles `plan`'s scopes, each cloud as soon as its own preflight answers (on a
    /// thread of its own, [`model::Found::PerCloud`]) rather than after the slowest
    /// cloud's; returns every answer merged as [`all`](Self::all) does, and the compile.
    /// A failed preflight is the error, whatever compile said. On a runtime of one thread,
    /// where nothing may block, the answers are awaited first. When `stop` is reached, a
    /// compile still waiting for a cloud's answer stops waiting (that cloud is not
    /// compiled) and the answer is awaited here, where the run's stop ends the plan.
    async fn compile(
        self,
        plan: &Plan,
        stop: Option<&crate::engine::Stop>,
    ) -> Result<(Preflight, Scopes), ProviderError> {
        let handle = tokio::runtime::Handle::current();
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            let found = self.all().await?;
            let scopes = model::compile_scopes_on(plan, &found, model::Threads::PerCloud);
            return Ok((found, scopes));
        }
        let declared = self.declared;
        let with_declared = |mut found: Preflight| {
            found.issuers.extend(declared.iter().cloned());
            found
        };
        let slots: Vec<Slot> = self
            .asks
            .into_iter()
            .map(|(name, ask)| Slot {
                name,
                ask: Mutex::new(Some(ask)),
                answer: OnceLock::new(),
            })
            .collect();
        let found_for = |cloud: &dyn clouds::Cloud| -> Option<Arc<Preflight>> {
            let Some(slot) = slots.iter().find(|s| s.name == cloud.name()) else {
                // No cluster of this cloud to ask about: nothing found.
                return Some(Arc::new(with_declared(Preflight::default())));
            };
            let answer = slot.answer.get_or_init(|| {
                let mut ask = slot.take();
                let answer = handle.block_on(async {
                    let stopped = async {
                        match stop {
                            Some(stop) => stop.reached(crate::engine::StopLevel::Drain).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        biased;
                        () = stopped => None,
                        found = ask.wait() => Some(found),
                    }
                });
                match answer {
                    Some(Ok(found)) => Answer::Found(Arc::new(with_declared(found))),
                    Some(Err(e)) => Answer::Failed(Box::new(e)),
                    None => {
                        // Awaited after compile, where the run's stop is seen.
                        slot.put_back(ask);
                        Answer::Stopped
                    }
                }
            });
            match answer {
                Answer::Found(found) => Some(Arc::clone(found)),
                Answer::Failed(_) | Answer::Stopped => None,
            }
        };
        let scopes = tokio::task::block_in_place(|| {
            model::compile_scopes_found(
                plan,
                model::Found::PerCloud(&found_for),
                model::Threads::PerCloud,
            )
        });
        // A wake that came while compile held the thread (the run's stop) is not always
        // seen when this task is next parked: yield once, so whoever polls the plan (the
        // run's stop switch, `Control::step`) looks again now.
        tokio::task::yield_now().await;
        let mut out = Preflight::default();
        for slot in slots {
            let ask = slot.take_unjoined();
            let found = match (slot.answer.into_inner(), ask) {
                (Some(Answer::Found(found)), _) => Arc::unwrap_or_clone(found),
                (Some(Answer::Failed(e)), _) => return Err(*e),
                (Some(Answer::Stopped) | None, Some(ask)) => ask.join().await?,
                (Some(Answer::Stopped) | None, None) => {
                    unreachable!("a preflight taken is answered or put back")
                }
            };
            out.extend(found);
        }
        out.issuers.extend(declared);
        Ok((out, scopes))
    }
}

/// One cloud's preflight in [`Preflights::compile`]: joined by the first compile that
/// needs it, or after compile.
struct Slot {
    name: &'static str,
    ask: Mutex<Option<Spawned<Result<Preflight, ProviderError>>>>,
    answer: OnceLock<Answer>,
}

/// What a compile waiting for one cloud's preflight got.
enum Answer {
    Found(Arc<Preflight>),
    Failed(Box<ProviderError>),
    /// The run stopped first; the preflight is put back, unjoined.
    Stopped,
}

impl Slot {
    fn put_back(&self, ask: Spawned<Result<Preflight, ProviderError>>) {
        *self.ask.lock().expect("preflight lock is never poisoned") = Some(ask);
    }

    fn take_unjoined(&self) -> Option<Spawned<Result<Preflight, ProviderError>>> {
        self.ask
            .lock()
            .expect("preflight lock is never poisoned")
            .take()
    }

    fn take(&self) -> Spawned<Result<Preflight, ProviderError>> {
        self.take_unjoined().expect("each preflight is joined once")
    }
}
