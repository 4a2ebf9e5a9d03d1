//! Conformance: what kubectl (1.32) commonly does against a real API server, against the
//! sandbox's. One test per behaviour, so a regression names itself.
//!
//! Skipped (loudly) when kubectl is not installed.

mod kubectl_support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kubectl_support::{Kubectl, kubectl_available, start};
use serde_json::Value;

/// One object of each kind the sandbox serves, in namespace `dry` (or cluster-wide).
const EVERY_KIND: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: dry
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
  namespace: dry
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: dry
data:
  a: "1"
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: dry
stringData:
  password: hunter2
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: dry
spec:
  serviceAccountName: app
  containers:
  - name: web
    image: nginx
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: dry
spec:
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: nginx
---
apiVersion: batch/v1
kind: Job
metadata:
  name: once
  namespace: dry
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: once
        image: busybox
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: dry
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reader
  namespace: dry
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: reader
subjects:
- kind: ServiceAccount
  name: app
  namespace: dry
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: dry-viewer
rules:
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: dry-viewer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: dry-viewer
subjects:
- kind: ServiceAccount
  name: app
  namespace: dry
"#;

/// `(kind, name, namespace)` of [`EVERY_KIND`], namespace last.
const OBJECTS: &[(&str, &str, Option<&str>)] = &[
    ("serviceaccount", "app", Some("dry")),
    ("configmap", "settings", Some("dry")),
    ("secret", "creds", Some("dry")),
    ("pod", "web", Some("dry")),
    ("deployment", "api", Some("dry")),
    ("job", "once", Some("dry")),
    ("role", "reader", Some("dry")),
    ("rolebinding", "reader", Some("dry")),
    ("clusterrole", "dry-viewer", None),
    ("clusterrolebinding", "dry-viewer", None),
    ("namespace", "dry", None),
];

/// Every object of [`OBJECTS`] as the server holds it (uid, resourceVersion,
/// managedFields and all), plus the cluster's list resourceVersion.
async fn snapshot(kubectl: &Kubectl) -> (Vec<Value>, String) {
    let mut objects = Vec::new();
    for (kind, name, ns) in OBJECTS {
        let mut args = vec![*kind, *name, "--show-managed-fields"];
        if let Some(ns) = ns {
            args.extend_from_slice(&["-n", ns]);
        }
        objects.push(kubectl.json(&args).await);
    }
    let list = kubectl.json(&["configmaps", "-A"]).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (objects, rv)
}

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

