//! The HTTP surface of the ARM emulator: path parsing (segment names are case-insensitive,
//! as ARM's are), the operation each route and method stands for, and the checks every
//! request passes in order: call counting and fault lookup, the bearer token, the
//! api-version, then the injected fault ([`super::faults`]), then the operation.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};

use super::arm::{self, ArmError, ArmResult, Req, VersionError};
use super::versions::{
    AKS_VERSIONS, FIC_VERSIONS, MSI_VERSIONS, RESOURCES_VERSIONS, ROLE_ASSIGNMENT_VERSIONS,
    ROLE_DEFINITION_VERSIONS,
};
use super::{aks, faults, fic, identities, resources, role_assignments, role_definitions};
use crate::Shared;

/// A parsed ARM path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Subscription {
        sub: String,
    },
    ResourceGroup {
        sub: String,
        rg: String,
    },
    IdentitiesBySubscription {
        sub: String,
    },
    IdentitiesByGroup {
        sub: String,
        rg: String,
    },
    Identity {
        sub: String,
        rg: String,
        name: String,
    },
    Fics {
        sub: String,
        rg: String,
        identity: String,
    },
    Fic {
        sub: String,
        rg: String,
        identity: String,
        name: String,
    },
    ManagedCluster {
        sub: String,
        rg: String,
        name: String,
    },
    RoleAssignments {
        scope: Vec<String>,
    },
    RoleAssignment {
        scope: Vec<String>,
        name: String,
    },
    RoleDefinitions {
        scope: Vec<String>,
    },
    RoleDefinition {
        scope: Vec<String>,
        id: String,
    },
}

impl Route {
    /// Parses decoded path segments.
    pub(crate) fn parse(segments: &[String]) -> Option<Self> {
        if let Some(i) = (0..segments.len().saturating_sub(1)).rev().find(|&i| {
            segments[i].eq_ignore_ascii_case("providers")
                && segments[i + 1].eq_ignore_ascii_case("Microsoft.Authorization")
        }) {
            let scope = segments[..i].to_vec();
            let rest: Vec<&str> = segments[i + 2..].iter().map(String::as_str).collect();
            return match rest.as_slice() {
                [t] if t.eq_ignore_ascii_case("roleAssignments") => {
                    Some(Self::RoleAssignments { scope })
                }
                [t, n] if t.eq_ignore_ascii_case("roleAssignments") => Some(Self::RoleAssignment {
                    scope,
                    name: (*n).to_owned(),
                }),
                [t] if t.eq_ignore_ascii_case("roleDefinitions") => {
                    Some(Self::RoleDefinitions { scope })
                }
                [t, n] if t.eq_ignore_ascii_case("roleDefinitions") => Some(Self::RoleDefinition {
                    scope,
                    id: (*n).to_owned(),
                }),
                _ => None,
            };
        }
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let l: Vec<&str> = lower.iter().map(String::as_str).collect();
        let s = |i: usize| segments[i].clone();
        match l.as_slice() {
            ["subscriptions", _] => Some(Self::Subscription { sub: s(1) }),
            ["subscriptions", _, "resourcegroups", _] => Some(Self::ResourceGroup {
                sub: s(1),
                rg: s(3),
            }),
            [
                "subscriptions",
                _,
                "providers",
                "microsoft.managedidentity",
                "userassignedidentities",
            ] => Some(Self::IdentitiesBySubscription { sub: s(1) }),
            [
                "subscriptions",
                _,
                "resourcegroups",
                _,
                "providers",
                "microsoft.managedidentity",
                "userassignedidentities",
                rest @ ..,
            ] => {
                let (sub, rg) = (s(1), s(3));
                match rest {
                    [] => Some(Self::IdentitiesByGroup { sub, rg }),
                    [_] => Some(Self::Identity {
                        sub,
                        rg,
                        name: s(7),
                    }),
                    [_, "federatedidentitycredentials"] => Some(Self::Fics {
                        sub,
                        rg,
                        identity: s(7),
                    }),
                    [_, "federatedidentitycredentials", _] => Some(Self::Fic {
                        sub,
                        rg,
                        identity: s(7),
                        name: s(9),
                    }),
                    _ => None,
                }
            }
            [
                "subscriptions",
                _,
                "resourcegroups",
                _,
                "providers",
                "microsoft.containerservice",
                "managedclusters",
                _,
            ] => Some(Self::ManagedCluster {
                sub: s(1),
                rg: s(3),
                name: s(7),
            }),
            _ => None,
        }
    }

