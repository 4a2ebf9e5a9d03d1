//! Human output: the plan grouped by workload with `+ ~ - !` markers and attribute
//! before → after; the apply report; progress lines for stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use wid_core::{AttrValue, Change, ChangeKind, ProviderError, Reason, ResourceId};

use super::Style;
use super::json::Summary;
use crate::engine::{Outcome, Progress, Report, Step};
use crate::session::Planned;

fn marker(kind: ChangeKind, style: Style) -> String {
    match kind {
        ChangeKind::Create => style.green("+"),
        ChangeKind::Update => style.yellow("~"),
        ChangeKind::Delete => style.red("-"),
        ChangeKind::NoOp => " ".to_owned(),
        ChangeKind::Conflict => style.red("!"),
    }
}

fn value(v: &Value) -> String {
    v.to_string()
}

fn after(v: &AttrValue) -> String {
    match v {
        AttrValue::Known(v) => value(v),
        AttrValue::Unknown { .. } => "(known after apply)".to_owned(),
    }
}

/// The plan as people read it. No-ops are not listed; the summary counts them.
pub fn render_plan(plan: &str, planned: &Planned, calls: u64, style: Style) -> String {
    let mut groups: BTreeMap<String, Vec<&Change>> = BTreeMap::new();
    for c in planned.changes.iter().filter(|c| c.kind != ChangeKind::NoOp) {
        let group = planned
            .desired
            .groups
            .get(&c.id)
            .cloned()
            .unwrap_or_else(|| "left the plan".to_owned());
        groups.entry(group).or_default().push(c);
    }
    let mut out = String::new();
    for (group, changes) in &groups {
        let _ = writeln!(out, "{}", style.bold(group));
        for c in changes {
            let note = match &c.reason {
                Reason::Missing => "create".to_owned(),
                Reason::Differs => "update".to_owned(),
                Reason::Adopt => "adopt (exists without wid's mark; the plan says adopt = true)".to_owned(),
                Reason::LeftPlan => "delete (left the plan)".to_owned(),
                Reason::UpToDate => String::new(),
                Reason::Blocked(why) => format!("conflict: {why}"),
            };
            let note = if c.kind == ChangeKind::Conflict { style.red(&note) } else { style.dim(&note) };
            let _ = writeln!(out, "  {} {}  {note}", marker(c.kind, style), c.id);
            for a in &c.attrs {
                let line = match (c.kind, &a.before, &a.after) {
                    (ChangeKind::Create, _, Some(v)) => format!("{}: {}", a.key, after(v)),
                    (ChangeKind::Delete, Some(b), _) => format!("{}: {}", a.key, value(b)),
                    (_, Some(b), Some(v)) => format!("{}: {} → {}", a.key, value(b), after(v)),
                    (_, None, Some(v)) => format!("{}: (unset) → {}", a.key, after(v)),
                    (_, Some(b), None) => format!("{}: {} → (removed)", a.key, value(b)),
                    (_, None, None) => a.key.clone(),
                };
                let _ = writeln!(out, "      {line}");
            }
        }
        out.push('\n');
    }
    let s = Summary::of(&planned.changes);
    if !s.pending() && s.conflict == 0 {
        let _ = writeln!(out, "No changes. Plan {plan:?} matches the live state ({} resources).", s.unchanged);
    }
    let _ = writeln!(
        out,
        "Plan: {} to create, {} to update, {} to delete, {} unchanged, {} conflicts. {calls} API calls.",
        s.create, s.update, s.delete, s.unchanged, s.conflict
    );
    out
}

/// One error with its hint and the API's own words, nextest-style.
pub fn render_error(error: &ProviderError, style: Style) -> String {
    let mut out = format!("{} {}\n", style.red("error:"), error);
    if let Some(op) = &error.operation {
        let _ = writeln!(out, "  operation: {op}");
    }
    if let Some(hint) = &error.hint {
        let _ = writeln!(out, "  {} {hint}", style.bold("hint:"));
    }
    if let Some(detail) = &error.detail {
        let _ = writeln!(out, "  caused by: {detail}");
    }
    out
}

/// The apply report: failures in full, then the summary line.
pub fn render_report(report: &Report, calls: u64, style: Style) -> String {
    let mut out = String::new();
    for step in &report.steps {
        match &step.outcome {
            Outcome::Failed { error, attempts } => {
                let _ = writeln!(out, "{} {} failed after {attempts} attempt(s)", style.red("✗"), step.id);
                for line in render_error(error, style).lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Outcome::Skipped { because } => {
                let _ = writeln!(out, "{} {} skipped: it depends on {because}, which did not apply", style.yellow("-"), step.id);
            }
            Outcome::Done { .. } => {}
        }
    }
    let (done, failed, skipped) = report.counts();
    let head = if failed + skipped == 0 { style.green("Apply complete:") } else { style.red("Apply incomplete:") };
    let _ = writeln!(out, "{head} {done} done, {failed} failed, {skipped} skipped. {calls} API calls.");
    if failed + skipped > 0 {
        let _ = writeln!(out, "Nothing that failed was left half-done; fix the cause and run apply again to converge.");
    }
    out
}

/// Progress lines on stderr during apply.
pub struct ApplyProgress {
    style: Style,
    out: Mutex<std::io::Stderr>,
}

impl ApplyProgress {
    /// Progress on stderr.
    pub fn stderr(style: Style) -> Self {
        Self {
            style,
            out: Mutex::new(std::io::stderr()),
        }
    }

    fn line(&self, text: &str) {
        let mut out = self.out.lock().expect("stderr lock is never poisoned");
        let _ = writeln!(out, "{text}");
    }
}

impl Progress for ApplyProgress {
    fn started(&self, _: &Change) {}

    fn retrying(&self, id: &ResourceId, attempt: u32, error: &ProviderError, delay: Duration) {
        self.line(&format!(
            "  {} {id}: {} ({}), retry {} in {}ms",
            self.style.yellow("↻"),
            error.message(),
            error.kind(),
            attempt + 1,
            delay.as_millis()
        ));
    }

    fn finished(&self, step: &Step, finished: usize, total: usize) {
        let (mark, what) = match &step.outcome {
            Outcome::Done { .. } => (marker(step.kind, self.style), "done".to_owned()),
            Outcome::Failed { error, .. } => (self.style.red("✗"), format!("failed: {}", error.message())),
            Outcome::Skipped { because } => (self.style.yellow("-"), format!("skipped (needs {because})")),
        };
        self.line(&format!(
            "[{finished}/{total}] {mark} {} {what} ({:.2}s)",
            step.id,
            step.elapsed.as_secs_f64()
        ));
    }
}
