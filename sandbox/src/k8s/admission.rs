//! What the real API server does to an object besides storing it: name validation,
//! defaulting, the ServiceAccount admission plugin on pods, and the ServiceAccount and
//! root-CA ConfigMap a new namespace gets from its controllers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use serde_json::{Value, json};

use super::ClusterState;
use super::catalog::{self, NameRule, ResourceInfo};
use super::status::ApiError;

/// Namespaces the server refuses to delete.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// Where the ServiceAccount admission mounts the token volume.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A stand-in cluster CA, published in every namespace's `kube-root-ca.crt`.
const ROOT_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBWID-SANDBOX-NOT-A-REAL-CERTIFICATE\n-----END CERTIFICATE-----\n";

/// Five characters from the alphabet the real server uses for generated names (no
/// vowels, no look-alikes).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// `422`: neither a name nor a generateName.
pub fn name_required(info: &ResourceInfo) -> ApiError {
    ApiError::invalid(
        info.group,
        info.kind,
        "",
        &[(
            "metadata.name".into(),
            "Required value: name or generateName is required".into(),
        )],
    )
}

fn is_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Checks a new object's name against its kind's rule, with the real server's messages.
pub fn validate_name(info: &ResourceInfo, name: &str) -> Result<(), ApiError> {
    let problem = match info.name_rule() {
        NameRule::Label if name.len() > 63 => Some("must be no more than 63 characters".to_owned()),
        NameRule::Label if !is_label(name) => Some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_owned(),
        ),
        NameRule::Subdomain if name.len() > 253 => {
            Some("must be no more than 253 characters".to_owned())
        }
        NameRule::Subdomain if !name.split('.').all(is_label) => Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_owned(),
        ),
        NameRule::PathSegment if name == "." || name == ".." => {
            Some(format!("may not be '{name}'"))
        }
        NameRule::PathSegment if name.contains('/') => Some("may not contain '/'".to_owned()),
        NameRule::PathSegment if name.contains('%') => Some("may not contain '%'".to_owned()),
        _ => None,
    };
    match problem {
        Some(why) => Err(ApiError::invalid(
            info.group,
            info.kind,
            name,
            &[(
                "metadata.name".into(),
                format!("Invalid value: {name:?}: {why}"),
            )],
        )),
        None => Ok(()),
    }
}

