//! The Kubernetes API emulator: one API server per declared cluster.
//!
//! - [`catalog`]: the resources served and the discovery and OpenAPI documents.
//! - [`store`]: objects and the server-owned metadata (uid, resourceVersion, generation,
//!   managedFields) of create, replace, patch, apply and delete.
//! - [`delete`] and [`options`]: DELETE with its options (dry runs, preconditions,
//!   propagation to dependents) and the options of every write.
//! - [`admission`]: name validation, defaulting, the ServiceAccount admission of pods and
//!   what creating a namespace brings along.
//! - [`ssa`], [`patch`], [`selector`]: server-side apply, merge and JSON patches, label and
//!   field selectors.
//! - [`token`]: TokenRequest (the `token` subresource).
//! - [`pb`]: protobuf request bodies (kubectl's typed clients send them), decoded with
//!   k8s-pb into the JSON they stand for.
//! - [`table`]: the Table answers `kubectl get` asks for, with the real server's columns.
//! - [`auth`], [`rbac`], [`review`]: who a request is (tokens, impersonation), RBAC as
//!   the real authorizer evaluates it, and the access reviews kubectl auth asks.
//! - [`scale`]: the `scale` subresource of the workloads that have one.
//! - [`handlers`] and [`routes`]: the HTTP surface, fault injection and path routing;
//!   [`faults`]: injected failures in the API server's shapes, and the object fault rules
//!   match (`CLUSTER/NAMESPACE/NAME`).
//! - [`bootstrap`]: what a new cluster starts with.
//!
//! Objects are stored generically as JSON; the emulator knows only the kinds in the
//! catalog and validates no more of their bodies than wid's behaviour depends on.

mod admission;
mod auth;
mod bootstrap;
mod catalog;
mod delete;
mod faults;
mod handlers;
mod options;
mod patch;
mod pb;
mod rbac;
mod review;
mod routes;
mod scale;
mod selector;
mod ssa;
mod status;
mod store;
mod table;
mod token;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{ClusterDecl, Shared, State};

pub use status::ApiError;

/// One emulated cluster's objects and server identity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterState {
    /// Objects by resource plural (`serviceaccounts`), then `namespace/name` (or `name`
    /// for cluster-scoped kinds). Each object is the JSON the server would return.
    #[serde(default)]
    pub objects: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// The last resourceVersion handed out; every write takes the next one.
    #[serde(default)]
    pub resource_version: u64,
    /// Hex HMAC-SHA256 key that signs this cluster's ServiceAccount tokens.
    #[serde(default)]
    pub signing_key: String,
    /// The `iss` of issued tokens; empty means the in-cluster default
    /// `https://kubernetes.default.svc.cluster.local`.
    #[serde(default)]
    pub issuer: String,
}

/// Why [`load_manifests`] could not seed a cluster.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The sandbox has no such cluster.
    #[error("no cluster named {0} in the sandbox")]
    UnknownCluster(String),
    /// A YAML document does not parse.
    #[error("document {index} is not valid YAML")]
    Yaml {
        /// 1-based position of the document in the stream.
        index: usize,
        /// The parser's error.
        #[source]
        source: serde_saphyr::Error,
    },
    /// A document names a kind the emulator does not serve.
    #[error("document {index}: kind {kind} of {api_version} is not served by the sandbox")]
    UnknownKind {
        /// 1-based position of the document in the stream.
        index: usize,
        /// Its `apiVersion`.
        api_version: String,
        /// Its `kind`.
        kind: String,
    },
    /// The server refused the object, as it would refuse the same POST.
    #[error("document {index} ({id}) was refused")]
    Refused {
        /// 1-based position of the document in the stream.
        index: usize,
        /// `kind/namespace/name` of the object.
        id: String,
        /// The server's answer.
        #[source]
        source: Box<ApiError>,
    },
}

/// Creates the cluster if the state does not have it yet, as a new real cluster starts:
/// the `default`, `kube-system`, `kube-public` and `kube-node-lease` namespaces (each with
/// its `default` ServiceAccount and `kube-root-ca.crt` ConfigMap) and the bootstrap RBAC
/// policy (see `bootstrap`). An existing cluster only gets the bootstrap policy it lacks.
pub fn ensure_cluster(state: &mut State, decl: &ClusterDecl) {
    if let Some(cluster) = state.clusters.get_mut(&decl.name) {
        bootstrap::reconcile(cluster);
        return;
    }
    state
        .clusters
        .insert(decl.name.clone(), bootstrap::new_cluster());
}

/// Makes a cloud cluster's ServiceAccount tokens carry its cloud's issuer, as real
/// tokens do, so trust checks see the issuer they would see in a real cluster: for EKS
/// the OIDC issuer from the AWS side (`https://oidc.eks.REGION.amazonaws.com/id/ID`),
/// for GKE `https://container.googleapis.com/v1/projects/P/locations/L/clusters/C`.
/// Call after the emulators have ensured the cluster; other kinds keep the in-cluster
/// issuer.
pub fn adopt_cloud_issuer(state: &mut State, decl: &ClusterDecl) {
    if let (Some(gke), Some(cluster)) = (&decl.gke, state.clusters.get_mut(&decl.name)) {
        cluster.issuer = crate::gcp::issuer(&gke.project, &gke.location, &gke.name);
        return;
    }
    let Some(eks) = &decl.eks else {
        return;
    };
    let issuer = state
        .aws
        .accounts
        .get(&eks.account)
        .and_then(|account| account.eks.get(&eks.region))
        .and_then(|region| region.get(&eks.name))
        .map(|cluster| cluster.issuer.clone());
    if let (Some(issuer), Some(cluster)) = (issuer, state.clusters.get_mut(&decl.name)) {
        cluster.issuer = issuer;
    }
}

/// The HTTP router of one cluster's API server. Like a real API server starting, it first
/// recreates any bootstrap RBAC policy the cluster lacks (a state written before the
/// policy grew, or one whose bindings were deleted).
pub fn router(shared: Arc<Shared>, cluster: String) -> axum::Router {
    shared.write(|state| {
        if let Some(c) = state.clusters.get_mut(&cluster) {
            bootstrap::reconcile(c);
        }
    });
    handlers::router(shared, cluster)
}

/// Seeds objects from a multi-document YAML stream (test fixtures, example clusters).
///
/// Missing namespaces are created (with their default ServiceAccount), and objects go
/// through the same validation and admission as a POST, except that pods may name
/// ServiceAccounts that do not exist. An object that already exists is replaced. Returns
/// `kind/namespace/name` (or `kind/name`) of every object loaded, in stream order; nothing
/// is stored when any document fails.
pub fn load_manifests(
    shared: &Shared,
    cluster: &str,
    yaml: &str,
) -> Result<Vec<String>, LoadError> {
    let mut documents = Vec::new();
    let mut reader = yaml.as_bytes();
    for (i, doc) in serde_saphyr::read::<_, serde_json::Value>(&mut reader).enumerate() {
        let index = i + 1;
        let value = doc.map_err(|source| LoadError::Yaml { index, source })?;
        if value.is_null() {
            continue;
        }
        documents.push((index, value));
    }
    shared.write(|state| {
        let live = state
            .clusters
            .get_mut(cluster)
            .ok_or_else(|| LoadError::UnknownCluster(cluster.to_owned()))?;
        let mut work = live.clone();
        let mut ids = Vec::new();
        for (index, value) in documents {
            ids.push(work.load(index, value)?);
        }
        *live = work;
        Ok(ids)
    })
}
