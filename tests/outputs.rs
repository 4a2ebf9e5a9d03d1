//! The pull-request outputs: `--output markdown` (a GitHub comment) and `--output github`
//! (workflow commands, and the markdown appended to `$GITHUB_STEP_SUMMARY`), for the
//! quickstart's first plan, a drift plan, a plan with conflicts, a plan with an
//! incomplete apply, and a plan too large for one comment. Every markdown is parsed as
//! GitHub-flavoured markdown (comrak, with GitHub's extensions) and its structure checked:
//! balanced `<details>` blocks, table rows whose cells hold what was meant, code spans
//! that hold the exact values, no HTML and no live `@mention` from plan contents.

mod common;

use std::path::Path;

use common::*;
use comrak::nodes::NodeValue;
use comrak::{Arena, Options, parse_document};

/// What one plan printed in each PR format.
struct Outputs {
    markdown: String,
    github: String,
    /// What `--output github` appended to the step summary.
    summary: String,
    code: i32,
}

fn outputs(cwd: &Path, plan: &str, sb: &Path) -> Outputs {
    let sbs = sb.display().to_string();
    let md = wid(
        cwd,
        &["plan", plan, "--output", "markdown", "--sandbox-dir", &sbs],
    );
    let summary = tempfile::NamedTempFile::new().unwrap();
    let gh = wid_env(
        cwd,
        &["plan", plan, "--output", "github", "--sandbox-dir", &sbs],
        &[("GITHUB_STEP_SUMMARY", summary.path())],
    );
    assert_eq!(code(&md), code(&gh), "{}", stderr(&gh));
    Outputs {
        markdown: stdout(&md),
        github: stdout(&gh),
        summary: std::fs::read_to_string(summary.path()).unwrap(),
        code: code(&md),
    }
}

/// The parts of a parsed comment the checks look at.
#[derive(Debug, Default)]
struct Gfm {
    /// `<details>` openings and closings.
    details_open: usize,
    details_close: usize,
    /// Every table: rows of cells, each cell as the text it shows.
    tables: Vec<Vec<Vec<String>>>,
    /// Code span contents.
    codes: Vec<String>,
    /// Text node contents.
    texts: Vec<String>,
    /// Raw inline HTML.
    html_inline: Vec<String>,
    /// Alert kinds, in order.
    alerts: Vec<String>,
    /// Fenced code blocks: (info, body).
    fences: Vec<(String, String)>,
    links: usize,
}

fn options() -> Options<'static> {
    let mut o = Options::default();
    o.extension.table = true;
    o.extension.strikethrough = true;
    o.extension.autolink = true;
    o.extension.tasklist = true;
    o.extension.alerts = true;
    o
}

/// Shown text of a node: text and code literals, entity-decoded, in order.
fn shown<'a>(node: &'a comrak::nodes::AstNode<'a>) -> String {
    let mut out = String::new();
    for n in node.descendants() {
        match &n.data().value {
            NodeValue::Text(t) => out.push_str(t),
            NodeValue::Code(c) => out.push_str(&c.literal),
            _ => {}
        }
    }
    out
}

/// Parses a comment and checks what every comment must satisfy.
fn gfm(md: &str) -> Gfm {
    assert!(
        md.chars().count() <= 65_536,
        "over GitHub's comment limit: {} characters",
        md.chars().count()
    );
    parse(md)
}

