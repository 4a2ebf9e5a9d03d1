//! Bounded runs through the CLI: a stalled Kubernetes API server, AWS endpoint, or GCP or
//! ARM API (a sandbox API that accepts calls and never answers them) fails the
//! plan with a timeout error naming what it waited for, within `--timeout`; policy files
//! that are not small regular files are located errors; Ctrl-C (SIGINT) drains an apply
//! (calls in flight finish, nothing new starts, the partial report is printed, exit 130),
//! a second one aborts it, and a re-run converges; Ctrl-C stops a plan at once.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// A server that accepts connections, reads what they send, and never answers.
fn stalled_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    url
}

/// Runs `wid ARGS` in `cwd` with extra environment variables.
fn wid_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wid"));
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("WID_AWS_ENDPOINT_URL")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run wid")
}

#[test]
fn a_stalled_api_server_fails_the_plan_within_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let url = stalled_server();
    std::fs::write(
        tmp.path().join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{url}'}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("plan.toml"),
        "version = 1\nname = \"stall\"\n\n[clusters.c]\nkind = \"generic\"\nkubeconfig = \"kubeconfig\"\ncontext = \"c\"\n\n[[workload]]\ncluster = \"c\"\nnamespace = \"default\"\nservice_account = \"a\"\n",
    )
    .unwrap();
    let start = Instant::now();
    let out = wid(
        tmp.path(),
        &[
            "plan",
            "plan.toml",
            "--call-timeout",
            "1s",
            "--timeout",
            "3s",
        ],
    );
    let took = start.elapsed();
    // The namespaces and the KSAs are listed at once; either is the last call started.
    assert_timed_out(
        took,
        &out,
        &["k8s:list namespaces", "k8s:list serviceaccounts"],
    );
}

#[test]
fn a_stalled_aws_endpoint_fails_the_plan_within_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let url = stalled_server();
    std::fs::write(
        tmp.path().join("plan.toml"),
        "version = 1\nname = \"stall\"\n\n[clusters.eks]\nkind = \"eks\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\nname = \"prod\"\n\n[[workload]]\ncluster = \"eks\"\nnamespace = \"default\"\nservice_account = \"a\"\naws.role = \"a\"\n",
    )
    .unwrap();
    let sb = tmp.path().join("sb").display().to_string();
    let start = Instant::now();
    let out = wid_env(
        tmp.path(),
        &[
            "plan",
            "plan.toml",
            "--sandbox-dir",
            &sb,
            "--aws-endpoint-url",
            &url,
            "--call-timeout",
            "1s",
            "--timeout",
            "3s",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE12"),
            ("AWS_SECRET_ACCESS_KEY", "example"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let took = start.elapsed();
    // The first AWS call checks whose credentials these are.
    assert_timed_out(took, &out, &["sts:GetCallerIdentity"]);
}

#[test]
fn policy_files_must_be_small_regular_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("a-directory")).unwrap();
    std::fs::write(dir.join("big.json"), vec![b' '; 10 * 1024 * 1024]).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(dir.join("fifo"))
        .status()
        .is_ok_and(|s| s.success());
    let mut text = String::from(
        "version = 1\nname = \"files\"\n\n[clusters.eks]\nkind = \"eks\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\nname = \"prod\"\n",
    );
    let files = ["/dev/zero", "a-directory", "big.json", "fifo"];
    for (i, file) in files.iter().enumerate() {
        if *file == "fifo" && !fifo {
            eprintln!("SKIPPED: mkfifo failed; the FIFO case did not run");
            continue;
        }
        text.push_str(&format!(
            "\n[[workload]]\ncluster = \"eks\"\nnamespace = \"default\"\nservice_account = \"w{i}\"\naws.role = \"w{i}\"\naws.inline_policies.p = {{ file = \"{file}\" }}\n"
        ));
    }
    std::fs::write(dir.join("plan.toml"), text).unwrap();
    let start = Instant::now();
    let out = wid(dir, &["validate", "plan.toml"]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "no hang, no endless read"
    );
    expect_code(&out, 1);
    let err = stderr(&out);
    for want in [
        "/dev/zero is not a regular file",
        "a-directory is a directory",
        "big.json is 10485760 bytes; wid reads files of at most 262144 bytes",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    if fifo {
        assert!(err.contains("fifo is not a regular file"), "{err}");
    }
    // Each is located at its workload's policy entry.
    for line in [15, 22, 29] {
        assert!(
            err.contains(&format!("plan.toml:{line}:25")),
            "line {line}:\n{err}"
        );
    }
}

/// A plan of `n` KSAs on one generic cluster of the sandbox.
fn ksa_plan(dir: &Path, n: usize) {
    let mut text = String::from(
        "version = 1\nname = \"stop\"\n\n[clusters.dev]\nkind = \"generic\"\ncreate_namespaces = true\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "\n[[workload]]\ncluster = \"dev\"\nnamespace = \"apps\"\nservice_account = \"sa{i:02}\"\n"
        ));
    }
    std::fs::write(dir.join("plan.toml"), text).unwrap();
}

