//! The embedded sandbox: stateful emulators of exactly the API subsets wid calls, served
//! on loopback, so plans can be applied with no cluster and no cloud account.
//!
//! - Kubernetes: one HTTP server per declared cluster ([`k8s`]).
//! - Clouds: one HTTP server for every cloud API, told apart by path and form action:
//!   [`aws`] (IAM over the Query protocol, EKS over REST-JSON, STS) and [`gcp`] (IAM,
//!   Resource Manager and GKE over JSON, under `/gcp/…`).
//! - Azure Resource Manager ([`azure`]) on its own HTTPS server, with a CA generated once
//!   per sandbox directory, since Azure's SDKs send bearer tokens over TLS only.
//!
//! State lives in `DIR/state.json` (written after every change), per-API call counters in
//! `DIR/calls.json`, and faults to inject are read from `DIR/faults.json` at start or set
//! in-process with [`Sandbox::inject`]. This crate shares no code with the providers: an
//! emulator built from the client's own types would agree with the client's mistakes.

pub mod aws;
pub mod azure;
mod faults;
pub mod gcp;
mod injector;
pub mod k8s;
mod lock;
mod persist;
mod served;
mod server;
mod shared;
mod snapshot;
mod state;
mod wire;

pub use faults::{Fault, FaultAction, FaultRule, FaultsFile, LostAs, object_matches};
pub use injector::{Decision, RuleUse};
pub use persist::PersistStats;
pub use served::{Served, served};
pub use server::{Opened, Sandbox, SandboxError};
pub use shared::Shared;
pub use snapshot::{JsonChange, json_diff, read_state};
pub use state::{AksDecl, ClusterDecl, ClusterKind, EksDecl, GkeDecl, State};
