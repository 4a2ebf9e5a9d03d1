//! `wid apply PATH`: print the plan, ask, apply it, and report.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::validate::load_checked;
use super::{CliError, ColorChoice, ExitCode, TargetArgs};
use crate::engine::{RetryPolicy, execute};
use crate::output::{self, ApplyProgress};
use crate::session::Session;

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

/// Runs `wid apply`.
pub async fn run(args: ApplyArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    let interactive = std::io::stdin().is_terminal();
    if !args.auto_approve && !interactive {
        return Err(CliError::Usage(
            "refusing to apply without confirmation: stdin is not a terminal; review `wid plan` and pass --auto-approve".into(),
        ));
    }
    let plan = load_checked(&args.path)?;
    let session = Session::open(plan, &args.target.target()?).await?;
    let planned = session.plan(args.prune).await?;
    let style = color.style(false);
    let summary = output::Summary::of(&planned.changes);
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
    if !args.auto_approve && !confirm()? {
        output::emit("Apply cancelled; nothing was changed.\n");
        return Ok(ExitCode::Success);
    }
    let progress = ApplyProgress::stderr(color.style(true));
    let report = execute(
        &session.providers,
        &planned.changes,
        &session.owner(args.prune),
        &RetryPolicy::default(),
        &progress,
    )
    .await;
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

fn confirm() -> Result<bool, CliError> {
    let mut err = std::io::stderr();
    let _ = write!(err, "\nApply these changes? Only 'yes' is accepted: ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Io(format!("failed to read the answer: {e}")))?;
    Ok(answer.trim() == "yes")
}
