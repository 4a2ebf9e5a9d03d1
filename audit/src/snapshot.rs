//! The snapshot: every cluster object the checks read, as k8s-openapi types, plus the
//! manifest location of each object when it was loaded from files. Loading from YAML
//! (multi-document, `kind: List` expanded, unknown kinds ignored) lives here; the live
//! read lives in `wid-kubernetes` (`snapshot::list_objects`) and fills the same fields.
//!
//! Look-ups are keyed by (namespace, name) only: another namespace's object of the same
//! name must never answer (kubeaudit's cross-namespace `default` SA bug).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::model::{ObjectRef, SourceLocation};

/// The namespace Kubernetes puts a namespaced object in when its manifest names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Every object the checks read. Fields are public so the live path can move lists in.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Namespaces (cluster mode lists them all; manifests may declare some).
    pub namespaces: Vec<Namespace>,
    /// ServiceAccounts.
    pub service_accounts: Vec<ServiceAccount>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// ReplicaSets.
    pub replica_sets: Vec<ReplicaSet>,
    /// StatefulSets.
    pub stateful_sets: Vec<StatefulSet>,
    /// DaemonSets.
    pub daemon_sets: Vec<DaemonSet>,
    /// Jobs.
    pub jobs: Vec<Job>,
    /// CronJobs.
    pub cron_jobs: Vec<CronJob>,
    /// Roles.
    pub roles: Vec<Role>,
    /// RoleBindings.
    pub role_bindings: Vec<RoleBinding>,
    /// ClusterRoles.
    pub cluster_roles: Vec<ClusterRole>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// Secrets. Their data stays in memory; findings name keys, never values.
    pub secrets: Vec<Secret>,
    /// ConfigMaps.
    pub config_maps: Vec<ConfigMap>,
    /// Manifest location of each object loaded from a named file.
    pub sources: BTreeMap<ObjectRef, SourceLocation>,
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A YAML document does not parse.
    #[error("{origin}:{line}: invalid YAML document")]
    Yaml {
        /// File path, or `<input>`.
        origin: String,
        /// 1-based line where the document starts.
        line: usize,
        /// The parser's error.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A document of a known kind does not match that kind's schema.
    #[error("{origin}:{line}: invalid {kind} object")]
    Object {
        /// File path, or `<input>`.
        origin: String,
        /// 1-based line where the document starts.
        line: usize,
        /// The object's kind.
        kind: String,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },
}

/// The namespace of an object's metadata, with the manifest default applied.
pub fn ns_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
}

/// The name of an object's metadata (empty when a manifest omits it).
pub fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

impl Snapshot {
    /// Parses multi-document YAML (no file name: findings get no location).
    pub fn from_yaml(text: &str) -> Result<Self, SnapshotError> {
        let mut snap = Snapshot::default();
        snap.add_yaml(text, None)?;
        Ok(snap)
    }

    /// Parses multi-document YAML read from `path`; findings on its objects point there.
    pub fn from_yaml_file(text: &str, path: &str) -> Result<Self, SnapshotError> {
        let mut snap = Snapshot::default();
        snap.add_yaml(text, Some(path))?;
        Ok(snap)
    }

    /// Adds the objects of one multi-document YAML text. Unknown kinds are ignored, so a
    /// whole application's manifests can be passed as they are.
    pub fn add_yaml(&mut self, text: &str, path: Option<&str>) -> Result<(), SnapshotError> {
        let origin = path.unwrap_or("<input>");
        for (line, doc) in split_documents(text) {
            let value: Value =
                serde_saphyr::from_str(&doc).map_err(|source| SnapshotError::Yaml {
                    origin: origin.to_owned(),
                    line,
                    source: Box::new(source),
                })?;
            self.add_value(value, origin, path.is_some(), line)?;
        }
        Ok(())
    }