/// Parses markdown (a comment or a step summary) and checks its structure.
fn parse(md: &str) -> Gfm {
    let arena = Arena::new();
    let root = parse_document(&arena, md, &options());
    let mut g = Gfm::default();
    for node in root.descendants() {
        match &node.data().value {
            NodeValue::HtmlBlock(h) => {
                let lit = h.literal.trim_end();
                if lit.starts_with("<details><summary>") {
                    assert!(lit.ends_with("</summary>"), "{lit}");
                    g.details_open += 1;
                } else if lit == "</details>" {
                    g.details_close += 1;
                } else {
                    assert!(
                        lit.starts_with("<!-- wid plan: ") && lit.ends_with(" -->"),
                        "unexpected HTML block: {lit}"
                    );
                }
            }
            NodeValue::HtmlInline(h) => g.html_inline.push(h.clone()),
            NodeValue::Code(c) => g.codes.push(c.literal.clone()),
            NodeValue::Text(t) => g.texts.push(t.to_string()),
            NodeValue::Alert(a) => g.alerts.push(format!("{:?}", a.alert_type)),
            NodeValue::CodeBlock(c) => g.fences.push((c.info.clone(), c.literal.clone())),
            NodeValue::Link(_) | NodeValue::Image(_) => g.links += 1,
            NodeValue::Table(_) => {
                let rows = node
                    .children()
                    .map(|row| row.children().map(shown).collect())
                    .collect();
                g.tables.push(rows);
            }
            _ => {}
        }
    }
    assert_eq!(g.details_open, g.details_close, "unbalanced <details>");
    for h in &g.html_inline {
        assert!(
            h == "<code>" || h == "</code>",
            "unexpected inline HTML: {h}"
        );
    }
    assert_eq!(g.links, 0, "no links or images in a plan comment");
    for t in &g.texts {
        let live_mention = t
            .char_indices()
            .any(|(i, c)| c == '@' && t[i + 1..].starts_with(|n: char| n.is_alphanumeric()));
        assert!(!live_mention, "a live @mention in: {t:?}");
    }
    // Every change table keeps its five columns: an escape that failed would add cells.
    for table in &g.tables {
        let width = table[0].len();
        assert!(table.iter().all(|r| r.len() == width), "{table:?}");
        if table[0][0] == "change" {
            for row in &table[1..] {
                let resource = &row[1];
                assert!(
                    resource.is_empty()
                        || resource.starts_with("k8s/")
                        || resource.starts_with("aws/"),
                    "the resource column holds {resource:?}"
                );
            }
        }
    }
    g
}

/// The GitHub commands' invariants: one command per line, at most ten of a level.
fn github(text: &str) {
    for level in ["error", "warning", "notice"] {
        let n = text
            .lines()
            .filter(|l| l.starts_with(&format!("::{level} ")))
            .count();
        assert!(n <= 10, "{n} {level} annotations");
    }
    for line in text.lines() {
        assert!(
            ["::error ", "::warning ", "::notice "]
                .iter()
                .any(|p| line.starts_with(p)),
            "not a workflow command: {line}"
        );
    }
}

/// The change rows of the tables: (change, resource, attribute, before, after).
fn rows(g: &Gfm) -> Vec<Vec<String>> {
    g.tables
        .iter()
        .filter(|t| t[0][0] == "change")
        .flat_map(|t| t[1..].iter().cloned())
        .collect()
}

fn sandbox_flags(sb: &Path) -> [String; 2] {
    ["--sandbox-dir".into(), sb.display().to_string()]
}

fn apply_quickstart(sb: &Path) {
    let [a, b] = sandbox_flags(sb);
    let out = wid(
        &root(),
        &["apply", "examples/quickstart", "--auto-approve", &a, &b],
    );
    expect_code(&out, 0);
}

#[test]
fn quickstart_first_plan_as_a_comment_and_as_annotations() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let out = outputs(&root(), "examples/quickstart", &sb);
    assert_eq!(out.code, 0);
    let g = gfm(&out.markdown);
    assert_eq!(
        g.details_open, 5,
        "two clusters' objects and three workloads"
    );
    // The counts table: one row per cluster, and the total.
    let counts = &g.tables[0];
    assert_eq!(counts[0][0], "where");
    assert_eq!(counts[1], ["cluster dev", "6", "0", "0", "0", "0"]);
    assert_eq!(counts[3], ["total", "8", "0", "0", "0", "0"]);
    let rows = rows(&g);
    assert!(rows.contains(&vec![
        "create".into(),
        "k8s/serviceaccount/dev/payments/orders".into(),
        "annotations.example.com/owner".into(),
        String::new(),
        "\"payments-team\"".into(),
    ]));
    insta::assert_snapshot!("markdown_quickstart_first_plan", out.markdown);
    github(&out.github);
    assert!(
        out.github.contains(
            "::notice file=examples/quickstart/workloads.toml,line=5,col=1,title=wid plan quickstart%3A dev/payments/orders%3A 1 to create::"
        ),
        "{}",
        out.github
    );
    insta::assert_snapshot!("github_quickstart_first_plan", out.github);
    assert_eq!(
        out.summary,
        format!("{}\n", out.markdown),
        "the step summary gets the comment"
    );
}

