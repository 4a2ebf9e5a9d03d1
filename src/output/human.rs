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
use crate::engine::{Outcome, Progress, Report, Step, StopReason};
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
        AttrValue::Json(text) => text.as_str().to_owned(),
        AttrValue::Unknown { .. } => "(known after apply)".to_owned(),
    }
}

/// Values longer than this on one line (policies, rule lists) are shown pretty-printed,
/// and for updates as a line diff.
const LONG: usize = 100;

pub(super) fn is_long(v: &Value) -> bool {
    (v.is_object() || v.is_array()) && v.to_string().len() > LONG
}

pub(super) fn pretty_lines(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    pretty(v, 0, "", &mut out);
    out
}

/// Pretty JSON that keeps anything short enough on one line (an action list, a
/// condition), so policies read as they are usually written.
fn pretty(v: &Value, indent: usize, prefix: &str, out: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    let compact = v.to_string();
    if indent + prefix.len() + compact.len() <= LONG || !(v.is_object() || v.is_array()) {
        out.push(format!("{pad}{prefix}{compact}"));
        return;
    }
    let (open, close, items): (&str, &str, Vec<(String, &Value)>) = match v {
        Value::Object(map) => (
            "{",
            "}",
            map.iter()
                .map(|(k, v)| (format!("{}: ", Value::String(k.clone())), v))
                .collect(),
        ),
        Value::Array(list) => ("[", "]", list.iter().map(|v| (String::new(), v)).collect()),
        _ => unreachable!("scalars returned above"),
    };
    out.push(format!("{pad}{prefix}{open}"));
    let last = items.len().saturating_sub(1);
    for (i, (key, item)) in items.iter().enumerate() {
        pretty(item, indent + 2, key, out);
        if i != last
            && let Some(line) = out.last_mut()
        {
            line.push(',');
        }
    }
    out.push(format!("{pad}{close}"));
}

/// Multi-line rendering of a long structured value: pretty JSON for a create or delete, a
/// line diff of the pretty forms for an update. `None` keeps the one-line form.
fn structured(
    kind: ChangeKind,
    before: Option<&Value>,
    after: Option<&Value>,
    style: Style,
) -> Option<Vec<String>> {
    match (kind, before, after) {
        (ChangeKind::Create, _, Some(a)) if is_long(a) => Some(pretty_lines(a)),
        (ChangeKind::Delete, Some(b), _) if is_long(b) => Some(pretty_lines(b)),
        (ChangeKind::Update, Some(b), Some(a)) if is_long(b) || is_long(a) => {
            Some(line_diff(&pretty_lines(b), &pretty_lines(a), style))
        }
        _ => None,
    }
}

