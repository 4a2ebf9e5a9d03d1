//! Kubernetes request paths: discovery and OpenAPI documents, and resource paths
//! (`/api/v1/pods`, `/api/v1/namespaces/ns/pods/x/log`, `/apis/g/v/...`), parsed as the
//! real server's request info does.

use serde_json::Value;

use super::catalog::{self, ResourceInfo};
use super::status::ApiError;

/// A parsed request path.
pub enum Route {
    /// A discovery or OpenAPI document.
    Document(Value),
    /// A plain-text health endpoint (`/healthz`, `/livez`, `/readyz`).
    Health,
    /// A resource collection, object or subresource.
    Resource {
        /// The resource.
        info: &'static ResourceInfo,
        /// The namespace of a namespaced path.
        namespace: Option<String>,
        /// The object name.
        name: Option<String>,
        /// The subresource (`token`, `scale`).
        subresource: Option<String>,
    },
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

pub fn route(path: &str) -> Result<Route, ApiError> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let document = |doc: Option<Value>| doc.map(Route::Document).ok_or_else(ApiError::no_route);
    match parts.as_slice() {
        ["version"] => document(Some(catalog::version())),
        ["healthz" | "livez" | "readyz"] => Ok(Route::Health),
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
}
