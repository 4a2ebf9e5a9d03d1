//! How `wid apply` prints its report: `--output human` (failures in full, then a summary
//! line) or `--output json` (the versioned document of `schema/apply-report.schema.json`).

use clap::ValueEnum;

use super::CliError;
use crate::engine::Report;
use crate::output::{self, Style};
use crate::session::Session;

/// `--output` of `apply`: how the report is printed.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum ReportFormat {
    /// Failures in full, then a summary line.
    #[default]
    Human,
    /// The versioned JSON report described by schema/apply-report.schema.json on stdout;
    /// the plan and progress go to stderr.
    Json,
}

/// Prints the apply report on stdout, human or as the JSON document.
pub fn emit_report(
    session: &Session,
    report: &Report,
    format: ReportFormat,
    style: Style,
) -> Result<(), CliError> {
    let text = match format {
        ReportFormat::Human => output::render_report(report, session.counter.total(), style),
        ReportFormat::Json => {
            let doc =
                output::report_document(&session.plan.name, report, &session.counter.snapshot());
            output::json_text(&doc).map_err(|e| CliError::Io(e.to_string()))?
        }
    };
    output::emit(&text);
    Ok(())
}
