//! `--output markdown`: the plan as a compact pull-request comment.
//!
//! Counts per cluster and per cloud first, then why things change (drift, plan changes
//! and incomplete applies told apart), conflicts, drift and preflight warnings as GitHub
//! alerts, and one collapsible `<details>` block per workload with its attribute changes.
//! Every user-controlled string is escaped ([`super::mdtext`]); the comment stays under a
//! byte budget, cut at a workload boundary with a note saying what was left out.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value;
use wid_core::{AttrChangeRef, AttrValue, Change, ChangeKind, Reason};

use super::Style;
use super::human::{is_long, line_diff, pretty_lines};
use super::json::Summary;
use super::mdtext::{cell_code, clip, code, fence, html, html_text, text};
use super::view::{Group, PlanView, Scope, Why, label};

/// GitHub's limit on a comment body, in characters.
pub const COMMENT_LIMIT: usize = 65_536;
/// What a comment takes at most, in bytes (never fewer than characters): GitHub's limit
/// less room for a heading or footer a workflow adds around it.
pub const COMMENT_BUDGET: usize = 60_000;
/// What the copy appended to `$GITHUB_STEP_SUMMARY` takes at most: GitHub allows 1 MiB
/// per step, and other steps may write there too.
pub const STEP_SUMMARY_BUDGET: usize = 512 * 1024;

/// Characters of a value shown in a table cell.
const VALUE_CHARS: usize = 200;
/// Characters of a message (a conflict's reason, a warning).
const MESSAGE_CHARS: usize = 600;
/// Items listed in one alert.
const ALERT_ITEMS: usize = 20;
/// Rows of the per-cluster table.
const SCOPE_ROWS: usize = 50;
/// Lines of one policy diff.
const DIFF_LINES: usize = 80;
/// Characters of one diff line.
const DIFF_LINE_CHARS: usize = 300;
/// Bytes kept free for the note that says the comment was cut.
const NOTE_RESERVE: usize = 1_024;

/// Renders the plan as markdown of at most `budget` bytes.
pub fn render(view: &PlanView<'_>, budget: usize) -> String {
    let mut out = String::new();
    header(view, &mut out);
    let groups = view.groups();
    let mut shown = 0;
    for group in &groups {
        let block = details(group);
        if out.len() + block.len() + NOTE_RESERVE > budget {
            break;
        }
        out.push_str(&block);
        shown += 1;
    }
    if shown < groups.len() {
        let left = &groups[shown..];
        let changes: usize = left.iter().map(|g| g.changes.len()).sum();
        let _ = write!(
            out,
            "> [!NOTE]\n> **Cut to fit:** {} of {} workloads and groups ({} changes) are not shown here, to keep this under GitHub's limit of 65,536 characters for a comment. The whole plan is in the output of `wid plan` (`--output human` or `json`), or `wid show PLANFILE` for a saved plan.\n",
            left.len(),
            groups.len(),
            changes,
        );
    }
    out
}

fn header(view: &PlanView<'_>, out: &mut String) {
    let s = view.summary();
    let _ = writeln!(out, "<!-- wid plan: {} -->", html(view.plan));
    let _ = writeln!(out, "### wid plan {}\n", code(view.plan));
    if !s.pending() && s.conflict == 0 {
        let _ = writeln!(
            out,
            "**No changes.** The live state matches the plan ({} resources; {} API calls).\n",
            s.unchanged,
            view.api_calls()
        );
    } else {
        let _ = writeln!(
            out,
            "**{} to create, {} to update, {} to delete, {} conflict{}**; {} unchanged ({} API calls).\n",
            s.create,
            s.update,
            s.delete,
            s.conflict,
            plural(s.conflict),
            s.unchanged,
            view.api_calls()
        );
    }
    scope_table(view, out);
    let whys: Vec<String> = view
        .whys()
        .into_iter()
        .map(|(why, n)| why.count(n))
        .collect();
    if !whys.is_empty() {
        let _ = writeln!(out, "**Why:** {}.\n", whys.join(" · "));
    }
    alerts(view, out);
}