    /// The subscription the route is in, if any.
    fn subscription(&self) -> Option<&str> {
        match self {
            Self::Subscription { sub }
            | Self::ResourceGroup { sub, .. }
            | Self::IdentitiesBySubscription { sub }
            | Self::IdentitiesByGroup { sub, .. }
            | Self::Identity { sub, .. }
            | Self::Fics { sub, .. }
            | Self::Fic { sub, .. }
            | Self::ManagedCluster { sub, .. } => Some(sub),
            Self::RoleAssignments { scope }
            | Self::RoleAssignment { scope, .. }
            | Self::RoleDefinitions { scope }
            | Self::RoleDefinition { scope, .. } => scope
                .get(1)
                .filter(|_| scope[0].eq_ignore_ascii_case("subscriptions"))
                .map(String::as_str),
        }
    }

    /// The resource group the route is in, if any.
    fn resource_group(&self) -> Option<&str> {
        match self {
            Self::ResourceGroup { rg, .. }
            | Self::IdentitiesByGroup { rg, .. }
            | Self::Identity { rg, .. }
            | Self::Fics { rg, .. }
            | Self::Fic { rg, .. }
            | Self::ManagedCluster { rg, .. } => Some(rg),
            _ => None,
        }
    }
}

/// What one route and method stand for: the API name calls are counted under, and the
/// api-versions it accepts.
struct Op {
    api: &'static str,
    write: bool,
    versions: &'static [&'static str],
    version_error: VersionError,
    namespace: &'static str,
    resource_type: &'static str,
}

fn op(route: &Route, method: &Method) -> Option<Op> {
    let msi = |api, write| Op {
        api,
        write,
        versions: MSI_VERSIONS,
        version_error: VersionError::Provider,
        namespace: "Microsoft.ManagedIdentity",
        resource_type: "userAssignedIdentities",
    };
    let fic = |api, write| Op {
        api,
        write,
        versions: FIC_VERSIONS,
        version_error: VersionError::Provider,
        namespace: "Microsoft.ManagedIdentity",
        resource_type: "userAssignedIdentities/federatedIdentityCredentials",
    };
    let ra = |api, write| Op {
        api,
        write,
        versions: ROLE_ASSIGNMENT_VERSIONS,
        version_error: VersionError::Authorization,
        namespace: "Microsoft.Authorization",
        resource_type: "roleAssignments",
    };
    let rd = |api| Op {
        api,
        write: false,
        versions: ROLE_DEFINITION_VERSIONS,
        version_error: VersionError::Authorization,
        namespace: "Microsoft.Authorization",
        resource_type: "roleDefinitions",
    };
    let res = |api, write, resource_type| Op {
        api,
        write,
        versions: RESOURCES_VERSIONS,
        version_error: VersionError::Resources,
        namespace: "Microsoft.Resources",
        resource_type,
    };
    let m = method.as_str();
    Some(match (route, m) {
        (Route::Subscription { .. }, "GET") => {
            res("azure:subscriptions.get", false, "subscriptions")
        }
        (Route::ResourceGroup { .. }, "GET") => {
            res("azure:resourceGroups.get", false, "resourceGroups")
        }
        (Route::ResourceGroup { .. }, "PUT") => res(
            "azure:resourceGroups.createOrUpdate",
            true,
            "resourceGroups",
        ),
        (Route::IdentitiesBySubscription { .. }, "GET") => {
            msi("azure:userAssignedIdentities.listBySubscription", false)
        }
        (Route::IdentitiesByGroup { .. }, "GET") => {
            msi("azure:userAssignedIdentities.listByResourceGroup", false)
        }
        (Route::Identity { .. }, "GET") => msi("azure:userAssignedIdentities.get", false),
        (Route::Identity { .. }, "PUT") => msi("azure:userAssignedIdentities.createOrUpdate", true),
        (Route::Identity { .. }, "PATCH") => msi("azure:userAssignedIdentities.update", true),
        (Route::Identity { .. }, "DELETE") => msi("azure:userAssignedIdentities.delete", true),
        (Route::Fics { .. }, "GET") => fic("azure:federatedIdentityCredentials.list", false),
        (Route::Fic { .. }, "GET") => fic("azure:federatedIdentityCredentials.get", false),
        (Route::Fic { .. }, "PUT") => {
            fic("azure:federatedIdentityCredentials.createOrUpdate", true)
        }
        (Route::Fic { .. }, "DELETE") => fic("azure:federatedIdentityCredentials.delete", true),
        (Route::ManagedCluster { .. }, "GET") => Op {
            api: "azure:managedClusters.get",
            write: false,
            versions: AKS_VERSIONS,
            version_error: VersionError::Provider,
            namespace: "Microsoft.ContainerService",
            resource_type: "managedClusters",
        },
        (Route::RoleAssignments { .. }, "GET") => ra("azure:roleAssignments.list", false),
        (Route::RoleAssignment { .. }, "GET") => ra("azure:roleAssignments.get", false),
        (Route::RoleAssignment { .. }, "PUT") => ra("azure:roleAssignments.create", true),
        (Route::RoleAssignment { .. }, "DELETE") => ra("azure:roleAssignments.delete", true),
        (Route::RoleDefinitions { .. }, "GET") => rd("azure:roleDefinitions.list"),
        (Route::RoleDefinition { .. }, "GET") => rd("azure:roleDefinitions.get"),
        _ => return None,
    })
}

