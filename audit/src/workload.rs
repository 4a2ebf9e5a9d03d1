//! Pod specs of the seven workload kinds and the effective-automount rule.
//!
//! `eff(pod) := pod.automountServiceAccountToken ?? sa(ns, name).automountServiceAccountToken ?? true`,
//! with an empty `serviceAccountName` meaning `default` (the ServiceAccount admission
//! plugin's `shouldAutomount()` and `Admit()`). Pods and ReplicaSets (and Jobs) owned by a
//! higher-level workload present in the snapshot are skipped, so one Deployment yields one
//! finding, not three.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::ObjectRef;
use crate::snapshot::{Snapshot, name_of, ns_of};

/// The ServiceAccount a pod runs as when it names none.
pub const DEFAULT_SA: &str = "default";

/// One pod template (or pod) to check.
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    /// `Pod`, `Deployment`, `ReplicaSet`, `StatefulSet`, `DaemonSet`, `Job` or `CronJob`.
    pub kind: &'static str,
    /// The object's metadata.
    pub meta: &'a ObjectMeta,
    /// The pod spec (for controllers, the template's).
    pub spec: &'a PodSpec,
    /// Where the pod spec sits in the object, e.g. `spec.template.spec`.
    pub spec_path: &'static str,
}

impl<'a> Workload<'a> {
    /// The workload's namespace.
    pub fn namespace(&self) -> &'a str {
        ns_of(self.meta)
    }

    /// The workload's name.
    pub fn name(&self) -> &'a str {
        name_of(self.meta)
    }

    /// The object reference findings carry.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::namespaced(self.kind, self.namespace(), self.name())
    }

    /// `Kind ns/name` in lowercase-kind form for messages, e.g. `deployment shop/web`.
    pub fn label(&self) -> String {
        format!(
            "{} {}/{}",
            self.kind.to_ascii_lowercase(),
            self.namespace(),
            self.name()
        )
    }

    /// The ServiceAccount the pods run as: `serviceAccountName`, else the deprecated
    /// `serviceAccount` alias (manifests only), else `default`.
    pub fn sa_name(&self) -> &'a str {
        let named = self.spec.service_account_name.as_deref().unwrap_or("");
        if !named.is_empty() {
            return named;
        }
        let deprecated = self.spec.service_account.as_deref().unwrap_or("");
        if !deprecated.is_empty() {
            return deprecated;
        }
        DEFAULT_SA
    }
}

/// Which setting decided whether the token is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// The pod spec's own field.
    Pod(bool),
    /// The pod field is unset; the ServiceAccount's field decided.
    ServiceAccount(bool),
    /// Both unset (or the SA is absent from the snapshot): the default, true.
    Default {
        /// Whether the ServiceAccount object was in the snapshot.
        sa_present: bool,
    },
}

/// The effective automount decision for one pod spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Automount {
    /// Whether an API token is mounted.
    pub mounted: bool,
    /// What decided it.
    pub decider: Decider,
    /// The ServiceAccount, as `ns/name`.
    pub service_account: String,
}

impl Automount {
    /// Whether someone asked for the token on purpose (a `true` in the pod or SA).
    pub fn explicit(&self) -> bool {
        matches!(
            self.decider,
            Decider::Pod(true) | Decider::ServiceAccount(true)
        )
    }

    /// The exact reason, for messages: which field said what.
    pub fn reason(&self, spec_path: &str) -> String {
        let sa = &self.service_account;
        match self.decider {
            Decider::Pod(v) => format!("{spec_path}.automountServiceAccountToken is {v}"),
            Decider::ServiceAccount(v) => format!(
                "{spec_path}.automountServiceAccountToken is unset and ServiceAccount {sa} sets it to {v}"
            ),
            Decider::Default { sa_present: true } => format!(
                "{spec_path}.automountServiceAccountToken is unset and ServiceAccount {sa} leaves it unset (default true)"
            ),
            Decider::Default { sa_present: false } => format!(
                "{spec_path}.automountServiceAccountToken is unset and ServiceAccount {sa} is not in the input (default true)"
            ),
        }
    }
}