fn decoded(secret: &Value, key: &str) -> String {
    let data = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no data.{key} in {secret}"));
    String::from_utf8(STANDARD.decode(data).expect("base64")).expect("utf-8")
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

/// The header line and the row of `name` in a `kubectl get` table.
fn header_and_row(out: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines
        .find(|l| l.split_whitespace().any(|w| w == name))
        .unwrap_or_else(|| panic!("no row {name} in\n{out}"));
    // Columns are separated by at least two spaces; cells may hold one.
    let split = |l: &str| -> Vec<String> {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    (split(header), split(row))
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_get_prints_the_servers_columns() {
    if !kubectl_available("kubectl_get_prints_the_servers_columns") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, kubectl) = start(dir.path()).await;
    let all = kubectl.manifest("all.yaml", EVERY_KIND);
    kubectl.ok(&["apply", "--server-side", "-f", &all]).await;
    let extra = kubectl.manifest(
        "extra.yaml",
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: tick\n  namespace: dry\nspec:\n  schedule: '*/5 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: t\n            image: busybox\n",
    );
    kubectl.ok(&["apply", "--server-side", "-f", &extra]).await;
    let n = ["-n", "dry"];
    let get = |args: &[&str]| {
        let mut all: Vec<String> = vec!["get".into()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all.extend(n.iter().map(|a| (*a).to_owned()));
        all
    };
    let table = |args: Vec<String>| {
        let kubectl = &kubectl;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            kubectl.ok(&args).await
        }
    };

    let (h, r) = header_and_row(&table(vec!["get".into(), "ns".into()]).await, "dry");
    assert_eq!(h, ["NAME", "STATUS", "AGE"]);
    assert_eq!(r[1], "Active");
    let (h, r) = header_and_row(&table(get(&["secret"])).await, "creds");
    assert_eq!(h, ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(r[1..3], ["Opaque", "1"]);
    let (h, r) = header_and_row(&table(get(&["configmap"])).await, "settings");
    assert_eq!(h, ["NAME", "DATA", "AGE"]);
    assert_eq!(r[1], "1");
    // ServiceAccounts print NAME and AGE since Kubernetes 1.35 (the SECRETS count went:
    // nothing has filled it since 1.24).
    let (h, _) = header_and_row(&table(get(&["sa"])).await, "app");
    assert_eq!(h, ["NAME", "AGE"]);
    let (h, r) = header_and_row(&table(get(&["role"])).await, "reader");
    assert_eq!(h, ["NAME", "CREATED AT"]);
    assert!(r[1].ends_with('Z'), "{r:?}");
    let (h, r) = header_and_row(&table(get(&["rolebinding"])).await, "reader");
    assert_eq!(h, ["NAME", "ROLE", "AGE"]);
    assert_eq!(r[1], "Role/reader");
    let (h, r) = header_and_row(&table(get(&["rolebinding", "-o", "wide"])).await, "reader");
    assert_eq!(
        h,
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    );
    assert_eq!(r.last().map(String::as_str), Some("dry/app"));
    let (h, r) = header_and_row(
        &table(vec![
            "get".into(),
            "clusterrolebinding".into(),
            "-o".into(),
            "wide".into(),
        ])
        .await,
        "dry-viewer",
    );
    assert_eq!(h[..2], ["NAME", "ROLE"]);
    assert_eq!(r[1], "ClusterRole/dry-viewer");
    let (h, r) = header_and_row(&table(get(&["pod"])).await, "web");
    assert_eq!(h, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(r[1..4], ["0/1", "Pending", "0"]);
    let (h, _) = header_and_row(&table(get(&["pod", "-o", "wide"])).await, "web");
    assert_eq!(
        h,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]
    );
    let (h, r) = header_and_row(&table(get(&["deployment", "-o", "wide"])).await, "api");
    assert_eq!(
        h,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(r[1..4], ["0/1", "0", "0"]);
    assert_eq!(r[5..], ["api", "nginx", "app=api"]);
    let (h, r) = header_and_row(&table(get(&["job"])).await, "once");
    assert_eq!(h, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
    assert_eq!(r[1..3], ["Running", "0/1"]);
    let (h, r) = header_and_row(&table(get(&["cronjob"])).await, "tick");
    assert_eq!(
        h,
        [
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE"
        ]
    );
    assert_eq!(r[1..6], ["*/5 * * * *", "<none>", "<unset>", "0", "<none>"]);

    // What kubectl takes from the row objects: labels, label columns, sorting.
    let labels = table(get(&["pod", "--show-labels"])).await;
    let (h, _) = header_and_row(&labels, "web");
    assert_eq!(h.last().map(String::as_str), Some("LABELS"));
    kubectl
        .ok(&["label", "deployment", "api", "-n", "dry", "tier=web"])
        .await;
    let (h, r) = header_and_row(&table(get(&["deployment", "-L", "tier"])).await, "api");
    assert_eq!(h.last().map(String::as_str), Some("TIER"));
    assert_eq!(r.last().map(String::as_str), Some("web"), "{r:?}");
    let sorted = table(get(&["configmap", "--sort-by=.metadata.name"])).await;
    let names: Vec<&str> = sorted
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["kube-root-ca.crt", "settings"]);
    let plain = table(get(&["sa", "-o", "name"])).await;
    assert!(plain.contains("serviceaccount/app"), "{plain}");
    let across = table(vec!["get".into(), "sa".into(), "-A".into()]).await;
    let (h, _) = header_and_row(&across, "app");
    assert_eq!(h, ["NAMESPACE", "NAME", "AGE"]);

    // Watches are not served: kubectl must say so, not hang or print a list.
    let watch = kubectl.fails(&["get", "sa", "-A", "-w"]).await;
    assert!(watch.contains("watch"), "{watch}");
}

const TEAM_RBAC: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
  namespace: team
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: team
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: team
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list"]
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: ["app-creds"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reader
  namespace: team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: reader
subjects:
- kind: ServiceAccount
  name: app
  namespace: team
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: every-sa-lists-pods
  namespace: team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: Group
  name: system:serviceaccounts:team
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: deployer
rules:
- apiGroups: ["apps"]
  resources: ["deployments", "deployments/scale"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ops-deployers
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: deployer
subjects:
- kind: Group
  name: ops
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_auth_can_i_answers_from_rbac() {
    if !kubectl_available("kubectl_auth_can_i_answers_from_rbac") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, kubectl) = start(dir.path()).await;
    let rbac = kubectl.manifest("rbac.yaml", TEAM_RBAC);
    kubectl.ok(&["apply", "--server-side", "-f", &rbac]).await;
    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
        let kubectl = &kubectl;
        async move {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            let out = kubectl.run(&args).await;
            let answer = out.stdout.trim().to_owned();
            assert_eq!(
                out.ok,
                answer == "yes",
                "{args:?}: exit status and answer disagree: {answer} {}",
                out.stderr
            );
            answer
        }
    };

    // The kubeconfig's user is a cluster admin through a visible bootstrap binding.
    let whoami = kubectl.ok(&["auth", "whoami"]).await;
    assert!(whoami.contains("sandbox:cluster-admins"), "{whoami}");
    let binding = kubectl
        .json(&["clusterrolebinding", "sandbox:cluster-admins"])
        .await;
    assert_eq!(binding["roleRef"]["name"], "cluster-admin");
    assert_eq!(binding["subjects"][0]["name"], "sandbox:cluster-admins");
    assert_eq!(can(&["*", "*"]).await, "yes");
    assert_eq!(can(&["delete", "nodes"]).await, "yes");

    let sa = "system:serviceaccount:team:app";
    fn as_sa<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--as", "system:serviceaccount:team:app"]);
        all
    }
    assert_eq!(
        can(&as_sa(&["get", "configmaps", "-n", "team"])).await,
        "yes"
    );
    assert_eq!(
        can(&as_sa(&["list", "configmaps", "-n", "team"])).await,
        "yes"
    );
    assert_eq!(
        can(&as_sa(&["delete", "configmaps", "-n", "team"])).await,
        "no"
    );
    assert_eq!(
        can(&as_sa(&["get", "configmaps", "-n", "default"])).await,
        "no"
    );
    assert_eq!(
        can(&as_sa(&["get", "secrets/app-creds", "-n", "team"])).await,
        "yes"
    );
    assert_eq!(can(&as_sa(&["get", "secrets", "-n", "team"])).await, "no");
    // Through the system:serviceaccounts:team group binding of view.
    assert_eq!(can(&as_sa(&["list", "pods", "-n", "team"])).await, "yes");
    assert_eq!(can(&as_sa(&["list", "pods", "-n", "default"])).await, "no");
    // Through system:authenticated and system:public-info-viewer.
    assert_eq!(can(&as_sa(&["get", "/version"])).await, "yes");
    assert_eq!(can(&as_sa(&["get", "/metrics"])).await, "no");
    assert_eq!(can(&as_sa(&["create", "namespaces"])).await, "no");
    // Groups given with --as-group.
    assert_eq!(can(&["scale", "deployments", "--as", "jane"]).await, "no");
    assert_eq!(
        can(&[
            "update",
            "deployments/scale",
            "--as",
            "jane",
            "--as-group",
            "ops"
        ])
        .await,
        "yes"
    );

    let list = kubectl
        .ok(&["auth", "can-i", "--list", "-n", "team", "--as", sa])
        .await;
    let configmaps = list
        .lines()
        .find(|l| l.starts_with("configmaps "))
        .unwrap_or_else(|| panic!("no configmaps rule in\n{list}"));
    // kubectl merges the Role's [get list] with view's [get list watch].
    assert!(configmaps.contains("[get list watch]"), "{configmaps}");
    let secrets = list
        .lines()
        .find(|l| l.starts_with("secrets "))
        .unwrap_or_else(|| panic!("no secrets rule in\n{list}"));
    assert!(
        secrets.contains("[app-creds]") && secrets.contains("[get]"),
        "{secrets}"
    );
    assert!(
        list.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{list}"
    );
    assert!(list.contains("/version"), "{list}");

    // Impersonated requests are authorized as the impersonated user.
    kubectl
        .ok(&["get", "configmaps", "-n", "team", "--as", sa])
        .await;
    let denied = kubectl
        .fails(&["get", "secrets", "-n", "team", "--as", sa])
        .await;
    assert!(
        denied.contains(
            "secrets is forbidden: User \"system:serviceaccount:team:app\" cannot list resource \"secrets\" in API group \"\" in the namespace \"team\""
        ),
        "{denied}"
    );
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
