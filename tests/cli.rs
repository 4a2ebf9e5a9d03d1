//! The CLI against the embedded sandbox: the quickstart converges, drift is shown and
//! fixed, others' labels survive, prune deletes only what wid made, bad plans change
//! nothing.

mod common;

use common::*;

fn sandbox_args(dir: &std::path::Path) -> Vec<String> {
    vec!["--sandbox-dir".into(), dir.display().to_string()]
}

fn run(cwd: &std::path::Path, args: &[&str], sandbox: &std::path::Path) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.extend(sandbox_args(sandbox));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    wid(cwd, &refs)
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![(r"\(\d+\.\d+s\)", "(TIME)")]
}

#[test]
fn quickstart_applies_then_plans_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let root = root();
    let plan = run(
        &root,
        &["plan", "examples/quickstart", "--detailed-exitcode"],
        &sb,
    );
    expect_code(&plan, 2);
    insta::assert_snapshot!("quickstart_first_plan", stdout(&plan));

    let apply = run(
        &root,
        &["apply", "examples/quickstart", "--auto-approve"],
        &sb,
    );
    expect_code(&apply, 0);
    assert!(
        stdout(&apply).contains("Apply complete:"),
        "{}",
        stdout(&apply)
    );

    let again = run(
        &root,
        &["plan", "examples/quickstart", "--detailed-exitcode"],
        &sb,
    );
    expect_code(&again, 0);
    insta::with_settings!({filters => filters()}, {
        insta::assert_snapshot!("quickstart_plan_after_apply", stdout(&again));
    });
}

#[test]
fn json_plan_output_follows_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let out = run(
        &root(),
        &["plan", "examples/quickstart", "--output", "json"],
        &sb,
    );
    expect_code(&out, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("schema/plan-output.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(doc["format_version"], 1);
    insta::assert_json_snapshot!("quickstart_plan_json", doc);
}

#[test]
fn drift_made_with_kubectl_shows_in_plan_and_apply_fixes_it() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let root = root();
    expect_code(
        &run(
            &root,
            &["apply", "examples/quickstart", "--auto-approve"],
            &sb,
        ),
        0,
    );
    {
        let serve = Serve::start(&sb);
        serve.kubectl(&[
            "--context",
            "dev",
            "-n",
            "payments",
            "patch",
            "sa",
            "orders",
            "-p",
            r#"{"automountServiceAccountToken":true}"#,
        ]);
        serve.kubectl(&[
            "--context",
            "dev",
            "-n",
            "payments",
            "label",
            "sa",
            "orders",
            "owner=someone-else",
        ]);
        serve.kubectl(&[
            "--context",
            "dev",
            "-n",
            "payments",
            "annotate",
            "sa",
            "orders",
            "ci.example.com/scanned=yes",
        ]);
    }
    let plan = run(
        &root,
        &["plan", "examples/quickstart", "--detailed-exitcode"],
        &sb,
    );
    expect_code(&plan, 2);
    let text = stdout(&plan);
    assert!(
        text.contains("k8s/serviceaccount/dev/payments/orders"),
        "{text}"
    );
    assert!(
        text.contains("automountServiceAccountToken: true → false"),
        "{text}"
    );
    assert!(
        !text.contains("owner"),
        "labels others set are not wid's business:\n{text}"
    );
    insta::assert_snapshot!("drift_plan", text);

    expect_code(
        &run(
            &root,
            &["apply", "examples/quickstart", "--auto-approve"],
            &sb,
        ),
        0,
    );
    expect_code(
        &run(
            &root,
            &["plan", "examples/quickstart", "--detailed-exitcode"],
            &sb,
        ),
        0,
    );
    let serve = Serve::start(&sb);
    let sa = stdout(&serve.kubectl(&[
        "--context",
        "dev",
        "-n",
        "payments",
        "get",
        "sa",
        "orders",
        "-o",
        "json",
    ]));
    let sa: serde_json::Value = serde_json::from_str(&sa).unwrap();
    assert_eq!(sa["automountServiceAccountToken"], false);
    assert_eq!(
        sa["metadata"]["labels"]["owner"], "someone-else",
        "others' label survives apply"
    );
    assert_eq!(
        sa["metadata"]["annotations"]["ci.example.com/scanned"], "yes",
        "others' annotation survives apply"
    );
    assert_eq!(sa["metadata"]["labels"]["team"], "payments");
}

