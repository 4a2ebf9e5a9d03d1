//! Injected failures in the Kubernetes API server's shapes, and the object fault rules
//! match: `CLUSTER/NAMESPACE/NAME` (`CLUSTER/NAME` for cluster-scoped objects,
//! `CLUSTER/NAMESPACE` for a list in a namespace, `CLUSTER` for discovery and lists
//! across namespaces; a create names the object its JSON body names).
//!
//! | fault | answer |
//! | --- | --- |
//! | throttle | 429 `TooManyRequests`, `Retry-After: 1` |
//! | server-error | 500 `InternalError` |
//! | conflict | 409 `Conflict` (the object has been modified) |
//! | unauthorized | 401 `Unauthorized` |
//! | forbidden | 403 `Forbidden`: `User "sandbox" cannot patch resource "serviceaccounts" in API group "" in the namespace "production"` |
//! | limit-exceeded | 403 `Forbidden`: `exceeded quota: object-counts, requested: count/serviceaccounts=1, …` |

use serde_json::json;

use super::catalog::ResourceInfo;
use super::status::ApiError;
use crate::wire::Failure;

/// The user the sandbox's kubeconfig authenticates as, as denials name it.
const USER: &str = "sandbox";

/// What a request names.
#[derive(Debug, Default)]
pub(super) struct Target<'a> {
    /// The resource, `None` for discovery.
    pub(super) info: Option<&'static ResourceInfo>,
    /// The namespace, for namespaced requests.
    pub(super) namespace: Option<&'a str>,
    /// The object's name, empty for collections.
    pub(super) name: &'a str,
    /// The sandbox's verb (`get`, `list`, `apply`, `token`, …).
    pub(super) verb: &'a str,
}

impl Target<'_> {
    /// The object fault rules match.
    pub(super) fn object(&self, cluster: &str) -> String {
        let mut object = cluster.to_owned();
        for part in [self.namespace.unwrap_or_default(), self.name] {
            if !part.is_empty() {
                object.push('/');
                object.push_str(part);
            }
        }
        object
    }
}

/// The name a create body gives its object, when the body is JSON (fault rules see
/// creations by the name they create).
pub(super) fn created_name(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    body["metadata"]["name"].as_str().map(str::to_owned)
}

fn status(code: u16, reason: &'static str, message: String) -> ApiError {
    ApiError {
        code,
        reason,
        message,
        details: None,
    }
}

/// The answer a failure stands for on `api` (`k8s:patch serviceaccounts`).
pub(super) fn error(failure: Failure, api: &str, t: &Target<'_>) -> ApiError {
    match failure {
        Failure::Throttle => ApiError::too_many_requests(),
        Failure::ServerError => ApiError::internal(format!("injected fault on {api}")),
        Failure::Conflict => ApiError::injected_conflict(api),
        Failure::Unauthorized => status(401, "Unauthorized", "Unauthorized".to_owned()),
        Failure::Forbidden => forbidden(t, &rbac_denial(t)),
        Failure::LimitExceeded => {
            let resource = t.info.map_or("objects", |i| i.resource);
            forbidden(
                t,
                &format!(
                    "exceeded quota: object-counts, requested: count/{resource}=1, used: count/{resource}=50, limited: count/{resource}=50"
                ),
            )
        }
    }
}

/// RBAC's words for a denied request.
fn rbac_denial(t: &Target<'_>) -> String {
    let Some(info) = t.info else {
        return format!("User \"{USER}\" cannot get path \"/apis\"");
    };
    let (verb, resource) = match t.verb {
        "apply" => ("patch", info.resource.to_owned()),
        "token" => ("create", format!("{}/token", info.resource)),
        other => (other, info.resource.to_owned()),
    };
    let scope = match t.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_owned(),
    };
    format!(
        "User \"{USER}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
        info.group
    )
}

/// `403 Forbidden` naming the object (or the collection) and why.
fn forbidden(t: &Target<'_>, why: &str) -> ApiError {
    let Some(info) = t.info else {
        return status(403, "Forbidden", format!("forbidden: {why}"));
    };
    let subject = if t.name.is_empty() {
        info.qualified()
    } else {
        format!("{} \"{}\"", info.qualified(), t.name)
    };
    let mut details = json!({ "name": t.name, "kind": info.resource });
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    ApiError {
        details: Some(details),
        ..status(403, "Forbidden", format!("{subject} is forbidden: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::catalog;

    fn sa() -> &'static ResourceInfo {
        catalog::by_resource("", "v1", "serviceaccounts").expect("served")
    }

    #[test]
    fn denials_are_worded_as_rbac_words_them() {
        let t = Target {
            info: Some(sa()),
            namespace: Some("production"),
            name: "orders",
            verb: "apply",
        };
        assert_eq!(t.object("eks-prod"), "eks-prod/production/orders");
        let e = error(Failure::Forbidden, "k8s:apply serviceaccounts", &t);
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "serviceaccounts \"orders\" is forbidden: User \"sandbox\" cannot patch resource \"serviceaccounts\" in API group \"\" in the namespace \"production\""
        );
        let list = Target {
            info: Some(sa()),
            namespace: None,
            name: "",
            verb: "list",
        };
        assert_eq!(list.object("c"), "c");
        assert_eq!(
            error(Failure::Forbidden, "k8s:list serviceaccounts", &list).message,
            "serviceaccounts is forbidden: User \"sandbox\" cannot list resource \"serviceaccounts\" in API group \"\" at the cluster scope"
        );
        let token = Target { verb: "token", ..t };
        assert!(
            error(Failure::Forbidden, "k8s:token serviceaccounts", &token)
                .message
                .contains("cannot create resource \"serviceaccounts/token\"")
        );
    }

    #[test]
    fn other_failures_take_status_shapes() {
        let t = Target {
            info: Some(sa()),
            namespace: Some("ns"),
            name: "x",
            verb: "create",
        };
        let e = |f| error(f, "k8s:create serviceaccounts", &t);
        assert_eq!(
            (
                e(Failure::Unauthorized).code,
                e(Failure::Unauthorized).reason
            ),
            (401, "Unauthorized")
        );
        assert_eq!(e(Failure::Throttle).code, 429);
        assert_eq!(e(Failure::ServerError).code, 500);
        assert_eq!(e(Failure::Conflict).code, 409);
        let quota = e(Failure::LimitExceeded);
        assert_eq!(quota.code, 403);
        assert!(quota.message.starts_with(
            "serviceaccounts \"x\" is forbidden: exceeded quota: object-counts, requested: count/serviceaccounts=1"
        ));
    }
}
