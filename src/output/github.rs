//! `--output github`: GitHub Actions workflow commands. One annotation per workload on the
//! plan-file line that declares it (`::error` for conflicts, `::warning` for drift and
//! incomplete applies, `::notice` for the rest), a summary notice, and the markdown
//! comment appended to `$GITHUB_STEP_SUMMARY` when the runner sets it.
//!
//! Escaping follows the runner's rules (actions/toolkit `command.ts`): in a message `%`,
//! `\r` and `\n` are percent-encoded; in a property also `:` and `,`. GitHub shows at most
//! 10 annotations of each level per step, so each level is capped, the last slot saying
//! how many more there are.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use wid_core::{AttrValue, Change, ChangeKind, Reason};

use super::mdtext::clip;
use super::view::{Group, PlanView, Why, label};

/// Annotations of one level GitHub shows per step.
pub const ANNOTATIONS_PER_LEVEL: usize = 10;
/// Annotations the last one of a level names when the cap drops them.
const MORE_NAMED: usize = 30;
/// Characters of a value in an annotation.
const VALUE_CHARS: usize = 200;

/// Escapes a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (`file=`, `title=`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One workflow command.
struct Annotation {
    level: Level,
    file: Option<(String, usize, usize)>,
    title: String,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
        }
    }
}

impl Annotation {
    fn command(&self) -> String {
        let mut props = Vec::new();
        if let Some((file, line, col)) = &self.file {
            props.push(format!("file={}", escape_property(file)));
            props.push(format!("line={line}"));
            props.push(format!("col={col}"));
        }
        props.push(format!("title={}", escape_property(&self.title)));
        format!(
            "::{} {}::{}\n",
            self.level.name(),
            props.join(","),
            escape_data(&self.message)
        )
    }
}

/// The workflow commands for a plan.
pub fn render(view: &PlanView<'_>) -> String {
    let s = view.summary();
    let headline = if !s.pending() && s.conflict == 0 {
        format!(
            "No changes: the live state matches the plan ({} resources, {} API calls).",
            s.unchanged,
            view.api_calls()
        )
    } else {
        let whys: Vec<String> = view
            .whys()
            .into_iter()
            .map(|(why, n)| why.count(n))
            .collect();
        format!(
            "{} to create, {} to update, {} to delete, {} conflicts; {} unchanged ({} API calls). Why: {}.",
            s.create,
            s.update,
            s.delete,
            s.conflict,
            s.unchanged,
            view.api_calls(),
            whys.join(", ")
        )
    };
    let mut all = vec![Annotation {
        level: if s.conflict > 0 {
            Level::Error
        } else {
            Level::Notice
        },
        file: None,
        title: format!("wid plan {}", view.plan),
        message: headline,
    }];
    for w in &view.planned.warnings {
        all.push(Annotation {
            level: Level::Warning,
            file: None,
            title: format!("wid plan {}: preflight warning", view.plan),
            message: w.clone(),
        });
    }
    // Within a level, annotations on a plan line come before those without one: the cap
    // should drop what has no line to point at first.
    let mut groups: Vec<Annotation> = view
        .groups()
        .iter()
        .map(|g| annotate(view.plan, g))
        .collect();
    groups.sort_by_key(|a| a.file.is_none());
    all.extend(groups);
    let mut out = String::new();
    for level in [Level::Error, Level::Warning, Level::Notice] {
        let of_level: Vec<&Annotation> = all.iter().filter(|a| a.level == level).collect();
        let fits = if of_level.len() > ANNOTATIONS_PER_LEVEL {
            ANNOTATIONS_PER_LEVEL - 1
        } else {
            of_level.len()
        };
        for a in &of_level[..fits] {
            out.push_str(&a.command());
        }
        if fits < of_level.len() {
            let rest = &of_level[fits..];
            let mut names: Vec<&str> = rest
                .iter()
                .map(|a| a.title.as_str())
                .take(MORE_NAMED)
                .collect();
            let unnamed = format!("… and {} more", rest.len().saturating_sub(MORE_NAMED));
            if rest.len() > MORE_NAMED {
                names.push(&unnamed);
            }
            let more = Annotation {
                level,
                file: None,
                title: format!(
                    "wid plan {}: {} more {}s",
                    view.plan,
                    rest.len(),
                    level.name()
                ),
                message: format!(
                    "GitHub shows {ANNOTATIONS_PER_LEVEL} annotations of a level per step; these are in the step summary and in `wid plan` output:\n{}",
                    names.join("\n")
                ),
            };
            out.push_str(&more.command());
        }
    }
    out
}

fn annotate(plan: &str, group: &Group<'_>) -> Annotation {
    let whys: Vec<Option<Why>> = group.changes.iter().map(|c| Why::of(c)).collect();
    let level = if whys.contains(&Some(Why::Conflict)) {
        Level::Error
    } else if whys.contains(&Some(Why::Drift)) || whys.contains(&Some(Why::Incomplete)) {
        Level::Warning
    } else {
        Level::Notice
    };
    let mut message = String::new();
    for c in &group.changes {
        describe(c, &mut message);
    }
    Annotation {
        level,
        file: group.place.map(|p| (p.file.clone(), p.line, p.column)),
        title: format!("wid plan {plan}: {}: {}", group.name(), group.summary()),
        message: message.trim_end().to_owned(),
    }
}

fn value(v: &serde_json::Value) -> String {
    text(&v.to_string())
}

/// A value's compact JSON text, clipped.
fn text(text: &str) -> String {
    let (shown, cut) = clip(text, VALUE_CHARS);
    if cut > 0 {
        format!("{shown}… ({cut} more characters)")
    } else {
        shown
    }
}

fn describe(c: &Change, out: &mut String) {
    let marker = match c.kind {
        ChangeKind::Create => "+",
        ChangeKind::Update => "~",
        ChangeKind::Delete => "-",
        ChangeKind::Conflict => "!",
        ChangeKind::NoOp => " ",
    };
    let _ = write!(out, "{marker} {} ({})", c.id, label(c));
    if let Reason::Blocked(why) = &c.reason {
        let _ = write!(out, ": {why}");
    }
    out.push('\n');
    for a in c.attr_changes() {
        let after = match a.after {
            Some(AttrValue::Known(v)) if c.kind == ChangeKind::Create && v.is_null() => continue,
            Some(AttrValue::Known(v)) => value(v),
            Some(AttrValue::Json(json)) => text(json.as_str()),
            Some(AttrValue::Unknown { .. }) => "(known after apply)".to_owned(),
            None => "(removed)".to_owned(),
        };
        let line = match (a.before, c.kind) {
            (_, ChangeKind::Create) => format!("{}: {after}", a.key),
            (Some(b), ChangeKind::Delete) => format!("{}: {}", a.key, value(b)),
            (Some(b), _) => format!("{}: {} → {after}", a.key, value(b)),
            (None, _) => format!("{}: (unset) → {after}", a.key),
        };
        let _ = writeln!(out, "    {line}");
    }
}

/// Appends `markdown` to the step summary file the runner named in
/// `$GITHUB_STEP_SUMMARY`.
pub fn append_step_summary(path: &Path, markdown: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(markdown.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_runner() {
        assert_eq!(escape_data("50% a\r\nb:c,d"), "50%25 a%0D%0Ab:c,d");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }
}
