//! Google's error shape (`{"error": {"code", "message", "status", "details"}}`), the
//! errors the emulated APIs answer with, and what every request goes through first:
//! the call counter, injected faults and the bearer-token check.

use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::{FaultAction, Shared};

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

    /// The error an injected fault stands for on `service`, or `None` for latency.
    fn from_fault(fault: &FaultAction, service: &str) -> Option<Self> {
        Some(match fault {
            FaultAction::Throttle => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                format!(
                    "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service '{service}.googleapis.com'."
                ),
            )
            .with_detail(json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": { "service": format!("{service}.googleapis.com") },
            })),
            FaultAction::ServerError => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "The service is currently unavailable.",
            ),
            FaultAction::Conflict => Self::aborted(CONCURRENT_CHANGE),
            FaultAction::Latency { .. } => return None,
        })
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

/// Counts the call as `gcp:{api}`, applies an injected fault (sleeping for latency), and
/// checks for a bearer token, in that order: every request reaches the counter, as every
/// request reaches the real API.
pub(crate) async fn admit(shared: &Shared, api: &str, headers: &HeaderMap) -> Result<(), GcpError> {
    let service = api.split('.').next().unwrap_or(api);
    match shared.call(&format!("gcp:{api}")) {
        Some(FaultAction::Latency { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(fault) => {
            if let Some(error) = GcpError::from_fault(&fault, service) {
                return Err(error);
            }
        }
        None => {}
    }
    let bearer = headers
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_map_to_google_statuses() {
        let throttle = GcpError::from_fault(&FaultAction::Throttle, "iam").expect("error");
        assert_eq!(
            (throttle.code.as_u16(), throttle.status),
            (429, "RESOURCE_EXHAUSTED")
        );
        let unavailable = GcpError::from_fault(&FaultAction::ServerError, "crm").expect("error");
        assert_eq!(
            (unavailable.code.as_u16(), unavailable.status),
            (503, "UNAVAILABLE")
        );
        let conflict = GcpError::from_fault(&FaultAction::Conflict, "iam").expect("error");
        assert_eq!((conflict.code.as_u16(), conflict.status), (409, "ABORTED"));
        assert_eq!(conflict.message, CONCURRENT_CHANGE);
        assert_eq!(
            GcpError::from_fault(&FaultAction::Latency { ms: 1 }, "iam"),
            None
        );
    }
}
