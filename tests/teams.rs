//! Teams: one plan directory whose files declare different `name`s holds one ownership
//! scope per team, planned and applied in one run. Prune, destroy and the mass-delete
//! guard reach only what carries each scope's own mark, even in one shared cluster and
//! one shared namespace.

mod common;

use std::path::Path;

use common::*;

const CLUSTERS: &str = "version = 1\n# Shared by every team of the directory: no `name`.\n[clusters.dev]\nkind = \"generic\"\ncreate_namespaces = true\n";

fn ksa(namespace: &str, sa: &str) -> String {
    format!(
        "[[workload]]\ncluster = \"dev\"\nnamespace = \"{namespace}\"\nservice_account = \"{sa}\"\n"
    )
}

/// Team `alpha` with `n` KSAs in its namespace plus one in the shared namespace; team
/// `beta` with the KSAs named in `beta`, plus one in the shared namespace.
fn write_plan(dir: &Path, alpha: usize, beta: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("clusters.toml"), CLUSTERS).unwrap();
    let mut a = String::from("version = 1\nname = \"alpha\"\n");
    for i in 0..alpha {
        a.push_str(&ksa("alpha", &format!("svc-{i:02}")));
    }
    a.push_str(&ksa("shared", "alpha-bot"));
    std::fs::write(dir.join("alpha.toml"), a).unwrap();
    let mut b = String::from("version = 1\nname = \"beta\"\n");
    for sa in beta {
        b.push_str(&ksa("beta", sa));
    }
    b.push_str(&ksa("shared", "beta-bot"));
    std::fs::write(dir.join("beta.toml"), b).unwrap();
}

fn run(cwd: &Path, args: &[&str], sandbox: &Path) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.extend(["--sandbox-dir".into(), sandbox.display().to_string()]);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    wid(cwd, &refs)
}

/// The service accounts of a namespace, as `kubectl get -o name` lists them.
fn service_accounts(sb: &Path, namespace: &str) -> Vec<String> {
    let serve = Serve::start(sb);
    let out = serve.kubectl(&[
        "--context",
        "dev",
        "-n",
        namespace,
        "get",
        "serviceaccounts",
        "-o",
        "name",
    ]);
    stdout(&out)
        .lines()
        .map(|l| l.trim_start_matches("serviceaccount/").to_owned())
        .filter(|n| n != "default")
        .collect()
}

