//! The HTTP surface of one cluster's API server: routing of discovery, OpenAPI and
//! resource paths, verb dispatch, body decoding by Content-Type, field managers, dry
//! runs and fault injection.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::catalog::ResourceInfo;
use super::options::{self, OptionsKind};
use super::rbac::{Attributes, UserInfo};
use super::routes::{Route, route};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::PatchKind;
use super::table::{self, IncludeObject};
use super::{ClusterState, auth, faults, patch, pb, review, scale, token};
use crate::Shared;

#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    cluster: Arc<str>,
}

/// The router: everything goes through one handler that parses the path itself, because
/// Kubernetes paths nest optionally (`/api/v1/pods`, `/api/v1/namespaces/ns/pods/x`).
pub fn router(shared: Arc<Shared>, cluster: String) -> Router {
    Router::new().fallback(handle).with_state(Ctx {
        shared,
        cluster: cluster.into(),
    })
}

async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tracing::debug!(
        cluster = %ctx.cluster,
        %method,
        %uri,
        content_type = header(&headers, header::CONTENT_TYPE),
        accept = header(&headers, header::ACCEPT),
        "k8s request"
    );
    match serve(&ctx, &method, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve(
    ctx: &Ctx,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let route = route(uri.path())?;
    let query: BTreeMap<String, String> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    if matches!(route, Route::Document(_) | Route::Health) {
        inject(ctx, "k8s:discovery", faults::Target::default()).await?;
        let attributes = Attributes::NonResource {
            verb: method.as_str().to_ascii_lowercase(),
            path: uri.path().to_owned(),
        };
        ctx.read(|c| auth::authorize(c, &identify(c, headers)?, &attributes))?;
        if *method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
    }
    let (info, namespace, name, subresource) = match route {
        Route::Document(doc) => return Ok(axum::Json(doc).into_response()),
        Route::Health => return Ok((StatusCode::OK, "ok").into_response()),
        Route::Resource {
            info,
            namespace,
            name,
            subresource,
        } => (info, namespace, name, subresource),
    };
    let ns = namespace.as_deref();
    let scale = subresource.as_deref() == Some("scale");
    let verb = verb(
        method,
        name.is_some(),
        subresource.as_deref().filter(|_| !scale),
        &content_type,
    )?;
    if scale && !(scale::scalable(info) && matches!(verb, "get" | "update" | "patch")) {
        return Err(ApiError::method_not_allowed());
    }
    let created = (verb == "create")
        .then(|| faults::created_name(body))
        .flatten();
    let target = faults::Target {
        info: Some(info),
        namespace: ns,
        name: name.as_deref().or(created.as_deref()).unwrap_or_default(),
        verb,
    };
    if scale {
        inject(ctx, &format!("k8s:{verb} {}/scale", info.resource), target).await?;
    } else {
        inject(ctx, &format!("k8s:{verb} {}", info.resource), target).await?;
    }
    let rbac_verb = match verb {
        "apply" => "patch",
        "token" => "create",
        v if v == "list" && query.get("watch").is_some_and(|w| w == "true" || w == "1") => "watch",
        v => v,
    };
    let attributes = Attributes::Resource {
        verb: rbac_verb.to_owned(),
        group: info.group.to_owned(),
        resource: info.resource.to_owned(),
        subresource: subresource.clone().unwrap_or_default(),
        name: name.clone().unwrap_or_default(),
        // The namespace of a namespace is itself, as the real server's request info has it.
        namespace: match (info.resource, &name) {
            ("namespaces", Some(n)) => n.clone(),
            _ => namespace.clone().unwrap_or_default(),
        },
    };
    let user = ctx.read(|c| {
        let user = identify(c, headers)?;
        auth::authorize(c, &user, &attributes)?;
        Ok(user)
    })?;
    if rbac_verb == "watch" {
        // Watches are not emulated; refusing them is clearer than answering a list to a
        // client that waits for an event stream.
        return Err(ApiError::watch_unsupported());
    }
    if !info.verbs.contains(&rbac_verb) && verb != "token" {
        return Err(ApiError::method_not_allowed());
    }
    if !info.is_stored() {
        let body = decode(body, &content_type)?;
        let answer = ctx.read(|c| review::answer(c, &user, info, namespace.as_deref(), &body))?;
        return Ok((StatusCode::CREATED, axum::Json(answer)).into_response());
    }
    let manager = query
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| manager_from_user_agent(headers));
    let name = name.unwrap_or_default();
    if scale {
        let request = ScaleRequest {
            info,
            namespace: ns,
            name: &name,
            verb,
            manager: &manager,
        };
        return serve_scale(ctx, &request, &query, body, &content_type);
    }
    match verb {
        "list" => {
            let labels =
                LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
            let fields = FieldSelector::parse(
                query.get("fieldSelector").map_or("", String::as_str),
                info.resource,
            )?;
            let list = ctx.read(|c| Ok(c.list(info, ns, &labels, &fields)))?;
            if let Some(version) = table::requested(header(headers, header::ACCEPT)) {
                let include = IncludeObject::parse(query.get("includeObject").map(String::as_str))?;
                let rv = list["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default();
                let items = list["items"].as_array().map_or(&[][..], Vec::as_slice);
                let now = time::OffsetDateTime::now_utc();
                let answer = table::table(info, items, rv, include, version, now);
                return Ok(axum::Json(answer).into_response());
            }
            Ok(axum::Json(list).into_response())
        }
        "get" => {
            let object = ctx.read(|c| c.get(info, ns, &name).cloned())?;
            if let Some(version) = table::requested(header(headers, header::ACCEPT)) {
                let include = IncludeObject::parse(query.get("includeObject").map(String::as_str))?;
                let rv = object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default();
                let now = time::OffsetDateTime::now_utc();
                let answer = table::table(
                    info,
                    std::slice::from_ref(&object),
                    rv,
                    include,
                    version,
                    now,
                );
                return Ok(axum::Json(answer).into_response());
            }
            Ok(axum::Json(object).into_response())
        }
        "create" => {
            let dry_run = options::write_dry_run(OptionsKind::Create, &query)?;
            let body = decode(body, &content_type)?;
            let object = ctx.write(dry_run, |c| c.create(info, ns, &body, &manager, true))?;
            let object = ctx.dry_run_answer(dry_run, info, ns, object)?;
            Ok((StatusCode::CREATED, axum::Json(object)).into_response())
        }
        "update" => {
            let dry_run = options::write_dry_run(OptionsKind::Update, &query)?;
            let body = decode(body, &content_type)?;
            let object = ctx.write(dry_run, |c| c.replace(info, ns, &name, &body, &manager))?;
            let object = ctx.dry_run_answer(dry_run, info, ns, object)?;
            Ok(axum::Json(object).into_response())
        }
        "apply" => {
            let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) else {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            };
            let body: Value = serde_saphyr::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            let dry_run = options::write_dry_run(OptionsKind::Patch, &query)?;
            let force = query.get("force").is_some_and(|f| f == "true");
            let (created, object) =
                ctx.write(dry_run, |c| c.apply(info, ns, &name, &body, manager, force))?;
            let object = ctx.dry_run_answer(dry_run, info, ns, object)?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((code, axum::Json(object)).into_response())
        }
        "patch" => {
            let dry_run = options::write_dry_run(OptionsKind::Patch, &query)?;
            let kind = patch_kind(&content_type)?;
            let body = decode(body, "application/json")?;
            let object = ctx.write(dry_run, |c| c.patch(info, ns, &name, kind, &body, &manager))?;
            let object = ctx.dry_run_answer(dry_run, info, ns, object)?;
            Ok(axum::Json(object).into_response())
        }
        "delete" => {
            let body = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(decode(body, &content_type)?)
            };
            let options = options::delete_options(body.as_ref(), &query)?;
            let object = ctx.write(options.dry_run, |c| c.delete(info, ns, &name, &options))?;
            Ok(axum::Json(object).into_response())
        }
        "deletecollection" => {
            let body = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(decode(body, &content_type)?)
            };
            let options = options::delete_options(body.as_ref(), &query)?;
            let labels =
                LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
            let fields = FieldSelector::parse(
                query.get("fieldSelector").map_or("", String::as_str),
                info.resource,
            )?;
            let gone = ctx.write(options.dry_run, |c| {
                c.delete_collection(info, ns, &labels, &fields, &options)
            })?;
            Ok(axum::Json(gone).into_response())
        }
        "token" => {
            let request = decode(body, &content_type)?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let ns = ns.unwrap_or("default");
            let answer = ctx.read(|c| token::issue(c, ns, &name, &request, now))?;
            Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// A request to the `scale` subresource.
struct ScaleRequest<'a> {
    info: &'static ResourceInfo,
    namespace: Option<&'a str>,
    name: &'a str,
    verb: &'static str,
    manager: &'a str,
}