#[test]
fn a_saved_plan_shows_as_it_planned() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let saved = tmp.path().join("plan.wid").display().to_string();
    let [a, b] = sandbox_flags(&sb);
    let plan = wid(
        &root(),
        &[
            "plan",
            "examples/quickstart",
            "--out",
            &saved,
            "--output",
            "markdown",
            &a,
            &b,
        ],
    );
    expect_code(&plan, 0);
    for format in ["markdown", "json", "github"] {
        let shown = wid(&root(), &["show", &saved, "--output", format]);
        expect_code(&shown, 0);
        let planned = wid(
            &root(),
            &["plan", "examples/quickstart", "--output", format, &a, &b],
        );
        assert_eq!(stdout(&shown), stdout(&planned), "show --output {format}");
    }
    assert_eq!(
        stdout(&wid(&root(), &["show", &saved, "--output", "markdown"])),
        stdout(&plan)
    );
    let human = stdout(&wid(&root(), &["show", &saved]));
    assert!(
        human.starts_with("Saved plan \"quickstart\" (wid "),
        "{human}"
    );
    assert!(human.contains("Plan: 8 to create"), "{human}");
}

#[test]
fn drift_is_a_warning_with_before_and_after() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    apply_quickstart(&sb);
    {
        let serve = Serve::start(&sb);
        serve.kubectl(&[
            "--context",
            "dev",
            "-n",
            "payments",
            "patch",
            "sa",
            "orders",
            "-p",
            r#"{"automountServiceAccountToken":true}"#,
        ]);
    }
    let out = outputs(&root(), "examples/quickstart", &sb);
    assert_eq!(out.code, 0);
    let g = gfm(&out.markdown);
    assert_eq!(g.alerts, ["Warning"]);
    assert_eq!(g.details_open, 1);
    assert_eq!(
        rows(&g),
        [[
            "update (drift)",
            "k8s/serviceaccount/dev/payments/orders",
            "automountServiceAccountToken",
            "true",
            "false"
        ]]
    );
    insta::assert_snapshot!("markdown_drift_plan", out.markdown);
    github(&out.github);
    assert!(
        out.github
            .contains("::warning file=examples/quickstart/workloads.toml,line=5,col=1,")
    );
    insta::assert_snapshot!("github_drift_plan", out.github);
}

const INTRUDER: &str = r#"version = 1
name = "intruder"

[clusters.dev]
kind = "generic"

# Both KSAs belong to the quickstart plan: conflicts.
[[workload]]
cluster = "dev"
namespace = "payments"
service_account = "orders"

[[workload]]
cluster = "dev"
namespace = "payments"
service_account = "config-watcher"
automount_token = true

[[workload]]
cluster = "dev"
namespace = "payments"
service_account = "newcomer"
"#;

#[test]
fn conflicts_are_errors_and_come_first() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    apply_quickstart(&sb);
    std::fs::write(tmp.path().join("intruder.toml"), INTRUDER).unwrap();
    let out = outputs(tmp.path(), "intruder.toml", &sb);
    assert_eq!(out.code, 1, "conflicts fail the plan");
    let g = gfm(&out.markdown);
    assert_eq!(g.alerts, ["Caution"]);
    assert_eq!(g.details_open, 3);
    // Conflict groups come before the rest.
    let rows = rows(&g);
    assert_eq!(rows[0][0], "conflict");
    assert_eq!(rows.last().unwrap()[0], "create");
    insta::assert_snapshot!("markdown_conflicts_plan", out.markdown);
    github(&out.github);
    assert!(
        out.github
            .contains("::error file=intruder.toml,line=8,col=1,title=wid plan intruder%3A dev/payments/orders%3A 1 conflict::"),
        "{}",
        out.github
    );
    insta::assert_snapshot!("github_conflicts_plan", out.github);
}

#[test]
fn an_incomplete_apply_is_told_apart_from_drift() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    apply_quickstart(&sb);
    {
        // What an apply that stopped part-way leaves: the object half-changed, and its
        // applied record saying the apply of these attributes is incomplete.
        let serve = Serve::start(&sb);
        let k = |args: &[&str]| {
            let mut all = vec!["--context", "dev", "-n", "payments"];
            all.extend_from_slice(args);
            stdout(&serve.kubectl(&all))
        };
        let hash = k(&[
            "get",
            "sa",
            "orders",
            "-o",
            r"jsonpath={.metadata.annotations.wid\.dev/applied}",
        ]);
        assert_eq!(hash.trim().len(), 16, "{hash}");
        k(&[
            "annotate",
            "sa",
            "orders",
            "--overwrite",
            &format!("wid.dev/applied=incomplete:{}", hash.trim()),
        ]);
        k(&[
            "patch",
            "sa",
            "orders",
            "-p",
            r#"{"automountServiceAccountToken":true}"#,
        ]);
    }
    let out = outputs(&root(), "examples/quickstart", &sb);
    let g = gfm(&out.markdown);
    assert_eq!(g.alerts, ["Important"]);
    assert!(!out.markdown.contains("(drift)"), "{}", out.markdown);
    assert_eq!(rows(&g)[0][0], "update (incomplete apply)");
    insta::assert_snapshot!("markdown_incomplete_plan", out.markdown);
    github(&out.github);
    assert!(
        out.github
            .contains("::warning file=examples/quickstart/workloads.toml,line=5,col=1,")
    );
    insta::assert_snapshot!("github_incomplete_plan", out.github);
}

