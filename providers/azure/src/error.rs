//! ARM failures as [`ProviderError`]s: a kind the engine acts on (401 auth, 403
//! permission, 404 not found, 429 throttled with the API's `Retry-After`, 5xx and
//! timeouts transient, 409 on concurrent writes contended, other 409s conflict, a
//! response past the size cap invalid), a message naming the object, and for 403 the
//! Azure action wid needs and a built-in role that grants it.

use std::time::Duration;

use wid_core::{ErrorKind, ProviderError, ResourceId};

/// One ARM operation wid calls: its counter name, the RBAC action it needs, and a
/// built-in role that grants that action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// The counter name, as the sandbox counts it (`azure:userAssignedIdentities.get`).
    pub name: &'static str,
    /// The Azure RBAC action (`Microsoft.ManagedIdentity/userAssignedIdentities/write`).
    pub action: &'static str,
    /// A built-in role that grants the action.
    pub role: &'static str,
}

macro_rules! ops {
    ($($id:ident = $name:literal, $action:literal, $role:literal;)*) => {
        $(
            #[doc = concat!("`", $name, "` (needs `", $action, "`).")]
            pub const $id: Op = Op { name: $name, action: $action, role: $role };
        )*
    };
}

ops! {
    IDENTITY_GET = "azure:userAssignedIdentities.get", "Microsoft.ManagedIdentity/userAssignedIdentities/read", "Reader";
    IDENTITY_PUT = "azure:userAssignedIdentities.createOrUpdate", "Microsoft.ManagedIdentity/userAssignedIdentities/write", "Managed Identity Contributor";
    IDENTITY_PATCH = "azure:userAssignedIdentities.update", "Microsoft.ManagedIdentity/userAssignedIdentities/write", "Managed Identity Contributor";
    IDENTITY_DELETE = "azure:userAssignedIdentities.delete", "Microsoft.ManagedIdentity/userAssignedIdentities/delete", "Managed Identity Contributor";
    IDENTITY_LIST_SUB = "azure:userAssignedIdentities.listBySubscription", "Microsoft.ManagedIdentity/userAssignedIdentities/read", "Reader";
    IDENTITY_LIST_RG = "azure:userAssignedIdentities.listByResourceGroup", "Microsoft.ManagedIdentity/userAssignedIdentities/read", "Reader";
    FIC_PUT = "azure:federatedIdentityCredentials.createOrUpdate", "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write", "Managed Identity Contributor";
    FIC_LIST = "azure:federatedIdentityCredentials.list", "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read", "Reader";
    FIC_DELETE = "azure:federatedIdentityCredentials.delete", "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete", "Managed Identity Contributor";
    ASSIGNMENT_PUT = "azure:roleAssignments.create", "Microsoft.Authorization/roleAssignments/write", "Role Based Access Control Administrator";
    ASSIGNMENT_DELETE = "azure:roleAssignments.delete", "Microsoft.Authorization/roleAssignments/delete", "Role Based Access Control Administrator";
    ASSIGNMENT_LIST = "azure:roleAssignments.list", "Microsoft.Authorization/roleAssignments/read", "Reader";
    ROLE_DEFINITION_LIST = "azure:roleDefinitions.list", "Microsoft.Authorization/roleDefinitions/read", "Reader";
    ROLE_DEFINITION_GET = "azure:roleDefinitions.get", "Microsoft.Authorization/roleDefinitions/read", "Reader";
    CLUSTER_GET = "azure:managedClusters.get", "Microsoft.ContainerService/managedClusters/read", "Azure Kubernetes Service Cluster User Role or Reader";
    GROUP_GET = "azure:resourceGroups.get", "Microsoft.Resources/subscriptions/resourceGroups/read", "Reader";
}

/// An ARM error response, read from the body (`{"error": {"code", "message"}}`) and the
/// headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmFailure {
    /// The HTTP status.
    pub status: u16,
    /// ARM's error code (`PrincipalNotFound`, `RoleAssignmentExists`).
    pub code: String,
    /// ARM's message.
    pub message: String,
    /// The wait the API asked for (`Retry-After`, seconds or an HTTP date).
    pub retry_after: Option<Duration>,
}

