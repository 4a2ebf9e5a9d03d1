//! The provider: one kube client per cluster, and the `Provider` trait (observe in
//! [`crate::observe`], apply here).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use wid_core::{
    CallCounter, Calls, Change, ChangeKind, ErrorKind, Limits, Observed, Outputs, Owner, Ownership,
    Provider, ProviderError, ReadAhead, Resource, ResourceId,
};

use crate::bounded::BoundLayer;

use crate::errors::{Call, map_error};
use crate::kinds::{Kind, Target, build};
use crate::live::FIELD_MANAGER;
use crate::observe::Job;
use wid_core::ahead::Ahead;

/// How to reach one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterConn {
    /// A kubeconfig file (`None`: `$KUBECONFIG` or `~/.kube/config`) and context (`None`:
    /// the current context).
    Kubeconfig {
        /// The kubeconfig file.
        path: Option<PathBuf>,
        /// The context to use.
        context: Option<String>,
    },
    /// A plain API server URL with no credentials (the sandbox).
    Url(String),
}

/// The identity of a live object at observe time, for delete preconditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveMeta {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// wid's Kubernetes provider: KSAs, RBAC, the `default` SA hardening, and tokens.
pub struct KubernetesProvider {
    pub(crate) clients: BTreeMap<String, Client>,
    pub(crate) counter: CallCounter,
    /// Reads: counted, paced and retried.
    pub(crate) calls: Calls,
    /// uid and resourceVersion of every object observe saw, so a delete can insist on
    /// deleting exactly the object the plan showed. Not attributes: they are not diffed.
    pub(crate) live: Mutex<BTreeMap<ResourceId, LiveMeta>>,
    /// The LISTs read-ahead started, for the observe that needs them.
    pub(crate) ahead: Ahead<Job, Vec<serde_json::Value>>,
}

