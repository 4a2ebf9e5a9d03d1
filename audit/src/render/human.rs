//! Human output: findings grouped by severity, most severe first, with counts per group
//! and a summary line. Colour (ANSI) only when the caller says the terminal wants it.

use std::fmt::Write as _;

use crate::model::{Report, Severity};

fn paint(text: &str, severity: Severity, color: bool) -> String {
    if !color {
        return text.to_owned();
    }
    let code = match severity {
        Severity::Critical => "1;35",
        Severity::High => "1;31",
        Severity::Medium => "1;33",
        Severity::Low => "1;36",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Renders the report for a terminal.
pub fn human(report: &Report, color: bool) -> String {
    let mut out = String::new();
    for sev in Severity::DESCENDING {
        let group: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == sev)
            .collect();
        if group.is_empty() {
            continue;
        }
        let header = format!("{} ({})", sev.as_str().to_ascii_uppercase(), group.len());
        let _ = writeln!(out, "{}", paint(&header, sev, color));
        for f in group {
            let _ = writeln!(out, "  {} {}", f.check_id, f.resource);
            let _ = writeln!(out, "        {}", f.message);
            if let Some(loc) = &f.location {
                let _ = writeln!(out, "        at:  {}:{}", loc.path, loc.line);
            }
            let _ = writeln!(out, "        fix: {}", f.fix);
        }
        out.push('\n');
    }
    let c = &report.counts;
    if c.total == 0 {
        let _ = writeln!(out, "No findings from {} checks.", report.checks_run.len());
    } else {
        let _ = writeln!(
            out,
            "{} finding{} ({} critical, {} high, {} medium, {} low) from {} checks. Run `wid audit --explain ID` for details.",
            c.total,
            if c.total == 1 { "" } else { "s" },
            c.critical,
            c.high,
            c.medium,
            c.low,
            report.checks_run.len()
        );
    }
    out
}
