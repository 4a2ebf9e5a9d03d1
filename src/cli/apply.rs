//! `wid apply PATH`: print the plan, ask, apply it, and report. `wid destroy PATH` shares
//! all of it, with a plan that deletes everything the plan owns.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::validate::load_checked;
use super::{CliError, ColorChoice, ExitCode, TargetArgs};
use crate::engine::{RetryPolicy, execute};
use crate::output::{self, ApplyProgress};
use crate::session::{PlanMode, Session};

/// Arguments of `wid apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file or a directory of *.toml plan files.
    pub path: PathBuf,
    /// Apply without asking. Required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,
    /// Also delete objects this plan created that left the plan (listed in the plan first).
    #[arg(long)]
    pub prune: bool,
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
    let mode = PlanMode::Apply { prune: args.prune };
    apply(&args.path, mode, args.auto_approve, &args.target, color).await
}

/// Runs `wid destroy`.
pub async fn destroy(args: DestroyArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    apply(
        &args.path,
        PlanMode::Destroy,
        args.auto_approve,
        &args.target,
        color,
    )
    .await
}

async fn apply(
    path: &std::path::Path,
    mode: PlanMode,
    auto_approve: bool,
    target: &TargetArgs,
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
    output::emit(&output::render_plan(
        &session.plan.name,
        &planned,
        session.counter.total(),
        style,
    ));
    if summary.conflict > 0 {
        return Err(CliError::Conflicts(summary.conflict));
    }
    if !summary.pending() {
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
    output::emit(&output::render_report(
        &report,
        session.counter.total(),
        style,
    ));
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
