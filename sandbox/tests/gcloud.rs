//! Conformance of the GCP emulator with the real gcloud: the sandbox starts as
//! `wid sandbox serve` starts it (a GKE cluster declared, `advertise` and
//! `write_client_files`), and gcloud runs with nothing but the variables of `DIR/env`
//! (plus a scratch `HOME` and `PATH`). gcloud must accept every answer, and its
//! read-modify-write of IAM policies (etags) must keep what others wrote.

mod common;

use std::path::Path;
use std::process::Command;

use common::send;
use serde_json::{Value, json};
use wid_sandbox::{ClusterDecl, ClusterKind, GkeDecl, Sandbox};

const PROJECT: &str = "acme-prod";
const NUMBER: &str = "123456789012";
const POOL_MEMBER: &str = "serviceAccount:acme-prod.svc.id.goog[payments/orders]";
const PRINCIPAL: &str = "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/acme-prod.svc.id.goog/subject/ns/payments/sa/reports";

/// The `export K=V` lines of `DIR/env` (single-quoted values unquoted).
fn read_env(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("env"))
        .expect("DIR/env")
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .map_or_else(|| v.to_owned(), |v| v.replace(r"'\''", "'"));
            (k.to_owned(), v)
        })
        .collect()
}

struct Gcloud {
    env: Vec<(String, String)>,
}

struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Gcloud {
    async fn run(&self, args: &[&str]) -> Outcome {
        let mut command = Command::new("gcloud");
        // Nothing from the user's gcloud setup may leak in: only the sandbox's variables.
        command.env_clear();
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.args(args).arg("--format=json");
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("gcloud runs");
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
            "gcloud {args:?} failed:\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        if out.stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("gcloud {args:?} printed non-JSON ({e}): {}", out.stdout))
    }

    /// Runs a command that must fail and returns what it printed on stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(!out.success, "gcloud {args:?} succeeded:\n{}", out.stdout);
        out.stderr
    }
}

