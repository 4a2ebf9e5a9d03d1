//! `wid apply PATH`: print the plan, ask, apply it, and report. `wid destroy PATH` shares
//! all of it, with a plan that deletes everything the plan owns.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

pub use super::apply_report::{ReportFormat, emit_report};
use super::validate::load_checked;
use super::{CliError, ColorChoice, Control, ExitCode, RunArgs, TargetArgs};
use crate::engine::{ExecuteOptions, Outcome, Report, StopReason, execute_scoped};
use crate::output::{self, ApplyProgress};
use crate::session::{PlanMode, Planned, Session};

/// Arguments of `wid apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file, a directory of *.toml plan files, or a plan saved by `wid plan --out`
    /// (recognized by its content), which is applied exactly, without a prompt, or refused
    /// if anything it was computed from changed.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Apply without asking. Required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,
    /// Also delete objects this plan created that left the plan (listed in the plan first).
    #[arg(long)]
    pub prune: bool,
    /// Apply only the cloud side (IAM roles, service accounts, managed identities) and
    /// leave Kubernetes objects to a GitOps controller applying `wid render`'s output.
    #[arg(long)]
    pub cloud_only: bool,
    /// Allow deleting more than half of a scope's objects when that is more than 10
    /// (with --prune); without it such an apply is refused before any write.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Output format of the report.
    #[arg(long, short, value_enum, default_value_t = ReportFormat::Human)]
    pub output: ReportFormat,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub contexts: super::ContextArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Arguments of `wid destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// A plan file or a directory of *.toml plan files: its `name` is the ownership scope,
    /// and its clusters, accounts and profiles are where wid looks.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Destroy without asking. Required when stdin is not a terminal. Destroy deletes
    /// everything by definition, so the mass-delete guard of `apply --prune` does not
    /// apply to it; the listing and the confirmation are the guard.
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub contexts: super::ContextArgs,
    #[command(flatten)]
    pub run: RunArgs,
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
        (args.auto_approve, args.allow_mass_delete, args.cloud_only),
        (&args.target, &args.contexts, &args.run),
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
        (args.auto_approve, true, false),
        (&args.target, &args.contexts, &args.run),
        ReportFormat::Human,
        color,
    )
    .await
}

async fn apply(
    path: &std::path::Path,
    mode: PlanMode,
    (auto_approve, allow_mass_delete, cloud_only): (bool, bool, bool),
    (target, contexts, run): (&TargetArgs, &super::ContextArgs, &RunArgs),
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
    let mut target = target.target()?;
    contexts.apply_to(&mut target)?;
    run.apply_to(&mut target);
    let control = Control::install(run.timeout);
    let mut session = control
        .step("plan", Session::open(plan, &target), Vec::new)
        .await?;
    super::run::select(&mut session, &run.targets)?;
    session.cloud_only = cloud_only;
    session.stop = Some(control.stop().clone());
    let planned = control
        .step("plan", session.plan(mode), || session.counter.waiting_on())
        .await?;
    super::run::note_selection(&session, &planned);
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
    check_mass_delete(&planned, mode, allow_mass_delete)?;
    if !summary.pending() {
        // The sandbox's call counters reach its directory before wid exits.
        session.flush_sandbox()?;
        if format == ReportFormat::Json {
            emit_report(&session, &Report::default(), format, style)?;
        }
        return Ok(ExitCode::Success);
    }
    let question = match mode {
        PlanMode::Destroy => "Destroy everything listed above?",
        PlanMode::Apply { .. } => "Apply these changes?",
    };
    if !auto_approve {
        let answer = tokio::task::spawn_blocking(move || confirm(question));
        let answer = control
            .step(
                "the confirmation prompt",
                async {
                    answer
                        .await
                        .map_err(|e| CliError::Io(format!("failed to read the answer: {e}")))?
                },
                Vec::new,
            )
            .await?;
        if !answer {
            return Err(CliError::Cancelled);
        }
    }
    run_changes(
        &session,
        &planned,
        &planned.changes,
        mode,
        &control,
        (format, color),
    )
    .await
}

/// Runs the approved `changes`, prints the report, and turns a stop or a failure into
/// the exit it calls for.
pub(super) async fn run_changes(
    session: &Session,
    planned: &Planned,
    changes: &[wid_core::Change],
    mode: PlanMode,
    control: &Control,
    (format, color): (ReportFormat, ColorChoice),
) -> Result<ExitCode, CliError> {
    let progress = ApplyProgress::stderr(color.style(true));
    let options = ExecuteOptions {
        retry: session.limits.retry.clone(),
        parallelism: session.limits.parallelism,
        stop: Some(control.stop().clone()),
    };
    let report = execute_scoped(
        &session.providers,
        changes,
        &session.owners(planned, mode.prunes()),
        &options,
        &progress,
    )
    .await;
    session.flush_sandbox()?;
    emit_report(session, &report, format, color.style(false))?;
    match report.stopped {
        Some(StopReason::Interrupted) => return Err(CliError::Interrupted("apply")),
        Some(StopReason::TimedOut(_)) => {
            let abandoned = report
                .steps
                .iter()
                .filter(|s| matches!(s.outcome, Outcome::Abandoned))
                .map(|s| s.id.to_string())
                .collect();
            return Err(control.stopped("apply", abandoned));
        }
        None => {}
    }
    let (_, failed, skipped) = report.counts();
    if failed + skipped > 0 {
        return Err(CliError::Incomplete { failed, skipped });
    }
    if !report.errors.is_empty() {
        return Err(CliError::AfterRun(report.errors.len()));
    }
    Ok(ExitCode::Success)
}

/// Refuses, before any write, a plan that deletes more than the guard allows in some
/// scope (see [`Planned::mass_deletes`]), unless `allow` (`--allow-mass-delete`). Destroy
/// is exempt: deleting everything is what it is asked for.
pub(super) fn check_mass_delete(
    planned: &Planned,
    mode: PlanMode,
    allow: bool,
) -> Result<(), CliError> {
    if allow || mode == PlanMode::Destroy {
        return Ok(());
    }
    let over = planned.mass_deletes();
    if over.is_empty() {
        Ok(())
    } else {
        Err(CliError::MassDelete(over))
    }
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
