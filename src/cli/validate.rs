//! `wid validate PATH`: parse and check a plan with no network call.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, ColorChoice, ExitCode};
use crate::model;
use crate::plan;

/// Arguments of `wid validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A plan file or a directory of *.toml plan files.
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

/// Loads and validates the plan, including the checks that need the compiled resources
/// (shared roles, IAM trust size), without calling any API.
pub fn load_checked(path: &std::path::Path) -> Result<plan::Plan, CliError> {
    let plan = plan::load(path).map_err(CliError::Plan)?;
    model::compile_scopes(&plan, &model::offline(&plan)).map_err(CliError::Plan)?;
    Ok(plan)
}

/// Runs `wid validate`.
pub fn run(args: ValidateArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    let plan = load_checked(&args.path)?;
    let style = color.style(false);
    crate::output::emit(&format!(
        "{} plan {:?}: {} cluster(s), {} workload(s)\n",
        style.green("valid"),
        plan.name,
        plan.clusters.len(),
        plan.workloads.len()
    ));
    Ok(ExitCode::Success)
}
