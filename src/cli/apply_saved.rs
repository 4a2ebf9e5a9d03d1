//! `wid apply PLANFILE`: apply exactly the changes of a plan saved by `wid plan --out`,
//! after checking that nothing it was computed from changed (see [`crate::saved`]).
//!
//! The saved plan is the approval, as with `terraform apply PLANFILE`: there is no
//! prompt. It refuses, naming every difference, when the command line points at another
//! target, when a plan file or a file it names changed, appeared or went, when preflight
//! finds something else (a cluster's issuer), when any live object the plan read changed
//! (attributes, ownership, applied record, existence), or when the same inputs compute
//! other changes. A refusal happens before any write.

use std::path::Path;

use super::apply::{ApplyArgs, ReportFormat};
use super::validate::load_checked;
use super::{CliError, ColorChoice, Control, ExitCode};
use crate::output;
use crate::saved::{self, SavedPlan, Stale};
use crate::session::{PlanMode, Session};

/// Applies `saved`, read from `file`.
pub async fn run(
    saved: SavedPlan,
    file: &Path,
    args: &ApplyArgs,
    color: ColorChoice,
) -> Result<ExitCode, CliError> {
    let shown = file.display().to_string();
    if !args.run.targets.is_empty() && args.run.targets != saved.options.targets {
        return Err(CliError::Usage(format!(
            "{shown} was planned for {}; it applies exactly that selection: drop --target, or plan again with the targets you want",
            if saved.options.targets.is_empty() {
                "the whole plan".to_owned()
            } else {
                format!("--target {}", saved.options.targets.join(", "))
            }
        )));
    }
    if args.cloud_only && !saved.options.cloud_only {
        return Err(CliError::Usage(format!(
            "{shown} was planned with its Kubernetes side; plan again with `wid plan {} --cloud-only --out {shown}`",
            saved.source.path
        )));
    }
    if args.prune && !saved.options.prune {
        return Err(CliError::Usage(format!(
            "{shown} was planned without --prune, so it deletes nothing; plan again with `wid plan {} --prune --out {shown}`",
            saved.source.path
        )));
    }
    let mut given = args.target.target()?;
    args.contexts.apply_to(&mut given)?;
    args.run.apply_to(&mut given);
    let target = saved::check_target(&saved, &given, &shown)?;
    let source = Path::new(&saved.source.path);
    let stale = |files| Stale {
        file: shown.clone(),
        source: saved.source.path.clone(),
        files,
        ..Stale::default()
    };
    // The files first, without parsing them: a changed plan is named as changed, not as
    // whatever validation makes of it, and no sandbox or API is touched.
    let files = saved::check_files(&saved, source);
    if !files.is_empty() {
        return Err(CliError::Stale(Box::new(stale(files))));
    }
    let plan = load_checked(source)?;
    let loaded = saved::digests(&plan, source)?;
    let control = Control::install(args.run.timeout);
    let mut session = control
        .step("plan", Session::open(plan, &target), Vec::new)
        .await?;
    super::run::select(&mut session, &saved.options.targets)?;
    session.cloud_only = saved.options.cloud_only;
    session.stop = Some(control.stop().clone());
    let mode = PlanMode::Apply {
        prune: saved.options.prune,
    };
    let planned = control
        .step("plan", session.plan(mode), || session.counter.waiting_on())
        .await?;
    let mut check = saved::check_world(&saved, &loaded, &planned);
    if !check.is_empty() {
        check.file = shown;
        check.source = saved.source.path.clone();
        return Err(CliError::Stale(Box::new(check)));
    }
    let style = color.style(false);
    output::warn(&planned.warnings, color.style(true));
    let text = format!(
        "{}{}",
        output::render_plan(&saved.plan, &saved.planned(), saved.api_calls, style),
        output::render_verified(&saved, style)
    );
    if args.output == ReportFormat::Json {
        output::emit_stderr(&text);
    } else {
        output::emit(&text);
    }
    let summary = output::Summary::of(&saved.changes);
    if summary.conflict > 0 {
        return Err(CliError::Conflicts(summary.conflict));
    }
    if !summary.pending() && args.output == ReportFormat::Human {
        session.flush_sandbox()?;
        return Ok(ExitCode::Success);
    }
    super::apply::check_mass_delete(
        &planned,
        mode,
        args.allow_mass_delete || saved.options.allow_mass_delete,
    )?;
    super::apply::run_changes(
        &session,
        &planned,
        &saved.changes,
        mode,
        &control,
        (args.output, color),
    )
    .await
}
