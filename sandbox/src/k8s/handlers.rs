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
use serde_json::{Value, json};

use super::catalog::{self, ResourceInfo};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::PatchKind;
use super::{ClusterState, faults, protobuf, token};
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

/// A parsed request path.
enum Route {
    /// A discovery or OpenAPI document.
    Document(Value),
    /// A resource collection, object or subresource.
    Resource {
        info: &'static ResourceInfo,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    },
}

async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tracing::debug!(cluster = %ctx.cluster, %method, %uri, "k8s request");
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
    let (info, namespace, name, subresource) = match route {
        Route::Document(doc) => {
            inject(ctx, "k8s:discovery", faults::Target::default()).await?;
            if *method != Method::GET {
                return Err(ApiError::method_not_allowed());
            }
            return Ok(axum::Json(doc).into_response());
        }
        Route::Resource {
            info,
            namespace,
            name,
            subresource,
        } => (info, namespace, name, subresource),
    };
    let ns = namespace.as_deref();
    let verb = verb(
        method,
        name.is_some(),
        subresource.as_deref(),
        &content_type,
    )?;
    let created = (verb == "create")
        .then(|| faults::created_name(body))
        .flatten();
    let target = faults::Target {
        info: Some(info),
        namespace: ns,
        name: name.as_deref().or(created.as_deref()).unwrap_or_default(),
        verb,
    };
    inject(ctx, &format!("k8s:{verb} {}", info.resource), target).await?;
    let manager = query
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| manager_from_user_agent(headers));
    let dry_run = query.contains_key("dryRun");
    let name = name.unwrap_or_default();
    match verb {
        "list" => {
            // Watches are not emulated; refusing them is clearer than answering a list
            // to a client that waits for an event stream.
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                return Err(ApiError::method_not_allowed());
            }
            let labels =
                LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
            let fields = FieldSelector::parse(
                query.get("fieldSelector").map_or("", String::as_str),
                info.resource,
            )?;
            let list = ctx.read(|c| Ok(c.list(info, ns, &labels, &fields)))?;
            Ok(axum::Json(list).into_response())
        }
        "get" => {
            let object = ctx.read(|c| c.get(info, ns, &name).cloned())?;
            Ok(axum::Json(object).into_response())
        }
        "create" => {
            let body = decode(body, &content_type)?;
            let object = ctx.write(dry_run, |c| c.create(info, ns, &body, &manager, true))?;
            Ok((StatusCode::CREATED, axum::Json(object)).into_response())
        }
        "update" => {
            let body = decode(body, &content_type)?;
            let object = ctx.write(dry_run, |c| c.replace(info, ns, &name, &body, &manager))?;
            Ok(axum::Json(object).into_response())
        }
        "apply" => {
            let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) else {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            };
            let body: Value = serde_yaml::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            let force = query.get("force").is_some_and(|f| f == "true");
            let (created, object) =
                ctx.write(dry_run, |c| c.apply(info, ns, &name, &body, manager, force))?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((code, axum::Json(object)).into_response())
        }
        "patch" => {
            let kind = patch_kind(&content_type)?;
            let body = decode(body, "application/json")?;
            let object = ctx.write(dry_run, |c| c.patch(info, ns, &name, kind, &body, &manager))?;
            Ok(axum::Json(object).into_response())
        }
        "delete" => {
            let options = if body.iter().all(u8::is_ascii_whitespace) {
                json!({})
            } else {
                decode(body, &content_type)?
            };
            let object = ctx.write(dry_run, |c| c.delete(info, ns, &name, &options))?;
            Ok(axum::Json(object).into_response())
        }
        "token" => {
            let request = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
                protobuf::decode_token_request(body)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?
            } else {
                decode(body, &content_type)?
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let ns = ns.unwrap_or("default");
            let answer = ctx.read(|c| token::issue(c, ns, &name, &request, now))?;
            Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
        }
        _ => Err(ApiError::method_not_allowed()),
    }
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

/// Decodes a JSON (or, by Content-Type, YAML) body.
fn decode(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return Err(ApiError::unsupported_media_type(
            content_type,
            "application/json, application/yaml",
        ));
    }
    if content_type.contains("yaml") {
        serde_yaml::from_slice(body)
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

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(path: &str) -> Result<Route, ApiError> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let document = |doc: Option<Value>| doc.map(Route::Document).ok_or_else(ApiError::no_route);
    match parts.as_slice() {
        ["version"] => document(Some(catalog::version())),
        ["api"] => document(Some(catalog::core_versions())),
        ["apis"] => document(Some(catalog::groups())),
        ["api", "v1"] => document(catalog::resource_list("", "v1")),
        ["apis", group] => document(catalog::group(group)),
        ["apis", group, version] => document(catalog::resource_list(group, version)),
        ["openapi", "v3"] => document(Some(catalog::openapi_index())),
        ["openapi", "v3", rest @ ..] => document(catalog::openapi_document(&rest.join("/"))),
        ["api", "v1", rest @ ..] => resource_route("", "v1", rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Err(ApiError::no_route()),
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Result<Route, ApiError> {
    let owned = |s: Option<&&str>| s.map(|s| (*s).to_owned());
    let (namespace, resource, name, subresource) = match rest {
        ["namespaces", ns, resource, tail @ ..] if tail.len() <= 2 => (
            Some(*ns),
            *resource,
            owned(tail.first()),
            owned(tail.get(1)),
        ),
        [resource, tail @ ..] if tail.len() <= 2 => {
            (None, *resource, owned(tail.first()), owned(tail.get(1)))
        }
        _ => return Err(ApiError::no_route()),
    };
    let info = catalog::by_resource(group, version, resource).ok_or_else(ApiError::no_route)?;
    // A cluster-scoped kind has no namespaced paths; a namespaced kind is reached without
    // a namespace only to list across all namespaces.
    match (info.namespaced, namespace, &name) {
        (false, Some(_), _) | (true, None, Some(_)) => Err(ApiError::no_route()),
        _ => Ok(Route::Resource {
            info,
            namespace: namespace.map(str::to_owned),
            name,
            subresource,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> (&'static str, Option<String>, Option<String>, Option<String>) {
        match route(path) {
            Ok(Route::Resource {
                info,
                namespace,
                name,
                subresource,
            }) => (info.resource, namespace, name, subresource),
            _ => panic!("{path} is not a resource route"),
        }
    }

    #[test]
    fn routes_resource_paths() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            resource("/api/v1/serviceaccounts"),
            ("serviceaccounts", None, None, None)
        );
        assert_eq!(
            resource("/api/v1/namespaces/prod/serviceaccounts/app/token"),
            ("serviceaccounts", s("prod"), s("app"), s("token"))
        );
        assert_eq!(
            resource("/api/v1/namespaces/prod"),
            ("namespaces", None, s("prod"), None)
        );
        assert_eq!(
            resource("/api/v1/namespaces"),
            ("namespaces", None, None, None)
        );
        assert_eq!(
            resource("/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Anode"),
            ("clusterroles", None, s("system:node"), None)
        );
        assert!(route("/api/v1/serviceaccounts/x").is_err());
        assert!(route("/api/v1/namespaces/prod/clusterroles").is_err());
        assert!(route("/apis/nope/v1/things").is_err());
        assert!(matches!(
            route("/openapi/v3/api/v1"),
            Ok(Route::Document(_))
        ));
        assert!(route("/openapi/v2").is_err());
    }

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
        assert!(verb(&Method::DELETE, false, None, "").is_err());
    }
}