#[test]
fn prune_removes_what_left_the_plan_and_nothing_wid_did_not_create() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let plan_dir = tmp.path().join("plan");
    copy_plan(&root().join("examples/quickstart"), &plan_dir);
    let p = plan_dir.display().to_string();
    expect_code(&run(tmp.path(), &["apply", &p, "--auto-approve"], &sb), 0);
    {
        let serve = Serve::start(&sb);
        serve.kubectl(&[
            "--context",
            "dev",
            "create",
            "serviceaccount",
            "hand-made",
            "-n",
            "payments",
        ]);
    }
    // config-watcher (with its Role and RoleBinding) leaves the plan.
    let workloads = std::fs::read_to_string(plan_dir.join("workloads.toml")).unwrap();
    let start = workloads
        .find("# A workload that does call the API")
        .unwrap();
    let end = workloads[start..]
        .find("[[workload]]\ncluster = \"staging\"")
        .unwrap()
        + start;
    std::fs::write(
        plan_dir.join("workloads.toml"),
        format!("{}{}", &workloads[..start], &workloads[end..]),
    )
    .unwrap();

    let without_prune = run(tmp.path(), &["plan", &p, "--detailed-exitcode"], &sb);
    expect_code(&without_prune, 0);
    let plan = run(
        tmp.path(),
        &["plan", &p, "--prune", "--detailed-exitcode"],
        &sb,
    );
    expect_code(&plan, 2);
    insta::assert_snapshot!("prune_plan", stdout(&plan));
    assert!(!stdout(&plan).contains("hand-made"));

    expect_code(
        &run(tmp.path(), &["apply", &p, "--prune", "--auto-approve"], &sb),
        0,
    );
    expect_code(
        &run(
            tmp.path(),
            &["plan", &p, "--prune", "--detailed-exitcode"],
            &sb,
        ),
        0,
    );
    let serve = Serve::start(&sb);
    let names = stdout(&serve.kubectl(&[
        "--context",
        "dev",
        "-n",
        "payments",
        "get",
        "sa,roles,rolebindings",
        "-o",
        "name",
    ]));
    assert!(names.contains("serviceaccount/hand-made"), "{names}");
    assert!(names.contains("serviceaccount/orders"), "{names}");
    assert!(names.contains("serviceaccount/default"), "{names}");
    assert!(!names.contains("config-watcher"), "{names}");
}

#[test]
fn a_bad_plan_exits_1_with_every_error_located_and_calls_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let plan_dir = tmp.path().join("bad");
    std::fs::create_dir_all(&plan_dir).unwrap();
    std::fs::write(
        plan_dir.join("a.toml"),
        "version = 1\nname = \"bad\"\nowner = \"me\"\n\n[clusters.dev]\nkind = \"generic\"\n\n[[workload]]\ncluster = \"dev\"\nnamespace = \"Payments\"\nservice_account = \"api\"\n",
    )
    .unwrap();
    std::fs::write(
        plan_dir.join("b.toml"),
        "version = 1\n\n[[workload]]\ncluster = \"prod\"\nnamespace = \"web\"\nservice_account = \"api\"\n\n[[workload]]\ncluster = \"dev\"\nnamespace = \"Payments\"\nservice_account = \"api\"\n",
    )
    .unwrap();
    for cmd in ["validate", "plan", "apply"] {
        let mut args = vec![cmd, "bad"];
        if cmd == "apply" {
            args.push("--auto-approve");
        }
        let out = if cmd == "validate" {
            wid(tmp.path(), &args)
        } else {
            run(tmp.path(), &args, &sb)
        };
        expect_code(&out, 1);
        let err = stderr(&out);
        for located in [
            "bad/a.toml:3:1",
            "bad/a.toml:10:13",
            "bad/b.toml:4:11",
            "bad/b.toml:11:19",
        ] {
            assert!(err.contains(located), "{cmd}: missing {located} in:\n{err}");
        }
        if cmd == "validate" {
            insta::assert_snapshot!("bad_plan_errors", err);
        }
    }
    assert_eq!(
        sandbox_calls(&sb),
        0,
        "an invalid plan must not reach any API"
    );
    assert!(
        !sb.join("state.json").exists(),
        "the sandbox was not even started"
    );
}

#[test]
fn usage_errors_exit_1_because_2_means_changes_pending() {
    let out = wid(&root(), &["plan"]);
    expect_code(&out, 1);
    let help = wid(&root(), &["--help"]);
    expect_code(&help, 0);
    assert!(stdout(&help).contains("Exit codes:"), "{}", stdout(&help));
}

