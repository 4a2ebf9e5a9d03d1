//! wid: Kubernetes workload identity across GKE, EKS and AKS from a declarative plan.
//!
//! The pipeline: [`plan`] reads and validates TOML plans; [`model`] compiles them into
//! resources; the providers observe the live world; `wid_core::diff` computes changes;
//! [`engine`] executes them; [`output`] renders plans and reports; [`saved`] keeps a
//! reviewed plan to apply later. [`cli`] ties it together, one file per subcommand.

#![warn(clippy::print_stdout)]

pub mod cli;
pub mod clouds;
pub mod engine;
pub mod model;
pub mod output;
pub mod plan;
pub mod saved;
pub mod schema;
pub mod select;
pub mod session;

/// The generated plans of the scale benchmark, for the unit tests that read them.
#[cfg(test)]
#[path = "../tests/common/scale_plan.rs"]
#[allow(dead_code)]
pub(crate) mod scale_plan;
