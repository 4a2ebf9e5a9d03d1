//! Injected failures in AWS's shapes: what each fault means for IAM and STS (awsQuery) and
//! for EKS (restJson1), and the object fault rules match for each request.
//!
//! | fault | IAM / STS | EKS |
//! | --- | --- | --- |
//! | throttle | 400 `Throttling` | 429 `ThrottlingException` |
//! | server-error | 500 `ServiceFailure` (STS `InternalFailure`) | 500 `ServerException` |
//! | conflict | 409 `ConcurrentModification` | 409 `ResourceInUseException` |
//! | unauthorized | 403 `InvalidClientTokenId` | 403 `UnrecognizedClientException` |
//! | forbidden | 403 `AccessDenied` | 403 `AccessDeniedException` |
//! | limit-exceeded | 409 `LimitExceeded`, naming the action's quota | 400 `ResourceLimitExceededException` |
//!
//! AWS answers bad credentials with 403, not 401, and names the denied action and
//! resource: `User: arn:aws:iam::111122223333:user/sandbox is not authorized to perform:
//! iam:CreateRole on resource: arn:aws:iam::111122223333:role/orders because no
//! identity-based policy allows the iam:CreateRole action`.

use http::StatusCode;

use super::caller::Caller;
use super::eks::EksError;
use super::query::{Params, QueryError};
use crate::wire::Failure;

/// The calling identity the sandbox's credentials stand for (what `GetCallerIdentity`
/// answers).
fn principal(caller: &Caller) -> String {
    format!("arn:aws:iam::{}:user/sandbox", caller.account)
}

fn denied(caller: &Caller, api: &str, resource: &str) -> String {
    format!(
        "User: {} is not authorized to perform: {api} on resource: {resource} because no identity-based policy allows the {api} action",
        principal(caller)
    )
}

/// What an IAM or STS request names: the object fault rules match (the role name, or the
/// ARN or URL of what it acts on; empty for a request naming nothing) and the resource
/// ARN a denial names.
pub(crate) fn query_target(caller: &Caller, params: &Params) -> (String, String) {
    let account = &caller.account;
    if let Some(name) = params.get("RoleName") {
        return (
            name.to_owned(),
            format!("arn:aws:iam::{account}:role/{name}"),
        );
    }
    for key in ["OpenIDConnectProviderArn", "PolicyArn", "RoleArn"] {
        if let Some(arn) = params.get(key) {
            return (arn.to_owned(), arn.to_owned());
        }
    }
    if let Some(url) = params.get("Url") {
        let host_path = url.trim_start_matches("https://").trim_end_matches('/');
        return (
            url.to_owned(),
            format!("arn:aws:iam::{account}:oidc-provider/{host_path}"),
        );
    }
    (String::new(), "*".to_owned())
}

/// The quota an IAM action runs into, as IAM words it.
fn iam_quota(action: &str, params: &Params) -> String {
    match action {
        "AttachRolePolicy" => "Cannot exceed quota for PoliciesPerRole: 10".to_owned(),
        "PutRolePolicy" => format!(
            "Maximum policy size of 10240 bytes exceeded for role {}",
            params.get("RoleName").unwrap_or_default()
        ),
        "UpdateAssumeRolePolicy" => "Cannot exceed quota for ACLSizePerRole: 2048".to_owned(),
        "CreateOpenIDConnectProvider" => {
            "Cannot exceed quota for OpenIdIdpsPerAccount: 100".to_owned()
        }
        "AddClientIDToOpenIDConnectProvider" => {
            "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100".to_owned()
        }
        "TagRole" | "TagOpenIDConnectProvider" | "TagPolicy" => {
            "Cannot exceed quota for TagsPerEntity: 50".to_owned()
        }
        _ => "Cannot exceed quota for RolesPerAccount: 1000".to_owned(),
    }
}

/// The IAM or STS error a failure stands for, on `api` (`iam:CreateRole`) by `caller`.
pub(crate) fn query_error(
    failure: Failure,
    api: &str,
    caller: &Caller,
    params: &Params,
) -> QueryError {
    let (service, action) = api.split_once(':').unwrap_or(("iam", api));
    match failure {
        Failure::Throttle => {
            QueryError::new(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded")
        }
        // STS has no ServiceFailure code; its server-side failure is InternalFailure.
        Failure::ServerError if service == "sts" => QueryError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "An internal error occurred. Please try again.",
        ),
        Failure::ServerError => QueryError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceFailure",
            "An internal error occurred. Please try again.",
        ),
        Failure::Conflict => QueryError::new(
            StatusCode::CONFLICT,
            "ConcurrentModification",
            "The request was rejected because it conflicted with another request in progress.",
        ),
        Failure::Unauthorized => QueryError::new(
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
        Failure::Forbidden => {
            let (_, resource) = query_target(caller, params);
            QueryError::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                denied(caller, api, &resource),
            )
        }
        Failure::LimitExceeded => QueryError::limit_exceeded(iam_quota(action, params)),
    }
}

