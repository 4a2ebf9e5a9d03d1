//! The AWS state the emulator keeps: per account, IAM roles, customer managed policies and
//! OIDC providers, and EKS clusters per region with their Pod Identity associations.
//!
//! Everything here is plain data persisted in `state.json`; the request handlers own the
//! rules (validation, quotas, error codes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// AWS state: IAM and EKS, per account.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AwsState {
    /// Accounts by 12-digit id.
    #[serde(default)]
    pub accounts: BTreeMap<String, Account>,
}

/// One AWS account.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    /// Roles keyed by the lowercased name, because IAM role names are unique
    /// case-insensitively.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// Customer managed policies by ARN.
    #[serde(default)]
    pub policies: BTreeMap<String, ManagedPolicy>,
    /// IAM OIDC identity providers by ARN.
    #[serde(default)]
    pub oidc_providers: BTreeMap<String, OidcProvider>,
    /// EKS clusters by region, then cluster name.
    #[serde(default)]
    pub eks: BTreeMap<String, BTreeMap<String, EksCluster>>,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The name as created (case preserved).
    pub name: String,
    /// The path, `/` by default; always starts and ends with `/`.
    pub path: String,
    /// `AROA…`, 21 characters.
    pub role_id: String,
    /// ISO 8601, UTC, seconds precision.
    pub create_date: String,
    /// The trust policy exactly as sent (JSON text).
    pub assume_role_policy: String,
    /// Free text, if set.
    #[serde(default)]
    pub description: Option<String>,
    /// Seconds, 3600 to 43200.
    pub max_session_duration: u32,
    /// The permissions boundary policy ARN, if set.
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Inline policies: name to JSON text.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// Attached managed policy ARNs, in attachment order.
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

/// A customer managed policy (only its default version is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedPolicy {
    /// The policy name.
    pub name: String,
    /// The path.
    pub path: String,
    /// `ANPA…`, 21 characters.
    pub policy_id: String,
    /// The document (JSON text) of version `v1`.
    pub document: String,
    /// Free text, if set.
    #[serde(default)]
    pub description: Option<String>,
    /// ISO 8601, UTC.
    pub create_date: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An IAM OIDC identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcProvider {
    /// The issuer URL as registered (`https://…`).
    pub url: String,
    /// Audiences, in the order added.
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Server certificate thumbprints (40 hex characters each).
    #[serde(default)]
    pub thumbprints: Vec<String>,
    /// ISO 8601, UTC.
    pub create_date: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An EKS cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EksCluster {
    /// The cluster name.
    pub name: String,
    /// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
    pub arn: String,
    /// Epoch seconds.
    pub created_at: i64,
    /// Kubernetes version, e.g. `1.35`.
    pub version: String,
    /// API server URL.
    pub endpoint: String,
    /// The cluster's IAM role.
    pub role_arn: String,
    /// `ACTIVE`.
    pub status: String,
    /// The OIDC issuer URL (`https://oidc.eks.REGION.amazonaws.com/id/ID`).
    pub issuer: String,
    /// Tags, set through `TagResource` (state files from before tagging have none).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Pod Identity associations by association id.
    #[serde(default)]
    pub pod_identity_associations: BTreeMap<String, PodIdentityAssociation>,
}

/// An EKS Pod Identity association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIdentityAssociation {
    /// `a-` and 17 lowercase alphanumerics.
    pub association_id: String,
    /// `arn:aws:eks:REGION:ACCOUNT:podidentityassociation/CLUSTER/ID`.
    pub association_arn: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Kubernetes service account name.
    pub service_account: String,
    /// The IAM role the pods get.
    pub role_arn: String,
    /// A role to chain into, if set.
    #[serde(default)]
    pub target_role_arn: Option<String>,
    /// Whether session tags are off.
    #[serde(default)]
    pub disable_session_tags: bool,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The idempotency token of the create request, if one was sent.
    #[serde(default)]
    pub client_request_token: Option<String>,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub modified_at: i64,
}