/// The most bytes of annotation keys and values one object may carry
/// (apimachinery's `TotalAnnotationSizeLimitB`).
pub const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// Checks an object's labels and annotations as the real server's `ValidateObjectMeta`
/// does: label values at most 63 characters of the label-value grammar, annotations at
/// most 256 KiB in all.
pub fn validate_metadata(info: &ResourceInfo, object: &Value) -> Result<(), ApiError> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let mut causes = Vec::new();
    if let Some(labels) = object["metadata"]["labels"].as_object() {
        for value in labels.values() {
            let value = value.as_str().unwrap_or_default();
            let bytes = value.as_bytes();
            let grammar = bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && bytes.first().is_none_or(u8::is_ascii_alphanumeric)
                && bytes.last().is_none_or(u8::is_ascii_alphanumeric);
            if value.len() > 63 {
                causes.push((
                    "metadata.labels".into(),
                    format!("Invalid value: {value:?}: must be no more than 63 characters"),
                ));
            } else if !grammar {
                causes.push((
                    "metadata.labels".into(),
                    format!("Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
                ));
            }
        }
    }
    if let Some(annotations) = object["metadata"]["annotations"].as_object() {
        let total: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if total > ANNOTATIONS_LIMIT {
            causes.push((
                "metadata.annotations".into(),
                format!("Too long: must have at most {ANNOTATIONS_LIMIT} bytes"),
            ));
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(info.group, info.kind, name, &causes))
}

/// Defaults the real server fills in for the kinds that have visible ones.
pub fn default(info: &ResourceInfo, object: &mut Value) {
    match info.resource {
        "namespaces" => {
            let name = object["metadata"]["name"].clone();
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            if object["spec"]["finalizers"].is_null() {
                object["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            if object["status"]["phase"].is_null() {
                object["status"]["phase"] = json!("Active");
            }
        }
        "secrets" if object["type"].is_null() => object["type"] = json!("Opaque"),
        "pods" if object["status"]["phase"].is_null() => {
            object["status"]["phase"] = json!("Pending");
        }
        _ => {}
    }
}

/// What the API server does to a Secret's `stringData` on every write (create, update,
/// patch, apply): each key is written into `data` base64-encoded, winning over a `data`
/// key of the same name, and `stringData` itself is never stored. (The real server does it
/// in the v1 → internal conversion, so every verb sees it.)
pub fn merge_string_data(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let Some(string_data) = map.remove("stringData") else {
        return;
    };
    let Value::Object(entries) = string_data else {
        return;
    };
    if entries.is_empty() {
        return;
    }
    if !map.get("data").is_some_and(Value::is_object) {
        map.insert("data".into(), json!({}));
    }
    if let Some(Value::Object(data)) = map.get_mut("data") {
        for (key, value) in entries {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            data.insert(key, json!(STANDARD.encode(text)));
        }
    }
}

impl ClusterState {
    /// The ServiceAccount admission plugin on pod creation: an empty
    /// `serviceAccountName` becomes `default` (and the deprecated `serviceAccount` follows
    /// it); the ServiceAccount must exist (unless `check` is off, for fixtures); when the
    /// effective automount is on, the projected token volume is added and mounted in every
    /// container.
    pub(super) fn admit_pod(
        &self,
        namespace: &str,
        pod: &mut Value,
        check: bool,
    ) -> Result<(), ApiError> {
        if !pod["spec"].is_object() {
            pod["spec"] = json!({});
        }
        let sa_name = ["serviceAccountName", "serviceAccount"]
            .iter()
            .find_map(|f| pod["spec"][f].as_str().filter(|s| !s.is_empty()))
            .unwrap_or("default")
            .to_owned();
        pod["spec"]["serviceAccountName"] = json!(sa_name);
        pod["spec"]["serviceAccount"] = json!(sa_name);
        let accounts = catalog::by_plural("serviceaccounts").expect("serviceaccounts are served");
        let account = self.get(accounts, Some(namespace), &sa_name).ok();
        if account.is_none() && check {
            let pods = catalog::by_plural("pods").expect("pods are served");
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            return Err(ApiError::forbidden(
                pods,
                name,
                &format!(
                    "error looking up service account {namespace}/{sa_name}: serviceaccount \"{sa_name}\" not found"
                ),
            ));
        }
        // Pod's preference wins, then the ServiceAccount's, then true.
        let automount = pod["spec"]["automountServiceAccountToken"]
            .as_bool()
            .or_else(|| account.and_then(|a| a["automountServiceAccountToken"].as_bool()))
            .unwrap_or(true);
        if automount {
            mount_token(pod);
        }
        Ok(())
    }

    /// What a new namespace gets from the controllers: its `default` ServiceAccount and
    /// the `kube-root-ca.crt` ConfigMap.
    pub(super) fn populate_namespace(&mut self, namespace: &str) {
        let seeds = [
            (
                "serviceaccounts",
                json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "default" } }),
            ),
            (
                "configmaps",
                json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": "kube-root-ca.crt",
                        "annotations": { "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters." },
                    },
                    "data": { "ca.crt": ROOT_CA },
                }),
            ),
        ];
        for (resource, body) in seeds {
            let info = catalog::by_plural(resource).expect("seeded kinds are served");
            let name = body["metadata"]["name"].as_str().unwrap_or_default();
            if self.get(info, Some(namespace), name).is_err() {
                // Cannot fail: the namespace exists and the names are valid and free.
                let _ = self.create(
                    info,
                    Some(namespace),
                    &body,
                    "kube-controller-manager",
                    false,
                );
            }
        }
    }
}