/// GET, PUT or PATCH of a Scale: read from and written to the object's `spec.replicas`.
fn serve_scale(
    ctx: &Ctx,
    request: &ScaleRequest<'_>,
    query: &BTreeMap<String, String>,
    body: &[u8],
    content_type: &str,
) -> Result<Response, ApiError> {
    let ScaleRequest {
        info,
        namespace: ns,
        name,
        verb,
        manager,
    } = *request;
    let object = ctx.read(|c| c.get(info, ns, name).cloned())?;
    let current = scale::of(&object);
    if verb == "get" {
        return Ok(axum::Json(current).into_response());
    }
    let kind = if verb == "update" {
        OptionsKind::Update
    } else {
        OptionsKind::Patch
    };
    let dry_run = options::write_dry_run(kind, query)?;
    let wanted = if verb == "update" {
        let wanted = decode(body, content_type)?;
        if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str()
            && Some(rv) != object["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::modified(info, name));
        }
        wanted
    } else {
        let mut patched = current;
        let patch = decode(body, "application/json")?;
        match patch_kind(content_type)? {
            PatchKind::Merge => patch::merge_patch(&mut patched, &patch),
            PatchKind::Strategic => patch::strategic_merge_patch(&mut patched, &patch),
            PatchKind::Json => patch::json_patch(&mut patched, &patch)?,
        }
        patched
    };
    let replicas = scale::replicas(name, &wanted)?;
    let change = serde_json::json!({ "spec": { "replicas": replicas } });
    let object = ctx.write(dry_run, |c| {
        c.patch(info, ns, name, PatchKind::Merge, &change, manager)
    })?;
    let object = ctx.dry_run_answer(dry_run, info, ns, object)?;
    Ok(axum::Json(scale::of(&object)).into_response())
}

