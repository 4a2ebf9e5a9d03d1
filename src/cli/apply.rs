//! `wid apply PATH`: print the plan, ask, apply it, and report. `wid destroy PATH` shares
//! all of it, with a plan that deletes everything the plan owns.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

pub use super::apply_report::{ReportFormat, emit_report};
use super::validate::load_checked;
use super::{CliError, ColorChoice, ExitCode, TargetArgs};
use crate::engine::Report;
use crate::engine::{RetryPolicy, execute};
use crate::output::{self, ApplyProgress};
use crate::session::{PlanMode, Session};

/// Arguments of `wid apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file, a directory of *.toml plan files, or a plan saved by `wid plan --out`
    /// (recognized by its content), which is applied exactly, without a prompt, or refused
    /// if anything it was computed from changed.
    pub path: PathBuf,
    /// Apply without asking. Required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,
    /// Also delete objects this plan created that left the plan (listed in the plan first).
    #[arg(long)]
    pub prune: bool,
    /// Output format of the report.
    #[arg(long, short, value_enum, default_value_t = ReportFormat::Human)]
    pub output: ReportFormat,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Arguments of `wid destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// A plan file or a directory of *.toml plan files: its `name` is the ownership scope,
    /// and its clusters, accounts and profiles are where wid looks.
    pub path: PathBuf,
    /// Destroy without asking. Required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Runs `wid apply`.
pub async fn run(args: ApplyArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    if let Some(saved) = crate::saved::SavedPlan::detect(&args.path)? {
        return super::apply_saved::run(saved, &args.path, &args, color).await;
    }
    let mode = PlanMode::Apply { prune: args.prune };
    apply(
        &args.path,
        mode,
        args.auto_approve,
        &args.target,
        args.output,
        color,
    )
    .await
}

/// Runs `wid destroy`.
pub async fn destroy(args: DestroyArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    apply(
        &args.path,
        PlanMode::Destroy,
        args.auto_approve,
        &args.target,
        ReportFormat::Human,
        color,
    )
    .await
}

async fn apply(
    path: &std::path::Path,
    mode: PlanMode,
    auto_approve: bool,
    target: &TargetArgs,
    format: ReportFormat,
    color: ColorChoice,
) -> Result<ExitCode, CliError> {
    let interactive = std::io::stdin().is_terminal();
    if !auto_approve && !interactive {
        return Err(CliError::Usage(
            "refusing to apply without confirmation: stdin is not a terminal; review `wid plan` and pass --auto-approve".into(),
        ));
    }
    let plan = load_checked(path)?;
    let session = Session::open(plan, &target.target()?).await?;
    let planned = session.plan(mode).await?;
    let style = color.style(false);
    let summary = output::Summary::of(&planned.changes);
    output::warn(&planned.warnings, color.style(true));
    let plan_text =
        output::render_plan(&session.plan.name, &planned, session.counter.total(), style);
    if format == ReportFormat::Json {
        output::emit_stderr(&plan_text);
    } else {
        output::emit(&plan_text);
    }
    if summary.conflict > 0 {
        return Err(CliError::Conflicts(summary.conflict));
    }
    if !summary.pending() {
        if format == ReportFormat::Json {
            emit_report(&session, &Report::default(), format, style)?;
        }
        return Ok(ExitCode::Success);
    }
    let question = match mode {
        PlanMode::Destroy => "Destroy everything listed above?",
        PlanMode::Apply { .. } => "Apply these changes?",
    };
    if !auto_approve && !confirm(question)? {
        return Err(CliError::Cancelled);
    }
    let progress = ApplyProgress::stderr(color.style(true));
    let report = execute(
        &session.providers,
        &planned.changes,
        &session.owner(mode.prunes()),
        &RetryPolicy::default(),
        &progress,
    )
    .await;
    session.flush_sandbox()?;
    emit_report(&session, &report, format, style)?;
    let (_, failed, skipped) = report.counts();
    if failed + skipped > 0 {
        return Err(CliError::Incomplete { failed, skipped });
    }
    Ok(ExitCode::Success)
}

fn confirm(question: &str) -> Result<bool, CliError> {
    let mut err = std::io::stderr();
    let _ = write!(err, "\n{question} Only 'yes' is accepted: ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Io(format!("failed to read the answer: {e}")))?;
    Ok(answer.trim() == "yes")
}
