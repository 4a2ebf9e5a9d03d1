//! The awsQuery endpoint (`POST /`, form-encoded): IAM and STS.
//!
//! One handler parses the form, decides the service (the SigV4 signing service first,
//! then the action name), counts the call and applies injected faults, then dispatches
//! the action. Actions return the inner XML of their `Result` element or a
//! [`QueryError`], which this module wraps in the awsQuery envelopes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};

use super::caller::{Caller, request_id};
use super::xml::{error_body, success_body};
use super::{faults, iam_details, iam_oidc, iam_policies, iam_roles, sts};
use crate::Shared;

const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// What an action returns: the inner XML of its `Result` element (`None` for actions
/// without output) or the error to send.
pub(crate) type Outcome = Result<Option<String>, QueryError>;

/// An IAM or STS error as the awsQuery protocol carries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct QueryError {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The error code (`NoSuchEntity`).
    pub(crate) code: &'static str,
    /// The message, worded like AWS's.
    pub(crate) message: String,
    /// `Sender` (the caller's fault) or `Receiver`.
    pub(crate) sender: bool,
}

impl QueryError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            sender: !status.is_server_error(),
        }
    }

    pub(crate) fn no_such_entity(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NoSuchEntity", message)
    }

    pub(crate) fn already_exists(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "EntityAlreadyExists", message)
    }

    /// IAM answers quota errors with 409 (moto uses 400; the API reference says 409).
    pub(crate) fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "LimitExceeded", message)
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidInput", message)
    }

    pub(crate) fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", message)
    }

    pub(crate) fn delete_conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "DeleteConflict", message)
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    /// The error of a request naming an action this emulator does not serve.
    fn invalid_action(action: &str, version: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {action} for version {version}"),
        )
    }

    fn into_response(self, request_id: &str) -> Response {
        xml_response(
            self.status,
            error_body(self.sender, self.code, &self.message, request_id),
        )
    }
}

/// The form parameters of one request.
#[derive(Debug, Default)]
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    fn parse(body: &[u8]) -> Result<Self, QueryError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| {
            QueryError::new(
                StatusCode::BAD_REQUEST,
                "MalformedQueryString",
                format!("The request body is not a valid form: {e}"),
            )
        })?;
        Ok(Self(pairs.into_iter().collect()))
    }

    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A required parameter; its absence is a `ValidationError` worded like AWS's
    /// (`Value null at 'roleName' failed to satisfy constraint: …`).
    pub(crate) fn required(&self, name: &str) -> Result<&str, QueryError> {
        self.get(name).ok_or_else(|| {
            QueryError::validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(name)
            ))
        })
    }

    /// `Prefix.member.1`, `Prefix.member.2`, … in index order.
    pub(crate) fn list(&self, prefix: &str) -> Vec<String> {
        let member = format!("{prefix}.member.");
        let mut items: Vec<(u32, &String)> = self
            .0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&member)?.parse().ok()?, v)))
            .collect();
        items.sort_by_key(|(index, _)| *index);
        items.into_iter().map(|(_, v)| v.clone()).collect()
    }

    /// `Prefix.member.N.Key` / `.Value` pairs.
    pub(crate) fn tags(&self, prefix: &str) -> Result<BTreeMap<String, String>, QueryError> {
        let member = format!("{prefix}.member.");
        let mut tags = BTreeMap::new();
        for (key, value) in &self.0 {
            let Some(index) = key
                .strip_prefix(&member)
                .and_then(|rest| rest.strip_suffix(".Key"))
            else {
                continue;
            };
            let tag_value = self
                .get(&format!("{member}{index}.Value"))
                .unwrap_or_default();
            if value.is_empty() || value.chars().count() > 128 || tag_value.chars().count() > 256 {
                return Err(QueryError::validation(format!(
                    "1 validation error detected: Value at 'tags.{index}' failed to satisfy constraint: tag keys are 1 to 128 characters and values at most 256"
                )));
            }
            tags.insert(value.clone(), tag_value.to_owned());
        }
        if tags.len() > 50 {
            return Err(QueryError::limit_exceeded(
                "Cannot exceed quota for TagsPerEntity: 50",
            ));
        }
        Ok(tags)
    }

    /// `MaxItems` (1 to 1000, default 100).
    pub(crate) fn max_items(&self) -> Result<usize, QueryError> {
        match self.get("MaxItems") {
            None => Ok(100),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => Ok(n),
                _ => Err(QueryError::validation(format!(
                    "1 validation error detected: Value '{text}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"
                ))),
            },
        }
    }
}

