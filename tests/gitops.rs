//! examples/gitops, the Dockerfile and deploy/rbac hold together: every workflow and
//! action parses as YAML and every `wid` command it runs parses with wid's own command
//! line; the credentials are keyless; the example plans on the sandbox; the Dockerfile
//! builds the binary that exists from paths that exist; and the RBAC roles let plan read
//! and apply write, while the plan role cannot apply (checked in the sandbox, which
//! enforces RBAC with impersonation).

mod common;

use std::path::{Path, PathBuf};

use clap::Parser as _;
use common::*;
use serde_json::Value;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every step of a workflow (all jobs) or a composite action.
fn steps(doc: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    if let Some(jobs) = doc["jobs"].as_object() {
        for job in jobs.values() {
            out.extend(job["steps"].as_array().into_iter().flatten());
        }
    }
    out.extend(doc["runs"]["steps"].as_array().into_iter().flatten());
    out
}

/// The `wid …` command lines of a shell script: continuations joined, cut at the first
/// shell operator (redirection, pipe, list).
fn wid_commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = line.trim();
        if !line.starts_with("wid ") {
            continue;
        }
        let words = shlex::split(line).unwrap_or_else(|| panic!("unbalanced quotes: {line}"));
        let words: Vec<String> = words
            .into_iter()
            .take_while(|w| {
                !(w.starts_with('>') || w.starts_with('|') || w == "&&" || w == ";" || w == "2>&1")
            })
            .collect();
        out.push(words);
    }
    out
}

#[test]
fn the_workflows_parse_and_every_wid_command_they_run_exists() {
    let root = root().join("examples/gitops/.github");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let mut commands = Vec::new();
    let mut uses = Vec::new();
    for file in &files {
        let doc = load(file);
        for step in steps(&doc) {
            if let Some(script) = step["run"].as_str() {
                for words in wid_commands(script) {
                    assert!(
                        !words.iter().any(|w| w.contains('$')),
                        "{}: keep shell expansions out of wid command lines: {words:?}",
                        file.display()
                    );
                    if let Err(e) = wid::cli::Cli::try_parse_from(&words) {
                        panic!(
                            "{}: `{}` does not parse:\n{e}",
                            file.display(),
                            words.join(" ")
                        );
                    }
                    commands.push(words.join(" "));
                }
            }
            if let Some(action) = step["uses"].as_str() {
                uses.push((action.to_owned(), step["with"].clone()));
            }
        }
        // Keyless credentials: every workflow may ask GitHub for an OIDC token.
        if file.parent().is_some_and(|d| d.ends_with("workflows")) {
            assert_eq!(
                doc["permissions"]["id-token"],
                "write",
                "{}: needs `permissions: id-token: write`",
                file.display()
            );
            assert!(
                !std::fs::read_to_string(file).unwrap().contains("secrets."),
                "{}: no stored secrets",
                file.display()
            );
        }
    }
    let has = |needle: &str| commands.iter().any(|c| c.contains(needle));
    assert!(
        has("wid plan identities/ --prune --out plan.wid --output markdown --detailed-exitcode"),
        "{commands:?}"
    );
    assert!(has("wid apply plan.wid --output json"), "{commands:?}");
    assert!(
        has("wid plan identities/ --prune --detailed-exitcode --output github"),
        "{commands:?}"
    );
    assert!(has("wid version"), "{commands:?}");
    let with = |prefix: &str| {
        uses.iter()
            .find(|(u, _)| u.starts_with(prefix))
            .map(|(_, w)| w.clone())
            .unwrap_or_else(|| panic!("no step uses {prefix}"))
    };
    assert!(with("aws-actions/configure-aws-credentials@")["role-to-assume"].is_string());
    assert!(with("google-github-actions/auth@")["workload_identity_provider"].is_string());
    let azure = with("azure/login@");
    for key in ["client-id", "tenant-id", "subscription-id"] {
        assert!(azure[key].is_string(), "azure/login lacks {key}");
    }
    // The triggers: plan on pull requests, apply on main, drift nightly.
    let workflow = |name: &str| load(&root.join("workflows").join(name));
    assert!(workflow("wid-plan.yml")["on"]["pull_request"].is_object());
    assert_eq!(
        workflow("wid-apply.yml")["on"]["push"]["branches"][0],
        "main"
    );
    assert!(workflow("wid-drift.yml")["on"]["schedule"][0]["cron"].is_string());
}

