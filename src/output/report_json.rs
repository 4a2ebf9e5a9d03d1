//! The JSON apply report (`wid apply --output json`), versioned and described by
//! `schema/apply-report.schema.json`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use wid_core::{ChangeKind, ErrorKind};

use crate::engine::{Outcome, Report};

/// The document's format version; bumped on any incompatible change.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// What an apply did, for machines.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportDocument {
    /// Always 1 for this format.
    pub format_version: u32,
    /// The plan's name (ownership scope).
    pub plan: String,
    /// Whether every change was applied.
    pub complete: bool,
    /// Why the run stopped early: `interrupted` (Ctrl-C or SIGTERM) or `timed-out`
    /// (`--timeout`); absent when it ran to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Counts by outcome.
    pub summary: ReportSummary,
    /// One entry per create, update and delete, sorted by resource id.
    pub steps: Vec<StepDoc>,
    /// Resources a failed change left partly applied: the next plan shows them as an
    /// incomplete apply, and applying again finishes them.
    pub incomplete: Vec<String>,
    /// Errors of the run itself rather than of one change (a provider's clean-up after the
    /// last change that failed); absent when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_errors: Vec<ErrorDoc>,
    /// API calls made by the whole run (reading the live state included).
    pub api_calls: u64,
    /// API calls by operation.
    pub api_calls_by_operation: BTreeMap<String, u64>,
}

/// Counts by outcome.
#[derive(Debug, Default, Serialize, JsonSchema, PartialEq, Eq)]
pub struct ReportSummary {
    /// Changes applied.
    pub done: usize,
    /// Changes that failed.
    pub failed: usize,
    /// Changes not attempted because something they depend on did not apply.
    pub skipped: usize,
    /// Failed changes that left their object partly applied.
    pub incomplete: usize,
    /// Changes never started because the run was stopped (Ctrl-C, SIGTERM, `--timeout`).
    pub not_started: usize,
    /// Changes in flight when the run was aborted: they may have happened in part or in
    /// whole; the next plan shows where they stand.
    pub abandoned: usize,
}

/// One change's result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StepDoc {
    /// The resource id, `provider/kind/key...`.
    pub id: String,
    /// create, update or delete.
    pub kind: ChangeKind,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: OutcomeDoc,
    /// Wall time in seconds, retries included.
    pub seconds: f64,
}

/// How one change ended.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum OutcomeDoc {
    /// Applied.
    Done {
        /// Attempts made (1 when the first succeeded).
        attempts: u32,
    },
    /// Failed for good.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// Whether the object is left partly applied.
        partly_applied: bool,
        /// The last error.
        error: ErrorDoc,
    },
    /// Not attempted.
    Skipped {
        /// The dependency that did not apply.
        because: String,
    },
    /// Not started: the run was stopped first.
    NotStarted,
    /// In flight when the run was aborted.
    Abandoned,
}

/// A provider error.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorDoc {
    /// auth, permission, not-found, conflict, throttled, transient, invalid or limit.
    pub kind: ErrorKind,
    /// What failed.
    pub message: String,
    /// The API operation, e.g. `iam:CreateRole`.
    pub operation: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
    /// The API's own words.
    pub detail: Option<String>,
}

impl ErrorDoc {
    fn of(error: &wid_core::ProviderError) -> Self {
        Self {
            kind: error.kind(),
            message: error.message().to_owned(),
            operation: error.operation.clone(),
            hint: error.hint.clone(),
            detail: error.detail.clone(),
        }
    }
}

/// Builds the document.
pub fn report_document(
    plan: &str,
    report: &Report,
    calls: &BTreeMap<String, u64>,
) -> ReportDocument {
    let mut summary = ReportSummary::default();
    let steps = report
        .steps
        .iter()
        .map(|s| {
            let outcome = match &s.outcome {
                Outcome::Done { attempts } => {
                    summary.done += 1;
                    OutcomeDoc::Done {
                        attempts: *attempts,
                    }
                }
                Outcome::Failed {
                    error,
                    attempts,
                    partial,
                } => {
                    summary.failed += 1;
                    summary.incomplete += usize::from(*partial);
                    OutcomeDoc::Failed {
                        attempts: *attempts,
                        partly_applied: *partial,
                        error: ErrorDoc::of(error),
                    }
                }
                Outcome::Skipped { because } => {
                    summary.skipped += 1;
                    OutcomeDoc::Skipped {
                        because: because.to_string(),
                    }
                }
                Outcome::NotStarted => {
                    summary.not_started += 1;
                    OutcomeDoc::NotStarted
                }
                Outcome::Abandoned => {
                    summary.abandoned += 1;
                    OutcomeDoc::Abandoned
                }
            };
            StepDoc {
                id: s.id.to_string(),
                kind: s.kind,
                outcome,
                seconds: s.elapsed.as_secs_f64(),
            }
        })
        .collect();
    ReportDocument {
        format_version: REPORT_FORMAT_VERSION,
        plan: plan.to_owned(),
        complete: report.succeeded(),
        stopped: report.stopped.as_ref().map(|r| match r {
            crate::engine::StopReason::Interrupted => "interrupted".to_owned(),
            crate::engine::StopReason::TimedOut(_) => "timed-out".to_owned(),
        }),
        summary,
        steps,
        incomplete: report.partial().map(ToString::to_string).collect(),
        run_errors: report.errors.iter().map(ErrorDoc::of).collect(),
        api_calls: calls.values().sum(),
        api_calls_by_operation: calls.clone(),
    }
}
