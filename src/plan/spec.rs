//! The plan file's schema: the serde types a TOML plan deserializes into.
//!
//! These types are the source of truth for `schema/plan.schema.json`. Each doc comment
//! becomes the field's description in editors. Unknown keys are rejected everywhere.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// A wid plan file. A directory of `*.toml` files is read as one plan; files that name
/// different scopes are one team each, sharing the directory's clusters.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("dependentRequired" = { "workload": ["name"] }))]
pub struct PlanFile {
    /// The plan format version. Always 1.
    pub version: u32,
    /// The ownership scope (a team): every object wid creates for the workloads of this
    /// file is marked with it, and `--prune` only ever deletes objects that carry it.
    /// Required in a file that declares workloads; the files of a directory may name
    /// different scopes. A file of clusters and settings only may leave it out: they are
    /// shared by every scope of the directory.
    #[serde(default)]
    pub name: Option<String>,
    /// Clusters by name. The name identifies the cluster in resource ids and in the
    /// sandbox's kubeconfig; against real clusters wid uses the cluster's `context`, or the
    /// current context when it has none.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterSpec>,
    /// AWS settings shared by every workload.
    #[serde(default)]
    pub aws: Option<AwsSettings>,
    /// Workloads: one Kubernetes service account each, with the cloud identity it may use.
    #[serde(default, rename = "workload")]
    pub workloads: Vec<WorkloadSpec>,
}

/// A cluster's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    /// Google Kubernetes Engine (workload pool `PROJECT.svc.id.goog`).
    Gke,
    /// Amazon EKS (IRSA or EKS Pod Identity).
    Eks,
    /// Azure Kubernetes Service (federated credentials on managed identities).
    Aks,
    /// Any conformant cluster; cloud identity needs an explicit `issuer`.
    Generic,
}

impl ClusterKind {
    /// The kind as written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gke => "gke",
            Self::Eks => "eks",
            Self::Aks => "aks",
            Self::Generic => "generic",
        }
    }
}

/// One cluster. Which of the cloud fields apply depends on `kind`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// gke | eks | aks | generic.
    pub kind: ClusterKind,
    /// The kubeconfig context to use. Default: the current context.
    #[serde(default)]
    pub context: Option<String>,
    /// A kubeconfig file, relative to the plan file. Default: `$KUBECONFIG` or
    /// `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// Create namespaces the plan uses that do not exist (otherwise a missing namespace is
    /// an error at plan time).
    #[serde(default)]
    pub create_namespaces: bool,
    /// Set `automountServiceAccountToken: false` on the `default` service account of every
    /// namespace the plan touches in this cluster. wid owns only that field.
    #[serde(default)]
    pub harden_default_service_accounts: bool,
    /// The cluster's OIDC issuer URL (`https://...`). eks and aks: discovered from the
    /// cloud when unset.
    #[serde(default)]
    pub issuer: Option<String>,
    /// eks, aks, gke: the cluster's name in its cloud.
    #[serde(default)]
    pub name: Option<String>,
    /// eks: the 12-digit AWS account that holds the cluster.
    #[serde(default)]
    pub account: Option<String>,
    /// eks: the AWS region, e.g. `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// gke: the project id (the workload pool is `PROJECT.svc.id.goog`).
    #[serde(default)]
    pub project: Option<String>,
    /// gke: the project number (used in principal identifiers); looked up with
    /// Resource Manager when unset.
    #[serde(default)]
    pub project_number: Option<String>,
    /// gke: the cluster's location (region or zone).
    #[serde(default)]
    pub location: Option<String>,
    /// aks: the subscription id (a GUID).
    #[serde(default)]
    pub subscription: Option<String>,
    /// aks: the resource group of the managed cluster.
    #[serde(default)]
    pub resource_group: Option<String>,
    /// aks: the Microsoft Entra tenant (a GUID) of the subscription; written on the KSA
    /// as `azure.workload.identity/tenant-id`.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// AWS settings for the whole plan.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Named profiles to use per account id, for roles in accounts other than the
    /// default credentials' (cross-account roles).
    #[serde(default)]
    pub profiles: BTreeMap<String, String>,
    /// The IAM role trust policy size limit (characters without whitespace) of your
    /// accounts: 2048 by default; raise it here after raising the quota (L-C07B4B0D,
    /// at most 8192).
    #[serde(default)]
    pub trust_policy_limit: Option<usize>,
}

/// One workload: a Kubernetes service account and what it may act as.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// The cluster, by its name in `[clusters]`.
    pub cluster: String,
    /// The namespace of the service account.
    pub namespace: String,
    /// The Kubernetes service account's name.
    pub service_account: String,
    /// Labels to set on the service account (others' labels are left alone).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations to set on the service account (others' annotations are left alone).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Mount the service account's API token into pods by default. Default false: most
    /// workloads never call the Kubernetes API.
    #[serde(default)]
    pub automount_token: bool,
    /// Manage a service account that exists but was not created by wid (otherwise that is
    /// a conflict).
    #[serde(default)]
    pub adopt: bool,
    /// Kubernetes RBAC: a dedicated Role and RoleBinding for this service account.
    #[serde(default)]
    pub kubernetes: Option<wid_kubernetes::KubernetesBlock>,
    // The cloud blocks are boxed: a workload sets one, and entries holding all three
    // inline took 4 MB more at 10,000 workloads.
    /// AWS: IRSA or EKS Pod Identity.
    #[serde(default)]
    pub aws: Option<Box<wid_aws::AwsBlock>>,
    /// GKE Workload Identity: a Google service account the KSA impersonates, or roles
    /// granted to the KSA itself (`direct = true`).
    #[serde(default)]
    pub gcp: Option<Box<wid_gcp::GcpBlock>>,
    /// Azure: Microsoft Entra Workload ID on AKS (a managed identity federated with the
    /// KSA, and its role assignments).
    #[serde(default)]
    pub azure: Option<Box<wid_azure::AzureBlock>>,
}