#[test]
fn the_gitops_example_plans_two_teams_on_the_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb").display().to_string();
    let dir = root().join("examples/gitops/identities");
    let d = dir.display().to_string();
    let plan = wid(
        tmp.path(),
        &["plan", &d, "--sandbox-dir", &sb, "--detailed-exitcode"],
    );
    expect_code(&plan, 2);
    let text = stdout(&plan);
    assert!(
        text.contains("[payments] eks-prod/payments/orders"),
        "{text}"
    );
    assert!(text.contains("[search] aks-prod/search/indexer"), "{text}");
    expect_code(
        &wid(
            tmp.path(),
            &["apply", &d, "--sandbox-dir", &sb, "--auto-approve"],
        ),
        0,
    );
    expect_code(
        &wid(
            tmp.path(),
            &[
                "plan",
                &d,
                "--prune",
                "--sandbox-dir",
                &sb,
                "--detailed-exitcode",
            ],
        ),
        0,
    );
    // CODEOWNERS names each file of the directory.
    let owners = std::fs::read_to_string(root().join("examples/gitops/CODEOWNERS")).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            owners.contains(&format!("/identities/{name}")),
            "CODEOWNERS lacks {name}"
        );
    }
}

#[test]
fn the_dockerfile_builds_the_binary_that_exists_from_paths_that_exist() {
    let root = root();
    let text = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("[[bin]]\nname = \"wid\""),
        "the binary is wid"
    );
    assert!(text.contains("cargo build --release --locked --bin wid"));
    assert!(text.contains("COPY --from=build /src/target/release/wid /usr/local/bin/wid"));
    assert!(text.contains("ENTRYPOINT [\"/usr/local/bin/wid\"]"));
    let mut copied = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        for src in &words[..words.len() - 1] {
            assert!(
                root.join(src).exists(),
                "the Dockerfile copies {src}, which is not in the repo"
            );
            copied.push((*src).to_owned());
        }
    }
    // Every workspace member (and what the manifest names) is copied.
    for member in [
        "src",
        "providers",
        "sandbox",
        "audit",
        "benches",
        "build.rs",
        "Cargo.lock",
    ] {
        assert!(
            copied.iter().any(|c| c == member),
            "the Dockerfile does not copy {member}"
        );
    }
    // A multi-stage build onto a small static base.
    assert_eq!(
        text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")),
        2
    );
    assert!(text.contains("FROM gcr.io/distroless/static"), "{text}");
}

