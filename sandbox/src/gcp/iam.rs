//! IAM v1 service accounts (`/v1/projects/{P}/serviceAccounts…`) and their IAM
//! policies, with the validation and error messages of the real API.
//!
//! Accounts are named by email or unique id; `-` in the project segment means "the
//! project in the email", and an account is found by email or unique id whatever
//! project the path names, as the API infers the project from the account.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::error::{GcpError, GcpResult, admit};
use super::members::Resource;
use super::model::ServiceAccount;
use super::policy;
use super::request::{self, Call, field, string_field};
use crate::Shared;

/// Every service account's `etag` (the API returns this constant).
const ACCOUNT_ETAG: &str = "MDEwMjE5MjA=";
/// Service accounts per project.
const MAX_ACCOUNTS: usize = 100;
const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

/// The IAM endpoint (`/gcp/iam/…`).
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call::new(method, &uri, "/gcp/iam", headers, body);
    match route(&shared, &call).await {
        Ok(json) => json.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn route(shared: &Shared, call: &Call) -> GcpResult {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    let api = |name: &str| format!("iam.serviceAccounts.{name}");
    match (&call.method, segments.as_slice()) {
        (&Method::GET, ["v1", "projects", project, "serviceAccounts"]) => {
            admit(shared, &api("list"), call).await?;
            list(shared, call, project)
        }
        (&Method::POST, ["v1", "projects", project, "serviceAccounts"]) => {
            admit(shared, &api("create"), call).await?;
            create(shared, call, project)
        }
        (method, ["v1", "projects", project, "serviceAccounts", account]) => {
            if let Some(account) = account.strip_suffix(":getIamPolicy")
                && method == Method::POST
            {
                admit(shared, &api("getIamPolicy"), call).await?;
                return get_policy(shared, call, project, account);
            }
            if let Some(account) = account.strip_suffix(":setIamPolicy")
                && method == Method::POST
            {
                admit(shared, &api("setIamPolicy"), call).await?;
                return set_policy(shared, call, project, account);
            }
            match *method {
                Method::GET => {
                    admit(shared, &api("get"), call).await?;
                    get(shared, project, account)
                }
                Method::PATCH => {
                    admit(shared, &api("patch"), call).await?;
                    patch(shared, call, project, account)
                }
                Method::PUT => {
                    admit(shared, &api("update"), call).await?;
                    update(shared, call, project, account)
                }
                Method::DELETE => {
                    admit(shared, &api("delete"), call).await?;
                    delete(shared, project, account)
                }
                _ => Err(unknown(call)),
            }
        }
        _ => Err(unknown(call)),
    }
}

fn unknown(call: &Call) -> GcpError {
    GcpError::not_found(format!(
        "The sandbox's IAM API has no method {} /{}.",
        call.method,
        call.segments.join("/")
    ))
}

fn no_such_account(project: &str, account: &str) -> GcpError {
    GcpError::not_found(format!(
        "Service account projects/{project}/serviceAccounts/{account} does not exist."
    ))
}

fn denied(permission: &str) -> GcpError {
    GcpError::permission_denied(format!(
        "Permission '{permission}' denied on resource (or it may not exist)."
    ))
    .with_detail(json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "IAM_PERMISSION_DENIED",
        "domain": "iam.googleapis.com",
        "metadata": { "permission": permission },
    }))
}

/// The JSON of a service account.
fn render(project: &str, sa: &ServiceAccount) -> Value {
    let mut out = json!({
        "name": format!("projects/{project}/serviceAccounts/{}", sa.email),
        "projectId": project,
        "uniqueId": sa.unique_id,
        "email": sa.email,
    });
    if !sa.display_name.is_empty() {
        out["displayName"] = json!(sa.display_name);
    }
    out["etag"] = json!(ACCOUNT_ETAG);
    if !sa.description.is_empty() {
        out["description"] = json!(sa.description);
    }
    out["oauth2ClientId"] = json!(sa.unique_id);
    if sa.disabled {
        out["disabled"] = json!(true);
    }
    out
}

fn check_display_name(name: &str) -> Result<(), GcpError> {
    if name.chars().count() > 100 {
        return Err(GcpError::invalid_with_debug(
            "The display name must be at most 100 characters.",
        ));
    }
    Ok(())
}

fn check_description(description: &str) -> Result<(), GcpError> {
    if description.chars().count() > 256 {
        return Err(GcpError::invalid_with_debug(
            "The description must be at most 256 characters.",
        ));
    }
    Ok(())
}

