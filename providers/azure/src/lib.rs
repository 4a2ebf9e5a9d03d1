//! wid's Azure provider: Microsoft Entra Workload ID on AKS. A user-assigned managed
//! identity, one federated identity credential per KSA trusting the cluster's OIDC
//! issuer, the identity's role assignments, and the KSA annotations
//! `azure.workload.identity/client-id` and `…/tenant-id`.
//!
//! - [`block`]: the plan's `azure` block and its checks; [`compile`]: blocks to resources.
//! - [`names`]: Azure's name rules and the names wid derives.
//! - [`AzureProvider`]: preflight, observe and apply through Azure Resource Manager with
//!   azure_core's pipeline and pinned api-versions (there are no management crates for
//!   Microsoft.ManagedIdentity and Microsoft.Authorization).

// ProviderError carries the resource, operation, hint and detail every message needs;
// boxing it would only move the allocation.
#![allow(clippy::result_large_err)]

mod apply;
pub mod block;
mod bounded;
mod client;
pub mod compile;
mod credential;
mod error;
pub mod ids;
mod import;
pub mod names;
mod observe;
mod observe_bulk;
mod preflight;
mod provider;
pub mod record;
mod roles;

pub use block::{AksCluster, AzureBlock, FieldIssue, RoleAssignment, validate_block};
pub use client::{
    ARM, AUTHORIZATION_API, AzureOptions, AzureProvider, CONTAINER_SERVICE_API, MSI_API,
    RESOURCES_API,
};
pub use compile::{AzureWorkload, Compiled, compile, location_fact};
pub use credential::NO_CREDENTIALS;
pub use observe::assignment_description;
