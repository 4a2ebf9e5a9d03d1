//! Saved plans: `wid plan PATH --out FILE` writes one, `wid apply FILE` applies exactly
//! its changes, and `wid show FILE` prints it again.
//!
//! A saved plan is a versioned JSON document ([`SavedPlan`]) recording the changes as
//! computed, what they were computed from (a digest of every plan file and of every file
//! a plan file names, and the target: sandbox or real, endpoint overrides, prune), and a
//! fingerprint of every live object the diff read. Applying it re-reads all of that and
//! refuses, naming what changed, unless every part is as it was: files by digest, live
//! objects attribute by attribute, and finally the recomputed changes against the saved
//! ones. Nothing is guessed, and nothing is applied when it refuses.
//!
//! The file holds no secret: plan names, resource ids, attribute values wid manages
//! (annotations, labels, policies, tags), ownership marks and applied-record hashes,
//! file paths and SHA-256 digests, the sandbox directory and endpoint URL. Credentials,
//! tokens and kubeconfig contents never enter it.

mod digest;
mod document;
mod verify;

pub use digest::{FileChange, FileDigest, FileRole, digests};
pub use document::{
    KIND, LiveState, SAVED_FORMAT_VERSION, SavedOptions, SavedPlan, SavedPreflight, SavedTarget,
    Source, fingerprint,
};
pub use verify::{Stale, check_files, check_target, check_world};