/// Who a request acts as: its requester, or whom it impersonates.
fn identify(cluster: &ClusterState, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let requester = auth::authenticate(cluster, headers, now)?;
    auth::impersonate(cluster, requester, headers)
}

/// A request header as text (empty when absent or not text).
fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

impl Ctx {
    fn read<R>(&self, f: impl FnOnce(&ClusterState) -> Result<R, ApiError>) -> Result<R, ApiError> {
        self.shared
            .read(|state| match state.clusters.get(&*self.cluster) {
                Some(cluster) => f(cluster),
                None => Err(ApiError::internal(format!(
                    "cluster {} is gone",
                    self.cluster
                ))),
            })
    }

    /// A dry run answers what the write would have stored, except that nothing got a new
    /// resourceVersion: a created object has none, a changed one keeps the live one.
    fn dry_run_answer(
        &self,
        dry_run: bool,
        info: &ResourceInfo,
        namespace: Option<&str>,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        if !dry_run {
            return Ok(object);
        }
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let live = self.read(|c| {
            Ok(c.get(info, namespace, &name)
                .ok()
                .map(|o| o["metadata"]["resourceVersion"].clone()))
        })?;
        match (live, object["metadata"].as_object_mut()) {
            (Some(rv), Some(meta)) => {
                meta.insert("resourceVersion".into(), rv);
            }
            (None, Some(meta)) => {
                meta.remove("resourceVersion");
            }
            _ => {}
        }
        Ok(object)
    }