impl ArmFailure {
    /// Reads an error body; a body that is not ARM's shape keeps the status only.
    pub fn parse(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let err = v.get("error").unwrap_or(&v);
        Self {
            status,
            code: err["code"].as_str().unwrap_or_default().to_owned(),
            message: err["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect()),
            retry_after,
        }
    }

    /// Whether ARM says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

/// Why a call could not complete: ARM answered with an error, or there was no answer.
#[derive(Debug, Clone)]
pub enum Failure {
    /// ARM's error response.
    Arm(ArmFailure),
    /// No credentials worked.
    Credentials(String),
    /// The request could not be sent or its answer read.
    Transport(String),
    /// No complete answer in time: the per-call deadline (`--call-timeout`), or the
    /// connect or read timeout.
    TimedOut(String),
    /// The answer was cut at this many bytes, the most wid accepts for one call.
    TooLarge(usize),
}

impl Failure {
    /// The ARM failure, if ARM answered.
    pub fn arm(&self) -> Option<&ArmFailure> {
        match self {
            Self::Arm(a) => Some(a),
            _ => None,
        }
    }

    /// Whether ARM said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.arm().is_some_and(ArmFailure::is_not_found)
    }

    /// ARM's error code, if any.
    pub fn code(&self) -> &str {
        self.arm().map_or("", |a| a.code.as_str())
    }
}

/// The kind of an ARM failure: the code decides what the status does not.
///
/// A 409 is contended (retried after observing again) when its code says another
/// operation on the same object was in the way, and a conflict (not retried) otherwise:
/// `RoleAssignmentExists` and the like are states a retry cannot change.
pub fn classify(status: u16, code: &str) -> ErrorKind {
    match code {
        // Writes overlapping on one identity; the engine's serialization keys prevent
        // wid's own, so another writer raced us: try again.
        "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
        | "AnotherOperationInProgress"
        | "OperationPreempted" => ErrorKind::Contended,
        // ARM's generic 409: "a conflict with another operation on the resource. Please
        // retry."
        "Conflict" if status == 409 => ErrorKind::Contended,
        // Right after an identity is created its service principal may not have reached
        // Azure RBAC yet. https://aka.ms/docs-principaltype
        "PrincipalNotFound" => ErrorKind::Transient,
        "AuthorizationFailed" | "LinkedAuthorizationFailed" => ErrorKind::Permission,
        "InvalidAuthenticationToken" | "ExpiredAuthenticationToken" | "AuthenticationFailed" => {
            ErrorKind::Auth
        }
        "RoleAssignmentLimitExceeded" | "QuotaExceeded" => ErrorKind::Limit,
        _ => match status {
            401 => ErrorKind::Auth,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            429 => ErrorKind::Throttled,
            s if s >= 500 => ErrorKind::Transient,
            _ if code.contains("Quota") || code.contains("Limit") => ErrorKind::Limit,
            _ => ErrorKind::Invalid,
        },
    }
}

/// What a failing call was doing, for the message.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The operation.
    pub op: Op,
    /// What wid was doing, as a fragment ("create identity orders in rg-prod").
    pub doing: String,
    /// The ARM scope the action is needed on.
    pub on: String,
    /// The resource concerned.
    pub id: Option<&'a ResourceId>,
}

impl<'a> Call<'a> {
    /// A call of `op` doing `doing` on `on`.
    pub fn new(op: Op, doing: impl Into<String>, on: impl Into<String>) -> Self {
        Self {
            op,
            doing: doing.into(),
            on: on.into(),
            id: None,
        }
    }

    /// Sets the resource concerned.
    #[must_use]
    pub fn id(mut self, id: &'a ResourceId) -> Self {
        self.id = Some(id);
        self
    }