fn check_account_id(id: &str) -> Result<(), GcpError> {
    if !(6..=30).contains(&id.len()) {
        return Err(GcpError::invalid_with_debug(format!(
            "The account ID \"{id}\" does not have a length between 6 and 30."
        )));
    }
    let bytes = id.as_bytes();
    let valid = bytes[0].is_ascii_lowercase()
        && (bytes[bytes.len() - 1].is_ascii_lowercase() || bytes[bytes.len() - 1].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if valid {
        Ok(())
    } else {
        Err(GcpError::invalid(format!(
            r"{id} does not match [a-z][a-z\d\-]*[a-z\d]."
        )))
    }
}

fn list(shared: &Shared, call: &Call, project: &str) -> GcpResult {
    let Some(project) = super::resolve_project(shared, project) else {
        return Err(denied("iam.serviceAccounts.list"));
    };
    let size = match call.query("pageSize").unwrap_or("0").parse::<i64>() {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(n) if n > 0 => usize::try_from(n)
            .unwrap_or(MAX_PAGE_SIZE)
            .min(MAX_PAGE_SIZE),
        _ => {
            return Err(GcpError::invalid(
                "Requested page size must be a positive number.",
            ));
        }
    };
    let after = match call.query("pageToken").unwrap_or("") {
        "" => None,
        token => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| GcpError::invalid("The page token is invalid."))?,
        ),
    };
    shared.read(|state| {
        let Some(accounts) = state
            .gcp
            .projects
            .get(&project)
            .map(|p| &p.service_accounts)
        else {
            return Err(denied("iam.serviceAccounts.list"));
        };
        let mut page: Vec<(&String, &ServiceAccount)> = accounts
            .iter()
            .filter(|(id, _)| after.as_ref().is_none_or(|a| *id > a))
            .take(size + 1)
            .collect();
        let more = page.len() > size;
        page.truncate(size);
        let mut out = Map::new();
        if !page.is_empty() {
            let rendered = page.iter().map(|(_, sa)| render(&project, sa)).collect();
            out.insert("accounts".into(), Value::Array(rendered));
        }
        if more && let Some((last, _)) = page.last() {
            out.insert(
                "nextPageToken".into(),
                json!(URL_SAFE_NO_PAD.encode(last.as_bytes())),
            );
        }
        Ok(Json(Value::Object(out)))
    })
}

