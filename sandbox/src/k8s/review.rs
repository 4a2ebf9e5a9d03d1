//! The create-only reviews: `SelfSubjectReview` (`kubectl auth whoami`),
//! `SelfSubjectAccessReview` (`kubectl auth can-i`), `SelfSubjectRulesReview`
//! (`kubectl auth can-i --list`), `SubjectAccessReview` and `LocalSubjectAccessReview`,
//! answered from the cluster's RBAC objects ([`rbac`]), and `TokenReview`, answered
//! from the tokens the cluster issues; never stored.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::ClusterState;
use super::catalog::ResourceInfo;
use super::rbac::{self, Attributes, UserInfo};
use super::status::ApiError;
use super::{auth, token};

fn invalid(info: &ResourceInfo, field: &str, message: &str) -> ApiError {
    ApiError::invalid(
        info.group,
        info.kind,
        "",
        &[(field.to_owned(), message.to_owned())],
    )
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The attributes an access review asks about.
fn attributes(info: &ResourceInfo, spec: &Value) -> Result<Attributes, ApiError> {
    let resource = &spec["resourceAttributes"];
    let non_resource = &spec["nonResourceAttributes"];
    match (resource.is_object(), non_resource.is_object()) {
        (true, true) => Err(invalid(
            info,
            "spec.resourceAttributes",
            "Invalid value: \"resourceAttributes\": resourceAttributes and nonResourceAttributes cannot both be specified",
        )),
        (false, false) => Err(invalid(
            info,
            "spec.resourceAttributes",
            "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        (true, false) => Ok(Attributes::Resource {
            verb: text(&resource["verb"]),
            group: text(&resource["group"]),
            resource: text(&resource["resource"]),
            subresource: text(&resource["subresource"]),
            name: text(&resource["name"]),
            namespace: text(&resource["namespace"]),
        }),
        (false, true) => Ok(Attributes::NonResource {
            verb: text(&non_resource["verb"]),
            path: text(&non_resource["path"]),
        }),
    }
}

/// The user a (Local)SubjectAccessReview names.
fn subject(spec: &Value) -> UserInfo {
    let extra: BTreeMap<String, Vec<String>> = spec["extra"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let values = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            (k.clone(), values)
        })
        .collect();
    UserInfo {
        name: text(&spec["user"]),
        uid: text(&spec["uid"]),
        groups: spec["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        extra,
    }
}

fn decision_status(cluster: &ClusterState, user: &UserInfo, attributes: &Attributes) -> Value {
    let decision = rbac::authorize(cluster, user, attributes);
    let mut status = json!({ "allowed": decision.allowed });
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    status
}

/// Answers a review of kind `info` posted by `user` (in `namespace` for the local one).
pub fn answer(
    cluster: &ClusterState,
    user: &UserInfo,
    info: &ResourceInfo,
    namespace: Option<&str>,
    body: &Value,
) -> Result<Value, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format - it must be a JSON or YAML object",
        ));
    }
    let spec = &body["spec"];
    let status = match info.kind {
        "SelfSubjectReview" => json!({ "userInfo": user.json() }),
        "SelfSubjectAccessReview" => decision_status(cluster, user, &attributes(info, spec)?),
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let attributes = attributes(info, spec)?;
            let subject = subject(spec);
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(invalid(
                    info,
                    "spec.user",
                    "Invalid value: \"\": at least one of user or group must be specified",
                ));
            }
            if let (Some(url), Attributes::Resource { namespace, .. }) = (namespace, &attributes)
                && namespace != url
            {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {url}"
                )));
            }
            decision_status(cluster, &subject, &attributes)
        }
        "TokenReview" => {
            let wanted: Vec<String> = spec["audiences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            let wanted = if wanted.is_empty() {
                vec![token::DEFAULT_ISSUER.to_owned()]
            } else {
                wanted
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let bearer = spec["token"].as_str().unwrap_or_default();
            match auth::verify_token(cluster, bearer, now) {
                Ok((user, audiences)) => {
                    let common: Vec<&String> =
                        wanted.iter().filter(|a| audiences.contains(a)).collect();
                    if common.is_empty() {
                        json!({ "authenticated": false, "user": {}, "error": "[invalid bearer token, token audiences don't match]" })
                    } else {
                        json!({ "authenticated": true, "user": user.json(), "audiences": common })
                    }
                }
                Err(why) => {
                    json!({ "authenticated": false, "user": {}, "error": format!("[{why}]") })
                }
            }
        }
        "SelfSubjectRulesReview" => {
            let namespace = spec["namespace"].as_str().unwrap_or_default();
            if namespace.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            let (resource_rules, non_resource_rules) = rbac::rules_for(cluster, user, namespace);
            json!({
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": false,
            })
        }
        other => {
            return Err(ApiError::internal(format!("{other} is not a review")));
        }
    };
    let mut out = json!({
        "kind": info.kind,
        "apiVersion": info.api_version(),
        "metadata": {},
    });
    if let Some(ns) = namespace {
        out["metadata"]["namespace"] = json!(ns);
    }
    if !spec.is_null() {
        out["spec"] = spec.clone();
    }
    out["status"] = status;
    Ok(out)
}
