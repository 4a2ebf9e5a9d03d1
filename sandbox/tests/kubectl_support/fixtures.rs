//! Objects and output parsing the kubectl conformance tests share.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::Kubectl;

/// One object of each kind the sandbox serves, in namespace `dry` (or cluster-wide).
pub const EVERY_KIND: &str = r#"apiVersion: v1
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
pub const OBJECTS: &[(&str, &str, Option<&str>)] = &[
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
pub async fn snapshot(kubectl: &Kubectl) -> (Vec<Value>, String) {
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

/// `data.KEY` of a Secret, decoded.
pub fn decoded(secret: &Value, key: &str) -> String {
    let data = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no data.{key} in {secret}"));
    String::from_utf8(STANDARD.decode(data).expect("base64")).expect("utf-8")
}

/// The header line and the row of `name` in a `kubectl get` table.
pub fn header_and_row(out: &str, name: &str) -> (Vec<String>, Vec<String>) {
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