#[test]
fn two_teams_plan_apply_and_prune_each_only_their_own() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (sb, dir) = (tmp.path().join("sb"), tmp.path().join("teams"));
    let p = dir.display().to_string();
    write_plan(&dir, 2, &["web", "worker"]);

    let plan = run(tmp.path(), &["plan", &p, "--detailed-exitcode"], &sb);
    expect_code(&plan, 2);
    let text = stdout(&plan);
    insta::with_settings!({filters => vec![(r"\(/[^ ]*/teams/", "(TEAMS/")]}, {
        insta::assert_snapshot!("two_teams_first_plan", text);
    });
    // Grouped scope by scope; the shared namespace is created once.
    let alpha_at = text.find("[alpha] dev/alpha/svc-00").expect(&text);
    let beta_at = text.find("[beta] dev/beta/web").expect(&text);
    assert!(alpha_at < beta_at, "{text}");
    assert_eq!(
        text.matches("k8s/namespace/dev/shared ").count(),
        1,
        "{text}"
    );
    expect_code(&run(tmp.path(), &["apply", &p, "--auto-approve"], &sb), 0);
    expect_code(
        &run(
            tmp.path(),
            &["plan", &p, "--prune", "--detailed-exitcode"],
            &sb,
        ),
        0,
    );

    // beta drops a workload: its prune deletes that one KSA, nothing of alpha's.
    write_plan(&dir, 2, &["web"]);
    let plan = run(
        tmp.path(),
        &["plan", &p, "--prune", "--detailed-exitcode"],
        &sb,
    );
    expect_code(&plan, 2);
    let text = stdout(&plan);
    assert!(text.contains("[beta] left the plan"), "{text}");
    assert_eq!(text.matches("delete (left the plan)").count(), 1, "{text}");
    assert!(
        text.contains("k8s/serviceaccount/dev/beta/worker"),
        "{text}"
    );
    expect_code(
        &run(tmp.path(), &["apply", &p, "--prune", "--auto-approve"], &sb),
        0,
    );
    assert_eq!(service_accounts(&sb, "beta"), ["web"]);
    assert_eq!(service_accounts(&sb, "alpha"), ["svc-00", "svc-01"]);

    // beta's file leaves the directory: alpha's prune does not touch beta's objects,
    // which carry beta's mark, in the same cluster and the same namespace.
    std::fs::remove_file(dir.join("beta.toml")).unwrap();
    let plan = run(
        tmp.path(),
        &["plan", &p, "--prune", "--detailed-exitcode"],
        &sb,
    );
    expect_code(&plan, 0);
    expect_code(
        &run(tmp.path(), &["apply", &p, "--prune", "--auto-approve"], &sb),
        0,
    );
    assert_eq!(service_accounts(&sb, "shared"), ["alpha-bot", "beta-bot"]);
    assert_eq!(service_accounts(&sb, "beta"), ["web"]);

    // Destroy of beta's scope alone (its file and the shared clusters) deletes beta's
    // objects and nothing of alpha's.
    let only_beta = tmp.path().join("beta-only");
    write_plan(&only_beta, 0, &["web"]);
    std::fs::remove_file(only_beta.join("alpha.toml")).unwrap();
    let destroy = run(
        tmp.path(),
        &[
            "destroy",
            &only_beta.display().to_string(),
            "--auto-approve",
        ],
        &sb,
    );
    expect_code(&destroy, 0);
    assert_eq!(service_accounts(&sb, "shared"), ["alpha-bot"]);
    assert!(service_accounts(&sb, "beta").is_empty());
    assert_eq!(service_accounts(&sb, "alpha"), ["svc-00", "svc-01"]);
}

