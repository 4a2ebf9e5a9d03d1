//! Google's error shape (`{"error": {"code", "message", "status", "details"}}`), the
//! errors the emulated APIs answer with, and what every request goes through first:
//! the call counter, injected faults and the bearer-token check.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use super::request::Call;
use crate::Shared;
use crate::wire::Failure;

/// The message of a stale etag (IAM and Resource Manager answer the same).
pub(crate) const CONCURRENT_CHANGE: &str = "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.";

/// An error answer of a Google API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status}: {message}")]
pub(crate) struct GcpError {
    pub(crate) code: StatusCode,
    pub(crate) status: &'static str,
    pub(crate) message: String,
    pub(crate) details: Vec<Value>,
}

impl GcpError {
    fn new(code: StatusCode, status: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds one `details` entry (a typed `google.rpc` message).
    pub(crate) fn with_detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }

    /// 400 `INVALID_ARGUMENT`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    /// 400 `INVALID_ARGUMENT` with the `DebugInfo` detail IAM adds to validation errors.
    pub(crate) fn invalid_with_debug(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::invalid(message.clone()).with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.DebugInfo",
            "detail": message,
        }))
    }

    /// 400 for a JSON body the server cannot map onto the request message, in the
    /// words of Google's front end (with its `BadRequest` detail).
    pub(crate) fn bad_payload(description: impl Into<String>) -> Self {
        let description = description.into();
        Self::invalid(description.clone()).with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{ "description": description }],
        }))
    }

    /// 404 `NOT_FOUND`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 409 `ALREADY_EXISTS` naming the resource in a `ResourceInfo` detail.
    pub(crate) fn already_exists(message: impl Into<String>, resource: &str) -> Self {
        Self::new(StatusCode::CONFLICT, "ALREADY_EXISTS", message).with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resourceName": resource,
        }))
    }

    /// 409 `ABORTED`: a stale etag (or an injected conflict).
    pub(crate) fn aborted(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ABORTED", message)
    }

    /// 429 `RESOURCE_EXHAUSTED`: a quota.
    pub(crate) fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED", message)
    }

    /// 403 `PERMISSION_DENIED`.
    pub(crate) fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
    }

    /// 401 `UNAUTHENTICATED`: no bearer token.
    fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "CREDENTIALS_MISSING",
            "domain": "googleapis.com",
        }))
    }

    /// The error an injected failure stands for on `api` (`iam.serviceAccounts.create`,
    /// `crm.projects.setIamPolicy`, `container.clusters.get`) naming `resource`
    /// (`projects/P/serviceAccounts/E`).
    fn from_failure(failure: Failure, api: &str, resource: &str) -> Self {
        let service = api.split('.').next().unwrap_or(api);
        let host = match service {
            "crm" => "cloudresourcemanager",
            other => other,
        };
        let permission = match api.strip_prefix("crm.") {
            Some(rest) => format!("resourcemanager.{rest}"),
            None => api.to_owned(),
        };
        match failure {
            Failure::Throttle => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                format!(
                    "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service '{host}.googleapis.com'."
                ),
            )
            .with_detail(json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": { "service": format!("{host}.googleapis.com") },
            })),
            Failure::ServerError => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "The service is currently unavailable.",
            ),
            Failure::Conflict => Self::aborted(CONCURRENT_CHANGE),
            Failure::Unauthorized => Self::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )
            .with_detail(json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_EXPIRED",
                "domain": "googleapis.com",
                "metadata": { "service": format!("{host}.googleapis.com") },
            })),
            // GKE words its denials its own way and adds no ErrorInfo.
            Failure::Forbidden if service == "container" => Self::permission_denied(format!(
                "Required \"{permission}\" permission(s) for \"{resource}\"."
            )),
            Failure::Forbidden => {
                let on = if service == "crm" {
                    format!("resource '//cloudresourcemanager.googleapis.com/{resource}'")
                } else {
                    "resource".to_owned()
                };
                Self::permission_denied(format!(
                    "Permission '{permission}' denied on {on} (or it may not exist)."
                ))
                .with_detail(json!({
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "IAM_PERMISSION_DENIED",
                    "domain": format!("{host}.googleapis.com"),
                    "metadata": { "permission": permission },
                }))
            }
            Failure::LimitExceeded if api == "iam.serviceAccounts.create" => {
                Self::resource_exhausted("Maximum number of service accounts on project reached.")
            }
            Failure::LimitExceeded if api.ends_with(".setIamPolicy") => Self::invalid(
                "The number of members in the policy (1,501) is larger than the maximum allowed size 1,500.",
            ),
            Failure::LimitExceeded => Self::resource_exhausted(format!(
                "Quota exceeded for quota metric 'Requests' and limit 'Requests per day' of service '{host}.googleapis.com'."
            )),
        }
    }
}

