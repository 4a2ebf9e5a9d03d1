//! `--target CLUSTER[/NAMESPACE[/KSA]]`: planning, applying or destroying part of a plan.
//!
//! A selection keeps the workloads it names; what they depend on (their namespace, the
//! cluster's OIDC provider, a shared role) is planned with them and named as pulled in.
//! Deletes stay inside the selection: prune deletes only Kubernetes objects inside a
//! target (cloud objects that left the plan wait for an untargeted run, since nothing
//! ties them to a cluster or namespace), destroy deletes what the selected workloads
//! compile to, and neither deletes an object a workload outside the selection still
//! wants.

use std::borrow::Cow;
use std::collections::BTreeSet;

use wid_core::{ChangeKind, ResourceId};

use crate::plan::{Entry, Plan, WorkloadSpec};

/// One `--target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// The plan cluster.
    pub cluster: String,
    /// A namespace in it.
    pub namespace: Option<String>,
    /// A service account in that namespace.
    pub service_account: Option<String>,
}

impl TargetSpec {
    /// Parses `CLUSTER[/NAMESPACE[/KSA]]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "expected CLUSTER, CLUSTER/NAMESPACE or CLUSTER/NAMESPACE/SERVICE_ACCOUNT, got `{text}`"
            ));
        }
        Ok(Self {
            cluster: parts[0].to_owned(),
            namespace: parts.get(1).map(|s| (*s).to_owned()),
            service_account: parts.get(2).map(|s| (*s).to_owned()),
        })
    }

    /// Whether the target selects this workload.
    pub fn selects(&self, w: &WorkloadSpec) -> bool {
        self.cluster == w.cluster
            && self.namespace.as_ref().is_none_or(|ns| *ns == w.namespace)
            && self
                .service_account
                .as_ref()
                .is_none_or(|sa| *sa == w.service_account)
    }

    /// Whether a Kubernetes object lies inside the target (a KSA target covers the KSA
    /// and its `wid-KSA` Role and RoleBinding).
    pub fn covers(&self, id: &ResourceId) -> bool {
        if id.provider() != "k8s" || id.part(0) != self.cluster {
            return false;
        }
        let Some(ns) = &self.namespace else {
            return true;
        };
        if id.part(1) != ns {
            return false;
        }
        let Some(sa) = &self.service_account else {
            return true;
        };
        match id.kind() {
            "serviceaccount" => id.part(2) == sa,
            "role" | "rolebinding" => id.part(2) == format!("wid-{sa}"),
            _ => false,
        }
    }
}

impl std::fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cluster)?;
        if let Some(ns) = &self.namespace {
            write!(f, "/{ns}")?;
        }
        if let Some(sa) = &self.service_account {
            write!(f, "/{sa}")?;
        }
        Ok(())
    }
}

/// Every `--target` of a run; empty selects the whole plan.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The targets, as given.
    pub targets: Vec<TargetSpec>,
}

impl Selection {
    /// Parses the `--target` values and checks each names a plan cluster.
    pub fn new(values: &[String], plan: &Plan) -> Result<Self, String> {
        let mut targets = Vec::new();
        for v in values {
            let t = TargetSpec::parse(v)?;
            if !plan.clusters.contains_key(&t.cluster) {
                return Err(format!(
                    "--target {v}: the plan has no cluster `{}`; its clusters are {}",
                    t.cluster,
                    plan.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            targets.push(t);
        }
        Ok(Self { targets })
    }

    /// Whether the whole plan is selected.
    pub fn is_all(&self) -> bool {
        self.targets.is_empty()
    }

    /// The targets as written (a saved plan records them).
    pub fn texts(&self) -> Vec<String> {
        self.targets.iter().map(ToString::to_string).collect()
    }

    /// Whether a workload is selected.
    pub fn selects(&self, w: &Entry<WorkloadSpec>) -> bool {
        self.is_all() || self.targets.iter().any(|t| t.selects(&w.spec))
    }

    /// The selected part of the plan: every cluster and setting, the selected workloads
    /// (the plan itself, not a copy, when everything is selected).
    pub fn apply_to<'p>(&self, plan: &'p Plan) -> Cow<'p, Plan> {
        if self.is_all() {
            return Cow::Borrowed(plan);
        }
        let mut out = plan.clone();
        out.workloads.retain(|w| self.selects(w));
        Cow::Owned(out)
    }

    /// The workloads left out (their objects are never deleted by a targeted run).
    pub fn rest(&self, plan: &Plan) -> Plan {
        let mut out = plan.clone();
        out.workloads.retain(|w| !self.selects(w));
        out
    }

    /// Whether a targeted run may delete `id`: it is inside a target, or one of the
    /// `selected` ids (what the selected workloads compile to), and not one of the
    /// `kept` ids (what the workloads outside the selection compile to).
    pub fn may_delete(
        &self,
        id: &ResourceId,
        selected: &BTreeSet<ResourceId>,
        kept: &BTreeSet<ResourceId>,
    ) -> bool {
        if self.is_all() {
            return true;
        }
        !kept.contains(id) && (selected.contains(id) || self.targets.iter().any(|t| t.covers(id)))
    }
}

/// The changes a targeted plan includes beyond the selected workloads' own objects
/// (their namespace, a cluster's OIDC provider, a shared role): ids of pending changes
/// whose group is not a selected workload.
pub fn pulled_in(
    planned: &crate::session::Planned,
    workload_groups: &BTreeSet<String>,
) -> Vec<ResourceId> {
    planned
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp && c.kind != ChangeKind::Delete)
        .filter(|c| {
            planned
                .desired
                .groups
                .get(&c.id)
                .is_none_or(|g| !workload_groups.contains(&**g))
        })
        .map(|c| c.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_cover_their_objects() {
        let t = TargetSpec::parse("dev/payments/orders").unwrap();
        assert_eq!(t.to_string(), "dev/payments/orders");
        let id = |kind: &str, parts: &[&str]| ResourceId::new("k8s", kind, parts.to_vec());
        assert!(t.covers(&id("serviceaccount", &["dev", "payments", "orders"])));
        assert!(t.covers(&id("role", &["dev", "payments", "wid-orders"])));
        assert!(!t.covers(&id("serviceaccount", &["dev", "payments", "other"])));
        assert!(!t.covers(&id("namespace", &["dev", "payments"])));
        let ns = TargetSpec::parse("dev/payments").unwrap();
        assert!(ns.covers(&id("namespace", &["dev", "payments"])));
        assert!(!ns.covers(&id("namespace", &["prod", "payments"])));
        assert!(!ns.covers(&ResourceId::new("aws", "iam-role", ["1", "orders"])));
        for bad in ["", "a//b", "a/b/c/d", "/x"] {
            assert!(TargetSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