    /// The provider error for a failure of this call.
    pub fn fail(&self, failure: &Failure) -> ProviderError {
        let mut err = match failure {
            Failure::Credentials(text) => {
                ProviderError::new(ErrorKind::Auth, format!("failed to {}: {text}", self.doing))
                    .with_hint(crate::credential::NO_CREDENTIALS.replacen(
                        "no Azure credentials found: ",
                        "",
                        1,
                    ))
            }
            Failure::Transport(text) => ProviderError::new(
                ErrorKind::Transient,
                format!(
                    "failed to {}: the request could not be completed",
                    self.doing
                ),
            )
            .with_detail(text.clone()),
            Failure::TimedOut(text) => ProviderError::new(
                ErrorKind::Transient,
                format!(
                    "failed to {}: Azure did not answer in time ({text})",
                    self.doing
                ),
            )
            .with_hint(STALLED),
            Failure::TooLarge(max) => ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "failed to {}: the response was cut at {max} bytes, the most wid accepts for one call",
                    self.doing
                ),
            )
            .with_hint(
                "no ARM API wid calls answers this much; check the endpoint (a proxy, a wrong URL, a misbehaving server)",
            ),
            Failure::Arm(a) => self.arm_error(a),
        };
        err = err.with_operation(self.op.name);
        if let Some(id) = self.id {
            err = err.with_resource(id);
        }
        err
    }

    fn arm_error(&self, a: &ArmFailure) -> ProviderError {
        let kind = classify(a.status, &a.code);
        let detail = match (a.code.as_str(), a.message.as_str()) {
            ("", "") => format!("HTTP status {}", a.status),
            ("", m) => format!("HTTP {}: {m}", a.status),
            (c, m) => format!("{c}: {m}"),
        };
        let what = match (kind, a.code.as_str()) {
            (_, "PrincipalNotFound") => {
                "the identity's service principal is not visible to Azure RBAC yet (replication after creating it takes a while)".to_owned()
            }
            (_, "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity") => {
                "another federated credential of this identity was being written at the same time".to_owned()
            }
            (ErrorKind::Permission, _) => format!(
                "access denied; wid needs {} on {}",
                self.op.action, self.on
            ),
            (ErrorKind::Auth, _) => "the credentials were rejected".to_owned(),
            (ErrorKind::NotFound, _) => "it does not exist".to_owned(),
            (ErrorKind::Conflict, _) => "a conflicting change got there first".to_owned(),
            (ErrorKind::Contended, _) => "a concurrent change got there first".to_owned(),
            (ErrorKind::Throttled, _) => "throttled by Azure".to_owned(),
            (ErrorKind::Transient, _) => "Azure had an internal error".to_owned(),
            (ErrorKind::Limit, _) => "an Azure limit was reached".to_owned(),
            (ErrorKind::Invalid, _) => "Azure rejected the request".to_owned(),
        };
        let mut err = ProviderError::new(kind, format!("failed to {}: {what}", self.doing))
            .with_detail(detail);
        if let Some(wait) = a.retry_after {
            err = err.with_retry_after(wait);
        }
        let hint = match kind {
            ErrorKind::Permission => Some(format!(
                "grant {} on {} to the principal wid runs as (the built-in role {} has it); docs/azure.md has a least-privilege custom role",
                self.op.action, self.on, self.op.role
            )),
            ErrorKind::Auth => Some(
                "sign in again (`az login`) or check AZURE_TENANT_ID, AZURE_CLIENT_ID and the secret or federated token".into(),
            ),
            ErrorKind::Conflict => Some("another writer changed this object; run `wid plan` again".into()),
            ErrorKind::Contended => Some("another writer was changing this object at the same time; wid retries after reading it again".into()),
            ErrorKind::Limit => Some("an Azure limit was reached; remove unused objects or split them".into()),
            _ => None,
        };
        if let Some(hint) = hint {
            err = err.with_hint(hint);
        }
        err
    }
}

/// The hint of a call that ran out of time.
const STALLED: &str = "the endpoint accepted the call but stalled; check it is reachable and healthy, or raise --call-timeout";

