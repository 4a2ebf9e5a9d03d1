//! The Azure Resource Manager emulator, served over TLS on its own loopback listener
//! ([`crate::Sandbox::azure_url`]), with a CA generated once per sandbox directory
//! ([`crate::Sandbox::azure_ca_path`]).
//!
//! - [`tls`]: the CA, the server certificate and the TLS listener.
//! - [`router`]: paths (segment names are case-insensitive), api-versions, the bearer token,
//!   call counting and faults; [`arm`]: the error shape and what handlers share;
//!   [`versions`]: the api-versions accepted per resource type.
//! - [`identities`] and [`fic`]: Microsoft.ManagedIdentity user-assigned identities and
//!   their federated identity credentials (20 per identity, one write at a time).
//! - [`role_assignments`] and [`role_definitions`]: Microsoft.Authorization, with the
//!   built-in roles and a replication delay for new principals.
//! - [`resources`] and [`aks`]: subscriptions, resource groups and managed clusters.
//!
//! # Calls and faults
//!
//! Every operation counts a call (`azure:userAssignedIdentities.createOrUpdate`,
//! `azure:federatedIdentityCredentials.delete`, `azure:roleAssignments.list`,
//! `azure:roleDefinitions.list`, `azure:managedClusters.get`,
//! `azure:resourceGroups.get`, `azure:subscriptions.get`, …) on the resource id the path
//! names, which fault rules' `object` matches. Injected faults answer as ARM does (see
//! [`faults`]): `throttle` → 429 `SubscriptionRequestsThrottled` with `Retry-After: 1`,
//! `server-error` → 500 `InternalServerError`, `conflict` → 409 (on FIC writes, the
//! concurrent-writes error), `unauthorized` → 401, `forbidden` → 403
//! `AuthorizationFailed` naming the action and scope, `limit-exceeded` → the quota the
//! operation runs into; `latency` → a delay (on FIC writes, the identity stays busy that
//! much longer).
//!
//! # State
//!
//! The `azure` section of `DIR/state.json`:
//!
//! ```json
//! {
//!   "subscriptions": {
//!     "<lowercased subscription id>": {
//!       "id": "…", "tenantId": "…", "displayName": "…",
//!       "resourceGroups": {
//!         "<lowercased name>": {
//!           "name": "rg-prod", "location": "eastus", "tags": {},
//!           "identities": {
//!             "<lowercased name>": {
//!               "name": "…", "location": "…", "tags": {},
//!               "tenantId": "…", "principalId": "…", "clientId": "…",
//!               "createdMs": 1700000000000,
//!               "federatedCredentials": {
//!                 "<lowercased name>": { "name": "…", "issuer": "…", "subject": "…", "audiences": ["…"] }
//!               }
//!             }
//!           },
//!           "managedClusters": {
//!             "<lowercased name>": {
//!               "name": "…", "location": "…", "tags": {}, "kubernetesVersion": "1.33.3",
//!               "dnsPrefix": "…", "fqdn": "…", "oidcIssuerEnabled": true,
//!               "issuerUrl": "https://eastus.oic.prod-aks.azure.com/<tenant>/<guid>/",
//!               "workloadIdentityEnabled": true, "nodeResourceGroup": "MC_…",
//!               "planCluster": "aks-prod"
//!             }
//!           }
//!         }
//!       },
//!       "roleAssignments": {
//!         "<lowercased name>": {
//!           "name": "<guid>", "scope": "/subscriptions/…", "roleDefinitionId": "…",
//!           "principalId": "…", "principalType": "ServicePrincipal",
//!           "description": null, "condition": null, "conditionVersion": null,
//!           "delegatedManagedIdentityResourceId": null,
//!           "createdOn": "…", "updatedOn": "…", "createdBy": "…", "updatedBy": "…"
//!         }
//!       }
//!     }
//!   },
//!   "settings": { "principalReplicationMs": 0, "ficWriteMs": 5 },
//!   "ficStats": { "writes": 0, "rejectedConcurrent": 0, "maxParallelIdentities": 0 }
//! }
//! ```

mod aks;
mod arm;
mod faults;
mod fic;
mod identities;
mod model;
mod resources;
mod role_assignments;
mod role_definitions;
mod router;
pub(crate) mod tls;
mod versions;

use std::sync::Arc;

use axum::Router;

pub use aks::{ensure_cluster, set_oidc_issuer, set_workload_identity};
pub use model::{
    AzureSettings, AzureState, FederatedCredential, FicStats, Identity, ManagedCluster,
    ResourceGroup, RoleAssignment, Subscription,
};
pub use tls::{CA_FILE, CA_KEY_FILE};

use crate::{Shared, State};

/// The most federated identity credentials one identity may have.
pub const MAX_FICS_PER_IDENTITY: usize = fic::MAX_PER_IDENTITY;

/// The router of the Azure endpoint.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(router::handle).with_state(shared)
}

/// Creates resource group `rg` in subscription `sub` (and the subscription, with a tenant
/// derived from its id) if missing.
pub fn ensure_resource_group(state: &mut State, sub: &str, rg: &str, location: &str) {
    resources::ensure_group(state, sub, rg, location);
}

/// Sets the replication delay: role assignments naming a principal created less than `ms`
/// milliseconds ago fail with `PrincipalNotFound`.
pub fn set_principal_replication_ms(state: &mut State, ms: u64) {
    state.azure.settings.principal_replication_ms = ms;
}

/// Sets how long every FIC write keeps its identity busy (before injected latency).
pub fn set_fic_write_ms(state: &mut State, ms: u64) {
    state.azure.settings.fic_write_ms = ms;
}

/// What FIC writes did so far: how many were carried out, how many were refused because
/// another write on the same identity was in flight, and the most identities written at
/// the same moment.
pub fn fic_stats(shared: &Shared) -> FicStats {
    shared.read(|state| state.azure.fic_stats)
}

/// The tenant of a subscription, if the sandbox has it.
pub fn tenant_of(state: &State, sub: &str) -> Option<String> {
    state
        .azure
        .subscriptions
        .get(&sub.to_ascii_lowercase())
        .map(|s| s.tenant_id.clone())
}

/// The subscription of the first AKS cluster, for `DIR/env`'s `AZURE_SUBSCRIPTION_ID`.
pub fn default_subscription(state: &State) -> Option<(String, String)> {
    state
        .azure
        .subscriptions
        .values()
        .find(|s| {
            s.resource_groups
                .values()
                .any(|g| !g.managed_clusters.is_empty())
        })
        .map(|s| (s.id.clone(), s.tenant_id.clone()))
}
