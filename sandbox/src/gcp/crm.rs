//! Cloud Resource Manager v1 (which gcloud uses) and v3 (which the Rust clients use):
//! `projects.get`, `getIamPolicy` (options in the body, unlike IAM's service-account
//! variant) and `setIamPolicy`, by project id or number.
//!
//! A project the caller cannot see answers 403 `PERMISSION_DENIED`, as the API does
//! rather than say whether it exists.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};

use super::error::{GcpError, GcpResult, admit};
use super::members::Resource;
use super::model::Project;
use super::policy;
use super::request::{self, Call, field};
use crate::Shared;

/// The Resource Manager endpoint (`/gcp/crm/…`).
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call::new(method, &uri, "/gcp/crm", headers, body);
    match route(&shared, &call).await {
        Ok(json) => json.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The API version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V3,
}

async fn route(shared: &Shared, call: &Call) -> GcpResult {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    let (version, project) = match segments.as_slice() {
        ["v1", "projects", project] => (Version::V1, *project),
        ["v3", "projects", project] => (Version::V3, *project),
        _ => return Err(unknown(call)),
    };
    if let Some(project) = project.strip_suffix(":getIamPolicy")
        && call.method == Method::POST
    {
        admit(shared, "crm.projects.getIamPolicy", call).await?;
        return get_policy(shared, call, project);
    }
    if let Some(project) = project.strip_suffix(":setIamPolicy")
        && call.method == Method::POST
    {
        admit(shared, "crm.projects.setIamPolicy", call).await?;
        return set_policy(shared, call, project);
    }
    if call.method == Method::GET && !project.contains(':') {
        admit(shared, "crm.projects.get", call).await?;
        return get(shared, call, version, project);
    }
    Err(unknown(call))
}

fn unknown(call: &Call) -> GcpError {
    GcpError::not_found(format!(
        "The sandbox's Resource Manager API has no method {} /{}.",
        call.method,
        call.segments.join("/")
    ))
}

fn denied() -> GcpError {
    GcpError::permission_denied("The caller does not have permission")
}

/// Runs `f` on the project a path segment names (creating it for a valid id).
fn with_project<R>(
    shared: &Shared,
    segment: &str,
    f: impl FnOnce(&str, &Project) -> Result<R, GcpError>,
) -> Result<R, GcpError> {
    let id = super::resolve_project(shared, segment).ok_or_else(denied)?;
    shared.read(|state| f(&id, state.gcp.projects.get(&id).ok_or_else(denied)?))
}

fn get(shared: &Shared, call: &Call, version: Version, segment: &str) -> GcpResult {
    let ints = call.int_enums();
    with_project(shared, segment, |id, project| {
        let display = if project.display_name.is_empty() {
            id
        } else {
            &project.display_name
        };
        let mut out = match version {
            Version::V1 => json!({
                "projectNumber": project.number,
                "projectId": id,
                "lifecycleState": if ints { json!(1) } else { json!("ACTIVE") },
                "name": display,
            }),
            Version::V3 => json!({
                "name": format!("projects/{}", project.number),
                "projectId": id,
                "state": if ints { json!(1) } else { json!("ACTIVE") },
                "displayName": display,
                "etag": format!("W/\"{}\"", project.number),
            }),
        };
        // A timestamp field must be a valid timestamp or absent (a hand-edited state may
        // have none).
        if !project.create_time.is_empty() {
            out["createTime"] = json!(project.create_time);
            if version == Version::V3 {
                out["updateTime"] = json!(project.create_time);
            }
        }
        Ok(Json(out))
    })
}

fn get_policy(shared: &Shared, call: &Call, segment: &str) -> GcpResult {
    let body = call.body(&request::GET_IAM_POLICY)?;
    let requested = policy::version(
        field(&body, "options").and_then(|o| match o {
            Value::Object(options) => field(options, "requestedPolicyVersion"),
            _ => None,
        }),
        "options.requestedPolicyVersion",
    )?;
    with_project(shared, segment, |_, project| {
        policy::get(&project.policy, requested, call.int_enums()).map(Json)
    })
}

fn set_policy(shared: &Shared, call: &Call, segment: &str) -> GcpResult {
    let body = call.body(&request::SET_IAM_POLICY)?;
    let id = super::resolve_project(shared, segment).ok_or_else(denied)?;
    shared.write(|state| {
        let stored = state
            .gcp
            .projects
            .get(&id)
            .ok_or_else(denied)?
            .policy
            .clone();
        let next = policy::set(&state.gcp, &stored, &body, Resource::Project(&id))?;
        let out = policy::render(&next, call.int_enums());
        if let Some(project) = state.gcp.projects.get_mut(&id) {
            project.policy = next;
        }
        Ok(Json(out))
    })
}
