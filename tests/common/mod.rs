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
    assert_eq!(
        code(o),
        want,
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Whether a tool is on PATH; says so loudly when it is not.
pub fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg(if tool == "kubectl" {
            "version"
        } else {
            "--version"
        })
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
    /// Starts `wid sandbox serve --dir DIR` and waits until it serves.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// Starts `wid sandbox serve --dir DIR ARGS` (`--plan PATH`) and waits for its
    /// kubeconfig.
    pub fn start_with(dir: &Path, args: &[&str]) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let child = Command::new(env!("CARGO_BIN_EXE_wid"))
            .args(["sandbox", "serve", "--dir"])
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wid sandbox serve");
        let start = Instant::now();
        // The kubeconfig is written first, then serve.json, which other wid commands look
        // for: once its servers answer, everything is in place.
        while !kubeconfig.exists() || wid_sandbox::served(dir).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sandbox serve did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            dir: dir.to_owned(),
        }
    }

    /// The serving process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `HUP`, `INT`) with kill(1) and waits up to 30 s for the
    /// process to exit; returns whether it exited successfully.
    pub fn stop_with(&mut self, signal: &str) -> bool {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for serve") {
                return status.success();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sandbox serve did not exit within 30 s of SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs kubectl against it and returns its output, whatever the exit code.
    pub fn kubectl_output(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Runs kubectl against it.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .args(args)
            .output()
            .expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}",
            stderr(&out)
        );
        out
    }
}

impl Serve {
    /// Runs gcloud with the variables of DIR/env (sourced by bash, as a person would);
    /// panics on failure and returns stdout.
    pub fn gcloud(&self, args: &[&str]) -> String {
        let mut script = format!(". '{}' && gcloud", self.dir.join("env").display());
        for a in args {
            script.push_str(" '");
            script.push_str(&a.replace('\'', "'\\''"));
            script.push('\'');
        }
        let out = Command::new("bash")
            .args(["-c", &script])
            .env_remove("CLOUDSDK_CORE_PROJECT")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .output()
            .expect("run gcloud");
        assert!(
            out.status.success(),
            "gcloud {args:?} failed:\n{}",
            stderr(&out)
        );
        stdout(&out)
    }
}

impl Serve {
    /// Stops the server as a user would (SIGTERM), so it writes its state before it exits;
    /// kills it if it has not exited after 10 s.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server (SIGKILL): it writes nothing more, and the kernel frees its lock.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
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

/// A moto_server on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Moto {
    /// Starts moto_server, or `None` (after a loud SKIPPED line) when it is not installed.
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // moto knows AWS managed policies only when asked to load them.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "SKIPPED: moto_server not found on PATH; this test needs it and did not run (pip install 'moto[server]')"
                );
                return None;
            }
            Err(e) => panic!("cannot start moto_server: {e}"),
        };
        let moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    /// Runs `wid ARGS` with AWS pointed at this moto (dummy credentials).
    pub fn wid(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wid"))
            .args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .env("WID_AWS_ENDPOINT_URL", &self.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/wid-test-aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/wid-test-aws-credentials",
            )
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null())
            .output()
            .expect("run wid")
    }

    /// Runs the aws CLI against this moto; panics on failure.
    pub fn aws(&self, args: &[&str]) -> String {
        let out = Command::new("aws")
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/wid-test-aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/wid-test-aws-credentials",
            )
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run aws");
        assert!(
            out.status.success(),
            "aws {args:?} failed:\n{}",
            stderr(&out)
        );
        stdout(&out)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the aws CLI against a served sandbox with the variables of its DIR/env; panics on
/// failure and returns stdout.
pub fn sandbox_aws(dir: &Path, args: &[&str]) -> String {
    sandbox_aws_in(dir, None, args)
}

/// [`sandbox_aws`] acting in `account` (the sandbox reads it from the access key id)
/// instead of the sandbox's default account.
pub fn sandbox_aws_in(dir: &Path, account: Option<&str>, args: &[&str]) -> String {
    let env = std::fs::read_to_string(dir.join("env")).expect("the sandbox wrote DIR/env");
    let mut cmd = Command::new("aws");
    for line in env.lines() {
        if let Some((k, v)) = line.trim_start_matches("export ").split_once('=') {
            cmd.env(k, v);
        }
    }
    if let Some(account) = account {
        cmd.env("AWS_ACCESS_KEY_ID", format!("SANDBOX{account}"));
    }
    let out = cmd
        .env("AWS_CONFIG_FILE", "/nonexistent/wid-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/wid-test-aws-credentials",
        )
        .env_remove("AWS_PROFILE")
        .args(args)
        .output()
        .expect("run aws");
    assert!(
        out.status.success(),
        "aws {args:?} failed:\n{}",
        stderr(&out)
    );
    stdout(&out)
}

/// Sandbox API calls that write (anything but list, get, watch, describe), from
/// DIR/calls.json.
pub fn sandbox_writes(dir: &Path) -> u64 {
    let calls: std::collections::BTreeMap<String, u64> = std::fs::read(dir.join("calls.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    calls
        .iter()
        .filter(|(api, _)| {
            let op = api.split_once(':').map_or(api.as_str(), |(_, op)| op);
            let read = ["list", "get", "watch", "List", "Get", "Describe"]
                .iter()
                .any(|r| op.starts_with(r));
            !read
        })
        .map(|(_, n)| n)
        .sum()
}

/// Runs `wid ARGS` in `cwd` with extra environment variables (no terminal, no colour).
pub fn wid_env(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wid"));
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("WID_AWS_ENDPOINT_URL")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run wid")
}

/// The variables of a served sandbox's `DIR/env` (`export K='V'` lines), for clients run
/// without a shell.
pub fn env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .expect("DIR/env")
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.to_owned(), v.replace("'\\''", "'"))
        })
        .collect()
}
