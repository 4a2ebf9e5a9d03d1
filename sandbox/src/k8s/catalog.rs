//! The resources the emulator serves (stored kinds, and the create-only authentication
//! and authorization reviews) and the discovery documents that describe them:
//! `/version`, `/api`, `/apis`, the per-group-version `APIResourceList`s and a minimal
//! OpenAPI v3 (just enough for `kubectl apply --server-side` to delegate validation).

use serde_json::{Value, json};

/// One served resource.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name, also the key of its objects in the state.
    pub resource: &'static str,
    /// Singular resource name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Discovery categories (`all` makes `kubectl get all` list it).
    pub categories: &'static [&'static str],
    /// The verbs served: every verb for stored kinds, `create` alone for the reviews
    /// (SelfSubjectAccessReview and the like), which are answered and never stored.
    pub verbs: &'static [&'static str],
}

impl ResourceInfo {
    /// Whether objects of this kind are stored (not a create-only review).
    pub fn is_stored(&self) -> bool {
        self.verbs.contains(&"get")
    }

    /// Whether the server keeps `metadata.generation` (kinds with a spec whose strategy
    /// counts its changes: workloads and pods); ConfigMaps, ServiceAccounts, RBAC objects
    /// and namespaces have none.
    pub fn has_generation(&self) -> bool {
        matches!(
            self.resource,
            "pods"
                | "deployments"
                | "replicasets"
                | "statefulsets"
                | "daemonsets"
                | "jobs"
                | "cronjobs"
        )
    }

    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        group_version(self.group, self.version)
    }

    /// `serviceaccounts` or `roles.rbac.authorization.k8s.io`, as error messages name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// Names must be DNS-1123 labels (namespaces), subdomains (most kinds) or mere path
    /// segments (RBAC kinds, whose bootstrap names hold colons: `system:node`).
    pub fn name_rule(&self) -> NameRule {
        match (self.group, self.resource) {
            ("", "namespaces") => NameRule::Label,
            ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
            _ => NameRule::Subdomain,
        }
    }
}

/// How object names are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
    Label,
    /// RFC 1123 subdomain: at most 253, labels joined by dots.
    Subdomain,
    /// Anything that fits in one URL path segment.
    PathSegment,
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";

macro_rules! resource {
    ($group:expr, $version:expr, $resource:expr, $singular:expr, $kind:expr, $namespaced:expr,
     [$($short:expr),*], [$($cat:expr),*]) => {
        ResourceInfo {
            group: $group,
            version: $version,
            resource: $resource,
            singular: $singular,
            kind: $kind,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            verbs: VERBS,
        }
    };
}

/// A create-only review kind.
macro_rules! review {
    ($group:expr, $resource:expr, $singular:expr, $kind:expr, $namespaced:expr) => {
        ResourceInfo {
            group: $group,
            version: "v1",
            resource: $resource,
            singular: $singular,
            kind: $kind,
            namespaced: $namespaced,
            short_names: &[],
            categories: &[],
            verbs: &["create"],
        }
    };
}

const AUTHN: &str = "authentication.k8s.io";
const AUTHZ: &str = "authorization.k8s.io";

/// Every resource served, grouped by group version in discovery order.
pub static RESOURCES: &[ResourceInfo] = &[
    resource!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        ["cm"],
        []
    ),
    resource!("", "v1", "events", "event", "Event", true, ["ev"], []),
    ResourceInfo {
        verbs: NAMESPACE_VERBS,
        ..resource!(
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            false,
            ["ns"],
            []
        )
    },
    resource!("", "v1", "pods", "pod", "Pod", true, ["po"], ["all"]),
    resource!("", "v1", "secrets", "secret", "Secret", true, [], []),
    resource!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        ["sa"],
        []
    ),
    resource!(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        ["ds"],
        ["all"]
    ),
    resource!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        ["deploy"],
        ["all"]
    ),
    resource!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        ["rs"],
        ["all"]
    ),
    resource!(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        ["sts"],
        ["all"]
    ),
    resource!(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        ["cj"],
        ["all"]
    ),
    resource!("batch", "v1", "jobs", "job", "Job", true, [], ["all"]),
    resource!(
        RBAC,
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        [],
        []
    ),
    resource!(
        RBAC,
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        [],
        []
    ),
    resource!(
        RBAC,
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        [],
        []
    ),
    resource!(RBAC, "v1", "roles", "role", "Role", true, [], []),
    review!(
        AUTHN,
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview",
        false
    ),
    review!(AUTHN, "tokenreviews", "tokenreview", "TokenReview", false),
    review!(
        AUTHZ,
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        "LocalSubjectAccessReview",
        true
    ),
    review!(
        AUTHZ,
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        false
    ),
    review!(
        AUTHZ,
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "SelfSubjectRulesReview",
        false
    ),
    review!(
        AUTHZ,
        "subjectaccessreviews",
        "subjectaccessreview",
        "SubjectAccessReview",
        false
    ),
];

/// The group versions served besides `v1`, in discovery order.
const GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    (AUTHN, "v1"),
    (AUTHZ, "v1"),
    ("batch", "v1"),
    (RBAC, "v1"),
];

/// The verbs every resource supports here.
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
];

/// Namespaces cannot be deleted as a collection.
const NAMESPACE_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update"];

