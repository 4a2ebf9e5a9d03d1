//! The AWS API emulator: IAM (Query protocol, XML), EKS (REST-JSON) and STS.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{ClusterDecl, Shared, State};

/// AWS state: IAM per account, EKS clusters.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AwsState {}

/// Creates the EKS side of an EKS cluster if the state does not have it yet.
pub fn ensure_cluster(state: &mut State, decl: &ClusterDecl) {
    let _ = (state, decl);
}

/// The HTTP router of the cloud endpoint.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    let _ = shared;
    axum::Router::new()
}
