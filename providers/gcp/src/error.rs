//! Turning google-cloud-rust errors into [`ProviderError`]s with a kind the engine can act
//! on, and a message that names the object and the IAM permission wid needs.
//!
//! Kinds: 429 / `RESOURCE_EXHAUSTED` throttled (with the wait of `Retry-After` or of a
//! `google.rpc.RetryInfo` detail); 5xx / `UNAVAILABLE` / timeouts transient (a timeout
//! with a hint naming `--call-timeout`); 401 auth (with the one-sentence fix); 403
//! permission (naming the permission); 404 not-found; 409 `ALREADY_EXISTS` conflict;
//! 409 `ABORTED` (a stale etag: someone wrote the policy between wid's read and write)
//! contended, which apply's read-modify-write loop handles itself a few times before the
//! engine sees it. A binding that names a service account created moments ago can fail
//! with "Service account … does not exist." until IAM catches up
//! (<https://github.com/hashicorp/terraform-provider-google/issues/6758>): transient.

use std::time::Duration;

use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::{Code, StatusDetails};
use wid_core::{
    BodyLimit, ErrorKind, ProviderError, ResourceId, human_duration, parse_retry_after,
};

/// The fix for missing or rejected credentials, in one sentence.
pub const AUTH_FIX: &str = "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key or a workload identity federation credential file";

/// The hint of a call that ran out of time.
const STALLED: &str = "the endpoint accepted the call but stalled; check it is reachable and healthy, or raise --call-timeout";

/// What a failing call was doing, for the message.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    /// The IAM permission the call needs, which is also its name in the call counts
    /// (`iam.serviceAccounts.create`).
    pub op: &'static str,
    /// What wid was doing, as a fragment: "create service account orders@p…".
    pub doing: String,
    /// The resource the permission is needed on (`projects/acme-prod`).
    pub on: String,
    /// The resource concerned.
    pub id: Option<&'a ResourceId>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(op: &'static str, doing: impl Into<String>, on: impl Into<String>) -> Self {
        Self {
            op,
            doing: doing.into(),
            on: on.into(),
            id: None,
        }
    }

    pub(crate) fn id(mut self, id: &'a ResourceId) -> Self {
        self.id = Some(id);
        self
    }

    /// The error of a call that ran into a bound: the per-call deadline (transient,
    /// retried) or the response cap (invalid).
    pub(crate) fn limit(&self, limit: BodyLimit) -> ProviderError {
        let out = match limit {
            BodyLimit::TimedOut(after) => ProviderError::new(
                ErrorKind::Transient,
                format!(
                    "failed to {}: Google Cloud did not answer within {} (the per-call deadline)",
                    self.doing,
                    human_duration(after)
                ),
            )
            .with_hint(STALLED),
            BodyLimit::TooLarge(max) => ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "failed to {}: the response was cut at {max} bytes, the most wid accepts for one call",
                    self.doing
                ),
            ),
        };
        let out = out.with_operation(self.op);
        match self.id {
            Some(id) => out.with_resource(id),
            None => out,
        }
    }

    /// Builds the error for this call.
    pub(crate) fn fail(&self, err: &Error) -> ProviderError {
        if let Some(limit) = BodyLimit::find(err) {
            return self.limit(limit).with_detail(err.to_string());
        }
        let (kind, what, detail) = classify(err);
        let mut out = if kind == ErrorKind::Permission {
            // The permission goes into the message itself: it is the one thing the user
            // needs, and it must survive any rendering of the error.
            ProviderError::new(
                kind,
                format!(
                    "failed to {}: permission denied; wid needs {} on {}",
                    self.doing, self.op, self.on
                ),
            )
            .with_hint(format!(
                "grant {} on {} to the identity wid runs as (docs/gcp.md lists the custom roles for plan and apply)",
                self.op, self.on
            ))
        } else {
            let mut e = ProviderError::new(kind, format!("failed to {}: {what}", self.doing));
            if timed_out(err) {
                e = e.with_hint(STALLED);
            } else if let Some(hint) = hint(kind) {
                e = e.with_hint(hint);
            }
            e
        };
        out = out.with_operation(self.op).with_detail(detail);
        if let Some(id) = self.id {
            out = out.with_resource(id);
        }
        if let Some(wait) = retry_after(err) {
            out = out.with_retry_after(wait);
        }
        out
    }
}

fn hint(kind: ErrorKind) -> Option<String> {
    match kind {
        ErrorKind::Auth => Some(AUTH_FIX.to_owned()),
        ErrorKind::Limit => Some(
            "a Google Cloud quota or IAM limit was reached; remove unused service accounts or bindings, or request a quota increase".to_owned(),
        ),
        ErrorKind::Conflict => {
            Some("another writer changed this object; run `wid plan` again".to_owned())
        }
        ErrorKind::Contended => Some(
            "another writer was changing this object at the same time; wid retries after reading it again"
                .to_owned(),
        ),
        _ => None,
    }
}