/// Looks a resource up by its URL parts.
pub fn by_resource(group: &str, version: &str, resource: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// Looks a resource up by `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

/// The resource whose objects are stored under `resource`.
pub fn by_plural(resource: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.resource == resource)
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "35",
        "emulationMajor": "1",
        "emulationMinor": "35",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "34",
        "gitVersion": "v1.35.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-12-17T00:00:00Z",
        "goVersion": "go1.25.5",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `GET /api`.
pub fn core_versions() -> Value {
    json!({ "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [] })
}

fn group_doc(group: &str, version: &str) -> Value {
    let gv = json!({ "groupVersion": group_version(group, version), "version": version });
    json!({ "name": group, "versions": [gv.clone()], "preferredVersion": gv })
}

/// `GET /apis`.
pub fn groups() -> Value {
    let groups: Vec<Value> = GROUPS.iter().map(|(g, v)| group_doc(g, v)).collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `GET /apis/{group}`, when the group is served.
pub fn group(name: &str) -> Option<Value> {
    let (g, v) = GROUPS.iter().find(|(g, _)| *g == name)?;
    let mut doc = group_doc(g, v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`, when served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for info in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": info.resource,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": info.verbs,
        });
        if !info.short_names.is_empty() {
            entry["shortNames"] = json!(info.short_names);
        }
        if !info.categories.is_empty() {
            entry["categories"] = json!(info.categories);
        }
        resources.push(entry);
        if matches!(
            info.resource,
            "deployments" | "replicasets" | "statefulsets"
        ) {
            resources.push(json!({
                "name": format!("{}/scale", info.resource),
                "singularName": "",
                "namespaced": true,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        if info.resource == "serviceaccounts" {
            resources.push(json!({
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": true,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

/// `GET /openapi/v3`: one document per group version.
pub fn openapi_index() -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in std::iter::once(&("", "v1")).chain(GROUPS) {
        let key = openapi_key(g, v);
        paths.insert(
            key.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash=sandbox") }),
        );
    }
    json!({ "paths": paths })
}

fn openapi_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3/api/v1` and the like: a minimal OpenAPI 3 document whose object
/// paths carry the group-version-kind extension and declare the `fieldValidation`,
/// `fieldManager`, `force` and `dryRun` query parameters on PATCH. That is what kubectl
/// looks for before it lets the server validate an apply (API-NOTES §4.5).
pub fn openapi_document(key: &str) -> Option<Value> {
    let (g, v) = std::iter::once(&("", "v1"))
        .chain(GROUPS)
        .find(|(g, v)| openapi_key(g, v) == key)?;
    let query = |name: &str, kind: &str| json!({ "name": name, "in": "query", "schema": { "type": kind, "uniqueItems": true } });
    let write_params = json!([
        query("dryRun", "string"),
        query("fieldManager", "string"),
        query("fieldValidation", "string"),
    ]);
    let mut patch_params = write_params.clone();
    if let Some(list) = patch_params.as_array_mut() {
        list.push(query("force", "boolean"));
    }
    let mut paths = serde_json::Map::new();
    for info in RESOURCES
        .iter()
        .filter(|r| r.group == *g && r.version == *v && r.is_stored())
    {
        let gvk = json!({ "group": info.group, "version": info.version, "kind": info.kind });
        let op = |id: &str, params: &Value| {
            json!({
                "operationId": format!("{id}{}", info.kind),
                "parameters": params,
                "x-kubernetes-action": id,
                "x-kubernetes-group-version-kind": gvk,
                "responses": { "200": { "description": "OK" } },
            })
        };
        let base = format!("/{}", openapi_key(info.group, info.version));
        let collection = if info.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", info.resource)
        } else {
            format!("{base}/{}", info.resource)
        };
        paths.insert(
            collection.clone(),
            json!({ "get": op("list", &json!([])), "post": op("post", &write_params) }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": op("get", &json!([])),
                "put": op("put", &write_params),
                "patch": op("patch", &patch_params),
                "delete": op("delete", &json!([query("dryRun", "string")])),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.35.0" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_names_the_token_subresource_and_short_names() {
        let list = resource_list("", "v1").expect("core is served");
        let resources = list["resources"].as_array().expect("an array");
        let sa = resources
            .iter()
            .find(|r| r["name"] == "serviceaccounts")
            .expect("serviceaccounts listed");
        assert_eq!(sa["shortNames"], json!(["sa"]));
        assert_eq!(sa["namespaced"], true);
        let token = resources
            .iter()
            .find(|r| r["name"] == "serviceaccounts/token")
            .expect("token subresource listed");
        assert_eq!(token["verbs"], json!(["create"]));
        assert!(resource_list("nope", "v1").is_none());
    }

    #[test]
    fn openapi_declares_field_validation_on_patch() {
        let doc = openapi_document("api/v1").expect("core document");
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ServiceAccount"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .expect("an array")
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(openapi_document("apis/rbac.authorization.k8s.io/v1").is_some());
        assert!(openapi_document("apis/nope/v1").is_none());
    }

    #[test]
    fn lookups_agree() {
        let role = by_kind("rbac.authorization.k8s.io/v1", "Role").expect("known");
        assert_eq!(role.resource, "roles");
        assert_eq!(by_plural("roles"), Some(role));
        assert_eq!(role.name_rule(), NameRule::PathSegment);
    }
}
