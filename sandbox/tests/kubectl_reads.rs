//! Conformance: what kubectl (1.32) reads from a real API server, against the sandbox's:
//! the Table columns of `kubectl get`, and `kubectl auth can-i` / `whoami` answered from
//! RBAC. One test per behaviour, so a regression names itself.
//!
//! Skipped (loudly) when kubectl is not installed.

mod kubectl_support;

use kubectl_support::fixtures::{EVERY_KIND, header_and_row};
use kubectl_support::{kubectl_available, start};

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
