//! Injected faults and latency, matched by API name (`iam:CreateRole`,
//! `k8s:patch serviceaccounts`, `azure:federatedIdentityCredentials.createOrUpdate`).

use serde::{Deserialize, Serialize};

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum FaultAction {
    /// Answer as the real API answers when it throttles (IAM `Throttling` 400, EKS
    /// `ThrottlingException` 429, Kubernetes 429 with Retry-After, ARM 429
    /// `SubscriptionRequestsThrottled` with Retry-After).
    Throttle,
    /// Answer 500 / `ServiceFailure` / InternalError.
    ServerError,
    /// Answer 409 conflict (Kubernetes `Conflict`, IAM `ConcurrentModification`, ARM's
    /// concurrent FIC writes error on federated credential writes).
    Conflict,
    /// Wait this many milliseconds, then serve normally.
    Latency {
        /// Milliseconds to wait.
        ms: u64,
    },
}

/// One fault rule: requests whose API name starts with `api` get `action`, `times` times
/// (for ever when `times` is absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// API name prefix to match, e.g. `iam:CreateRole`, `iam:` or `k8s:apply`.
    pub api: String,
    /// What to do.
    #[serde(flatten)]
    pub action: FaultAction,
    /// How many matching requests are affected; `None` for all.
    #[serde(default)]
    pub times: Option<u32>,
}
