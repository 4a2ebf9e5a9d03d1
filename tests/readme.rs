//! The README's shell blocks run, in order, against the sandbox only.
//!
//! Conventions (for everyone who adds a section to the README):
//! - Every fenced block tagged `sh` is run, in README order, each by its own
//!   `bash -e` in one scratch directory that holds `examples/` (a link to the repo's) and
//!   whatever earlier blocks left there (`.wid/sandbox`). Only files carry over between
//!   blocks: variables a block exports or sources are gone in the next one.
//! - `wid` is the binary under test, first on `PATH`. A block that cannot run inside
//!   `cargo test` (it builds wid, or runs the tests) is preceded by the line
//!   `<!-- readme-test: skip ... -->`; the top block (the two commands: `cargo run
//!   --release -- apply …` and `cargo test --workspace`) is one.
//! - A block passes when it exits 0. A command whose exit status the README shows is
//!   written `COMMAND; echo $?   # N: what N means`: the harness checks it exits exactly
//!   N (and the block goes on).
//! - Background servers: `wid sandbox serve --dir DIR &`, then `wid sandbox wait --dir
//!   DIR` before using them, and `kill %1; wait` at the end of the same block. Whatever a
//!   block leaves running is killed when it ends (each block is its own process group).
//! - Nothing may reach a real cloud or cluster: the blocks get a scratch `HOME`, AWS
//!   config and credentials files that do not exist, a `KUBECONFIG` that does not exist,
//!   and no AWS, Google Cloud or Azure variable of the machine. Every `wid` command that
//!   talks to clusters or clouds carries `--sandbox` or `--sandbox-dir`, and an `aws`,
//!   `gcloud` or `az` command only follows a `. DIR/env` of a served sandbox in its
//!   block; the harness rejects a block that breaks either rule before running it.

mod common;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One `sh` block of the README.
struct Block {
    /// The line of its opening fence (1-based), for messages.
    line: usize,
    /// Its text.
    text: String,
    /// Preceded by the skip marker.
    skip: bool,
}

const SKIP_MARKER: &str = "<!-- readme-test: skip";

