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
use crate::positions::{FieldIndex, Seg, split_documents};

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
    /// Line and column of each field of each object loaded from a named file.
    pub fields: BTreeMap<ObjectRef, FieldIndex>,
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
            let fields = path.map(|_| FieldIndex::of_document(&doc, line));
            self.add_value(value, origin, fields.as_ref(), line)?;
        }
        Ok(())
    }

    fn add_value(
        &mut self,
        value: Value,
        origin: &str,
        fields: Option<&FieldIndex>,
        line: usize,
    ) -> Result<(), SnapshotError> {
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
            if let Some(Value::Array(items)) = value.get("items") {
                for (i, item) in items.clone().into_iter().enumerate() {
                    let at = [Seg::Key("items".into()), Seg::Index(i)];
                    let sub = fields.map(|f| f.sub(&at));
                    let item_line = fields.and_then(|f| f.at(&at)).map_or(line, |p| p.0);
                    self.add_value(item, origin, sub.as_ref(), item_line)?;
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
                if let Some(fields) = fields {
                    let r = if $namespaced {
                        ObjectRef::namespaced(&kind, ns_of(&obj.metadata), name_of(&obj.metadata))
                    } else {
                        ObjectRef::cluster(&kind, name_of(&obj.metadata))
                    };
                    let column = fields.document_column();
                    self.sources.insert(
                        r.clone(),
                        SourceLocation {
                            path: origin.to_owned(),
                            line,
                            column,
                        },
                    );
                    self.fields.insert(r, fields.clone());
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

    /// The manifest location of `field` of an object (a path such as
    /// `spec.template.spec.automountServiceAccountToken`): the field's own line and column,
    /// else its nearest enclosing field's, else the object's document start.
    pub fn locate(&self, r: &ObjectRef, field: Option<&str>) -> Option<SourceLocation> {
        let base = self.sources.get(r)?;
        let at = field.and_then(|f| self.fields.get(r)?.locate(f));
        Some(match at {
            Some((line, column)) => SourceLocation {
                path: base.path.clone(),
                line,
                column,
            },
            None => base.clone(),
        })
    }

    /// The metadata of the Kubernetes object `r`, if it is in the snapshot.
    pub fn meta(&self, r: &ObjectRef) -> Option<&ObjectMeta> {
        fn find<'a, T>(
            list: &'a [T],
            meta: fn(&T) -> &ObjectMeta,
            r: &ObjectRef,
        ) -> Option<&'a ObjectMeta> {
            list.iter().map(meta).find(|m| {
                name_of(m) == r.name && r.namespace.as_deref().is_none_or(|ns| ns_of(m) == ns)
            })
        }
        match r.kind.as_str() {
            "Namespace" => find(&self.namespaces, |o| &o.metadata, r),
            "ServiceAccount" => find(&self.service_accounts, |o| &o.metadata, r),
            "Pod" => find(&self.pods, |o| &o.metadata, r),
            "Deployment" => find(&self.deployments, |o| &o.metadata, r),
            "ReplicaSet" => find(&self.replica_sets, |o| &o.metadata, r),
            "StatefulSet" => find(&self.stateful_sets, |o| &o.metadata, r),
            "DaemonSet" => find(&self.daemon_sets, |o| &o.metadata, r),
            "Job" => find(&self.jobs, |o| &o.metadata, r),
            "CronJob" => find(&self.cron_jobs, |o| &o.metadata, r),
            "Role" => find(&self.roles, |o| &o.metadata, r),
            "RoleBinding" => find(&self.role_bindings, |o| &o.metadata, r),
            "ClusterRole" => find(&self.cluster_roles, |o| &o.metadata, r),
            "ClusterRoleBinding" => find(&self.cluster_role_bindings, |o| &o.metadata, r),
            "Secret" => find(&self.secrets, |o| &o.metadata, r),
            "ConfigMap" => find(&self.config_maps, |o| &o.metadata, r),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!((loc.line, loc.column), (14, 3), "the List item's own line");
    }

    #[test]
    fn invalid_object_names_line_and_kind() {
        let y = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Pod\nspec: 3\n";
        let err = Snapshot::from_yaml(y).expect_err("spec must be a map");
        assert_eq!(err.to_string(), "<input>:6: invalid Pod object");
    }
}
