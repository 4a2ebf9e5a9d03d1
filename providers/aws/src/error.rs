//! Turning aws-sdk-rust errors into [`ProviderError`]s with a kind the engine can act on,
//! and a message that names the object, the account and the permission wid needs.

use std::error::Error as StdError;
use std::sync::LazyLock;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use regex::Regex;
use wid_core::{BodyLimit, ErrorKind, ProviderError, ResourceId, parse_retry_after};

/// What a failing call was doing, for the message.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    /// `iam:CreateRole`, `eks:DescribeCluster`: also the permission wid needs.
    pub op: &'static str,
    /// What wid was doing, as a fragment: "create role orders-prod in account 1111".
    pub doing: String,
    /// The ARN the permission is needed on.
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

    /// Builds the error for this call from an SDK error.
    pub(crate) fn fail<E>(&self, err: &SdkError<E>) -> ProviderError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut retry_after = None;
        let (kind, what, detail) = match err {
            _ if BodyLimit::find(err).is_some() => {
                let text = chain(err);
                match BodyLimit::find(err) {
                    Some(BodyLimit::TooLarge(max)) => (
                        ErrorKind::Invalid,
                        format!(
                            "the response was cut at {max} bytes, the most wid accepts for one call"
                        ),
                        text,
                    ),
                    _ => (
                        ErrorKind::Transient,
                        "AWS did not answer within the per-call deadline".to_owned(),
                        text,
                    ),
                }
            }
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("");
                let message = e.message().unwrap_or("");
                let status = service.raw().status().as_u16();
                let kind = classify(code, Some(status));
                retry_after = service
                    .raw()
                    .headers()
                    .get("retry-after")
                    .and_then(parse_retry_after);
                let detail = match (code, message) {
                    ("", "") => format!("HTTP status {status}"),
                    (code, "") => code.to_owned(),
                    (code, message) => format!("{code}: {message}"),
                };
                (kind, describe(kind, code), detail)
            }
            _ if credentials_problem(err).is_some() => {
                return self.no_credentials(credentials_problem(err));
            }
            SdkError::ConstructionFailure(_) => (
                ErrorKind::Invalid,
                "the request could not be built".to_owned(),
                chain(err),
            ),
            SdkError::TimeoutError(_) => (
                ErrorKind::Transient,
                "AWS did not answer within the per-call deadline".to_owned(),
                chain(err),
            ),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => (
                ErrorKind::Transient,
                "AWS did not answer in time (a connect or read timeout)".to_owned(),
                chain(err),
            ),
            SdkError::DispatchFailure(_) => (
                ErrorKind::Transient,
                "the request could not be sent".to_owned(),
                chain(err),
            ),
            _ => (
                ErrorKind::Transient,
                "the response could not be read".to_owned(),
                chain(err),
            ),
        };
        let mut out = ProviderError::new(kind, format!("failed to {}: {what}", self.doing))
            .with_operation(self.op)
            .with_detail(detail);
        if let Some(wait) = retry_after {
            out = out.with_retry_after(wait);
        }
        if what.starts_with("AWS did not answer") {
            out = out.with_hint(
                "the endpoint accepted the call but stalled; check it is reachable and healthy, or raise --call-timeout",
            );
        }
        if let Some(hint) = self.hint(kind) {
            out = out.with_hint(hint);
        }
        if let Some(id) = self.id {
            out = out.with_resource(id);
        }
        if kind == ErrorKind::Permission {
            // The permission goes into the message itself: it is the one thing the user
            // needs to fix this, and it must survive any rendering of the error.
            let message = format!(
                "failed to {}: access denied; wid needs {} on {}",
                self.doing, self.op, self.on
            );
            let mut again = ProviderError::new(kind, message).with_operation(self.op);
            again.retry_after = out.retry_after;
            again.detail = out.detail.take();
            again.hint = out.hint.take();
            again.resource = out.resource.take();
            return again;
        }
        out
    }

    /// No call was made: the credential chain found nothing, or a source it tried (an SSO
    /// token, a `credential_process` helper, a profile) failed. One sentence that says
    /// which, and a hint with every way to fix it.
    fn no_credentials(&self, problem: Option<&CredentialsError>) -> ProviderError {
        let account = ACCOUNT_IN
            .captures(&self.doing)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_owned());
        let for_account = account
            .as_deref()
            .map_or_else(String::new, |a| format!(" for account {a}"));
        let message = match problem {
            Some(CredentialsError::CredentialsNotLoaded(_)) | None => format!(
                "no AWS credentials found{for_account} (tried the environment, the shared config and credentials files, web identity, ECS and EC2 instance metadata)"
            ),
            Some(other) => format!(
                "could not load the AWS credentials{for_account}: {}",
                chain(other)
            ),
        };
        let profiles = account.as_deref().map_or_else(
            || "[aws.profiles] table".to_owned(),
            |a| format!("[aws.profiles] table (\"{a}\" = \"PROFILE\")"),
        );
        ProviderError::new(ErrorKind::Auth, message).with_hint(format!(
            "set AWS_PROFILE to a profile with keys, IAM Identity Center (run `aws sso login --profile PROFILE` first) or credential_process, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name the account's profile in the plan's {profiles}"
        ))
    }

    fn hint(&self, kind: ErrorKind) -> Option<String> {
        match kind {
            ErrorKind::Auth => Some(
                "check the AWS credentials for this account: AWS_PROFILE or AWS_ACCESS_KEY_ID, or a profile for it in the plan's [aws.profiles] table (`aws sts get-caller-identity` shows whose they are)".into(),
            ),
            ErrorKind::Permission => Some(format!(
                "grant {} on {} to the identity wid runs as; docs/aws.md lists every permission wid needs",
                self.op, self.on
            )),
            ErrorKind::Limit => Some(
                "an IAM or EKS quota was reached; remove unused objects or request a quota increase".into(),
            ),
            ErrorKind::Conflict => Some("another writer changed this object; run `wid plan` again".into()),
            ErrorKind::Contended => Some("another writer was changing this object at the same time; wid retries after reading it again".into()),
            _ => None,
        }
    }
}