fn scope_table(view: &PlanView<'_>, out: &mut String) {
    let rows = view.by_scope();
    if rows.is_empty() {
        return;
    }
    out.push_str("| where | create | update | delete | conflict | unchanged |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    let row = |out: &mut String, name: &str, s: &Summary| {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} |",
            s.create, s.update, s.delete, s.conflict, s.unchanged
        );
    };
    for (scope, counts) in rows.iter().take(SCOPE_ROWS) {
        let name = match scope {
            Scope::Cluster(c) => format!("cluster {}", cell_code(c)),
            Scope::Cloud(c) => format!("cloud {}", cell_code(c)),
        };
        row(out, &name, counts);
    }
    if rows.len() > SCOPE_ROWS {
        let mut rest = Summary::default();
        for (_, s) in &rows[SCOPE_ROWS..] {
            rest.create += s.create;
            rest.update += s.update;
            rest.delete += s.delete;
            rest.conflict += s.conflict;
            rest.unchanged += s.unchanged;
        }
        row(
            out,
            &format!("*{} more clusters and clouds*", rows.len() - SCOPE_ROWS),
            &rest,
        );
    }
    if rows.len() > 1 {
        row(out, "**total**", &view.summary());
    }
    out.push('\n');
}

fn alerts(view: &PlanView<'_>, out: &mut String) {
    let conflicts = view.with_why(Why::Conflict);
    if !conflicts.is_empty() {
        let n = conflicts.len();
        let head = format!(
            "**{n} conflict{} block{} this plan**: apply changes nothing until {} resolved.",
            plural(n),
            if n == 1 { "s" } else { "" },
            if n == 1 { "it is" } else { "they are" }
        );
        alert(out, "CAUTION", &head, view, &conflicts);
    }
    let drift = view.with_why(Why::Drift);
    if !drift.is_empty() {
        let head = format!(
            "**{}**: changed outside wid since it applied this same plan; apply puts {} back.",
            Why::Drift.count(drift.len()),
            if drift.len() == 1 { "it" } else { "them" }
        );
        alert(out, "WARNING", &head, view, &drift);
    }
    let incomplete = view.with_why(Why::Incomplete);
    if !incomplete.is_empty() {
        let head = format!(
            "**{}**: an earlier apply stopped part-way (not drift); apply finishes {}.",
            Why::Incomplete.count(incomplete.len()),
            if incomplete.len() == 1 { "it" } else { "them" }
        );
        alert(out, "IMPORTANT", &head, view, &incomplete);
    }
    let warnings = &view.planned.warnings;
    if !warnings.is_empty() {
        let _ = writeln!(out, "> [!WARNING]\n> **Preflight warnings**\n>");
        for w in warnings.iter().take(ALERT_ITEMS) {
            let _ = writeln!(out, "> - {}", message(w));
        }
        more(out, warnings.len());
        out.push('\n');
    }
}

fn alert(out: &mut String, kind: &str, head: &str, view: &PlanView<'_>, changes: &[&Change]) {
    let _ = writeln!(out, "> [!{kind}]\n> {head}\n>");
    for c in changes.iter().take(ALERT_ITEMS) {
        let group = view.group_of(c);
        let place = view.places.get(&group);
        let name = place.map_or(group.as_str(), |p| p.name.as_str());
        let mut line = format!("> - {} in {}", code(&c.id.to_string()), code(name));
        if let Some(p) = place {
            let _ = write!(line, " ({})", code(&format!("{}:{}", p.file, p.line)));
        }
        if let Reason::Blocked(why) = &c.reason {
            let _ = write!(line, ": {}", message(why));
        }
        let _ = writeln!(out, "{line}");
    }
    more(out, changes.len());
    out.push('\n');
}