/// A running `wid` whose stderr lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(cwd: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wid"))
            .args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wid");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(needle);
                self.seen.push(line);
                if found {
                    return;
                }
            }
        }
        panic!("no {needle:?} on stderr; saw:\n{}", self.seen.join("\n"));
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} failed");
    }

    /// Waits for the exit; returns the code, stdout and every stderr line.
    fn finish(mut self) -> (i32, String, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "wid did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        (status.code().unwrap_or(-1), out, self.seen.join("\n"))
    }
}

/// A sandbox directory whose Kubernetes writes take `ms` each.
fn slow_writes(sb: &Path, ms: u64) {
    std::fs::create_dir_all(sb).unwrap();
    std::fs::write(
        sb.join("faults.json"),
        format!(r#"[{{"api": "k8s:apply", "action": "latency", "ms": {ms}}}]"#),
    )
    .unwrap();
}

#[cfg(unix)]
#[test]
fn the_first_ctrl_c_drains_an_apply_and_a_rerun_converges() {
    let tmp = tempfile::tempdir().unwrap();
    ksa_plan(tmp.path(), 12);
    let sb = tmp.path().join("sb");
    slow_writes(&sb, 400);
    let sb = sb.display().to_string();
    let args = [
        "apply",
        "plan.toml",
        "--auto-approve",
        "--parallelism",
        "1",
        "--sandbox-dir",
        &sb,
    ];
    let mut run = Running::start(tmp.path(), &args);
    run.wait_for("[1/");
    run.signal("INT");
    let (code, out, err) = run.finish();
    assert_eq!(code, 130, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("interrupted: starting nothing new"), "{err}");
    assert!(out.contains("Apply interrupted:"), "{out}");
    assert!(out.contains("not started"), "{out}");
    assert!(
        !out.contains("abandoned"),
        "a drain abandons nothing:\n{out}"
    );
    assert!(err.contains("error: interrupted during apply"), "{err}");

    std::fs::remove_file(Path::new(&sb).join("faults.json")).unwrap();
    let again = wid(
        tmp.path(),
        &["apply", "plan.toml", "--auto-approve", "--sandbox-dir", &sb],
    );
    expect_code(&again, 0);
    let plan = wid(
        tmp.path(),
        &[
            "plan",
            "plan.toml",
            "--detailed-exitcode",
            "--sandbox-dir",
            &sb,
        ],
    );
    expect_code(&plan, 0);
}

#[cfg(unix)]
#[test]
fn a_second_ctrl_c_aborts_the_calls_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    ksa_plan(tmp.path(), 12);
    // One quick account ahead of the slow ones: it finishes only after the executor
    // started the accounts that follow it, so once it is reported, calls are in flight.
    // (The namespace's own report comes before the accounts start, so it proves nothing.)
    let plan = std::fs::read_to_string(tmp.path().join("plan.toml")).unwrap();
    let quick =
        "\n[[workload]]\ncluster = \"dev\"\nnamespace = \"apps\"\nservice_account = \"a-quick\"\n";
    let plan = plan.replacen("\n[[workload]]", &format!("{quick}\n[[workload]]"), 1);
    std::fs::write(tmp.path().join("plan.toml"), plan).unwrap();
    let sb = tmp.path().join("sb");
    std::fs::create_dir_all(&sb).unwrap();
    std::fs::write(
        sb.join("faults.json"),
        r#"[{"api": "k8s:apply", "object": "sa*", "action": "latency", "ms": 3000}]"#,
    )
    .unwrap();
    let sb = sb.display().to_string();
    let args = ["apply", "plan.toml", "--auto-approve", "--sandbox-dir", &sb];
    let mut run = Running::start(tmp.path(), &args);
    run.wait_for("a-quick done");
    let start = Instant::now();
    run.signal("TERM");
    run.wait_for("interrupted: starting nothing new");
    run.signal("INT");
    let (code, out, err) = run.finish();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(code, 130, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("abandoned in flight"), "{out}");
    assert!(
        out.contains("was in flight when the apply was aborted"),
        "{out}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_plan_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    ksa_plan(tmp.path(), 2);
    let sb = tmp.path().join("sb");
    std::fs::create_dir_all(&sb).unwrap();
    std::fs::write(
        sb.join("faults.json"),
        r#"[{"api": "k8s:list", "action": "latency", "ms": 30000}]"#,
    )
    .unwrap();
    let sb = sb.display().to_string();
    let run = Running::start(tmp.path(), &["plan", "plan.toml", "--sandbox-dir", &sb]);
    // The sandbox writes its state once the plan's session opened it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Path::new(&sb).join("state.json").exists() {
        assert!(
            Instant::now() < deadline,
            "the plan never opened the sandbox"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    run.signal("INT");
    let (code, out, err) = run.finish();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(code, 130, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("error: interrupted during plan"), "{err}");
    assert!(out.is_empty(), "no plan is printed:\n{out}");
}

#[test]
fn an_apply_that_runs_out_of_time_prints_what_it_did() {
    let tmp = tempfile::tempdir().unwrap();
    ksa_plan(tmp.path(), 6);
    let sb = tmp.path().join("sb");
    slow_writes(&sb, 5000);
    let sb = sb.display().to_string();
    let start = Instant::now();
    let out = wid(
        tmp.path(),
        &[
            "apply",
            "plan.toml",
            "--auto-approve",
            "--timeout",
            "2s",
            "--sandbox-dir",
            &sb,
        ],
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    expect_code(&out, 1);
    let (report, err) = (stdout(&out), stderr(&out));
    assert!(report.contains("Apply timed out:"), "{report}");
    assert!(report.contains("abandoned in flight"), "{report}");
    assert!(
        err.contains("apply did not finish within 2s (--timeout); still waiting for k8s/"),
        "{err}"
    );
}

/// Plans `plan` (one workload on cluster `kind`) against a sandbox whose `api` accepts
/// calls and never answers them; returns how long it took and the output.
fn plan_with_a_hung_api(cluster: &str, workload: &str, api: &str) -> (Duration, Output) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("plan.toml"),
        format!("version = 1\nname = \"stall\"\n\n{cluster}\n{workload}"),
    )
    .unwrap();
    let sb = tmp.path().join("sb");
    std::fs::create_dir_all(&sb).unwrap();
    std::fs::write(
        sb.join("faults.json"),
        format!(r#"[{{"api": "{api}", "action": "hang"}}]"#),
    )
    .unwrap();
    let sb = sb.display().to_string();
    let start = Instant::now();
    let out = wid(
        tmp.path(),
        &[
            "plan",
            "plan.toml",
            "--sandbox-dir",
            &sb,
            "--call-timeout",
            "1s",
            "--timeout",
            "3s",
        ],
    );
    (start.elapsed(), out)
}

#[test]
fn a_stalled_gke_endpoint_fails_the_plan_within_the_timeout() {
    let (took, out) = plan_with_a_hung_api(
        "[clusters.gke]\nkind = \"gke\"\nproject = \"acme-prod\"\nlocation = \"us-central1\"\nname = \"prod\"\n",
        "[[workload]]\ncluster = \"gke\"\nnamespace = \"default\"\nservice_account = \"a\"\ngcp.direct = true\ngcp.roles = [\"roles/storage.objectViewer\"]\n",
        "gcp:container.clusters.get",
    );
    assert_timed_out(took, &out, &["container.clusters.get"]);
}

#[test]
fn a_stalled_aks_endpoint_fails_the_plan_within_the_timeout() {
    let (took, out) = plan_with_a_hung_api(
        "[clusters.aks]\nkind = \"aks\"\nsubscription = \"6d9a1f3e-2b7c-4e58-9a01-3c5d7e9f1b24\"\ntenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\nresource_group = \"rg-aks\"\nname = \"aks\"\n",
        "[[workload]]\ncluster = \"aks\"\nnamespace = \"default\"\nservice_account = \"a\"\nazure.identity = \"app\"\nazure.location = \"eastus\"\n",
        "azure:managedClusters.get",
    );
    assert_timed_out(took, &out, &["azure:managedClusters.get"]);
}

/// The plan exited 1 well within its `--timeout 3s` (under 10 s), saying it was still
/// waiting for one of `calls` (the last call it started).
fn assert_timed_out(took: Duration, out: &std::process::Output, calls: &[&str]) {
    expect_code(out, 1);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let err = stderr(out);
    assert!(
        calls.iter().any(|c| err.contains(&format!(
            "plan did not finish within 3s (--timeout); still waiting for {c}"
        ))),
        "{err}"
    );
}