/// `RoleName` → `roleName`, as AWS names members in validation messages.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One page of `items` (in listing order) from `Marker` on, with the marker of the next
/// page. A marker is the key of the next page's first item; if that item went away
/// meanwhile, the page starts at the first key after it (exact for key-sorted listings).
pub(crate) fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    params: &Params,
) -> Result<(Vec<T>, Option<String>), QueryError> {
    let max = params.max_items()?;
    let start = match params.get("Marker") {
        None => 0,
        Some(marker) => items
            .iter()
            .position(|item| key(item) == marker)
            .or_else(|| items.iter().position(|item| key(item).as_str() > marker))
            .unwrap_or(items.len()),
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next = rest.get(max).map(&key);
    rest.truncate(max);
    Ok((rest, next))
}

/// The services served over the Query protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Iam,
    Sts,
}

impl Service {
    fn of(caller: &Caller, action: &str) -> Self {
        match caller.service.as_deref() {
            Some("sts") => Self::Sts,
            Some("iam") => Self::Iam,
            _ if sts::ACTIONS.contains(&action) => Self::Sts,
            _ => Self::Iam,
        }
    }
}

/// `POST /`: an IAM or STS action.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = request_id();
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(e) => return e.into_response(&request_id),
    };
    let caller = Caller::from_headers(&headers);
    let Some(action) = params.get("Action").map(str::to_owned) else {
        return QueryError::new(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "Missing Action parameter",
        )
        .into_response(&request_id);
    };
    let service = Service::of(&caller, &action);
    let api = match service {
        Service::Iam => format!("iam:{action}"),
        Service::Sts => format!("sts:{action}"),
    };
    let (object, _) = faults::query_target(&caller, &params);
    let admitted = shared
        .admit(&api, &object, |failure| {
            faults::query_error(failure, &api, &caller, &params).into_response(&request_id)
        })
        .await;
    if let Err(answer) = admitted {
        return answer;
    }
    let (namespace, outcome) = match service {
        Service::Iam => (
            IAM_NAMESPACE,
            iam_action(&shared, &caller, &action, &params),
        ),
        Service::Sts => (STS_NAMESPACE, sts::action(&caller, &action, &params)),
    };
    match outcome {
        Ok(result) => xml_response(
            StatusCode::OK,
            success_body(namespace, &action, result.as_deref(), &request_id),
        ),
        Err(e) => e.into_response(&request_id),
    }
}

fn iam_action(shared: &Shared, caller: &Caller, action: &str, p: &Params) -> Outcome {
    let account = caller.account.as_str();
    match action {
        "CreateRole" => iam_roles::create_role(shared, account, p),
        "GetRole" => iam_roles::get_role(shared, account, p),
        "ListRoles" => iam_roles::list_roles(shared, account, p),
        "DeleteRole" => iam_roles::delete_role(shared, account, p),
        "UpdateRole" => iam_roles::update_role(shared, account, p),
        "UpdateAssumeRolePolicy" => iam_roles::update_assume_role_policy(shared, account, p),
        "TagRole" => iam_roles::tag_role(shared, account, p),
        "UntagRole" => iam_roles::untag_role(shared, account, p),
        "ListRoleTags" => iam_roles::list_role_tags(shared, account, p),
        "PutRolePermissionsBoundary" => iam_roles::put_permissions_boundary(shared, account, p),
        "DeleteRolePermissionsBoundary" => {
            iam_roles::delete_permissions_boundary(shared, account, p)
        }
        "AttachRolePolicy" => iam_policies::attach_role_policy(shared, account, p),
        "DetachRolePolicy" => iam_policies::detach_role_policy(shared, account, p),
        "ListAttachedRolePolicies" => iam_policies::list_attached_role_policies(shared, account, p),
        "PutRolePolicy" => iam_policies::put_role_policy(shared, account, p),
        "GetRolePolicy" => iam_policies::get_role_policy(shared, account, p),
        "DeleteRolePolicy" => iam_policies::delete_role_policy(shared, account, p),
        "ListRolePolicies" => iam_policies::list_role_policies(shared, account, p),
        "CreatePolicy" => iam_policies::create_policy(shared, account, p),
        "GetPolicy" => iam_policies::get_policy(shared, account, p),
        "DeletePolicy" => iam_policies::delete_policy(shared, account, p),
        "ListPolicies" => iam_policies::list_policies(shared, account, p),
        "GetAccountAuthorizationDetails" => {
            iam_details::get_account_authorization_details(shared, account, p)
        }
        "CreateOpenIDConnectProvider" => iam_oidc::create(shared, account, p),
        "GetOpenIDConnectProvider" => iam_oidc::get(shared, account, p),
        "ListOpenIDConnectProviders" => iam_oidc::list(shared, account),
        "DeleteOpenIDConnectProvider" => iam_oidc::delete(shared, account, p),
        "TagOpenIDConnectProvider" => iam_oidc::tag(shared, account, p),
        "UntagOpenIDConnectProvider" => iam_oidc::untag(shared, account, p),
        "ListOpenIDConnectProviderTags" => iam_oidc::list_tags(shared, account, p),
        "AddClientIDToOpenIDConnectProvider" => iam_oidc::add_client_id(shared, account, p),
        "RemoveClientIDFromOpenIDConnectProvider" => iam_oidc::remove_client_id(shared, account, p),
        _ => Err(QueryError::invalid_action(action, "2010-05-08")),
    }
}

