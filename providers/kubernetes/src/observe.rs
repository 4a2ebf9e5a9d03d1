//! Observe: the fewest LISTs that show every wanted object, every missing namespace and
//! (with prune) every object carrying this plan's marks.
//!
//! Per cluster one LIST of namespaces; per (cluster, namespace, kind) with wanted objects
//! one LIST (a KSA and its namespace's `default` SA share it); with prune, one LIST per
//! prunable kind per cluster across namespaces, filtered by the plan's labels. The LISTs
//! run concurrently.
//!
//! Which LISTs those are follows from the ids alone, so a plan starts them before compile
//! ([`KubernetesProvider::read_ahead_lists`]): observe then takes each list that is done,
//! or waits for one under way, instead of making it again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use wid_core::{
    ErrorKind, MANAGED_BY_KEY, MANAGED_BY_VALUE, Observed, Owner, Ownership, PLAN_KEY,
    ProviderError, ReadAhead, Resource, ResourceId, ahead,
};

use crate::compile::{default_sa_id, namespace_id, object_id};
use crate::errors::{Call, map_error};
use crate::kinds::{Kind, ROLE, ROLEBINDING, SERVICEACCOUNT, Target};
use crate::live::observe_object;
use crate::provider::{KubernetesProvider, LiveMeta};

/// How many LISTs run at once (before `--parallelism` and throttling narrow it).
pub(crate) const CONCURRENT_LISTS: usize = 8;

/// One LIST call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Job {
    /// Every namespace of a cluster.
    Namespaces { cluster: String },
    /// Every object of a kind in one namespace.
    In {
        cluster: String,
        namespace: String,
        kind: Kind,
    },
    /// Every object of a kind carrying the marks of the plan (scope) named `plan`, across
    /// namespaces.
    Marked {
        cluster: String,
        kind: Kind,
        plan: String,
    },
}

impl Job {
    fn cluster(&self) -> &str {
        match self {
            Self::Namespaces { cluster }
            | Self::In { cluster, .. }
            | Self::Marked { cluster, .. } => cluster,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Self::Namespaces { .. } => Kind::Namespace,
            Self::In { kind, .. } | Self::Marked { kind, .. } => *kind,
        }
    }
}

