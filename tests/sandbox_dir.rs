//! Several wid processes pointed at one sandbox directory: each in turn owns it or uses
//! the servers of the one that serves it, and no write is lost.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A plan of `n` IRSA workloads named `{team}-{i}` in namespace `team`, on its own EKS
/// cluster `eks-{team}` in one shared account.
fn team_plan(team: &str, n: usize) -> String {
    let mut plan = format!(
        "version = 1\nname = \"{team}\"\n\n[clusters.eks-{team}]\nkind = \"eks\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\nname = \"{team}\"\ncreate_namespaces = true\n"
    );
    for i in 0..n {
        plan.push_str(&format!(
            "\n[[workload]]\ncluster = \"eks-{team}\"\nnamespace = \"{team}\"\nservice_account = \"{team}-{i}\"\naws.role = \"{team}-{i}\"\n"
        ));
    }
    plan
}

fn write_plan(dir: &Path, team: &str, n: usize) -> String {
    let path = dir.join(format!("{team}.toml"));
    std::fs::write(&path, team_plan(team, n)).unwrap();
    path.display().to_string()
}

/// `wid ARGS --sandbox-dir SB`, started but not waited for.
fn spawn(sb: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_wid"))
        .args(args)
        .arg("--sandbox-dir")
        .arg(sb)
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("WID_AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wid")
}

fn sandboxed(sb: &Path, args: &[&str]) -> std::process::Output {
    spawn(sb, args).wait_with_output().expect("wid runs")
}

fn state(sb: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(sb.join("state.json")).expect("state.json"))
        .expect("state.json is JSON")
}

/// The names of the roles in the shared account.
fn roles(state: &Value) -> Vec<String> {
    state["aws"]["accounts"]["111122223333"]["roles"]
        .as_object()
        .map(|roles| roles.keys().cloned().collect())
        .unwrap_or_default()
}

