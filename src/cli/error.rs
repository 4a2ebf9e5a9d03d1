//! The one top-level error: every failure maps to a documented exit code and prints as
//! `error:` with located diagnostics, hints and causes.

use std::fmt::Write as _;

use miette::{GraphicalReportHandler, GraphicalTheme};
use wid_core::ProviderError;

use crate::output::Style;
use crate::plan::{Diagnostics, Rendered};

/// Process exit codes; documented in `--help` and the README, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success; with `--detailed-exitcode`, nothing pending.
    Success = 0,
    /// An error.
    Error = 1,
    /// `--detailed-exitcode`: changes pending or drift found.
    Pending = 2,
    /// `audit`: a finding at or above `--fail-on`.
    Findings = 3,
    /// Interrupted by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
    Interrupted = 130,
}

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The plan is invalid; every problem is listed.
    #[error("the plan has {} problem(s)", .0.len())]
    Plan(Diagnostics),
    /// An API call failed.
    #[error(transparent)]
    Provider(Box<ProviderError>),
    /// The sandbox could not start.
    #[error("failed to start the sandbox: {0}")]
    Sandbox(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
    /// The plan has conflicts, so apply refuses to run.
    #[error("{0} conflict(s) block this plan; apply changes nothing until they are resolved")]
    Conflicts(usize),
    /// The user did not confirm at the prompt (exit 1, as terraform does, so a script
    /// never mistakes a cancelled apply for a done one).
    #[error("apply cancelled; nothing was changed")]
    Cancelled,
    /// A saved plan no longer holds: its plan files or the live objects it read changed.
    #[error("{0}")]
    Stale(Box<crate::saved::Stale>),
    /// Apply stopped part-way; the report says what was done.
    #[error("apply did not complete: {failed} failed, {skipped} skipped")]
    Incomplete {
        /// Failed changes.
        failed: usize,
        /// Changes skipped because a dependency failed.
        skipped: usize,
    },
    /// Every change ran, but the clean-up after the last one failed; the report says how.
    #[error("apply did not complete: {0} error(s) after the last change")]
    AfterRun(usize),
    /// The plan deletes more than the mass-delete guard allows in some scope.
    #[error("{}", mass_delete_message(.0))]
    MassDelete(Vec<crate::session::MassDelete>),
    /// Ctrl-C or SIGTERM stopped the command while it was doing this.
    #[error("interrupted during {0}")]
    Interrupted(&'static str),
    /// `--timeout` passed while the command was doing this.
    #[error(
        "{doing} did not finish within {after} (--timeout){}",
        if waiting.is_empty() { String::new() } else { format!("; still waiting for {}", waiting.join(", ")) }
    )]
    TimedOut {
        /// What was running (`plan`, `apply`).
        doing: &'static str,
        /// The timeout, as written.
        after: String,
        /// The calls or changes still in flight.
        waiting: Vec<String>,
    },
}

impl From<ProviderError> for CliError {
    fn from(e: ProviderError) -> Self {
        Self::Provider(Box::new(e))
    }
}

impl CliError {
    /// Wraps a sandbox start error.
    pub fn sandbox(e: impl std::fmt::Display) -> Self {
        Self::Sandbox(e.to_string())
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Interrupted(_) => ExitCode::Interrupted,
            _ => ExitCode::Error,
        }
    }
}

/// Prints an error on stderr: plan diagnostics with their source and carets, provider
/// errors with operation, hint and cause.
pub fn print_error(error: &CliError, style: Style) {
    let mut out = String::new();
    match error {
        CliError::Plan(diags) => {
            let theme = if style.color() {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
            for d in &diags.0 {
                let rendered = Rendered::from(d.clone());
                let _ = handler.render_report(&mut out, &rendered);
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "{} {error}; nothing was changed and no API was called",
                style.red("error:")
            );
        }
        CliError::Provider(e) => out.push_str(&crate::output::render_error(e, style)),
        other => {
            let _ = writeln!(out, "{} {other}", style.red("error:"));
        }
    }
    eprint!("{out}");
}

fn mass_delete_message(scopes: &[crate::session::MassDelete]) -> String {
    let each: Vec<String> = scopes
        .iter()
        .map(|m| {
            format!(
                "scope `{}` would delete {} of its {} objects",
                m.scope, m.deletes, m.owned
            )
        })
        .collect();
    format!(
        "refusing a mass delete: {}; wid refuses to delete more than half of a scope's objects (and more than {}) in one run. Nothing was changed. Check the plan files are complete, then pass --allow-mass-delete if this is intended",
        each.join("; "),
        crate::session::MASS_DELETE_MIN
    )
}