impl std::fmt::Debug for KubernetesProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesProvider")
            .field("clusters", &self.clients.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KubernetesProvider {
    /// Builds one client per cluster with the default limits. Nothing is called yet.
    pub async fn connect(
        conns: BTreeMap<String, ClusterConn>,
        counter: CallCounter,
    ) -> Result<Self, ProviderError> {
        Self::connect_with(conns, counter, &Limits::default()).await
    }

    /// Builds one client per cluster, bounded by `limits`. Nothing is called yet.
    ///
    /// kube's own retry is turned off, so wid's retries (reads through
    /// [`wid_core::Calls`], changes in the engine) are the only ones and call counts are
    /// exact. Every client has connect, read and write timeouts, and the
    /// [`crate::bounded`] layer bounds each whole call and its response body.
    pub async fn connect_with(
        conns: BTreeMap<String, ClusterConn>,
        counter: CallCounter,
        limits: &Limits,
    ) -> Result<Self, ProviderError> {
        let mut clients = BTreeMap::new();
        for (name, conn) in conns {
            let mut config = config_for(&name, &conn).await?;
            config.default_retry = false;
            let bounds = &limits.bounds;
            config.connect_timeout = Some(bounds.connect_timeout);
            // A read timeout as long as the call's deadline would race it (and win with a
            // vaguer message); the deadline alone then bounds the call.
            let silence =
                (bounds.read_timeout < bounds.call_timeout).then_some(bounds.read_timeout);
            config.read_timeout = silence;
            config.write_timeout = silence;
            // Time a pooled connection sat idle must not count against the next answer.
            config.reset_reader_on_write = true;
            let client = ClientBuilder::try_from(config)
                .map_err(|e| {
                    ProviderError::new(
                        ErrorKind::Invalid,
                        format!("failed to build a client for cluster {name}"),
                    )
                    .with_detail(e.to_string())
                })?
                .with_layer(&BoundLayer::new(*bounds))
                .build();
            clients.insert(name, client);
        }
        Ok(Self {
            clients,
            calls: limits.calls(counter.clone(), crate::observe::CONCURRENT_LISTS),
            counter,
            live: Mutex::new(BTreeMap::new()),
            ahead: Ahead::default(),
        })
    }

    /// The client of `cluster`, for reads outside the plan (the audit).
    pub fn client(&self, cluster: &str) -> Option<Client> {
        self.clients.get(cluster).cloned()
    }

    pub(crate) fn client_for(&self, cluster: &str) -> Result<&Client, ProviderError> {
        self.clients.get(cluster).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Invalid,
                format!("cluster {cluster} has no connection"),
            )
            .with_hint(format!(
                "declare it in the plan as [clusters.{cluster}] (with `context = \"...\"` when it is not the current kubeconfig context)"
            ))
        })
    }

    pub(crate) fn api(&self, target: &Target) -> Result<Api<DynamicObject>, ProviderError> {
        let client = self.client_for(&target.cluster)?.clone();
        let ar = target.kind.api_resource();
        Ok(match &target.namespace {
            Some(ns) => Api::namespaced_with(client, ns, &ar),
            None => Api::all_with(client, &ar),
        })
    }

    fn remember(&self, id: &ResourceId, meta: LiveMeta) {
        self.live
            .lock()
            .expect("the live-object cache lock is never poisoned")
            .insert(id.clone(), meta);
    }

    pub(crate) fn remember_all(&self, metas: BTreeMap<ResourceId, LiveMeta>) {
        self.live
            .lock()
            .expect("the live-object cache lock is never poisoned")
            .extend(metas);
    }

    fn remembered(&self, id: &ResourceId) -> Option<LiveMeta> {
        self.live
            .lock()
            .expect("the live-object cache lock is never poisoned")
            .get(id)
            .cloned()
    }

    async fn apply_one(
        &self,
        id: &ResourceId,
        target: &Target,
        desired: &Resource,
        owner: &Owner,
    ) -> Result<Outputs, ProviderError> {
        let body = build(desired, &owner.plan)?;
        let call = call(target, id, "patch", "apply");
        let api = self.api(target)?;
        self.counter.count(&call.operation());
        tracing::debug!(%id, "server-side apply as field manager {FIELD_MANAGER}");
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = api
            .patch(&target.name, &params, &Patch::Apply(&body))
            .await
            .map_err(|e| map_error(e, &call))?;
        let meta = LiveMeta {
            uid: applied.metadata.uid.clone(),
            resource_version: applied.metadata.resource_version.clone(),
        };
        self.remember(id, meta);
        Ok(applied
            .metadata
            .uid
            .map(|uid| Outputs::from([("uid".to_owned(), uid)]))
            .unwrap_or_default())
    }

    async fn delete_one(
        &self,
        id: &ResourceId,
        target: &Target,
        change: &Change,
    ) -> Result<Outputs, ProviderError> {
        let refuse = |why: &str| {
            Err(ProviderError::new(
                ErrorKind::Conflict,
                format!("refusing to delete {id}: {why}"),
            )
            .with_resource(id))
        };
        if target.kind == Kind::Namespace || id.kind() == crate::kinds::DEFAULT_SA {
            return refuse("wid never deletes namespaces or default service accounts");
        }
        match change.observed.as_ref().map(|o| &o.ownership) {
            Some(Ownership::Ours) => {}
            _ => return refuse("it does not carry this plan's marks"),
        }
        let api = self.api(target)?;
        let meta = match self.remembered(id) {
            Some(meta) => meta,
            None => {
                let get = call(target, id, "get", "get");
                self.counter.count(&get.operation());
                let live = api
                    .get(&target.name)
                    .await
                    .map_err(|e| map_error(e, &get))?;
                LiveMeta {
                    uid: live.metadata.uid,
                    resource_version: live.metadata.resource_version,
                }
            }
        };
        let call = call(target, id, "delete", "delete");
        self.counter.count(&call.operation());
        tracing::debug!(%id, uid = ?meta.uid, resource_version = ?meta.resource_version, "delete with preconditions");
        let params = DeleteParams {
            // The object must still be the one the plan showed: same uid (not recreated)
            // and same resourceVersion (not changed since, e.g. adopted by someone else).
            preconditions: Some(Preconditions {
                uid: meta.uid,
                resource_version: meta.resource_version,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&target.name, &params).await {
            Ok(_) => Ok(Outputs::new()),
            // Already gone: the goal of the delete holds, and a re-run must converge.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Outputs::new()),
            Err(e) => Err(map_error(e, &call)),
        }
    }
}

/// The error context of a call on `target`.
pub(crate) fn call<'a>(
    target: &'a Target,
    id: &'a ResourceId,
    verb: &'static str,
    action: &'static str,
) -> Call<'a> {
    Call {
        verb,
        action,
        resource: target.kind.plural(),
        cluster: &target.cluster,
        namespace: target.namespace.as_deref(),
        object: Some(target.display()),
        id: Some(id),
    }
}

