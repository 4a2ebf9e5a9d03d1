//! The Azure state the emulator keeps: subscriptions with their resource groups, user-assigned
//! identities and their federated credentials, managed clusters, role assignments, plus the
//! emulator's settings and FIC write statistics.
//!
//! Everything here is plain data persisted in `state.json` (the in-flight FIC writes are
//! the one exception: they live only in memory). Maps are keyed by the lowercased name,
//! since ARM names are case-insensitive; each object keeps its name as created. The request
//! handlers own the rules (validation, limits, error codes).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Azure state: subscriptions, settings and FIC statistics.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AzureState {
    /// Subscriptions by lowercased id.
    #[serde(default)]
    pub subscriptions: BTreeMap<String, Subscription>,
    /// How the emulator behaves (replication delay, FIC write duration).
    #[serde(default)]
    pub settings: AzureSettings,
    /// What FIC writes did so far.
    #[serde(default)]
    pub fic_stats: FicStats,
    /// Identities with a FIC write in flight: lowercased identity id → when the write ends.
    #[serde(skip)]
    pub(crate) busy: BTreeMap<String, Instant>,
}

/// Tunable behaviour, settable by tests through [`crate::Shared::write`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureSettings {
    /// A principal created less than this many milliseconds ago is not yet in the
    /// directory: role assignments naming it get `PrincipalNotFound` (replication delay).
    #[serde(default)]
    pub principal_replication_ms: u64,
    /// How long every FIC write (PUT or DELETE) keeps its identity busy, in milliseconds,
    /// before any injected latency is added; a second write on a busy identity gets 409.
    #[serde(default = "default_fic_write_ms")]
    pub fic_write_ms: u64,
}

fn default_fic_write_ms() -> u64 {
    5
}

impl Default for AzureSettings {
    fn default() -> Self {
        Self {
            principal_replication_ms: 0,
            fic_write_ms: default_fic_write_ms(),
        }
    }
}

/// Statistics of FIC writes, for tests that check how a client serialized them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FicStats {
    /// FIC writes (PUT or DELETE) that were carried out.
    #[serde(default)]
    pub writes: u64,
    /// FIC writes refused with `ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity`
    /// because another write on the same identity was in flight (injected faults are not
    /// counted).
    #[serde(default)]
    pub rejected_concurrent: u64,
    /// The most distinct identities that had a FIC write in flight at the same moment.
    #[serde(default)]
    pub max_parallel_identities: u64,
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The subscription id as declared.
    pub id: String,
    /// The tenant (directory) the subscription belongs to.
    pub tenant_id: String,
    /// The display name.
    pub display_name: String,
    /// Resource groups by lowercased name.
    #[serde(default)]
    pub resource_groups: BTreeMap<String, ResourceGroup>,
    /// Role assignments at any scope in the subscription, by lowercased name (a GUID).
    #[serde(default)]
    pub role_assignments: BTreeMap<String, RoleAssignment>,
}

/// A resource group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroup {
    /// The name as created.
    pub name: String,
    /// The normalized location (`eastus`).
    pub location: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// User-assigned identities by lowercased name.
    #[serde(default)]
    pub identities: BTreeMap<String, Identity>,
    /// AKS managed clusters by lowercased name.
    #[serde(default)]
    pub managed_clusters: BTreeMap<String, ManagedCluster>,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The name as created.
    pub name: String,
    /// The normalized location.
    pub location: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The directory of the identity's service principal.
    pub tenant_id: String,
    /// The service principal's object id: what role assignments name.
    pub principal_id: String,
    /// The application (client) id: what workloads authenticate as.
    pub client_id: String,
    /// When the identity was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Federated identity credentials by lowercased name.
    #[serde(default)]
    pub federated_credentials: BTreeMap<String, FederatedCredential>,
}

/// A federated identity credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredential {
    /// The name as created.
    pub name: String,
    /// The trusted issuer URL, exactly as sent.
    pub issuer: String,
    /// The trusted subject, exactly as sent.
    pub subject: String,
    /// The accepted audiences (exactly one).
    pub audiences: Vec<String>,
}

/// A role assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// The name (a GUID) as created.
    pub name: String,
    /// The scope, with a leading `/` and no trailing one, as sent.
    pub scope: String,
    /// The role definition id as sent.
    pub role_definition_id: String,
    /// The assignee's object id.
    pub principal_id: String,
    /// `User`, `Group`, `ServicePrincipal` or `ForeignGroup`.
    pub principal_type: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// An ABAC condition.
    #[serde(default)]
    pub condition: Option<String>,
    /// The condition language version (`2.0`).
    #[serde(default)]
    pub condition_version: Option<String>,
    /// For assignments made on behalf of a managed identity.
    #[serde(default)]
    pub delegated_managed_identity_resource_id: Option<String>,
    /// RFC 3339 timestamps and the caller's object ids.
    pub created_on: String,
    /// When the assignment was last written.
    pub updated_on: String,
    /// Who created it.
    pub created_by: String,
    /// Who last wrote it.
    pub updated_by: String,
}

/// An AKS managed cluster (only what reading it needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCluster {
    /// The name as created.
    pub name: String,
    /// The normalized location.
    pub location: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `major.minor.patch`.
    pub kubernetes_version: String,
    /// The DNS prefix of the API server.
    pub dns_prefix: String,
    /// The API server's FQDN.
    pub fqdn: String,
    /// Whether the OIDC issuer is enabled (`oidcIssuerProfile.enabled`).
    pub oidc_issuer_enabled: bool,
    /// The issuer URL while enabled, trailing slash included.
    pub issuer_url: String,
    /// Whether the workload identity webhook is enabled
    /// (`securityProfile.workloadIdentity.enabled`).
    pub workload_identity_enabled: bool,
    /// The node resource group (`MC_rg_name_location`).
    pub node_resource_group: String,
    /// The plan's name of the cluster, whose Kubernetes API server issues tokens with
    /// `issuer_url` while the issuer is enabled.
    #[serde(default)]
    pub plan_cluster: Option<String>,
}
