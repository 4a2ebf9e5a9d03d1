//! EKS over restJson1: the routes, the error shape, fault injection, and the cluster
//! operations (`DescribeCluster`, `ListClusters`). Pod Identity lives in
//! [`super::eks_pod_identity`], tagging in [`super::eks_tags`].
//!
//! Paths are the Smithy URI templates of the EKS model (`GET /clusters/{name}`, …).
//! Errors carry their code in the `X-Amzn-Errortype` header and the message in a JSON body,
//! which is where the SDKs read them from.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::caller::Caller;
use super::eks_pod_identity as pod_identity;
use super::eks_tags as tags;
use super::faults;
use super::model::EksCluster;
use crate::Shared;

/// An EKS error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct EksError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl EksError {
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "ResourceNotFoundException",
            message: message.into(),
        }
    }

    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidParameterException",
            message: message.into(),
        }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidRequestException",
            message: message.into(),
        }
    }

    pub(crate) fn in_use(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "ResourceInUseException",
            message: message.into(),
        }
    }
}

impl IntoResponse for EksError {
    fn into_response(self) -> Response {
        (
            self.status,
            [("x-amzn-errortype", self.code)],
            Json(json!({ "message": self.message })),
        )
            .into_response()
    }
}

/// What an EKS operation returns.
pub(crate) type EksResult = Result<Json<Value>, EksError>;

/// The fault hook of every EKS operation: counts `eks:{operation}` on `object` (the
/// cluster name, `CLUSTER/NAMESPACE/SERVICE_ACCOUNT` for a Pod Identity association, or
/// the ARN being tagged; empty for a list of clusters) and plays an injected fault in
/// EKS's shape.
pub(crate) async fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    operation: &str,
    object: &str,
) -> Result<(), EksError> {
    let caller = Caller::from_headers(headers);
    let resource = eks_resource(&caller, object);
    shared
        .admit(&format!("eks:{operation}"), object, |failure| {
            faults::eks_error(failure, operation, &caller, &resource)
        })
        .await
}

/// The ARN a denial names for an EKS request's object: the ARN being tagged, else the
/// cluster's.
fn eks_resource(caller: &Caller, object: &str) -> String {
    if object.starts_with("arn:") {
        return object.to_owned();
    }
    let cluster = object
        .split('/')
        .next()
        .filter(|c| !c.is_empty())
        .unwrap_or("*");
    format!(
        "arn:aws:eks:{}:{}:cluster/{cluster}",
        caller.region, caller.account
    )
}

/// The EKS routes (state: the shared sandbox).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/clusters", get(list_clusters))
        .route("/clusters/{name}", get(describe_cluster))
        .route(
            "/clusters/{name}/pod-identity-associations",
            get(pod_identity::list).post(pod_identity::create),
        )
        .route(
            "/clusters/{name}/pod-identity-associations/{association_id}",
            get(pod_identity::describe)
                .post(pod_identity::update)
                .delete(pod_identity::delete),
        )
        // A wildcard, not `{resourceArn}`: the SDKs percent-encode the ARN's slashes, but
        // a hand-written request may not, and both name the same resource.
        .route(
            "/tags/{*resource_arn}",
            get(tags::list).post(tags::tag).delete(tags::untag),
        )
}

/// Runs `f` on the caller's cluster `name`, or answers `ResourceNotFoundException`.
pub(crate) fn with_cluster<R>(
    shared: &Shared,
    caller: &Caller,
    name: &str,
    f: impl FnOnce(&mut EksCluster) -> Result<R, EksError>,
) -> Result<R, EksError> {
    // Only writes persist, so look first and take the write lock only for a cluster
    // that exists.
    let exists = shared.read(|state| cluster_exists(state, caller, name));
    if !exists {
        return Err(no_such_cluster(name));
    }
    shared.write(|state| {
        let cluster = state
            .aws
            .accounts
            .get_mut(&caller.account)
            .and_then(|acct| acct.eks.get_mut(&caller.region))
            .and_then(|clusters| clusters.get_mut(name))
            .ok_or_else(|| no_such_cluster(name))?;
        f(cluster)
    })
}