/// An account id in a call's description ("create role R in account 111122223333").
static ACCOUNT_IN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"account (\d{12})").expect("static regex is valid"));

/// The credential error behind an SDK error, if resolving credentials is what failed.
fn credentials_problem<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(c);
        }
        next = e.source();
    }
    None
}

/// An error and its sources as one line of their messages (never their debug forms),
/// each message once.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string().trim().to_owned();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Error codes (IAM's awsQuery codes, EKS's and STS's) to kinds; the HTTP status decides
/// what the code does not.
///
/// `ConcurrentModification` (IAM) and `ResourceInUseException` (EKS) mean "someone else
/// is changing this right now": contended, retried after re-reading the object. (An EKS
/// Pod Identity create answers `ResourceInUseException` when the association already
/// exists; the re-read then finds it and the retry becomes an update or a no-op.)
pub(crate) fn classify(code: &str, status: Option<u16>) -> ErrorKind {
    match code {
        "NoSuchEntity" | "ResourceNotFoundException" | "NotFoundException" => ErrorKind::NotFound,
        "ConcurrentModification" | "ConcurrentModificationException" | "ResourceInUseException" => {
            ErrorKind::Contended
        }
        "EntityAlreadyExists" | "DeleteConflict" | "UnmodifiableEntity" => ErrorKind::Conflict,
        "LimitExceeded" | "ResourceLimitExceededException" | "ServiceQuotaExceededException" => {
            ErrorKind::Limit
        }
        "MalformedPolicyDocument"
        | "InvalidInput"
        | "ValidationError"
        | "PolicyNotAttachable"
        | "InvalidParameterException"
        | "InvalidRequestException" => ErrorKind::Invalid,
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => ErrorKind::Permission,
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => ErrorKind::Throttled,
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId"
        | "MissingAuthenticationToken" => ErrorKind::Auth,
        "ServiceFailure" | "ServerException" | "ServiceUnavailable" | "InternalFailure" => {
            ErrorKind::Transient
        }
        _ => match status {
            Some(429) => ErrorKind::Throttled,
            Some(s) if s >= 500 => ErrorKind::Transient,
            Some(401) => ErrorKind::Auth,
            Some(403) => ErrorKind::Permission,
            Some(404) => ErrorKind::NotFound,
            Some(409) => ErrorKind::Conflict,
            _ => ErrorKind::Invalid,
        },
    }
}

fn describe(kind: ErrorKind, code: &str) -> String {
    let text = match kind {
        ErrorKind::NotFound => "it does not exist",
        ErrorKind::Conflict if code == "EntityAlreadyExists" => "it already exists",
        ErrorKind::Conflict if code == "DeleteConflict" => "it is still in use",
        ErrorKind::Conflict => "it is in a state that blocks the change",
        ErrorKind::Contended => "a concurrent change got there first",
        ErrorKind::Limit => "a quota was exceeded",
        ErrorKind::Invalid if code == "MalformedPolicyDocument" => {
            "IAM rejected the policy document"
        }
        ErrorKind::Invalid => "the request was rejected as invalid",
        ErrorKind::Permission => "access denied",
        ErrorKind::Throttled => "throttled by AWS",
        ErrorKind::Auth => "the credentials were rejected",
        ErrorKind::Transient => "AWS had an internal error",
    };
    text.to_owned()
}

