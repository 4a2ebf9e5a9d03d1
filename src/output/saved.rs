//! Human lines about saved plans: the header `wid show` prints above the plan, and the
//! line `wid apply PLANFILE` prints once the saved plan is verified.

use std::fmt::Write as _;

use super::Style;
use crate::saved::{FileRole, SavedPlan};

/// `Saved plan "NAME" (wid X) for TARGET, from PATH: N plan files, M referenced.`
pub fn render_saved_header(saved: &SavedPlan, style: Style) -> String {
    let plan_files = saved
        .source
        .files
        .iter()
        .filter(|f| f.role == FileRole::Plan)
        .count();
    let referenced = saved.source.files.len() - plan_files;
    let mut out = format!(
        "Saved plan {:?} (wid {}) for {}, from {} ({plan_files} plan file{}",
        saved.plan,
        saved.wid_version,
        saved.target.describe(),
        saved.source.path,
        if plan_files == 1 { "" } else { "s" },
    );
    if referenced > 0 {
        let _ = write!(out, ", {referenced} referenced");
    }
    out.push(')');
    if saved.options.prune {
        out.push_str(", with --prune");
    }
    let _ = writeln!(out, ".");
    let _ = writeln!(
        out,
        "{}",
        style.dim(&format!(
            "It fingerprints {} live objects; `wid apply` refuses it if they or the plan files change.",
            saved.observed.len()
        ))
    );
    out.push('\n');
    out
}

/// The line saying a saved plan still holds.
pub fn render_verified(saved: &SavedPlan, style: Style) -> String {
    format!(
        "{} the plan files ({}) and the {} live objects it read are unchanged since it was saved.\n",
        style.green("Saved plan verified:"),
        saved.source.files.len(),
        saved.observed.len()
    )
}
