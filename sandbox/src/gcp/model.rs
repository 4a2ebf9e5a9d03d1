//! The GCP state the emulator keeps: projects by id, each with its number, its IAM
//! policy, its service accounts (each with its own IAM policy) and its GKE clusters.
//!
//! Everything here is plain data persisted in `state.json` (the shape is documented in
//! [`super`]); the request handlers own the rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// GCP state: projects by project id.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct GcpState {
    /// Projects by project id (`acme-prod`).
    #[serde(default)]
    pub projects: BTreeMap<String, Project>,
}

impl GcpState {
    /// The id of the project with this number.
    pub fn project_id_by_number(&self, number: &str) -> Option<&str> {
        self.projects
            .iter()
            .find(|(_, p)| p.number == number)
            .map(|(id, _)| id.as_str())
    }

    /// The service account with this email or unique id, in any project.
    pub fn account(&self, email_or_id: &str) -> Option<(&str, &ServiceAccount)> {
        self.projects.iter().find_map(|(id, project)| {
            project
                .service_accounts
                .values()
                .find(|sa| sa.email == email_or_id || sa.unique_id == email_or_id)
                .map(|sa| (id.as_str(), sa))
        })
    }

    /// The service account with this email or unique id, in any project, for changing.
    pub fn account_mut(&mut self, email_or_id: &str) -> Option<&mut ServiceAccount> {
        self.projects.values_mut().find_map(|project| {
            project
                .service_accounts
                .values_mut()
                .find(|sa| sa.email == email_or_id || sa.unique_id == email_or_id)
        })
    }

    /// Whether the GKE workload pool `PROJECT.svc.id.goog` exists: its project has a
    /// cluster with Workload Identity enabled on that pool.
    pub fn pool_exists(&self, pool: &str) -> bool {
        let Some(project) = pool.strip_suffix(".svc.id.goog") else {
            return false;
        };
        self.projects.get(project).is_some_and(|p| {
            p.clusters
                .values()
                .flat_map(BTreeMap::values)
                .any(|c| c.workload_pool.as_deref() == Some(pool))
        })
    }
}

/// One project.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Project {
    /// The project number (12 digits), unique across projects.
    pub number: String,
    /// The display name (`name` in Resource Manager v1); the project id when empty.
    #[serde(default)]
    pub display_name: String,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub create_time: String,
    /// The project's IAM policy.
    #[serde(default)]
    pub policy: Policy,
    /// Service accounts by account id (the part of the email before `@`).
    #[serde(default)]
    pub service_accounts: BTreeMap<String, ServiceAccount>,
    /// GKE clusters by location, then cluster name.
    #[serde(default)]
    pub clusters: BTreeMap<String, BTreeMap<String, GkeCluster>>,
}

/// A Google service account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceAccount {
    /// `ACCOUNT_ID@PROJECT.iam.gserviceaccount.com`.
    pub email: String,
    /// 21 decimal digits, unique; also the OAuth 2.0 client id.
    pub unique_id: String,
    /// Up to 100 characters.
    #[serde(default)]
    pub display_name: String,
    /// Up to 256 characters.
    #[serde(default)]
    pub description: String,
    /// Whether the account is disabled.
    #[serde(default)]
    pub disabled: bool,
    /// The account's own IAM policy (who may act as it).
    #[serde(default)]
    pub policy: Policy,
}

/// An IAM allow policy as stored: bindings and audit configs exactly as last written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Role bindings in the server's order (sorted by role, members sorted).
    #[serde(default)]
    pub bindings: Vec<Binding>,
    /// `auditConfigs` entries as JSON (`logType` as its name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_configs: Vec<Value>,
    /// The standard base64 etag of the current version; empty for a policy never
    /// written (which reads as `ACAB`).
    #[serde(default)]
    pub etag: String,
}

/// One role binding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// `roles/…`, `projects/P/roles/…` or `organizations/O/roles/…`.
    pub role: String,
    /// Principals, sorted and without duplicates.
    pub members: Vec<String>,
    /// The IAM condition (`expression`, `title`, …) exactly as written, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

/// A GKE cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GkeCluster {
    /// The cluster name.
    pub name: String,
    /// The region or zone.
    pub location: String,
    /// `PROJECT.svc.id.goog` when Workload Identity is enabled, else absent.
    #[serde(default)]
    pub workload_pool: Option<String>,
    /// Node pools in creation order.
    #[serde(default)]
    pub node_pools: Vec<NodePool>,
    /// `RUNNING` (or any other `Cluster.Status` name).
    pub status: String,
    /// The control plane's IP address.
    pub endpoint: String,
    /// The Kubernetes version.
    pub version: String,
    /// RFC 3339 creation time.
    pub create_time: String,
    /// 64 hex digits, stable per project/location/name.
    pub id: String,
}

/// A GKE node pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePool {
    /// The node pool name.
    pub name: String,
    /// `workloadMetadataConfig.mode`: `GKE_METADATA` or `GCE_METADATA`.
    pub mode: String,
}
