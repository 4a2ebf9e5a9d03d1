//! Conformance of the AWS emulator with the real aws CLI: the CLI runs with only the
//! variables the sandbox writes to `DIR/env` (its own config files pointed at paths that do
//! not exist), and must parse every answer.
//!
//! aws-cli v1 (botocore ≥ 1.31) honours `AWS_ENDPOINT_URL`, so no `--endpoint-url` is
//! passed: this also checks that `DIR/env` alone is enough.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use wid_sandbox::{ClusterDecl, ClusterKind, EksDecl, Sandbox};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

/// The `export K=V` lines of `DIR/env`.
fn read_env(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

struct Cli {
    env: Vec<(String, String)>,
}

struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("aws");
        // Nothing from the user's AWS setup may leak in: only the sandbox's variables.
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.args(args).args(["--output", "json"]);
        command
    }

    async fn run(&self, args: &[&str]) -> Outcome {
        let mut command = self.command(args);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        Outcome {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed and returns its JSON output.
    async fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args).await;
        assert!(
            out.success,
            "aws {args:?} failed:\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        if out.stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("aws {args:?} printed non-JSON ({e}): {}", out.stdout))
    }
}

fn aws_cli_present() -> bool {
    Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_talks_to_the_sandbox() {
    if !tokio::task::spawn_blocking(aws_cli_present).await.unwrap() {
        eprintln!("SKIPPED: aws CLI not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let decl = ClusterDecl {
        name: "eks-dev".into(),
        kind: ClusterKind::Eks,
        eks: Some(EksDecl {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            name: "dev".into(),
        }),
        gke: None,
        aks: None,
    };
    let sb = Sandbox::start(dir.path(), &[decl]).await.unwrap();
    sb.write_client_files().unwrap();
    let mut env = read_env(dir.path());
    assert!(
        env.contains(&("AWS_ACCESS_KEY_ID".into(), "SANDBOX111122223333".into())),
        "{env:?}"
    );
    for (key, file) in [
        ("AWS_CONFIG_FILE", "no-such-config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "no-such-credentials"),
    ] {
        env.push((key.into(), dir.path().join(file).display().to_string()));
    }
    let cli = Cli { env };

    let identity = cli.json(&["sts", "get-caller-identity"]).await;
    assert_eq!(identity["Account"], "111122223333");
    assert_eq!(identity["Arn"], "arn:aws:iam::111122223333:user/sandbox");

    let created = cli
        .json(&[
            "iam",
            "create-role",
            "--role-name",
            "orders",
            "--assume-role-policy-document",
            TRUST,
            "--description",
            "orders <prod> & co",
            "--tags",
            "Key=owner,Value=payments",
        ])
        .await;
    assert_eq!(
        created["Role"]["Arn"],
        "arn:aws:iam::111122223333:role/orders"
    );
    assert_eq!(created["Role"]["Description"], "orders <prod> & co");

    // botocore URL-decodes and parses policy documents, so a wrongly encoded document
    // would show up here as a string or a parse failure.
    let got = cli
        .json(&["iam", "get-role", "--role-name", "orders"])
        .await;
    let trust: Value = serde_json::from_str(TRUST).unwrap();
    assert_eq!(got["Role"]["AssumeRolePolicyDocument"], trust);
    assert_eq!(got["Role"]["MaxSessionDuration"], 3600);
    assert_eq!(got["Role"]["Tags"][0]["Value"], "payments");

    let missing = cli.run(&["iam", "get-role", "--role-name", "nope"]).await;
    assert!(!missing.success);
    assert!(
        missing.stderr.contains("(NoSuchEntity)")
            && missing
                .stderr
                .contains("The role with name nope cannot be found."),
        "{}",
        missing.stderr
    );

    let s3 = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
    cli.json(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "orders",
        "--policy-arn",
        s3,
    ])
    .await;
    let attached = cli
        .json(&[
            "iam",
            "list-attached-role-policies",
            "--role-name",
            "orders",
        ])
        .await;
    assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], s3);
    assert_eq!(
        attached["AttachedPolicies"][0]["PolicyName"],
        "AmazonS3ReadOnlyAccess"
    );

    // The bulk read, as botocore parses it (documents URL-decoded into JSON).
    let details = cli
        .json(&[
            "iam",
            "get-account-authorization-details",
            "--filter",
            "Role",
        ])
        .await;
    let role = &details["RoleDetailList"][0];
    assert_eq!(role["RoleName"], "orders");
    assert_eq!(role["AssumeRolePolicyDocument"], trust);
    assert_eq!(role["AttachedManagedPolicies"][0]["PolicyArn"], s3);
    assert_eq!(role["Tags"][0]["Key"], "owner");
    assert_eq!(details["RoleDetailList"].as_array().map(Vec::len), Some(1));

    let cluster = cli
        .json(&["eks", "describe-cluster", "--name", "dev"])
        .await;
    let issuer = cluster["cluster"]["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        issuer.starts_with("https://oidc.eks.us-east-1.amazonaws.com/id/"),
        "{issuer}"
    );
    assert_eq!(cluster["cluster"]["status"], "ACTIVE");

    let provider = cli
        .json(&[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            &issuer,
            "--client-id-list",
            "sts.amazonaws.com",
        ])
        .await;
    let provider_arn = format!(
        "arn:aws:iam::111122223333:oidc-provider/{}",
        issuer.trim_start_matches("https://")
    );
    assert_eq!(provider["OpenIDConnectProviderArn"], provider_arn.as_str());
    let providers = cli.json(&["iam", "list-open-id-connect-providers"]).await;
    assert_eq!(
        providers["OpenIDConnectProviderList"][0]["Arn"],
        provider_arn.as_str()
    );

    let association = cli
        .json(&[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "dev",
            "--namespace",
            "prod",
            "--service-account",
            "orders",
            "--role-arn",
            "arn:aws:iam::111122223333:role/orders",
        ])
        .await;
    let id = association["association"]["associationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = cli
        .json(&[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            "dev",
            "--namespace",
            "prod",
        ])
        .await;
    assert_eq!(listed["associations"][0]["associationId"], id.as_str());
    let duplicate = cli
        .run(&[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "dev",
            "--namespace",
            "prod",
            "--service-account",
            "orders",
            "--role-arn",
            "arn:aws:iam::111122223333:role/orders",
        ])
        .await;
    assert!(
        !duplicate.success && duplicate.stderr.contains("(ResourceInUseException)"),
        "{}",
        duplicate.stderr
    );

    // Every command reached the sandbox (none went to a real endpoint).
    let calls = sb.calls();
    for api in [
        "sts:GetCallerIdentity",
        "iam:CreateRole",
        "iam:AttachRolePolicy",
        "eks:DescribeCluster",
        "iam:CreateOpenIDConnectProvider",
        "eks:ListPodIdentityAssociations",
    ] {
        assert!(calls.contains_key(api), "{api} not called: {calls:?}");
    }
}
