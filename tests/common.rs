//! Helpers for the CLI integration tests: run the real `wid` binary against a sandbox in
//! a temp dir, and drive `wid sandbox serve` with kubectl.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repo root (examples live there).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `wid ARGS` with no terminal, no colour, in `cwd`.
pub fn wid(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wid"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("WID_AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run wid")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit code.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Asserts the exit code, printing both streams when it differs.
#[track_caller]
pub fn expect_code(o: &Output, want: i32) {
    assert_eq!(code(o), want, "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

/// Whether a tool is on PATH; says so loudly when it is not.
pub fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg(if tool == "kubectl" { "version" } else { "--version" })
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("SKIPPED: {tool} not found on PATH; this test needs it and did not run");
    }
    found
}

/// A `wid sandbox serve` process, killed on drop.
pub struct Serve {
    child: Child,
    /// The sandbox dir.
    pub dir: PathBuf,
}

impl Serve {
    /// Starts `wid sandbox serve --dir DIR` and waits for its kubeconfig.
    pub fn start(dir: &Path) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let child = Command::new(env!("CARGO_BIN_EXE_wid"))
            .args(["sandbox", "serve", "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wid sandbox serve");
        let start = Instant::now();
        while !kubeconfig.exists() {
            assert!(start.elapsed() < Duration::from_secs(30), "sandbox serve did not write its kubeconfig");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            dir: dir.to_owned(),
        }
    }

    /// Runs kubectl against it.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .args(args)
            .output()
            .expect("run kubectl");
        assert!(out.status.success(), "kubectl {args:?} failed:\n{}", stderr(&out));
        out
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Total sandbox API calls recorded in DIR/calls.json (0 when absent).
pub fn sandbox_calls(dir: &Path) -> u64 {
    std::fs::read(dir.join("calls.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<std::collections::BTreeMap<String, u64>>(&b).ok())
        .map_or(0, |m| m.values().sum())
}

/// Copies a directory's `*.toml` files into `to`.
pub fn copy_plan(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}
