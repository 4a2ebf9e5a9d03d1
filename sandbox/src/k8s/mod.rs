//! The Kubernetes API emulator.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{ClusterDecl, Shared, State};

/// One emulated cluster's objects.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ClusterState {
    /// Objects by resource (`serviceaccounts`), then `namespace/name` (or `name`).
    #[serde(default)]
    pub objects: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

/// Creates the cluster if the state does not have it yet.
pub fn ensure_cluster(state: &mut State, decl: &ClusterDecl) {
    state.clusters.entry(decl.name.clone()).or_default();
}

/// The HTTP router of one cluster.
pub fn router(shared: Arc<Shared>, cluster: String) -> axum::Router {
    let _ = (shared, cluster);
    axum::Router::new()
}