/// Decoded path segments (empty ones dropped).
fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// Every ARM request.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    tracing::debug!(%method, %uri, "azure request");
    match serve(&shared, &method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: bytes::Bytes,
) -> ArmResult {
    let path = uri.path();
    let segments = segments(path);
    let route = Route::parse(&segments).ok_or_else(|| {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("The sandbox serves no Azure Resource Manager API at '{path}'."),
        )
    })?;
    let op = op(&route, method).ok_or_else(|| {
        ArmError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The requested resource does not support http method '{method}'."),
        )
    })?;
    let resource_id = format!("/{}", segments.join("/"));
    let decision = shared.call_on(op.api, &resource_id);
    let token = arm::bearer(headers)?;
    let query: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or_default())
        .map_err(|e| {
            ArmError::bad_request(
                "InvalidQueryParameter",
                format!("The query string is invalid: {e}"),
            )
        })?;
    let version = query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("api-version"))
        .map(|(_, v)| v.as_str());
    let location = location_of(shared, &route);
    let api_version = arm::check_version(
        version,
        op.versions,
        op.version_error,
        op.namespace,
        op.resource_type,
        &location,
    )?;
    let sub = route.subscription().unwrap_or_default().to_owned();
    let caller = arm::stable_guid(&format!("caller/{token}"));
    let target = faults::Target {
        route: &route,
        sub: &sub,
        write: op.write,
        action: faults::action(op.namespace, op.resource_type, method),
        scope: &resource_id,
        caller: &caller,
    };
    let latency = decision.latency_ms;
    let is_fic_write = matches!(route, Route::Fic { .. }) && op.write;
    if latency > 0 && !is_fic_write {
        crate::latency::wait(Duration::from_millis(latency)).await;
    }
    decision.outcome(|failure| faults::error(failure, &target))?;
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let req = Req {
        query,
        body,
        base: format!("https://{host}"),
        path: path.to_owned(),
        caller,
        api_version,
    };
    let m = method.as_str();
    match route {
        Route::Subscription { sub } => resources::get_subscription(shared, &sub),
        Route::ResourceGroup { sub, rg } if m == "GET" => {
            resources::get_resource_group(shared, &sub, &rg)
        }
        Route::ResourceGroup { sub, rg } => resources::put_resource_group(shared, &req, &sub, &rg),
        Route::ManagedCluster { sub, rg, name } => aks::get(shared, &sub, &rg, &name),
        Route::IdentitiesBySubscription { sub } => identities::list(shared, &req, &sub, None),
        Route::IdentitiesByGroup { sub, rg } => identities::list(shared, &req, &sub, Some(&rg)),
        Route::Identity { sub, rg, name } => match m {
            "GET" => identities::get(shared, &req, &sub, &rg, &name),
            "PUT" => identities::put(shared, &req, &sub, &rg, &name),
            "PATCH" => identities::patch(shared, &req, &sub, &rg, &name),
            _ => identities::delete(shared, &sub, &rg, &name),
        },
        Route::Fics { sub, rg, identity } => fic::list(shared, &req, &sub, &rg, &identity),
        Route::Fic {
            sub,
            rg,
            identity,
            name,
        } if m == "GET" => fic::get(shared, &sub, &rg, &identity, &name),
        Route::Fic {
            sub,
            rg,
            identity,
            name,
        } => {
            let write = fic::Write {
                sub: &sub,
                rg: &rg,
                identity: &identity,
                name: &name,
                put: m == "PUT",
                latency_ms: latency,
            };
            fic::write(shared, &req, write).await
        }
        Route::RoleAssignments { scope } => role_assignments::list(shared, &req, &scope),
        Route::RoleAssignment { scope, name } => match m {
            "GET" => role_assignments::get(shared, &scope, &name),
            "PUT" => role_assignments::put(shared, &req, &scope, &name),
            _ => role_assignments::delete(shared, &scope, &name),
        },
        Route::RoleDefinitions { scope } => role_definitions::list(shared, &req, &scope),
        Route::RoleDefinition { scope, id } => role_definitions::get(shared, &scope, &id),
    }
}

