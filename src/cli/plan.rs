//! `wid plan PATH`: read the live state and print what apply would change.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::validate::load_checked;
use super::{CliError, ColorChoice, Control, ExitCode, RunArgs, TargetArgs};
use crate::output;
use crate::session::{PlanMode, Session};

/// `--output`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// Grouped by workload, with attribute before → after.
    Human,
    /// The versioned JSON document described by schema/plan-output.schema.json.
    Json,
}

/// Arguments of `wid plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A plan file or a directory of *.toml plan files.
    pub path: PathBuf,
    /// Exit 2 when changes are pending (drift gate for CI), 0 when there are none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Also list the deletion of objects this plan created that left the plan.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Runs `wid plan`.
pub async fn run(args: PlanArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    let plan = load_checked(&args.path)?;
    let mut target = args.target.target()?;
    args.run.apply_to(&mut target);
    let control = Control::install(args.run.timeout);
    let session = control
        .step("plan", Session::open(plan, &target), Vec::new)
        .await?;
    let planned = control
        .step(
            "plan",
            session.plan(PlanMode::Apply { prune: args.prune }),
            || session.counter.waiting_on(),
        )
        .await?;
    crate::output::warn(&planned.warnings, color.style(true));
    let calls = session.counter.snapshot();
    let summary = output::Summary::of(&planned.changes);
    let text = match args.output {
        OutputFormat::Human => output::render_plan(
            &session.plan.name,
            &planned,
            session.counter.total(),
            color.style(false),
        ),
        OutputFormat::Json => {
            let doc = output::plan_document(&session.plan.name, &planned, &calls);
            let mut s =
                serde_json::to_string_pretty(&doc).map_err(|e| CliError::Io(e.to_string()))?;
            s.push('\n');
            s
        }
    };
    crate::output::emit(&text);
    if summary.conflict > 0 {
        return Err(CliError::Conflicts(summary.conflict));
    }
    Ok(if args.detailed_exitcode && summary.pending() {
        ExitCode::Pending
    } else {
        ExitCode::Success
    })
}