async fn config_for(name: &str, conn: &ClusterConn) -> Result<Config, ProviderError> {
    match conn {
        ClusterConn::Url(url) => {
            let uri = url.parse::<http::Uri>().map_err(|e| {
                ProviderError::new(
                    ErrorKind::Invalid,
                    format!("cluster {name} has an invalid API server url {url:?}"),
                )
                .with_detail(e.to_string())
            })?;
            let mut config = Config::new(uri);
            // A plain-http server (the sandbox's) is never asked for a certificate; an
            // empty trust store spares each client the loading of the system's roots
            // (about 2.5 ms of CPU per cluster).
            if url.starts_with("http://") {
                config.root_cert = Some(Vec::new());
            }
            Ok(config)
        }
        ClusterConn::Kubeconfig { path, context } => {
            if let Some(p) = path {
                // A kubeconfig named by the plan is read only as a regular file of sane
                // size (never /dev/zero or a FIFO).
                wid_core::read_referenced_file(p, wid_core::MAX_REFERENCED_FILE_BYTES).map_err(
                    |e| {
                        ProviderError::new(
                            ErrorKind::Invalid,
                            format!("cannot use the kubeconfig of cluster {name}: {e}"),
                        )
                        .with_hint("set the cluster's `kubeconfig` to a kubeconfig file")
                    },
                )?;
            }
            let read = match path {
                Some(p) => Kubeconfig::read_from(p),
                None => Kubeconfig::read(),
            };
            let where_ = path.as_ref().map_or_else(
                || "the default kubeconfig".to_owned(),
                |p| p.display().to_string(),
            );
            let kubeconfig = read.map_err(|e| {
                ProviderError::new(
                    ErrorKind::Auth,
                    format!("failed to read {where_} for cluster {name}"),
                )
                .with_detail(e.to_string())
                .with_hint(format!(
                    "set `kubeconfig = \"PATH\"` in [clusters.{name}], or the KUBECONFIG environment variable"
                ))
            })?;
            if let Some(ctx) = context
                && !kubeconfig.contexts.iter().any(|c| &c.name == ctx)
            {
                let mut available: Vec<&str> = kubeconfig
                    .contexts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                available.sort_unstable();
                let list = if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                };
                return Err(ProviderError::new(
                    ErrorKind::Invalid,
                    format!("cluster {name} uses context {ctx:?}, which is not in {where_}"),
                )
                .with_hint(format!(
                    "set `context` in [clusters.{name}] to one of the available contexts: {list}"
                )));
            }
            let options = KubeConfigOptions {
                context: context.clone(),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| {
                    ProviderError::new(
                        ErrorKind::Auth,
                        format!("failed to load the kubeconfig of cluster {name}"),
                    )
                    .with_detail(e.to_string())
                })
        }
    }
}

#[async_trait]
impl Provider for KubernetesProvider {
    fn name(&self) -> &'static str {
        "k8s"
    }

    async fn observe(
        &self,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        self.observe_all(wanted, owner).await
    }

    fn read_ahead(self: Arc<Self>, ids: Vec<ResourceId>, owner: Owner) -> ReadAhead {
        self.read_ahead_lists(ids, owner)
    }

    fn forget_read_ahead(&self) {
        self.ahead.forget();
    }

    async fn apply(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError> {
        let id = &change.id;
        let target = Target::of(id).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Invalid,
                format!("{id} is not a kubernetes resource wid manages"),
            )
            .with_resource(id)
        })?;
        match change.kind {
            ChangeKind::Create | ChangeKind::Update => {
                let desired = change.desired.as_ref().ok_or_else(|| {
                    ProviderError::new(
                        ErrorKind::Invalid,
                        format!("{} of {id} has no desired state", kind_word(change.kind)),
                    )
                    .with_resource(id)
                })?;
                self.apply_one(id, &target, desired, owner).await
            }
            ChangeKind::Delete => self.delete_one(id, &target, change).await,
            ChangeKind::NoOp => Ok(Outputs::new()),
            ChangeKind::Conflict => Err(ProviderError::new(
                ErrorKind::Conflict,
                format!("refusing to change {id}: the plan marks it as a conflict"),
            )
            .with_resource(id)),
        }
    }
}

fn kind_word(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Create => "the create",
        ChangeKind::Update => "the update",
        ChangeKind::Delete => "the delete",
        ChangeKind::NoOp => "the no-op",
        ChangeKind::Conflict => "the conflict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_plain_http_server_goes_without_the_system_roots() {
        let http = config_for("c", &ClusterConn::Url("http://127.0.0.1:1".into()))
            .await
            .unwrap();
        assert_eq!(http.root_cert, Some(Vec::new()));
        let https = config_for("c", &ClusterConn::Url("https://127.0.0.1:1".into()))
            .await
            .unwrap();
        assert_eq!(
            https.root_cert, None,
            "an https server is checked against them"
        );
    }

    #[tokio::test]
    async fn a_missing_context_names_the_cluster_and_lists_the_available_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:1'}\n\
             users:\n- name: u\n  user: {}\ncontexts:\n- name: prod\n  context: {cluster: c, user: u}\n\
             - name: dev\n  context: {cluster: c, user: u}\ncurrent-context: dev\n",
        )
        .unwrap();
        let conn = |context: &str| ClusterConn::Kubeconfig {
            path: Some(path.clone()),
            context: Some(context.into()),
        };
        let err = KubernetesProvider::connect(
            BTreeMap::from([("eks-prod".to_owned(), conn("staging"))]),
            CallCounter::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("cluster eks-prod"), "{err}");
        assert!(err.to_string().contains("\"staging\""), "{err}");
        assert_eq!(
            err.hint.as_deref(),
            Some(
                "set `context` in [clusters.eks-prod] to one of the available contexts: dev, prod"
            )
        );

        let ok = KubernetesProvider::connect(
            BTreeMap::from([("eks-prod".to_owned(), conn("prod"))]),
            CallCounter::default(),
        )
        .await
        .unwrap();
        assert!(ok.client("eks-prod").is_some());
        assert!(ok.client("other").is_none());
    }
}