impl IntoResponse for GcpError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "code": self.code.as_u16(),
            "message": self.message,
            "status": self.status,
        });
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details);
        }
        (self.code, Json(json!({ "error": error }))).into_response()
    }
}

/// What a GCP operation answers.
pub(crate) type GcpResult = Result<Json<Value>, GcpError>;

/// Counts the call as `gcp:{api}` on the resource the request names
/// (`projects/P/serviceAccounts/E`, without a `:method` suffix; a creation names the new
/// account's id), plays an injected fault
/// (after its latency), and checks for a bearer token, in that order: every request
/// reaches the counter, as every request reaches the real API.
pub(crate) async fn admit(shared: &Shared, api: &str, call: &Call) -> Result<(), GcpError> {
    let resource = resource(call);
    shared
        .admit(&format!("gcp:{api}"), &resource, |failure| {
            GcpError::from_failure(failure, api, &resource)
        })
        .await?;
    let bearer = call
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| !token.trim().is_empty());
    if bearer {
        Ok(())
    } else {
        Err(GcpError::unauthenticated())
    }
}

/// The resource a request names: the path's segments after the version, without the
/// custom method, and for a service account's creation its `accountId`.
fn resource(call: &Call) -> String {
    let mut segments: Vec<&str> = call.segments.iter().skip(1).map(String::as_str).collect();
    if let Some(last) = segments.last_mut()
        && let Some((name, _method)) = last.split_once(':')
    {
        *last = name;
    }
    let mut resource = segments.join("/");
    if call.method == http::Method::POST
        && resource.ends_with("/serviceAccounts")
        && let Some(id) = call.peek("accountId")
    {
        resource.push('/');
        resource.push_str(&id);
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_google_statuses() {
        let e = |f, api| GcpError::from_failure(f, api, "projects/acme-prod");
        let throttle = e(Failure::Throttle, "iam.serviceAccounts.list");
        assert_eq!(
            (throttle.code.as_u16(), throttle.status),
            (429, "RESOURCE_EXHAUSTED")
        );
        let unavailable = e(Failure::ServerError, "crm.projects.get");
        assert_eq!(
            (unavailable.code.as_u16(), unavailable.status),
            (503, "UNAVAILABLE")
        );
        let conflict = e(Failure::Conflict, "crm.projects.setIamPolicy");
        assert_eq!((conflict.code.as_u16(), conflict.status), (409, "ABORTED"));
        assert_eq!(conflict.message, CONCURRENT_CHANGE);
        let unauthenticated = e(Failure::Unauthorized, "iam.serviceAccounts.get");
        assert_eq!(
            (unauthenticated.code.as_u16(), unauthenticated.status),
            (401, "UNAUTHENTICATED")
        );
    }

    #[test]
    fn denials_name_the_permission_as_each_api_does() {
        let iam = GcpError::from_failure(
            Failure::Forbidden,
            "iam.serviceAccounts.create",
            "projects/p",
        );
        assert_eq!((iam.code.as_u16(), iam.status), (403, "PERMISSION_DENIED"));
        assert_eq!(
            iam.message,
            "Permission 'iam.serviceAccounts.create' denied on resource (or it may not exist)."
        );
        assert_eq!(
            iam.details[0]["metadata"]["permission"],
            "iam.serviceAccounts.create"
        );
        let crm = GcpError::from_failure(
            Failure::Forbidden,
            "crm.projects.setIamPolicy",
            "projects/p",
        );
        assert_eq!(
            crm.message,
            "Permission 'resourcemanager.projects.setIamPolicy' denied on resource '//cloudresourcemanager.googleapis.com/projects/p' (or it may not exist)."
        );
        let gke = GcpError::from_failure(
            Failure::Forbidden,
            "container.clusters.get",
            "projects/p/locations/l/clusters/c",
        );
        assert_eq!(
            gke.message,
            "Required \"container.clusters.get\" permission(s) for \"projects/p/locations/l/clusters/c\"."
        );
    }

    #[test]
    fn quotas_are_the_ones_each_call_runs_into() {
        let create = GcpError::from_failure(
            Failure::LimitExceeded,
            "iam.serviceAccounts.create",
            "projects/p",
        );
        assert_eq!(
            (create.code.as_u16(), create.status),
            (429, "RESOURCE_EXHAUSTED")
        );
        let set = GcpError::from_failure(
            Failure::LimitExceeded,
            "crm.projects.setIamPolicy",
            "projects/p",
        );
        assert_eq!((set.code.as_u16(), set.status), (400, "INVALID_ARGUMENT"));
    }
}
