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

/// Every `.toml` file under `examples/`, for the unit tests that read them all.
#[cfg(test)]
pub(crate) fn example_plan_files() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).expect("examples").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    out
}