fn new_unique_id() -> String {
    let mut rng = rand::rng();
    let mut id = String::from("1");
    for _ in 0..20 {
        id.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    id
}

fn create(shared: &Shared, call: &Call, project: &str) -> GcpResult {
    let Some(project) = super::resolve_project(shared, project) else {
        return Err(denied("iam.serviceAccounts.create"));
    };
    let body = call.body(&request::CREATE_SERVICE_ACCOUNT)?;
    let account_id = string_field(&body, "accountId", "")?;
    check_account_id(&account_id)?;
    let (display_name, description) = match field(&body, "serviceAccount") {
        Some(Value::Object(sa)) => (
            string_field(sa, "displayName", "service_account.")?,
            string_field(sa, "description", "service_account.")?,
        ),
        _ => (String::new(), String::new()),
    };
    check_display_name(&display_name)?;
    check_description(&description)?;
    let email = format!("{account_id}@{project}.iam.gserviceaccount.com");
    shared.write(|state| {
        let taken: Vec<String> = state
            .gcp
            .projects
            .values()
            .flat_map(|p| p.service_accounts.values().map(|sa| sa.unique_id.clone()))
            .collect();
        let accounts = &mut state
            .gcp
            .projects
            .get_mut(&project)
            .expect("resolved projects exist")
            .service_accounts;
        if accounts.contains_key(&account_id) {
            return Err(GcpError::already_exists(
                format!(
                    "Service account {account_id} already exists within project projects/{project}."
                ),
                &format!("projects/{project}/serviceAccounts/{email}"),
            ));
        }
        if accounts.len() >= MAX_ACCOUNTS {
            return Err(GcpError::resource_exhausted(
                "Maximum number of service accounts on project reached.",
            ));
        }
        let mut unique_id = new_unique_id();
        while taken.contains(&unique_id) {
            unique_id = new_unique_id();
        }
        let sa = ServiceAccount {
            email: email.clone(),
            unique_id,
            display_name,
            description,
            disabled: false,
            policy: Default::default(),
        };
        let out = render(&project, &sa);
        accounts.insert(account_id.clone(), sa);
        Ok(Json(out))
    })
}

fn get(shared: &Shared, project: &str, account: &str) -> GcpResult {
    shared.read(|state| {
        let (owner, sa) = state
            .gcp
            .account(account)
            .ok_or_else(|| no_such_account(project, account))?;
        Ok(Json(render(owner, sa)))
    })
}

/// Changes an account's display name and/or description after checking them.
fn edit(
    shared: &Shared,
    project: &str,
    account: &str,
    display_name: Option<String>,
    description: Option<String>,
) -> GcpResult {
    if let Some(name) = &display_name {
        check_display_name(name)?;
    }
    if let Some(text) = &description {
        check_description(text)?;
    }
    shared.write(|state| {
        let owner = state
            .gcp
            .account(account)
            .map(|(owner, _)| owner.to_owned())
            .ok_or_else(|| no_such_account(project, account))?;
        let sa = state
            .gcp
            .account_mut(account)
            .ok_or_else(|| no_such_account(project, account))?;
        if let Some(name) = display_name {
            sa.display_name = name;
        }
        if let Some(text) = description {
            sa.description = text;
        }
        Ok(Json(render(&owner, sa)))
    })
}

fn patch(shared: &Shared, call: &Call, project: &str, account: &str) -> GcpResult {
    let body = call.body(&request::PATCH_SERVICE_ACCOUNT)?;
    let sa = match field(&body, "serviceAccount") {
        Some(Value::Object(sa)) => sa.clone(),
        _ => Map::new(),
    };
    let mask = string_field(&body, "updateMask", "")?;
    if mask.trim().is_empty() {
        return Err(GcpError::invalid_with_debug(
            "The update_mask is required: name the fields to change (display_name, description).",
        ));
    }
    let (mut display_name, mut description) = (None, None);
    for path in mask.split(',').map(str::trim) {
        match path {
            "displayName" | "display_name" => {
                display_name = Some(string_field(&sa, "displayName", "service_account.")?);
            }
            "description" => {
                description = Some(string_field(&sa, "description", "service_account.")?);
            }
            other => {
                return Err(GcpError::invalid_with_debug(format!(
                    "Invalid update_mask path \"{other}\": only display_name and description can be updated."
                )));
            }
        }
    }
    edit(shared, project, account, display_name, description)
}

/// `UpdateServiceAccount` (PUT): only the display name can be changed this way.
fn update(shared: &Shared, call: &Call, project: &str, account: &str) -> GcpResult {
    let body = call.body(&request::SERVICE_ACCOUNT)?;
    let display_name = string_field(&body, "displayName", "")?;
    edit(shared, project, account, Some(display_name), None)
}

fn delete(shared: &Shared, project: &str, account: &str) -> GcpResult {
    shared.write(|state| {
        let (owner, sa) = state
            .gcp
            .account(account)
            .map(|(owner, sa)| (owner.to_owned(), sa.clone()))
            .ok_or_else(|| no_such_account(project, account))?;
        let p = state
            .gcp
            .projects
            .get_mut(&owner)
            .expect("the account's project exists");
        p.service_accounts
            .retain(|_, other| other.email != sa.email);
        for project in state.gcp.projects.values_mut() {
            policy::mark_deleted(&mut project.policy, &sa.email, &sa.unique_id);
            for other in project.service_accounts.values_mut() {
                policy::mark_deleted(&mut other.policy, &sa.email, &sa.unique_id);
            }
        }
        Ok(Json(json!({})))
    })
}

fn get_policy(shared: &Shared, call: &Call, project: &str, account: &str) -> GcpResult {
    // The options are query parameters; the body must be empty.
    call.body(&request::EMPTY)?;
    let requested = policy::version(
        call.query("options.requestedPolicyVersion")
            .map(|v| Value::String(v.to_owned()))
            .as_ref(),
        "options.requestedPolicyVersion",
    )?;
    shared.read(|state| {
        let (_, sa) = state
            .gcp
            .account(account)
            .ok_or_else(|| no_such_account(project, account))?;
        policy::get(&sa.policy, requested, call.int_enums()).map(Json)
    })
}

fn set_policy(shared: &Shared, call: &Call, project: &str, account: &str) -> GcpResult {
    let body = call.body(&request::SET_IAM_POLICY)?;
    shared.write(|state| {
        let (owner, stored) = state
            .gcp
            .account(account)
            .map(|(owner, sa)| (owner.to_owned(), sa.policy.clone()))
            .ok_or_else(|| no_such_account(project, account))?;
        let next = policy::set(&state.gcp, &stored, &body, Resource::ServiceAccount(&owner))?;
        let out = policy::render(&next, call.int_enums());
        state
            .gcp
            .account_mut(account)
            .expect("the account was just found")
            .policy = next;
        Ok(Json(out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_checked_like_the_api() {
        assert!(check_account_id("orders-prod").is_ok());
        assert!(check_account_id("abcde1").is_ok());
        assert_eq!(
            check_account_id("short").unwrap_err().message,
            "The account ID \"short\" does not have a length between 6 and 30."
        );
        assert_eq!(
            check_account_id("orders-").unwrap_err().message,
            r"orders- does not match [a-z][a-z\d\-]*[a-z\d]."
        );
        for bad in ["1orders", "Orders-prod", "orders_prod", &"a".repeat(31)] {
            assert!(check_account_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unique_ids_have_21_digits() {
        let id = new_unique_id();
        assert_eq!(id.len(), 21);
        assert!(id.starts_with('1') && id.chars().all(|c| c.is_ascii_digit()));
    }
}