/// Runs `f` on the caller's cluster `name` without changing it.
pub(crate) fn read_cluster<R>(
    shared: &Shared,
    caller: &Caller,
    name: &str,
    f: impl FnOnce(&EksCluster) -> Result<R, EksError>,
) -> Result<R, EksError> {
    shared.read(|state| {
        let cluster = state
            .aws
            .accounts
            .get(&caller.account)
            .and_then(|acct| acct.eks.get(&caller.region))
            .and_then(|clusters| clusters.get(name))
            .ok_or_else(|| no_such_cluster(name))?;
        f(cluster)
    })
}

fn cluster_exists(state: &crate::State, caller: &Caller, name: &str) -> bool {
    state
        .aws
        .accounts
        .get(&caller.account)
        .and_then(|acct| acct.eks.get(&caller.region))
        .is_some_and(|clusters| clusters.contains_key(name))
}

fn no_such_cluster(name: &str) -> EksError {
    EksError::not_found(format!("No cluster found for name: {name}."))
}

/// `maxResults` within `1..=max` (default `max`).
pub(crate) fn max_results(query: &BTreeMap<String, String>, max: usize) -> Result<usize, EksError> {
    match query.get("maxResults") {
        None => Ok(max),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(EksError::invalid_parameter(format!(
                "maxResults must be between 1 and {max}"
            ))),
        },
    }
}

fn cluster_json(cluster: &EksCluster) -> Value {
    json!({
        "name": cluster.name,
        "arn": cluster.arn,
        "createdAt": cluster.created_at,
        "version": cluster.version,
        "endpoint": cluster.endpoint,
        "roleArn": cluster.role_arn,
        "kubernetesNetworkConfig": {"serviceIpv4Cidr": "10.100.0.0/16", "ipFamily": "ipv4"},
        "identity": {"oidc": {"issuer": cluster.issuer}},
        "status": cluster.status,
        "platformVersion": "eks.1",
        "tags": cluster.tags,
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
    })
}

/// `GET /clusters/{name}`.
async fn describe_cluster(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> EksResult {
    admit(&shared, &headers, "DescribeCluster", &name).await?;
    let caller = Caller::from_headers(&headers);
    read_cluster(&shared, &caller, &name, |cluster| {
        Ok(Json(json!({ "cluster": cluster_json(cluster) })))
    })
}

/// `GET /clusters?maxResults=&nextToken=`: names in order; the token is the next name.
async fn list_clusters(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> EksResult {
    admit(&shared, &headers, "ListClusters", "").await?;
    let caller = Caller::from_headers(&headers);
    let max = max_results(&query, 100)?;
    let names: Vec<String> = shared.read(|state| {
        state
            .aws
            .accounts
            .get(&caller.account)
            .and_then(|acct| acct.eks.get(&caller.region))
            .map(|clusters| clusters.keys().cloned().collect())
            .unwrap_or_default()
    });
    let token = query.get("nextToken");
    let mut rest: Vec<String> = names
        .into_iter()
        .skip_while(|n| token.is_some_and(|t| n < t))
        .collect();
    let next = rest.get(max).cloned();
    rest.truncate(max);
    let mut body = json!({ "clusters": rest });
    if let Some(next) = next {
        body["nextToken"] = json!(next);
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_name_the_cluster_or_association() {
        let caller = Caller {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            service: None,
        };
        assert_eq!(
            eks_resource(&caller, "dev"),
            "arn:aws:eks:us-east-1:111122223333:cluster/dev"
        );
        assert_eq!(
            eks_resource(&caller, "dev/production/orders"),
            "arn:aws:eks:us-east-1:111122223333:cluster/dev"
        );
        assert_eq!(
            eks_resource(&caller, ""),
            "arn:aws:eks:us-east-1:111122223333:cluster/*"
        );
        let arn = "arn:aws:eks:us-east-1:111122223333:cluster/dev";
        assert_eq!(eks_resource(&caller, arn), arn);
    }

    #[test]
    fn errors_carry_the_code_header_and_a_message_body() {
        let response = EksError::not_found("No cluster found for name: x.").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "ResourceNotFoundException"
        );
    }

    #[test]
    fn max_results_is_bounded() {
        let q = |v: &str| BTreeMap::from([("maxResults".to_owned(), v.to_owned())]);
        assert_eq!(max_results(&BTreeMap::new(), 100).unwrap(), 100);
        assert_eq!(max_results(&q("5"), 100).unwrap(), 5);
        assert!(max_results(&q("0"), 100).is_err());
        assert!(max_results(&q("101"), 100).is_err());
    }
}
