//! The contract between wid's engine and its providers.
//!
//! Everything here is data, one trait and the call discipline every provider shares
//! ([`Bounds`] on calls and files, [`Calls`] for retried and paced reads); no cloud SDK
//! and no network I/O. The engine
//! (`wid`) compiles a plan into [`Resource`]s, asks each [`Provider`] to
//! [`observe`](Provider::observe) them, diffs desired against observed into [`Change`]s,
//! and hands each change back to its provider's [`apply`](Provider::apply). Providers never
//! diff: they normalize what they read so that the engine's one diff function is exact.

pub mod ahead;
mod attr_map;
mod body;
mod bounds;
mod calls;
mod change;
mod diff;
mod error;
mod id;
pub mod import;
mod issue;
mod json_text;
pub mod names;
mod provider;
mod resource;
mod serde_exact;

pub use attr_map::AttrMap;
pub use body::{BodyLimit, BoundedBody};
pub use bounds::{
    Bounds, MAX_REFERENCED_FILE_BYTES, MAX_RETRY_AFTER, human_duration, parse_duration,
    parse_retry_after, read_referenced_file,
};
pub use calls::{Calls, Limits, Pace, PacePermit, RetryPolicy};
pub use change::{AttrChange, AttrChangeRef, Change, ChangeKind, Reason};
pub use diff::{Wanted, diff, resolve_observed};
pub use error::{ErrorKind, ProviderError};
pub use id::ResourceId;
pub use issue::FieldIssue;
pub use json_text::{JsonText, write_string};
pub use provider::{CallCounter, CallGuard, Outputs, Owner, Preflight, Provider, ReadAhead};
pub use resource::{
    AppliedRecord, AttrValue, Attrs, Contribution, Mode, Observed, ObservedAttrs, ObservedResource,
    Ownership, Resource, WorkloadRef, applied_hash,
};

/// The label (Kubernetes) or tag (clouds) that marks an object as created by wid.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_KEY`] on objects wid manages.
pub const MANAGED_BY_VALUE: &str = "wid";
/// The label or tag that names the plan (the ownership scope) an object belongs to.
pub const PLAN_KEY: &str = "wid.dev/plan";
/// The annotation or tag holding the [`applied_hash`] of what wid last applied.
pub const APPLIED_KEY: &str = "wid.dev/applied";