/// The effective automount of `w`: pod field, else its own-namespace SA's, else true.
pub fn eff(snap: &Snapshot, w: &Workload<'_>) -> Automount {
    let ns = w.namespace();
    let sa_name = w.sa_name();
    let service_account = format!("{ns}/{sa_name}");
    let decider = match w.spec.automount_service_account_token {
        Some(v) => Decider::Pod(v),
        None => match snap.service_account(ns, sa_name) {
            Some(sa) => match sa.automount_service_account_token {
                Some(v) => Decider::ServiceAccount(v),
                None => Decider::Default { sa_present: true },
            },
            None => Decider::Default { sa_present: false },
        },
    };
    let mounted = match decider {
        Decider::Pod(v) | Decider::ServiceAccount(v) => v,
        Decider::Default { .. } => true,
    };
    Automount {
        mounted,
        decider,
        service_account,
    }
}

/// The top-level workloads of the snapshot, sorted by namespace, kind and name. An object
/// whose owner (by ownerReferences) is a workload in the snapshot is left out.
pub fn workloads(snap: &Snapshot) -> Vec<Workload<'_>> {
    let mut present: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
    let mut all: Vec<Workload<'_>> = Vec::new();
    macro_rules! collect {
        ($list:expr, $kind:literal, $path:literal, |$o:ident| $spec:expr) => {
            for $o in &$list {
                present.insert(($kind, ns_of(&$o.metadata), name_of(&$o.metadata)));
                if let Some(spec) = $spec {
                    all.push(Workload {
                        kind: $kind,
                        meta: &$o.metadata,
                        spec,
                        spec_path: $path,
                    });
                }
            }
        };
    }
    collect!(snap.pods, "Pod", "spec", |o| o.spec.as_ref());
    collect!(snap.deployments, "Deployment", "spec.template.spec", |o| o
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref()));
    collect!(snap.replica_sets, "ReplicaSet", "spec.template.spec", |o| o
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref()));
    collect!(
        snap.stateful_sets,
        "StatefulSet",
        "spec.template.spec",
        |o| o.spec.as_ref().and_then(|s| s.template.spec.as_ref())
    );
    collect!(snap.daemon_sets, "DaemonSet", "spec.template.spec", |o| o
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref()));
    collect!(snap.jobs, "Job", "spec.template.spec", |o| o
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref()));
    collect!(
        snap.cron_jobs,
        "CronJob",
        "spec.jobTemplate.spec.template.spec",
        |o| o
            .spec
            .as_ref()
            .and_then(|s| s.job_template.spec.as_ref())
            .and_then(|j| j.template.spec.as_ref())
    );
    let mut top: Vec<Workload<'_>> = all
        .into_iter()
        .filter(|w| {
            let owners = w.meta.owner_references.as_deref().unwrap_or(&[]);
            !owners
                .iter()
                .any(|o| present.contains(&(o.kind.as_str(), w.namespace(), o.name.as_str())))
        })
        .collect();
    top.sort_by(|a, b| (a.namespace(), a.kind, a.name()).cmp(&(b.namespace(), b.kind, b.name())));
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(y: &str) -> Snapshot {
        Snapshot::from_yaml(y).expect("test yaml")
    }

    #[test]
    fn owned_pods_and_replicasets_are_skipped_only_when_owner_present() {
        let s = snap(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: a}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers: []\n---\napiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web-1\n  namespace: a\n  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u}]\nspec:\n  selector: {}\n  template:\n    spec:\n      containers: []\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1-x\n  namespace: a\n  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-1, uid: u}]\nspec:\n  containers: []\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: orphan\n  namespace: a\n  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: gone, uid: u}]\nspec:\n  containers: []\n",
        );
        let names: Vec<String> = workloads(&s).iter().map(|w| w.label()).collect();
        assert_eq!(names, vec!["deployment a/web", "pod a/orphan"]);
    }

    #[test]
    fn deprecated_service_account_field_is_honoured() {
        let s = snap(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  serviceAccount: legacy\n  containers: []\n",
        );
        let w = workloads(&s);
        assert_eq!(w[0].sa_name(), "legacy");
        assert_eq!(eff(&s, &w[0]).service_account, "default/legacy");
    }
}
