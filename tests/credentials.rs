//! The AWS credentials users actually have, through the CLI with a scratch `HOME` and
//! `AWS_CONFIG_FILE` (nothing of the machine's own configuration is read): with none, one
//! readable sentence and the fix; a `credential_process` helper, named by `AWS_PROFILE` or
//! by the plan's `[aws.profiles]`, signs wid's calls to a served sandbox.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

const PLAN: &str = r#"version = 1
name = "creds"

[clusters.prod]
kind = "eks"
account = "111122223333"
region = "us-east-1"
name = "prod"
create_namespaces = true

[[workload]]
cluster = "prod"
namespace = "shop"
service_account = "orders"
aws.role = "creds-orders"
"#;

/// `wid ARGS` with an environment built from scratch: no AWS, GCP or Azure variable of
/// the machine, `HOME` in `home`, the AWS config files where `config` says.
fn isolated(home: &Path, config: &Path, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wid"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.args(args)
        .current_dir(home)
        .stdin(Stdio::null())
        .output()
        .expect("run wid")
}

#[test]
fn no_aws_credentials_is_one_sentence_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let sb = tmp.path().join("sb").display().to_string();
    // Kubernetes on the sandbox; AWS to a closed loopback port, with the default chain.
    let out = isolated(
        tmp.path(),
        &tmp.path().join("no-config"),
        &[],
        &[
            "plan",
            "plan.toml",
            "--sandbox-dir",
            &sb,
            "--aws-endpoint-url",
            "http://127.0.0.1:9",
        ],
    );
    expect_code(&out, 1);
    let err = stderr(&out);
    assert!(
        !err.contains("CredentialsNotLoaded") && !err.contains("{"),
        "{err}"
    );
    insta::assert_snapshot!("no_aws_credentials", err);
}

/// A `credential_process` helper that hands out the sandbox's keys for its account and
/// counts its runs in `runs`.
fn helper(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("helper.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"SANDBOX111122223333\", \"SecretAccessKey\": \"sandbox\"}}'\n",
            dir.join("runs").display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    script
}

#[test]
fn credential_process_signs_wids_calls_through_aws_profile_or_the_plans_profiles() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let sb = tmp.path().join("sb");
    let serve = Serve::start_with(&sb, &["--plan", &plan.display().to_string()]);
    let served: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.join("serve.json")).unwrap()).unwrap();
    let cloud = served["cloud"].as_str().unwrap().to_owned();
    let config = tmp.path().join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile ci]\ncredential_process = {}\nregion = us-east-1\n",
            helper(tmp.path()).display()
        ),
    )
    .unwrap();
    let sbs = sb.display().to_string();
    let args = [
        "plan",
        "plan.toml",
        "--detailed-exitcode",
        "--sandbox-dir",
        &sbs,
        "--aws-endpoint-url",
        &cloud,
    ];
    let runs = || {
        std::fs::read_to_string(tmp.path().join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    };

    // The default chain with AWS_PROFILE: the helper's keys, checked with
    // sts:GetCallerIdentity against the plan's account.
    let out = isolated(tmp.path(), &config, &[("AWS_PROFILE", "ci")], &args);
    expect_code(&out, 2);
    assert!(
        stdout(&out).contains("+ aws/iam-role/111122223333/creds-orders"),
        "{}",
        stdout(&out)
    );
    assert_eq!(runs(), 1, "the helper ran once and its keys were cached");

    // Keys of another account in the environment: wid checks whose they are and says
    // which key fixes it...
    let other = isolated(
        tmp.path(),
        &config,
        &[
            ("AWS_ACCESS_KEY_ID", "SANDBOX999999999999"),
            ("AWS_SECRET_ACCESS_KEY", "sandbox"),
        ],
        &args,
    );
    expect_code(&other, 1);
    let err = stderr(&other);
    assert!(
        err.contains("the default AWS credentials belong to account 999999999999, but the plan needs account 111122223333"),
        "{err}"
    );
    assert!(
        err.contains("[aws.profiles] \"111122223333\" = \"PROFILE\""),
        "{err}"
    );

    // ...and applying that hint works: the plan names the profile for the account.
    std::fs::write(
        &plan,
        format!("{PLAN}\n[aws.profiles]\n\"111122223333\" = \"ci\"\n"),
    )
    .unwrap();
    let out = isolated(tmp.path(), &config, &[], &args);
    expect_code(&out, 2);
    assert_eq!(runs(), 2);
    // The plan's profile wins over keys of another account in the environment: wid
    // never acts in an account other than the one the plan names.
    let out = isolated(
        tmp.path(),
        &config,
        &[
            ("AWS_ACCESS_KEY_ID", "SANDBOX999999999999"),
            ("AWS_SECRET_ACCESS_KEY", "sandbox"),
        ],
        &args,
    );
    expect_code(&out, 2);
    assert!(
        stdout(&out).contains("+ aws/iam-role/111122223333/creds-orders"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        runs(),
        3,
        "the profile's helper, not the environment's keys"
    );
    let applied = isolated(
        tmp.path(),
        &config,
        &[],
        &[
            "apply",
            "plan.toml",
            "--auto-approve",
            "--sandbox-dir",
            &sbs,
            "--aws-endpoint-url",
            &cloud,
        ],
    );
    expect_code(&applied, 0);
    if have("aws") {
        let role = sandbox_aws(&sb, &["iam", "get-role", "--role-name", "creds-orders"]);
        assert!(role.contains("creds-orders"), "{role}");
    }

    // A helper that fails: one sentence naming the profile's trouble, no debug dump.
    std::fs::write(
        &config,
        "[profile ci]\ncredential_process = /bin/false\nregion = us-east-1\n",
    )
    .unwrap();
    let out = isolated(tmp.path(), &config, &[], &args);
    expect_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("error: could not load the AWS credentials for account 111122223333:"),
        "{err}"
    );
    assert!(
        !err.contains("ProviderError {") && !err.contains("CredentialsError"),
        "{err}"
    );
    drop(serve);
}
