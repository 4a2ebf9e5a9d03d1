//! What a cloud provider hands `wid import`: the cloud blocks that reproduce a cluster's
//! existing workload identities in a plan, with where each came from and what a plan
//! cannot reproduce exactly. Pure data; each provider fills it from its own reads.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A ServiceAccount of the cluster being imported, as the clouds need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsaFacts {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Every annotation it carries.
    pub annotations: BTreeMap<String, String>,
}

impl KsaFacts {
    /// `system:serviceaccount:NS:NAME`, the subject of its tokens.
    pub fn subject(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    /// `NS/NAME`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One workload an import found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportedWorkload {
    /// The KSA's namespace.
    pub namespace: String,
    /// The KSA's name.
    pub service_account: String,
    /// The cloud block that reproduces it, key by key as the plan writes them (`role`,
    /// `managed_policies`, …), in the order to write them. Keys left at their default are
    /// left out.
    pub block: Map<String, Value>,
    /// Where it came from (the annotation, the cloud objects read), one comment line each.
    pub notes: Vec<String>,
}

/// What one cloud's import found on one cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Imported {
    /// The cluster entry's cloud keys (`account`, `region`, `name`, …), in order.
    pub cluster: Map<String, Value>,
    /// Where the cluster's coordinates came from, one comment line each.
    pub cluster_notes: Vec<String>,
    /// The workloads, one per KSA.
    pub workloads: Vec<ImportedWorkload>,
    /// What the plan would change or cannot reproduce (a role trusting more than the
    /// cluster's KSAs, an identity that does not exist): shown on stderr and written into
    /// the plan as comments, next to the workload when there is one.
    pub warnings: Vec<ImportWarning>,
    /// What import cannot discover (roles granted on other resources), as closing comments.
    pub notes: Vec<String>,
}

/// A warning of an import, about one KSA or the whole cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWarning {
    /// The KSA (`NS/NAME`) it is about; `None` for the cluster.
    pub ksa: Option<String>,
    /// The warning, one sentence.
    pub message: String,
}

impl ImportWarning {
    /// A warning about the KSA `ns/name`.
    pub fn ksa(namespace: &str, name: &str, message: impl Into<String>) -> Self {
        Self {
            ksa: Some(format!("{namespace}/{name}")),
            message: message.into(),
        }
    }

    /// A warning about the cluster.
    pub fn cluster(message: impl Into<String>) -> Self {
        Self {
            ksa: None,
            message: message.into(),
        }
    }
}
