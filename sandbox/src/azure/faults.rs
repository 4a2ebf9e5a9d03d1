//! Injected failures in Azure Resource Manager's shapes. Fault rules match ARM requests by
//! their resource id (the decoded request path,
//! `/subscriptions/S/resourceGroups/RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME`).
//!
//! | fault | answer |
//! | --- | --- |
//! | throttle | 429 `SubscriptionRequestsThrottled`, `Retry-After: 1` |
//! | server-error | 500 `InternalServerError` |
//! | conflict | 409 `ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity` on credentials, else 409 `Conflict` |
//! | unauthorized | 401 `InvalidAuthenticationToken` |
//! | forbidden | 403 `AuthorizationFailed`, naming the action (`Microsoft.ManagedIdentity/userAssignedIdentities/write`) and scope |
//! | limit-exceeded | 400 `RoleAssignmentLimitExceeded` on role assignments, the 20-credentials limit on credentials, else 409 `QuotaExceeded` |

use http::{Method, StatusCode};

use super::arm::ArmError;
use super::router::Route;
use super::{fic, identities};
use crate::wire::Failure;

/// What a failure's answer names.
pub(crate) struct Target<'a> {
    /// The parsed path.
    pub(crate) route: &'a Route,
    /// The subscription (empty for tenant-level paths).
    pub(crate) sub: &'a str,
    /// Whether the operation writes.
    pub(crate) write: bool,
    /// The authorization action (`Microsoft.Authorization/roleAssignments/write`).
    pub(crate) action: String,
    /// The resource id.
    pub(crate) scope: &'a str,
    /// The caller's object id.
    pub(crate) caller: &'a str,
}

/// The RBAC action an operation needs: the resource type's `read`, `write` or `delete`.
pub(crate) fn action(namespace: &str, resource_type: &str, method: &Method) -> String {
    let verb = match *method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    };
    // Resource groups are a child type of subscriptions in RBAC's action names.
    let resource_type = match resource_type {
        "resourceGroups" => "subscriptions/resourceGroups",
        other => other,
    };
    format!("{namespace}/{resource_type}/{verb}")
}

/// The ARM error a failure stands for.
pub(crate) fn error(failure: Failure, t: &Target<'_>) -> ArmError {
    match failure {
        Failure::Throttle => ArmError::throttled(t.sub, t.write),
        Failure::ServerError => ArmError::internal(),
        Failure::Conflict => match t.route {
            Route::Fic {
                sub, rg, identity, ..
            } => fic::concurrent_write(&identities::id(sub, rg, identity)),
            _ => ArmError::new(
                StatusCode::CONFLICT,
                "Conflict",
                "The request could not be completed due to a conflict with another operation on the resource. Please retry.",
            ),
        },
        Failure::Unauthorized => ArmError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        ),
        Failure::Forbidden => ArmError::new(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            format!(
                "The client '{caller}' with object id '{caller}' does not have authorization to perform action '{}' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                t.action,
                t.scope,
                caller = t.caller
            ),
        ),
        Failure::LimitExceeded => match t.route {
            Route::Fic {
                sub, rg, identity, ..
            } => fic::limit_reached(&identities::id(sub, rg, identity)),
            Route::RoleAssignment { .. } => ArmError::bad_request(
                "RoleAssignmentLimitExceeded",
                "No more role assignments can be created.",
            ),
            _ => ArmError::new(
                StatusCode::CONFLICT,
                "QuotaExceeded",
                format!(
                    "Operation could not be completed as it results in exceeding approved quota for subscription '{}'.",
                    t.sub
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_rbac_action_names() {
        assert_eq!(
            action(
                "Microsoft.ManagedIdentity",
                "userAssignedIdentities",
                &Method::PUT
            ),
            "Microsoft.ManagedIdentity/userAssignedIdentities/write"
        );
        assert_eq!(
            action("Microsoft.Resources", "resourceGroups", &Method::GET),
            "Microsoft.Resources/subscriptions/resourceGroups/read"
        );
        assert_eq!(
            action(
                "Microsoft.Authorization",
                "roleAssignments",
                &Method::DELETE
            ),
            "Microsoft.Authorization/roleAssignments/delete"
        );
    }

    #[test]
    fn failures_take_arm_shapes() {
        let route = Route::RoleAssignment {
            scope: vec!["subscriptions".into(), "s".into()],
            name: "n".into(),
        };
        let t = Target {
            route: &route,
            sub: "s",
            write: true,
            action: "Microsoft.Authorization/roleAssignments/write".into(),
            scope: "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/n",
            caller: "c",
        };
        let e = error(Failure::Forbidden, &t);
        assert_eq!((e.status.as_u16(), e.code), (403, "AuthorizationFailed"));
        assert_eq!(
            e.message,
            "The client 'c' with object id 'c' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/n' or the scope is invalid. If access was recently granted, please refresh your credentials."
        );
        let e = error(Failure::LimitExceeded, &t);
        assert_eq!(
            (e.status.as_u16(), e.code),
            (400, "RoleAssignmentLimitExceeded")
        );
        let e = error(Failure::Unauthorized, &t);
        assert_eq!(
            (e.status.as_u16(), e.code),
            (401, "InvalidAuthenticationToken")
        );
        let e = error(Failure::Throttle, &t);
        assert_eq!((e.status.as_u16(), e.retry_after), (429, Some(1)));
    }
}