pub(crate) fn sts_invalid_action(action: &str) -> QueryError {
    QueryError::invalid_action(action, "2011-06-15")
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_in_index_order() {
        let p = Params::from_pairs(&[
            ("ClientIDList.member.10", "j"),
            ("ClientIDList.member.2", "b"),
            ("ClientIDList.member.1", "a"),
            ("Other.member.1", "x"),
        ]);
        assert_eq!(p.list("ClientIDList"), ["a", "b", "j"]);
        assert!(p.list("Missing").is_empty());
    }

    #[test]
    fn tags_pair_keys_with_values() {
        let p = Params::from_pairs(&[
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "payments"),
            ("Tags.member.2.Key", "empty"),
        ]);
        let tags = p.tags("Tags").unwrap();
        assert_eq!(tags["team"], "payments");
        assert_eq!(tags["empty"], "");
    }

    #[test]
    fn missing_required_parameters_are_validation_errors() {
        let e = Params::default().required("RoleName").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "ValidationError");
        assert!(e.message.contains("'roleName'"), "{}", e.message);
    }

    #[test]
    fn pages_resume_at_the_marker() {
        let items = vec!["a", "b", "c", "d", "e"];
        let p = Params::from_pairs(&[("MaxItems", "2")]);
        let (page, next) = paginate(items.clone(), |s| (*s).to_owned(), &p).unwrap();
        assert_eq!((page, next.as_deref()), (vec!["a", "b"], Some("c")));
        let p = Params::from_pairs(&[("MaxItems", "2"), ("Marker", "e")]);
        let (page, next) = paginate(items.clone(), |s| (*s).to_owned(), &p).unwrap();
        assert_eq!((page, next), (vec!["e"], None));
        let unsorted = vec!["c", "a", "b"];
        let p = Params::from_pairs(&[("MaxItems", "1"), ("Marker", "a")]);
        let (page, next) = paginate(unsorted, |s| (*s).to_owned(), &p).unwrap();
        assert_eq!((page, next.as_deref()), (vec!["a"], Some("b")));
        let p = Params::from_pairs(&[("MaxItems", "0")]);
        assert!(paginate(items, |s| (*s).to_owned(), &p).is_err());
    }

    #[test]
    fn the_signing_service_wins_over_the_action_name() {
        let caller = |service: Option<&str>| Caller {
            account: "1".into(),
            region: "us-east-1".into(),
            service: service.map(str::to_owned),
        };
        assert_eq!(
            Service::of(&caller(Some("iam")), "GetCallerIdentity"),
            Service::Iam
        );
        assert_eq!(
            Service::of(&caller(None), "GetCallerIdentity"),
            Service::Sts
        );
        assert_eq!(Service::of(&caller(None), "GetRole"), Service::Iam);
    }
}