/// The EKS error a failure stands for, on `eks:{operation}` by `caller` on `resource`
/// (an ARN).
pub(crate) fn eks_error(
    failure: Failure,
    operation: &str,
    caller: &Caller,
    resource: &str,
) -> EksError {
    let (status, code, message) = match failure {
        Failure::Throttle => (
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Rate exceeded".to_owned(),
        ),
        Failure::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerException",
            "An internal error occurred. Please try again.".to_owned(),
        ),
        Failure::Conflict => (
            StatusCode::CONFLICT,
            "ResourceInUseException",
            "The resource is being modified by another request.".to_owned(),
        ),
        Failure::Unauthorized => (
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid".to_owned(),
        ),
        Failure::Forbidden => (
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            denied(caller, &format!("eks:{operation}"), resource),
        ),
        Failure::LimitExceeded => (
            StatusCode::BAD_REQUEST,
            "ResourceLimitExceededException",
            "You have reached the maximum number of pod identity associations for this cluster."
                .to_owned(),
        ),
    };
    EksError {
        status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            service: Some("iam".into()),
        }
    }

    #[test]
    fn iam_failures_take_iam_shapes() {
        let p = Params::from_pairs(&[("RoleName", "orders")]);
        let e = |f| query_error(f, "iam:AttachRolePolicy", &caller(), &p);
        assert_eq!(
            (
                e(Failure::Throttle).status.as_u16(),
                e(Failure::Throttle).code
            ),
            (400, "Throttling")
        );
        assert!(e(Failure::Throttle).sender);
        let s = e(Failure::ServerError);
        assert_eq!(
            (s.status.as_u16(), s.code, s.sender),
            (500, "ServiceFailure", false)
        );
        assert_eq!(e(Failure::Conflict).code, "ConcurrentModification");
        assert_eq!(
            (
                e(Failure::Unauthorized).status.as_u16(),
                e(Failure::Unauthorized).code
            ),
            (403, "InvalidClientTokenId")
        );
        let f = e(Failure::Forbidden);
        assert_eq!((f.status.as_u16(), f.code), (403, "AccessDenied"));
        assert_eq!(
            f.message,
            "User: arn:aws:iam::111122223333:user/sandbox is not authorized to perform: iam:AttachRolePolicy on resource: arn:aws:iam::111122223333:role/orders because no identity-based policy allows the iam:AttachRolePolicy action"
        );
        let l = e(Failure::LimitExceeded);
        assert_eq!(
            (l.status.as_u16(), l.code, l.message.as_str()),
            (
                409,
                "LimitExceeded",
                "Cannot exceed quota for PoliciesPerRole: 10"
            )
        );
        let sts = query_error(Failure::ServerError, "sts:GetCallerIdentity", &caller(), &p);
        assert_eq!(sts.code, "InternalFailure");
    }

    #[test]
    fn targets_name_the_role_or_the_arn() {
        let c = caller();
        let t = |pairs: &[(&str, &str)]| query_target(&c, &Params::from_pairs(pairs));
        assert_eq!(
            t(&[("RoleName", "a")]).1,
            "arn:aws:iam::111122223333:role/a"
        );
        let arn = "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/1";
        assert_eq!(
            t(&[("OpenIDConnectProviderArn", arn)]),
            (arn.into(), arn.into())
        );
        assert_eq!(
            t(&[("Url", "https://oidc.example.com/id/1")]).1,
            "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/1"
        );
        assert_eq!(t(&[]), (String::new(), "*".into()));
    }

    #[test]
    fn eks_failures_take_eks_shapes() {
        let arn = "arn:aws:eks:us-east-1:111122223333:cluster/dev";
        let e = |f| eks_error(f, "DescribeCluster", &caller(), arn);
        assert_eq!(
            (
                e(Failure::Throttle).status.as_u16(),
                e(Failure::Throttle).code
            ),
            (429, "ThrottlingException")
        );
        assert_eq!(e(Failure::ServerError).code, "ServerException");
        assert_eq!(e(Failure::Conflict).code, "ResourceInUseException");
        assert_eq!(e(Failure::Unauthorized).code, "UnrecognizedClientException");
        let f = e(Failure::Forbidden);
        assert_eq!((f.status.as_u16(), f.code), (403, "AccessDeniedException"));
        assert!(f.message.contains(
            "is not authorized to perform: eks:DescribeCluster on resource: arn:aws:eks:us-east-1:111122223333:cluster/dev"
        ));
        assert_eq!(
            e(Failure::LimitExceeded).code,
            "ResourceLimitExceededException"
        );
    }
}
