//! wid's AWS provider: IRSA (the IAM OIDC provider for a cluster's issuer, a role whose
//! trust policy names the KSA, its policies and tags, the KSA's `eks.amazonaws.com/role-arn`
//! annotation) and EKS Pod Identity (a role trusting `pods.eks.amazonaws.com` and the
//! association of a KSA with it).
//!
//! - [`block`]: the plan's `aws` block and its checks; [`compile`]: blocks to resources.
//! - [`policy`]: policy documents as data (normalization, trust policies).
//! - [`AwsProvider`]: observe and apply through aws-sdk-rust, one client set per account.

mod ahead;
mod apply_other;
mod apply_role;
pub mod block;
mod bounded;
mod client;
pub mod compile;
mod error;
pub mod ids;
mod import;
mod import_trust;
mod observe;
mod observe_bulk;
mod observe_other;
pub mod policy;
mod provider;
mod reads;
mod record;
mod role_calls;
mod tag_keys;
mod trust;

pub use block::{AwsBlock, EksCluster, FieldIssue, InlinePolicy, Mechanism, validate_block};
pub use client::{AwsOptions, AwsProvider};
pub use compile::{AwsWorkload, CompileOptions, Compiled, compile, compile_with};
pub use policy::{normalize_policy, trust_policy_irsa};