/// A binding names a service account IAM does not see yet (eventual consistency right
/// after the account was created).
pub(crate) fn is_member_not_yet_visible(err: &Error) -> bool {
    err.status().is_some_and(|s| {
        s.code == Code::InvalidArgument
            && s.message.starts_with("Service account ")
            && s.message.contains(" does not exist")
    })
}

/// The wait the API asked for: `Retry-After` (seconds or an HTTP date), else a
/// `google.rpc.RetryInfo` detail's `retryDelay`.
fn retry_after(err: &Error) -> Option<Duration> {
    let header = err
        .http_headers()
        .and_then(|h| h.get("retry-after"))
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    header.or_else(|| {
        err.status()?.details.iter().find_map(|d| match d {
            StatusDetails::RetryInfo(info) => info
                .retry_delay
                .and_then(|d| Duration::try_from(d).ok())
                .map(|d| d.min(wid_core::MAX_RETRY_AFTER)),
            _ => None,
        })
    })
}

/// Whether the call ran out of time: the client's attempt timeout, which the Google
/// clients report as a timeout before the response head and as an I/O error (with
/// reqwest's timeout as its source) while reading the body.
fn timed_out(err: &Error) -> bool {
    if err.is_timeout() {
        return true;
    }
    let mut next = std::error::Error::source(err);
    while let Some(e) = next {
        if e.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// The kind, a short description and the API's own words.
fn classify(err: &Error) -> (ErrorKind, String, String) {
    if err.is_authentication() {
        return (
            ErrorKind::Auth,
            "no usable Google credentials".to_owned(),
            err.to_string(),
        );
    }
    if timed_out(err) {
        return (
            ErrorKind::Transient,
            "Google Cloud did not answer in time".to_owned(),
            err.to_string(),
        );
    }
    if err.is_io() || err.is_connect() || err.is_transport() {
        return (
            ErrorKind::Transient,
            "the request could not be completed".to_owned(),
            err.to_string(),
        );
    }
    let http = err.http_status_code();
    let Some(status) = err.status() else {
        let kind = match http {
            Some(429) => ErrorKind::Throttled,
            Some(s) if s >= 500 => ErrorKind::Transient,
            Some(401) => ErrorKind::Auth,
            Some(403) => ErrorKind::Permission,
            Some(404) => ErrorKind::NotFound,
            Some(409) => ErrorKind::Conflict,
            Some(_) => ErrorKind::Invalid,
            None if err.is_deserialization() => ErrorKind::Invalid,
            None => ErrorKind::Transient,
        };
        return (kind, describe(kind), err.to_string());
    };
    let kind = match status.code {
        Code::ResourceExhausted if http == Some(429) || http.is_none() => ErrorKind::Throttled,
        Code::ResourceExhausted => ErrorKind::Limit,
        Code::Unavailable | Code::Internal | Code::Unknown | Code::DeadlineExceeded => {
            ErrorKind::Transient
        }
        Code::Unauthenticated => ErrorKind::Auth,
        Code::PermissionDenied => ErrorKind::Permission,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::Conflict,
        // An etag mismatch: someone wrote the policy between wid's read and write.
        Code::Aborted => ErrorKind::Contended,
        Code::InvalidArgument if is_member_not_yet_visible(err) => ErrorKind::Transient,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => ErrorKind::Invalid,
        _ => match http {
            Some(429) => ErrorKind::Throttled,
            Some(s) if s >= 500 => ErrorKind::Transient,
            _ => ErrorKind::Invalid,
        },
    };
    let what = match (kind, status.code) {
        (ErrorKind::Conflict, Code::AlreadyExists) => "it already exists".to_owned(),
        (ErrorKind::Transient, Code::InvalidArgument) => {
            "a service account it names is not visible to IAM yet".to_owned()
        }
        (ErrorKind::Invalid, _) => format!("rejected: {}", status.message),
        _ => describe(kind),
    };
    let detail = format!("{}: {}", status.code.name(), status.message);
    (kind, what, detail)
}

fn describe(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::NotFound => "it does not exist",
        ErrorKind::Conflict => "it conflicts with the live state",
        ErrorKind::Contended => "a concurrent change got there first",
        ErrorKind::Limit => "a quota or limit was exceeded",
        ErrorKind::Invalid => "the request was rejected as invalid",
        ErrorKind::Permission => "permission denied",
        ErrorKind::Throttled => "throttled by Google Cloud",
        ErrorKind::Auth => "the credentials were rejected",
        ErrorKind::Transient => "Google Cloud had an internal error",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_gax::error::rpc::Status;

    fn service(code: Code, http: u16, message: &str) -> Error {
        let mut headers = http::HeaderMap::new();
        if http == 429 {
            headers.insert("retry-after", http::HeaderValue::from_static("7"));
        }
        Error::service_full(
            Status::default().set_code(code).set_message(message),
            Some(http),
            Some(headers),
            None,
        )
    }

    fn call() -> Call<'static> {
        Call::new(
            "iam.serviceAccounts.create",
            "create service account orders@acme-prod.iam.gserviceaccount.com",
            "projects/acme-prod",
        )
    }

    #[test]
    fn permission_errors_name_the_permission_and_resource() {
        let e = call().fail(&service(
            Code::PermissionDenied,
            403,
            "Permission 'iam.serviceAccounts.create' denied",
        ));
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert_eq!(
            e.to_string(),
            "failed to create service account orders@acme-prod.iam.gserviceaccount.com: permission denied; wid needs iam.serviceAccounts.create on projects/acme-prod"
        );
        assert!(e.hint.as_deref().unwrap().contains("docs/gcp.md"));
    }

    #[test]
    fn codes_map_to_kinds() {
        let k = |code, http| call().fail(&service(code, http, "x")).kind();
        assert_eq!(k(Code::ResourceExhausted, 429), ErrorKind::Throttled);
        assert_eq!(k(Code::Unavailable, 503), ErrorKind::Transient);
        assert_eq!(k(Code::Internal, 500), ErrorKind::Transient);
        assert_eq!(k(Code::Aborted, 409), ErrorKind::Contended);
        assert_eq!(k(Code::AlreadyExists, 409), ErrorKind::Conflict);
        assert_eq!(k(Code::NotFound, 404), ErrorKind::NotFound);
        assert_eq!(k(Code::InvalidArgument, 400), ErrorKind::Invalid);
        assert_eq!(k(Code::ResourceExhausted, 400), ErrorKind::Limit);
        let auth = call().fail(&service(Code::Unauthenticated, 401, "x"));
        assert_eq!(auth.kind(), ErrorKind::Auth);
        assert_eq!(auth.hint.as_deref(), Some(AUTH_FIX));
    }

    #[test]
    fn throttling_keeps_the_wait_the_api_asked_for() {
        let e = call().fail(&service(Code::ResourceExhausted, 429, "slow down"));
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        // An HTTP date in the past asks for no wait.
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "retry-after",
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        let e = call().fail(&Error::service_full(
            Status::default().set_code(Code::Unavailable),
            Some(503),
            Some(headers),
            None,
        ));
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(e.retry_after, Some(Duration::ZERO));
    }

    #[test]
    fn a_retry_info_detail_is_a_wait_too() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "code": 8,
            "message": "Quota exceeded",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": "3s"
            }]
        }))
        .unwrap();
        let e = call().fail(&Error::service_full(status, Some(429), None, None));
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_stale_etag_is_contended_and_retried() {
        let e = call().fail(&service(
            Code::Aborted,
            409,
            "There were concurrent policy changes.",
        ));
        assert_eq!(e.kind(), ErrorKind::Contended);
        assert!(e.kind().is_retryable());
        assert!(
            e.to_string()
                .contains("a concurrent change got there first"),
            "{e}"
        );
    }

    #[test]
    fn bounds_are_named_in_the_error() {
        let e = call().limit(BodyLimit::TimedOut(Duration::from_secs(2)));
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert!(
            e.to_string().contains("within 2s (the per-call deadline)"),
            "{e}"
        );
        assert!(e.hint.as_deref().unwrap_or("").contains("--call-timeout"));
        assert_eq!(e.operation.as_deref(), Some("iam.serviceAccounts.create"));
        let e = call().limit(BodyLimit::TooLarge(1024));
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let e = call().fail(&Error::timeout("attempt timed out"));
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert!(e.hint.as_deref().unwrap_or("").contains("--call-timeout"));
    }

    #[test]
    fn a_just_created_account_not_yet_visible_is_retried() {
        let err = service(
            Code::InvalidArgument,
            400,
            "Service account orders@acme-prod.iam.gserviceaccount.com does not exist.",
        );
        assert!(is_member_not_yet_visible(&err));
        assert_eq!(call().fail(&err).kind(), ErrorKind::Transient);
        let pool = service(
            Code::InvalidArgument,
            400,
            "Identity Pool does not exist (x.svc.id.goog).",
        );
        assert_eq!(call().fail(&pool).kind(), ErrorKind::Invalid);
    }
}