#[test]
fn a_missing_namespace_is_a_plan_time_error_unless_the_cluster_creates_namespaces() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let plan = tmp.path().join("plan.toml");
    let text = "version = 1\nname = \"ns\"\n[clusters.dev]\nkind = \"generic\"\n[[workload]]\ncluster = \"dev\"\nnamespace = \"nope\"\nservice_account = \"api\"\n";
    std::fs::write(&plan, text).unwrap();
    let p = plan.display().to_string();
    let out = run(tmp.path(), &["plan", &p], &sb);
    expect_code(&out, 1);
    assert!(
        stdout(&out).contains("namespace nope does not exist in cluster dev"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("conflict(s) block this plan"),
        "{}",
        stderr(&out)
    );
    let apply = run(tmp.path(), &["apply", &p, "--auto-approve"], &sb);
    expect_code(&apply, 1);
    std::fs::write(
        &plan,
        text.replace(
            "kind = \"generic\"",
            "kind = \"generic\"\ncreate_namespaces = true",
        ),
    )
    .unwrap();
    expect_code(&run(tmp.path(), &["apply", &p, "--auto-approve"], &sb), 0);
}

#[test]
fn several_clusters_without_contexts_are_refused_before_any_call() {
    let out = wid(&root(), &["plan", "examples/quickstart"]);
    expect_code(&out, 1);
    assert!(
        stderr(&out).contains("have no `context`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    let out = run(&root(), &["apply", "examples/quickstart"], &sb);
    expect_code(&out, 1);
    assert!(stderr(&out).contains("--auto-approve"), "{}", stderr(&out));
    assert_eq!(sandbox_calls(&sb), 0);
}

#[test]
fn render_writes_the_manifests_apply_would_send() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("k8s");
    let out = wid(
        &root(),
        &[
            "render",
            "examples/quickstart",
            "--out-dir",
            &out_dir.display().to_string(),
        ],
    );
    expect_code(&out, 0);
    let sa =
        std::fs::read_to_string(out_dir.join("dev/payments/serviceaccount-orders.yaml")).unwrap();
    insta::assert_snapshot!("render_orders", sa);
    assert!(
        out_dir
            .join("dev/payments/role-wid-config-watcher.yaml")
            .exists()
    );
    assert!(
        out_dir
            .join("dev/payments/rolebinding-wid-config-watcher.yaml")
            .exists()
    );
}

#[test]
fn kubectl_works_against_wid_sandbox_serve() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sb = tmp.path().join("sb");
    expect_code(
        &run(
            &root(),
            &["apply", "examples/quickstart", "--auto-approve"],
            &sb,
        ),
        0,
    );
    let serve = Serve::start(&sb);
    let k = |args: &[&str]| {
        let mut all = vec!["--context", "dev"];
        all.extend_from_slice(args);
        stdout(&serve.kubectl(&all))
    };
    assert!(k(&["get", "sa", "-A"]).contains("config-watcher"));
    let yaml = k(&["get", "sa", "orders", "-n", "payments", "-o", "yaml"]);
    assert!(yaml.contains("app.kubernetes.io/managed-by: wid"), "{yaml}");
    let manifest = tmp.path().join("ci.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ci\n  namespace: payments\n  labels:\n    team: ci\n",
    )
    .unwrap();
    k(&[
        "apply",
        "--server-side",
        "-f",
        &manifest.display().to_string(),
    ]);
    k(&[
        "patch",
        "sa",
        "ci",
        "-n",
        "payments",
        "-p",
        r#"{"automountServiceAccountToken":false}"#,
    ]);
    let automount = k(&[
        "get",
        "sa",
        "ci",
        "-n",
        "payments",
        "-o",
        "jsonpath={.automountServiceAccountToken}",
    ]);
    assert_eq!(automount.trim(), "false");
    let token = k(&[
        "create",
        "token",
        "ci",
        "-n",
        "payments",
        "--duration",
        "10m",
        "--audience",
        "https://ci.example.com",
    ]);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    k(&["delete", "sa", "ci", "-n", "payments"]);
    assert!(!k(&["get", "sa", "-n", "payments", "-o", "name"]).contains("serviceaccount/ci"));
}

/// A plan with one type error per entry, of every kind serde can report for a plan.
const TYPE_ERRORS: &str = r#"version = 1
name = "types"

[aws]
trust_policy_limit = "big"

[clusters.a]
kind = "gkee"

[clusters.b]
kind = "eks"
account = 111122223333

