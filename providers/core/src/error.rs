//! Provider errors, classified so the engine can decide retries and exit codes by kind.

use std::fmt;

use crate::ResourceId;

/// What went wrong, as far as the engine cares. The engine branches on this alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No usable credentials, or they were rejected.
    Auth,
    /// Authenticated, but not allowed to do this.
    Permission,
    /// The object does not exist.
    NotFound,
    /// The object exists in a state that blocks the change (already exists, owned by
    /// someone else, a concurrent writer won).
    Conflict,
    /// The API asked us to slow down. Retried, after at least the wait it asked for, and
    /// the provider's concurrency shrinks for a while.
    Throttled,
    /// A concurrent writer got there first and the API means "try again" (IAM
    /// `ConcurrentModification`, EKS `ResourceInUseException`, a Kubernetes 409 on an
    /// update, a GCP etag mismatch). Retried after re-reading the object, so the retry
    /// starts from the live state.
    Contended,
    /// A timeout, a 5xx, a dropped connection. Retried.
    Transient,
    /// The request was rejected as invalid; retrying will not help.
    Invalid,
    /// A quota or limit was hit.
    Limit,
}

impl ErrorKind {
    /// Whether the engine retries an error of this kind with backoff.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Transient | Self::Contended)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auth => "authentication",
            Self::Permission => "permission denied",
            Self::NotFound => "not found",
            Self::Conflict => "conflict",
            Self::Throttled => "throttled",
            Self::Contended => "concurrent modification",
            Self::Transient => "transient",
            Self::Invalid => "invalid request",
            Self::Limit => "limit exceeded",
        })
    }
}

/// A failed API call, with the resource and operation it concerned.
///
/// `message` is a lowercase fragment ("failed to create role orders-prod: ..."); `hint`
/// says what the user can do about it. The underlying client error is kept only as text in
/// `detail`, so the chain never prints the same thing twice.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    kind: ErrorKind,
    message: String,
    /// The resource the failing call concerned, when there is one.
    pub resource: Option<ResourceId>,
    /// The API operation, e.g. `iam:CreateRole` or `PATCH serviceaccounts`.
    pub operation: Option<String>,
    /// What the user can do next.
    pub hint: Option<String>,
    /// The API's own words (code and message), when they add something.
    pub detail: Option<String>,
    /// The failing call came after others had already changed the object: it is left
    /// partly applied (and says so in its applied record when the provider could write
    /// it), and the next plan shows it as an incomplete apply.
    pub partial: bool,
    /// How long the API asked the caller to wait before trying again (`Retry-After`);
    /// the engine never retries sooner.
    pub retry_after: Option<std::time::Duration>,
    /// How many attempts the call already had when it was retried where it was made
    /// ([`crate::Calls::read`]); 0 when it was tried once and never retried. The engine does
    /// not retry again what was retried to exhaustion.
    pub attempts: u32,
}

impl ProviderError {
    /// A new error of `kind` with a lowercase `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            resource: None,
            operation: None,
            hint: None,
            detail: None,
            partial: false,
            retry_after: None,
            attempts: 0,
        }
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Sets the resource this error concerns.
    #[must_use]
    pub fn with_resource(mut self, id: &ResourceId) -> Self {
        self.resource = Some(id.clone());
        self
    }

    /// Sets the API operation.
    #[must_use]
    pub fn with_operation(mut self, op: impl Into<String>) -> Self {
        self.operation = Some(op.into());
        self
    }

    /// Sets an actionable hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Marks the object as left partly applied.
    #[must_use]
    pub fn partly_applied(mut self) -> Self {
        self.partial = true;
        self
    }

    /// Records the wait the API asked for before a retry.
    #[must_use]
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Sets the API's own words.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}
