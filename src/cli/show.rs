//! `wid show PLANFILE`: print a plan saved by `wid plan --out` again, in any plan output
//! format. Reads only the file: no plan files, no API call.

use std::path::PathBuf;

use clap::Args;

use super::plan::{OutputFormat, render};
use super::{CliError, ColorChoice, ExitCode};
use crate::output::{self, PlanView};
use crate::saved::SavedPlan;

/// Arguments of `wid show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved with `wid plan PATH --out FILE`.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

/// Runs `wid show`.
pub fn run(args: ShowArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    let saved = SavedPlan::read(&args.file)?;
    let planned = saved.planned();
    let view = PlanView {
        plan: &saved.plan,
        planned: &planned,
        places: &saved.places,
        calls: &saved.api_calls_by_operation,
    };
    let mut text = String::new();
    if args.output == OutputFormat::Human {
        text.push_str(&output::render_saved_header(&saved, color.style(false)));
    }
    text.push_str(&render(&view, args.output, color)?);
    output::emit(&text);
    Ok(ExitCode::Success)
}