[clusters.c]
kind = "generic"
create_namespaces = "yes"

[clusters.d]
kind = ["generic"]

[clusters.e]
kind = "generic"

[[workload]]
cluster = "a"
namespace = "ns"
service_account = "x"

[[workload]]
cluster = "e"
namespace = 5
service_account = "y"

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "w"
labels = ["team"]

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "v"
aws.role = "r"
aws.max_session_duration = -5

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "u"
aws.role = "r"
aws.max_session_duration = 3600.5

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "t"
aws.role = "r"
aws.inline_policies.s3 = 5

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "s"
aws.role = "r"
aws.mechanism = "pod_identity"

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "q"
aws.role = "r"
aws.managed_policies = "arn:aws:iam::aws:policy/X"

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "p"
kubernetes.rules = [{ apiGroups = "", resources = ["pods"], verbs = ["get"] }]

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "o"
automount_token = "false"

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "m"
aws = "role"

[[workload]]
cluster = "e"
namespace = "ns"
service_account = "l"
kubernetes = { rules = { apiGroups = [""] } }
"#;

#[test]
fn type_errors_speak_toml_never_rust() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("types.toml"), TYPE_ERRORS).unwrap();
    let out = wid(tmp.path(), &["validate", "types.toml"]);
    expect_code(&out, 1);
    let err = stderr(&out);
    let rust = regex::Regex::new(
        r"\b(u8|u16|u32|u64|usize|i32|i64|f64|struct|enum|untagged|sequence|Option|Vec|BTreeMap|String)\b|expected a map",
    )
    .unwrap();
    assert!(!rust.is_match(&err), "{:?} in:\n{err}", rust.find(&err));
    // Each broken entry reports once; none of them also claims its cluster is undeclared.
    assert!(!err.contains("is not declared"), "{err}");
    insta::assert_snapshot!("type_errors", err);
}

#[test]
fn answering_anything_but_yes_at_the_prompt_exits_1_and_changes_nothing() {
    if !have("script") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan");
    copy_plan(&root().join("examples/quickstart"), &plan);
    let sb = tmp.path().join("sb");
    // `script` gives wid a terminal, as a person at the prompt has; it types the answer.
    let at_the_prompt = |answer: &str| {
        let cmd = format!(
            "{} apply {} --sandbox-dir {} --color never",
            env!("CARGO_BIN_EXE_wid"),
            plan.display(),
            sb.display()
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run script");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let state = || std::fs::read_to_string(sb.join("state.json")).unwrap_or_default();
    for answer in ["no", "y", ""] {
        let out = at_the_prompt(answer);
        expect_code(&out, 1);
        let text = stdout(&out);
        assert!(text.contains("Only 'yes' is accepted"), "{text}");
        assert!(
            text.contains("apply cancelled; nothing was changed"),
            "{text}"
        );
        assert!(
            !state().contains("\"orders\""),
            "{answer:?} changed something"
        );
    }
    let out = at_the_prompt("yes");
    expect_code(&out, 0);
    assert!(state().contains("\"orders\""));
}

#[test]
fn library_logs_stay_quiet_unless_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("plan.toml"),
        "version = 1\nname = \"quiet\"\n[clusters.dev]\nkind = \"generic\"\nkubeconfig = \"kubeconfig\"\n[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\n",
    )
    .unwrap();
    let plan = |extra: &[&str], log: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wid"));
        cmd.arg("plan").arg("plan.toml").args(extra);
        cmd.current_dir(tmp.path()).env("NO_COLOR", "1");
        match log {
            Some(l) => cmd.env("WID_LOG", l),
            None => cmd.env_remove("WID_LOG"),
        };
        cmd.output().unwrap()
    };
    let quiet = plan(&[], None);
    expect_code(&quiet, 1);
    let err = stderr(&quiet);
    assert!(
        err.starts_with("error: "),
        "one error, no log lines:\n{err}"
    );
    assert!(
        !err.contains("kube_client") && !err.contains("ERROR"),
        "{err}"
    );
    let verbose = plan(&["-vvv"], None);
    assert!(
        stderr(&verbose).contains("kube_client"),
        "{}",
        stderr(&verbose)
    );
    let asked = plan(&[], Some("kube_client=error"));
    assert!(stderr(&asked).contains("kube_client"), "{}", stderr(&asked));
    let help = wid(tmp.path(), &["--help"]);
    for documented in ["WID_LOG", "-v, --verbose"] {
        assert!(stdout(&help).contains(documented), "{}", stdout(&help));
    }
}
