//! The AWS API emulator: IAM and STS over the Query protocol (`POST /`, form in, XML out)
//! and EKS over restJson1 (`/clusters…`), on the sandbox's cloud endpoint.
//!
//! - [`model`]: the persisted state (`AwsState`).
//! - [`caller`]: account and region from the SigV4 credential scope; ids and timestamps.
//! - [`query`]: the Query endpoint, its errors and faults; [`iam_roles`],
//!   [`iam_policies`], [`iam_details`], [`iam_oidc`] and [`sts`] implement the actions.
//! - [`eks`], [`eks_pod_identity`] and [`eks_tags`]: the EKS operations.
//! - [`faults`]: injected failures in IAM's, STS's and EKS's shapes, and the object fault
//!   rules match: the role name (`RoleName`), else the OIDC provider, policy or role ARN,
//!   else the OIDC provider URL, for IAM and STS; for EKS the cluster name,
//!   `CLUSTER/NAMESPACE/SERVICE_ACCOUNT` for a Pod Identity association, or the ARN
//!   being tagged.
//!
//! The caller's account is the first run of 12 digits in its access key id
//! (`SANDBOX111122223333`), else `123456789012`; its region is the credential scope's.

mod caller;
mod eks;
mod eks_pod_identity;
mod eks_tags;
mod faults;
mod iam;
mod iam_details;
mod iam_oidc;
mod iam_policies;
mod iam_roles;
mod model;
mod query;
mod sts;
mod xml;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::post;
use http::{StatusCode, Uri};
use serde_json::json;

pub use model::{
    Account, AwsState, EksCluster, ManagedPolicy, OidcProvider, PodIdentityAssociation, Role,
};

use crate::{ClusterDecl, Shared, State};

/// The account used when the state has no EKS cluster and an access key names none.
pub const DEFAULT_ACCOUNT: &str = caller::DEFAULT_ACCOUNT;

/// Creates the EKS side of an EKS cluster if the state does not have it yet.
///
/// The issuer id is derived from `account/region/name`, so a cluster keeps its issuer
/// across restarts and across fresh sandboxes, like a real cluster keeps its own.
pub fn ensure_cluster(state: &mut State, decl: &ClusterDecl) {
    let Some(eks) = &decl.eks else {
        return;
    };
    let clusters = state
        .aws
        .accounts
        .entry(eks.account.clone())
        .or_default()
        .eks
        .entry(eks.region.clone())
        .or_default();
    if clusters.contains_key(&eks.name) {
        return;
    }
    let id = caller::stable_hex_id(&format!("{}/{}/{}", eks.account, eks.region, eks.name));
    clusters.insert(
        eks.name.clone(),
        EksCluster {
            name: eks.name.clone(),
            arn: format!(
                "arn:aws:eks:{}:{}:cluster/{}",
                eks.region, eks.account, eks.name
            ),
            created_at: caller::epoch_now(),
            version: "1.35".to_owned(),
            endpoint: format!("https://{id}.gr7.{}.eks.amazonaws.com", eks.region),
            role_arn: format!("arn:aws:iam::{}:role/{}-cluster", eks.account, eks.name),
            status: "ACTIVE".to_owned(),
            issuer: format!("https://oidc.eks.{}.amazonaws.com/id/{id}", eks.region),
            tags: Default::default(),
            pod_identity_associations: Default::default(),
        },
    );
}

/// The account of the first EKS cluster in the state, else [`DEFAULT_ACCOUNT`]: the
/// account the sandbox's `DIR/env` credentials act in.
pub fn default_account(state: &State) -> String {
    state
        .aws
        .accounts
        .iter()
        .find(|(_, acct)| acct.eks.values().any(|clusters| !clusters.is_empty()))
        .map_or_else(|| DEFAULT_ACCOUNT.to_owned(), |(id, _)| id.clone())
}

/// The AWS routes without a fallback, so a cloud router can merge them with the GCP
/// (`/v1/projects/…`) and Azure (`/subscriptions/…`) emulators' routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", post(query::handle))
        .merge(eks::routes())
}

/// The HTTP router of the cloud endpoint: the AWS routes, and a JSON 404 for any other
/// path.
pub fn router(shared: Arc<Shared>) -> Router {
    routes().fallback(not_found).with_state(shared)
}

/// The answer for paths no emulator serves.
pub async fn not_found(uri: Uri) -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "message": format!("the sandbox serves no API at {}", uri.path()) })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClusterKind, EksDecl};

    fn decl(account: &str, name: &str) -> ClusterDecl {
        ClusterDecl {
            name: format!("plan-{name}"),
            kind: ClusterKind::Eks,
            eks: Some(EksDecl {
                account: account.to_owned(),
                region: "us-west-2".to_owned(),
                name: name.to_owned(),
            }),
            gke: None,
            aks: None,
        }
    }

    #[test]
    fn clusters_get_a_stable_issuer_and_arn() {
        let mut state = State::default();
        ensure_cluster(&mut state, &decl("111122223333", "dev"));
        let cluster = &state.aws.accounts["111122223333"].eks["us-west-2"]["dev"];
        let id = caller::stable_hex_id("111122223333/us-west-2/dev");
        assert_eq!(
            cluster.issuer,
            format!("https://oidc.eks.us-west-2.amazonaws.com/id/{id}")
        );
        assert_eq!(
            cluster.arn,
            "arn:aws:eks:us-west-2:111122223333:cluster/dev"
        );
        assert_eq!(
            (cluster.status.as_str(), cluster.version.as_str()),
            ("ACTIVE", "1.35")
        );

        let created = cluster.created_at;
        ensure_cluster(&mut state, &decl("111122223333", "dev"));
        assert_eq!(
            state.aws.accounts["111122223333"].eks["us-west-2"]["dev"].created_at,
            created
        );
    }

    #[test]
    fn non_eks_clusters_are_ignored() {
        let mut state = State::default();
        let decl = ClusterDecl {
            name: "kind".into(),
            kind: ClusterKind::Generic,
            eks: None,
            gke: None,
            aks: None,
        };
        ensure_cluster(&mut state, &decl);
        assert!(state.aws.accounts.is_empty());
    }

    #[test]
    fn default_account_is_the_first_eks_clusters() {
        let mut state = State::default();
        assert_eq!(default_account(&state), DEFAULT_ACCOUNT);
        state.aws.accounts.entry("000000000001".into()).or_default();
        ensure_cluster(&mut state, &decl("444455556666", "b"));
        ensure_cluster(&mut state, &decl("999900001111", "a"));
        assert_eq!(default_account(&state), "444455556666");
    }
}