fn more(out: &mut String, total: usize) {
    if total > ALERT_ITEMS {
        let _ = writeln!(
            out,
            "> - *and {} more, listed in the details below*",
            total - ALERT_ITEMS
        );
    }
}

fn message(s: &str) -> String {
    let (shown, cut) = clip(s, MESSAGE_CHARS);
    let mut out = text(&shown);
    if cut > 0 {
        let _ = write!(out, " *… ({cut} more characters)*");
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One workload's `<details>` block.
fn details(group: &Group<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<details><summary><code>{}</code> · {}</summary>\n",
        html(group.name()),
        html_text(&group.summary())
    );
    if let Some(p) = group.place {
        let _ = writeln!(
            out,
            "Plan file: {}\n",
            code(&format!("{}:{}:{}", p.file, p.line, p.column))
        );
    }
    for c in &group.changes {
        if let Reason::Blocked(why) = &c.reason {
            let _ = writeln!(
                out,
                "**Conflict** on {}: {}\n",
                code(&c.id.to_string()),
                message(why)
            );
        }
    }
    out.push_str("| change | resource | attribute | before | after |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    let mut diffs = String::new();
    for c in &group.changes {
        let attrs: Vec<AttrChangeRef<'_>> = c
            .attr_changes()
            .filter(|a| !(c.kind == ChangeKind::Create && a.after.is_some_and(AttrValue::is_null)))
            .collect();
        let first = format!("{} | {}", label_cell(c), cell_code(&c.id.to_string()));
        if attrs.is_empty() {
            let _ = writeln!(out, "| {first} | | | |");
            continue;
        }
        for (i, &a) in attrs.iter().enumerate() {
            let lead = if i == 0 { first.as_str() } else { " | " };
            let long = a.before.is_some_and(is_long) || known(a).as_deref().is_some_and(is_long);
            let (mut before, mut after) = (before_cell(c, a), after_cell(a));
            if long {
                diffs.push_str(&diff_block(c, a));
                let see = "*(diff below)*";
                if a.before.is_some() {
                    before = see.to_owned();
                }
                if known(a).is_some() {
                    after = see.to_owned();
                }
            }
            let _ = writeln!(
                out,
                "| {lead} | {} | {before} | {after} |",
                cell_code(a.key)
            );
        }
    }
    out.push('\n');
    out.push_str(&diffs);
    out.push_str("</details>\n\n");
    out
}

fn label_cell(c: &Change) -> String {
    match c.kind {
        ChangeKind::Conflict => "**conflict**".to_owned(),
        _ => label(c).to_owned(),
    }
}

fn known(a: AttrChangeRef<'_>) -> Option<Cow<'_, Value>> {
    a.after.and_then(AttrValue::known)
}

fn value_cell(v: &Value) -> String {
    text_cell(&v.to_string())
}

/// A value's compact JSON text as a cell, clipped.
fn text_cell(text: &str) -> String {
    let (shown, cut) = clip(text, VALUE_CHARS);
    let mut out = cell_code(&shown);
    if cut > 0 {
        let _ = write!(out, " *… ({cut} more characters)*");
    }
    out
}

fn before_cell(c: &Change, a: AttrChangeRef<'_>) -> String {
    match (a.before, c.kind) {
        (Some(v), _) => value_cell(v),
        (None, ChangeKind::Create) => String::new(),
        (None, _) => "*(unset)*".to_owned(),
    }
}

fn after_cell(a: AttrChangeRef<'_>) -> String {
    match a.after {
        Some(AttrValue::Known(v)) => value_cell(v),
        Some(AttrValue::Json(text)) => text_cell(text.as_str()),
        Some(AttrValue::Unknown { .. }) => "*(known after apply)*".to_owned(),
        None => "*(removed)*".to_owned(),
    }
}

/// A long structured value (a policy) as a `diff` block: every line added for a create,
/// removed for a delete, a line diff of the pretty forms for an update.
fn diff_block(c: &Change, a: AttrChangeRef<'_>) -> String {
    let before = a.before.map(pretty_lines).unwrap_or_default();
    let after = known(a).as_deref().map(pretty_lines).unwrap_or_default();
    let lines = line_diff(&before, &after, Style::plain());
    let total = lines.len();
    let mut body = String::new();
    for line in lines.iter().take(DIFF_LINES) {
        let (shown, cut) = clip(line, DIFF_LINE_CHARS);
        body.push_str(&shown);
        if cut > 0 {
            let _ = write!(body, " … ({cut} more characters)");
        }
        body.push('\n');
    }
    if total > DIFF_LINES {
        let _ = writeln!(body, "… {} more lines", total - DIFF_LINES);
    }
    format!(
        "{} {}:\n\n{}\n",
        code(&c.id.to_string()),
        code(a.key),
        fence("diff", &body)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use comrak::nodes::NodeValue;
    use wid_core::{ChangeKind, Reason, Resource, ResourceId};

    use super::*;
    use crate::model::Desired;
    use crate::session::Planned;

    /// Free text (a conflict's reason, a preflight warning) parses back as the same text:
    /// no emphasis, link, HTML, strikethrough, math or table syntax survives, and mentions
    /// and references carry a zero-width space.
    #[test]
    fn messages_parse_back_as_the_text_they_are() {
        let hostile =
            r"a *b* _c_ [l](http://x) <img src=x> `d` ~~e~~ $f$ | g \h & i &amp; @octocat #1";
        let id = ResourceId::new("k8s", "serviceaccount", ["c", "ns", "a"]);
        let change = Change {
            id: id.clone(),
            kind: ChangeKind::Conflict,
            reason: Reason::Blocked(hostile.into()),
            desired: Some(Resource::new(id).into()),
            observed: None,
            changed: Vec::new(),
        };
        let planned = Planned {
            desired: Desired::default(),
            changes: vec![change],
            warnings: vec![hostile.into()],
            preflight: wid_core::Preflight::default(),
            observed: wid_core::Observed::default(),
            ..Planned::default()
        };
        let (places, calls) = (BTreeMap::new(), BTreeMap::new());
        let view = PlanView {
            plan: "p",
            planned: &planned,
            places: &places,
            calls: &calls,
        };
        let md = render(&view, COMMENT_BUDGET);
        let arena = comrak::Arena::new();
        let mut options = comrak::Options::default();
        options.extension.table = true;
        options.extension.strikethrough = true;
        options.extension.autolink = true;
        options.extension.alerts = true;
        options.extension.math_dollars = true;
        let root = comrak::parse_document(&arena, &md, &options);
        let mut paragraphs = Vec::new();
        for node in root.descendants() {
            let value = node.data().value.clone();
            match value {
                NodeValue::Paragraph => {
                    let mut text = String::new();
                    for n in node.descendants() {
                        match &n.data().value {
                            NodeValue::Text(t) => text.push_str(t),
                            NodeValue::Code(c) => text.push_str(&c.literal),
                            NodeValue::Link(_)
                            | NodeValue::Image(_)
                            | NodeValue::Emph
                            | NodeValue::Strikethrough
                            | NodeValue::Math(_)
                            | NodeValue::HtmlInline(_) => {
                                panic!("markup in a message: {:?} in {md}", n.data().value)
                            }
                            _ => {}
                        }
                    }
                    paragraphs.push(text.replace('\u{200B}', ""));
                }
                NodeValue::HtmlInline(h) => panic!("inline HTML {h} in {md}"),
                _ => {}
            }
        }
        let with_message = paragraphs.iter().filter(|p| p.ends_with(hostile)).count();
        assert_eq!(
            with_message, 3,
            "alert, details and warning: {paragraphs:#?}"
        );
    }
}