/// A longest-common-subsequence line diff: `- ` for lines only before, `+ ` for lines
/// only after, two spaces for lines in both.
pub(super) fn line_diff(before: &[String], after: &[String], style: Style) -> Vec<String> {
    let (n, m) = (before.len(), after.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if before[i] == after[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && before[i] == after[j] {
            out.push(format!("  {}", before[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] > lcs[i + 1][j]) {
            out.push(style.green(&format!("+ {}", after[j])));
            j += 1;
        } else {
            out.push(style.red(&format!("- {}", before[i])));
            i += 1;
        }
    }
    out
}

/// The plan as people read it. No-ops are not listed; the summary counts them.
pub fn render_plan(plan: &str, planned: &Planned, calls: u64, style: Style) -> String {
    let mut groups: BTreeMap<String, Vec<&Change>> = BTreeMap::new();
    for c in planned
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
    {
        let group = planned
            .desired
            .groups
            .get(&c.id)
            .map_or_else(|| "left the plan".to_owned(), |g| g.to_string());
        groups.entry(group).or_default().push(c);
    }
    let mut out = String::new();
    for (group, changes) in &groups {
        let _ = writeln!(out, "{}", style.bold(group));
        for c in changes {
            let note = match &c.reason {
                Reason::Missing => "create".to_owned(),
                Reason::Differs => "update".to_owned(),
                Reason::Drift => {
                    "update (drift: changed outside wid since it applied this plan)".to_owned()
                }
                Reason::PlanChanged => "update (the plan changed)".to_owned(),
                Reason::Incomplete => {
                    "update (incomplete apply: an earlier apply stopped part-way)".to_owned()
                }
                Reason::Adopt => {
                    let key = c
                        .desired
                        .as_ref()
                        .and_then(|d| d.adopt_key.as_deref())
                        .unwrap_or("adopt");
                    format!("adopt (exists without wid's mark; the plan sets {key} = true)")
                }
                Reason::LeftPlan => "delete (left the plan)".to_owned(),
                Reason::UpToDate => String::new(),
                Reason::Blocked(why) => format!("conflict: {why}"),
            };
            let note = if c.kind == ChangeKind::Conflict {
                style.red(&note)
            } else {
                style.dim(&note)
            };
            let _ = writeln!(out, "  {} {}  {note}", marker(c.kind, style), c.id);
            for a in c.attr_changes() {
                let known_after = a.after.and_then(AttrValue::known);
                if c.kind == ChangeKind::Create
                    && known_after.as_deref().is_some_and(Value::is_null)
                {
                    continue;
                }
                if let Some(lines) = structured(c.kind, a.before, known_after.as_deref(), style) {
                    let _ = writeln!(out, "      {}:", a.key);
                    for line in lines {
                        let _ = writeln!(out, "        {line}");
                    }
                    continue;
                }
                let line = match (c.kind, a.before, a.after) {
                    (ChangeKind::Create, _, Some(v)) => format!("{}: {}", a.key, after(v)),
                    (ChangeKind::Delete, Some(b), _) => format!("{}: {}", a.key, value(b)),
                    (_, Some(b), Some(v)) => format!("{}: {} → {}", a.key, value(b), after(v)),
                    (_, None, Some(v)) => format!("{}: (unset) → {}", a.key, after(v)),
                    (_, Some(b), None) => format!("{}: {} → (removed)", a.key, value(b)),
                    (_, None, None) => a.key.to_owned(),
                };
                let _ = writeln!(out, "      {line}");
            }
        }
        out.push('\n');
    }
    let s = Summary::of(&planned.changes);
    if !s.pending() && s.conflict == 0 {
        let _ = writeln!(
            out,
            "No changes. Plan {plan:?} matches the live state ({} resources).",
            s.unchanged
        );
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
            Outcome::Failed {
                error,
                attempts,
                partial,
            } => {
                let left = if *partial {
                    "; it is left partly applied"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "{} {} failed after {attempts} attempt(s){left}",
                    style.red("✗"),
                    step.id
                );
                for line in render_error(error, style).lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Outcome::Skipped { because } => {
                let _ = writeln!(
                    out,
                    "{} {} skipped: it depends on {because}, which did not apply",
                    style.yellow("-"),
                    step.id
                );
            }
            Outcome::Abandoned => {
                let _ = writeln!(
                    out,
                    "{} {} was in flight when the apply was aborted: it may be done in part",
                    style.yellow("?"),
                    step.id
                );
            }
            Outcome::Done { .. } | Outcome::NotStarted => {}
        }
    }
    for error in &report.errors {
        let _ = writeln!(out, "{} after the last change:", style.red("✗"));
        for line in render_error(error, style).lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    let (done, failed, skipped) = report.counts();
    let (not_started, abandoned) = report.not_run();
    let head = match report.stopped {
        Some(StopReason::Interrupted) => style.red("Apply interrupted:"),
        Some(StopReason::TimedOut(_)) => style.red("Apply timed out:"),
        None if failed + skipped == 0 && report.errors.is_empty() => style.green("Apply complete:"),
        None => style.red("Apply incomplete:"),
    };
    let mut stopped = String::new();
    if not_started + abandoned > 0 {
        let _ = write!(stopped, ", {not_started} not started");
    }
    if abandoned > 0 {
        let _ = write!(stopped, ", {abandoned} abandoned in flight");
    }
    let _ = writeln!(
        out,
        "{head} {done} done, {failed} failed, {skipped} skipped{stopped}. {calls} API calls."
    );
    if not_started + abandoned > 0 {
        let _ = writeln!(
            out,
            "Run apply again to finish: it plans from the live state, so what was done is not done twice."
        );
    }
    if failed + skipped > 0 {
        let partial: Vec<String> = report.partial().map(ToString::to_string).collect();
        if partial.is_empty() {
            let _ = writeln!(
                out,
                "Nothing that failed was changed; fix the cause and run apply again to converge."
            );
        } else {
            let _ = writeln!(
                out,
                "Left partly applied ({}): {}. Fix the cause and apply again to finish them; `wid plan` shows what is left.",
                partial.len(),
                partial.join(", ")
            );
        }
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
            Outcome::Failed { error, .. } => {
                (self.style.red("✗"), format!("failed: {}", error.message()))
            }
            Outcome::Skipped { because } => {
                (self.style.yellow("-"), format!("skipped (needs {because})"))
            }
            Outcome::NotStarted => (self.style.yellow("-"), "not started".to_owned()),
            Outcome::Abandoned => (self.style.yellow("?"), "abandoned in flight".to_owned()),
        };
        self.line(&format!(
            "[{finished}/{total}] {mark} {} {what} ({:.2}s)",
            step.id,
            step.elapsed.as_secs_f64()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn line_diff_marks_only_what_changed() {
        let d = line_diff(
            &lines(&["{", "a", "b", "}"]),
            &lines(&["{", "a", "c", "}"]),
            Style::plain(),
        );
        assert_eq!(d, lines(&["  {", "  a", "- b", "+ c", "  }"]));
    }

    #[test]
    fn short_values_stay_on_one_line() {
        let v = serde_json::json!(["a"]);
        assert!(structured(ChangeKind::Update, Some(&v), Some(&v), Style::plain()).is_none());
        let long = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}]});
        assert!(long.to_string().len() > LONG);
        assert!(structured(ChangeKind::Create, None, Some(&long), Style::plain()).is_some());
    }
}
