//! Conformance: what kubectl (1.32) writes to a real API server, against the sandbox's:
//! server dry runs, protobuf bodies, Secret stringData, and everyday commands (apply,
//! diff, label, annotate, scale, events, describe). One test per behaviour, so a
//! regression names itself.
//!
//! Skipped (loudly) when kubectl is not installed.

mod kubectl_support;

use kubectl_support::fixtures::{EVERY_KIND, OBJECTS, decoded, header_and_row, snapshot};
use kubectl_support::{kubectl_available, start};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_dry_run_server_changes_nothing() {
    if !kubectl_available("kubectl_dry_run_server_changes_nothing") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, kubectl) = start(dir.path()).await;
    let all = kubectl.manifest("all.yaml", EVERY_KIND);
    kubectl.ok(&["apply", "--server-side", "-f", &all]).await;
    let before = snapshot(&kubectl).await;

    // delete: kubectl puts {"dryRun":["All"]} in the DELETE body.
    for (kind, name, ns) in OBJECTS {
        let mut args = vec!["delete", *kind, *name, "--dry-run=server"];
        if let Some(ns) = ns {
            args.extend_from_slice(&["-n", ns]);
        }
        let out = kubectl.ok(&args).await;
        assert!(out.contains("deleted (server dry run)"), "{out}");
    }
    kubectl
        .ok(&[
            "delete",
            "-f",
            &all,
            "--dry-run=server",
            "--cascade=foreground",
        ])
        .await;
    kubectl
        .ok(&["delete", "-f", &all, "--dry-run=server", "--cascade=orphan"])
        .await;

    // create, replace, patch, apply (both kinds), label, annotate, set.
    let extra = kubectl.manifest(
        "extra.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: extra\n  namespace: dry\n",
    );
    let created = kubectl
        .ok(&["create", "-f", &extra, "--dry-run=server", "-o", "json"])
        .await;
    let created: Value = serde_json::from_str(&created).expect("json");
    assert_eq!(created["metadata"]["name"], "extra");
    assert!(created["metadata"]["uid"].is_string(), "{created}");
    assert!(
        created["metadata"].get("resourceVersion").is_none(),
        "a dry-run create has no resourceVersion: {created}"
    );
    kubectl
        .ok(&["apply", "--server-side", "-f", &extra, "--dry-run=server"])
        .await;
    kubectl
        .ok(&["apply", "-f", &extra, "--dry-run=server"])
        .await;
    let changed = kubectl.manifest(
        "changed.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: dry\ndata:\n  a: \"2\"\n",
    );
    kubectl
        .ok(&["replace", "-f", &changed, "--dry-run=server"])
        .await;
    kubectl
        .ok(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &changed,
            "--dry-run=server",
        ])
        .await;
    let patched = kubectl
        .ok(&[
            "patch",
            "configmap",
            "settings",
            "-n",
            "dry",
            "--dry-run=server",
            "-o",
            "json",
            "-p",
            r#"{"data":{"a":"3"}}"#,
        ])
        .await;
    let patched: Value = serde_json::from_str(&patched).expect("json");
    assert_eq!(
        patched["data"]["a"], "3",
        "a dry run answers as the write would"
    );
    assert_eq!(
        patched["metadata"]["resourceVersion"], before.0[1]["metadata"]["resourceVersion"],
        "a dry run hands out no resourceVersion"
    );
    kubectl
        .ok(&[
            "label",
            "sa",
            "app",
            "-n",
            "dry",
            "team=x",
            "--dry-run=server",
        ])
        .await;
    kubectl
        .ok(&[
            "annotate",
            "sa",
            "app",
            "-n",
            "dry",
            "note=x",
            "--dry-run=server",
        ])
        .await;

    // A dry run validates as the real write would.
    let bad = kubectl.manifest(
        "bad.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: Bad_Name\n  namespace: dry\n",
    );
    let refused = kubectl
        .fails(&["create", "-f", &bad, "--dry-run=server"])
        .await;
    assert!(refused.contains("is invalid"), "{refused}");

    let after = snapshot(&kubectl).await;
    assert_eq!(before, after, "a server dry run changed the cluster");
    let gone = kubectl.fails(&["get", "sa", "extra", "-n", "dry"]).await;
    assert!(gone.contains("not found"), "{gone}");

    // The real delete still deletes.
    kubectl.ok(&["delete", "sa", "app", "-n", "dry"]).await;
    assert!(
        kubectl
            .fails(&["get", "sa", "app", "-n", "dry"])
            .await
            .contains("not found")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_secret_string_data_is_merged_into_data() {
    if !kubectl_available("kubectl_secret_string_data_is_merged_into_data") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, kubectl) = start(dir.path()).await;
    let secret = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  user: b2xk\n  keep: a2VwdA==\nstringData:\n  user: admin\n  password: s3cret\n{extra}"
        )
    };
    let check = |s: &Value| {
        assert!(
            s.get("stringData").is_none(),
            "stringData is never stored: {s}"
        );
        assert_eq!(decoded(s, "user"), "admin", "stringData wins over data");
        assert_eq!(decoded(s, "password"), "s3cret");
        assert_eq!(decoded(s, "keep"), "kept");
        assert_eq!(s["type"], "Opaque");
    };

    // create
    let created = kubectl.manifest("created.yaml", &secret("created", ""));
    kubectl.ok(&["create", "-f", &created]).await;
    check(&kubectl.json(&["secret", "created"]).await);
    // update (PUT)
    kubectl.ok(&["replace", "-f", &created]).await;
    check(&kubectl.json(&["secret", "created"]).await);
    // server-side apply
    let applied = kubectl.manifest("applied.yaml", &secret("applied", ""));
    kubectl
        .ok(&["apply", "--server-side", "-f", &applied])
        .await;
    check(&kubectl.json(&["secret", "applied"]).await);
    // client-side apply (a create, then a strategic merge patch)
    let client = kubectl.manifest("client.yaml", &secret("client", ""));
    kubectl.ok(&["apply", "-f", &client]).await;
    check(&kubectl.json(&["secret", "client"]).await);
    // patches
    for (kind, patch) in [
        ("merge", r#"{"stringData":{"extra":"merged"}}"#),
        ("strategic", r#"{"stringData":{"extra":"merged"}}"#),
        (
            "json",
            r#"[{"op":"add","path":"/stringData","value":{"extra":"merged"}}]"#,
        ),
    ] {
        kubectl
            .ok(&["patch", "secret", "created", "--type", kind, "-p", patch])
            .await;
        let s = kubectl.json(&["secret", "created"]).await;
        assert_eq!(decoded(&s, "extra"), "merged", "{kind} patch");
        check(&s);
        kubectl
            .ok(&[
                "patch",
                "secret",
                "created",
                "--type",
                "json",
                "-p",
                r#"[{"op":"remove","path":"/data/extra"}]"#,
            ])
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_generators_send_protobuf_the_sandbox_reads() {
    if !kubectl_available("kubectl_create_generators_send_protobuf_the_sandbox_reads") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, kubectl) = start(dir.path()).await;
    // Each of these sends an application/vnd.kubernetes.protobuf body.
    kubectl
        .ok(&["create", "namespace", "ghost", "--dry-run=server"])
        .await;
    assert!(
        kubectl
            .fails(&["get", "ns", "ghost"])
            .await
            .contains("not found")
    );
    kubectl.ok(&["create", "namespace", "team"]).await;
    let n = ["-n", "team"];
    let run = |args: &[&str]| {
        // The namespace goes first: a job's command follows `--`.
        let mut all: Vec<String> = n.iter().map(|a| (*a).to_owned()).collect();
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    for args in [
        run(&["create", "serviceaccount", "app"]),
        run(&["create", "configmap", "settings", "--from-literal=a=1"]),
        run(&[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=password=hunter2",
        ]),
        run(&[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=configmaps",
            "--resource-name=settings",
        ]),
        run(&[
            "create",
            "rolebinding",
            "reader",
            "--role=reader",
            "--serviceaccount=team:app",
            "--user=jane",
        ]),
        run(&[
            "create",
            "deployment",
            "api",
            "--image=nginx:1.27",
            "--replicas=2",
            "--port=8080",
        ]),
        run(&[
            "create",
            "job",
            "once",
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ]),
        run(&[
            "create",
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/5 * * * *",
        ]),
        vec![
            "create".into(),
            "clusterrole".into(),
            "pinger".into(),
            "--verb=get".into(),
            "--non-resource-url=/healthz".into(),
        ],
        vec![
            "create".into(),
            "clusterrolebinding".into(),
            "pinger".into(),
            "--clusterrole=pinger".into(),
            "--group=ops".into(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kubectl.ok(&args).await;
        assert!(out.contains("created"), "{out}");
    }
    let calls = sandbox.calls();
    assert!(calls.contains_key("k8s:create deployments"), "{calls:?}");

    let sa = kubectl.json(&["sa", "app", "-n", "team"]).await;
    assert_eq!(sa["metadata"]["namespace"], "team");
    let cm = kubectl.json(&["configmap", "settings", "-n", "team"]).await;
    assert_eq!(cm["data"], serde_json::json!({ "a": "1" }));
    let secret = kubectl.json(&["secret", "creds", "-n", "team"]).await;
    assert_eq!(decoded(&secret, "password"), "hunter2");
    assert_eq!(secret["type"], "Opaque");
    let role = kubectl.json(&["role", "reader", "-n", "team"]).await;
    assert_eq!(
        role["rules"],
        serde_json::json!([{
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["settings"],
            "verbs": ["get", "list"],
        }])
    );
    let binding = kubectl.json(&["rolebinding", "reader", "-n", "team"]).await;
    assert_eq!(binding["roleRef"]["name"], "reader");
    let subjects = binding["subjects"].to_string();
    assert!(
        subjects.contains(r#""kind":"ServiceAccount""#),
        "{subjects}"
    );
    assert!(subjects.contains(r#""name":"jane""#), "{subjects}");
    let deployment = kubectl.json(&["deployment", "api", "-n", "team"]).await;
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"]["app"], "api",
        "{deployment}"
    );
    let job = kubectl.json(&["job", "once", "-n", "team"]).await;
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    let cron = kubectl.json(&["cronjob", "tick", "-n", "team"]).await;
    assert_eq!(cron["spec"]["schedule"], "*/5 * * * *");
    let pinger = kubectl.json(&["clusterrole", "pinger"]).await;
    assert_eq!(
        pinger["rules"][0]["nonResourceURLs"],
        serde_json::json!(["/healthz"])
    );
    let crb = kubectl.json(&["clusterrolebinding", "pinger"]).await;
    assert_eq!(crb["subjects"][0]["name"], "ops");

    // TokenRequest keeps working (protobuf too).
    let token = kubectl
        .ok(&["create", "token", "app", "-n", "team", "--duration", "10m"])
        .await;
    assert_eq!(token.trim().split('.').count(), 3, "{token}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_everyday_commands_work() {
    if !kubectl_available("kubectl_everyday_commands_work") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, kubectl) = start(dir.path()).await;
    let all = kubectl.manifest("all.yaml", EVERY_KIND);
    // Client-side apply: create, then a no-op, then a strategic merge patch.
    kubectl.ok(&["apply", "-f", &all]).await;
    let again = kubectl.ok(&["apply", "-f", &all]).await;
    assert!(again.contains("serviceaccount/app unchanged"), "{again}");
    let changed = kubectl.manifest(
        "changed.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: dry\ndata:\n  a: \"2\"\n",
    );
    let diff = kubectl.run(&["diff", "-f", &changed]).await;
    assert!(diff.stdout.contains("+  a: \"2\""), "{diff:?}");
    kubectl.ok(&["apply", "-f", &changed]).await;
    let cm = kubectl.json(&["configmap", "settings", "-n", "dry"]).await;
    assert_eq!(cm["data"]["a"], "2");

    // label and annotate, including removing the last label.
    kubectl
        .ok(&["label", "sa", "app", "-n", "dry", "team=a"])
        .await;
    kubectl
        .ok(&["label", "sa", "app", "-n", "dry", "team=b", "--overwrite"])
        .await;
    kubectl
        .ok(&["annotate", "sa", "app", "-n", "dry", "note=x"])
        .await;
    let sa = kubectl.json(&["sa", "app", "-n", "dry"]).await;
    assert_eq!(sa["metadata"]["labels"]["team"], "b");
    assert_eq!(sa["metadata"]["annotations"]["note"], "x");
    kubectl
        .ok(&["label", "sa", "app", "-n", "dry", "team-"])
        .await;
    let sa = kubectl.json(&["sa", "app", "-n", "dry"]).await;
    assert!(sa["metadata"].get("labels").is_none(), "{sa}");

    // scale, through the scale subresource.
    let scaled = kubectl
        .ok(&["scale", "deployment", "api", "-n", "dry", "--replicas=3"])
        .await;
    assert!(scaled.contains("scaled"), "{scaled}");
    let deployment = kubectl.json(&["deployment", "api", "-n", "dry"]).await;
    assert_eq!(deployment["spec"]["replicas"], 3);
    let refused = kubectl
        .fails(&["scale", "deployment", "api", "-n", "dry", "--replicas=-1"])
        .await;
    assert!(refused.contains("replicas"), "{refused}");

    // Events: created like any object, listed with their columns, shown by describe.
    // describe finds a pod's events by the pod's uid, as real events carry it.
    let pod = kubectl.json(&["pod", "web", "-n", "dry"]).await;
    let uid = pod["metadata"]["uid"].as_str().expect("uid");
    let event = kubectl.manifest(
        "event.yaml",
        &format!("apiVersion: v1\nkind: Event\nmetadata:\n  name: web.1\n  namespace: dry\ninvolvedObject:\n  kind: Pod\n  name: web\n  namespace: dry\n  uid: {uid}\nreason: Pulled\nmessage: pulled nginx\ntype: Normal\nsource:\n  component: kubelet\ncount: 2\nfirstTimestamp: \"2026-01-01T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:01:00Z\"\n"),
    );
    kubectl.ok(&["create", "-f", &event]).await;
    let events = kubectl.ok(&["get", "events", "-n", "dry"]).await;
    let (h, r) = header_and_row(&events, "pod/web");
    assert_eq!(h, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    assert_eq!(r[1..], ["Normal", "Pulled", "pod/web", "pulled nginx"]);
    let described = kubectl.ok(&["describe", "pod", "web", "-n", "dry"]).await;
    assert!(described.contains("pulled nginx"), "{described}");
    for kind in [
        "sa",
        "deployment",
        "role",
        "rolebinding",
        "secret",
        "configmap",
    ] {
        let name = match kind {
            "sa" => "app",
            "deployment" => "api",
            "secret" => "creds",
            "configmap" => "settings",
            _ => "reader",
        };
        let out = kubectl.ok(&["describe", kind, name, "-n", "dry"]).await;
        assert!(out.contains(name), "{out}");
    }
    let health = kubectl.ok(&["get", "--raw", "/healthz"]).await;
    assert_eq!(health, "ok");
}
