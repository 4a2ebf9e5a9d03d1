//! Who a request comes from, who it acts as, and whether RBAC lets it.
//!
//! - Authentication: a bearer token the cluster issued (TokenRequest) authenticates as its
//!   ServiceAccount, checked as the real server checks it (signature, expiry, the account
//!   still existing with the same uid); an invalid or expired one is `401 Unauthorized`.
//!   Anything else (the sandbox kubeconfig's token `sandbox`, or no credentials: wid's own
//!   clients connect without any) is the sandbox's admin user [`ADMIN_USER`], in group
//!   [`ADMIN_GROUP`], which is a cluster admin only through its bootstrap binding.
//! - Impersonation (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`,
//!   `Impersonate-Extra-*`): each is authorized (`impersonate` on users, serviceaccounts,
//!   groups, uids, userextras) before the request acts as the impersonated user, with the
//!   groups the real server adds (`system:serviceaccounts[:NS]`, `system:authenticated`).
//! - Authorization: every request goes through [`rbac::authorize`]; a denial is the real
//!   server's `403 Forbidden`.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::ClusterState;
use super::bootstrap::{ADMIN_GROUP, ADMIN_USER};
use super::catalog;
use super::rbac::{self, Attributes, UserInfo};
use super::status::ApiError;
use super::token;

/// The sandbox admin.
pub fn admin() -> UserInfo {
    UserInfo {
        name: ADMIN_USER.to_owned(),
        uid: String::new(),
        groups: vec![ADMIN_GROUP.to_owned(), "system:authenticated".to_owned()],
        extra: BTreeMap::new(),
    }
}

fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The requester, from the `Authorization` header.
pub fn authenticate(
    cluster: &ClusterState,
    headers: &HeaderMap,
    now: i64,
) -> Result<UserInfo, ApiError> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(bearer) = bearer else {
        return Ok(admin());
    };
    // Only tokens shaped like the cluster's own are checked; the kubeconfig's `sandbox`
    // and other opaque tokens are the admin's.
    if claims(bearer).is_none_or(|c| !c["kubernetes.io"].is_object()) {
        return Ok(admin());
    }
    verify_token(cluster, bearer, now)
        .map(|(user, _)| user)
        .map_err(|_| ApiError::unauthorized())
}

/// The ServiceAccount a token this cluster issued stands for, and its audiences; or why
/// it is not valid (bad signature, expired, its ServiceAccount gone or recreated).
pub fn verify_token(
    cluster: &ClusterState,
    bearer: &str,
    now: i64,
) -> Result<(UserInfo, Vec<String>), &'static str> {
    let claims = claims(bearer)
        .filter(|c| c["kubernetes.io"].is_object())
        .ok_or("invalid bearer token")?;
    if !token::verify(&cluster.signing_key, bearer) {
        return Err("invalid bearer token");
    }
    if claims["exp"].as_i64().unwrap_or(0) <= now {
        return Err("service account token has expired");
    }
    let identity = &claims["kubernetes.io"];
    let namespace = identity["namespace"].as_str().unwrap_or_default();
    let name = identity["serviceaccount"]["name"]
        .as_str()
        .unwrap_or_default();
    let uid = identity["serviceaccount"]["uid"]
        .as_str()
        .unwrap_or_default();
    let accounts = catalog::by_plural("serviceaccounts").expect("serviceaccounts are served");
    let live = cluster
        .get(accounts, Some(namespace), name)
        .ok()
        .and_then(|sa| sa["metadata"]["uid"].as_str())
        .is_some_and(|live| live == uid);
    if !live {
        return Err(
            "service account token is no longer valid: its ServiceAccount was deleted or recreated",
        );
    }
    let mut user = UserInfo::service_account(namespace, name, uid);
    if let Some(jti) = claims["jti"].as_str() {
        user.extra.insert(
            "authentication.kubernetes.io/credential-id".into(),
            vec![format!("JTI={jti}")],
        );
    }
    let audiences = claims["aud"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    Ok((user, audiences))
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The user the request acts as: `requester`, or whom it impersonates once each
/// impersonation is allowed.
pub fn impersonate(
    cluster: &ClusterState,
    requester: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let user = header_values(headers, "impersonate-user");
    let groups = header_values(headers, "impersonate-group");
    let uid = header_values(headers, "impersonate-uid");
    let extras: Vec<(String, &str)> = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix("impersonate-extra-")?;
            Some((percent_decode(key), value.to_str().ok()?))
        })
        .collect();
    let Some(username) = user.first().copied() else {
        if groups.is_empty() && uid.is_empty() && extras.is_empty() {
            return Ok(requester);
        }
        return Err(ApiError::internal(
            "requested [Impersonate-Group] without impersonating a user".to_owned(),
        ));
    };
    let check = |resource: &str, name: &str, namespace: &str, subresource: &str| {
        let attributes = Attributes::Resource {
            verb: "impersonate".into(),
            group: String::new(),
            resource: resource.into(),
            subresource: subresource.into(),
            name: name.into(),
            namespace: namespace.into(),
        };
        if rbac::authorize(cluster, &requester, &attributes).allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden_as(
                resource,
                "",
                name,
                &rbac::forbidden_message(&requester, &attributes),
            ))
        }
    };
    let mut impersonated = UserInfo {
        name: username.to_owned(),
        uid: String::new(),
        groups: Vec::new(),
        extra: BTreeMap::new(),
    };
    let service_account = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    match service_account {
        Some((namespace, name)) => {
            check("serviceaccounts", name, namespace, "")?;
            if groups.is_empty() {
                impersonated.groups = UserInfo::service_account(namespace, name, "").groups;
                impersonated.groups.pop();
            }
        }
        None => check("users", username, "", "")?,
    }
    for group in &groups {
        check("groups", group, "", "")?;
        impersonated.groups.push((*group).to_owned());
    }
    if let Some(uid) = uid.first() {
        check("uids", uid, "", "")?;
        impersonated.uid = (*uid).to_owned();
    }
    for (key, value) in extras {
        check("userextras", value, "", &key)?;
        impersonated
            .extra
            .entry(key)
            .or_default()
            .push(value.to_owned());
    }
    let anonymous = username == "system:anonymous";
    let has_auth_group = impersonated
        .groups
        .iter()
        .any(|g| g == "system:authenticated" || g == "system:unauthenticated");
    if !anonymous && !has_auth_group {
        impersonated.groups.push("system:authenticated".into());
    }
    Ok(impersonated)
}

/// `Impersonate-Extra-` keys are percent-encoded.
fn percent_decode(key: &str) -> String {
    percent_encoding::percent_decode_str(key)
        .decode_utf8_lossy()
        .into_owned()
}

/// Authorizes one request for `user`; a denial is `403 Forbidden`, worded as the real
/// server words it.
pub fn authorize(
    cluster: &ClusterState,
    user: &UserInfo,
    attributes: &Attributes,
) -> Result<(), ApiError> {
    if rbac::authorize(cluster, user, attributes).allowed {
        return Ok(());
    }
    let message = rbac::forbidden_message(user, attributes);
    Err(match attributes {
        Attributes::Resource {
            group,
            resource,
            name,
            ..
        } => ApiError::forbidden_as(resource, group, name, &message),
        Attributes::NonResource { .. } => ApiError::forbidden_path(&message),
    })
}

#[cfg(test)]
mod tests;
