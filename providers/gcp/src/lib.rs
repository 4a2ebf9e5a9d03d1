//! wid's GCP provider: GKE Workload Identity.
//!
//! - Impersonate mode: a Google service account (created and owned by wid, or existing),
//!   the `roles/iam.workloadIdentityUser` binding on it for the KSA's member in the
//!   cluster's project pool, the account's role bindings, and the KSA annotation
//!   `iam.gke.io/gcp-service-account`.
//! - Direct mode (Workload Identity Federation for GKE): roles granted to the KSA's
//!   `principal://` identifier, no service account.
//!
//! Modules: [`block`] (the plan's `gcp` block and its checks), [`compile`] (blocks to
//! resources, pure), [`names`] (the exact strings), [`record`] (ownership marks and the
//! record of bindings wid added).

pub mod block;
pub mod compile;
pub mod ids;
pub mod names;
pub mod record;

pub use block::{GcpBlock, RoleGrant, RoleOn, Target, validate_block};
pub use compile::{Compiled, GcpWorkload, GkeCluster, compile};
mod bindings;
mod client;
mod error;
mod import;

pub use client::{Endpoints, GcpOptions, GcpProvider};
mod apply_account;
mod apply_policy;
mod observe;
mod preflight;
mod provider;
mod record_run;