/// Adds the `kube-api-access-xxxxx` projected volume and mounts it in every container,
/// unless a container already mounts something at the token path.
fn mount_token(pod: &mut Value) {
    let containers = ["initContainers", "containers"];
    let already = containers.iter().any(|c| {
        pod["spec"][c]
            .as_array()
            .into_iter()
            .flatten()
            .any(|container| {
                container["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["mountPath"] == TOKEN_MOUNT_PATH)
            })
    });
    if already {
        return;
    }
    let volume_name = format!("kube-api-access-{}", random_suffix());
    let volume = json!({
        "name": volume_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } },
                { "configMap": { "name": "kube-root-ca.crt", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
                { "downwardAPI": { "items": [{ "path": "namespace", "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" } }] } },
            ],
        },
    });
    if !pod["spec"]["volumes"].is_array() {
        pod["spec"]["volumes"] = json!([]);
    }
    if let Some(volumes) = pod["spec"]["volumes"].as_array_mut() {
        volumes.push(volume);
    }
    let mount = json!({ "name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH });
    for c in containers {
        for container in pod["spec"][c].as_array_mut().into_iter().flatten() {
            if !container["volumeMounts"].is_array() {
                container["volumeMounts"] = json!([]);
            }
            if let Some(mounts) = container["volumeMounts"].as_array_mut() {
                mounts.push(mount.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str) -> String {
        super::super::store::key(Some(ns), name)
    }

    fn cluster_with(sa_automount: Option<bool>) -> ClusterState {
        let mut c = ClusterState::default();
        let ns = catalog::by_plural("namespaces").expect("served");
        c.create(
            ns,
            None,
            &json!({ "metadata": { "name": "prod" } }),
            "t",
            false,
        )
        .expect("namespace");
        if let Some(automount) = sa_automount {
            let sa = catalog::by_plural("serviceaccounts").expect("served");
            c.replace(
                sa,
                Some("prod"),
                "default",
                &json!({ "metadata": { "name": "default" }, "automountServiceAccountToken": automount }),
                "t",
            )
            .expect("sa");
        }
        c
    }

    fn pod(extra: Value) -> Value {
        let mut p =
            json!({ "metadata": { "name": "p" }, "spec": { "containers": [{ "name": "c" }] } });
        super::super::patch::merge_patch(&mut p, &extra);
        p
    }

    #[test]
    fn new_namespace_gets_default_sa_and_root_ca() {
        let c = cluster_with(None);
        assert!(c.objects["serviceaccounts"].contains_key(&key("prod", "default")));
        assert!(c.objects["configmaps"].contains_key(&key("prod", "kube-root-ca.crt")));
        let ns = &c.objects["namespaces"]["prod"];
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "prod"
        );
    }

    #[test]
    fn pod_gets_default_sa_and_token_volume() {
        let c = cluster_with(None);
        let mut p = pod(json!({}));
        c.admit_pod("prod", &mut p, true).expect("admitted");
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        assert_eq!(p["spec"]["serviceAccount"], "default");
        let volume = &p["spec"]["volumes"][0];
        let name = volume["name"].as_str().expect("named");
        let suffix = name.strip_prefix("kube-api-access-").expect("prefix");
        assert_eq!(suffix.len(), 5);
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(
            volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        let mount = &p["spec"]["containers"][0]["volumeMounts"][0];
        assert_eq!(mount["mountPath"], TOKEN_MOUNT_PATH);
        assert_eq!(mount["name"], name);
    }

    #[test]
    fn automount_precedence_pod_then_sa_then_true() {
        for (sa, pod_pref, mounted) in [
            (Some(false), None, false),
            (Some(false), Some(true), true),
            (Some(true), Some(false), false),
            (None, None, true),
        ] {
            let c = cluster_with(sa);
            let mut p = match pod_pref {
                Some(b) => pod(json!({ "spec": { "automountServiceAccountToken": b } })),
                None => pod(json!({})),
            };
            c.admit_pod("prod", &mut p, true).expect("admitted");
            assert_eq!(
                p["spec"]["volumes"].is_array(),
                mounted,
                "{sa:?} {pod_pref:?}"
            );
        }
    }

    #[test]
    fn missing_sa_is_refused_unless_unchecked() {
        let c = cluster_with(None);
        let mut p = pod(json!({ "spec": { "serviceAccountName": "ghost" } }));
        let err = c
            .admit_pod("prod", &mut p.clone(), true)
            .expect_err("missing sa");
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            "pods \"p\" is forbidden: error looking up service account prod/ghost: serviceaccount \"ghost\" not found"
        );
        c.admit_pod("prod", &mut p, false)
            .expect("fixtures skip the check");
        assert!(p["spec"]["volumes"].is_array());
    }

    #[test]
    fn string_data_is_merged_into_data_and_never_stored() {
        let mut secret = json!({
            "metadata": { "name": "s" },
            "data": { "a": "b2xk", "keep": "eA==" },
            "stringData": { "a": "new", "b": "plain text" },
        });
        merge_string_data(&mut secret);
        assert_eq!(
            secret,
            json!({
                "metadata": { "name": "s" },
                "data": { "a": "bmV3", "keep": "eA==", "b": "cGxhaW4gdGV4dA==" },
            })
        );
        let mut only = json!({ "stringData": { "k": "v" } });
        merge_string_data(&mut only);
        assert_eq!(only, json!({ "data": { "k": "dg==" } }));
        let mut empty = json!({ "stringData": {} });
        merge_string_data(&mut empty);
        assert_eq!(empty, json!({}));
    }

    #[test]
    fn names_are_validated_per_kind() {
        let sa = catalog::by_plural("serviceaccounts").expect("served");
        let ns = catalog::by_plural("namespaces").expect("served");
        let role = catalog::by_plural("clusterroles").expect("served");
        assert!(validate_name(sa, "my.app-1").is_ok());
        let err = validate_name(sa, "Bad_Name").expect_err("invalid");
        assert_eq!(err.code, 422);
        assert!(err.message.starts_with(
            "ServiceAccount \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
        assert!(validate_name(ns, "a.b").is_err());
        assert!(validate_name(role, "system:node").is_ok());
        assert!(validate_name(role, "a/b").is_err());
        let meta = |labels: Value, annotations: Value| json!({"metadata": {"name": "x", "labels": labels, "annotations": annotations}});
        assert!(validate_metadata(sa, &meta(json!({"a": "b"}), json!({"k": "v"}))).is_ok());
        let e = validate_metadata(sa, &meta(json!({"a": "x".repeat(64)}), json!({})))
            .expect_err("a 64-character label value");
        assert!(
            e.message.contains("must be no more than 63 characters"),
            "{}",
            e.message
        );
        assert!(validate_metadata(sa, &meta(json!({"a": "-x"}), json!({}))).is_err());
        let big = "v".repeat(ANNOTATIONS_LIMIT - 1);
        assert!(validate_metadata(sa, &meta(json!({}), json!({"k": big}))).is_ok());
        let e = validate_metadata(sa, &meta(json!({}), json!({"k": big, "k2": ""})))
            .expect_err("one byte over 256 KiB");
        assert!(
            e.message
                .contains("Too long: must have at most 262144 bytes"),
            "{}",
            e.message
        );
    }
}