#[test]
fn the_mass_delete_guard_is_per_scope_and_refuses_before_any_write() {
    if !have("kubectl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (sb, dir) = (tmp.path().join("sb"), tmp.path().join("teams"));
    let p = dir.display().to_string();
    write_plan(&dir, 12, &["web", "worker"]);
    expect_code(&run(tmp.path(), &["apply", &p, "--auto-approve"], &sb), 0);

    // alpha loses 11 of its 12 KSAs (a file cut short by a bad merge), beta one of two.
    write_plan(&dir, 1, &["web"]);
    let writes = sandbox_writes(&sb);
    let apply = run(tmp.path(), &["apply", &p, "--prune", "--auto-approve"], &sb);
    expect_code(&apply, 1);
    let err = stderr(&apply);
    insta::assert_snapshot!(
        "mass_delete_refused",
        err.lines().find(|l| l.starts_with("error")).unwrap_or(&err)
    );
    assert!(
        err.contains("scope `alpha` would delete 11 of its"),
        "{err}"
    );
    assert!(err.contains("--allow-mass-delete"), "{err}");
    assert!(!err.contains("scope `beta`"), "{err}");
    assert_eq!(
        sandbox_writes(&sb),
        writes,
        "a refused apply writes nothing"
    );
    assert_eq!(service_accounts(&sb, "alpha").len(), 12);
    assert_eq!(service_accounts(&sb, "beta"), ["web", "worker"]);

    // plan warns; a plan saved without the flag is refused the same way.
    let writes = sandbox_writes(&sb);
    let plan = run(
        tmp.path(),
        &["plan", &p, "--prune", "--out", "guarded.wid"],
        &sb,
    );
    expect_code(&plan, 0);
    assert!(
        stderr(&plan).contains("apply will refuse this plan"),
        "{}",
        stderr(&plan)
    );
    let saved = run(tmp.path(), &["apply", "guarded.wid"], &sb);
    expect_code(&saved, 1);
    assert!(stderr(&saved).contains("scope `alpha` would delete 11"));
    assert_eq!(sandbox_writes(&sb), writes);

    // beta's small prune alone goes through.
    write_plan(&dir, 12, &["web"]);
    expect_code(
        &run(tmp.path(), &["apply", &p, "--prune", "--auto-approve"], &sb),
        0,
    );
    assert_eq!(service_accounts(&sb, "beta"), ["web"]);

    // A saved plan that carries --allow-mass-delete applies alpha's deletes.
    write_plan(&dir, 1, &["web"]);
    expect_code(
        &run(
            tmp.path(),
            &[
                "plan",
                &p,
                "--prune",
                "--allow-mass-delete",
                "--out",
                "allowed.wid",
            ],
            &sb,
        ),
        0,
    );
    expect_code(&run(tmp.path(), &["apply", "allowed.wid"], &sb), 0);
    assert_eq!(service_accounts(&sb, "alpha"), ["svc-00"]);
}

#[test]
fn an_object_owned_by_two_scopes_is_a_plan_error_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("teams");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("clusters.toml"),
        "version = 1\n[clusters.gke]\nkind = \"gke\"\nproject = \"acme-prod\"\nlocation = \"us-central1\"\nname = \"prod\"\nproject_number = \"123456789012\"\n",
    )
    .unwrap();
    // Both teams grant a role on project acme-prod: its IAM policy is one object wid owns.
    let team = |name: &str, sa: &str| {
        format!(
            "version = 1\nname = \"{name}\"\n[[workload]]\ncluster = \"gke\"\nnamespace = \"{name}\"\nservice_account = \"{sa}\"\ngcp.direct = true\ngcp.roles = [\"roles/pubsub.subscriber\"]\n"
        )
    };
    std::fs::write(dir.join("a.toml"), team("alpha", "reader")).unwrap();
    std::fs::write(dir.join("b.toml"), team("beta", "writer")).unwrap();
    let out = wid(tmp.path(), &["validate", &dir.display().to_string()]);
    expect_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("gcp/iam-policy/projects/acme-prod is wanted by scope `alpha`")
            && err.contains("and by scope `beta`")
            && err.contains("declare it in one team's file only"),
        "{err}"
    );
    // The same KSA in two teams' files is the duplicate-KSA error, located.
    std::fs::write(
        dir.join("b.toml"),
        team("beta", "reader").replace("namespace = \"beta\"", "namespace = \"alpha\""),
    )
    .unwrap();
    let out = wid(tmp.path(), &["validate", &dir.display().to_string()]);
    expect_code(&out, 1);
    assert!(
        stderr(&out).contains("is declared twice"),
        "{}",
        stderr(&out)
    );
}

/// Each scope's Kubernetes lists are read ahead of preflight and compile: two teams in
/// one cluster make the lists two plans of their own would make (one of namespaces, one
/// per namespace and kind, with prune one per prunable kind), none twice for one
/// observe, and nothing one team's read-ahead read serves the other's observe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_teams_read_ahead_the_lists_each_would_make() {
    use wid::session::{PlanMode, Session, Target};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plan");
    write_plan(&dir, 2, &["web"]);
    let plan = wid::plan::load(&dir).expect("plan is valid");
    let target = Target {
        sandbox: Some(tmp.path().join("sb")),
        ..Target::default()
    };
    let session = Session::open(plan, &target).await.expect("session");
    let lists = |session: &Session| -> u64 {
        let calls = session.sandbox().expect("sandbox").calls();
        calls
            .iter()
            .filter(|(api, _)| api.starts_with("k8s:list"))
            .map(|(_, n)| n)
            .sum()
    };
    // alpha: namespaces, serviceaccounts in `alpha` and in `shared`, three marked kinds;
    // beta: the same in `beta` and `shared`. Five KSAs (alpha 2 + 1, beta 1 + 1).
    let per_scope = 1 + 2 + 3;
    for round in 1..=2 {
        let planned = session
            .plan(PlanMode::Apply { prune: true })
            .await
            .expect("plan");
        assert_eq!(lists(&session), round * 2 * per_scope);
        let ksas = planned
            .changes
            .iter()
            .filter(|c| c.id.kind() == "serviceaccount")
            .count();
        assert_eq!(ksas, 5, "{:#?}", planned.changes);
    }
}
