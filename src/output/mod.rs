//! Rendering plans and reports for people (human) and machines (json). Only this module
//! and the CLI's entry point write to stdout.

mod human;
mod json;
mod style;

pub use human::{ApplyProgress, render_error, render_plan, render_report};
pub use json::{AttrDoc, ChangeDoc, PlanDocument, Summary, plan_document};
pub use style::Style;

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