impl KubernetesProvider {
    /// The LISTs that show every object of `lists` (each its kind, cluster and namespace,
    /// as [`Target::list_key`] gives them) and its namespace, and with prune every object
    /// carrying `owner`'s marks.
    fn jobs<'a>(
        &self,
        lists: impl IntoIterator<Item = (Kind, &'a str, Option<&'a str>)>,
        owner: &Owner,
    ) -> BTreeSet<Job> {
        // Thousands of objects share a few dozen lists: collect the lists borrowed, and
        // own each once.
        let mut keys: BTreeSet<(&str, Option<(&str, Kind)>)> = BTreeSet::new();
        for (kind, cluster, namespace) in lists {
            keys.insert((cluster, None));
            if let Some(ns) = namespace {
                keys.insert((cluster, Some((ns, kind))));
            }
        }
        let mut jobs: BTreeSet<Job> = keys
            .into_iter()
            .map(|(cluster, list)| match list {
                None => Job::Namespaces {
                    cluster: cluster.to_owned(),
                },
                Some((namespace, kind)) => Job::In {
                    cluster: cluster.to_owned(),
                    namespace: namespace.to_owned(),
                    kind,
                },
            })
            .collect();
        if owner.prune {
            for cluster in self.clients.keys() {
                for kind in Kind::PRUNABLE {
                    jobs.insert(Job::Marked {
                        cluster: cluster.clone(),
                        kind,
                        plan: owner.plan.clone(),
                    });
                }
            }
        }
        jobs
    }

    /// Registers, then makes (on the returned future), the LISTs an observe of `ids` for
    /// `owner` will make and no earlier read-ahead has started. Ids that are not objects
    /// wid manages, or name a cluster without a client, are left to observe's errors.
    pub(crate) fn read_ahead_lists(
        self: Arc<Self>,
        ids: Vec<ResourceId>,
        owner: Owner,
    ) -> ReadAhead {
        let lists = ids
            .iter()
            .filter_map(Target::list_key)
            .filter(|(_, cluster, _)| self.clients.contains_key(*cluster));
        let started = self.ahead.register(self.jobs(lists, &owner));
        Box::pin(async move {
            let this = &self;
            ahead::fill_all(started, CONCURRENT_LISTS, |job| async move {
                this.list(&job).await
            })
            .await;
        })
    }

    pub(crate) async fn observe_all(
        &self,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        let mut by_id: BTreeMap<&ResourceId, (&Resource, Target)> = BTreeMap::new();
        for r in wanted {
            if r.id.provider() != "k8s" {
                continue;
            }
            let target = Target::of(&r.id).ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::Invalid,
                    format!("{} is not a kubernetes resource wid manages", r.id),
                )
                .with_resource(&r.id)
            })?;
            self.client_for(&target.cluster)?;
            by_id.insert(&r.id, (r, target));
        }
        // Each job takes what a read-ahead started for it, all at once, so that nothing
        // it read is left for a later observe (even when this one fails half-way).
        let jobs = self.ahead.take(
            self.jobs(
                by_id
                    .values()
                    .map(|(_, t)| (t.kind, t.cluster.as_str(), t.namespace.as_deref())),
                owner,
            ),
        );

        // A list a read-ahead made (or failed) counts as made here; one under way is
        // waited for; one the read-ahead dropped unmade is made now.
        let lists: BTreeMap<Job, Vec<Value>> = stream::iter(jobs)
            .map(|(job, taken)| async move {
                let items = taken.or_read(|| self.list(&job)).await?;
                Ok::<_, ProviderError>((job, items))
            })
            .buffer_unordered(CONCURRENT_LISTS)
            .try_collect()
            .await?;

        let mut observed = Observed::default();
        let mut metas = BTreeMap::new();
        let mut record = |observed: &mut Observed, id: ResourceId, kind, object: &Value| {
            let desired = by_id.get(&id).map(|(r, _)| *r);
            metas.insert(id.clone(), live_meta(object));
            observed.insert(observe_object(id, kind, object, desired, &owner.plan));
        };

        let mut namespaces: BTreeMap<&str, BTreeMap<&str, &Value>> = BTreeMap::new();
        for (job, items) in &lists {
            if let Job::Namespaces { cluster } = job {
                namespaces.insert(cluster, items.iter().map(|o| (name_of(o), o)).collect());
            }
        }
        for (id, (_, target)) in &by_id {
            let existing = namespaces.get(target.cluster.as_str());
            match &target.namespace {
                None => {
                    if let Some(object) = existing.and_then(|n| n.get(target.name.as_str())) {
                        record(&mut observed, (*id).clone(), Kind::Namespace, object);
                    }
                }
                Some(ns) => {
                    let exists = existing.is_some_and(|n| n.contains_key(ns.as_str()));
                    if !exists && !by_id.contains_key(&namespace_id(&target.cluster, ns)) {
                        observed.blockers.insert(
                            (*id).clone(),
                            format!(
                                "namespace {ns} does not exist in cluster {}; create it or set create_namespaces = true on the cluster",
                                target.cluster
                            ),
                        );
                    }
                }
            }
        }
        for (job, items) in &lists {
            let cluster = job.cluster();
            let kind = job.kind();
            match job {
                Job::Namespaces { .. } => {}
                Job::In { .. } => {
                    for object in items {
                        for id in ids_of(cluster, kind, object) {
                            if by_id.contains_key(&id) {
                                record(&mut observed, id, kind, object);
                            }
                        }
                    }
                }
                Job::Marked { .. } => {
                    for object in items {
                        // The selector already filters; checking again keeps prune safe
                        // against a server that ignores it.
                        if crate::live::ownership(object, &owner.plan) != Ownership::Ours {
                            continue;
                        }
                        if let Some(id) = ids_of(cluster, kind, object).into_iter().next() {
                            record(&mut observed, id, kind, object);
                        }
                    }
                }
            }
        }
        self.remember_all(metas);
        Ok(observed)
    }

    async fn list(&self, job: &Job) -> Result<Vec<Value>, ProviderError> {
        let client = self.client_for(job.cluster())?.clone();
        let kind = job.kind();
        let ar = kind.api_resource();
        let mut params = ListParams::default();
        let (api, namespace) = match job {
            Job::In { namespace, .. } => (
                Api::<DynamicObject>::namespaced_with(client, namespace, &ar),
                Some(namespace.as_str()),
            ),
            Job::Marked { plan, .. } => {
                params = params.labels(&format!(
                    "{MANAGED_BY_KEY}={MANAGED_BY_VALUE},{PLAN_KEY}={plan}"
                ));
                (Api::all_with(client, &ar), None)
            }
            Job::Namespaces { .. } => (Api::all_with(client, &ar), None),
        };
        let call = Call {
            verb: "list",
            action: "list",
            resource: kind.plural(),
            cluster: job.cluster(),
            namespace,
            object: None,
            id: None,
        };
        tracing::debug!(cluster = job.cluster(), namespace, "{}", call.operation());
        let list = self
            .calls
            .read(&call.operation(), || async {
                api.list(&params).await.map_err(|e| map_error(e, &call))
            })
            .await?;
        list.items
            .into_iter()
            .map(|o| {
                serde_json::to_value(o).map_err(|e| {
                    ProviderError::new(
                        ErrorKind::Invalid,
                        format!(
                            "failed to read {} in cluster {}",
                            kind.plural(),
                            job.cluster()
                        ),
                    )
                    .with_detail(e.to_string())
                })
            })
            .collect()
    }
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// The ids a live object can answer to: a ServiceAccount named `default` is both itself
/// and its namespace's hardening.
fn ids_of(cluster: &str, kind: Kind, object: &Value) -> Vec<ResourceId> {
    let name = name_of(object);
    let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
    match kind {
        Kind::Namespace => vec![namespace_id(cluster, name)],
        Kind::ServiceAccount if name == "default" => vec![
            object_id(SERVICEACCOUNT, cluster, ns, name),
            default_sa_id(cluster, ns),
        ],
        Kind::ServiceAccount => vec![object_id(SERVICEACCOUNT, cluster, ns, name)],
        Kind::Role => vec![object_id(ROLE, cluster, ns, name)],
        Kind::RoleBinding => vec![object_id(ROLEBINDING, cluster, ns, name)],
    }
}

fn live_meta(object: &Value) -> LiveMeta {
    let field = |k: &str| object["metadata"][k].as_str().map(str::to_owned);
    LiveMeta {
        uid: field("uid"),
        resource_version: field("resourceVersion"),
    }
}