fn gcloud_present() -> bool {
    Command::new("gcloud")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The members of `role` in a policy (no condition unless `conditional`).
fn members(policy: &Value, role: &str, conditional: bool) -> Vec<String> {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["role"] == role && b.get("condition").is_some() == conditional)
        .flat_map(|b| b["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect()
}

/// Someone else's change to the project policy, straight over HTTP with the etag read
/// just before: it must survive gcloud's next read-modify-write.
async fn foreign_binding(sb: &Sandbox, role: &str, member: &str) {
    let url = sb.cloud_url();
    let auth = [
        ("Authorization", "Bearer someone-else"),
        ("Content-Type", "application/json"),
    ];
    let path = format!("/gcp/crm/v3/projects/{PROJECT}");
    let read = send(
        &url,
        "POST",
        &format!("{path}:getIamPolicy"),
        &auth,
        br#"{"options":{"requestedPolicyVersion":3}}"#,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let mut policy = read.json();
    let mut bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
    bindings.push(json!({ "role": role, "members": [member] }));
    policy["bindings"] = Value::Array(bindings);
    policy["version"] = json!(3);
    let body = json!({ "policy": policy }).to_string();
    let written = send(
        &url,
        "POST",
        &format!("{path}:setIamPolicy"),
        &auth,
        body.as_bytes(),
    )
    .await;
    assert_eq!(written.status, 200, "{}", written.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_talks_to_the_sandbox() {
    if !tokio::task::spawn_blocking(gcloud_present)
        .await
        .expect("join")
    {
        eprintln!("SKIPPED: gcloud not found; the GCP conformance test did not run");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let decl = ClusterDecl {
        name: "gke-prod".into(),
        kind: ClusterKind::Gke,
        eks: None,
        gke: Some(GkeDecl {
            project: PROJECT.into(),
            project_number: Some(NUMBER.into()),
            location: "us-central1".into(),
            name: "prod".into(),
        }),
        aks: None,
    };
    let mut sb = Sandbox::start(dir.path(), &[decl]).await.expect("start");
    sb.advertise().expect("advertise");
    sb.write_client_files().expect("client files");
    let mut env = read_env(dir.path());
    assert!(
        env.contains(&("CLOUDSDK_CORE_PROJECT".into(), PROJECT.into())),
        "{env:?}"
    );
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    env.push(("HOME".into(), home.display().to_string()));
    env.push(("PATH".into(), std::env::var("PATH").unwrap_or_default()));
    let gcloud = Gcloud { env };

    // Service accounts.
    let created = gcloud
        .json(&[
            "iam",
            "service-accounts",
            "create",
            "orders-prod",
            "--display-name=Orders (prod)",
            "--description=orders & co",
        ])
        .await;
    let email = "orders-prod@acme-prod.iam.gserviceaccount.com";
    assert_eq!(created["email"], email);
    assert_eq!(created["displayName"], "Orders (prod)");
    assert_eq!(created["description"], "orders & co");
    assert_eq!(
        created["name"],
        format!("projects/{PROJECT}/serviceAccounts/{email}")
    );
    let duplicate = gcloud
        .fails(&["iam", "service-accounts", "create", "orders-prod"])
        .await;
    assert!(
        duplicate.contains(
            "Service account orders-prod already exists within project projects/acme-prod."
        ),
        "{duplicate}"
    );
    let listed = gcloud.json(&["iam", "service-accounts", "list"]).await;
    let emails: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|a| a["email"].as_str())
        .collect();
    assert_eq!(emails, [email]);
    let described = gcloud
        .json(&["iam", "service-accounts", "describe", email])
        .await;
    assert_eq!(described["uniqueId"], created["uniqueId"]);
    assert_eq!(described["oauth2ClientId"], created["uniqueId"]);

    // The service account's policy: two bindings, each read-modify-write keeping the
    // other, then one removed.
    for member in [POOL_MEMBER, PRINCIPAL] {
        gcloud
            .json(&[
                "iam",
                "service-accounts",
                "add-iam-policy-binding",
                email,
                &format!("--member={member}"),
                "--role=roles/iam.workloadIdentityUser",
            ])
            .await;
    }
    let policy = gcloud
        .json(&["iam", "service-accounts", "get-iam-policy", email])
        .await;
    assert_eq!(
        members(&policy, "roles/iam.workloadIdentityUser", false),
        [PRINCIPAL, POOL_MEMBER]
    );
    assert_eq!(policy["version"], 1);
    let removed = gcloud
        .json(&[
            "iam",
            "service-accounts",
            "remove-iam-policy-binding",
            email,
            &format!("--member={POOL_MEMBER}"),
            "--role=roles/iam.workloadIdentityUser",
        ])
        .await;
    assert_eq!(
        members(&removed, "roles/iam.workloadIdentityUser", false),
        [PRINCIPAL]
    );
    let no_pool = gcloud
        .fails(&[
            "iam",
            "service-accounts",
            "add-iam-policy-binding",
            email,
            "--member=serviceAccount:other-prod.svc.id.goog[payments/orders]",
            "--role=roles/iam.workloadIdentityUser",
        ])
        .await;
    assert!(
        no_pool
            .contains("INVALID_ARGUMENT: Identity Pool does not exist (other-prod.svc.id.goog)."),
        "{no_pool}"
    );

    // The project's policy (Resource Manager v1, as gcloud uses it).
    let empty = gcloud.json(&["projects", "get-iam-policy", PROJECT]).await;
    assert_eq!(empty, json!({ "etag": "ACAB" }));
    let sa_member = format!("serviceAccount:{email}");
    gcloud
        .json(&[
            "projects",
            "add-iam-policy-binding",
            PROJECT,
            &format!("--member={sa_member}"),
            "--role=roles/storage.objectViewer",
            "--condition=None",
        ])
        .await;
    foreign_binding(&sb, "roles/viewer", "group:auditors@example.com").await;
    let conditioned = gcloud
        .json(&[
            "projects",
            "add-iam-policy-binding",
            PROJECT,
            &format!("--member={sa_member}"),
            "--role=roles/secretmanager.secretAccessor",
            "--condition=title=until-2030,expression=request.time < timestamp(\"2030-01-01T00:00:00Z\")",
        ])
        .await;
    assert_eq!(conditioned["version"], 3);
    let policy = gcloud.json(&["projects", "get-iam-policy", PROJECT]).await;
    assert_eq!(
        members(&policy, "roles/storage.objectViewer", false),
        [sa_member.as_str()]
    );
    assert_eq!(
        members(&policy, "roles/viewer", false),
        ["group:auditors@example.com"]
    );
    let condition = policy["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .find(|b| b["role"] == "roles/secretmanager.secretAccessor")
        .expect("the conditional binding")["condition"]
        .clone();
    assert_eq!(
        condition,
        json!({ "title": "until-2030", "expression": "request.time < timestamp(\"2030-01-01T00:00:00Z\")" })
    );
    let etag = policy["etag"].as_str().expect("etag").to_owned();
    assert_ne!(etag, "ACAB");
    let removed = gcloud
        .json(&[
            "projects",
            "remove-iam-policy-binding",
            PROJECT,
            &format!("--member={sa_member}"),
            "--role=roles/storage.objectViewer",
            "--condition=None",
        ])
        .await;
    assert!(members(&removed, "roles/storage.objectViewer", false).is_empty());
    assert_eq!(
        members(&removed, "roles/viewer", false),
        ["group:auditors@example.com"]
    );
    assert_ne!(removed["etag"], etag.as_str());
    let bad_member = gcloud
        .fails(&[
            "projects",
            "add-iam-policy-binding",
            PROJECT,
            "--member=serviceAccount:nobody@acme-prod.iam.gserviceaccount.com",
            "--role=roles/viewer",
            "--condition=None",
        ])
        .await;
    assert!(
        bad_member.contains(
            "INVALID_ARGUMENT: Service account nobody@acme-prod.iam.gserviceaccount.com does not exist."
        ),
        "{bad_member}"
    );

    // The GKE cluster.
    let cluster = gcloud
        .json(&[
            "container",
            "clusters",
            "describe",
            "prod",
            "--location=us-central1",
        ])
        .await;
    assert_eq!(cluster["status"], "RUNNING");
    assert_eq!(
        cluster["workloadIdentityConfig"]["workloadPool"],
        "acme-prod.svc.id.goog"
    );
    assert_eq!(cluster["nodePools"][0]["name"], "default-pool");
    assert_eq!(
        cluster["nodePools"][0]["config"]["workloadMetadataConfig"]["mode"],
        "GKE_METADATA"
    );
    let missing = gcloud
        .fails(&[
            "container",
            "clusters",
            "describe",
            "staging",
            "--location=us-central1",
        ])
        .await;
    assert!(missing.contains("staging"), "{missing}");

    // Deleting the account turns its members into deleted ones.
    gcloud
        .json(&["iam", "service-accounts", "delete", email])
        .await;
    let gone = gcloud
        .fails(&["iam", "service-accounts", "describe", email])
        .await;
    assert!(
        gone.contains(&format!(
            "NOT_FOUND: Service account projects/-/serviceAccounts/{email} does not exist."
        )),
        "{gone}"
    );
    let policy = gcloud.json(&["projects", "get-iam-policy", PROJECT]).await;
    let uid = created["uniqueId"].as_str().expect("unique id");
    assert_eq!(
        members(&policy, "roles/secretmanager.secretAccessor", true),
        [format!("deleted:serviceAccount:{email}?uid={uid}")]
    );

    // Every gcloud call reached the sandbox (none went to Google).
    let calls = sb.calls();
    assert_eq!(calls["gcp:iam.serviceAccounts.create"], 2);
    assert_eq!(calls["gcp:iam.serviceAccounts.list"], 1);
    assert_eq!(calls["gcp:iam.serviceAccounts.delete"], 1);
    assert_eq!(calls["gcp:container.clusters.get"], 2);
    assert!(
        calls["gcp:iam.serviceAccounts.setIamPolicy"] >= 3,
        "{calls:?}"
    );
    assert!(calls["gcp:crm.projects.setIamPolicy"] >= 4, "{calls:?}");
}