    /// Runs a write; a dry run works on a copy that is thrown away.
    fn write<R>(
        &self,
        dry_run: bool,
        f: impl FnOnce(&mut ClusterState) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        if dry_run {
            let mut copy = self.read(|c| Ok(c.clone()))?;
            return f(&mut copy);
        }
        self.shared
            .write(|state| match state.clusters.get_mut(&*self.cluster) {
                Some(cluster) => f(cluster),
                None => Err(ApiError::internal(format!(
                    "cluster {} is gone",
                    self.cluster
                ))),
            })
    }
}

/// Counts the call on the object the request names and plays any injected fault (see
/// [`super::faults`]).
async fn inject(ctx: &Ctx, api: &str, target: faults::Target<'_>) -> Result<(), ApiError> {
    let object = target.object(&ctx.cluster);
    ctx.shared
        .admit(api, &object, |failure| faults::error(failure, api, &target))
        .await
}

/// The verb of a request, as fault rules and call counters name it.
fn verb(
    method: &Method,
    has_name: bool,
    subresource: Option<&str>,
    content_type: &str,
) -> Result<&'static str, ApiError> {
    Ok(match (method.as_str(), has_name, subresource) {
        ("POST", true, Some("token")) => "token",
        (_, _, Some(_)) => return Err(ApiError::method_not_allowed()),
        ("GET", false, None) => "list",
        ("GET", true, None) => "get",
        ("POST", false, None) => "create",
        ("PUT", true, None) => "update",
        ("PATCH", true, None) if content_type.starts_with("application/apply-patch") => "apply",
        ("PATCH", true, None) => "patch",
        ("DELETE", true, None) => "delete",
        ("DELETE", false, None) => "deletecollection",
        _ => return Err(ApiError::method_not_allowed()),
    })
}

fn patch_kind(content_type: &str) -> Result<PatchKind, ApiError> {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/json-patch+json" => Ok(PatchKind::Json),
        other => Err(ApiError::unsupported_media_type(
            other,
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
        )),
    }
}

/// Decodes a JSON, YAML or protobuf body, by Content-Type. A protobuf body of a kind
/// without a protobuf decoding is refused with 415, as the real server refuses protobuf
/// for custom resources.
fn decode(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if content_type.starts_with(pb::CONTENT_TYPE) {
        return pb::decode(body).map_err(|e| match e {
            pb::DecodeError::Kind { .. } => {
                ApiError::unsupported_media_type(content_type, "application/json, application/yaml")
            }
            other => ApiError::bad_request(other.to_string()),
        });
    }
    if content_type.contains("yaml") {
        serde_saphyr::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })
    }
}

/// The field manager of a write without `fieldManager`: the User-Agent up to its first
/// `/`, as the real server derives it.
fn manager_from_user_agent(headers: &HeaderMap) -> String {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let prefix = agent.split('/').next().unwrap_or_default().trim();
    if prefix.is_empty() {
        "unknown".to_owned()
    } else {
        prefix.chars().take(128).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_comes_from_the_user_agent_prefix() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::USER_AGENT,
            "kubectl/v1.32.4 (linux/amd64)".parse().expect("ascii"),
        );
        assert_eq!(manager_from_user_agent(&headers), "kubectl");
        assert_eq!(manager_from_user_agent(&HeaderMap::new()), "unknown");
    }

    #[test]
    fn verbs_follow_method_and_content_type() {
        assert_eq!(
            verb(&Method::PATCH, true, None, "application/apply-patch+yaml"),
            Ok("apply")
        );
        assert_eq!(
            verb(&Method::PATCH, true, None, "application/merge-patch+json"),
            Ok("patch")
        );
        assert_eq!(verb(&Method::POST, true, Some("token"), ""), Ok("token"));
        assert_eq!(
            verb(&Method::DELETE, false, None, ""),
            Ok("deletecollection")
        );
        assert!(verb(&Method::PUT, false, None, "").is_err());
    }
}
