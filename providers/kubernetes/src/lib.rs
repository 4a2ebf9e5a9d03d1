//! wid's Kubernetes provider: the cluster half of workload identity and the hardening
//! practices around it.
//!
//! - [`KubernetesBlock`]: the workload's `kubernetes` plan block (RBAC rules).
//! - [`compile`]: pure, from the plan's KSAs to resources — dedicated KSAs with
//!   `automountServiceAccountToken: false` by default, a `wid-<KSA>` Role and RoleBinding
//!   from the rules, namespaces when the cluster creates them, and the `default` SA's
//!   automount flag in every namespace the plan touches when the cluster hardens them.
//! - [`manifests`]: pure, the objects apply would send, for GitOps (`wid render`).
//! - [`KubernetesProvider`]: observe with a handful of LISTs, apply with server-side apply
//!   under the field manager `wid`, delete with uid/resourceVersion preconditions, and
//!   TokenRequest.
//!
//! Ownership marks (`app.kubernetes.io/managed-by: wid`, `wid.dev/plan: <plan>`) and the
//! `wid.dev/applied` annotation (the hash of the attributes wid last applied, which lets
//! the diff tell drift from a plan change) are added on apply and in rendered manifests,
//! except on objects wid does not own (`Mode::Fields`), and read on observe; they are never
//! attributes, so they never diff.

// `ProviderError` is the provider contract's error type (wid-core), returned by value by
// every provider; boxing it here alone would only add conversions at the trait boundary.
#![allow(clippy::result_large_err)]

mod block;
mod bounded;
mod compile;
mod errors;
pub mod import;
mod kinds;
mod live;
mod observe;
mod provider;
mod render;
mod token;

pub use block::{KNOWN_VERBS, KubernetesBlock, PolicyRule, RuleIssue, rule_notes, validate_rules};
pub use compile::{
    ClusterOptions, KsaKey, KsaSpec, compile, default_sa_id, ids, list_ids, namespace_id,
    normalize_rules, object_id, role_name,
};
pub use kinds::{AUTOMOUNT, DEFAULT_SA, NAMESPACE, ROLE, ROLEBINDING, SERVICEACCOUNT};
pub use live::{FIELD_MANAGER, OwnedKeys, owned_keys, ownership};
pub use provider::{ClusterConn, KubernetesProvider};
pub use render::{manifests, notes};
pub use token::{IssuedToken, TokenOptions};
pub mod snapshot;
