//! Kubernetes `Status` errors: every failure the emulated API server answers, worded and
//! shaped like the real server's (`serviceaccounts "x" not found`, reason, details, code).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::catalog::ResourceInfo;

/// A failed request, answered as a `metav1.Status` with `status: Failure`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code, repeated in the body's `code`.
    pub code: u16,
    /// The machine-readable reason (`NotFound`, `Conflict`, ...).
    pub reason: &'static str,
    /// The human message, as the real server words it.
    pub message: String,
    /// The `details` object, when the real server sends one.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Details naming a resource (`kind` holds the resource plural, as the real server does
    /// for NotFound, AlreadyExists and Conflict).
    fn resource_details(info: &ResourceInfo, name: &str) -> Value {
        let mut details = json!({ "name": name, "kind": info.resource });
        if !info.group.is_empty() {
            details["group"] = json!(info.group);
        }
        details
    }

    /// `404 NotFound`: `serviceaccounts "x" not found`.
    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", info.qualified()),
        )
        .with_details(Self::resource_details(info, name))
    }

    /// `404 NotFound` for a path the server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({ "causes": [{
            "reason": "UnexpectedServerResponse",
            "message": "404 page not found"
        }]}))
    }

    /// `409 AlreadyExists`: `serviceaccounts "x" already exists`.
    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", info.qualified()),
        )
        .with_details(Self::resource_details(info, name))
    }

    /// `409 Conflict` for a stale resourceVersion or an unmet precondition.
    pub fn conflict(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                info.qualified()
            ),
        )
        .with_details(Self::resource_details(info, name))
    }

    /// `409 Conflict` for a stale `metadata.resourceVersion`.
    pub fn modified(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `409 Conflict` injected by a fault rule on `api`.
    pub fn injected_conflict(api: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled ({api}): the object has been modified; please apply your changes to the latest version and try again"
            ),
        )
    }

    /// `409 Conflict` from server-side apply, with one `FieldManagerConflict` cause per
    /// conflicting field.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> Self {
        Self::new(409, "Conflict", message).with_details(json!({ "causes": causes }))
    }

    /// `422 Invalid`: `Kind "name" is invalid: field: Invalid value: ...`.
    ///
    /// `causes` pairs a field path with the text after `field: ` (for instance
    /// `Invalid value: 500: may not specify a duration less than 10 minutes`).
    pub fn invalid(group: &str, kind: &str, name: &str, causes: &[(String, String)]) -> Self {
        let listed: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let joined = if listed.len() == 1 {
            listed.join("")
        } else {
            format!("[{}]", listed.join(", "))
        };
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let cause_values: Vec<Value> = causes
            .iter()
            .map(|(field, message)| {
                json!({ "reason": "FieldValueInvalid", "message": message, "field": field })
            })
            .collect();
        let mut details = json!({ "name": name, "kind": kind, "causes": cause_values });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {joined}"),
        )
        .with_details(details)
    }

    /// `400 BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// `403 Forbidden` for an admission or policy refusal.
    pub fn forbidden(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {why}", info.qualified()),
        )
        .with_details(Self::resource_details(info, name))
    }

    /// `403 Forbidden` from authorization, for `resource` in `group` (and object `name`,
    /// when the request names one): `configmaps "x" is forbidden: User "u" cannot ...`.
    pub fn forbidden_as(resource: &str, group: &str, name: &str, why: &str) -> Self {
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        let message = if name.is_empty() {
            format!("{qualified} is forbidden: {why}")
        } else {
            format!("{qualified} \"{name}\" is forbidden: {why}")
        };
        let mut details = json!({ "kind": resource });
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        Self::new(403, "Forbidden", message).with_details(details)
    }

    /// `403 Forbidden` for a non-resource path: `forbidden: User "u" cannot get path "/x"`.
    pub fn forbidden_path(why: &str) -> Self {
        Self::new(403, "Forbidden", format!("forbidden: {why}"))
    }

    /// `401 Unauthorized`: credentials the server does not accept.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// `405 MethodNotAllowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// `405 MethodNotAllowed` for a watch: the sandbox keeps no event history, and saying
    /// so beats answering a list to a client that waits for events.
    pub fn watch_unsupported() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "watch is not supported by the wid sandbox: it serves get and list only (run kubectl get without --watch, and again to see changes)",
        )
    }

    /// `415 UnsupportedMediaType`.
    pub fn unsupported_media_type(content_type: &str, accepted: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: {accepted}"),
        )
        .with_details(json!({ "causes": [{ "reason": "UnsupportedMediaType", "message": content_type }] }))
    }

    /// `429 TooManyRequests` (answered with `Retry-After: 1`).
    pub fn too_many_requests() -> Self {
        Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        )
        .with_details(json!({ "retryAfterSeconds": 1 }))
    }

    /// `500 InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(json!({ "causes": [{ "message": message }] }))
    }

    /// The Status document.
    pub fn body(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, axum::Json(self.body())).into_response();
        if self.code == 429 {
            // Clients (kube-rs, client-go) honour Retry-After in seconds.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::catalog;

    #[test]
    fn not_found_is_worded_like_the_real_server() {
        let sa = catalog::by_resource("", "v1", "serviceaccounts").expect("known resource");
        let body = ApiError::not_found(sa, "x").body();
        assert_eq!(body["message"], "serviceaccounts \"x\" not found");
        assert_eq!(body["reason"], "NotFound");
        assert_eq!(body["code"], 404);
        assert_eq!(
            body["details"],
            json!({"name": "x", "kind": "serviceaccounts"})
        );
        let role = catalog::by_resource("rbac.authorization.k8s.io", "v1", "roles")
            .expect("known resource");
        let body = ApiError::already_exists(role, "r").body();
        assert_eq!(
            body["message"],
            "roles.rbac.authorization.k8s.io \"r\" already exists"
        );
        assert_eq!(body["details"]["group"], "rbac.authorization.k8s.io");
    }

    #[test]
    fn invalid_joins_several_causes_in_brackets() {
        let one = ApiError::invalid(
            "",
            "ServiceAccount",
            "a",
            &[("metadata.name".into(), "Invalid value: \"A\": bad".into())],
        );
        assert_eq!(
            one.message,
            "ServiceAccount \"a\" is invalid: metadata.name: Invalid value: \"A\": bad"
        );
        let two = ApiError::invalid(
            "g",
            "K",
            "a",
            &[("x".into(), "m1".into()), ("y".into(), "m2".into())],
        );
        assert_eq!(two.message, "K.g \"a\" is invalid: [x: m1, y: m2]");
    }
}
