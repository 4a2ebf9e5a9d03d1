//! What every ARM operation shares: the error shape and its common errors, the request as
//! handlers see it (path segments, query, body, caller), api-version sets, ids, times and
//! paging.
//!
//! Errors are ARM's `CloudError`: `{"error":{"code","message","target"?}}` with the status
//! ARM uses for that code.

use std::collections::BTreeMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// An ARM error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub(crate) struct ArmError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) target: Option<String>,
    /// Seconds for a `Retry-After` header (throttling).
    pub(crate) retry_after: Option<u64>,
}

impl ArmError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            target: None,
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// ARM's answer for a request without a usable bearer token.
    pub(crate) fn unauthenticated(missing: bool) -> Self {
        let message = if missing {
            "Authentication failed. The 'Authorization' header is missing."
        } else {
            "Authentication failed. The 'Authorization' header is provided in an invalid format."
        };
        Self::new(StatusCode::UNAUTHORIZED, "AuthenticationFailed", message)
    }

    pub(crate) fn subscription_not_found(sub: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        )
    }

    pub(crate) fn resource_group_not_found(rg: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        )
    }

    /// ARM's 404 for a tracked resource that does not exist.
    pub(crate) fn resource_not_found(kind: &str, name: &str, rg: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    /// ARM's 404 for a write on a child resource whose parent does not exist.
    pub(crate) fn parent_not_found(verb: &str, child_type: &str, parent_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ParentResourceNotFound",
            format!(
                "Failed to perform '{verb}' on resource(s) of type '{child_type}', because the parent resource '{parent_id}' could not be found."
            ),
        )
    }

    pub(crate) fn invalid_content(detail: impl std::fmt::Display) -> Self {
        Self::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{detail}'."),
        )
    }

    /// ARM's throttling answer (`Retry-After: 1`).
    pub(crate) fn throttled(sub: &str, write: bool) -> Self {
        let kind = if write { "write" } else { "read" };
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "SubscriptionRequestsThrottled",
            format!(
                "Number of '{kind}' requests for subscription '{sub}' actor 'sandbox' exceeded. Please try again after '1' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling"
            ),
        );
        e.retry_after = Some(1);
        e
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Encountered internal server error. Please try again.",
        )
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(target) = &self.target {
            error["target"] = json!(target);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static(if self.code == "AuthenticationFailed" {
                    "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header.\""
                } else {
                    "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\", error_description=\"The access token is invalid.\""
                }),
            );
        }
        response
    }
}

/// What an ARM handler returns.
pub(crate) type ArmResult = Result<Response, ArmError>;

/// A JSON answer with a status.
pub(crate) fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// One ARM request as the handlers see it.
#[derive(Debug)]
pub(crate) struct Req {
    /// Query parameters, decoded, in order.
    pub(crate) query: Vec<(String, String)>,
    /// The request body.
    pub(crate) body: bytes::Bytes,
    /// `https://host:port` as the client addressed the server, for `nextLink`s.
    pub(crate) base: String,
    /// The request path as sent.
    pub(crate) path: String,
    /// A stable object id for the caller, derived from its token.
    pub(crate) caller: String,
    /// The api-version sent.
    pub(crate) api_version: String,
}

impl Req {
    /// The value of query parameter `name`, matched case-insensitively (`$skipToken` and
    /// `$skiptoken` are the same parameter to ARM).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as a JSON object (`{}` when empty).
    pub(crate) fn json(&self) -> Result<Value, ArmError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        let value: Value = serde_json::from_slice(&self.body).map_err(ArmError::invalid_content)?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(ArmError::invalid_content("the body must be a JSON object"))
        }
    }
}

/// The bearer token of a request: `Ok(token)`, or the 401 to answer.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<String, ArmError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(ArmError::unauthenticated(true));
    };
    let text = value
        .to_str()
        .map_err(|_| ArmError::unauthenticated(false))?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(ArmError::unauthenticated(false)),
    }
}

