//! Human output: findings grouped by severity, most severe first, with counts per group
//! and a summary line; with several clusters, one such block per cluster and a total.
//! Accepted findings are counted, and listed only when asked (`--show-accepted`). Colour
//! (ANSI) only when the caller says the terminal wants it.

use std::fmt::Write as _;

use crate::accept::AcceptedFinding;
use crate::checks::page_path;
use crate::model::{Counts, Finding, Report, Severity};

/// How to render.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HumanOptions {
    /// ANSI colour on severity headers.
    pub color: bool,
    /// List accepted findings too (they are always counted).
    pub show_accepted: bool,
}

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

/// Renders the report for a terminal (accepted findings counted, not listed).
pub fn human(report: &Report, color: bool) -> String {
    human_with(
        report,
        HumanOptions {
            color,
            show_accepted: false,
        },
    )
}

/// Renders the report for a terminal with the given options.
pub fn human_with(report: &Report, opts: HumanOptions) -> String {
    let mut out = String::new();
    if report.clusters.len() > 1 {
        for cluster in &report.clusters {
            let _ = writeln!(out, "== cluster {cluster} ==\n");
            let findings: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.cluster.as_deref() == Some(cluster.as_str()))
                .collect();
            let accepted: Vec<&AcceptedFinding> = report
                .accepted
                .iter()
                .filter(|a| a.finding.cluster.as_deref() == Some(cluster.as_str()))
                .collect();
            block(&mut out, &findings, &accepted, opts);
            let mut counts = Counts::of(findings.iter().copied());
            counts.accepted = accepted.len();
            let _ = writeln!(out, "{}\n", summary(&counts, None, opts.show_accepted));
        }
        let _ = writeln!(
            out,
            "All {} clusters: {}",
            report.clusters.len(),
            summary(
                &report.counts,
                Some(report.checks_run.len()),
                opts.show_accepted
            )
        );
    } else {
        let findings: Vec<&Finding> = report.findings.iter().collect();
        let accepted: Vec<&AcceptedFinding> = report.accepted.iter().collect();
        block(&mut out, &findings, &accepted, opts);
        let _ = writeln!(
            out,
            "{}",
            summary(
                &report.counts,
                Some(report.checks_run.len()),
                opts.show_accepted
            )
        );
    }
    out
}

fn block(
    out: &mut String,
    findings: &[&Finding],
    accepted: &[&AcceptedFinding],
    opts: HumanOptions,
) {
    for sev in Severity::DESCENDING {
        let group: Vec<&&Finding> = findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let header = format!("{} ({})", sev.as_str().to_ascii_uppercase(), group.len());
        let _ = writeln!(out, "{}", paint(&header, sev, opts.color));
        for f in group {
            finding(out, f);
            if let Some(a) = &f.expired_acceptance {
                let _ = writeln!(
                    out,
                    "        note: its acceptance expired on {} ({}; {})",
                    a.expires.map(|d| d.to_string()).unwrap_or_default(),
                    a.reason,
                    a.origin
                );
            }
            let _ = writeln!(
                out,
                "        more: wid audit --explain {} ({})",
                f.check_id,
                page_path(&f.check_id)
            );
        }
        out.push('\n');
    }
    if opts.show_accepted && !accepted.is_empty() {
        let _ = writeln!(out, "ACCEPTED ({})", accepted.len());
        for a in accepted {
            let f = &a.finding;
            let _ = writeln!(out, "  {} {} {}", f.check_id, f.severity, f.resource);
            let _ = writeln!(out, "        {}", f.message);
            let until = match a.acceptance.expires {
                Some(d) => format!("until {d}"),
                None => "with no expiry".to_owned(),
            };
            let _ = writeln!(out, "        accepted {until}: {}", a.acceptance.reason);
            let _ = writeln!(out, "        by:  {}", a.acceptance.origin);
        }
        out.push('\n');
    }
}

fn finding(out: &mut String, f: &Finding) {
    let _ = writeln!(out, "  {} {}", f.check_id, f.resource);
    let _ = writeln!(out, "        {}", f.message);
    if let Some(loc) = &f.location {
        let _ = writeln!(out, "        at:  {}:{}:{}", loc.path, loc.line, loc.column);
    }
    let _ = writeln!(out, "        fix: {}", f.fix);
}

fn summary(c: &Counts, checks: Option<usize>, listed: bool) -> String {
    let from = checks
        .map(|n| format!(" from {n} checks"))
        .unwrap_or_default();
    let accepted = match (c.accepted, listed) {
        (0, _) => String::new(),
        (n, true) => format!("; {n} accepted"),
        (n, false) => format!("; {n} accepted (--show-accepted lists them)"),
    };
    if c.total == 0 {
        format!("No findings{from}{accepted}.")
    } else {
        let hint = if checks.is_some() {
            " Run `wid audit --explain ID` for details."
        } else {
            ""
        };
        format!(
            "{} finding{} ({} critical, {} high, {} medium, {} low){from}{accepted}.{hint}",
            c.total,
            if c.total == 1 { "" } else { "s" },
            c.critical,
            c.high,
            c.medium,
            c.low,
        )
    }
}