/// A kubeconfig beside the sandbox's with one context per user, each impersonating it
/// (the `as` field) with the sandbox admin's credentials.
fn impersonating_kubeconfig(sb: &Path, users: &[&str]) -> PathBuf {
    let base: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(sb.join("kubeconfig")).unwrap()).unwrap();
    let context = base["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "dev")
        .expect("a dev context")
        .clone();
    let cluster = context["context"]["cluster"].clone();
    let user = context["context"]["user"].as_str().unwrap().to_owned();
    let admin = base["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == user.as_str())
        .unwrap()["user"]
        .clone();
    let mut doc = base.clone();
    let mut contexts = Vec::new();
    let mut entries = Vec::new();
    for u in users {
        let mut creds = admin.clone();
        creds["as"] = Value::from(*u);
        entries.push(serde_json::json!({"name": u, "user": creds}));
        contexts.push(serde_json::json!({"name": u, "context": {"cluster": cluster, "user": u}}));
    }
    doc["users"] = Value::Array(entries);
    doc["contexts"] = Value::Array(contexts);
    let path = sb.join("impersonating.kubeconfig");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    path
}

#[test]
fn the_rbac_roles_let_plan_read_and_apply_write_and_the_plan_role_cannot_apply() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let plan = tmp.path().join("plan.toml");
    std::fs::write(
        &plan,
        r#"version = 1
name = "rbac"
[clusters.dev]
kind = "generic"
create_namespaces = true
harden_default_service_accounts = true

[[workload]]
cluster = "dev"
namespace = "shop"
service_account = "orders"
labels = { team = "shop" }

[[workload]]
cluster = "dev"
namespace = "shop"
service_account = "watcher"
automount_token = true
kubernetes.rules = [{ apiGroups = [""], resources = ["configmaps"], verbs = ["get", "list"] }]
"#,
    )
    .unwrap();
    let p = plan.display().to_string();
    let serve = Serve::start_with(&sb, &["--plan", &p]);
    let rbac = root().join("deploy/rbac");
    for file in ["wid-plan.yaml", "wid-apply.yaml"] {
        let out = serve.kubectl_output(&[
            "--context",
            "dev",
            "apply",
            "-f",
            &rbac.join(file).display().to_string(),
        ]);
        expect_code(&out, 0);
    }
    for (user, role) in [("ci-planner", "wid-plan"), ("ci-applier", "wid-apply")] {
        let out = serve.kubectl_output(&[
            "--context",
            "dev",
            "create",
            "clusterrolebinding",
            user,
            "--clusterrole",
            role,
            "--user",
            user,
        ]);
        expect_code(&out, 0);
    }
    let kubeconfig = impersonating_kubeconfig(&sb, &["ci-planner", "ci-applier"]);
    let k = kubeconfig.display().to_string();
    let as_user = |user: &str, args: &[&str]| {
        let ctx = format!("dev={user}");
        let mut all = args.to_vec();
        all.extend(["--kubeconfig", &k, "--context", &ctx]);
        wid(tmp.path(), &all)
    };

    let planned = as_user(
        "ci-planner",
        &["plan", &p, "--prune", "--detailed-exitcode"],
    );
    expect_code(&planned, 2);
    assert!(stdout(&planned).contains("k8s/serviceaccount/dev/shop/orders"));
    // The plan role cannot apply: the first write is forbidden, named as such.
    let denied = as_user("ci-planner", &["apply", &p, "--auto-approve"]);
    expect_code(&denied, 1);
    let err = format!("{}{}", stdout(&denied), stderr(&denied));
    assert!(
        err.contains("forbidden") || err.contains("permission"),
        "{err}"
    );
    let names = stdout(&serve.kubectl(&[
        "--context",
        "dev",
        "-n",
        "shop",
        "get",
        "serviceaccounts",
        "-o",
        "name",
    ]));
    assert!(!names.contains("orders"), "{names}");

    let applied = as_user("ci-applier", &["apply", &p, "--prune", "--auto-approve"]);
    if code(&applied) != 0 {
        let calls = std::fs::read_to_string(sb.join("calls.json")).unwrap_or_default();
        panic!("{}\n{}\n{calls}", stdout(&applied), stderr(&applied));
    }
    expect_code(
        &as_user(
            "ci-planner",
            &["plan", &p, "--prune", "--detailed-exitcode"],
        ),
        0,
    );
    // Prune deletes with the apply role too.
    std::fs::write(&plan, std::fs::read_to_string(&plan).unwrap().split("\n[[workload]]\ncluster = \"dev\"\nnamespace = \"shop\"\nservice_account = \"watcher\"").next().unwrap()).unwrap();
    expect_code(
        &as_user("ci-applier", &["apply", &p, "--prune", "--auto-approve"]),
        0,
    );
    expect_code(
        &as_user(
            "ci-planner",
            &["plan", &p, "--prune", "--detailed-exitcode"],
        ),
        0,
    );
}