/// A GUID derived from `text`: the same text always gives the same GUID.
pub(crate) fn stable_guid(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// A new random GUID.
pub(crate) fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `text` is a GUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
pub(crate) fn is_guid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The current time as ARM writes it (`2025-01-02T03:04:05.123456Z`).
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

/// A location as ARM stores it: lowercase, without spaces (`East US` → `eastus`).
pub(crate) fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Tags from a body's `tags` member: `Ok(None)` when absent, an error when not a map of
/// strings.
pub(crate) fn tags(body: &Value) -> Result<Option<BTreeMap<String, String>>, ArmError> {
    match &body["tags"] {
        Value::Null => Ok(None),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ArmError::invalid_content(format!(
                    "tag '{k}' must have a string value"
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        _ => Err(ArmError::invalid_content("tags must be an object")),
    }
}

/// One page of `items` (sorted by key) after `$skiptoken`, at most `size` long, with the
/// `nextLink` that fetches the rest.
pub(crate) fn page(req: &Req, items: Vec<(String, Value)>, size: usize) -> Value {
    let start = req.param("$skiptoken").map_or(0, |token| {
        items.iter().take_while(|(k, _)| k.as_str() < token).count()
    });
    let rest = &items[start.min(items.len())..];
    let mut body = json!({
        "value": rest.iter().take(size).map(|(_, v)| v.clone()).collect::<Vec<_>>(),
    });
    if let Some((next, _)) = rest.get(size) {
        let mut link = format!("{}{}?api-version={}", req.base, req.path, req.api_version);
        if let Some(top) = req.param("$top") {
            link.push_str(&format!("&$top={top}"));
        }
        link.push_str("&$skiptoken=");
        link.push_str(
            &percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
        body["nextLink"] = json!(link);
    }
    body
}

/// ARM's answer to an api-version a resource type does not support, per namespace: the
/// resource providers answer `NoRegisteredProviderFound` (400), Microsoft.Authorization's
/// extension types `InvalidResourceType` (404), Microsoft.Resources `InvalidApiVersionParameter`
/// (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionError {
    /// A resource provider's type: `NoRegisteredProviderFound`.
    Provider,
    /// A Microsoft.Authorization type: `InvalidResourceType`.
    Authorization,
    /// Microsoft.Resources (subscriptions, resource groups): `InvalidApiVersionParameter`.
    Resources,
}

/// Regions the sandbox names in `NoRegisteredProviderFound` messages.
const LOCATIONS: &str = "East US, East US 2, West US, West US 2, West US 3, Central US, North Central US, South Central US, West Central US, Canada Central, Brazil South, North Europe, West Europe, UK South, France Central, Germany West Central, Sweden Central, Switzerland North, Norway East, Poland Central, Italy North, East Asia, Southeast Asia, Japan East, Korea Central, Central India, Australia East, South Africa North, UAE North";

/// Checks `version` against `supported`: `Ok` or the error ARM answers.
pub(crate) fn check_version(
    version: Option<&str>,
    supported: &[&str],
    kind: VersionError,
    namespace: &str,
    resource_type: &str,
    location: &str,
) -> Result<String, ArmError> {
    let Some(version) = version.filter(|v| !v.is_empty()) else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    if supported.iter().any(|v| v.eq_ignore_ascii_case(version)) {
        return Ok(version.to_owned());
    }
    Err(match kind {
        VersionError::Provider => ArmError::bad_request(
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for location '{location}' and API version '{version}' for type '{resource_type}'. The supported api-versions are '{}'. The supported locations are '{LOCATIONS}'.",
                supported.join(", ")
            ),
        ),
        VersionError::Authorization => ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            format!(
                "The resource type '{resource_type}' could not be found in the namespace '{namespace}' for api version '{version}'. The supported api-versions are '{}'.",
                supported.join(",")
            ),
        ),
        VersionError::Resources => ArmError::bad_request(
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{version}' is invalid. The supported versions are '{}'.",
                supported.join(",")
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_guids_are_guids_and_stable() {
        let a = stable_guid("x");
        assert!(is_guid(&a), "{a}");
        assert_eq!(a, stable_guid("x"));
        assert_ne!(a, stable_guid("y"));
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn locations_are_normalized() {
        assert_eq!(normalize_location("East US 2"), "eastus2");
        assert_eq!(normalize_location("westeurope"), "westeurope");
    }

    #[test]
    fn bearer_tokens_are_required() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), Err(ArmError::unauthenticated(true)));
        headers.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), Err(ArmError::unauthenticated(false)));
        headers.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), Err(ArmError::unauthenticated(false)));
        headers.insert("authorization", HeaderValue::from_static("Bearer t0k"));
        assert_eq!(bearer(&headers), Ok("t0k".to_owned()));
    }

    #[test]
    fn unsupported_versions_are_answered_per_namespace() {
        let missing = check_version(None, &["2024-11-30"], VersionError::Provider, "", "", "");
        assert_eq!(missing.unwrap_err().code, "MissingApiVersionParameter");
        let e = check_version(
            Some("2019-01-01"),
            &["2023-01-31", "2024-11-30"],
            VersionError::Provider,
            "Microsoft.ManagedIdentity",
            "userAssignedIdentities",
            "eastus",
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "NoRegisteredProviderFound")
        );
        assert!(e.message.starts_with("No registered resource provider found for location 'eastus' and API version '2019-01-01' for type 'userAssignedIdentities'. The supported api-versions are '2023-01-31, 2024-11-30'."), "{}", e.message);
        let e = check_version(
            Some("2015-07-01"),
            &["2022-04-01"],
            VersionError::Authorization,
            "Microsoft.Authorization",
            "roleAssignments",
            "",
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::NOT_FOUND, "InvalidResourceType")
        );
        let e = check_version(
            Some("2099-01-01"),
            &["2021-04-01"],
            VersionError::Resources,
            "",
            "",
            "",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "The api-version '2099-01-01' is invalid. The supported versions are '2021-04-01'."
        );
        assert_eq!(
            check_version(
                Some("2022-04-01"),
                &["2022-04-01"],
                VersionError::Resources,
                "",
                "",
                ""
            ),
            Ok("2022-04-01".to_owned())
        );
    }
}
