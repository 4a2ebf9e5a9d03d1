//! Rendering plans and reports for people (human), machines (json, the apply report) and
//! pull requests (markdown, GitHub workflow commands). Only this module and the CLI's
//! entry point write to stdout.

pub mod github;
mod human;
mod import;
mod json;
pub mod markdown;
mod mdtext;
mod report_json;
mod saved;
mod style;
mod view;

pub use human::{ApplyProgress, render_error, render_plan, render_report};
pub use import::{
    ImportedCluster, ImportedPlan, PlanWorkload, import_summary, render_imported_plan,
};
pub use json::{AttrDoc, ChangeDoc, PlanDocument, Summary, plan_document};
pub use report_json::{
    ErrorDoc, OutcomeDoc, REPORT_FORMAT_VERSION, ReportDocument, ReportSummary, StepDoc,
    report_document,
};
pub use saved::{render_saved_header, render_verified};
pub use style::Style;
pub use view::{Place, Places, PlanView, places};

/// Prints preflight warnings on stderr, one `warning:` line each.
pub fn warn(warnings: &[String], style: Style) {
    for w in warnings {
        eprintln!("{} {w}", style.yellow("warning:"));
    }
}

/// Prints a notice about the run itself (an interrupt noticed) on stderr.
pub fn notice(text: &str) {
    eprintln!("{text}");
}

/// Writes `text` to stdout. A closed pipe (`wid plan | head`) is not an error: the reader
/// has what it wanted, so wid stops quietly, as ripgrep does.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let result = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: failed to write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Writes `text` to stderr (what people should see while stdout carries a document).
pub fn emit_stderr(text: &str) {
    eprint!("{text}");
}

/// Serializes a JSON document as pretty text with a final newline.
pub fn json_text<T: serde::Serialize>(doc: &T) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(doc)?;
    s.push('\n');
    Ok(s)
}