#[cfg(test)]
mod tests {
    use super::*;
    use wid_core::parse_retry_after;

    fn call() -> Call<'static> {
        Call::new(
            FIC_PUT,
            "create federated credential x of identity orders",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders",
        )
    }

    fn arm(status: u16, code: &str) -> Failure {
        Failure::Arm(ArmFailure {
            status,
            code: code.into(),
            message: "nope".into(),
            retry_after: None,
        })
    }

    #[test]
    fn a_403_names_the_action_scope_and_role() {
        let e = call().fail(&arm(403, "AuthorizationFailed"));
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert!(
            e.to_string().ends_with("access denied; wid needs Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write on /subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders"),
            "{e}"
        );
        assert!(e.hint.unwrap().contains("Managed Identity Contributor"));
        assert_eq!(
            e.operation.as_deref(),
            Some("azure:federatedIdentityCredentials.createOrUpdate")
        );
    }

    #[test]
    fn statuses_and_codes_map_to_kinds() {
        assert_eq!(classify(401, ""), ErrorKind::Auth);
        assert_eq!(classify(404, "ResourceNotFound"), ErrorKind::NotFound);
        assert_eq!(classify(409, "RoleAssignmentExists"), ErrorKind::Conflict);
        assert_eq!(classify(429, "TooManyRequests"), ErrorKind::Throttled);
        assert_eq!(classify(503, ""), ErrorKind::Transient);
        assert_eq!(classify(400, "PrincipalNotFound"), ErrorKind::Transient);
        assert_eq!(
            classify(
                409,
                "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
            ),
            ErrorKind::Contended
        );
        assert_eq!(classify(409, "Conflict"), ErrorKind::Contended);
        assert_eq!(
            classify(409, "AnotherOperationInProgress"),
            ErrorKind::Contended
        );
        assert_eq!(classify(409, ""), ErrorKind::Conflict);
        assert_eq!(classify(500, "InternalServerError"), ErrorKind::Transient);
        assert!(ErrorKind::Contended.is_retryable());
        assert_eq!(classify(400, "InvalidRequestContent"), ErrorKind::Invalid);
    }

    #[test]
    fn throttling_keeps_the_wait_azure_asked_for() {
        let e = call().fail(&Failure::Arm(ArmFailure {
            status: 429,
            code: "TooManyRequests".into(),
            message: String::new(),
            retry_after: parse_retry_after("7"),
        }));
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").is_some());
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn a_concurrent_credential_write_is_contended_and_says_so() {
        let e = call().fail(&arm(
            409,
            "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
        ));
        assert_eq!(e.kind(), ErrorKind::Contended);
        assert!(
            e.to_string()
                .contains("another federated credential of this identity was being written"),
            "{e}"
        );
    }

    #[test]
    fn bounds_are_named_in_the_error() {
        let e = call().fail(&Failure::TimedOut(
            "no complete answer within 1s (the per-call deadline)".into(),
        ));
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert!(e.to_string().contains("within 1s"), "{e}");
        assert!(e.hint.as_deref().unwrap_or("").contains("--call-timeout"));
        let e = call().fail(&Failure::TooLarge(1024));
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().contains("cut at 1024 bytes"), "{e}");
        assert!(!e.kind().is_retryable());
    }

    #[test]
    fn principal_not_found_is_retryable_and_says_why() {
        let e = call().fail(&arm(400, "PrincipalNotFound"));
        assert!(e.kind().is_retryable());
        assert!(
            e.to_string().contains("not visible to Azure RBAC yet"),
            "{e}"
        );
    }

    #[test]
    fn error_bodies_parse() {
        let a = ArmFailure::parse(
            409,
            br#"{"error":{"code":"RoleAssignmentExists","message":"The role assignment already exists."}}"#,
            None,
        );
        assert_eq!(a.code, "RoleAssignmentExists");
        let b = ArmFailure::parse(502, b"<html>bad gateway</html>", None);
        assert_eq!(b.code, "");
        assert!(b.message.contains("bad gateway"));
    }
}
