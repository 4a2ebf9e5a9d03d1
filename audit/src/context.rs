//! Inputs beside the snapshot: the policy knobs, what the wid plan expects of the audited
//! cluster, and cloud-side trust facts. All optional; the CLI fills what it can (the plan
//! with `--plan`, AWS trust where the AWS provider exists). They deserialize from JSON
//! (snake_case field names) so fixtures and the CLI can state them as data.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Tunable thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Longest acceptable `expirationSeconds` of a projected token (API minimum is 600).
    pub max_token_expiration_seconds: i64,
}

impl Default for Policy {
    fn default() -> Self {
        // One hour: the API's own default, and what the Azure webhook injects.
        Policy {
            max_token_expiration_seconds: 3600,
        }
    }
}

/// Which identity annotations the plan writes on which KSA of the audited cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expected {
    /// One entry per plan workload on this cluster.
    pub workloads: Vec<ExpectedWorkload>,
}

/// One plan workload: the KSA and the annotations wid writes on it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedWorkload {
    /// The plan's cluster name (informational; the CLI passes only the audited cluster's).
    pub cluster: String,
    /// KSA namespace.
    pub namespace: String,
    /// KSA name.
    pub service_account: String,
    /// Annotation key to value, e.g. `eks.amazonaws.com/role-arn` to the role ARN. Empty
    /// for workloads that need no annotation (EKS Pod Identity).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Cloud-side facts about the identities KSAs point at.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudTrust {
    /// IAM roles read from AWS, with their trust policy documents.
    pub aws_roles: Vec<AwsRoleTrust>,
    /// Role ARNs the CLI looked up and AWS said do not exist.
    pub aws_missing_roles: Vec<String>,
    /// IAM bindings on Google service accounts (from `getIamPolicy` on each GSA).
    pub gcp_bindings: Vec<GcpSaBinding>,
}

/// One IAM role and its trust (assume-role) policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsRoleTrust {
    /// The role ARN.
    pub role_arn: String,
    /// The decoded trust policy document.
    pub trust_policy: serde_json::Value,
}

/// One binding in a Google service account's IAM policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpSaBinding {
    /// The GSA e-mail.
    pub service_account: String,
    /// The role, e.g. `roles/iam.workloadIdentityUser`.
    pub role: String,
    /// The members, e.g. `serviceAccount:P.svc.id.goog[ns/ksa]` or `principalSet://…`.
    pub members: Vec<String>,
}

/// Everything a check may read besides the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Context {
    /// Thresholds.
    pub policy: Policy,
    /// The plan's expectations; `None` when no `--plan` was given.
    pub expected: Option<Expected>,
    /// Cloud trust facts; empty when no provider could be asked.
    pub cloud: CloudTrust,
}
