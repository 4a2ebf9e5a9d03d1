//! `wid plan PATH`: read the live state and print what apply would change; with `--out`,
//! save it for `wid apply PLANFILE`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::validate::load_checked;
use super::{CliError, ColorChoice, Control, ExitCode, RunArgs, TargetArgs};
use crate::output::{self, PlanView, markdown};
use crate::saved::{SavedOptions, SavedPlan, Source, digests};
use crate::session::{PlanMode, Session};

/// `--output` of `plan` and `show`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// Grouped by workload, with attribute before → after.
    Human,
    /// The versioned JSON document described by schema/plan-output.schema.json.
    Json,
    /// A compact pull-request comment (GitHub-flavoured markdown, under GitHub's size
    /// limit).
    Markdown,
    /// GitHub Actions workflow commands: annotations on the plan lines; the markdown is
    /// appended to $GITHUB_STEP_SUMMARY when it is set.
    Github,
}

/// Arguments of `wid plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A plan file or a directory of *.toml plan files.
    #[arg(default_value = ".")]
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
    /// Plan only the cloud side (IAM roles, service accounts, managed identities), for
    /// clusters whose KSAs a GitOps controller applies from `wid render`: no Kubernetes
    /// object is read or listed, so the drift gate agrees with `apply --cloud-only`.
    #[arg(long)]
    pub cloud_only: bool,
    /// Record in the saved plan (--out) that deletes over the mass-delete guard (more
    /// than half of a scope's objects, and more than 10) are intended, so that
    /// `wid apply FILE` runs them. Without it the plan warns and apply refuses.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Save the plan to FILE for `wid apply FILE`, which applies exactly these changes and
    /// refuses if the plan files or the live objects read change in between. Not written
    /// when the plan has conflicts.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub contexts: super::ContextArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Runs `wid plan`.
pub async fn run(args: PlanArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    let plan = load_checked(&args.path)?;
    let mut target = args.target.target()?;
    args.contexts.apply_to(&mut target)?;
    args.run.apply_to(&mut target);
    let control = Control::install(args.run.timeout);
    let mut session = control
        .step("plan", Session::open(plan, &target), Vec::new)
        .await?;
    super::run::select(&mut session, &args.run.targets)?;
    session.cloud_only = args.cloud_only;
    session.stop = Some(control.stop().clone());
    let planned = control
        .step(
            "plan",
            session.plan(PlanMode::Apply { prune: args.prune }),
            || session.counter.waiting_on(),
        )
        .await?;
    super::run::note_selection(&session, &planned);
    // The sandbox's call counters reach its directory before the output does.
    session.flush_sandbox()?;
    crate::output::warn(&planned.warnings, color.style(true));
    if !args.allow_mass_delete
        && let Err(e) =
            super::apply::check_mass_delete(&planned, PlanMode::Apply { prune: args.prune }, false)
    {
        crate::output::warn(
            &[format!("apply will refuse this plan: {e}")],
            color.style(true),
        );
    }
    let calls = session.counter.snapshot();
    let summary = output::Summary::of(&planned.changes);
    let places = output::places(&session.plan);
    let view = PlanView {
        plan: &session.plan.name,
        planned: &planned,
        places: &places,
        calls: &calls,
    };
    crate::output::emit(&render(&view, args.output, color)?);
    if summary.conflict > 0 {
        if let Some(out) = &args.out {
            output::emit_stderr(&format!(
                "no plan saved to {}: conflicts block this plan\n",
                out.display()
            ));
        }
        return Err(CliError::Conflicts(summary.conflict));
    }
    if let Some(out) = &args.out {
        let source = Source {
            path: args.path.display().to_string(),
            files: digests(&session.plan, &args.path)?,
        };
        let options = SavedOptions {
            prune: args.prune,
            targets: session.selection.texts(),
            allow_mass_delete: args.allow_mass_delete,
            cloud_only: args.cloud_only,
        };
        let saved = SavedPlan::new(
            &session.plan.name,
            source,
            &target,
            options,
            &planned,
            &places,
            &calls,
        );
        saved.write(out)?;
        output::emit_stderr(&saved_note(out, &saved));
    }
    Ok(if args.detailed_exitcode && summary.pending() {
        ExitCode::Pending
    } else {
        ExitCode::Success
    })
}

fn saved_note(out: &Path, saved: &SavedPlan) -> String {
    format!(
        "Saved the plan to {} ({} changes, {} live objects fingerprinted). Apply exactly it with `wid apply {}`.\n",
        out.display(),
        saved
            .changes
            .iter()
            .filter(|c| c.kind != wid_core::ChangeKind::NoOp)
            .count(),
        saved.observed.len(),
        out.display()
    )
}

/// Renders a plan in `format`; with `github`, also appends the markdown to the step
/// summary the runner names.
pub fn render(
    view: &PlanView<'_>,
    format: OutputFormat,
    color: ColorChoice,
) -> Result<String, CliError> {
    Ok(match format {
        OutputFormat::Human => output::render_plan(
            view.plan,
            view.planned,
            view.api_calls(),
            color.style(false),
        ),
        OutputFormat::Json => {
            let doc = output::plan_document(view.plan, view.planned, view.calls);
            output::json_text(&doc).map_err(|e| CliError::Io(e.to_string()))?
        }
        OutputFormat::Markdown => markdown::render(view, markdown::COMMENT_BUDGET),
        OutputFormat::Github => {
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                let md = markdown::render(view, markdown::STEP_SUMMARY_BUDGET);
                output::github::append_step_summary(Path::new(&path), &md).map_err(|e| {
                    CliError::Io(format!(
                        "failed to append to $GITHUB_STEP_SUMMARY ({}): {e}",
                        Path::new(&path).display()
                    ))
                })?;
            }
            output::github::render(view)
        }
    })
}
