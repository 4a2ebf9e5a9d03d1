//! EKS Pod Identity associations: create, list (summaries without `roleArn`, as EKS
//! returns them), describe, update, delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::{Caller, LOWER_ALNUM, epoch_now, random_id};
use super::eks::{EksError, EksResult, admit, max_results, read_cluster, with_cluster};
use super::iam::role_arn;
use super::model::PodIdentityAssociation;
use crate::Shared;

/// The body of `CreatePodIdentityAssociation`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    namespace: Option<String>,
    service_account: Option<String>,
    role_arn: Option<String>,
    client_request_token: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    disable_session_tags: Option<bool>,
    target_role_arn: Option<String>,
}

/// The body of `UpdatePodIdentityAssociation`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    role_arn: Option<String>,
    disable_session_tags: Option<bool>,
    target_role_arn: Option<String>,
}

fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, EksError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| EksError::invalid_request(format!("The request body is not valid: {e}")))
}

fn association_json(cluster: &str, a: &PodIdentityAssociation) -> Value {
    let mut value = json!({
        "clusterName": cluster,
        "namespace": a.namespace,
        "serviceAccount": a.service_account,
        "roleArn": a.role_arn,
        "associationArn": a.association_arn,
        "associationId": a.association_id,
        "tags": a.tags,
        "createdAt": a.created_at,
        "modifiedAt": a.modified_at,
        "disableSessionTags": a.disable_session_tags,
    });
    if let Some(target) = &a.target_role_arn {
        value["targetRoleArn"] = json!(target);
    }
    value
}

fn summary_json(cluster: &str, a: &PodIdentityAssociation) -> Value {
    json!({
        "clusterName": cluster,
        "namespace": a.namespace,
        "serviceAccount": a.service_account,
        "associationArn": a.association_arn,
        "associationId": a.association_id,
    })
}

/// Checks that `arn` names a role that exists in the caller's account.
fn check_role(shared: &Shared, caller: &Caller, arn: &str) -> Result<(), EksError> {
    let exists = shared.read(|state| {
        let name = arn.rsplit('/').next().unwrap_or_default();
        state
            .aws
            .accounts
            .get(&caller.account)
            .and_then(|acct| acct.roles.get(&name.to_lowercase()))
            .is_some_and(|role| role_arn(&caller.account, role) == arn)
    });
    if exists {
        Ok(())
    } else {
        Err(EksError::invalid_parameter(format!(
            "Role {arn} does not exist in account {}.",
            caller.account
        )))
    }
}

fn check_target_role(arn: &str) -> Result<(), EksError> {
    if arn.starts_with("arn:aws:iam::") && arn.contains(":role/") {
        Ok(())
    } else {
        Err(EksError::invalid_parameter(format!(
            "targetRoleArn {arn} is not a valid role ARN."
        )))
    }
}

fn required(value: Option<String>, field: &str) -> Result<String, EksError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| EksError::invalid_parameter(format!("{field} must be specified.")))
}

/// What fault rules match for an association: `CLUSTER/NAMESPACE/SERVICE_ACCOUNT`, as
/// far as the create body names them.
fn create_object(cluster: &str, body: &[u8]) -> String {
    let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut object = cluster.to_owned();
    for field in ["namespace", "serviceAccount"] {
        if let Some(part) = body[field].as_str() {
            object.push('/');
            object.push_str(part);
        }
    }
    object
}

/// What fault rules match for association `id`: `CLUSTER/NAMESPACE/SERVICE_ACCOUNT`, or
/// `CLUSTER/ID` for an association that does not exist.
fn object(shared: &Shared, headers: &HeaderMap, cluster: &str, id: &str) -> String {
    let caller = Caller::from_headers(headers);
    read_cluster(shared, &caller, cluster, |c| {
        Ok(c.pod_identity_associations
            .get(id)
            .map(|a| format!("{cluster}/{}/{}", a.namespace, a.service_account)))
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| format!("{cluster}/{id}"))
}

fn no_such_association(id: &str) -> EksError {
    EksError::not_found(format!("No Pod Identity association found with id: {id}"))
}

/// `POST /clusters/{name}/pod-identity-associations`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(cluster): Path<String>,
    body: Bytes,
) -> EksResult {
    let object = create_object(&cluster, &body);
    admit(&shared, &headers, "CreatePodIdentityAssociation", &object).await?;
    let caller = Caller::from_headers(&headers);
    let body: CreateBody = parse_body(&body)?;
    let namespace = required(body.namespace, "namespace")?;
    let service_account = required(body.service_account, "serviceAccount")?;
    let role_arn = required(body.role_arn, "roleArn")?;
    // The cluster is checked before the role, as EKS resolves the path first.
    read_cluster(&shared, &caller, &cluster, |_| Ok(()))?;
    check_role(&shared, &caller, &role_arn)?;
    if let Some(target) = &body.target_role_arn {
        check_target_role(target)?;
    }
    with_cluster(&shared, &caller, &cluster, |c| {
        let existing = c
            .pod_identity_associations
            .values()
            .find(|a| a.namespace == namespace && a.service_account == service_account);
        if let Some(existing) = existing {
            // A retried request (same idempotency token, which the SDKs and the CLI fill
            // in) gets the association it created, as EKS answers.
            if body.client_request_token.is_some()
                && existing.client_request_token == body.client_request_token
            {
                return Ok(Json(
                    json!({ "association": association_json(&c.name, existing) }),
                ));
            }
            return Err(EksError::in_use(format!(
                "Association already exists: {}",
                existing.association_id
            )));
        }
        let id = random_id("a-", LOWER_ALNUM, 17);
        let now = epoch_now();
        let association = PodIdentityAssociation {
            association_arn: format!(
                "arn:aws:eks:{}:{}:podidentityassociation/{}/{id}",
                caller.region, caller.account, c.name
            ),
            association_id: id.clone(),
            namespace,
            service_account,
            role_arn,
            target_role_arn: body.target_role_arn,
            disable_session_tags: body.disable_session_tags.unwrap_or(false),
            tags: body.tags,
            client_request_token: body.client_request_token,
            created_at: now,
            modified_at: now,
        };
        let out = json!({ "association": association_json(&c.name, &association) });
        c.pod_identity_associations.insert(id, association);
        Ok(Json(out))
    })
}