/// A plan of `n` workloads in one cluster, each KSA with a long annotation.
fn big_plan(n: usize) -> String {
    let mut plan = String::from(
        "version = 1\nname = \"big\"\n\n[clusters.big]\nkind = \"generic\"\ncreate_namespaces = true\n",
    );
    for i in 0..n {
        plan.push_str(&format!(
            "\n[[workload]]\ncluster = \"big\"\nnamespace = \"team-{}\"\nservice_account = \"app-{i:04}\"\nannotations = {{ \"example.com/description\" = \"{}\" }}\n",
            i % 10,
            "a long description of what this workload does and who runs it. ".repeat(3)
        ));
    }
    plan
}

#[test]
fn a_plan_too_large_for_a_comment_is_cut_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    std::fs::write(tmp.path().join("big.toml"), big_plan(400)).unwrap();
    let out = outputs(tmp.path(), "big.toml", &sb);
    assert_eq!(out.code, 0);
    assert!(out.markdown.len() <= 60_000, "{} bytes", out.markdown.len());
    let g = gfm(&out.markdown);
    let shown = g.details_open;
    assert!(shown > 10 && shown < 401, "{shown} groups shown");
    let note = out.markdown.lines().last().unwrap();
    assert!(
        note.contains(&format!("{} of 401 workloads and groups (", 401 - shown)),
        "{note}"
    );
    assert_eq!(g.alerts.last().map(String::as_str), Some("Note"));
    // The step summary has room for all of it.
    let all = parse(&out.summary);
    assert_eq!(all.details_open, 401);
    // Snapshot the head and the cut; the middle is the same block 150 times over.
    let lines: Vec<&str> = out.markdown.lines().collect();
    let excerpt = format!(
        "{}\n[… {} lines …]\n{}",
        lines[..24].join("\n"),
        lines.len() - 24 - 12,
        lines[lines.len() - 12..].join("\n")
    );
    insta::assert_snapshot!("markdown_too_large_plan", excerpt);
    github(&out.github);
    insta::assert_snapshot!("github_too_large_plan", out.github);
}

#[test]
fn plan_contents_are_escaped_not_rendered() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let hostile =
        "a|b`c`` <img src=x onerror=alert(1)> **bold** @octocat #1 [x](http://e.com) </details>";
    let backslash = r"C:\path\|pipe";
    let long = "x".repeat(5_000);
    let plan = format!(
        "version = 1\nname = \"escapes\"\n\n[clusters.dev]\nkind = \"generic\"\ncreate_namespaces = true\n\n[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\nannotations = {{ \"example.com/hostile\" = '{hostile}', \"example.com/backslash\" = '{backslash}', \"example.com/long\" = \"{long}\" }}\n"
    );
    let dir = tmp.path().join("we`ird|dir @team");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plan.toml"), plan).unwrap();
    let out = outputs(tmp.path(), "we`ird|dir @team/plan.toml", &sb);
    assert_eq!(out.code, 0, "{}", out.markdown);
    let g = gfm(&out.markdown);
    let json = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    assert!(
        g.codes.contains(&json(hostile)),
        "the hostile value is one code span, exactly: {:?}",
        g.codes
    );
    assert!(
        g.codes
            .contains(&"we`ird|dir @team/plan.toml:8:1".to_owned()),
        "{:?}",
        g.codes
    );
    let cells: Vec<String> = rows(&g).into_iter().map(|r| r[4].clone()).collect();
    assert!(cells.contains(&json(backslash)), "{cells:?}");
    let cut = cells
        .iter()
        .find(|c| c.starts_with("\"xxx"))
        .expect("the long value");
    assert!(
        cut.ends_with(&format!("… ({} more characters)", 5_002 - 200)),
        "{cut}"
    );
    assert!(!out.markdown.contains(&long[..1_000]));
    github(&out.github);
    // One line per command: the value's newlines and separators are encoded.
    assert_eq!(out.github.lines().count(), 3, "{}", out.github);
    assert!(
        out.github
            .contains("file=we`ird|dir @team/plan.toml,line=8,col=1,"),
        "{}",
        out.github
    );
}