/// The ServiceAccounts of namespace `ns` in sandbox cluster `cluster`.
fn service_accounts(state: &Value, cluster: &str, ns: &str) -> Vec<String> {
    state["clusters"][cluster]["objects"]["serviceaccounts"]
        .as_object()
        .map(|sas| {
            sas.keys()
                .filter_map(|k| k.strip_prefix(&format!("{ns}/")))
                .filter(|name| *name != "default")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn expected(team: &str, n: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..n).map(|i| format!("{team}-{i}")).collect();
    names.sort();
    names
}

#[test]
fn two_processes_applying_different_plans_to_one_sandbox_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let alpha = write_plan(tmp.path(), "alpha", 15);
    let beta = write_plan(tmp.path(), "beta", 15);

    // Both at once: whichever comes second waits for the first, then loads what it wrote.
    let a = spawn(&sb, &["apply", &alpha, "--auto-approve"]);
    let b = spawn(&sb, &["apply", &beta, "--auto-approve"]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    expect_code(&a, 0);
    expect_code(&b, 0);

    let after = state(&sb);
    let all_roles = roles(&after);
    for team in ["alpha", "beta"] {
        for name in expected(team, 15) {
            assert!(all_roles.contains(&name), "role {name} lost: {all_roles:?}");
        }
        assert_eq!(
            service_accounts(&after, &format!("eks-{team}"), team),
            expected(team, 15),
            "{team}'s ServiceAccounts"
        );
    }
    for plan in [&alpha, &beta] {
        expect_code(&sandboxed(&sb, &["plan", plan, "--detailed-exitcode"]), 0);
    }

    // `wid sandbox serve` owns the directory now; a third apply goes through its servers.
    let gamma = write_plan(tmp.path(), "gamma", 5);
    let mut gamma_plan = std::fs::read_to_string(&gamma).unwrap();
    // On alpha's cluster, which the server serves.
    gamma_plan = gamma_plan
        .replace("[clusters.eks-gamma]", "[clusters.eks-alpha]")
        .replace("name = \"gamma\"\ncreate", "name = \"alpha\"\ncreate")
        .replace("cluster = \"eks-gamma\"", "cluster = \"eks-alpha\"");
    std::fs::write(&gamma, gamma_plan).unwrap();
    let mut serve = Serve::start(&sb);
    let c = sandboxed(&sb, &["apply", &gamma, "--auto-approve"]);
    expect_code(&c, 0);
    assert!(
        !stderr(&c).contains("waiting for the sandbox"),
        "a served sandbox is used, not waited for:\n{}",
        stderr(&c)
    );
    if have("kubectl") {
        let listed = serve.kubectl(&[
            "--context",
            "eks-alpha",
            "-n",
            "gamma",
            "get",
            "sa",
            "-o",
            "name",
        ]);
        assert_eq!(stdout(&listed).lines().count(), 6, "{}", stdout(&listed));
    }
    serve.stop();
    let after = state(&sb);
    assert_eq!(
        service_accounts(&after, "eks-alpha", "gamma"),
        expected("gamma", 5)
    );
    assert_eq!(
        service_accounts(&after, "eks-alpha", "alpha"),
        expected("alpha", 15),
        "alpha's objects survive the server's writes"
    );
    let all_roles = roles(&after);
    assert_eq!(all_roles.len(), 35, "{all_roles:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_waits_for_the_sandbox_another_holds_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let alpha = write_plan(tmp.path(), "alpha", 2);
    let holder = wid_sandbox::Sandbox::start(&sb, &[]).await.unwrap();
    holder.shared().write(|state| {
        wid_sandbox::azure::ensure_resource_group(
            state,
            "00000000-0000-0000-0000-00000000000a",
            "rg-held",
            "eastus",
        );
    });

    let mut waiting = spawn(&sb, &["apply", &alpha, "--auto-approve"]);
    // Read its stderr as it comes, to see the notice while the lock is still held.
    let stderr_pipe = waiting.stderr.take().expect("piped stderr");
    let (lines, seen) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr_pipe)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let notice = format!(
        "waiting for the sandbox in {}, held by process {}",
        sb.display(),
        std::process::id()
    );
    let mut err = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !err.iter().any(|l: &String| l.contains(&notice)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) => err.push(line),
            Err(e) => panic!("no notice ({e}); stderr so far: {err:?}"),
        }
    }
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the second process waits for the first"
    );
    // Written just before the holder lets go: the waiting process must load it.
    holder.shared().write(|state| {
        wid_sandbox::azure::ensure_resource_group(
            state,
            "00000000-0000-0000-0000-00000000000a",
            "rg-last",
            "eastus",
        );
    });
    drop(holder);
    let out = waiting.wait_with_output().unwrap();
    reader.join().unwrap();
    err.extend(seen.try_iter());
    assert_eq!(code(&out), 0, "stderr:\n{}", err.join("\n"));
    let after = state(&sb);
    let groups =
        &after["azure"]["subscriptions"]["00000000-0000-0000-0000-00000000000a"]["resourceGroups"];
    assert!(
        groups.get("rg-held").is_some() && groups.get("rg-last").is_some(),
        "the holder's writes survive the next owner: {groups}"
    );
    assert_eq!(
        service_accounts(&after, "eks-alpha", "alpha"),
        expected("alpha", 2)
    );
}

#[test]
fn a_killed_owner_does_not_wedge_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let alpha = write_plan(tmp.path(), "alpha", 2);
    let mut serve = Serve::start(&sb);
    serve.kill();
    assert!(
        sb.join("serve.json").exists(),
        "a killed server leaves its advertisement"
    );
    let out = sandboxed(&sb, &["apply", &alpha, "--auto-approve"]);
    expect_code(&out, 0);
    assert!(
        !stderr(&out).contains("waiting for the sandbox"),
        "{}",
        stderr(&out)
    );
    assert!(
        !sb.join("serve.json").exists(),
        "the stale advertisement is gone"
    );
    assert_eq!(
        service_accounts(&state(&sb), "eks-alpha", "alpha"),
        expected("alpha", 2)
    );
}