/// `GET /clusters/{name}/pod-identity-associations?namespace=&serviceAccount=&…`, in
/// association id order; the token is the next page's first id.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(cluster): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> EksResult {
    admit(&shared, &headers, "ListPodIdentityAssociations", &cluster).await?;
    let caller = Caller::from_headers(&headers);
    let max = max_results(&query, 100)?;
    let namespace = query.get("namespace");
    let service_account = query.get("serviceAccount");
    let token = query.get("nextToken");
    read_cluster(&shared, &caller, &cluster, |c| {
        let mut matching: Vec<&PodIdentityAssociation> = c
            .pod_identity_associations
            .values()
            .filter(|a| namespace.is_none_or(|n| &a.namespace == n))
            .filter(|a| service_account.is_none_or(|s| &a.service_account == s))
            .filter(|a| token.is_none_or(|t| &a.association_id >= t))
            .collect();
        let next = matching.get(max).map(|a| a.association_id.clone());
        matching.truncate(max);
        let summaries: Vec<Value> = matching.iter().map(|a| summary_json(&c.name, a)).collect();
        let mut body = json!({ "associations": summaries });
        if let Some(next) = next {
            body["nextToken"] = json!(next);
        }
        Ok(Json(body))
    })
}

/// `GET /clusters/{name}/pod-identity-associations/{associationId}`.
pub(crate) async fn describe(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((cluster, id)): Path<(String, String)>,
) -> EksResult {
    admit(
        &shared,
        &headers,
        "DescribePodIdentityAssociation",
        &object(&shared, &headers, &cluster, &id),
    )
    .await?;
    let caller = Caller::from_headers(&headers);
    read_cluster(&shared, &caller, &cluster, |c| {
        let a = c
            .pod_identity_associations
            .get(&id)
            .ok_or_else(|| no_such_association(&id))?;
        Ok(Json(json!({ "association": association_json(&c.name, a) })))
    })
}

/// `POST /clusters/{name}/pod-identity-associations/{associationId}`.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((cluster, id)): Path<(String, String)>,
    body: Bytes,
) -> EksResult {
    admit(
        &shared,
        &headers,
        "UpdatePodIdentityAssociation",
        &object(&shared, &headers, &cluster, &id),
    )
    .await?;
    let caller = Caller::from_headers(&headers);
    let body: UpdateBody = parse_body(&body)?;
    if let Some(arn) = &body.role_arn {
        check_role(&shared, &caller, arn)?;
    }
    if let Some(target) = body.target_role_arn.as_deref().filter(|t| !t.is_empty()) {
        check_target_role(target)?;
    }
    with_cluster(&shared, &caller, &cluster, |c| {
        let a = c
            .pod_identity_associations
            .get_mut(&id)
            .ok_or_else(|| no_such_association(&id))?;
        if let Some(arn) = body.role_arn {
            a.role_arn = arn;
        }
        if let Some(disable) = body.disable_session_tags {
            a.disable_session_tags = disable;
        }
        // An empty targetRoleArn removes the target role.
        if let Some(target) = body.target_role_arn {
            a.target_role_arn = Some(target).filter(|t| !t.is_empty());
        }
        a.modified_at = epoch_now();
        Ok(Json(json!({ "association": association_json(&c.name, a) })))
    })
}

/// `DELETE /clusters/{name}/pod-identity-associations/{associationId}`: answers with the
/// deleted association.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((cluster, id)): Path<(String, String)>,
) -> EksResult {
    admit(
        &shared,
        &headers,
        "DeletePodIdentityAssociation",
        &object(&shared, &headers, &cluster, &id),
    )
    .await?;
    let caller = Caller::from_headers(&headers);
    with_cluster(&shared, &caller, &cluster, |c| {
        let a = c
            .pod_identity_associations
            .remove(&id)
            .ok_or_else(|| no_such_association(&id))?;
        Ok(Json(
            json!({ "association": association_json(&c.name, &a) }),
        ))
    })
}