fn blocks(readme: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let lines: Vec<&str> = readme.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```sh" {
            let skip = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with(SKIP_MARKER));
            let start = i;
            let mut text = String::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                text.push_str(lines[i]);
                text.push('\n');
                i += 1;
            }
            out.push(Block {
                line: start + 1,
                text,
                skip,
            });
        }
        i += 1;
    }
    out
}

/// The block's logical lines (backslash continuations joined).
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Rewrites `COMMAND; echo $?   # N...` so that the block checks COMMAND exits N.
fn with_exit_checks(text: &str) -> String {
    let shown = regex::Regex::new(r"^(?P<cmd>.*?);\s*echo \$\?\s*#\s*(?P<n>\d+)\b").unwrap();
    logical_lines(text)
        .into_iter()
        .map(|line| match shown.captures(&line) {
            Some(c) => format!(
                "{} && __rc=0 || __rc=$?; echo \"$__rc\"; test \"$__rc\" -eq {} || {{ echo \"expected exit {} from: {}\" >&2; exit 1; }}",
                &c["cmd"],
                &c["n"],
                &c["n"],
                c["cmd"].replace('"', "'")
            ),
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a block could reach a real cluster or cloud, if it could.
fn reaches_out(text: &str) -> Option<String> {
    let talks = ["plan", "apply", "destroy", "audit", "token"];
    let mut sourced_env = false;
    for line in logical_lines(text) {
        let words: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split(|c: char| c.is_whitespace() || ";&|".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        match words.as_slice() {
            [".", file, ..] | ["source", file, ..] if file.ends_with("/env") => {
                sourced_env = true;
            }
            // An audit of manifest files (or an explanation) reads no cluster.
            ["wid", "audit", ..]
                if words
                    .iter()
                    .any(|w| *w == "--manifests" || *w == "--explain") => {}
            ["wid", cmd, ..]
                if talks.contains(cmd)
                    && !words
                        .iter()
                        .any(|w| *w == "--sandbox" || *w == "--sandbox-dir") =>
            {
                return Some(format!("`{line}` has no --sandbox or --sandbox-dir"));
            }
            [tool, ..] if ["aws", "gcloud", "az"].contains(tool) && !sourced_env => {
                return Some(format!(
                    "`{line}` runs before the block sources a served sandbox's env"
                ));
            }
            ["kubectl", ..] if !line.contains("--kubeconfig") => {
                return Some(format!("`{line}` has no --kubeconfig of the sandbox"));
            }
            _ => {}
        }
    }
    None
}

/// A scratch directory: `examples/` linked, a `bin/wid` that is the binary under test,
/// and a `home/`.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("examples"), tmp.path().join("examples")).unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_wid"), bin.join("wid")).unwrap();
    std::fs::create_dir_all(tmp.path().join("home")).unwrap();
    (tmp, bin)
}

/// Runs one block with `bash -e` in `dir`, in its own process group (killed afterwards,
/// with anything it left running), with nothing of the machine's cloud configuration.
fn run_block(dir: &Path, bin: &Path, script: &str) -> (i32, String, String) {
    let home = dir.join("home");
    let nowhere = home.join("nowhere");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (out, err) = (dir.join("block.out"), dir.join("block.err"));
    let mut child = Command::new("bash")
        .args(["-e", "-c", script])
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .env("AWS_CONFIG_FILE", nowhere.join("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            nowhere.join("aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("KUBECONFIG", nowhere.join("kubeconfig"))
        .env("CLOUDSDK_CONFIG", nowhere.join("gcloud"))
        .env("AZURE_CONFIG_DIR", nowhere.join("azure"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .expect("run bash");
    let pgid = child.id();
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            break child.kill().and_then(|()| child.wait()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(out).unwrap_or_default(),
        std::fs::read_to_string(err).unwrap_or_default(),
    )
}

#[test]
fn every_readme_block_runs_in_order_against_the_sandbox_only() {
    if !have("kubectl") || !have("aws") {
        return;
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let blocks = blocks(&readme);
    assert!(blocks.len() >= 5, "the README has its sh blocks");
    assert!(
        blocks[0].skip,
        "the first block builds wid: it is marked to skip"
    );
    for b in &blocks {
        if let Some(why) = reaches_out(&b.text) {
            panic!("README.md:{}: {why}", b.line);
        }
    }
    let (dir, bin) = scratch();
    for b in blocks.iter().filter(|b| !b.skip) {
        let (code, out, err) = run_block(dir.path(), &bin, &with_exit_checks(&b.text));
        assert_eq!(
            code, 0,
            "README.md:{} failed:\n{}\n--- stdout\n{out}\n--- stderr\n{err}",
            b.line, b.text
        );
    }
}

#[test]
fn the_harness_reads_blocks_markers_and_exit_checks() {
    let readme = "<!-- readme-test: skip -->\n```sh\ncargo build\n```\ntext\n```sh\nwid plan x --sandbox; echo $?   # 2: pending\nkubectl --kubeconfig k \\\n  get sa\n```\n```toml\nx = 1\n```\n";
    let b = blocks(readme);
    assert_eq!(b.len(), 2);
    assert!(b[0].skip && !b[1].skip);
    assert_eq!(b[1].line, 6);
    let script = with_exit_checks(&b[1].text);
    assert!(script.contains("test \"$__rc\" -eq 2"), "{script}");
    assert!(
        script.contains("kubectl --kubeconfig k    get sa"),
        "{script}"
    );
    assert_eq!(reaches_out(&b[1].text), None);
    assert!(reaches_out("wid apply examples/eks --auto-approve\n").is_some());
    assert!(reaches_out("aws iam list-roles\n").is_some());
    assert!(reaches_out(". .wid/sandbox/env\naws iam list-roles\n").is_none());
    assert!(reaches_out("kubectl get sa -A\n").is_some());

    // The checks really check: a wrong exit status fails the block.
    let (dir, bin) = scratch();
    let ok = with_exit_checks("false; echo $?   # 1: fails\ntrue\n");
    assert_eq!(run_block(dir.path(), &bin, &ok).0, 0);
    let wrong = with_exit_checks("true; echo $?   # 2: should be pending\n");
    assert_eq!(run_block(dir.path(), &bin, &wrong).0, 1);
    let background = "sleep 60 &\nkill %1; wait\n";
    assert_eq!(run_block(dir.path(), &bin, background).0, 0);
}