    fn add_value(
        &mut self,
        value: Value,
        origin: &str,
        record: bool,
        line: usize,
    ) -> Result<(), SnapshotError> {
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
            if let Some(Value::Array(items)) = value.get("items") {
                for item in items.clone() {
                    self.add_value(item, origin, record, line)?;
                }
            }
            return Ok(());
        }
        let kind = kind.to_owned();
        macro_rules! push {
            ($field:ident, $ty:ty, $namespaced:expr) => {{
                let mut obj: $ty =
                    serde_json::from_value(value).map_err(|source| SnapshotError::Object {
                        origin: origin.to_owned(),
                        line,
                        kind: kind.clone(),
                        source,
                    })?;
                if $namespaced && obj.metadata.namespace.is_none() {
                    obj.metadata.namespace = Some(DEFAULT_NAMESPACE.to_owned());
                }
                if record {
                    let r = if $namespaced {
                        ObjectRef::namespaced(&kind, ns_of(&obj.metadata), name_of(&obj.metadata))
                    } else {
                        ObjectRef::cluster(&kind, name_of(&obj.metadata))
                    };
                    self.sources.insert(
                        r,
                        SourceLocation {
                            path: origin.to_owned(),
                            line,
                        },
                    );
                }
                self.$field.push(obj);
            }};
        }
        match (api_version, kind.as_str()) {
            ("v1", "Namespace") => push!(namespaces, Namespace, false),
            ("v1", "ServiceAccount") => push!(service_accounts, ServiceAccount, true),
            ("v1", "Pod") => push!(pods, Pod, true),
            ("v1", "Secret") => push!(secrets, Secret, true),
            ("v1", "ConfigMap") => push!(config_maps, ConfigMap, true),
            ("apps/v1", "Deployment") => push!(deployments, Deployment, true),
            ("apps/v1", "ReplicaSet") => push!(replica_sets, ReplicaSet, true),
            ("apps/v1", "StatefulSet") => push!(stateful_sets, StatefulSet, true),
            ("apps/v1", "DaemonSet") => push!(daemon_sets, DaemonSet, true),
            ("batch/v1", "Job") => push!(jobs, Job, true),
            ("batch/v1", "CronJob") => push!(cron_jobs, CronJob, true),
            ("rbac.authorization.k8s.io/v1", "Role") => push!(roles, Role, true),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                push!(role_bindings, RoleBinding, true)
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                push!(cluster_roles, ClusterRole, false)
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                push!(cluster_role_bindings, ClusterRoleBinding, false)
            }
            _ => {}
        }
        Ok(())
    }

    /// The ServiceAccount `name` in namespace `ns`, if present.
    pub fn service_account(&self, ns: &str, name: &str) -> Option<&ServiceAccount> {
        self.service_accounts
            .iter()
            .find(|sa| ns_of(&sa.metadata) == ns && name_of(&sa.metadata) == name)
    }

    /// The Role `name` in namespace `ns`, if present.
    pub fn role(&self, ns: &str, name: &str) -> Option<&Role> {
        self.roles
            .iter()
            .find(|r| ns_of(&r.metadata) == ns && name_of(&r.metadata) == name)
    }

    /// The ClusterRole `name`, if present.
    pub fn cluster_role(&self, name: &str) -> Option<&ClusterRole> {
        self.cluster_roles
            .iter()
            .find(|r| name_of(&r.metadata) == name)
    }

    /// Every namespace the snapshot knows of: declared Namespaces plus the namespaces of
    /// namespaced objects (manifests often omit the Namespace objects), sorted.
    pub fn namespace_names(&self) -> Vec<String> {
        let mut names: std::collections::BTreeSet<String> = self
            .namespaces
            .iter()
            .map(|n| name_of(&n.metadata).to_owned())
            .collect();
        let metas = self
            .service_accounts
            .iter()
            .map(|o| &o.metadata)
            .chain(self.pods.iter().map(|o| &o.metadata))
            .chain(self.deployments.iter().map(|o| &o.metadata))
            .chain(self.replica_sets.iter().map(|o| &o.metadata))
            .chain(self.stateful_sets.iter().map(|o| &o.metadata))
            .chain(self.daemon_sets.iter().map(|o| &o.metadata))
            .chain(self.jobs.iter().map(|o| &o.metadata))
            .chain(self.cron_jobs.iter().map(|o| &o.metadata));
        for m in metas {
            names.insert(ns_of(m).to_owned());
        }
        names.into_iter().filter(|n| !n.is_empty()).collect()
    }

    /// The manifest location of an object, when it was loaded from a named file.
    pub fn location(&self, r: &ObjectRef) -> Option<&SourceLocation> {
        self.sources.get(r)
    }
}

/// Splits a multi-document YAML text at `---` lines, returning each non-empty document
/// with the 1-based line it starts on. Done by hand (not by the YAML parser's document
/// iterator) so every object gets the line number the SARIF and human outputs cite.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    let mut has_content = false;
    for (idx, line) in text.lines().enumerate() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.trim_end() == "---";
        if is_separator {
            if has_content {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            has_content = false;
            start = idx + 2;
            continue;
        }
        if !has_content {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                // Leading blank and comment lines do not start the document: the cited line
                // is the object's first real line.
                start = idx + 2;
                continue;
            }
            has_content = true;
        }
        current.push_str(line);
        current.push('\n');
    }
    if has_content {
        docs.push((start, current));
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_with_start_lines() {
        let docs = split_documents("# c\napiVersion: v1\n---\n\n---\nkind: A\n---\n  \nkind: B\n");
        let lines: Vec<usize> = docs.iter().map(|d| d.0).collect();
        assert_eq!(lines, vec![2, 6, 9]);
    }

    #[test]
    fn loads_known_kinds_ignores_unknown_and_defaults_namespace() {
        let y = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata:\n    name: x\n    namespace: b\n";
        let s = Snapshot::from_yaml_file(y, "m.yaml").expect("valid yaml");
        assert_eq!(s.service_accounts.len(), 2);
        assert!(s.service_account("default", "default").is_some());
        assert!(s.service_account("b", "default").is_none());
        assert!(s.service_account("b", "x").is_some());
        let loc = s
            .location(&ObjectRef::namespaced("ServiceAccount", "b", "x"))
            .expect("recorded");
        assert_eq!(loc.line, 11);
    }

    #[test]
    fn invalid_object_names_line_and_kind() {
        let y = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Pod\nspec: 3\n";
        let err = Snapshot::from_yaml(y).expect_err("spec must be a map");
        assert_eq!(err.to_string(), "<input>:6: invalid Pod object");
    }
}
