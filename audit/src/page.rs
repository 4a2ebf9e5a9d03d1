//! Each check's page (`docs/checks/SA00N.md`), generated from the check's outline: what
//! it checks, why it matters (with the hardening guide's checklist item and how other
//! scanners do it), an example finding (produced by running the check on its example),
//! the fix, how to accept it, and references. `wid audit --explain` prints this text and
//! SARIF rules carry it as their help, so the page, the CLI and code-scanning UIs say the
//! same thing; a test fails when a committed page differs.

use std::fmt::Write as _;

use crate::accept::ANNOTATION;
use crate::checks::Check;
use crate::context::Context;
use crate::model::Finding;
use crate::snapshot::Snapshot;

/// The page's path in the repository, relative to its root.
pub fn page_path(id: &str) -> String {
    format!("docs/checks/{id}.md")
}

/// The check's source file, relative to the repository root.
fn source_path(c: &Check) -> String {
    format!("audit/src/checks/{}.rs", c.name.replace('-', "_"))
}

/// The first finding the check reports on its own example, under its example context.
pub fn example_finding(c: &Check) -> Option<Finding> {
    let snap = Snapshot::from_yaml(c.example).ok()?;
    let ctx: Context = if c.example_context.is_empty() {
        Context::default()
    } else {
        serde_json::from_str(c.example_context).ok()?
    };
    crate::run_checks(&snap, &ctx, &[c])
        .findings
        .into_iter()
        .next()
}

/// The page, as Markdown.
pub fn page(c: &Check) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {} {}\n", c.id, c.name);
    let _ = writeln!(out, "Default severity: **{}**.\n", c.severity);
    let _ = writeln!(out, "## What it checks\n\n{}\n", c.summary.trim());
    let _ = writeln!(out, "## Why it matters\n\n{}\n", c.why.trim());
    let _ = writeln!(
        out,
        "The service-account hardening guide's checklist: \"{}\"\n",
        c.guide.trim()
    );
    let _ = writeln!(
        out,
        "### How other scanners check it\n\n{}\n",
        c.others.trim()
    );
    let _ = writeln!(out, "## Example finding\n");
    let _ = writeln!(out, "```yaml\n{}```\n", ensure_newline(c.example));
    match example_finding(c) {
        Some(f) => {
            let context = if c.example_context.is_empty() {
                ""
            } else {
                " (given a plan that declares no workload for this ServiceAccount)"
            };
            let _ = writeln!(
                out,
                "`wid audit --manifests example.yaml`{context} reports:\n\n```text\n{} {} {}\n  {}\n  fix: {}\n```\n",
                f.severity.as_str().to_ascii_uppercase(),
                f.check_id,
                f.resource,
                f.message,
                f.fix
            );
            let _ = writeln!(out, "## Fix\n\n{}\n", indent_code(c.fix.trim()));
            accepting(&mut out, c, &f);
        }
        None => {
            let _ = writeln!(out, "## Fix\n\n{}\n", indent_code(c.fix.trim()));
        }
    }
    let _ = writeln!(out, "## References\n");
    for (title, url) in c.references {
        let _ = writeln!(out, "- [{title}]({url})");
    }
    let _ = writeln!(
        out,
        "\n---\n\nGenerated from `{}`; `wid audit --explain {}` prints this page.",
        source_path(c),
        c.id
    );
    out
}

fn ensure_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}

/// The outlines write commands and snippets indented by two spaces after a line ending in
/// a colon; on the page they become fenced blocks.
fn indent_code(text: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    // Blank lines seen inside a block: they belong to it only if more code follows.
    let mut blanks = 0;
    for line in text.lines() {
        if line.is_empty() {
            blanks += 1;
            continue;
        }
        let code = line.starts_with("  ");
        if code && !in_code {
            out.push_str(&"\n".repeat(blanks));
            out.push_str("```\n");
            in_code = true;
        } else if !code && in_code {
            out.push_str("```\n");
            out.push_str(&"\n".repeat(blanks));
            in_code = false;
        } else {
            out.push_str(&"\n".repeat(blanks));
        }
        blanks = 0;
        out.push_str(if code { &line[2..] } else { line });
        out.push('\n');
    }
    if in_code {
        out.push_str("```\n");
    }
    out.trim_end().to_owned()
}

fn accepting(out: &mut String, c: &Check, f: &Finding) {
    let _ = writeln!(
        out,
        "## Accepting it\n\n\
Fix it where you can. Where the risk is taken on purpose, accept the finding with a reason: it then shows as \
suppressed in SARIF and under `accepted` in JSON (with the reason and expiry), is counted but not listed in \
human output (`--show-accepted` lists it), and never counts toward `--fail-on`. An acceptance stops \
suppressing after its date, and one that matches nothing is reported as stale.\n"
    );
    let r = &f.resource;
    if r.kind.starts_with("IAM") || r.kind.starts_with("GCP") {
        let _ = writeln!(
            out,
            "A cloud object carries no annotation: accept it in the exceptions file given with `--exceptions FILE`:\n"
        );
    } else {
        let _ = writeln!(
            out,
            "On the object the finding names (here {r}), with the annotation `{ANNOTATION}` (one entry per line; \
`until DATE` is optional):\n\n```yaml\nmetadata:\n  annotations:\n    {ANNOTATION}: \"{id} until 2027-03-31: <why the risk is accepted; ticket>\"\n```\n\n\
or in the exceptions file given with `--exceptions FILE` (`expires` is required):\n",
            id = c.id
        );
    }
    let mut entry = format!("[[accept]]\ncheck = \"{}\"\n", c.id);
    if let Some(ns) = &r.namespace {
        let _ = writeln!(entry, "namespace = \"{ns}\"");
    }
    let _ = writeln!(entry, "kind = \"{}\"\nname = \"{}\"", r.kind, r.name);
    entry.push_str("reason = \"<why the risk is accepted; ticket>\"\nexpires = 2027-03-31\n");
    let _ = writeln!(out, "```toml\n{entry}```\n");
    let _ = writeln!(
        out,
        "[docs/ci.md](../ci.md) gives the annotation grammar and the exceptions file format.\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indented_snippets_become_fenced_blocks() {
        let text =
            "In the plan:\n\n  [clusters.prod]\n  x = 1\n\nor by hand:\n\n  kubectl patch sa\n";
        assert_eq!(
            indent_code(text.trim()),
            "In the plan:\n\n```\n[clusters.prod]\nx = 1\n```\n\nor by hand:\n\n```\nkubectl patch sa\n```"
        );
    }
}
