//! Every check has its page, `docs/checks/SA00N.md`, and the committed page is exactly what
//! `wid audit --explain` prints (both come from the check's outline). Regenerate the pages
//! with `WID_UPDATE_DOCS=1 cargo test -p wid-audit --test pages`.

use std::path::{Path, PathBuf};

use wid_audit::checks::{checks, explain, page, page_path};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_check_has_a_current_page_and_explain_prints_it() {
    let update = std::env::var_os("WID_UPDATE_DOCS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for c in checks() {
        let path = repo().join(page_path(c.id));
        let generated = page(c);
        assert_eq!(
            explain(c.id).as_deref(),
            Some(generated.as_str()),
            "{}",
            c.id
        );
        if update {
            std::fs::write(&path, &generated).expect("write page");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == generated => {}
            Ok(_) => stale.push(format!(
                "{} differs from {}'s outline",
                page_path(c.id),
                c.id
            )),
            Err(_) => stale.push(format!("{} is missing", page_path(c.id))),
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:#?}\nregenerate with WID_UPDATE_DOCS=1 cargo test -p wid-audit --test pages"
    );
}

#[test]
fn no_page_without_a_check() {
    let dir = repo().join("docs/checks");
    let mut orphans = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("docs/checks exists") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let id = name.trim_end_matches(".md");
        if !checks().iter().any(|c| c.id == id) {
            orphans.push(name);
        }
    }
    assert!(orphans.is_empty(), "pages of no check: {orphans:?}");
}

#[test]
fn pages_link_each_other_and_the_ci_guide_only_where_files_exist() {
    for c in checks() {
        let text = page(c);
        assert!(text.starts_with(&format!("# {} {}\n", c.id, c.name)));
        for section in [
            "## What it checks",
            "## Why it matters",
            "## Example finding",
            "## Fix",
            "## Accepting it",
            "## References",
        ] {
            assert!(text.contains(section), "{}: no {section}", c.id);
        }
        assert!(
            !text.contains("example.invalid"),
            "{}: placeholder URL",
            c.id
        );
    }
    assert!(repo().join("docs/ci.md").is_file(), "pages link ../ci.md");
}