/// The location ARM names in `NoRegisteredProviderFound`: the resource group's, else
/// `eastus`.
fn location_of(shared: &Shared, route: &Route) -> String {
    let (Some(sub), Some(rg)) = (route.subscription(), route.resource_group()) else {
        return "eastus".to_owned();
    };
    shared.read(|state| {
        state
            .azure
            .subscriptions
            .get(&sub.to_ascii_lowercase())
            .and_then(|s| s.resource_groups.get(&rg.to_ascii_lowercase()))
            .map_or_else(|| "eastus".to_owned(), |g| g.location.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Option<Route> {
        Route::parse(&segments(path))
    }

    #[test]
    fn segment_names_are_case_insensitive() {
        let id = Route::Identity {
            sub: "S".into(),
            rg: "Rg".into(),
            name: "Id".into(),
        };
        assert_eq!(
            parse(
                "/subscriptions/S/resourceGroups/Rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/Id"
            ),
            Some(id.clone())
        );
        assert_eq!(
            parse(
                "/SUBSCRIPTIONS/S/resourcegroups/Rg/providers/microsoft.managedidentity/USERASSIGNEDIDENTITIES/Id"
            ),
            Some(id)
        );
        assert_eq!(
            parse(
                "/subscriptions/S/resourcegroups/Rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/Id/federatedIdentityCredentials/f-1"
            ),
            Some(Route::Fic {
                sub: "S".into(),
                rg: "Rg".into(),
                identity: "Id".into(),
                name: "f-1".into()
            })
        );
    }

    #[test]
    fn authorization_routes_take_any_scope() {
        let scope: Vec<String> = [
            "subscriptions",
            "S",
            "resourceGroups",
            "rg",
            "providers",
            "Microsoft.Storage",
            "storageAccounts",
            "acct",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            parse(
                "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/providers/Microsoft.Authorization/roleAssignments/g"
            ),
            Some(Route::RoleAssignment {
                scope,
                name: "g".into()
            })
        );
        assert_eq!(
            parse("/subscriptions/S/providers/microsoft.authorization/roledefinitions"),
            Some(Route::RoleDefinitions {
                scope: vec!["subscriptions".into(), "S".into()]
            })
        );
        assert_eq!(
            parse("/providers/Microsoft.Authorization/roleDefinitions/x"),
            Some(Route::RoleDefinition {
                scope: vec![],
                id: "x".into()
            })
        );
        assert_eq!(
            parse("/subscriptions/S/providers/Microsoft.Authorization/denyAssignments"),
            None
        );
    }
}