/// Whether an SDK error is the service saying the object does not exist.
pub(crate) fn is_not_found<E>(err: &SdkError<E>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(s) => {
            classify(
                s.err().code().unwrap_or(""),
                Some(s.raw().status().as_u16()),
            ) == ErrorKind::NotFound
        }
        _ => false,
    }
}

/// The service's error message, empty if there is none.
pub(crate) fn message_of<E>(err: &SdkError<E>) -> &str
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(s) => s.err().message().unwrap_or(""),
        _ => "",
    }
}

/// The service's error code, if the error came from the service.
pub(crate) fn code_of<E>(err: &SdkError<E>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::create_role::CreateRoleError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, status: u16) -> SdkError<CreateRoleError> {
        let err =
            CreateRoleError::generic(ErrorMetadata::builder().code(code).message("nope").build());
        let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    fn create_call() -> Call<'static> {
        Call::new(
            "iam:CreateRole",
            "create role orders-prod in account 111122223333",
            "arn:aws:iam::111122223333:role/orders-prod",
        )
    }

    #[test]
    fn access_denied_names_the_permission_and_arn() {
        let e = create_call().fail(&service_error("AccessDenied", 403));
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert_eq!(
            e.to_string(),
            "failed to create role orders-prod in account 111122223333: access denied; wid needs iam:CreateRole on arn:aws:iam::111122223333:role/orders-prod"
        );
        assert_eq!(e.operation.as_deref(), Some("iam:CreateRole"));
        assert_eq!(e.detail.as_deref(), Some("AccessDenied: nope"));
    }

    #[test]
    fn other_errors_say_what_failed() {
        let e = create_call().fail(&service_error("EntityAlreadyExists", 409));
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(
            e.to_string()
                .ends_with("orders-prod in account 111122223333: it already exists"),
            "{e}"
        );
        let e = create_call().fail(&service_error("MalformedPolicyDocument", 400));
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(
            e.to_string().contains("rejected the policy document"),
            "{e}"
        );
        let e = create_call().fail(&service_error("LimitExceeded", 409));
        assert_eq!(e.kind(), ErrorKind::Limit);
        assert!(e.hint.is_some());
        assert_eq!(
            create_call().fail(&service_error("", 502)).kind(),
            ErrorKind::Transient
        );
        assert_eq!(
            create_call().fail(&service_error("Throttling", 400)).kind(),
            ErrorKind::Throttled
        );
    }

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(classify("NoSuchEntity", Some(404)), ErrorKind::NotFound);
        assert_eq!(
            classify("EntityAlreadyExists", Some(409)),
            ErrorKind::Conflict
        );
        // moto answers LimitExceeded with 400, AWS with 409: the code decides.
        assert_eq!(classify("LimitExceeded", Some(400)), ErrorKind::Limit);
        assert_eq!(classify("LimitExceeded", Some(409)), ErrorKind::Limit);
        assert_eq!(
            classify("MalformedPolicyDocument", Some(400)),
            ErrorKind::Invalid
        );
        assert_eq!(classify("AccessDenied", Some(403)), ErrorKind::Permission);
        assert_eq!(classify("Throttling", Some(400)), ErrorKind::Throttled);
        assert_eq!(
            classify("ThrottlingException", Some(429)),
            ErrorKind::Throttled
        );
        assert_eq!(classify("", Some(503)), ErrorKind::Transient);
        assert_eq!(classify("ServiceFailure", Some(500)), ErrorKind::Transient);
        assert_eq!(
            classify("ResourceInUseException", Some(409)),
            ErrorKind::Contended
        );
        assert_eq!(
            classify("ConcurrentModification", Some(409)),
            ErrorKind::Contended
        );
        assert!(ErrorKind::Contended.is_retryable());
    }

    #[test]
    fn retry_after_is_read_from_the_response() {
        let err = CreateRoleError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        );
        let mut raw = Response::new(StatusCode::try_from(400).unwrap(), SdkBody::empty());
        raw.headers_mut().insert("retry-after", "3");
        let e = create_call().fail(&SdkError::service_error(err, raw));
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(3)));
    }
}
